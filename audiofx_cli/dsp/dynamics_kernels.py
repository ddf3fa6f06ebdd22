"""Compiled per-sample loops of the dynamics stages (numba): compressor, gate, limiter.

Each kernel reads the chunk as it is (float32 or float64, shape (batch, channels, frames)),
computes in float64 and writes the output chunk (or, for autograd, the gain) directly: no
signal-sized temporaries, constant work per sample whatever the length. Signals are processed
in blocks of BLOCK frames, each block in passes: the passes without a recursion (levels in dB,
gains from dB; `dsp.approx`'s branch-free log2 / exp2) are plain loops that LLVM vectorises,
the recursions (level smoothing, gain smoothing, hold counters, the limiter's running minimum)
are short scalar loops over the block. One signal is a batch item (channels linked: one gain
for all channels) or one channel (unlinked).

State arrays are updated in place; `audiofx_cli.dsp.dynamics` copies them first, so the
functions it exposes keep the "state in, new state out" contract. Every recursion carries its
state exactly, so any chunking gives the same samples as the whole signal.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from audiofx_cli.dsp.approx import DB_PER_LOG2, LOG2_PER_DB, exp2_fast, log2_fast

BLOCK = 256  # frames per pass: the block's work arrays stay in L1
AMPLITUDE_FLOOR = 1e-20  # -400 dB: levels of digital silence stay finite
POWER_FLOOR = 1e-40
RESUM_EVERY = 1 << 16  # the limiter's running sum is recomputed at multiples of this position
_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}


# ------------------------------------------------------------------------------- block passes
@njit(**_JIT)
def _levels_db(x, b, c0, c1, t0, n, rms, rms_coef, ms, out):  # pragma: no cover - compiled
    """Detector level (dBFS) of frames t0 .. t0 + n of rows c0 .. c1 - 1 of batch item b into
    out[:n]: peak = max |x| over the rows, rms = one-pole mean square of the rows' mean power
    (state `ms`, returned)."""
    rows = c1 - c0
    if rms:
        for k in range(n):
            out[k] = 0.0
        for c in range(c0, c1):
            src = x[b, c, t0 : t0 + n]
            for k in range(n):
                v = np.float64(src[k])
                out[k] += v * v
        scale = 1.0 / rows
        for k in range(n):
            ms = rms_coef * ms + (1.0 - rms_coef) * (out[k] * scale)
            out[k] = ms
        for k in range(n):
            out[k] = 0.5 * DB_PER_LOG2 * log2_fast(max(out[k], POWER_FLOOR))
        return ms
    _peak(x, b, c0, c1, t0, n, out)
    for k in range(n):
        out[k] = DB_PER_LOG2 * log2_fast(max(out[k], AMPLITUDE_FLOOR))
    return ms


@njit(**_JIT)
def _peak(x, b, c0, c1, t0, n, out):  # pragma: no cover - compiled
    """out[:n] = max |x| over rows c0 .. c1 - 1 of frames t0 .. t0 + n of batch item b."""
    src = x[b, c0, t0 : t0 + n]
    for k in range(n):
        out[k] = abs(np.float64(src[k]))
    for c in range(c0 + 1, c1):
        src = x[b, c, t0 : t0 + n]
        for k in range(n):
            out[k] = max(out[k], abs(np.float64(src[k])))


@njit(**_JIT)
def _gains_from_db(gain_db, n):  # pragma: no cover - compiled
    """gain_db[:n] (dB) -> linear factors, in place."""
    for k in range(n):
        gain_db[k] = exp2_fast(LOG2_PER_DB * gain_db[k])


@njit(**_JIT)
def _apply(x, y, gains, sig, apply, b, c0, c1, t0, n, gain):  # pragma: no cover - compiled
    """y = x * gain on the block's rows, or (autograd) store the gain of signal `sig`."""
    if apply:
        for c in range(c0, c1):
            src, dst = x[b, c, t0 : t0 + n], y[b, c, t0 : t0 + n]
            for k in range(n):
                dst[k] = src[k] * gain[k]
    else:
        for k in range(n):
            gains[sig, t0 + k] = gain[k]


# ------------------------------------------------------------------------------- compressor
@njit(**_JIT)
def compressor(x, y, gains, apply, state, link, rms, rms_coef, threshold_db, knee_db, slope,
               makeup_db, attack_coef, release_coef):  # fmt: skip  # pragma: no cover
    """Feed-forward compressor (`audiofx_cli.dsp.dynamics.compressor`); state (signals, 3):
    mean square, held reduction, smoothed reduction."""
    batch, channels, frames = x.shape
    per_item = 1 if link else channels
    work = np.empty(BLOCK)
    for b in range(batch):
        for j in range(per_item):
            sig = b * per_item + j
            c0, c1 = (0, channels) if link else (j, j + 1)
            ms, held, smooth = state[sig, 0], state[sig, 1], state[sig, 2]
            for t0 in range(0, frames, BLOCK):
                n = min(BLOCK, frames - t0)
                ms = _levels_db(x, b, c0, c1, t0, n, rms, rms_coef, ms, work)
                if knee_db > 0.0:  # quadratic soft knee (Giannoulis et al. eq. 4), branch-free
                    half, inv = 0.5 * knee_db, 0.5 / knee_db
                    for k in range(n):
                        over = work[k] - threshold_db
                        a = min(max(over + half, 0.0), knee_db)
                        work[k] = slope * (a * a * inv + max(over - half, 0.0))
                else:
                    for k in range(n):
                        work[k] = slope * max(work[k] - threshold_db, 0.0)
                for k in range(n):  # smooth decoupled peak detector (eq. 17)
                    target = work[k]
                    held = max(target, release_coef * held + (1.0 - release_coef) * target)
                    smooth = attack_coef * smooth + (1.0 - attack_coef) * held
                    work[k] = makeup_db - smooth
                _gains_from_db(work, n)
                _apply(x, y, gains, sig, apply, b, c0, c1, t0, n, work)
            state[sig, 0], state[sig, 1], state[sig, 2] = ms, held, smooth


# ------------------------------------------------------------------------------- gate
@njit(**_JIT)
def gate(x, y, gains, apply, state, since, link, rms, rms_coef, threshold_db, range_db,
         expander_slope, hold, attack_coef, release_coef):  # fmt: skip  # pragma: no cover
    """Gate / downward expander (`audiofx_cli.dsp.dynamics.gate`); state (signals, 2): mean
    square, attenuation (dB); since (signals,) int64: samples since the level was last at or
    above the threshold (capped at hold + 1: closed). expander_slope < 0: a plain gate."""
    batch, channels, frames = x.shape
    per_item = 1 if link else channels
    work = np.empty(BLOCK)
    for b in range(batch):
        for j in range(per_item):
            sig = b * per_item + j
            c0, c1 = (0, channels) if link else (j, j + 1)
            ms, atten, count = state[sig, 0], state[sig, 1], since[sig]
            for t0 in range(0, frames, BLOCK):
                n = min(BLOCK, frames - t0)
                ms = _levels_db(x, b, c0, c1, t0, n, rms, rms_coef, ms, work)
                for k in range(n):
                    level = work[k]
                    count = 0 if level >= threshold_db else min(count + 1, hold + 1)
                    if count <= hold:
                        target = 0.0
                    elif expander_slope < 0.0:
                        target = range_db
                    else:
                        target = min(max(threshold_db - level, 0.0) * expander_slope, range_db)
                    # both candidates first: the comparison and the multiply-adds overlap
                    closing = release_coef * atten + (1.0 - release_coef) * target
                    opening = attack_coef * atten + (1.0 - attack_coef) * target
                    atten = closing if target > atten else opening
                    work[k] = -atten
                _gains_from_db(work, n)
                _apply(x, y, gains, sig, apply, b, c0, c1, t0, n, work)
            state[sig, 0], state[sig, 1], since[sig] = ms, atten, count


# ------------------------------------------------------------------------------- limiter
@njit(**_JIT)
def _running_min(work, held, n, pos0, width, sig, queue_val, queue_pos, head, size):  # fmt: skip
    """held[k] = min(work[k - width + 1 .. k]) for the block's n samples (positions pos0 ..),
    with the monotone queue of earlier blocks (capacity a power of two); returns (head, size).
    """  # pragma: no cover - compiled
    mask = queue_val.shape[1] - 1
    for k in range(n):
        pos = pos0 + k
        g = work[k]
        if size > 0 and queue_pos[sig, head] <= pos - width:  # left the window
            head = (head + 1) & mask
            size -= 1
        while size > 0 and queue_val[sig, (head + size - 1) & mask] >= g:
            size -= 1
        queue_val[sig, (head + size) & mask] = g
        queue_pos[sig, (head + size) & mask] = pos
        size += 1
        held[k] = queue_val[sig, head]
    return head, size


@njit(**_JIT)
def _delayed_out(src, gain, dst, clamp):  # pragma: no cover - compiled
    """dst = src * gain clamped to +-clamp (1-D views from index 0: a vectorised loop; an
    offset index would make numba check it for negative wrap-around on every access)."""
    for i in range(dst.shape[0]):
        dst[i] = min(max(np.float64(src[i]) * gain[i], -clamp), clamp)


@njit(**_JIT)
def _limiter_signal(x, y, gains, apply, b, c0, c1, sig, lag, ceiling, clamp, release_coef,
                    position, skip, required, queue_val, queue_pos, queue_at, sums, window,
                    released, x_ring):  # fmt: skip  # pragma: no cover
    """One signal of `limiter` (see there); updates its state rows. The look-ahead histories
    (required gains, the averaging window) sit in front of the block in one buffer, moved
    down after each block; the delayed input is read from the chunk or, before its start,
    from x_ring (the last `lag` inputs, oldest first)."""
    frames = x.shape[2]
    width = lag + 1
    inv_width = 1.0 / width
    work, held = np.empty(BLOCK), np.empty(BLOCK)
    req = np.empty(lag + BLOCK)  # [last lag required gains | this block's]
    avg = np.empty(width + BLOCK)  # [the averaging window | this block's gains]
    req[:lag] = required[sig]
    avg[:width] = window[sig]
    head, size = queue_at[sig, 0], queue_at[sig, 1]
    total, rel = sums[sig], released[sig]
    for t0 in range(0, frames, BLOCK):
        n = min(BLOCK, frames - t0)
        _peak(x, b, c0, c1, t0, n, work)
        for k in range(n):  # required gain
            work[k] = min(1.0, ceiling / work[k])  # |x| = 0: +inf -> 1
            req[lag + k] = work[k]
        head, size = _running_min(
            work, held, n, position + t0, width, sig, queue_val, queue_pos, head, size
        )
        for k in range(n):  # held reduction in dB (>= 0)
            held[k] = -DB_PER_LOG2 * log2_fast(held[k])
        for k in range(n):  # release: instant rise, one-pole fall
            rel = max(held[k], release_coef * rel + (1.0 - release_coef) * held[k])
            avg[width + k] = -rel
        _gains_from_db(avg[width:], n)
        for k in range(n):  # mean over the window (a running sum), then min with g[n - lag]
            total += avg[width + k] - avg[k]
            if ((position + t0 + k) & (RESUM_EVERY - 1)) == 0:  # no drift, at fixed positions
                total = 0.0
                for i in range(k + 1, k + 1 + width):
                    total += avg[i]
            held[k] = min(total * inv_width, req[k])
        first = max(0, skip - t0)  # outputs before the look-ahead is filled do not exist
        if not apply:
            for k in range(first, n):
                gains[sig, t0 + k - skip] = held[k]
        else:
            split = min(max(lag - t0, first), n)  # k < split: the input is in x_ring
            for c in range(c0, c1):
                _delayed_out(x_ring[b, c, t0 + first : t0 + split], held[first:split],
                             y[b, c, t0 + first - skip : t0 + split - skip], clamp)
                _delayed_out(x[b, c, t0 + split - lag : t0 + n - lag], held[split:n],
                             y[b, c, t0 + split - skip : t0 + n - skip], clamp)  # fmt: skip
        req[:lag] = req[n : n + lag]
        avg[:width] = avg[n : n + width]
    for c in range(c0, c1):  # the last lag inputs, oldest first
        for i in range(lag):
            at = frames - lag + i
            x_ring[b, c, i] = x[b, c, at] if at >= 0 else x_ring[b, c, i + frames]
    required[sig], window[sig] = req[:lag], avg[:width]
    queue_at[sig, 0], queue_at[sig, 1] = head, size
    sums[sig], released[sig] = total, rel


@njit(**_JIT)
def limiter(x, y, gains, apply, link, lag, ceiling, clamp, release_coef, position, skip,
            required, queue_val, queue_pos, queue_at, sums, window, released,
            x_ring):  # fmt: skip  # pragma: no cover
    """Look-ahead limiter (`audiofx_cli.dsp.dynamics.limiter`) over a chunk whose first
    sample is stream position `position`; the first `skip` outputs (the latency not yet
    filled) are not written."""
    batch, channels = x.shape[0], x.shape[1]
    per_item = 1 if link else channels
    for b in range(batch):
        for j in range(per_item):
            sig = b * per_item + j
            c0, c1 = (0, channels) if link else (j, j + 1)
            _limiter_signal(x, y, gains, apply, b, c0, c1, sig, lag, ceiling, clamp,
                            release_coef, position, skip, required, queue_val, queue_pos,
                            queue_at, sums, window, released, x_ring)  # fmt: skip
