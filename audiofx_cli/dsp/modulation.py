"""Modulation effects: LFOs from the absolute sample index, a modulated fractional delay
(chorus, flanger) and a modulated first-order all-pass cascade (phaser).

The LFO value at input sample n is a function of n only, so it continues exactly across chunks.
The recursions (feedback through a time-varying delay, time-varying all-passes) run in small
numba kernels on float64 rows with explicit state in and out.
"""

from __future__ import annotations

import math

import numpy as np

_KERNELS: dict[str, object] = {}


def lfo(
    start: int,
    frames: int,
    rate_hz: float,
    sample_rate: float,
    offsets: np.ndarray,
    shape: str = "sine",
) -> np.ndarray:
    """LFO values in [-1, 1] for samples start .. start + frames - 1, +1 at phase 0.

    Args:
        start: absolute index of the first sample in the stream.
        frames: number of samples.
        rate_hz: LFO frequency.
        sample_rate: in Hz.
        offsets: (k,) phase offsets in cycles (channel spread, voice spacing, start phase).
        shape: 'sine' (cos(2 pi c)) or 'triangle' (4 |c - 1/2| - 1), c the phase in cycles.

    Returns:
        (k, frames) float64.

    Example:
        >>> lfo(0, 4, 1.0, 4.0, np.zeros(1), "triangle")
        array([[ 1.,  0., -1.,  0.]])
    """
    index = np.arange(start, start + frames, dtype=np.int64).astype(np.float64)
    cycles = index * (rate_hz / sample_rate) + np.asarray(offsets, dtype=np.float64)[:, None]
    cycles -= np.floor(cycles)
    if shape == "triangle":
        return 4.0 * np.abs(cycles - 0.5) - 1.0
    return np.cos(2.0 * np.pi * cycles)


def _kernels() -> dict[str, object]:
    if _KERNELS:
        return _KERNELS
    from numba import njit

    @njit(cache=True)
    def modulated_delay(x, delays, history, feedback):
        rows, n = x.shape
        voices = delays.shape[1]
        depth = history.shape[1]
        w = np.zeros((rows, depth + n))
        w[:, :depth] = history
        wet = np.empty((rows, n))
        for r in range(rows):
            for i in range(n):
                total = 0.0
                for v in range(voices):
                    pos = depth + i - delays[r, v, i]
                    k = int(math.floor(pos))
                    frac = pos - k
                    value = w[r, k]
                    if frac > 0.0:
                        value += frac * (w[r, k + 1] - value)
                    total += value
                total /= voices
                wet[r, i] = total
                w[r, depth + i] = x[r, i] + feedback * total
        return wet, w[:, n:].copy()

    @njit(cache=True)
    def allpass_cascade(x, coef, state, stages, feedback):
        rows, n = x.shape
        z = state.copy()
        out = np.empty((rows, n))
        for r in range(rows):
            for i in range(n):
                a = coef[r, i]
                value = x[r, i] + feedback * z[r, stages]
                for k in range(stages):
                    y = a * value + z[r, k] - a * z[r, k + 1]
                    z[r, k] = value
                    value = y
                z[r, stages] = value
                out[r, i] = value
        return out, z

    _KERNELS["modulated_delay"] = modulated_delay
    _KERNELS["allpass_cascade"] = allpass_cascade
    return _KERNELS


def modulated_delay(
    x: np.ndarray, delays: np.ndarray, history: np.ndarray, feedback: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional delay line read by several voices, with feedback of their mean.

    w[n] = x[n] + feedback * wet[n];  wet[n] = mean over voices v of w(n - delays[v, n]),
    read by linear interpolation. Every delay must be >= 1 sample and <= history length - 1.

    Args:
        x: (rows, time) float64.
        delays: (rows, voices, time) delays in samples (float64).
        history: (rows, depth) the last `depth` values of w (zeros for a fresh stream).
        feedback: gain of the mean voice fed back into the line.

    Returns:
        (wet, new_history): (rows, time) and (rows, depth).
    """
    return _kernels()["modulated_delay"](x, delays, history, float(feedback))  # type: ignore[operator]


def allpass_cascade(
    x: np.ndarray, coef: np.ndarray, state: np.ndarray, feedback: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cascade of first-order all-passes H(z) = (a + z^-1) / (1 + a z^-1) with a per-sample
    coefficient a[n], and feedback of the cascade's previous output into its input.

    Args:
        x: (rows, time) float64.
        coef: (rows, time) all-pass coefficients a[n] (|a| < 1).
        state: (rows, stages + 1): the previous input of each stage, then the previous output
            of the last stage (zeros for a fresh stream).
        feedback: gain of the previous cascade output added to the input.

    Returns:
        (out, new_state).
    """
    stages = state.shape[1] - 1
    kernel = _kernels()["allpass_cascade"]
    return kernel(x, coef, state, stages, float(feedback))  # type: ignore[operator]


def allpass_coefficient(freq_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """First-order all-pass coefficient with -90 degrees of phase at freq_hz."""
    t = np.tan(np.pi * freq_hz / sample_rate)
    return (t - 1.0) / (t + 1.0)


def max_delay_samples(delay_ms: float, depth: float, sample_rate: float) -> int:
    """History length for a delay of delay_ms * (1 + depth * lfo)."""
    return int(math.ceil(delay_ms * (1.0 + depth) * sample_rate / 1000.0)) + 2
