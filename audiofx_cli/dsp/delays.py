"""Delay lines with explicit state: a feedback delay (comb) and a multi-tap echo (FIR).

Two implementations of each, with the same results:
- `delay_rows` / `echo_rows`: compiled kernels (`audiofx_cli.dsp.delay_kernels`, numba,
  imported on first use) over rows of float32 / float64 samples with a float64 ring updated
  in place; what the stages use;
- `feedback_delay` / `multi_tap`: torch functions, differentiable and on any device (the
  stages use them when autograd tracks the input). `feedback_delay` runs a sub-block of D
  samples at a time: every output of a block of at most D samples depends only on the line
  before the block.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _run(kernel_name: str, x: np.ndarray, *args: object) -> None:
    from audiofx_cli.dsp import delay_kernels, prefilter

    kernel = getattr(delay_kernels, kernel_name)
    prefilter.run_rows(kernel, x.shape[0], x, *args, cost=x.size)


def delay_rows(
    x: np.ndarray, y: np.ndarray, ring: np.ndarray, pos: int, feedback: float, mix: float
) -> int:
    """Feedback delay over rows: y = (1 - mix) x + mix d, d[n] = w[n - D],
    w[n] = x[n] + feedback d[n].

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        ring: (rows, D) float64, w of the D samples before x, the oldest at `pos` (zeros
            and 0 for a fresh stream). Updated in place.

    Returns:
        the new `pos`.
    """
    _run("delay_rows", x, y, ring, pos, float(feedback), float(mix))
    return (pos + x.shape[1]) % ring.shape[1]


def echo_rows(
    x: np.ndarray,
    y: np.ndarray,
    ring: np.ndarray,
    start: int,
    delays: list[int],
    gains: list[float],
    direct: float,
) -> None:
    """Multi-tap echo over rows: y[n] = direct x[n] + sum_j gains[j] x[n - delays[j]].

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        ring: (rows, R) float64, x[n] at ring[n mod R], R a power of two > max(delays)
            (zeros for a fresh stream). Updated in place.
        start: stream index of x's first sample.
    """
    taps = np.asarray(delays, dtype=np.int64)
    _run("echo_rows", x, y, ring, start, taps, np.asarray(gains, dtype=np.float64), direct)


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
