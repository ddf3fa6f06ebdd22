"""CPU engine for section cascades: SIMD lanes over channels and time segments, on all cores.

Rows (channels) are packed `LANES` to a SIMD vector and run through the compiled kernel of
`audiofx_cli.dsp.iir_kernels` (float64 recursion, every section in registers), with sections
normalised to b0 = 1 where that makes the kernel cheaper (`plan_for`; the state keeps scipy's
meaning outside the kernel). Groups of lanes run on libgomp's threads (`audiofx_cli.dsp.omp`)
or, where that is not available, on a Python thread pool (the kernel call releases the GIL).

Few long rows (mono, stereo) would leave lanes and cores idle, so each row is cut into time
segments that run as lanes of their own, all but the first from a zero state. The exact result
is then restored segment by segment (time-parallel method): with z the true state at a
segment's start, the segment's output gains the zero-input response C A^k z (computed by the
same kernel on zeros, for as long as it has not died out: `statespace.decay_length`), and its
final state gains A^len z. Both terms are exact linear algebra in float64, so the output equals
the sequential recursion to rounding.
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from audiofx_cli import memory
from audiofx_cli.dsp import iir_kernels, omp
from audiofx_cli.dsp.statespace import decay_length, state_power

LANES = iir_kernels.LANES
MIN_SEGMENT = 1 << 14  # do not cut rows into segments shorter than this
BLOCK = 8192  # time block for cascades longer than one kernel
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="audiofx")
    return _pool


def _forget_pool() -> None:  # a forked child (process pools) has none of the parent's threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


@dataclass
class _Lane:
    row: int
    start: int
    stop: int
    state: np.ndarray  # (n_sections, 2) float64, updated in place
    origin: tuple[int, int] = (0, 0)  # for fix-up lanes: (row, start) in the output


def _ptrs(arrays: list[np.ndarray]) -> ctypes.Array:
    return (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])


@dataclass(frozen=True)
class _Plan:
    """How the kernel runs one cascade (built once per `sos`, see `plan_for`).

    Attributes:
        coef: kernel coefficients, rows of b0, b1, b2, -a1, -a2 (and a trailing gain row when
            normalised).
        kinds: section kinds of a normalised kernel (`iir_kernels.kernel_ir`), "" for plain.
        scale: (n_sections, 1, 1): kernel state = scipy state / scale (the gain of the
            sections up to this one, pulled out by normalising); ones when plain.
    """

    coef: np.ndarray
    kinds: str
    scale: np.ndarray

    @property
    def n_sections(self) -> int:
        return self.scale.shape[0]

    def kernel(self, in_dtype: np.dtype, out_dtype: np.dtype):  # type: ignore[no-untyped-def]
        return iir_kernels.get_kernel(
            self.n_sections, LANES, _DTYPE_NAMES[in_dtype], _DTYPE_NAMES[out_dtype], 4, self.kinds
        )


_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_plans: dict[bytes, _Plan] = {}
_GAIN_RANGE = (1e-150, 1e150)  # normalise only while the pulled-out gains stay far from
# float64 under- and overflow


def plan_for(sos: np.ndarray) -> _Plan:
    """The kernel plan for a (n_sections, 6) float64 cascade (cached by value).

    Sections are normalised to b0 = 1 when every b0 is non-zero and the cascade fits one
    kernel: the gains multiply the output once, and numerators [1, b1, 1] (Butterworth and
    Chebyshev high- and low-pass sections, exactly so in scipy's designs) or [1, b1, 0] cost
    fewer multiply-adds (1.2x on the iir bench cascade, 1.7x on the 15-section api one,
    measured per thread on the 2-core machine of docs/performance.md). Same results to
    rounding: the state is scaled on the way in and out.
    """
    key = sos.tobytes()
    plan = _plans.get(key)
    if plan is not None:
        return plan
    n = sos.shape[0]
    plain = np.stack([sos[:, 0], sos[:, 1], sos[:, 2], -sos[:, 4], -sos[:, 5]], 1)
    b0 = sos[:, 0]
    with np.errstate(all="ignore"):
        gains = np.cumprod(b0)
    lo, hi = _GAIN_RANGE
    if (
        n == 0
        or n > iir_kernels.MAX_UNROLL
        or not np.all(np.isfinite(gains))
        or not np.all((np.abs(gains) >= lo) & (np.abs(gains) <= hi))
    ):
        plan = _Plan(np.ascontiguousarray(plain), "", np.ones((n, 1, 1)))
    else:
        c1, c2 = sos[:, 1] / b0, sos[:, 2] / b0
        kinds = "".join(
            "u" if c == 1.0 else ("g" if c != 0.0 else ("f" if a2 == 0.0 else "z"))
            for c, a2 in zip(c2, sos[:, 5], strict=True)
        )
        coef = np.zeros((n + 1, 5))
        coef[:n] = np.stack([np.ones(n), c1, c2, -sos[:, 4], -sos[:, 5]], 1)
        coef[n, 0] = gains[-1]
        plan = _Plan(coef, kinds, gains.reshape(n, 1, 1).copy())
    if len(_plans) > 64:
        _plans.clear()
    _plans[key] = plan
    return plan


def _group_job(
    plan: _Plan,
    lanes: list[_Lane],
    x: np.ndarray,
    y: np.ndarray,
    x_override: np.ndarray | None = None,
) -> tuple[_Job, Callable[[], None]]:
    """(job, finish) for up to LANES lanes of equal length: run the job (see `dispatch`),
    then `finish()` writes the lanes' final states back."""
    n = lanes[0].stop - lanes[0].start
    state = np.zeros((plan.n_sections, 2, LANES))
    for i, lane in enumerate(lanes):
        state[:, :, i] = lane.state
    state /= plan.scale
    xs = [x_override if x_override is not None else x[ln.row, ln.start : ln.stop] for ln in lanes]
    ys = [y[ln.row, ln.start : ln.stop] for ln in lanes]
    pad = LANES - len(lanes)
    if pad:
        xs += [xs[0]] * pad
        ys += [np.empty(n, dtype=y.dtype) for _ in range(pad)]

    def finish() -> None:
        final = state * plan.scale
        for i, lane in enumerate(lanes):
            lane.state[:] = final[:, :, i]

    if plan.n_sections > iir_kernels.MAX_UNROLL:
        return (lambda: _run_long(plan.coef, state, xs, ys, n)), finish
    job = (plan.kernel(xs[0].dtype, y.dtype), plan.coef.ctypes.data, state.ctypes.data)
    return (*job, _ptrs(xs), _ptrs(ys), n, (state, xs, ys)), finish


def _run_long(
    coef: np.ndarray, state: np.ndarray, xs: list[np.ndarray], ys: list[np.ndarray], n: int
) -> None:
    """Cascades longer than MAX_UNROLL: kernels of MAX_UNROLL sections, block by block, with
    the intermediate signal kept in float64."""
    step = iir_kernels.MAX_UNROLL
    parts = [(s, min(s + step, coef.shape[0])) for s in range(0, coef.shape[0], step)]
    scratch = np.empty((LANES, BLOCK))
    states = [np.ascontiguousarray(state[a:b]) for a, b in parts]
    coefs = [np.ascontiguousarray(coef[a:b]) for a, b in parts]
    for t0 in range(0, n, BLOCK):
        m = min(BLOCK, n - t0)
        rows = [scratch[i, :m] for i in range(LANES)]
        for k, ((a, b), c, st) in enumerate(zip(parts, coefs, states, strict=True)):
            src = [v[t0 : t0 + m] for v in xs] if k == 0 else rows
            dst = [v[t0 : t0 + m] for v in ys] if k == len(parts) - 1 else rows
            kernel = iir_kernels.get_kernel(b - a, LANES, str(src[0].dtype), str(dst[0].dtype))
            kernel(c.ctypes.data, st.ctypes.data, _ptrs(src), _ptrs(dst), m)
    for (a, b), st in zip(parts, states, strict=True):
        state[a:b] = st


def _run_lanes(plan: _Plan, lanes: list[_Lane], x, y, threads: int, x_override=None) -> None:
    by_length: dict[int, list[_Lane]] = {}
    for lane in lanes:
        by_length.setdefault(lane.stop - lane.start, []).append(lane)
    groups = [
        group[i : i + LANES] for group in by_length.values() for i in range(0, len(group), LANES)
    ]
    jobs = [_group_job(plan, group, x, y, x_override) for group in groups]
    dispatch([job for job, _ in jobs], threads)
    for _, finish in jobs:
        finish()


# A job: a kernel call (kernel, coef address, state address, x row pointers, y row pointers,
# frames, arrays to keep alive) or any Python callable (cascades longer than one kernel).
_Job = tuple | Callable[[], None]


def _call(job: _Job) -> None:
    if callable(job):
        job()
    else:
        job[0](*job[1:6])


def dispatch(jobs: list[_Job], threads: int) -> None:
    """Run the jobs, up to `threads` at a time. Kernel calls go to OpenMP threads
    (`audiofx_cli.dsp.omp`: about 5 us to dispatch, against about 140 us through a Python
    pool on the 2-core KVM machine); otherwise the pool runs all but the first and the calling
    thread the first (it is awake: waking a pool thread costs more)."""
    if threads <= 1 or len(jobs) == 1:
        for job in jobs:
            _call(job)
        return
    if all(isinstance(job, tuple) for job in jobs) and omp.run_calls(
        [job[:6] for job in jobs], threads
    ):
        return
    futures = [_executor().submit(_call, job) for job in jobs[1:]]
    try:
        _call(jobs[0])
    finally:
        for future in futures:
            future.result()


_PTRS = ctypes.c_void_p * LANES


def _rows_job(plan: _Plan, x: np.ndarray, y: np.ndarray, zf: np.ndarray, r0: int):
    """(job, state) for rows r0 .. r0 + LANES - 1 of x (those that exist): after the job has
    run (see `dispatch`), `state` holds their final state as the kernel keeps it (n_sections,
    2, LANES). Cheap on purpose (it runs once per chunk and lane group): row pointers by
    address arithmetic, no per-row numpy views."""
    r1 = min(r0 + LANES, x.shape[0])
    state = np.zeros((plan.n_sections, 2, LANES))
    state[:, :, : r1 - r0] = zf[:, r0:r1, :].transpose(0, 2, 1) / plan.scale
    n = x.shape[1]
    x_at, y_at = x.ctypes.data, y.ctypes.data
    xs = [x_at + r * x.strides[0] for r in range(r0, r1)]
    ys = [y_at + r * y.strides[0] for r in range(r0, r1)]
    spare = np.empty((LANES - (r1 - r0), n), dtype=y.dtype) if r1 - r0 < LANES else None
    if spare is not None:  # unused lanes read row r0 again and write to scratch
        xs += [xs[0]] * len(spare)
        ys += [spare.ctypes.data + k * spare.strides[0] for k in range(len(spare))]
    if plan.n_sections > iir_kernels.MAX_UNROLL:
        xv = [x[r] for r in range(r0, r1)] + [x[r0]] * (LANES - (r1 - r0))
        yv = [y[r] for r in range(r0, r1)] + ([] if spare is None else list(spare))
        return (lambda: _run_long(plan.coef, state, xv, yv, n)), state
    kernel = plan.kernel(x.dtype, y.dtype)
    job = (kernel, plan.coef.ctypes.data, state.ctypes.data, _PTRS(*xs), _PTRS(*ys), n, spare)
    return job, state


def _run_rows(plan: _Plan, x: np.ndarray, y: np.ndarray, zf: np.ndarray, threads: int) -> None:
    """Every row of x from its state in zf (updated), LANES rows per kernel call."""
    starts = range(0, x.shape[0], LANES)
    jobs = [_rows_job(plan, x, y, zf, r0) for r0 in starts]
    dispatch([job for job, _ in jobs], threads)
    for r0, (_, state) in zip(starts, jobs, strict=True):
        r1 = min(r0 + LANES, x.shape[0])
        zf[:, r0:r1, :] = (state[:, :, : r1 - r0] * plan.scale).transpose(0, 2, 1)


def segments_for(sos: np.ndarray, rows: int, frames: int, threads: int) -> int:
    """How many time segments per row make the pass fastest (1 = none).

    Cost model in lane-group passes: the main pass takes rounds(rows * s) * frames / s, the
    fix-up rounds(rows * (s - 1)) * min(decay, frames / s), where rounds(n) is how many times
    the threads each run a group of LANES lanes.
    """
    wanted = math.ceil(LANES * max(1, threads) / max(1, rows))
    if wanted <= 1 or frames < 2 * MIN_SEGMENT:
        return 1
    decay = decay_length(sos) or frames

    def rounds(lanes: int) -> int:
        return math.ceil(math.ceil(lanes / LANES) / max(1, threads))

    def cost(s: int) -> float:
        seg = frames / s
        return rounds(rows * s) * seg + (rounds(rows * (s - 1)) * min(decay, seg) if s > 1 else 0)

    options = range(1, min(wanted, frames // MIN_SEGMENT) + 1)
    return min(options, key=lambda s: (cost(s), s))


def sosfilt_lanes(
    sos: np.ndarray,
    x: np.ndarray,
    zi: np.ndarray | None,
    y: np.ndarray | None = None,
    threads: int = 1,
    segments: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Filter the rows of `x` with a section cascade; returns (y, zf).

    Args:
        sos: (n_sections, 6) float64, a0 == 1.
        x: (rows, frames) float32 or float64, C-contiguous.
        zi: (n_sections, rows, 2) float64 initial state (scipy's meaning) or None for zeros.
        y: output array like x (may be x itself), allocated when None.
        threads: worker threads (lane groups run concurrently).
        segments: time segments per row; None chooses (see `segments_for`); 1 = sequential.

    Returns:
        y (x's dtype) and zf (n_sections, rows, 2) float64.
    """
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    n_sections = sos.shape[0]
    rows, frames = x.shape
    plan = plan_for(sos)
    if y is None:
        y = memory.empty_array(x.shape, x.dtype)  # recycled when big (see audiofx_cli.memory)
        if threads > 1 and y.size >= 1 << 16:  # fault the pages in here: page faults taken by
            y.reshape(-1)[:: 4096 // y.itemsize] = 0  # the worker threads serialise (4x slower)
    zf = np.zeros((n_sections, rows, 2)) if zi is None else np.array(zi, dtype=np.float64)
    if frames == 0 or rows == 0:
        return y, zf
    if segments is None:
        segments = segments_for(sos, rows, frames, threads)
    if segments == 1:  # rows straight through: the per-chunk path of streaming, kept lean
        _run_rows(plan, x, y, zf, threads)
        return y, zf
    seg_len = math.ceil(frames / segments)
    bounds = [(s, min(s + seg_len, frames)) for s in range(0, frames, seg_len)]
    lanes = [
        _Lane(r, a, b, zf[:, r, :].copy() if k == 0 else np.zeros((n_sections, 2)))
        for r in range(rows)
        for k, (a, b) in enumerate(bounds)
    ]
    _run_lanes(plan, lanes, x, y, threads)
    if len(bounds) == 1:
        for lane in lanes:
            zf[:, lane.row, :] = lane.state
        return y, zf
    _fix_segments(sos, plan, lanes, len(bounds), y, threads)
    for r in range(rows):
        zf[:, r, :] = lanes[r * len(bounds) + len(bounds) - 1].state
    return y, zf


def _fix_segments(
    sos: np.ndarray, plan: _Plan, lanes: list[_Lane], per_row: int, y, threads: int
) -> None:
    """Turn zero-start segments into the exact continuation of the ones before them."""
    decay = decay_length(sos) or max(ln.stop - ln.start for ln in lanes)
    starts: list[_Lane] = []
    for i, lane in enumerate(lanes):
        if i % per_row == 0:
            continue
        z0 = lanes[i - 1].state.reshape(-1)  # true final state of the previous segment
        length = lane.stop - lane.start
        lane.state += (state_power(sos, length) @ z0).reshape(lane.state.shape)
        n = min(decay, length)
        starts.append(_Lane(len(starts), 0, n, z0.reshape(-1, 2).copy(), (lane.row, lane.start)))
    # zero-input responses of the starting states, computed in float64 then added to y
    width = max(ln.stop for ln in starts)
    zeros = np.zeros(width)
    response = np.zeros((len(starts), width))
    _run_lanes(plan, starts, None, response, threads, x_override=zeros)
    for ln in starts:
        row, start = ln.origin
        seg = y[row, start : start + ln.stop]
        seg[:] = seg + response[ln.row, : ln.stop]
