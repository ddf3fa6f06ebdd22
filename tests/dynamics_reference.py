"""Plain-Python references of the dynamics stages, sample by sample with libm's log10 and pow,
written from the formulas in docs/dynamics.md (not from the kernels): what the compiled kernels
of audiofx_cli/dsp/dynamics_kernels.py must reproduce. Slow; for short test signals only.

Signals are (channels, frames) float64 numpy arrays; linked channels share one gain.
"""

from __future__ import annotations

import math

import numpy as np

FLOOR_DB = -400.0


def coef(time_ms: float, rate: float) -> float:
    return 0.0 if time_ms <= 0 else math.exp(-1000.0 / (time_ms * rate))


def _db(amplitude: float) -> float:
    return FLOOR_DB if amplitude <= 0 else max(20.0 * math.log10(amplitude), FLOOR_DB)


def _detector_levels(x: np.ndarray, rate: float, detector: str, rms_ms: float) -> np.ndarray:
    """Level in dBFS per frame of all rows of x together."""
    a = coef(rms_ms, rate)
    out = np.empty(x.shape[-1])
    ms = 0.0
    for n in range(x.shape[-1]):
        if detector == "peak":
            out[n] = _db(float(np.max(np.abs(x[:, n]))))
        else:
            ms = a * ms + (1 - a) * float(np.mean(x[:, n] ** 2))
            out[n] = FLOOR_DB if ms <= 0 else max(10.0 * math.log10(ms), FLOOR_DB)
    return out


def _per_signal(x: np.ndarray, link: bool, gain_of) -> np.ndarray:
    """Apply gain_of(rows) (a gain per frame) to each signal: all rows, or each row."""
    if link:
        return x * gain_of(x)
    return np.stack([row * gain_of(row[None]) for row in x])


def compressor(x, rate, threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=100.0,
               knee_db=0.0, makeup_db=0.0, detector="peak", rms_ms=10.0, link=True):  # fmt: skip
    a_a, a_r = coef(attack_ms, rate), coef(release_ms, rate)

    def gain_of(rows: np.ndarray) -> np.ndarray:
        held = smooth = 0.0
        gains = np.empty(rows.shape[-1])
        for n, level in enumerate(_detector_levels(rows, rate, detector, rms_ms)):
            over = level - threshold_db
            if knee_db > 0 and 2 * abs(over) <= knee_db:
                out = level + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db)
            else:
                out = threshold_db + over / ratio if over > 0 else level
            target = level - out
            held = max(target, a_r * held + (1 - a_r) * target)
            smooth = a_a * smooth + (1 - a_a) * held
            gains[n] = 10 ** ((makeup_db - smooth) / 20)
        return gains

    return _per_signal(x, link, gain_of)


def gate(x, rate, threshold_db=-50.0, range_db=80.0, ratio=None, attack_ms=1.0, hold_ms=20.0,
         release_ms=100.0, detector="rms", rms_ms=10.0, link=True):  # fmt: skip
    a_a, a_r = coef(attack_ms, rate), coef(release_ms, rate)
    hold = round(hold_ms * rate / 1000)

    def gain_of(rows: np.ndarray) -> np.ndarray:
        since, atten = hold + 1, range_db
        gains = np.empty(rows.shape[-1])
        for n, level in enumerate(_detector_levels(rows, rate, detector, rms_ms)):
            since = 0 if level >= threshold_db else min(since + 1, hold + 1)
            if since <= hold:
                target = 0.0
            elif ratio is None:
                target = range_db
            else:
                target = min(max(threshold_db - level, 0) * (ratio - 1), range_db)
            c = a_r if target > atten else a_a
            atten = c * atten + (1 - c) * target
            gains[n] = 10 ** (-atten / 20)
        return gains

    return _per_signal(x, link, gain_of)


def limiter(x, rate, ceiling_db=-1.0, release_ms=50.0, lookahead_ms=5.0, link=True):
    """The look-ahead limiter on x padded with `lag` zeros, output aligned: y[m] = x[m] times
    the gain built at input position m + lag (docs/dynamics.md, limiter)."""
    ceiling = 10 ** (ceiling_db / 20)
    lag = round(lookahead_ms * rate / 1000)
    a_r = coef(release_ms, rate)

    def gain_of(rows: np.ndarray) -> np.ndarray:
        frames = rows.shape[-1]
        padded = np.concatenate([rows, np.zeros((rows.shape[0], lag))], axis=-1)
        peak = np.max(np.abs(padded), axis=0)
        required = [min(1.0, ceiling / p) if p > 0 else 1.0 for p in peak]
        released = 0.0
        linear = []
        gains = np.empty(frames)
        for n in range(frames + lag):
            window = required[max(0, n - lag) : n + 1]
            held = -20 * math.log10(min(window))  # before the stream: gain 1
            released = held if held > released else a_r * released + (1 - a_r) * held
            linear.append(10 ** (-released / 20))
            recent = linear[max(0, n - lag) : n + 1]
            average = (sum(recent) + (lag + 1 - len(recent))) / (lag + 1)  # ones before
            if n >= lag:
                gains[n - lag] = min(average, required[n - lag])
        return gains

    return np.clip(_per_signal(x, link, gain_of), -ceiling, ceiling)
