"""Streaming convolution with a long impulse response: FFT overlap-save with history.

All blocks of a chunk are transformed at once (unfold + batched rfft), in float64 whatever the
signal dtype, so the result equals scipy.signal.fftconvolve to float64 rounding for any
chunking. The state is the last len(ir) - 1 input samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

MIN_FFT = 1024
MAX_BLOCK_FACTOR = 4  # an FFT spans at most max(MIN_FFT, 4 * next_pow2(len(ir))) samples


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


def overlap_save(
    x: Tensor, history: Tensor, spectrum: Tensor, taps: int, n_fft: int
) -> tuple[Tensor, Tensor]:
    """Causal convolution y = ir * x of one chunk, with the previous input in `history`.

    Args:
        x: (..., channels, time).
        history: (..., channels, taps - 1) float64 input before x (zeros for a fresh stream).
        spectrum: `ir_spectrum(ir, n_fft)`, (1 or channels, n_fft // 2 + 1).
        taps: IR length.
        n_fft: FFT length (>= taps + 1).

    Returns:
        (y of x's shape in float64, new history).
    """
    n = x.shape[-1]
    xx = torch.cat([history, x.to(torch.float64)], dim=-1)
    new_history = xx[..., xx.shape[-1] - (taps - 1) :]
    if n == 0:
        return xx[..., :0], new_history
    hop = n_fft - taps + 1
    blocks = -(-n // hop)
    need = (blocks - 1) * hop + n_fft
    xx = torch.nn.functional.pad(xx, (0, need - xx.shape[-1]))
    frames = xx.unfold(-1, n_fft, hop)  # (..., channels, blocks, n_fft)
    product = torch.fft.rfft(frames, n_fft) * spectrum.unsqueeze(-2)
    y = torch.fft.irfft(product, n_fft)[..., taps - 1 :]
    y = y.reshape(*y.shape[:-2], blocks * hop)[..., :n]
    return y, new_history
