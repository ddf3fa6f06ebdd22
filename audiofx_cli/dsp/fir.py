"""FIR filtering with history carried across chunks (the streaming form of lfilter(taps, 1, x)).

Short filters use direct convolution (torch conv1d); long ones FFT overlap-save: the signal is
cut into frames of n_fft samples overlapping by n_taps - 1, each multiplied by the taps'
spectrum (real FFTs, spectrum cached per taps tensor, n_fft, dtype and device) and the valid
part kept. Frames are processed in groups, so memory stays a few times the chunk whatever its
length. Both paths are exact up to float rounding and give the same result for any chunking.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

FFT_MIN_TAPS = 64  # at and above this many taps, convolve by FFT (measured: docs/performance.md)
SMALL_WORK = 1 << 16  # below this many multiply-adds per row, a matmul over a strided view
FRAME_SAMPLES = 1 << 20  # output samples per row per group of FFT frames (bounds memory)


def fir_zeros_history(taps: Tensor, x: Tensor) -> Tensor:
    """Zero history for `fir_filter`: (*x.shape[:-1], n_taps - 1) in x's dtype and device."""
    return x.new_zeros((*x.shape[:-1], taps.shape[-1] - 1))


def fft_size(n_taps: int) -> int:
    """Power-of-two FFT size minimising FFT work per output sample for this many taps."""

    def cost(n_fft: int) -> float:
        return n_fft * math.log2(n_fft) / (n_fft - n_taps + 1)

    candidates = [1 << k for k in range(8, 24) if (1 << k) >= 2 * n_taps]
    return min(candidates, key=cost)


def _direct(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    if n_out * taps.shape[-1] <= SMALL_WORK:  # conv1d's fixed cost dominates short chunks
        return xx.unfold(-1, taps.shape[-1], 1) @ taps.flip(-1)
    lead = xx.shape[:-1]
    flat = xx.reshape(-1, 1, xx.shape[-1])
    kernel = taps.flip(-1).reshape(1, 1, -1)
    return F.conv1d(flat, kernel).reshape(*lead, n_out)


def taps_spectrum(taps: Tensor, n_fft: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """rfft of the taps at n_fft points in `dtype`'s precision (cached per taps tensor)."""
    key = (n_fft, dtype, str(device), taps._version)
    cached = getattr(taps, "_audiofx_spectrum", None)  # lives and dies with the taps tensor
    if cached is not None and cached[0] == key:
        return cached[1]
    spectrum = torch.fft.rfft(taps.to(device=device, dtype=dtype), n_fft)
    try:
        taps._audiofx_spectrum = (key, spectrum)  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return spectrum


def _overlap_save(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    """y[i] = sum_k taps[k] xx[i + H - k] for i < n_out, H = n_taps - 1, by FFT frames."""
    n_taps = taps.shape[-1]
    hold = n_taps - 1
    n_fft = fft_size(n_taps)
    step = n_fft - hold
    spectrum = taps_spectrum(taps, n_fft, xx.dtype, xx.device)
    lead = xx.shape[:-1]
    rows = xx.reshape(-1, xx.shape[-1])
    out = rows.new_empty((rows.shape[0], n_out))
    per_group = max(1, FRAME_SAMPLES // step)
    for start in range(0, n_out, per_group * step):
        count = min(per_group * step, n_out - start)
        frames = math.ceil(count / step)
        need = (frames - 1) * step + n_fft
        piece = rows[:, start : start + need]
        if piece.shape[-1] < need:
            piece = F.pad(piece, (0, need - piece.shape[-1]))
        blocks = piece.unfold(-1, n_fft, step)  # (rows, frames, n_fft), a view
        full = torch.fft.irfft(torch.fft.rfft(blocks, n_fft) * spectrum, n_fft)
        out[:, start : start + count] = full[..., hold:].reshape(rows.shape[0], -1)[:, :count]
    return out.reshape(*lead, n_out)


def fir_filter(taps: Tensor, x: Tensor, history: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Causal FIR filter y[n] = sum_k taps[k] x[n-k], with the past carried in `history`.

    Args:
        taps: (n_taps,) impulse response (cast to x's dtype).
        x: (..., time).
        history: the last n_taps - 1 input samples before x, (..., n_taps - 1); None is zeros.

    Returns:
        (y, new_history) with y of x's shape.

    Example:
        >>> taps = torch.tensor([0.25, 0.5, 0.25])
        >>> fir_filter(taps, torch.tensor([1.0, 0.0, 0.0, 0.0]))[0]
        tensor([0.2500, 0.5000, 0.2500, 0.0000])
    """
    if history is None:
        history = fir_zeros_history(taps, x)
    xx = torch.cat([history, x], dim=-1)
    n_out = x.shape[-1]
    if n_out == 0:
        y = x
    elif taps.shape[-1] >= FFT_MIN_TAPS and n_out >= taps.shape[-1]:
        y = _overlap_save(taps, xx, n_out)
    else:
        y = _direct(taps.to(dtype=x.dtype, device=x.device), xx, n_out)
    new_history = xx[..., xx.shape[-1] - history.shape[-1] :]
    return y, new_history
