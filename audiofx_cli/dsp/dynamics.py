"""Dynamics processing: level detectors, gain computers and gain smoothing, with explicit state.

Arrays are numpy float64 of shape (signals, time) (signals = batch x channels, or batch alone
when channels are linked); every function takes its state and returns the new one, so any
chunking gives the same result as the whole signal.

The one non-linear recursion (one-pole smoothing with different coefficients for rising and
falling input) runs in small numba kernels over (signals, time); everything else is vectorised.

Conventions (Giannoulis, Massberg & Reiss, "Digital dynamic range compressor design: a tutorial
and analysis", JAES 2012):
- a smoothing coefficient for time constant tau is alpha = exp(-1 / (tau * sample_rate)): after
  a step, the smoothed value has moved 1 - 1/e (63.2 %) of the way after tau;
- levels and gains are in dB; the gain computer works on the detector level in dBFS.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import signal

LEVEL_FLOOR_DB = -400.0  # level of digital silence (keeps logs finite)


def time_coefficient(time_ms: float, sample_rate: float) -> float:
    """One-pole coefficient exp(-1 / (tau fs)); 0 (instantaneous) for time_ms == 0."""
    if time_ms <= 0:
        return 0.0
    return math.exp(-1000.0 / (time_ms * sample_rate))


@njit(cache=True)
def _smooth_branching(target, state, coef_up, coef_down):  # pragma: no cover - compiled
    out = np.empty_like(target)
    for c in range(target.shape[0]):
        y = state[c]
        for t in range(target.shape[1]):
            x = target[c, t]
            if x > y:
                y = coef_up * y + (1.0 - coef_up) * x
            else:
                y = coef_down * y + (1.0 - coef_down) * x
            out[c, t] = y
        state[c] = y
    return out


@njit(cache=True)
def _smooth_decoupled(target, held, smooth, coef_attack, coef_release):  # pragma: no cover
    out = np.empty_like(target)
    for c in range(target.shape[0]):
        h = held[c]
        y = smooth[c]
        for t in range(target.shape[1]):
            x = target[c, t]
            h = max(x, coef_release * h + (1.0 - coef_release) * x)
            y = coef_attack * y + (1.0 - coef_attack) * h
            out[c, t] = y
        held[c] = h
        smooth[c] = y
    return out


def smooth_branching(
    target: np.ndarray, state: np.ndarray, coef_up: float, coef_down: float
) -> tuple[np.ndarray, np.ndarray]:
    """Branching one-pole smoother: y = a y + (1 - a) x, with a = coef_up while x > y and
    coef_down otherwise.

    Args:
        target: (signals, time) float64.
        state: (signals,) last output of the previous chunk.

    Returns:
        (y, new_state).
    """
    state = np.array(state, dtype=np.float64, copy=True)
    target = np.ascontiguousarray(target, dtype=np.float64)
    if target.shape[-1] == 0:
        return target.copy(), state
    return _smooth_branching(target, state, float(coef_up), float(coef_down)), state


def smooth_decoupled(
    target: np.ndarray,
    state: tuple[np.ndarray, np.ndarray],
    coef_attack: float,
    coef_release: float,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Smooth decoupled peak detector (Giannoulis et al. eq. 17) on a gain reduction (dB >= 0):

        h[n] = max(x[n], a_R h[n-1] + (1 - a_R) x[n])      (peak hold, release)
        y[n] = a_A y[n-1] + (1 - a_A) h[n]                  (attack smoothing)

    A rising step reaches 1 - 1/e of its height after the attack time; after a falling step the
    hold decays with the release time and y follows it through the attack smoothing.

    Returns:
        (y, (held, smoothed)) with the state for the next chunk.
    """
    held = np.array(state[0], dtype=np.float64, copy=True)
    smooth = np.array(state[1], dtype=np.float64, copy=True)
    target = np.ascontiguousarray(target, dtype=np.float64)
    if target.shape[-1] == 0:
        return target.copy(), (held, smooth)
    y = _smooth_decoupled(target, held, smooth, float(coef_attack), float(coef_release))
    return y, (held, smooth)


def to_db(amplitude: np.ndarray) -> np.ndarray:
    """20 log10 |amplitude|, floored at LEVEL_FLOOR_DB."""
    with np.errstate(divide="ignore"):
        return np.maximum(20.0 * np.log10(np.abs(amplitude)), LEVEL_FLOOR_DB)


def power_to_db(power: np.ndarray) -> np.ndarray:
    """10 log10 power, floored at LEVEL_FLOOR_DB."""
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(np.maximum(power, 0.0)), LEVEL_FLOOR_DB)


def detect_level(
    x: np.ndarray, detector: str, link: bool, rms_coef: float, state: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Detector level in dBFS.

    Args:
        x: (batch, channels, time) float64.
        detector: 'peak' (|x| per sample) or 'rms' (one-pole mean square with coefficient
            `rms_coef`, state carried).
        link: one level for all channels: the maximum |x| (peak) or the mean of the channels'
            mean squares (rms); otherwise one level per channel.
        state: (signals,) mean-square state for 'rms' (None for 'peak').

    Returns:
        (level_db of shape (signals, time), new state); signals = batch (linked) or
        batch * channels.
    """
    batch, channels, n = x.shape
    if detector == "peak":
        level = np.abs(x).max(axis=1) if link else np.abs(x).reshape(batch * channels, n)
        return to_db(level), None
    power = np.square(x)
    power = power.mean(axis=1) if link else power.reshape(batch * channels, n)
    if n == 0:
        return power.copy(), state
    mean_square, new_state = signal.lfilter(
        [1.0 - rms_coef], [1.0, -rms_coef], power, axis=-1, zi=state[:, None]
    )
    return power_to_db(mean_square), new_state[:, 0]


def compressor_curve(level_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float):
    """Static gain computer with a quadratic soft knee (Giannoulis et al. eq. 4): output level
    in dB for an input level in dB.

        out = in                                      for 2 (in - T) < -W
        out = in + (1/R - 1) (in - T + W/2)^2 / (2 W)   for 2 |in - T| <= W
        out = T + (in - T) / R                         for 2 (in - T) > W
    """
    over = level_db - threshold_db
    out = np.where(over > 0, threshold_db + over / ratio, level_db)
    if knee_db > 0:
        in_knee = 2.0 * np.abs(over) <= knee_db
        knee = level_db + (1.0 / ratio - 1.0) * (over + knee_db / 2.0) ** 2 / (2.0 * knee_db)
        out = np.where(in_knee, knee, out)
    return out


def running_max(values: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum over the last len(history) + 1 samples (sliding window, state = history).

    Args:
        values: (signals, time); history: (signals, window - 1) previous values.

    Returns:
        (max of shape (signals, time), new history).
    """
    from scipy.ndimage import maximum_filter1d

    window = history.shape[-1] + 1
    full = np.concatenate([history, values], axis=-1)
    if window == 1:
        return values.copy(), history
    # centred filter of size `window`, shifted so each output covers [i - window + 1, i]
    out = maximum_filter1d(full, size=window, axis=-1, origin=(window - 1) // 2, mode="nearest")
    out = out[..., window - 1 :]
    return out, full[..., full.shape[-1] - (window - 1) :]


def moving_average(values: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last len(history) + 1 samples (boxcar), state = history.

    Running sums within the chunk: the result depends on the chunking only at rounding level.
    """
    window = history.shape[-1] + 1
    if window == 1:
        return values.copy(), history
    full = np.concatenate([history, values], axis=-1)
    cumulative = np.zeros((*full.shape[:-1], full.shape[-1] + 1))
    np.cumsum(full, axis=-1, out=cumulative[..., 1:])
    sums = cumulative[..., window:] - cumulative[..., :-window]
    return sums / window, full[..., full.shape[-1] - (window - 1) :]
