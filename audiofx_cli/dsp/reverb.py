"""Freeverb (Jezar at Dreampoint, public domain): 8 parallel low-pass-feedback combs and 4
series all-passes per tank, with the classic tunings (at 44.1 kHz) scaled to the sample rate.

The recursion runs in a small numba kernel over float64 rows with the ring buffers, their read
positions and the comb low-pass memories as explicit state. Values below `FLUSH` in magnitude
are stored as exact zeros (Freeverb's `undenormalise`): silence after sound decays to exact
zeros instead of denormal numbers, which would slow the CPU down by orders of magnitude.
"""

from __future__ import annotations

import numpy as np

COMB_TUNING = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNING = (556, 441, 341, 225)
STEREO_SPREAD = 23
TUNING_RATE = 44100.0
FIXED_GAIN = 0.015
SCALE_WET, SCALE_DRY = 3.0, 2.0
SCALE_DAMP, SCALE_ROOM, OFFSET_ROOM = 0.4, 0.28, 0.7
ALLPASS_FEEDBACK = 0.5
FLUSH = 1e-30  # magnitudes below this are stored as 0 (about -600 dB)

_KERNEL: list[object] = []


def tunings(sample_rate: float, spread: bool) -> tuple[np.ndarray, np.ndarray]:
    """Comb and all-pass lengths in samples for a tank (`spread`: Freeverb's right tank)."""
    scale = sample_rate / TUNING_RATE
    extra = STEREO_SPREAD if spread else 0
    combs = np.array([max(1, round((n + extra) * scale)) for n in COMB_TUNING], dtype=np.int64)
    allpasses = np.array(
        [max(1, round((n + extra) * scale)) for n in ALLPASS_TUNING], dtype=np.int64
    )
    return combs, allpasses


def zero_state(comb_lengths: np.ndarray, allpass_lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Fresh state for tanks with these lengths ((rows, 8) and (rows, 4) int64)."""
    rows = comb_lengths.shape[0]
    return {
        "comb": np.zeros((rows, 8, int(comb_lengths.max()))),
        "comb_pos": np.zeros((rows, 8), dtype=np.int64),
        "store": np.zeros((rows, 8)),
        "allpass": np.zeros((rows, 4, int(allpass_lengths.max()))),
        "allpass_pos": np.zeros((rows, 4), dtype=np.int64),
    }


def _kernel():
    if _KERNEL:
        return _KERNEL[0]
    from numba import njit

    @njit(cache=True)
    def tank(x, comb_len, ap_len, comb, comb_pos, store, ap, ap_pos, feedback, damp, flush):
        rows, n = x.shape
        out = np.empty((rows, n))
        for r in range(rows):
            for i in range(n):
                acc = 0.0
                for k in range(8):
                    p = comb_pos[r, k]
                    value = comb[r, k, p]
                    s = value * (1.0 - damp) + store[r, k] * damp
                    if abs(s) < flush:
                        s = 0.0
                    store[r, k] = s
                    w = x[r, i] + s * feedback
                    if abs(w) < flush:
                        w = 0.0
                    comb[r, k, p] = w
                    comb_pos[r, k] = p + 1 if p + 1 < comb_len[r, k] else 0
                    acc += value
                for k in range(4):
                    p = ap_pos[r, k]
                    buffered = ap[r, k, p]
                    w = acc + buffered * 0.5
                    if abs(w) < flush:
                        w = 0.0
                    ap[r, k, p] = w
                    ap_pos[r, k] = p + 1 if p + 1 < ap_len[r, k] else 0
                    acc = buffered - acc
                out[r, i] = acc
        return out

    _KERNEL.append(tank)
    return tank


def freeverb_tanks(
    x: np.ndarray,
    comb_lengths: np.ndarray,
    allpass_lengths: np.ndarray,
    state: dict[str, np.ndarray],
    feedback: float,
    damp: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run Freeverb tanks (combs in parallel, then all-passes in series), one per row.

    Args:
        x: (rows, time) float64 tank input (already scaled by FIXED_GAIN).
        comb_lengths, allpass_lengths: (rows, 8) and (rows, 4) int64 from `tunings`.
        state: from `zero_state` or a previous call (not modified).
        feedback: comb feedback (room_size * 0.28 + 0.7).
        damp: comb low-pass memory coefficient (damping * 0.4).

    Returns:
        (tank output (rows, time), new state).
    """
    new = {key: value.copy() for key, value in state.items()}
    out = _kernel()(
        np.ascontiguousarray(x, dtype=np.float64),
        comb_lengths,
        allpass_lengths,
        new["comb"],
        new["comb_pos"],
        new["store"],
        new["allpass"],
        new["allpass_pos"],
        float(feedback),
        float(damp),
        FLUSH,
    )
    return out, new
