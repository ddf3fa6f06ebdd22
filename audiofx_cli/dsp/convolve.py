"""Streaming convolution with a long impulse response: FFT overlap-save with history.

A chunk is cut into frames of `hop = n_fft - taps + 1` output samples, transformed a group of
frames at a time (batched rfft, a few MB whatever the chunk's length), in float64 whatever the
signal dtype, so the result equals scipy.signal.fftconvolve to float64 rounding for any
chunking. CPU signals use scipy.fft (pocketfft, on the torch thread count: about 2x faster
than torch.fft in float64, measured), other devices (and autograd) torch.fft. The state is the last
len(ir) - 1 input samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MIN_FFT = 1024
MAX_BLOCK_FACTOR = 4  # an FFT spans at most max(MIN_FFT, 4 * next_pow2(len(ir))) samples
GROUP_SAMPLES = 1 << 22  # rows x frames x n_fft per batched transform, at most (or one frame)


def _pow2(n: int) -> int:
    """Smallest power of two >= n."""
    return 1 << max(n - 1, 0).bit_length()


def fft_size(frames: int, taps: int) -> int:
    """FFT length for a chunk of `frames` samples and an IR of `taps` samples: enough for the
    chunk in one block, but at most max(MIN_FFT, 4 * pow2(taps)) and at least 2 * pow2(taps)."""
    cap = max(MIN_FFT, MAX_BLOCK_FACTOR * _pow2(taps))
    return max(2 * _pow2(taps), min(_pow2(frames + taps - 1), cap))


def ir_spectrum(ir: Tensor, n_fft: int) -> Tensor:
    """rfft of the (channels_ir, taps) impulse response in float64: (channels_ir, n_fft//2+1)."""
    return torch.fft.rfft(ir.to(torch.float64), n_fft)


def _filter_frames(frames: Tensor, spectrum: Tensor, n_fft: int) -> Tensor:
    """irfft(rfft(frames) * spectrum) over the last axis (frames: (..., k, n_fft) float64)."""
    if frames.device.type != "cpu" or frames.requires_grad:
        return torch.fft.irfft(torch.fft.rfft(frames, n_fft) * spectrum, n_fft)
    import scipy.fft

    workers = max(1, torch.get_num_threads())
    product = scipy.fft.rfft(frames.numpy(), axis=-1, workers=workers)
    product *= spectrum.numpy()
    return torch.from_numpy(scipy.fft.irfft(product, n_fft, axis=-1, workers=workers))


def overlap_save(
    x: Tensor,
    history: Tensor,
    spectrum: Tensor,
    taps: int,
    n_fft: int,
    mix: tuple[float, float] = (1.0, 0.0),
) -> tuple[Tensor, Tensor]:
    """Causal convolution y = wet (ir * x) + dry x of one chunk, with the previous input in
    `history`.

    Args:
        x: (..., channels, time).
        history: (..., channels, taps - 1) float64 input before x (zeros for a fresh stream).
        spectrum: `ir_spectrum(ir, n_fft)`, (1 or channels, n_fft // 2 + 1).
        taps: IR length.
        n_fft: FFT length (>= taps + 1).
        mix: (wet, dry), applied in float64.

    Returns:
        (y of x's shape and dtype, new history).
    """
    n = x.shape[-1]
    wet, dry = mix
    keep = taps - 1
    if n >= keep:
        new_history = x[..., n - keep :].to(torch.float64)
    else:
        new_history = torch.cat([history[..., n:], x.to(torch.float64)], dim=-1)
    y = torch.empty_like(x)
    if n == 0:
        return y, new_history
    hop = n_fft - keep
    rows = math.prod(x.shape[:-1])
    per_group = max(1, GROUP_SAMPLES // (rows * n_fft))  # frames per batched transform
    spectrum = spectrum.unsqueeze(-2)
    for start in range(0, n, per_group * hop):
        stop = min(n, start + per_group * hop)
        frames = -(-(stop - start) // hop)
        lo = start - keep  # first input sample the group reads (negative: history)
        parts = [] if lo >= 0 else [history[..., history.shape[-1] + lo :]]
        parts.append(x[..., max(lo, 0) : stop].to(torch.float64))
        need = (frames - 1) * hop + n_fft
        seg = torch.cat(parts, dim=-1)
        seg = torch.nn.functional.pad(seg, (0, need - seg.shape[-1]))
        out = _filter_frames(seg.unfold(-1, n_fft, hop), spectrum, n_fft)[..., keep:]
        out = out.reshape(*out.shape[:-2], frames * hop)[..., : stop - start]
        if dry:
            out = wet * out + dry * x[..., start:stop].to(torch.float64)
        elif wet != 1.0:
            out = wet * out
        y[..., start:stop] = out
    return y, new_history
