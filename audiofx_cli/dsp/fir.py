"""FIR filtering with history carried across chunks (the streaming form of lfilter(taps, 1, x)).

Short filters use direct convolution (torch conv1d); long ones an FFT of the chunk plus history.
Both are exact up to float rounding and give the same result for any chunking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FFT_MIN_TAPS = 128  # at and above this many taps, convolve by FFT


def fir_zeros_history(taps: Tensor, x: Tensor) -> Tensor:
    """Zero history for `fir_filter`: (*x.shape[:-1], n_taps - 1) in x's dtype and device."""
    return x.new_zeros((*x.shape[:-1], taps.shape[-1] - 1))


def _direct(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    lead = xx.shape[:-1]
    flat = xx.reshape(-1, 1, xx.shape[-1])
    kernel = taps.flip(-1).reshape(1, 1, -1)
    return F.conv1d(flat, kernel).reshape(*lead, n_out)


def _fft(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    n_taps = taps.shape[-1]
    n_fft = 1 << (xx.shape[-1] + n_taps - 1 - 1).bit_length()
    spectrum = torch.fft.rfft(xx, n_fft) * torch.fft.rfft(taps, n_fft)
    full = torch.fft.irfft(spectrum, n_fft)
    return full[..., n_taps - 1 : n_taps - 1 + n_out]


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
    taps = taps.to(dtype=x.dtype, device=x.device)
    if history is None:
        history = fir_zeros_history(taps, x)
    xx = torch.cat([history, x], dim=-1)
    n_out = x.shape[-1]
    if n_out == 0:
        y = x
    elif taps.shape[-1] >= FFT_MIN_TAPS:
        y = _fft(taps, xx, n_out)
    else:
        y = _direct(taps, xx, n_out)
    new_history = xx[..., xx.shape[-1] - history.shape[-1] :]
    return y, new_history
