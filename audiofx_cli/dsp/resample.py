"""Streaming polyphase resampler: windowed sinc (Kaiser), rational ratio L/M, zero phase.

Output sample k sits at input time t_k = k M / L and is sum_i x[i] h(t_k - i), with h a
Kaiser-windowed sinc whose cut-off is between the passband edge and the lower Nyquist. The
kernel is centred on t_k, so the output is aligned with the input (no filter delay), and the
stream yields exactly ceil(n L / M) samples, like scipy.signal.resample_poly. All L phases go
through one strided conv1d (output channel p = phase p), as in julius.resample_frac, about a
million output samples at a time (the input is read in place, the output written once).

Quality presets: passband edge (fraction of the lower Nyquist) and stop-band attenuation; the
Kaiser formulas give beta and the number of zero crossings per side. The measured figures are
in docs/effects.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from audiofx_cli import memory
from audiofx_cli.dsp.fir import conv1d

MAX_KERNEL = 1 << 24  # L x kernel width entries at most
GROUP_OUTPUTS = 1 << 20  # output samples per conv1d call (all rows), about


@dataclass(frozen=True)
class Quality:
    passband: float  # passband edge / lower Nyquist
    stopband_db: float  # attenuation from the lower Nyquist up

    @property
    def beta(self) -> float:
        a = self.stopband_db
        return 0.1102 * (a - 8.7) if a > 50 else 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)

    @property
    def zero_crossings(self) -> int:
        """Half-length in periods of the lower rate (Kaiser: N = (A - 7.95) / (14.36 df))."""
        transition = (1.0 - self.passband) / 2.0  # in units of the lower sampling rate
        return int(math.ceil((self.stopband_db - 7.95) / (14.36 * transition) / 2.0))


QUALITIES = {
    "low": Quality(0.80, 61.0),
    "medium": Quality(0.86, 81.0),
    "high": Quality(0.91, 100.0),
    "very_high": Quality(0.95, 133.0),
}


def ratio(rate_in: int, rate_out: int) -> tuple[int, int]:
    """(L, M): rate_out / rate_in in lowest terms."""
    g = math.gcd(rate_in, rate_out)
    return rate_out // g, rate_in // g


def design_kernel(up: int, down: int, quality: Quality) -> tuple[np.ndarray, int]:
    """Polyphase kernel (up, width) float64 and the left padding P (in input samples).

    Row p, column j holds h(p * down / up + P - j): applied with stride `down` to the input
    delayed by P samples, row p yields the outputs k = m * up + p.
    """
    scale = min(1.0, up / down)  # lower rate / input rate
    cutoff = (quality.passband + 1.0) / 4.0 * scale  # cycles per input sample
    half_width = quality.zero_crossings / scale  # input samples each side
    pad = int(math.ceil(half_width))
    width = down + 2 * pad
    offsets = np.arange(up, dtype=np.float64)[:, None] * down / up
    tau = offsets + pad - np.arange(width, dtype=np.float64)[None, :]
    u = np.clip(tau / half_width, -1.0, 1.0)
    window = np.i0(quality.beta * np.sqrt(1.0 - u * u)) / np.i0(quality.beta)
    window[np.abs(tau) > half_width] = 0.0
    kernel = 2.0 * cutoff * np.sinc(2.0 * cutoff * tau) * window
    return kernel, pad


def zeros_buffer(x: Tensor, pad: int) -> Tensor:
    """Initial input buffer: P zeros standing for the samples before the stream."""
    return x.new_zeros((*x.shape[:-1], pad))


def _span(prefix: Tensor, x: Tensor, start: int, stop: int) -> Tensor:
    """Samples start .. stop - 1 of cat(prefix, x) along time, copying only what straddles."""
    p = prefix.shape[-1]
    if start >= p:
        return x[..., start - p : stop - p]
    if stop <= p:
        return prefix[..., start:stop]
    return torch.cat([prefix[..., start:], x[..., : stop - p]], dim=-1)


def polyphase(
    prefix: Tensor, x: Tensor, kernel: Tensor, down: int, out: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """All complete output groups of the input cat(prefix, x), and what is left of it for the
    next call.

    The groups are computed `GROUP_OUTPUTS` output samples (of all rows) at a time, straight
    from `x` (no copy of the input, no temporaries as long as the signal).

    Args:
        prefix: (..., time) input before x (the previous call's remainder).
        x: (..., time) new input, same leading dims and dtype.
        kernel: (up, width) from `design_kernel` (cast to the input's dtype).
        down: stride M.
        out: where to write y (its first groups * up samples), or None for a new tensor.

    Returns:
        (y (..., groups * up) interleaved in time order, remaining input (a new tensor)).
    """
    up, width = kernel.shape
    n = prefix.shape[-1] + x.shape[-1]
    groups = (n - width) // down + 1 if n >= width else 0
    lead = x.shape[:-1]
    rows = math.prod(lead)
    if out is None:
        y = memory.empty((*lead, groups * up), x.dtype, x.device)
    else:
        y = out[..., : groups * up]
    weight = kernel.to(dtype=x.dtype, device=x.device).unsqueeze(1)
    step = max(1, GROUP_OUTPUTS // max(1, rows * up))  # groups per conv1d call
    for g0 in range(0, groups, step):
        g1 = min(groups, g0 + step)
        used = _span(prefix, x, g0 * down, (g1 - 1) * down + width)
        out = conv1d(used.reshape(rows, 1, used.shape[-1]), weight, stride=down)  # no TF32
        y[..., g0 * up : g1 * up] = out.transpose(1, 2).reshape(*lead, (g1 - g0) * up)
    return y, _span(prefix, x, groups * down, n).clone()
