"""Measure one backend on one case: timed runs between syncs, the peak memory they add, the
error of the output; and the calibration run the budgets are planned from.

- `time_runs`: warm-up runs (untimed), then timed runs of `Prepared.run()`, each between two
  `sync()` calls (CUDA synchronised); with a deadline, it stops after the run that passes it
  (at least one timed run is always done).
- `measure`: `prepare` (untimed), `time_runs`, peak memory of the timed runs (see
  `audiofx_cli.bench.machine.PeakMemory`) and the error of the last output against the
  reference; fills a `Row`.
- `calibrate`: `prepare`, one run to warm up, one run measured for time and peak memory:
  an `Estimate` per frame of the (short) calibration signal.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from audiofx_cli.bench.base import Backend, Case
from audiofx_cli.bench.budget import Estimate
from audiofx_cli.bench.check import reference, relative_error
from audiofx_cli.bench.machine import MB, PeakMemory


def release_pool() -> None:
    """Drop the recycled output buffers of `audiofx_cli.memory` (if it was ever imported)."""
    pool = sys.modules.get("audiofx_cli.memory")
    if pool is not None:
        pool.release()


def time_runs(
    prepared: Any,
    repeat: int,
    warmup: int,
    tick: Callable[[], None],
    warm: Callable[[], None] | None = None,
    deadline: float = math.inf,
) -> tuple[list[float], Any]:
    """Warm-up runs, `warm()`, then up to `repeat` timed runs (no new one once
    `time.perf_counter()` is past `deadline`); returns (seconds per run, last output)."""
    for _ in range(warmup):
        prepared.sync()
        out = prepared.run()
        prepared.sync()
        del out
        tick()
    if warm is not None:
        warm()
    times: list[float] = []
    out = None
    for _ in range(repeat):
        if times and time.perf_counter() > deadline:
            break
        out = None  # free the previous output before the next run allocates its own
        prepared.sync()
        start = time.perf_counter()
        out = prepared.run()
        prepared.sync()
        times.append(time.perf_counter() - start)
        tick()
    return times, out


def _memory_window(memory: PeakMemory) -> Callable[[], None]:
    def warm() -> None:  # the memory window covers the timed runs only
        release_pool()  # so the first timed run allocates its output inside the window
        gc.collect()  # garbage freed during the runs would hide their own allocations
        memory.start()

    return warm


def sliced_case(case: Case, ref: np.ndarray, frames: int) -> tuple[Case, np.ndarray]:
    """The case on the signal's first `frames` and the reference for it: the full reference's
    first frames for the causal filters of the iir and fir kinds (their output up to a frame
    depends only on the input up to it), else a reference computed on the slice."""
    if frames >= case.x.shape[-1]:
        return case, ref
    short = dataclasses.replace(case, x=np.ascontiguousarray(case.x[:, :frames]))
    if case.chain is None and case.kind in ("iir", "fir"):
        return short, ref[:, :frames]
    return short, reference(short)


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def calibrate(backend: Backend, case: Case, device: str, ref: np.ndarray) -> Estimate:
    """One warm-up run and one measured run on `case` (a short signal), and the check of its
    output against `ref`: per-frame figures.

    Raises:
        Exception: whatever the backend raises.
    """
    case.device = device
    start = time.perf_counter()
    prepared = backend.prepare(case)
    prepare_s = time.perf_counter() - start
    memory = PeakMemory(device)
    times, out = time_runs(prepared, 1, 1, lambda: None, _memory_window(memory))
    peak_bytes = memory.peak_mb() * MB
    start = time.perf_counter()
    relative_error(out, ref)
    check_s = time.perf_counter() - start
    del out, prepared
    frames = max(case.x.shape[-1], 1)
    return Estimate(times[0] / frames, peak_bytes / frames, prepare_s, check_s / frames)


def measure(
    backend: Backend,
    case: Case,
    device: str,
    runs: tuple[int, int],
    ref: np.ndarray,
    row: Any,
    tick: Callable[[], None],
    tolerance: float,
    deadline: float = math.inf,
) -> str | None:
    """Fill `row` with timings, memory and error; returns a failure message or None.

    `runs` is (timed repeats, warm-ups).
    """
    try:
        case.device = device
        prepared = backend.prepare(case)
        memory = PeakMemory(device)
        repeat, warmup = runs
        times, out = time_runs(prepared, repeat, warmup, tick, _memory_window(memory), deadline)
        row.peak_mem_mb = memory.peak_mb()
        row.mem_method = memory.method
        error, problem = relative_error(out, ref)
        del out, prepared
    except Exception as exc:  # a backend's failure is reported in its row, not fatal
        return failure_text(exc)
    row.repeats_done, row.warmups_done = len(times), warmup
    row.median_s = statistics.median(times)
    row.min_s, row.max_s = min(times), max(times)
    row.msamples_per_s = row.samples / row.median_s / 1e6 if row.median_s > 0 else math.inf
    if backend.name == "io-only":
        row.note = "no DSP: decode + encode only"
        return None
    row.rel_error = error
    if problem or not math.isfinite(error) or error > tolerance:
        row.flag = "WRONG"
        row.note = problem or f"error {error:.2g} > tolerance {tolerance:g}"
    else:
        row.flag = "ok"
    return None
