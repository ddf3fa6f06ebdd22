"""Run the benchmark: plan, calibration, budgets, signal, timing, peak memory, error, speed-ups.

Method (what `docs/bench.md` documents):

- One test signal per (channels, duration): Gaussian noise drawn in float32 from a seeded
  generator, each channel scaled to peak 1. Alive at once: the signal, the float32 reference,
  and one backend's output plus its work space; a plan whose signal, reference and leanest
  backend cannot fit in the memory budget is refused before anything runs.
- Calibration: before the first measurement, every (configuration, backend, device) runs twice
  on a short noise signal of the same channel count (1/50 of the duration, 1 to 10 s); the
  second run gives seconds and peak bytes per frame (`audiofx_cli.bench.budget`). The test
  signal and the reference are timed there too.
- Budgets (`audiofx_cli.bench.budget`): a time budget for the whole run (`budget_s`; None: no
  limit) cuts the other backends' repeats, warm-ups, then signal length (the first seconds of
  the same signal); audiofx's own rows always run the full configuration. A memory budget
  (`memory_share` of the memory available at the start) bounds the process's RSS: a
  measurement whose estimated peak does not fit runs on a slice that does, or is skipped.
- Per measurement: `prepare` (design, build, copy to the device) is not timed; warm-up runs are
  not timed; then the timed runs of `Prepared.run()` (see `audiofx_cli.bench.measure`). The
  output of the last timed run is checked against the reference (on a slice: the reference's
  first frames, the suites' filters being causal; otherwise a reference of the slice).
- speedup_vs_scipy: this row's throughput over the scipy row's (samples per second, so rows
  on slices compare with rows in full), from the same run.
- Each finished measurement, skip and phase is reported through one callback (`Listener`), so
  a new suite gets progress, budgets and the log lines without code of its own.
"""

from __future__ import annotations

import gc
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.bench.backends import BACKENDS, Backend, Case
from audiofx_cli.bench.budget import Estimate, Planner, RunPlan, plan_run, wanted_s
from audiofx_cli.bench.check import reference, reference_label
from audiofx_cli.bench.machine import (
    MB,
    available_memory_bytes,
    command_peak_bytes,
    device_name,
    free_disk_bytes,
    machine_info,
    rss_bytes,
)
from audiofx_cli.bench.measure import calibrate, failure_text, measure, release_pool, sliced_case
from audiofx_cli.bench.rows import (
    BASELINE,
    FILE_BASELINE,
    BenchEvent,
    BenchResult,
    Listener,
    Row,
    is_baseline,
    same_config,
    speedup,
    speedups,
)
from audiofx_cli.bench.suites import DEFAULT_RATE_HZ, SUITES, Suite
from audiofx_cli.errors import UsageError

CALIBRATION_SHARE = 1 / 50  # of the configuration's duration, within the bounds below
CALIBRATION_S = (1.0, 10.0)
DEADLINE_FACTOR = 2.0  # a budgeted measurement stops its timed runs past twice its plan
DEADLINE_MIN_S = 10.0  # (and never before this)


@dataclass
class BenchOptions:
    """What to run. None for channels/durations/backends means the suite's defaults / all.

    budget_s: time budget of the whole run in seconds (None: no limit). repeat_forced: every
    row runs exactly `repeat` timed runs (the budget may still shorten the signal).
    memory_share: the process's RSS is kept within this share of the memory available at the
    start.
    """

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
    budget_s: float | None = None
    repeat_forced: bool = False
    memory_share: float = 0.5
    files: int = 20  # the loop suite's


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


def _frames(options: BenchOptions, duration_s: float) -> int:
    return max(1, int(round(duration_s * options.rate_hz)))


def estimate_bytes(options: BenchOptions, config: Config) -> tuple[int, float]:
    """(bytes, copies): signal + reference + the leanest selected backend's copies (float32).

    Backends that need more than what the memory budget leaves are cut or skipped when their
    turn comes.
    """
    signal = config.channels * _frames(options, config.duration_s) * 4
    chunk = int(round(options.chunk_seconds * options.rate_hz))
    work = [b.work_copies(chunk) for b in selected_backends(options, config.suite.kind)]
    copies = 2.0 + min(work, default=0.0)
    return int(signal * copies), copies


def check_memory(options: BenchOptions, available: int | None = None) -> None:
    """Refuse, before anything runs, a plan whose biggest configuration cannot fit in the
    memory budget (`memory_share` of what is available).

    Raises:
        UsageError: with the configuration, the estimate and the budget.
    """
    available = available_memory_bytes() if available is None else available
    limit = options.memory_share * available
    for config in plan(options):
        need, copies = estimate_bytes(options, config)
        if need > limit:
            signal_gb = need / copies / 1e9
            raise UsageError(
                f"{config.suite.name} at {config.channels} ch x {config.duration_s:g} s needs "
                f"about {need / 1e9:.1f} GB ({signal_gb:.2f} GB float32 signal x {copies:g} "
                f"copies: signal, reference, output and work space) but the memory budget is "
                f"{limit / 1e9:.1f} GB ({options.memory_share:g} of the {available / 1e9:.1f} GB "
                "of memory available, --memory-share); use fewer channels or a shorter "
                "--duration"
            )
        if config.suite.kind == "file":
            disk = config.channels * _frames(options, config.duration_s) * 4 * 3
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


def calibration_frames(options: BenchOptions, duration_s: float) -> int:
    low, high = CALIBRATION_S
    seconds = min(max(duration_s * CALIBRATION_SHARE, low), high)
    return min(_frames(options, seconds), _frames(options, duration_s))


def _devices_for(backend: Backend, devices: list[str]) -> list[str]:
    return devices if backend.uses_device else ["cpu"]


def run_bench(options: BenchOptions, listener: Listener | None = None) -> BenchResult:
    """Measure every planned configuration with every selected backend.

    Returns:
        BenchResult: rows (one per suite, backend, device, channels, duration), notes (filter
        designs, references, skipped backends, budgets), machine info, wall time and the
        command's peak RSS.
    """
    machine = machine_info()
    gc.freeze()  # torch & co. are imported: later gc.collect() calls only scan our objects
    try:
        return _run_bench(options, machine, listener)
    finally:
        gc.unfreeze()


def _run_bench(
    options: BenchOptions, machine: dict[str, Any], listener: Listener | None
) -> BenchResult:
    if "chain" in options.suites and options.chain is None:
        raise UsageError("the chain suite needs a chain: --chain FILE_OR_PRESET")
    session = _Session(options, machine, listener)
    session.describe_suites()
    configs = plan(options)
    for index, config in enumerate(configs):
        if config.suite.kind != "loop":  # the loop suite times processes: nothing to calibrate
            session.calibrate_config(index, config)
    session.announce_plan(len(configs))
    for index, config in enumerate(configs):
        if config.suite.kind == "loop":  # processes timed from outside: bench/loop.py
            from audiofx_cli.bench.loop import run_loop

            rows, notes = run_loop(config, options, session.machine, session.report)
            session.rows, session.notes = session.rows + rows, session.notes + notes
            continue
        session.run_config(config, index)
        release_pool()
    return session.result()


class _Session:
    """The state of one bench run: rows, notes, backends that cannot run, estimates, budgets."""

    def __init__(
        self, options: BenchOptions, machine: dict[str, Any], listener: Listener | None
    ) -> None:
        self.options, self.machine, self.listener = options, machine, listener
        self.notes: list[str] = []
        self.skipped: dict[str, str] = {}  # backend -> why it cannot run at all
        self.failed: dict[tuple[str, str], str] = {}  # (optional backend, kind) -> its failure
        self.rows: list[Row] = []
        self.start = time.perf_counter()
        self.memory_budget = int(options.memory_share * (available_memory_bytes() + rss_bytes()))
        self.planner = Planner(options.budget_s)
        self.estimates: dict[tuple[int, str, str], Estimate] = {}
        self.calibrated = False
        self._signal: tuple[tuple[int, int], np.ndarray] | None = None
        self._calibrated_shape: tuple[int, int] | None = None

    # ------------------------------------------------------------------ reporting
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start

    def report(self, text: str, row: Row | None = None, line: str = "") -> None:
        if self.listener is None:
            return
        elapsed = self.elapsed_s()
        remaining = self.planner.remaining_s(elapsed) if self.calibrated else None
        self.listener(BenchEvent(text, elapsed, remaining, row, line))

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

    # ------------------------------------------------------------------ calibration
    def measurements(self, config: Config) -> list[tuple[Backend, str]]:
        """(backend, device) pairs of a configuration, the baseline first (so every later row
        knows its speed-up when it finishes)."""
        backends = selected_backends(self.options, config.suite.kind)
        backends.sort(key=lambda b: b.name not in (BASELINE, FILE_BASELINE))
        return [(b, d) for b in backends for d in _devices_for(b, self.options.devices)]

    def build_case(self, config: Config, x: np.ndarray, tmp: str) -> Case:
        """The case of a configuration on signal `x` (the file suite writes it to `tmp`)."""
        options = self.options
        chunk = int(round(options.chunk_seconds * options.rate_hz))
        case = Case(config.suite, x, options.rate_hz, chain=options.chain, chunk_frames=chunk)
        if config.suite.kind == "file":
            from audiofx_cli.bench.files import write_float_wav

            case.workdir = Path(tmp)
            case.input_path = write_float_wav(
                x, options.rate_hz, Path(tmp) / "input.wav", chunk or x.shape[-1]
            )
        return case

    def calibrate_config(self, index: int, config: Config) -> None:
        """Time the signal, the reference and every backend on a short signal; add them to
        the planner, scaled to the configuration's length."""
        options, label = self.options, _label(config)
        frames = _frames(options, config.duration_s)
        short = calibration_frames(options, config.duration_s)
        scale = frames / short
        self.report(f"calibrating {label}")
        start = time.perf_counter()
        x = make_signal(config.channels, short, options.seed)
        new_signal = self._calibrated_shape != (config.channels, frames)
        self._calibrated_shape = (config.channels, frames)  # the next one may reuse it
        with tempfile.TemporaryDirectory(prefix="audiofx-bench-") as tmp:
            case = self.build_case(config, x, tmp)
            signal_s = (time.perf_counter() - start) if new_signal else 0.0
            reference(case)  # once untimed: imports and filter designs
            start = time.perf_counter()
            ref = reference(case)
            fixed_s = (signal_s + time.perf_counter() - start) * scale
            self.planner.add((index, "signal"), fixed_s, flexible=False)
            for backend, device in self.measurements(config):
                if self._skip_reason(config, backend) is not None:
                    continue
                if backend.work_copies(case.chunk_frames) * x.nbytes > self.memory_left():
                    continue  # not even on the short signal: its declared copies decide
                self.report(f"calibrating {label}: {backend.name}")
                estimate = self._calibrate(config, case, ref, backend, device)
                if estimate is None:
                    continue
                key = (index, backend.name, device)
                self.estimates[key] = estimate
                want = wanted_s(estimate, frames, options.repeat, options.warmup)
                self.planner.add(key, want, flexible=not backend.ours)
        release_pool()

    def _calibrate(
        self, config: Config, case: Case, ref: np.ndarray, backend: Backend, device: str
    ) -> Estimate | None:
        """The backend's estimate; None when it failed (an optional backend is then skipped
        for the suite's kind; the others fail again in their row)."""
        try:
            return calibrate(backend, case, device, ref)
        except Exception as exc:  # reported as the backend's failure
            if backend.optional:
                self.failed[(backend.name, config.suite.kind)] = failure_text(exc)
            return None

    def announce_plan(self, configs: int) -> None:
        self.calibrated = True
        budget = self.options.budget_s
        elapsed = self.elapsed_s()
        planned = elapsed + self.planner.remaining_s(elapsed)
        limit = f"of a {_minutes(budget)} time budget" if budget is not None else "(no time budget)"
        line = (
            f"plan: {configs} configuration(s), {len(self.estimates)} measurement(s), about "
            f"{_minutes(planned)} {limit}; memory budget {self.memory_budget / 1e9:.1f} GB "
            f"({self.options.memory_share:g} of the memory available at the start)"
        )
        self.report("measuring", line=line)

    # ------------------------------------------------------------------ measuring
    def signal(self, config: Config) -> np.ndarray:
        """The test signal, generated once for consecutive configurations of the same shape."""
        shape = (config.channels, _frames(self.options, config.duration_s))
        if self._signal is None or self._signal[0] != shape:
            self._signal = None  # free the previous one first
            self._signal = (shape, make_signal(*shape, self.options.seed))
        return self._signal[1]

    def run_config(self, config: Config, index: int = 0) -> None:
        """One (suite, channels, duration): the signal, its reference, every backend."""
        suite, label = config.suite, _label(config)
        self.report(f"{label}: signal")
        start = time.perf_counter()
        x = self.signal(config)
        with tempfile.TemporaryDirectory(prefix="audiofx-bench-") as tmp:
            case = self.build_case(config, x, tmp)
            self.report(f"{label}: reference")
            ref = reference(case)
            self.planner.done((index, "signal"), time.perf_counter() - start)
            text = f"{suite.name}: error vs {reference_label(case)}"
            if text not in self.notes:
                self.notes.append(text)
            first = len(self.rows)
            for backend, device in self.measurements(config):
                self.run_backend(config, case, ref, backend, device, index)
        order = {name: i for i, name in enumerate(BACKENDS)}
        self.rows[first:] = sorted(self.rows[first:], key=lambda r: order[r.backend])

    def run_backend(
        self,
        config: Config,
        case: Case,
        ref: np.ndarray,
        backend: Backend,
        device: str,
        index: int = 0,
    ) -> None:
        """Measure one backend on one device within the budgets (or note why it is skipped)."""
        key = (index, backend.name, device)
        reason = self._skip_reason(config, backend)
        if reason is not None:
            self.planner.done(key)
            return
        label = f"{_label(config)}: {backend.name}"
        release_pool()  # the last backend's recycled output is not this one's to count
        run = self._plan(key, config, case, backend)
        if run.skip:
            self.planner.done(key)
            note = f"{backend.name}: skipped at {_label(config)}: {run.skip}"
            self.notes.append(note)
            self.report(label, line=note)
            return
        self.planner.commit(key, run.estimate_s)
        run_case, run_ref = sliced_case(case, ref, run.frames)
        row = self._new_row(config, run_case, backend, device)
        self.report(f"{label} (prepare)")
        start = time.perf_counter()
        failure = measure(
            backend,
            run_case,
            device,
            (run.repeats, run.warmups),
            run_ref,
            row,
            lambda: self.report(label),
            self.options.tolerance,
            self._deadline(run, backend),
        )
        del run_case, run_ref
        row.planned_s, row.spent_s = run.estimate_s, time.perf_counter() - start
        self.planner.done(key, row.spent_s)
        if failure is not None:
            if backend.optional:
                self.failed[(backend.name, config.suite.kind)] = failure
                return
            row.flag, row.note = "FAILED", failure
        self._finish_row(row, run)
        self.rows.append(row)
        self.report(label, row=row)

    def _plan(self, key: tuple[int, str, str], config: Config, case: Case, b: Backend) -> RunPlan:
        """Its repeats, warm-ups and slice, from its calibration and what is left of both
        budgets now."""
        options = self.options
        estimate = self.estimates.get(key)
        if estimate is None:  # calibration failed: the declared copies bound its memory
            per_frame = b.work_copies(case.chunk_frames) * config.channels * 4
            estimate = Estimate(0.0, per_frame)
        estimate = estimate.slower(self.planner.slowdown)
        budgeted = not b.ours and options.budget_s is not None
        return plan_run(
            estimate,
            case.x.shape[-1],
            options.rate_hz,
            cap_s=self.planner.cap_s(self.elapsed_s()) if budgeted else math.inf,
            allowed_bytes=self.memory_left(),
            repeat=options.repeat,
            warmup=options.warmup,
            forced=options.repeat_forced,
            can_slice=not b.ours and case.input_path is None,
        )

    def memory_left(self) -> float:
        """Bytes a measurement may add now: what the memory budget leaves above the process's
        RSS, and never more than 90 % of what the machine has free."""
        return min(self.memory_budget - rss_bytes(), 0.9 * available_memory_bytes())

    def _deadline(self, run: RunPlan, backend: Backend) -> float:
        """When a budgeted measurement that runs far over its plan stops its timed runs."""
        options = self.options
        if backend.ours or options.repeat_forced or options.budget_s is None:
            return math.inf
        return time.perf_counter() + max(DEADLINE_FACTOR * run.estimate_s, DEADLINE_MIN_S)

    def _finish_row(self, row: Row, run: RunPlan) -> None:
        row.budget = run.reason
        if 0 < row.repeats_done < run.repeats:
            stop = f"stopped after {row.repeats_done} of {run.repeats} runs, over its time"
            row.budget = f"{row.budget}; {stop}" if row.budget else stop
        row.load_1m = os.getloadavg()[0]
        if math.isfinite(row.median_s):
            row.median_full_s = row.median_s * run.full_frames / max(run.frames, 1)
        base = next(
            (r for r in reversed(self.rows) if same_config(r, row) and is_baseline(r)), None
        )
        if base is not None:
            speedup(row, base)

    def _skip_reason(self, config: Config, backend: Backend) -> str | None:
        """None when the backend runs; '' when it cannot (noted once, at the end)."""
        if backend.name in self.skipped or (backend.name, config.suite.kind) in self.failed:
            return ""
        reason = backend.unavailable()
        if reason is not None:
            self.skipped[backend.name] = reason
            return ""
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
            slice_s=min(case.x.shape[-1] / self.options.rate_hz, config.duration_s),
            signal_mb=case.x.nbytes / MB,
            cpu_model=machine["cpu_model"],
            threads=machine["threads"],
            torch_version=machine["torch_version"],
            audiofx_version=machine["audiofx_version"],
        )

    def result(self) -> BenchResult:
        """Speed-ups from the same run, then the notes on skipped backends and on methods."""
        speedups(self.rows)
        for name, reason in self.skipped.items():
            self.notes.append(f"{name}: skipped, {reason}")
        for (name, kind), failure in self.failed.items():
            self.notes.append(f"{name}: skipped for {kind} suites, failed to run ({failure})")
        for backend in {BACKENDS[r.backend] for r in self.rows if r.backend in BACKENDS}:
            if backend.summary:
                self.notes.append(backend.summary)
        return BenchResult(
            self.rows,
            self.notes,
            self.machine,
            elapsed_s=self.elapsed_s(),
            peak_rss_bytes=command_peak_bytes(),
            budget_s=self.options.budget_s,
            memory_budget_bytes=self.memory_budget,
        )


def _label(config: Config) -> str:
    return f"{config.suite.name} {config.channels} ch x {config.duration_s:g} s"


def _minutes(seconds: float | None) -> str:
    seconds = max(seconds or 0.0, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"
