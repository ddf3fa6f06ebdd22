"""Freeverb (Jezar at Dreampoint, public domain): 8 parallel low-pass-feedback combs and 4
series all-passes per tank, with the classic tunings (at 44.1 kHz) scaled to the sample rate.

The tanks run in a compiled kernel (`audiofx_cli.dsp.reverb_kernel`: the 8 combs of a tank are
the lanes of one vector) over float64 state that it updates in place: each tank's comb ring,
all-pass lines, low-pass memories and positions. Values below `FLUSH` in magnitude are stored
as exact zeros (Freeverb's `undenormalise`): silence after sound decays to exact zeros
instead of denormal numbers, which would slow the CPU down by orders of magnitude.
"""

from __future__ import annotations

import ctypes

import numpy as np

from audiofx_cli.dsp import reverb_kernel as rk

COMB_TUNING = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNING = (556, 441, 341, 225)
STEREO_SPREAD = 23
TUNING_RATE = 44100.0
FIXED_GAIN = 0.015
SCALE_WET, SCALE_DRY = 3.0, 2.0
SCALE_DAMP, SCALE_ROOM, OFFSET_ROOM = 0.4, 0.28, 0.7
ALLPASS_FEEDBACK = 0.5
FLUSH = 1e-30  # magnitudes below this are stored as 0 (about -600 dB)


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
    """Fresh state for tanks with these lengths ((tanks, 8) and (tanks, 4) int64).

    Returns arrays the kernel updates in place: "comb" (tanks, R, 8), comb k's line spread
    over a ring of R rows (a power of two above the longest comb) so that row r holds what
    every comb reads at the time of row r; "allpass" (tanks, 4, longest all-pass); "store"
    (tanks, 8) the combs' low-pass memories; "words" the kernel's tank records
    (`reverb_kernel.TANK_LAYOUT`), holding the positions and the arrays' addresses.
    """
    tanks = comb_lengths.shape[0]
    rows = 1 << int(comb_lengths.max()).bit_length()  # > the longest comb
    comb = np.zeros((tanks, rows, rk.COMBS))
    allpass = np.zeros((tanks, rk.ALLPASSES, int(allpass_lengths.max())))
    words = np.zeros((tanks, rk.TANK_WORDS), dtype=np.int64)
    at = rk.TANK_LAYOUT
    for t in range(tanks):
        words[t, at["ring"]] = comb[t].ctypes.data
        words[t, at["ring_rows"]] = rows
        words[t, at["cap"]] = min(rk.MAX_BLOCK, int(comb_lengths[t].min()))
        words[t, at["comb_len"] : at["comb_len"] + rk.COMBS] = comb_lengths[t]
        for k in range(rk.ALLPASSES):
            words[t, at["ap_base"] + k] = allpass[t, k].ctypes.data
        words[t, at["ap_len"] : at["ap_len"] + rk.ALLPASSES] = allpass_lengths[t]
    store = words.view(np.float64)[:, at["store"] : at["store"] + rk.COMBS]
    return {"comb": comb, "allpass": allpass, "store": store, "words": words}


def freeverb(
    x: np.ndarray,
    y: np.ndarray,
    state: dict[str, np.ndarray],
    params: np.ndarray,
    stereo: bool,
) -> None:
    """Run Freeverb over rows of x into y (same shape and dtype, float32 or float64).

    Args:
        x: (rows, time) input, C-contiguous. Stereo: rows are (left, right) pairs, each pair
            feeding both tanks of its two rows (left + right) * gain; mono: one tank per row.
        y: (rows, time) output: wet1 own tank + wet2 other tank + dry x (mono: no wet2 term).
        state: from `zero_state` for these rows (tank r = row r), updated in place.
        params: float64 `reverb_kernel.PARAMS` (feedback, damp, 1 - damp, wet1, wet2, dry,
            input gain, flush).
    """
    rows, n = x.shape
    if n == 0 or rows == 0:
        return
    kernel = rk.get_kernel(stereo, str(x.dtype), str(y.dtype))
    group = 2 if stereo else 1
    words = state["words"]
    pointers = ctypes.c_void_p * group
    for r in range(0, rows, group):
        kernel(
            params.ctypes.data,
            words[r].ctypes.data,
            pointers(*[x[r + k].ctypes.data for k in range(group)]),
            pointers(*[y[r + k].ctypes.data for k in range(group)]),
            n,
        )
