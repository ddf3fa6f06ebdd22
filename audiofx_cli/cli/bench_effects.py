"""`audiofx bench --suite effects`: arguments -> `audiofx_cli.bench.effects` -> table and CSV.

Kept apart from `cli/bench.py` (the filter suites): the effects suite has its own backends
(audiofx, pedalboard, sox, torchfx) and rows (one per stage and backend).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from audiofx_cli.errors import UsageError


def run(
    *,
    stages: str | None,
    channels: str | None,
    duration: str | None,
    backends: str | None,
    device: str,
    repeat: int | None,
    warmup: int,
    csv: Path | None,
    rate: int | None,
    seed: int,
    tolerance: float,
    chunk_seconds: float,
    progress: bool,
) -> None:
    """Check the arguments, run the suite, print the table, write the CSV."""
    from audiofx_cli.bench.suites import DEFAULT_RATE_HZ
    from audiofx_cli.cli.bench import _split, parse_ints, parse_names, parse_seconds

    repeat = 5 if repeat is None else repeat  # no time budget here: every stage in full
    rate = DEFAULT_RATE_HZ if rate is None else rate
    if device not in ("auto", "cpu"):
        raise UsageError("--suite effects runs on the CPU (pedalboard and SoX do); drop --device")
    if repeat < 1 or warmup < 0 or rate < 1 or not tolerance > 0:
        raise UsageError("--repeat >= 1, --warmup >= 0, --rate >= 1 and --tolerance > 0")
    if not (math.isfinite(chunk_seconds) and chunk_seconds >= 0):
        raise UsageError(f"--chunk-seconds must be 0 (whole signal) or more, got {chunk_seconds}")
    if csv is not None and not csv.parent.is_dir():
        raise UsageError(f"--csv {csv}: folder {csv.parent} does not exist")
    from audiofx_cli.bench import effects

    options = effects.EffectsOptions(
        stages=(_split(stages) or None) if stages else None,
        channels=parse_ints(channels, "--channels") if channels else [2],
        durations_s=parse_seconds(duration, "--duration") if duration else [60.0],
        backends=parse_names(backends, list(effects.BACKENDS), "--backends")
        if backends
        else list(effects.BACKENDS),
        repeat=repeat,
        warmup=warmup,
        rate_hz=rate,
        seed=seed,
        tolerance=tolerance,
        chunk_seconds=chunk_seconds,
    )
    effects.cases_for(options)  # unknown --stages: an error before anything runs
    result = _run(effects, options, progress)
    from rich.console import Console

    console = Console()
    if console.width < 132:  # eleven columns: wider than a default terminal
        console = Console(width=132)
    effects.render(result, console)
    if csv is not None:
        effects.write_csv(result, csv)
        typer.echo(f"wrote {csv}", err=True)


def _run(effects: Any, options: Any, show_progress: bool) -> Any:
    if not show_progress:
        return effects.run_effects(options)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("effects", total=effects.count_runs(options))
        return effects.run_effects(
            options, lambda text, done: bar.update(task, description=text, completed=done)
        )
