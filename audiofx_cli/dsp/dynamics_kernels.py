"""Compiled per-sample loops of the dynamics stages: compressor, gate, limiter (LLVM IR built
with `audiofx_cli.dsp.ir_loops`, compiled and cached by `audiofx_cli.dsp.jit`).

One call processes one signal: `rows` rows of `frames` samples (the linked channels of a batch
item, or one channel), read as they are (float32 or float64) and written directly (or, for
autograd, the gain per frame); arithmetic in float64. The signal goes in blocks of BLOCK
frames, each block in passes: passes without a recursion (peak or power over the rows, dB via
`dsp.approx`'s branch-free log2 / exp2, the static curve, applying the gain) are plain loops
that LLVM vectorises; the recursions (mean square, gain smoothing, hold counter, the limiter's
running minimum and running sum) are short scalar loops over the block. No signal-sized
temporaries; state is carried exactly, so any chunking gives the same samples.

Kernel arguments (all kernels, `lane_args`): per signal ("lane") x, y (row 0 of the signal;
y is unused without `apply`) and gains (the signal's gain row, used without `apply`), then
rows, x_stride, y_stride (elements between rows), frames, then the kernel's own (see each
builder). The compressor and the gate take LANES signals per call (channels unlinked, or batch
items) and run their recursions side by side, so the processor overlaps two dependency chains
(unlinked stereo, streamed in 10 s chunks: compressor 20 -> 15.5 ms, gate 24.6 ->
20.6 ms per 60 s, measured). Variants (dtype, detector, knee, lanes,
...) are compiled on first use and cached.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from audiofx_cli.dsp import approx
from audiofx_cli.dsp.ir_loops import ELEMENT, F64, I64, PTR, Kernel, Value

BLOCK = 256  # frames per pass: the block's work arrays stay in L1
AMPLITUDE_FLOOR = 1e-20  # -400 dB: levels of digital silence stay finite
POWER_FLOOR = 1e-40
RESUM_EVERY = 1 << 16  # the limiter's running sum is recomputed at multiples of this position
COMMON_ARGS = [("x", PTR), ("y", PTR), ("gains", PTR), ("rows", I64), ("x_stride", I64),
               ("y_stride", I64), ("frames", I64)]  # fmt: skip
LANES = 2  # signals per compressor / gate call: their recursions overlap in the processor


def lane_args(lanes: int) -> list[tuple[str, Any]]:
    """The common arguments of a kernel over `lanes` signals: x, y, gains per lane (x0, x1,
    y0, ...), then rows, x_stride, y_stride, frames (shared: the signals are alike)."""
    per = [(f"{name}{j}", PTR) for name in ("x", "y", "gains") for j in range(lanes)]
    return [*per, *COMMON_ARGS[3:]]


def _param(k: Kernel, index: int) -> Value:
    return k.load("params", k.i64(index))


# ------------------------------------------------------------------------------- block passes
def _peak(k: Kernel, ty: Any, x: str, t0: Value, n: Value, out: Value) -> None:
    """out[:n] = max |x| over the rows, frames t0 .. t0 + n."""
    with k.loop(n) as i:
        k.store(k.fabs(k.load(x, k.add(t0, i), ty)), out, i)
    with k.loop(k.arg("rows"), start=k.i64(1)) as c:
        base = k.add(k.mul(c, k.arg("x_stride")), t0)
        with k.loop(n) as i:
            value = k.fabs(k.load(x, k.add(base, i), ty))
            k.store(k.fmax(k.load(out, i), value), out, i)


def _levels_db(k: Kernel, ty: Any, rms: bool, t0: Value, n: Value, lanes: list[Any]) -> None:
    """Per lane (x name, mean-square var, out array): out[:n] = detector level in dBFS, the
    peak over the rows, or the one-pole mean square (coefficient params[0]) of the rows' mean
    power, the lanes' recursions side by side in one loop."""
    if not rms:
        for x, _, out in lanes:
            _peak(k, ty, x, t0, n, out)
            with k.loop(n) as i:
                level = k.fmax(k.load(out, i), k.f64(AMPLITUDE_FLOOR))
                k.store(k.fmul(k.f64(approx.DB_PER_LOG2), approx.log2(k, level)), out, i)
        return
    scale = k.fdiv(k.f64(1.0), k.b.sitofp(k.arg("rows"), F64))
    for x, _, out in lanes:
        with k.loop(n) as i:
            k.store(k.f64(0.0), out, i)
        with k.loop(k.arg("rows")) as c:
            base = k.add(k.mul(c, k.arg("x_stride")), t0)
            with k.loop(n) as i:
                v = k.load(x, k.add(base, i), ty)
                k.store(k.mad(v, v, k.load(out, i)), out, i)
    coef = _param(k, 0)
    with k.loop(n) as i:
        for _, ms, out in lanes:
            ms.set(k.blend(coef, ms.get(), k.fmul(k.load(out, i), scale)))
            k.store(ms.get(), out, i)
    for _, _, out in lanes:
        with k.loop(n) as i:
            power = k.fmax(k.load(out, i), k.f64(POWER_FLOOR))
            k.store(k.fmul(k.f64(0.5 * approx.DB_PER_LOG2), approx.log2(k, power)), out, i)


def _gains_from_db(k: Kernel, n: Value, work: Value) -> None:
    """work[:n] (dB) -> linear factors, in place."""
    with k.loop(n) as i:
        k.store(approx.exp2(k, k.fmul(k.f64(approx.LOG2_PER_DB), k.load(work, i))), work, i)


def _apply(k: Kernel, ty: Any, apply: bool, j: int, t0: Value, n: Value, gain: Value) -> None:
    """Lane j: y = x * gain over the rows, or store the gain (autograd)."""
    if not apply:
        with k.loop(n) as i:
            k.store(k.load(gain, i), f"gains{j}", k.add(t0, i))
        return
    with k.loop(k.arg("rows")) as c:
        xb = k.add(k.mul(c, k.arg("x_stride")), t0)
        yb = k.add(k.mul(c, k.arg("y_stride")), t0)
        with k.loop(n) as i:
            value = k.fmul(k.load(f"x{j}", k.add(xb, i), ty), k.load(gain, i))
            k.store(value, f"y{j}", k.add(yb, i), ty)


def _blocks(k: Kernel):  # type: ignore[no-untyped-def]
    """for t0 in range(0, frames, BLOCK): yields (t0, n) inside the loop."""
    frames = k.arg("frames")

    class _Blocks:
        def __enter__(self) -> tuple[Value, Value]:
            self._loop = k.loop(frames, step=BLOCK)
            t0 = self._loop.__enter__()
            return t0, k.imin(k.i64(BLOCK), k.sub(frames, t0))

        def __exit__(self, *exc: object) -> None:
            self._loop.__exit__(*exc)

    return _Blocks()


def _state_vars(k: Kernel, lanes: int, count: int, name: str = "state") -> list[list[Any]]:
    """Per lane, `count` doubles of its state array (state0, state1, ...) as locals."""
    return [[k.var(k.load(f"{name}{j}", k.i64(i))) for i in range(count)] for j in range(lanes)]


def _store_vars(k: Kernel, states: list[list[Any]], name: str = "state") -> None:
    for j, lane in enumerate(states):
        for i, var in enumerate(lane):
            k.store(var.get(), f"{name}{j}", k.i64(i))


# ------------------------------------------------------------------------------- compressor
@cache
def compressor(dtype: str, rms: bool, knee: bool, apply: bool, lanes: int = 1) -> Any:
    """Feed-forward compressor (`audiofx_cli.dsp.dynamics.compressor`) over `lanes` signals.
    Own arguments: state per lane (3 doubles: mean square, held and smoothed reduction),
    params (rms_coef, threshold_db, knee_db, slope = 1 - 1/ratio, makeup_db, attack_coef,
    release_coef)."""
    states = [(f"state{j}", PTR) for j in range(lanes)]
    k = Kernel("compressor", [*lane_args(lanes), *states, ("params", PTR)])
    ty = ELEMENT[dtype]
    threshold, knee_db, slope = _param(k, 1), _param(k, 2), _param(k, 3)
    makeup, attack, release = _param(k, 4), _param(k, 5), _param(k, 6)
    var = _state_vars(k, lanes, 3)  # ms, held, smooth per lane
    work = [k.array(BLOCK) for _ in range(lanes)]
    with _blocks(k) as (t0, n):
        _levels_db(k, ty, rms, t0, n, [(f"x{j}", var[j][0], work[j]) for j in range(lanes)])
        for w in work:
            with k.loop(n) as i:  # static curve: the reduction target, branch-free
                over = k.fsub(k.load(w, i), threshold)
                if knee:  # quadratic soft knee (Giannoulis et al. eq. 4)
                    half = k.fmul(k.f64(0.5), knee_db)
                    a = k.fmin(k.fmax(k.fadd(over, half), k.f64(0.0)), knee_db)
                    quad = k.fdiv(k.fmul(a, a), k.fmul(k.f64(2.0), knee_db))
                    q = k.fadd(quad, k.fmax(k.fsub(over, half), k.f64(0.0)))
                else:
                    q = k.fmax(over, k.f64(0.0))
                k.store(k.fmul(slope, q), w, i)
        with k.loop(n) as i:  # smooth decoupled peak detector (eq. 17), lanes side by side
            for (_, held, smooth), w in zip(var, work, strict=True):
                target = k.load(w, i)
                held.set(k.fmax(target, k.blend(release, held.get(), target)))
                smooth.set(k.blend(attack, smooth.get(), held.get()))
                k.store(k.fsub(makeup, smooth.get()), w, i)
        for j, w in enumerate(work):
            _gains_from_db(k, n, w)
            _apply(k, ty, apply, j, t0, n, w)
    _store_vars(k, var)
    return k.compile()


# ------------------------------------------------------------------------------- gate
@cache
def gate(dtype: str, rms: bool, expander: bool, apply: bool, lanes: int = 1) -> Any:
    """Gate / downward expander (`audiofx_cli.dsp.dynamics.gate`) over `lanes` signals. Own
    arguments per lane: state (2 doubles: mean square, attenuation dB), since (1 int64:
    samples since the level was last at or above the threshold, capped at hold + 1); then
    params (rms_coef, threshold_db, range_db, ratio - 1, hold, attack_coef, release_coef)."""
    per_lane = [(f"{name}{j}", PTR) for name in ("state", "since") for j in range(lanes)]
    k = Kernel("gate", [*lane_args(lanes), *per_lane, ("params", PTR)])
    ty = ELEMENT[dtype]
    threshold, range_db, slope = _param(k, 1), _param(k, 2), _param(k, 3)
    hold = k.b.fptosi(_param(k, 4), I64)
    attack, release = _param(k, 5), _param(k, 6)
    var = _state_vars(k, lanes, 2)  # ms, attenuation per lane
    counts = [k.var(k.load(f"since{j}", k.i64(0), I64), I64) for j in range(lanes)]
    work = [k.array(BLOCK) for _ in range(lanes)]
    with _blocks(k) as (t0, n):
        _levels_db(k, ty, rms, t0, n, [(f"x{j}", var[j][0], work[j]) for j in range(lanes)])
        with k.loop(n) as i:  # hold counter and attenuation smoothing, lanes side by side
            for (_, atten), count, w in zip(var, counts, work, strict=True):
                level = k.load(w, i)
                above = k.fcmp(">=", level, threshold)
                counted = k.imin(k.add(count.get(), k.i64(1)), k.add(hold, k.i64(1)))
                count.set(k.select(above, k.i64(0), counted))
                if expander:
                    below = k.fmul(k.fmax(k.fsub(threshold, level), k.f64(0.0)), slope)
                    closed_target = k.fmin(below, range_db)
                else:
                    closed_target = range_db
                target = k.select(k.icmp(">", count.get(), hold), closed_target, k.f64(0.0))
                # both candidates first: the comparison and the multiply-adds overlap
                closing = k.blend(release, atten.get(), target)
                opening = k.blend(attack, atten.get(), target)
                atten.set(k.select(k.fcmp(">", target, atten.get()), closing, opening))
                k.store(k.fsub(k.f64(0.0), atten.get()), w, i)
        for j, w in enumerate(work):
            _gains_from_db(k, n, w)
            _apply(k, ty, apply, j, t0, n, w)
    _store_vars(k, var)
    for j, count in enumerate(counts):
        k.store(count.get(), f"since{j}", k.i64(0), I64)
    return k.compile()


# ------------------------------------------------------------------------------- limiter
LIMITER_ARGS = [("skip", I64), ("position", I64), ("lag", I64), ("params", PTR),
                ("required", PTR), ("window", PTR), ("segment", PTR), ("suffix", PTR),
                ("offset", PTR), ("sums", PTR), ("x_ring", PTR), ("scratch", PTR)]  # fmt: skip


def _running_min(k: Kernel, work: Value, held: Value, n: Value, width: Value, offset: Any,
                 prefix: Any) -> None:  # fmt: skip
    """held[i] = min of the gains of the last `width` positions (van Herk / Gil-Werman): the
    stream is cut into segments of `width` samples from position 0; `prefix` is the running
    minimum since the current segment's start, `suffix[j]` the minimum of the previous
    segment from its j-th sample on (suffix[width] = 1, neutral: gains are <= 1), so the window
    ending at the current sample, offset o in its segment, is min(suffix[o + 1], prefix). A
    completed segment's suffix minima are computed once (a backward pass). About three
    operations a sample, the only recursion a one-cycle minimum; exact (minima only)."""
    seg, suffix = k.arg("segment"), k.arg("suffix")
    done = k.var(k.i64(0), I64)

    def more() -> Value:
        return k.icmp("<", done.get(), n)

    with k.while_(more):
        run = k.imin(k.sub(n, done.get()), k.sub(width, offset.get()))
        with k.loop(run) as i:
            o = k.add(offset.get(), i)
            g = k.load(work, k.add(done.get(), i))
            prefix.set(k.fmin(prefix.get(), g))
            k.store(g, seg, o)
            window_min = k.fmin(k.load(suffix, k.add(o, k.i64(1))), prefix.get())
            k.store(window_min, held, k.add(done.get(), i))
        done.set(k.add(done.get(), run))
        offset.set(k.add(offset.get(), run))
        with k.when(k.icmp("==", offset.get(), width)):  # the segment is complete
            tail = k.var(k.f64(1.0))
            with k.loop(width) as i:
                j = k.sub(k.sub(width, k.i64(1)), i)
                tail.set(k.fmin(tail.get(), k.load(seg, j)))
                k.store(tail.get(), suffix, j)
            offset.set(k.i64(0))
            prefix.set(k.f64(1.0))


@cache
def limiter(dtype: str, apply: bool) -> Any:
    """Look-ahead limiter (`audiofx_cli.dsp.dynamics.limiter`) over a chunk whose first sample
    is stream position `position`; the first `skip` outputs (the latency not yet filled) are
    not written. Own arguments: skip, position, lag, params (ceiling, clamp, release_coef),
    required (lag doubles: the last required gains, oldest first), window (lag + 1 doubles:
    the averaging window, oldest first), segment (lag + 1 doubles) and suffix (lag + 2) and
    offset (1 int64) of the running minimum (`_running_min`), sums (3 doubles: running sum,
    release state, the running minimum's prefix), x_ring (rows x lag in x's dtype: the last
    inputs, oldest first), scratch (2 lag + 2 BLOCK + 1 doubles)."""
    k = Kernel("limiter", [*lane_args(1), *LIMITER_ARGS])
    ty = ELEMENT[dtype]
    ceiling, clamp, release = _param(k, 0), _param(k, 1), _param(k, 2)
    lag, skip, position = k.arg("lag"), k.arg("skip"), k.arg("position")
    width = k.add(lag, k.i64(1))
    inv_width = k.fdiv(k.f64(1.0), k.b.sitofp(width, F64))
    req = k.arg("scratch")  # [last lag required gains | this block's]
    avg = k.at(req, k.add(lag, k.i64(BLOCK)))  # [the averaging window | this block's gains]
    work, held = k.array(BLOCK), k.array(BLOCK)
    with k.loop(lag) as i:
        k.store(k.load("required", i), req, i)
    with k.loop(width) as i:
        k.store(k.load("window", i), avg, i)
    offset = k.var(k.load("offset", k.i64(0), I64), I64)
    total, rel = k.var(k.load("sums", k.i64(0))), k.var(k.load("sums", k.i64(1)))
    prefix = k.var(k.load("sums", k.i64(2)))
    with _blocks(k) as (t0, n):
        _peak(k, ty, "x0", t0, n, work)
        with k.loop(n) as i:  # required gain; |x| = 0: +inf -> 1
            g = k.fmin(k.f64(1.0), k.fdiv(ceiling, k.load(work, i)))
            k.store(g, work, i)
            k.store(g, req, k.add(lag, i))
        _running_min(k, work, held, n, width, offset, prefix)
        with k.loop(n) as i:  # held reduction in dB (>= 0)
            reduction = k.fmul(k.f64(-approx.DB_PER_LOG2), approx.log2(k, k.load(held, i)))
            k.store(reduction, held, i)
        with k.loop(n) as i:  # release: instant rise, one-pole fall
            h = k.load(held, i)
            rel.set(k.fmax(h, k.blend(release, rel.get(), h)))
            k.store(k.fsub(k.f64(0.0), rel.get()), avg, k.add(width, i))
        _gains_from_db(k, n, k.at(avg, width))
        with k.loop(n) as i:  # mean over the window (running sum), then min with g[n - lag]
            total.set(k.fadd(total.get(), k.fsub(k.load(avg, k.add(width, i)), k.load(avg, i))))
            pos = k.add(k.add(position, t0), i)
            resum = k.icmp("==", k.b.and_(pos, k.i64(RESUM_EVERY - 1)), k.i64(0))
            with k.when(resum):  # no drift over long streams, at fixed positions
                total.set(k.f64(0.0))
                with k.loop(k.add(k.add(i, width), k.i64(1)), start=k.add(i, k.i64(1))) as j:
                    total.set(k.fadd(total.get(), k.load(avg, j)))
            k.store(k.fmin(k.fmul(total.get(), inv_width), k.load(req, i)), held, i)
        first = k.imax(k.i64(0), k.sub(skip, t0))  # outputs before the look-ahead: none
        _limiter_out(k, ty, apply, t0, n, first, held, clamp)
        with k.loop(lag) as i:  # keep the last lag required gains and width gains
            k.store(k.load(req, k.add(n, i)), req, i)
        with k.loop(width) as i:
            k.store(k.load(avg, k.add(n, i)), avg, i)
    _keep_last_inputs(k, ty)
    with k.loop(lag) as i:
        k.store(k.load(req, i), "required", i)
    with k.loop(width) as i:
        k.store(k.load(avg, i), "window", i)
    k.store(offset.get(), "offset", k.i64(0), I64)
    k.store(total.get(), "sums", k.i64(0))
    k.store(rel.get(), "sums", k.i64(1))
    k.store(prefix.get(), "sums", k.i64(2))
    return k.compile()


def _limiter_out(k: Kernel, ty: Any, apply: bool, t0: Value, n: Value, first: Value,
                 gain: Value, clamp: Value) -> None:  # fmt: skip
    """Outputs of the block's frames first .. n - 1: the input `lag` frames earlier (from
    x_ring before the chunk's start) times the gain, clamped; or the gains (autograd)."""
    lag, skip = k.arg("lag"), k.arg("skip")
    if not apply:
        with k.loop(n, start=first) as i:
            k.store(k.load(gain, i), "gains0", k.sub(k.add(t0, i), skip))
        return
    split = k.imin(k.imax(k.sub(lag, t0), first), n)  # i < split: the input is in x_ring
    neg = k.fsub(k.f64(0.0), clamp)
    with k.loop(k.arg("rows")) as c:
        ring = k.mul(c, lag)
        xb = k.sub(k.add(k.mul(c, k.arg("x_stride")), t0), lag)
        yb = k.sub(k.add(k.mul(c, k.arg("y_stride")), t0), skip)
        for start, stop, src, base in ((first, split, "x_ring", k.add(ring, t0)),
                                       (split, n, "x0", xb)):  # fmt: skip
            with k.loop(stop, start=start) as i:
                value = k.fmul(k.load(src, k.add(base, i), ty), k.load(gain, i))
                k.store(k.fmin(k.fmax(value, neg), clamp), "y0", k.add(yb, i), ty)


def _keep_last_inputs(k: Kernel, ty: Any) -> None:
    """x_ring = the last lag inputs of [x_ring | chunk], oldest first (in place: ascending
    reads are never behind the writes)."""
    lag, frames = k.arg("lag"), k.arg("frames")
    with k.loop(k.arg("rows")) as c:
        ring = k.mul(c, lag)
        xb = k.mul(c, k.arg("x_stride"))
        with k.loop(lag) as i:
            at = k.add(k.sub(frames, lag), i)
            from_chunk = k.icmp(">=", at, k.i64(0))
            with k.b.if_else(from_chunk) as (then, otherwise):
                with then:
                    k.store(k.load("x0", k.add(xb, at), ty), "x_ring", k.add(ring, i), ty)
                with otherwise:
                    old = k.load("x_ring", k.add(ring, k.add(i, frames)), ty)
                    k.store(old, "x_ring", k.add(ring, i), ty)
