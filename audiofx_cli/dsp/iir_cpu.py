"""CPU engine for section cascades: SIMD lanes over channels and time segments, on all cores.

Rows (channels) are packed `LANES` to a SIMD vector and run through the compiled kernel of
`audiofx_cli.dsp.iir_kernels` (float64 recursion, every section in registers). Groups of lanes
run on a thread pool (the kernel call releases the GIL).

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from audiofx_cli import memory
from audiofx_cli.dsp import iir_kernels
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


def _run_group(
    coef: np.ndarray,
    lanes: list[_Lane],
    x: np.ndarray,
    y: np.ndarray,
    x_override: np.ndarray | None = None,
) -> None:
    """Run up to LANES lanes of equal length through the cascade (in this thread)."""
    n = lanes[0].stop - lanes[0].start
    n_sections = coef.shape[0]
    state = np.zeros((n_sections, 2, LANES))
    for i, lane in enumerate(lanes):
        state[:, :, i] = lane.state
    xs = [x_override if x_override is not None else x[ln.row, ln.start : ln.stop] for ln in lanes]
    ys = [y[ln.row, ln.start : ln.stop] for ln in lanes]
    pad = LANES - len(lanes)
    if pad:
        xs += [xs[0]] * pad
        ys += [np.empty(n, dtype=y.dtype) for _ in range(pad)]
    in_dt, out_dt = str(xs[0].dtype), str(y.dtype)
    if n_sections <= iir_kernels.MAX_UNROLL:
        kernel = iir_kernels.get_kernel(n_sections, LANES, in_dt, out_dt)
        kernel(coef.ctypes.data, state.ctypes.data, _ptrs(xs), _ptrs(ys), n)
    else:
        _run_long(coef, state, xs, ys, n)
    for i, lane in enumerate(lanes):
        lane.state[:] = state[:, :, i]


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


def _run_lanes(coef: np.ndarray, lanes: list[_Lane], x, y, threads: int, x_override=None) -> None:
    by_length: dict[int, list[_Lane]] = {}
    for lane in lanes:
        by_length.setdefault(lane.stop - lane.start, []).append(lane)
    groups = [
        group[i : i + LANES] for group in by_length.values() for i in range(0, len(group), LANES)
    ]
    if threads <= 1 or len(groups) == 1:
        for group in groups:
            _run_group(coef, group, x, y, x_override)
        return
    futures = [_executor().submit(_run_group, coef, g, x, y, x_override) for g in groups]
    for future in futures:
        future.result()


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
    coef = np.ascontiguousarray(
        np.stack([sos[:, 0], sos[:, 1], sos[:, 2], -sos[:, 4], -sos[:, 5]], 1)
    )
    if y is None:
        y = memory.empty_array(x.shape, x.dtype)  # recycled when big (see audiofx_cli.memory)
        if threads > 1 and y.size >= 1 << 16:  # fault the pages in here: page faults taken by
            y.reshape(-1)[:: 4096 // y.itemsize] = 0  # the worker threads serialise (4x slower)
    zf = np.zeros((n_sections, rows, 2)) if zi is None else np.array(zi, dtype=np.float64)
    if frames == 0 or rows == 0:
        return y, zf
    if segments is None:
        segments = segments_for(sos, rows, frames, threads)
    seg_len = math.ceil(frames / segments)
    bounds = [(s, min(s + seg_len, frames)) for s in range(0, frames, seg_len)]
    lanes = [
        _Lane(r, a, b, zf[:, r, :].copy() if k == 0 else np.zeros((n_sections, 2)))
        for r in range(rows)
        for k, (a, b) in enumerate(bounds)
    ]
    _run_lanes(coef, lanes, x, y, threads)
    if len(bounds) == 1:
        for lane in lanes:
            zf[:, lane.row, :] = lane.state
        return y, zf
    _fix_segments(sos, coef, lanes, len(bounds), y, threads)
    for r in range(rows):
        zf[:, r, :] = lanes[r * len(bounds) + len(bounds) - 1].state
    return y, zf


def _fix_segments(
    sos: np.ndarray, coef: np.ndarray, lanes: list[_Lane], per_row: int, y, threads: int
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
    _run_lanes(coef, starts, None, response, threads, x_override=zeros)
    for ln in starts:
        row, start = ln.origin
        seg = y[row, start : start + ln.stop]
        seg[:] = seg + response[ln.row, : ln.stop]
