"""Compiled (numba) recursions for the auditory stages: many different filters at once, exactly.

scipy.signal.sosfilt and lfilter run ONE filter over the rows of an array; the auditory stages
run many different filters on each row (31 gammatone channels on an audio channel, up to 12
modulation filters on each auditory channel). These kernels loop over time once per input row
and update every filter of that row at each sample, so the filters' recursions overlap in the
CPU pipeline. Arithmetic is float64 with float64 state whatever the output dtype; the recursions
are the textbook ones (complex one-pole y = g x + p y[n-1]; direct form II transposed sections,
as scipy's sosfilt), so results equal scipy's float64 filtering to rounding.

Every kernel takes explicit state arrays that it updates in place (exact streaming) and a row
range [r0, r1) so `run_rows` can spread rows over threads (numba `nogil`). Compiled code is
cached on disk (numba `cache=True`), so only the first call on a machine pays the compile time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numba import njit

_POOL: ThreadPoolExecutor | None = None
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


def _threads() -> int:
    import torch

    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def run_rows(kernel: Callable[..., None], n_rows: int, *args: Any, cost: int = 0) -> None:
    """Call ``kernel(*args, r0, r1)`` over [0, n_rows), split across threads when worth it.

    Args:
        kernel: a compiled kernel whose last two arguments are the row range.
        n_rows: number of rows.
        cost: samples x filters of the whole call; below 200k one thread does it all.
    """
    global _POOL
    threads = min(_threads(), n_rows)
    if threads <= 1 or cost < 200_000:
        kernel(*args, 0, n_rows)
        return
    if _POOL is None or _POOL._max_workers < threads:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="audiofx-kernel")
    bounds = np.linspace(0, n_rows, threads + 1).astype(np.int64)
    futures = [
        _POOL.submit(kernel, *args, int(bounds[i]), int(bounds[i + 1]))
        for i in range(threads)
        if bounds[i + 1] > bounds[i]
    ]
    for future in futures:
        future.result()


@njit(**_JIT)
def _cascade4(x, out, n, b, pr, pi, g, sr, si, envelope):
    """Order-4 case of `complex_cascade` with the state in registers (about 2x faster)."""
    a0, a1, a2, a3 = sr[0], sr[1], sr[2], sr[3]
    c0, c1, c2, c3 = si[0], si[1], si[2], si[3]
    for t in range(x.shape[1]):
        u = g * x[n, t]
        r = pr * a0 - pi * c0 + u
        c0 = pr * c0 + pi * a0
        a0 = r
        r = pr * a1 - pi * c1 + g * a0
        c1 = pr * c1 + pi * a1 + g * c0
        a1 = r
        r = pr * a2 - pi * c2 + g * a1
        c2 = pr * c2 + pi * a2 + g * c1
        a2 = r
        r = pr * a3 - pi * c3 + g * a2
        c3 = pr * c3 + pi * a3 + g * c2
        a3 = r
        if envelope:
            out[n, b, t] = 2.0 * math.sqrt(a3 * a3 + c3 * c3)
        else:
            out[n, b, t] = 2.0 * a3
    sr[0], sr[1], sr[2], sr[3] = a0, a1, a2, a3
    si[0], si[1], si[2], si[3] = c0, c1, c2, c3


@njit(**_JIT)
def complex_cascade(x, out, pole_re, pole_im, gain, state_re, state_im, envelope, r0, r1):
    """Gammatone bank: each row of x through B cascades of `order` equal complex one-poles.

    x (N, T); out (N, B, T); pole/gain (B,); state (N, B, order). Rows r index (n, b) pairs
    as r = n * B + b. Output 2 Re(y) (envelope False) or 2 |y| (envelope True).
    """
    n_bands = out.shape[1]
    n_time = x.shape[1]
    order = state_re.shape[2]
    for r in range(r0, r1):
        n = r // n_bands
        b = r - n * n_bands
        pr = pole_re[b]
        pi = pole_im[b]
        g = gain[b]
        sr = state_re[n, b].copy()
        si = state_im[n, b].copy()
        if order == 4:
            _cascade4(x, out, n, b, pr, pi, g, sr, si, envelope)
        else:
            for t in range(n_time):
                ur = g * x[n, t]
                ui = 0.0
                for k in range(order):
                    yr = pr * sr[k] - pi * si[k] + ur
                    yi = pr * si[k] + pi * sr[k] + ui
                    sr[k] = yr
                    si[k] = yi
                    ur = g * yr
                    ui = g * yi
                yr = sr[order - 1]
                yi = si[order - 1]
                if envelope:
                    out[n, b, t] = 2.0 * math.sqrt(yr * yr + yi * yi)
                else:
                    out[n, b, t] = 2.0 * yr
        state_re[n, b] = sr
        state_im[n, b] = si


@njit(**_JIT)
def _prefilter_lowpass(x, r, out, pre, lp_sos, state, v_buf):
    """Row r: the optional first-order pre-filter into v_buf; the 2.5 Hz low-pass (if
    lp_sos[0] != 0) into out[r, 0]. state[:4] = [pre x1, pre y1, lp z1, lp z2]."""
    p0, p1, z1, z2 = state[0], state[1], state[2], state[3]
    lb0, lb1, lb2, la1, la2 = lp_sos[0], lp_sos[1], lp_sos[2], lp_sos[4], lp_sos[5]
    use_pre = pre[0] != 0.0
    use_lp = lb0 != 0.0
    for t in range(x.shape[1]):
        v = x[r, t]
        if use_pre:
            y = pre[0] * v + pre[1] * p0 + pre[2] * p1
            p0 = v
            p1 = y
            v = y
        v_buf[t] = v
        if use_lp:
            y = lb0 * v + z1
            z1 = lb1 * v - la1 * y + z2
            z2 = lb2 * v - la2 * y
            out[r, 0, t] = y
    state[0], state[1], state[2], state[3] = p0, p1, z1, z2


@njit(**_JIT)
def efilt_bank(
    x, out, counts, slots, gain, pole_re, pole_im, mode, post, lp_sos, pre, state, r0, r1
):
    """AMT modfilterbank per row: [150 Hz pre-filter] -> 2.5 Hz low-pass (slot 0) and
    complex one-pole band-passes (slots 1..counts[r]-1); zero beyond.

    x (R, T); out (R, M, T); counts (R,); slots (R, M) filter index per slot; gain, pole,
    mode, post (F,): band filter g, p, output mode (0: post * Re y, 1: post * |y|);
    lp_sos (6,) the low-pass section; pre (3,) [b0, b1, -a1] of the first-order pre-filter,
    unused when pre[0] == 0. state (R, 4 + 2 M): [pre x1, pre y1, lp z1, lp z2, re/im pairs].
    Band filters run two at a time over the whole row with their state in registers.
    """
    n_time = x.shape[1]
    n_slots = out.shape[1]
    v_buf = np.empty(n_time)
    for r in range(r0, r1):
        count = counts[r]
        _prefilter_lowpass(x, r, out, pre, lp_sos, state[r], v_buf)
        m = 1
        while m < count:
            two = m + 1 < count
            f = slots[r, m]
            h = slots[r, m + 1] if two else f
            ar, ai, ga, pa, ma = pole_re[f], pole_im[f], gain[f], post[f], mode[f]
            br, bi, gb, pb, mb = pole_re[h], pole_im[h], gain[h], post[h], mode[h]
            j = 4 + 2 * m
            sr, si = state[r, j], state[r, j + 1]
            tr, ti = (state[r, j + 2], state[r, j + 3]) if two else (0.0, 0.0)
            for t in range(n_time):
                v = v_buf[t]
                nr = ar * sr - ai * si + ga * v
                si = ar * si + ai * sr
                sr = nr
                nr = br * tr - bi * ti + gb * v
                ti = br * ti + bi * tr
                tr = nr
                out[r, m, t] = pa * (sr if ma == 0 else math.sqrt(sr * sr + si * si))
                if two:
                    out[r, m + 1, t] = pb * (tr if mb == 0 else math.sqrt(tr * tr + ti * ti))
            state[r, j], state[r, j + 1] = sr, si
            if two:
                state[r, j + 2], state[r, j + 3] = tr, ti
            m += 2
        for m in range(count, n_slots):
            for t in range(n_time):
                out[r, m, t] = 0.0


@njit(**_JIT)
def sos_bank(x, out, counts, slots, sos, pre, state, r0, r1):
    """Each row of x through its own list of real SOS cascades (a per-row sosfilt).

    x (R, T); out (R, M, T); counts (R,); slots (R, M) filter index per output slot;
    sos (F, S, 6) with a0 == 1 (pad short cascades with [1, 0, 0, 1, 0, 0]); pre (3,) as in
    `efilt_bank`; state (R, 2 + 2 M S): [pre x1, pre y1, then z1, z2 per slot and section].
    Sections are direct form II transposed, as scipy.signal.sosfilt; each section runs over
    the whole row (in place in out), two filters at a time.
    """
    n_time = x.shape[1]
    n_slots = out.shape[1]
    n_sec = sos.shape[1]
    v_buf = np.empty(n_time)
    no_lp = np.zeros(6)
    pre_state = np.zeros(4)
    for r in range(r0, r1):
        count = counts[r]
        pre_state[0], pre_state[1] = state[r, 0], state[r, 1]
        _prefilter_lowpass(x, r, out, pre, no_lp, pre_state, v_buf)
        state[r, 0], state[r, 1] = pre_state[0], pre_state[1]
        m = 0
        while m < count:
            two = m + 1 < count
            f = slots[r, m]
            h = slots[r, m + 1] if two else f
            for k in range(n_sec):
                a0, a1, a2, a4, a5 = (
                    sos[f, k, 0],
                    sos[f, k, 1],
                    sos[f, k, 2],
                    sos[f, k, 4],
                    sos[f, k, 5],
                )
                c0, c1, c2, c4, c5 = (
                    sos[h, k, 0],
                    sos[h, k, 1],
                    sos[h, k, 2],
                    sos[h, k, 4],
                    sos[h, k, 5],
                )
                j = 2 + 2 * (m * n_sec + k)
                i = 2 + 2 * ((m + 1) * n_sec + k)
                z1, z2 = state[r, j], state[r, j + 1]
                w1, w2 = (state[r, i], state[r, i + 1]) if two else (0.0, 0.0)
                for t in range(n_time):
                    u = v_buf[t] if k == 0 else out[r, m, t]
                    y = a0 * u + z1
                    z1 = a1 * u - a4 * y + z2
                    z2 = a2 * u - a5 * y
                    out[r, m, t] = y
                    if two:
                        u = v_buf[t] if k == 0 else out[r, m + 1, t]
                        y = c0 * u + w1
                        w1 = c1 * u - c4 * y + w2
                        w2 = c2 * u - c5 * y
                        out[r, m + 1, t] = y
                state[r, j], state[r, j + 1] = z1, z2
                if two:
                    state[r, i], state[r, i + 1] = w1, w2
            m += 2
        for m in range(count, n_slots):
            for t in range(n_time):
                out[r, m, t] = 0.0


@njit(**_JIT)
def adapt_loops(
    x, out, gain, a1, b0, factor, expfac, offset, limited, minlvl, corr, mult, state, r0, r1
):
    """AMT adaptation loops (comp_adaptloop): gain * x (R, T) -> out (R, T); state (R, L)."""
    n_time = x.shape[1]
    n_loops = a1.shape[0]
    for r in range(r0, r1):
        s = state[r].copy()
        for t in range(n_time):
            v = gain * x[r, t]
            if v < minlvl:
                v = minlvl
            for k in range(n_loops):
                v = v / s[k]
                if limited and v > 1.0:
                    v = factor[k] / (1.0 + math.exp(expfac[k] * (v - 1.0))) - offset[k]
                s[k] = a1[k] * s[k] + b0[k] * v
            out[r, t] = (v - corr) * mult
        state[r] = s
