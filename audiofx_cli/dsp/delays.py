"""Delay lines with explicit state: a feedback delay (comb) and a multi-tap echo (FIR).

`feedback_delay` computes d[n] = w[n - D] with w[n] = x[n] + g * w[n - D]. Every output of a
block of at most D samples depends only on w from before the block, so the recursion runs a
sub-block of D samples at a time (vectorised, any device). Delays shorter than
`MIN_BLOCK_DELAY` samples go through a small compiled kernel instead (numba, CPU). Both give
the same result for any chunking: the state is the last D samples of w.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

MIN_BLOCK_DELAY = 64  # shorter delays: compiled per-sample kernel instead of sub-blocks


def _comb_kernel():  # compiled on first use (importing numba is slow)
    from numba import njit

    @njit(cache=True)
    def comb(x: np.ndarray, history: np.ndarray, gain: float) -> np.ndarray:
        rows, n = x.shape
        delay = history.shape[1]
        w = np.empty((rows, delay + n))
        w[:, :delay] = history
        for r in range(rows):
            for i in range(n):
                w[r, delay + i] = x[r, i] + gain * w[r, i]
        return w

    return comb


_COMB = None


def _comb_numpy(x: np.ndarray, history: np.ndarray, gain: float) -> np.ndarray:
    global _COMB
    if _COMB is None:
        _COMB = _comb_kernel()
    return _COMB(x, history, gain)


def feedback_delay(x: Tensor, history: Tensor, feedback: float) -> tuple[Tensor, Tensor]:
    """Delayed feedback line: returns d[n] = w[n - D], w[n] = x[n] + feedback * w[n - D].

    Args:
        x: (..., time) input.
        history: (..., D) the last D values of w before x (zeros for a fresh stream), D >= 1.
        feedback: loop gain g (|g| < 1 for a decaying response).

    Returns:
        (d, new_history): d has x's shape; new_history the last D values of w.

    Shape:
        x (..., time), history (..., D) -> (..., time), (..., D).

    Example:
        >>> x = torch.tensor([1.0, 0, 0, 0, 0, 0, 0])
        >>> feedback_delay(x, torch.zeros(2), 0.5)[0]
        tensor([0.0000, 0.0000, 1.0000, 0.0000, 0.5000, 0.0000, 0.2500])
    """
    delay, n = history.shape[-1], x.shape[-1]
    if n == 0:
        return x.clone(), history
    if delay < MIN_BLOCK_DELAY:
        lead = x.shape[:-1]
        rows = x.detach().reshape(-1, n).to("cpu", torch.float64).numpy()
        hist = history.detach().reshape(-1, delay).to("cpu", torch.float64).numpy()
        w = torch.from_numpy(_comb_numpy(rows, hist, float(feedback))).to(x.device, x.dtype)
        return w[:, :n].reshape(*lead, n), w[:, n:].reshape(*lead, delay)
    outs = []
    buf = history
    for start in range(0, n, delay):
        block = x[..., start : start + delay]
        size = block.shape[-1]
        delayed = buf[..., :size]
        buf = torch.cat([buf[..., size:], block + feedback * delayed], dim=-1)
        outs.append(delayed)
    return torch.cat(outs, dim=-1), buf


def multi_tap(
    x: Tensor, history: Tensor, delays: list[int], gains: list[float]
) -> tuple[Tensor, Tensor]:
    """Sum of delayed copies: y[n] = sum_j gains[j] * x[n - delays[j]] (no feedback).

    Args:
        x: (..., time).
        history: (..., max(delays)) the input before x (zeros for a fresh stream).
        delays: in samples, each in 1 .. history length.
        gains: one per delay.

    Returns:
        (y, new_history) with y of x's shape.
    """
    depth = history.shape[-1]
    xx = torch.cat([history, x], dim=-1)
    n = x.shape[-1]
    y = torch.zeros_like(x)
    for delay, gain in zip(delays, gains, strict=True):
        y = y + gain * xx[..., depth - delay : depth - delay + n]
    return y, xx[..., xx.shape[-1] - depth :]
