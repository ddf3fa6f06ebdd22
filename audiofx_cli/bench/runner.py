"""Run the benchmark: plan, memory check, signal, timing, peak memory, error, speed-ups.

Method (what `docs/bench.md` documents):

- One test signal per (channels, duration): Gaussian noise drawn in float32 from a seeded
  generator, each channel scaled to peak 1. Alive at once: the signal, the float32 reference,
  and one backend's output plus its work space (`Backend.copies`); the memory needed is
  estimated from that before anything runs, and a plan that cannot fit is refused.
- Per backend: `prepare` (design, build, copy to the device) is not timed; `--warmup` full runs
  are not timed; then `--repeat` timed runs of `Prepared.run()`, each between two `sync()`
  calls (CUDA synchronised), giving median, min and max. The output of the last timed run is
  the one checked against the reference.
- Peak memory on the CPU: the process's RSS high-water mark (VmHWM) is reset through
  /proc/self/clear_refs after the warm-up runs and read after the timed runs; the figure is that
  peak minus the RSS before them (signal, reference and imports excluded). Where /proc cannot be
  reset, getrusage's ru_maxrss (the peak of the whole process) is reported instead, and
  `mem_method` says so. On CUDA: torch.cuda.max_memory_allocated above the allocation
  before the runs.
- speedup_vs_scipy: the scipy row's median over this row's median, from the same run.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.bench.backends import BACKENDS, Backend, Case
from audiofx_cli.bench.check import reference, reference_label, relative_error
from audiofx_cli.bench.machine import (
    MB,
    PeakMemory,
    available_memory_bytes,
    device_name,
    free_disk_bytes,
    machine_info,
)
from audiofx_cli.bench.suites import DEFAULT_RATE_HZ, SUITES, Suite
from audiofx_cli.errors import UsageError

BASELINE = "scipy"
Progress = Callable[[str, float], None]  # (description, runs done) -> None


@dataclass
class BenchOptions:
    """What to run. None for channels/durations/backends means the suite's defaults / all."""

    suites: list[str]
    channels: list[int] | None = None
    durations_s: list[float] | None = None
    backends: list[str] | None = None
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    repeat: int = 5
    warmup: int = 1
    rate_hz: int = DEFAULT_RATE_HZ
    chain: Any = None
    seed: int = 0
    tolerance: float = 1e-3
    chunk_seconds: float = 10.0
    files: int = 20  # the loop suite's


@dataclass
class Row:
    """One line of the table and of the CSV."""

    suite: str
    backend: str
    device: str
    device_name: str
    channels: int
    duration_s: float
    sample_rate: int
    samples: int
    repeat: int
    warmup: int
    median_s: float = math.nan
    min_s: float = math.nan
    max_s: float = math.nan
    msamples_per_s: float = math.nan
    speedup_vs_scipy: float | None = None
    rel_error: float | None = None
    flag: str = ""
    peak_mem_mb: float = math.nan
    mem_method: str = ""
    signal_mb: float = 0.0
    cpu_model: str = ""
    threads: int = 0
    torch_version: str = ""
    audiofx_version: str = ""
    load_1m: float = 0.0
    note: str = ""


@dataclass
class BenchResult:
    rows: list[Row]
    notes: list[str]
    machine: dict[str, Any]


@dataclass(frozen=True)
class Config:
    suite: Suite
    channels: int
    duration_s: float


def plan(options: BenchOptions) -> list[Config]:
    """Every (suite, channels, duration) to measure, in order."""
    configs = []
    for name in options.suites:
        suite = SUITES[name]
        for duration in options.durations_s or suite.durations_s:
            for channels in options.channels or suite.channels:
                configs.append(Config(suite, channels, duration))
    return configs


def selected_backends(options: BenchOptions, kind: str) -> list[Backend]:
    names = options.backends or list(BACKENDS)
    return [BACKENDS[n] for n in names if kind in BACKENDS[n].kinds]


def estimate_bytes(options: BenchOptions, config: Config) -> tuple[int, float]:
    """(bytes, copies): signal + reference + the leanest selected backend's copies (float32).

    Backends that need more than what is free when their turn comes are skipped with a note.
    """
    frames = int(round(config.duration_s * options.rate_hz))
    signal = config.channels * frames * 4
    chunk = int(round(options.chunk_seconds * options.rate_hz))
    work = [b.work_copies(chunk) for b in selected_backends(options, config.suite.kind)]
    copies = 2.0 + min(work, default=0.0)
    return int(signal * copies), copies


def check_memory(options: BenchOptions, available: int | None = None) -> None:
    """Refuse, before anything runs, a plan whose biggest configuration cannot fit in RAM.

    Raises:
        UsageError: with the configuration, the estimate and what is available.
    """
    available = available_memory_bytes() if available is None else available
    for config in plan(options):
        need, copies = estimate_bytes(options, config)
        if need > 0.9 * available:
            signal_gb = need / copies / 1e9
            raise UsageError(
                f"{config.suite.name} at {config.channels} ch x {config.duration_s:g} s needs "
                f"about {need / 1e9:.1f} GB ({signal_gb:.2f} GB float32 signal x {copies:g} "
                f"copies: signal, reference, output and work space) but only "
                f"{available / 1e9:.1f} GB of memory is available; use fewer channels or a "
                "shorter --duration"
            )
        if config.suite.kind == "file":
            disk = config.channels * int(config.duration_s * options.rate_hz) * 4 * 3
            free = free_disk_bytes(Path(tempfile.gettempdir()))
            if disk > free:
                raise UsageError(
                    f"file suite at {config.channels} ch x {config.duration_s:g} s writes about "
                    f"{disk / 1e9:.1f} GB in {tempfile.gettempdir()} but only "
                    f"{free / 1e9:.1f} GB is free there (set TMPDIR to a bigger disk)"
                )


def make_signal(channels: int, frames: int, seed: int) -> np.ndarray:
    """Seeded Gaussian noise, (channels, frames) float32, each channel scaled to peak 1."""
    x = np.random.default_rng(seed).standard_normal((channels, frames), dtype=np.float32)
    for row in x:  # in place, channel by channel: no float64 copy of the whole signal
        peak = float(np.max(np.abs(row))) if row.size else 0.0
        if peak > 0:
            row /= peak
    return x


# --------------------------------------------------------------------------- running
def time_runs(
    prepared: Any,
    repeat: int,
    warmup: int,
    tick: Callable[[], None],
    warm: Callable[[], None] | None = None,
) -> Any:
    """Warm-up runs, `warm()`, then `repeat` timed runs; returns (seconds per run, last output)."""
    for _ in range(warmup):
        prepared.sync()
        out = prepared.run()
        prepared.sync()
        del out
        tick()
    if warm is not None:
        warm()
    times = []
    out = None
    for _ in range(repeat):
        out = None  # free the previous output before the next run allocates its own
        prepared.sync()
        start = time.perf_counter()
        out = prepared.run()
        prepared.sync()
        times.append(time.perf_counter() - start)
        tick()
    return times, out


def _devices_for(backend: Backend, devices: list[str]) -> list[str]:
    return devices if backend.uses_device else ["cpu"]


def count_runs(options: BenchOptions) -> int:
    total = 0
    for config in plan(options):
        for backend in selected_backends(options, config.suite.kind):
            total += len(_devices_for(backend, options.devices)) * (options.repeat + options.warmup)
    return total


def run_bench(options: BenchOptions, progress: Progress | None = None) -> BenchResult:
    """Measure every planned configuration with every selected backend.

    Returns:
        BenchResult: rows (one per suite, backend, device, channels, duration), notes (filter
        designs, references, skipped backends) and machine info.
    """
    machine = machine_info()
    gc.freeze()  # torch & co. are imported: later gc.collect() calls only scan our objects
    try:
        return _run_bench(options, machine, progress)
    finally:
        gc.unfreeze()


def _run_bench(
    options: BenchOptions, machine: dict[str, Any], progress: Progress | None
) -> BenchResult:
    if "chain" in options.suites and options.chain is None:
        raise UsageError("the chain suite needs a chain: --chain FILE_OR_PRESET")
    session = _Session(options, machine, progress)
    session.describe_suites()
    for config in plan(options):
        if config.suite.kind == "loop":  # processes timed from outside: bench/loop.py
            from audiofx_cli.bench.loop import run_loop

            rows, notes = run_loop(config, options, session.machine, session.report)
            session.rows, session.notes = session.rows + rows, session.notes + notes
            continue
        session.run_config(config)
        _release_pool()
    return session.result()


class _Session:
    """The state of one bench run: rows, notes, backends that cannot run, progress count."""

    def __init__(
        self, options: BenchOptions, machine: dict[str, Any], progress: Progress | None
    ) -> None:
        self.options, self.machine, self.progress = options, machine, progress
        self.notes: list[str] = []
        self.skipped: dict[str, str] = {}  # backend -> why it cannot run at all
        self.failed: dict[tuple[str, str], str] = {}  # (optional backend, kind) -> its failure
        self.rows: list[Row] = []
        self.done = 0.0  # runs done or skipped, for the progress bar

    def report(self, text: str) -> None:
        if self.progress:
            self.progress(text, self.done)

    def describe_suites(self) -> None:
        """Notes on what each suite filters (its filters, or the chain given)."""
        chain = self.options.chain
        for name in self.options.suites:
            suite = SUITES[name]
            self.notes.extend(suite.notes)
            by_chain = suite.kind in ("chain", "file") and chain is not None
            if by_chain:
                self.notes.append(f"{name}: chain {chain}")
            if suite.filters and not by_chain:
                self.notes.append(f"{name}: {suite.describe_filters()}")

    def run_config(self, config: Config) -> None:
        """One (suite, channels, duration): the signal, its reference, every backend."""
        options, suite = self.options, config.suite
        frames = max(1, int(round(config.duration_s * options.rate_hz)))
        x = make_signal(config.channels, frames, options.seed)
        chunk = int(round(options.chunk_seconds * options.rate_hz))
        with tempfile.TemporaryDirectory(prefix="audiofx-bench-") as tmp:
            case = Case(suite, x, options.rate_hz, chain=options.chain, chunk_frames=chunk)
            if suite.kind == "file":
                from audiofx_cli.bench.files import write_float_wav

                case.workdir = Path(tmp)
                case.input_path = write_float_wav(
                    x, options.rate_hz, Path(tmp) / "input.wav", chunk or frames
                )
            self.report(f"{_label(config)}: reference")
            ref = reference(case)
            label = f"{suite.name}: error vs {reference_label(case)}"
            if label not in self.notes:
                self.notes.append(label)
            for backend in selected_backends(options, suite.kind):
                for device in _devices_for(backend, options.devices):
                    self.run_backend(config, case, ref, backend, device)

    def run_backend(
        self, config: Config, case: Case, ref: np.ndarray, backend: Backend, device: str
    ) -> None:
        """Measure one backend on one device (or note why it is skipped)."""
        runs = self.options.repeat + self.options.warmup
        reason = self._skip_reason(config, case, backend)
        if reason is not None:
            if reason:
                self.notes.append(reason)
            self.done += runs
            return
        row = self._new_row(config, case, backend, device)
        counted = [0]
        label = _label(config)

        def tick() -> None:
            self.done += 1
            counted[0] += 1
            self.report(f"{label}: {backend.name}")

        self.report(f"{label}: {backend.name} (prepare)")
        failure = _measure(backend, case, device, self.options, ref, row, tick)
        self.done += runs - counted[0]
        if failure is not None:
            if backend.optional:
                self.failed[(backend.name, config.suite.kind)] = failure
                return
            row.flag, row.note = "FAILED", failure
        row.load_1m = os.getloadavg()[0]
        self.rows.append(row)

    def _skip_reason(self, config: Config, case: Case, backend: Backend) -> str | None:
        """None when the backend runs; else a note to add ('' when already noted)."""
        if backend.name in self.skipped or (backend.name, config.suite.kind) in self.failed:
            return ""
        reason = backend.unavailable()
        if reason is not None:
            self.skipped[backend.name] = reason
            return ""
        need = case.x.nbytes * backend.work_copies(case.chunk_frames)
        free = available_memory_bytes()
        if need > 0.9 * free:  # decided before it runs: no swap storm, no OOM kill
            return (
                f"{backend.name}: skipped at {_label(config)}: needs about {need / 1e9:.1f} GB "
                f"({backend.work_copies(case.chunk_frames):g} x the signal), "
                f"{free / 1e9:.1f} GB free"
            )
        return None

    def _new_row(self, config: Config, case: Case, backend: Backend, device: str) -> Row:
        machine = self.machine
        return Row(
            suite=config.suite.name,
            backend=backend.name,
            device=device,
            device_name=device_name(device, machine),
            channels=config.channels,
            duration_s=config.duration_s,
            sample_rate=self.options.rate_hz,
            samples=case.x.size,
            repeat=self.options.repeat,
            warmup=self.options.warmup,
            signal_mb=case.x.nbytes / MB,
            cpu_model=machine["cpu_model"],
            threads=machine["threads"],
            torch_version=machine["torch_version"],
            audiofx_version=machine["audiofx_version"],
        )

    def result(self) -> BenchResult:
        """Speed-ups from the same run, then the notes on skipped backends and on methods."""
        _speedups(self.rows)
        for name, reason in self.skipped.items():
            self.notes.append(f"{name}: skipped, {reason}")
        for (name, kind), failure in self.failed.items():
            self.notes.append(f"{name}: skipped for {kind} suites, failed to run ({failure})")
        for backend in {BACKENDS[r.backend] for r in self.rows if r.backend in BACKENDS}:
            if backend.summary:
                self.notes.append(backend.summary)
        return BenchResult(self.rows, self.notes, self.machine)


def _label(config: Config) -> str:
    return f"{config.suite.name} {config.channels} ch x {config.duration_s:g} s"


def _release_pool() -> None:
    """Drop the recycled output buffers of `audiofx_cli.memory` (if it was ever imported)."""
    pool = sys.modules.get("audiofx_cli.memory")
    if pool is not None:
        pool.release()


def _measure(
    backend: Backend,
    case: Case,
    device: str,
    options: BenchOptions,
    ref: np.ndarray,
    row: Row,
    tick: Callable[[], None],
) -> str | None:
    """Fill `row` with timings, memory and error; returns a failure message or None."""
    try:
        case.device = device
        prepared = backend.prepare(case)
        memory = PeakMemory(device)

        def warm() -> None:  # the memory window covers the timed runs only
            _release_pool()  # so the first timed run allocates its output inside the window
            gc.collect()  # garbage freed during the runs would hide their own allocations
            memory.start()

        times, out = time_runs(prepared, options.repeat, options.warmup, tick, warm)
        row.peak_mem_mb = memory.peak_mb()
        row.mem_method = memory.method
        error, problem = relative_error(out, ref)
        del out, prepared
    except Exception as exc:  # a backend's failure is reported in its row, not fatal
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    row.median_s = statistics.median(times)
    row.min_s, row.max_s = min(times), max(times)
    row.msamples_per_s = row.samples / row.median_s / 1e6 if row.median_s > 0 else math.inf
    if backend.name == "io-only":
        row.note = "no DSP: decode + encode only"
        return None
    row.rel_error = error
    if problem or not math.isfinite(error) or error > options.tolerance:
        row.flag = "WRONG"
        row.note = problem or f"error {error:.2g} > tolerance {options.tolerance:g}"
    else:
        row.flag = "ok"
    return None


def _speedups(rows: list[Row]) -> None:
    """speedup_vs_scipy from the same run; for the file suite, the io-only share in `note`."""
    base: dict[tuple[str, int, float], Row] = {}
    for row in rows:
        if row.backend in (BASELINE, "io-only") and math.isfinite(row.median_s):
            base[(row.suite, row.channels, row.duration_s)] = row
    for row in rows:
        ref = base.get((row.suite, row.channels, row.duration_s))
        if ref is None or not math.isfinite(row.median_s) or row.median_s <= 0:
            continue
        if ref.backend == BASELINE:
            row.speedup_vs_scipy = ref.median_s / row.median_s
        elif row.backend != "io-only":
            share = 100 * ref.median_s / row.median_s
            row.note = (row.note + "; " if row.note else "") + (
                f"{row.median_s / ref.median_s:.2f}x io-only (decode + encode {share:.0f}% of it)"
            )
