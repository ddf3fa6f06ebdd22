"""`audiofx bench --suite effects`: each non-linear stage beside pedalboard, SoX and torchfx.

For every entry of `audiofx_cli.bench.effects_table.EFFECTS` (in --stages, when given) and every
(channels, duration), on one test signal:

- ``audiofx``: the stage through `load_chain`, streamed in --chunk-seconds chunks as the other
  suites (`stream_chain`), float32; checked against the same stage in float64 on the CPU
  (`rel_error`, the max difference over the reference's peak).
- ``pedalboard`` (optional: ``pip install pedalboard``): the matched plugin on the whole
  signal, ``plugin(x, rate)`` (a fresh state each call), float32.
- ``sox`` (when ``sox`` is on the PATH): the matched effect on a 32-bit float WAV of the signal
  through a subprocess; its time is the median of ``sox in out EFFECT`` minus the median of
  ``sox in out`` (SoX's own copy of the same file), so start-up, decoding and encoding cancel.
- ``torchfx`` (optional, when ``import torchfx`` works and its effects run): the matched
  `torchfx.effect` module on the whole signal.

Timing: `--warmup` untimed runs, then `--repeat` timed runs; medians. The audiofx row holds the
ratios from the same run: ``x pedalboard`` = pedalboard's median / audiofx's (above 1: audiofx
is faster), likewise ``x sox`` and ``x torchfx``. The other tools' outputs differ by design
(other algorithms), so only audiofx has an error column.

The test signal: seeded Gaussian noise under a slow envelope from 0 to -60 dB and back (a 4 s
cycle), each channel scaled to peak 1, so that dynamics stages open, close, compress and limit
(stationary noise would leave a gate open and a compressor in one state).
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.bench.effects_table import EFFECTS, EffectCase, EffectContext
from audiofx_cli.bench.machine import machine_info
from audiofx_cli.errors import UsageError

BACKENDS = ("audiofx", "pedalboard", "sox", "torchfx")
Progress = Callable[[str, float], None]


@dataclass
class EffectsOptions:
    """What to run (None: every stage of the table)."""

    stages: list[str] | None = None
    channels: list[int] = field(default_factory=lambda: [2])
    durations_s: list[float] = field(default_factory=lambda: [60.0])
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    repeat: int = 5
    warmup: int = 1
    rate_hz: int = 44100
    seed: int = 0
    tolerance: float = 1e-3
    chunk_seconds: float = 10.0


@dataclass
class EffectRow:
    """One line of the table and of the CSV."""

    suite: str
    stage: str
    backend: str
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
    speedup_vs_pedalboard: float | None = None
    speedup_vs_sox: float | None = None
    speedup_vs_torchfx: float | None = None
    rel_error: float | None = None
    flag: str = ""
    settings: str = ""
    cpu_model: str = ""
    threads: int = 0
    torch_version: str = ""
    audiofx_version: str = ""
    load_1m: float = 0.0
    note: str = ""


@dataclass
class EffectsResult:
    rows: list[EffectRow]
    notes: list[str]
    machine: dict[str, Any]


def stage_names() -> list[str]:
    return [case.label for case in EFFECTS]


def program_signal(channels: int, frames: int, rate_hz: int, seed: int) -> np.ndarray:
    """(channels, frames) float32: seeded noise under a 0 .. -60 dB envelope (4 s cycle)."""
    x = np.random.default_rng(seed).standard_normal((channels, frames), dtype=np.float32)
    t = np.arange(frames, dtype=np.float64) / rate_hz
    envelope = 10 ** (-60 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 4.0)) / 20)
    for row in x:
        row *= envelope.astype(np.float32)
        peak = float(np.max(np.abs(row))) if row.size else 0.0
        if peak > 0:
            row /= peak
    return x


def write_impulse_response(folder: Path, rate_hz: int, seed: int) -> tuple[Path, Path]:
    """A 0.5 s mono impulse response (noise decaying 60 dB) as a float WAV and as SoX `fir`
    taps (one per line)."""
    import soundfile as sf

    n = rate_hz // 2
    rng = np.random.default_rng(seed + 1)
    ir = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / n)
    ir *= 0.5 / np.sqrt(np.sum(ir**2))
    wav, taps = folder / "ir.wav", folder / "ir.txt"
    sf.write(wav, ir.astype(np.float32), rate_hz, subtype="FLOAT")
    taps.write_text("\n".join(f"{v:.9g}" for v in ir.astype(np.float32)) + "\n")
    return wav, taps


def _time(run: Callable[[], Any], repeat: int, warmup: int, tick: Callable[[], None]):  # type: ignore[no-untyped-def]
    """(seconds per timed run, last output)."""
    out = None
    for _ in range(warmup):
        out = run()
        tick()
    times = []
    for _ in range(repeat):
        out = None
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
        tick()
    return times, out


# ------------------------------------------------------------------------------ backends
def _audiofx(case: EffectCase, ctx: EffectContext, x: np.ndarray, chunk: int):  # type: ignore[no-untyped-def]
    """(run, reference check) for the audiofx row."""
    import torch

    from audiofx_cli.api import load_chain
    from audiofx_cli.bench.base import stream_chain
    from audiofx_cli.stream import run_analysis

    spec = [{case.stage: case.stage_params(ctx)}]
    chain = load_chain(spec, ctx.rate_hz)
    xt = torch.from_numpy(x)
    step = chunk if chunk > 0 else max(x.shape[-1], 1)

    def chunks() -> Any:
        return (xt[..., start : start + step] for start in range(0, x.shape[-1], step))

    def run() -> Any:
        with torch.no_grad():  # the analysis pass (normalize) is part of the stage's work
            run_analysis(chain, chunks, xt[..., :0], x.shape[-1])
            return stream_chain(chain, xt, chunk)

    def error(y: Any) -> float:
        reference = load_chain(spec, ctx.rate_hz, dtype=torch.float64)
        with torch.no_grad():
            ref = reference(xt.double()).numpy()
        got = y.double().numpy()
        if got.shape != ref.shape:
            return math.nan
        peak = float(np.max(np.abs(ref))) or 1.0
        return float(np.max(np.abs(got - ref))) / peak

    return run, error


def _pedalboard(case: EffectCase, ctx: EffectContext, x: np.ndarray) -> Callable[[], Any]:
    import pedalboard

    assert case.pedalboard is not None
    plugin = case.pedalboard(pedalboard, ctx)
    return lambda: plugin(x, float(ctx.rate_hz))


def _torchfx(case: EffectCase, ctx: EffectContext, x: np.ndarray) -> Callable[[], Any]:
    import torch
    import torchfx

    assert case.torchfx is not None
    module = case.torchfx(torchfx, ctx)
    xt = torch.from_numpy(x)

    def run() -> Any:
        if hasattr(module, "reset_state"):
            module.reset_state()  # a fresh stream each run, as the other backends
        with torch.no_grad():
            return module(xt)

    run()  # a broken install fails here, before anything is timed
    return run


def _sox_seconds(case: EffectCase, ctx: EffectContext, source: Path, options: EffectsOptions,
                 tick: Callable[[], None]) -> tuple[float, str]:  # fmt: skip
    """(median effect time minus median copy time, a note with both medians)."""
    assert case.sox is not None
    out = source.with_name("sox-out.wav")
    base = ["sox", "-q", "-D", str(source), str(out)]

    def run(command: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run(command, check=True, capture_output=True)

    effect, _ = _time(run([*base, *case.sox(ctx)]), options.repeat, options.warmup, tick)
    copy, _ = _time(run(base), options.repeat, options.warmup, lambda: None)
    with_effect, alone = statistics.median(effect), statistics.median(copy)
    note = f"sox {' '.join(case.sox(ctx))}: {with_effect:.3f} s, copy alone {alone:.3f} s"
    if with_effect <= alone:  # the effect costs less than the copy's run-to-run spread
        return math.nan, note + " (effect not measurable: use a longer --duration)"
    return with_effect - alone, note


def unavailable(backend: str) -> str | None:
    """Why a backend cannot run here (None when it can)."""
    if backend == "pedalboard":
        try:
            import pedalboard  # noqa: F401
        except Exception as exc:  # an optional import: any failure means unavailable
            return f"pedalboard: skipped, cannot import it ({exc}; pip install pedalboard)"
    if backend == "sox" and shutil.which("sox") is None:
        return "sox: skipped, not on the PATH (apt-get install sox)"
    if backend == "torchfx":
        try:
            import torchfx  # noqa: F401
        except Exception as exc:  # not a dependency
            return f"torchfx: skipped, cannot import it ({type(exc).__name__}: {exc})"
    return None


# ------------------------------------------------------------------------------ running
def cases_for(options: EffectsOptions) -> list[EffectCase]:
    """The table's entries to run, in table order.

    Raises:
        UsageError: a name in --stages the table does not have.
    """
    if options.stages is None:
        return list(EFFECTS)
    known = stage_names()
    for name in options.stages:
        if name not in known:
            raise UsageError(f"--stages: unknown '{name}' (choose from {', '.join(known)})")
    return [case for case in EFFECTS if case.label in options.stages]


def count_runs(options: EffectsOptions) -> int:
    per = (options.repeat + options.warmup) * len(options.backends)
    return len(cases_for(options)) * len(options.channels) * len(options.durations_s) * per


def run_effects(options: EffectsOptions, progress: Progress | None = None) -> EffectsResult:
    """Measure every selected stage with every available backend (see the module docstring)."""
    from audiofx_cli.chain.registry import registry

    machine = machine_info()
    notes: list[str] = []
    skipped = {b: why for b in options.backends if (why := unavailable(b)) is not None}
    notes += skipped.values()
    stages = registry()
    rows: list[EffectRow] = []
    done = [0.0]

    def tick(text: str) -> Callable[[], None]:
        def step() -> None:
            done[0] += 1
            if progress:
                progress(text, done[0])

        return step

    for case in cases_for(options):
        if case.stage not in stages:
            notes.append(f"{case.label}: skipped, no stage '{case.stage}' in this build")
            continue
        notes.append(_describe(case))
        for duration in options.durations_s:
            for channels in options.channels:
                rows += _run_case(case, channels, duration, options, skipped, notes, tick,
                                  machine)  # fmt: skip
    return EffectsResult(rows, notes, machine)


def _describe(case: EffectCase) -> str:
    parts = [f"{case.label}: audiofx {case.stage}"]
    if case.match:
        parts.append(case.match)
    if case.sox_match:
        parts.append(f"SoX: {case.sox_match}")
    return "; ".join(parts)


def _run_case(case: EffectCase, channels: int, duration: float, options: EffectsOptions,
              skipped: dict[str, str], notes: list[str], tick: Any,
              machine: dict[str, Any]) -> list[EffectRow]:  # fmt: skip
    """Every backend on one (stage, channels, duration); the ratios on the audiofx row."""
    frames = max(1, int(round(duration * options.rate_hz)))
    x = program_signal(channels, frames, options.rate_hz, options.seed)
    chunk = int(round(options.chunk_seconds * options.rate_hz))
    label = f"{case.label} {channels} ch x {duration:g} s"
    rows: dict[str, EffectRow] = {}
    with tempfile.TemporaryDirectory(prefix="audiofx-effects-") as tmp:
        folder = Path(tmp)
        ir, taps = write_impulse_response(folder, options.rate_hz, options.seed)
        ctx = EffectContext(options.rate_hz, channels, ir, taps)
        for backend in options.backends:
            if backend in skipped or not _has(case, backend):
                continue
            row = _new_row(case, backend, x, options, ctx, machine)
            try:
                _measure(row, case, ctx, x, chunk, folder, options, tick(f"{label}: {backend}"))
            except Exception as exc:  # a backend's failure is reported, not fatal
                if backend in ("pedalboard", "torchfx"):  # optional: a note, no row
                    notes.append(f"{backend}: {case.label} failed ({type(exc).__name__}: {exc})")
                    continue
                row.flag, row.note = "FAILED", f"{type(exc).__name__}: {exc}".splitlines()[0]
            rows[backend] = row
    _ratios(rows)
    return list(rows.values())


def _has(case: EffectCase, backend: str) -> bool:
    return backend == "audiofx" or getattr(case, backend) is not None


def _new_row(case: EffectCase, backend: str, x: np.ndarray, options: EffectsOptions,
             ctx: EffectContext, machine: dict[str, Any]) -> EffectRow:  # fmt: skip
    settings = {
        "audiofx": f"{case.stage} {case.stage_params(ctx)}",
        "sox": " ".join(case.sox(ctx)) if case.sox else "",
    }.get(backend, "matched (see notes)")
    return EffectRow(
        suite="effects", stage=case.label, backend=backend, channels=x.shape[0],
        duration_s=x.shape[1] / options.rate_hz, sample_rate=options.rate_hz, samples=x.size,
        repeat=options.repeat, warmup=options.warmup, settings=settings,
        cpu_model=machine["cpu_model"], threads=machine["threads"],
        torch_version=machine["torch_version"], audiofx_version=machine["audiofx_version"],
    )  # fmt: skip


def _measure(row: EffectRow, case: EffectCase, ctx: EffectContext, x: np.ndarray, chunk: int,
             folder: Path, options: EffectsOptions, tick: Callable[[], None]) -> None:  # fmt: skip
    """Fill the row's times (and, for audiofx, its error)."""
    if row.backend == "sox":
        from audiofx_cli.bench.files import write_float_wav

        source = write_float_wav(x, options.rate_hz, folder / "input.wav", chunk or x.shape[1])
        seconds, row.note = _sox_seconds(case, ctx, source, options, tick)
        times = [seconds]
        if not math.isfinite(seconds):
            row.flag = "n/a"
    else:
        if row.backend == "audiofx":
            run, error = _audiofx(case, ctx, x, chunk)
        else:
            run = (_pedalboard if row.backend == "pedalboard" else _torchfx)(case, ctx, x)
        times, out = _time(run, options.repeat, options.warmup, tick)
        if row.backend == "audiofx":
            row.rel_error = error(out)
            ok = math.isfinite(row.rel_error) and row.rel_error <= options.tolerance
            row.flag = "ok" if ok else "WRONG"
        del out
    row.median_s = statistics.median(times)
    row.min_s, row.max_s = min(times), max(times)
    row.msamples_per_s = row.samples / row.median_s / 1e6
    row.load_1m = os.getloadavg()[0]


def _ratios(rows: dict[str, EffectRow]) -> None:
    ours = rows.get("audiofx")
    if ours is None or not math.isfinite(ours.median_s):
        return
    for backend in ("pedalboard", "sox", "torchfx"):
        other = rows.get(backend)
        if other is not None and math.isfinite(other.median_s):
            setattr(ours, f"speedup_vs_{backend}", other.median_s / ours.median_s)


# ------------------------------------------------------------------------------ output
CSV_COLUMNS = [f.name for f in fields(EffectRow)]


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, spec)


def render(result: EffectsResult, console: Any) -> None:
    """The table (one row per stage and backend), then the notes and the machine."""
    from rich.table import Table

    from audiofx_cli.bench.report import machine_line

    table = Table(title="audiofx bench --suite effects", header_style="bold", pad_edge=False)
    for name in ("stage", "backend", "ch", "sec", "median s", "M smp/s", "x pedalboard",
                 "x sox", "x torchfx", "rel err", "check"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("stage", "backend", "check") else "right")
    for row in result.rows:
        ratios = [_fmt(getattr(row, f"speedup_vs_{b}"), ".2f") for b in BACKENDS[1:]]
        table.add_row(
            row.stage, row.backend, str(row.channels), f"{row.duration_s:g}",
            _fmt(row.median_s, ".3g"), _fmt(row.msamples_per_s, ".3g"),
            *[f"{r}x" if r else "" for r in ratios], _fmt(row.rel_error, ".1e"), row.flag,
            style="bold red" if row.flag in ("WRONG", "FAILED") else None,
        )  # fmt: skip
    console.print(table)
    plain = {"highlight": False, "markup": False, "soft_wrap": True}
    for row in result.rows:
        if row.note:
            console.print(f"  {row.flag or 'note'}: {row.stage} {row.backend}: {row.note}", **plain)
    for note in result.notes:
        console.print(f"  note: {note}", **plain)
    console.print(f"  {machine_line(result)}", **plain)  # type: ignore[arg-type]


def write_csv(result: EffectsResult, path: str | Path) -> Path:
    """Every row with every column of `EffectRow` (CSV_COLUMNS); floats in full precision."""
    import csv

    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return path
