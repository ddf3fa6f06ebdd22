"""`audiofx bench`: every backend side by side on the same signal, table, CSV and plots.

Arguments are checked before torch is imported; a plan that cannot fit in memory is refused
before anything runs (exit 2).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from audiofx_cli.cli.common import DEBUG_HELP, exit_on_error
from audiofx_cli.device import check_device_name
from audiofx_cli.errors import UsageError

if TYPE_CHECKING:
    from audiofx_cli.bench.runner import BenchOptions, BenchResult

EXAMPLES = """

[bold]Examples[/bold]

  audiofx bench --channels 8 --duration 600

  audiofx bench --suite iir --channels 1,2,4,8,12 --duration 1,5,180,300,600 --csv iir.csv

  audiofx bench --suite fir --backends audiofx,scipy,torchaudio --device cpu --repeat 10

  audiofx bench --chain presets/vocal.yaml --duration 60 --channels 2 --plot vocal.png

  audiofx bench --suite file --duration 600 --channels 8

Suites: api, iir, fir (default: all three), chain (--chain), file (decode + chain + encode).

Backends: audiofx, scipy, scipy-sos, scipy-oa, torchaudio, torchfx (if installed), io-only.

Exit codes: 0 done (wrong outputs are flagged in the table and the CSV), 2 bad arguments or a
plan that does not fit in memory.
"""


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_ints(text: str, option: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; every value a positive integer, else UsageError."""
    values = []
    for part in _split(text) or [text]:
        try:
            value = int(part)
        except ValueError:
            raise UsageError(
                f"{option}: '{part}' is not an integer (e.g. {option} 1,2,8)"
            ) from None
        if value < 1:
            raise UsageError(f"{option}: must be at least 1, got {value}")
        values.append(value)
    return values


def parse_seconds(text: str, option: str) -> list[float]:
    """'1,5,180' -> [1.0, 5.0, 180.0]; every value finite and > 0, else UsageError."""
    values = []
    for part in _split(text) or [text]:
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{option}: '{part}' is not a number of seconds") from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{option}: must be > 0 seconds, got {part}")
        values.append(value)
    return values


def parse_names(text: str, known: list[str], option: str) -> list[str]:
    names = _split(text)
    if not names:
        raise UsageError(f"{option}: give at least one of {', '.join(known)}")
    for name in names:
        if name not in known:
            raise UsageError(f"{option}: unknown '{name}' (choose from {', '.join(known)})")
    return list(dict.fromkeys(names))


def bench(
    suite: Annotated[
        str | None,
        typer.Option(
            help="api | iir | fir | chain | file, or a comma list (default: iir,fir,api); "
            "grad: forward + backward of a learnable EQ (docs/learnable.md)"
        ),
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="channel counts, comma list (default: the suite's)")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="durations in seconds, comma list (default: the suite's)")
    ] = None,
    backends: Annotated[
        str | None, typer.Option(help="comma list (default: every available one)")
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda | cuda:N, or a comma list (cpu,cuda)")
    ] = "auto",
    repeat: Annotated[int, typer.Option(help="timed runs per measurement")] = 5,
    warmup: Annotated[int, typer.Option(help="untimed full runs first")] = 1,
    csv: Annotated[Path | None, typer.Option("--csv", help="write every row to this CSV")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write a throughput plot (PNG; needs matplotlib)")
    ] = None,
    chain: Annotated[
        str | None, typer.Option(help="chain file or preset for the chain (and file) suite")
    ] = None,
    rate: Annotated[int, typer.Option(help="sample rate in Hz")] = 44100,
    seed: Annotated[int, typer.Option(help="seed of the test signal")] = 0,
    tolerance: Annotated[
        float, typer.Option(help="flag an output whose relative error is above this")
    ] = 1e-3,
    chunk_seconds: Annotated[
        float, typer.Option(help="audiofx streaming chunk and file block (0: whole signal)")
    ] = 10.0,
    progress: Annotated[
        bool, typer.Option(help="progress bar on stderr (default: when it is a terminal)")
    ] = sys.stderr.isatty(),
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Benchmark audiofx against scipy, torchaudio and torchfx on the same signal."""
    if suite == "grad":
        with exit_on_error(debug):
            _grad(channels, duration, device, repeat)
        return
    with exit_on_error(debug):
        options, devices = _options(
            suite, channels, duration, backends, device, repeat, warmup, chain, rate, seed,
            tolerance, chunk_seconds, csv, plot,
        )  # fmt: skip
        from audiofx_cli.bench.runner import check_memory

        check_memory(options)
        from audiofx_cli.device import resolve_device  # imports torch from here on

        options.devices = list(dict.fromkeys(str(resolve_device(d)) for d in devices))
        result = _run(options, progress)
        from rich.console import Console

        from audiofx_cli.bench import report

        report.render(result, Console())
        if csv is not None:
            report.write_csv(result, csv)
            typer.echo(f"wrote {csv}", err=True)
        if plot is not None:
            from audiofx_cli.bench.plot import plot as make_plot

            make_plot(result.rows, plot)
            typer.echo(f"wrote {plot}", err=True)


def _grad(channels: str | None, duration: str | None, device: str, repeat: int) -> None:
    """`--suite grad` (audiofx_cli.bench.grad): one size, its own table."""
    chans = parse_ints(channels, "--channels") if channels is not None else [8]
    secs = parse_seconds(duration, "--duration") if duration is not None else [10.0]
    if len(chans) != 1 or len(secs) != 1 or repeat < 1:
        raise UsageError("--suite grad takes one --channels, one --duration and --repeat >= 1")
    from rich.console import Console

    from audiofx_cli.bench import grad
    from audiofx_cli.device import resolve_device

    target = str(resolve_device(check_device_name(device)))
    grad.render(grad.run_grad_bench(chans[0], secs[0], repeat=repeat, device=target), Console())


def _options(
    suite: str | None,
    channels: str | None,
    duration: str | None,
    backends: str | None,
    device: str,
    repeat: int,
    warmup: int,
    chain: str | None,
    rate: int,
    seed: int,
    tolerance: float,
    chunk_seconds: float,
    csv: Path | None,
    plot: Path | None,
) -> tuple[BenchOptions, list[str]]:
    from audiofx_cli.bench.backends import BACKENDS
    from audiofx_cli.bench.runner import BenchOptions
    from audiofx_cli.bench.suites import DEFAULT_SUITES, SUITES

    if suite is None:
        suites = ["chain"] if chain else list(DEFAULT_SUITES)
    else:
        suites = parse_names(suite, list(SUITES), "--suite")
    if chain is not None and not set(suites) & {"chain", "file"}:
        raise UsageError("--chain is for the chain and file suites (--suite chain or file)")
    if "chain" in suites and chain is None:
        raise UsageError("--suite chain needs --chain FILE_OR_PRESET")
    if chain is not None:
        from audiofx_cli.chain.spec import load_spec

        load_spec(chain)  # a bad chain is an error now, not after the first measurements
    devices = [check_device_name(d) for d in _split(device)] or ["auto"]
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")
    if warmup < 0:
        raise UsageError(f"--warmup must be 0 or more, got {warmup}")
    if rate < 1:
        raise UsageError(f"--rate must be a positive number of Hz, got {rate}")
    if not tolerance > 0:
        raise UsageError(f"--tolerance must be > 0, got {tolerance}")
    if not (math.isfinite(chunk_seconds) and chunk_seconds >= 0):
        raise UsageError(f"--chunk-seconds must be 0 (whole signal) or more, got {chunk_seconds}")
    for path, option in ((csv, "--csv"), (plot, "--plot")):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
    if plot is not None:
        from audiofx_cli.bench.plot import require_matplotlib

        require_matplotlib()
    chosen = parse_names(backends, list(BACKENDS), "--backends") if backends else None
    for name in suites:
        kind = SUITES[name].kind
        if chosen is not None and not any(kind in BACKENDS[b].kinds for b in chosen):
            able = [b for b in BACKENDS if kind in BACKENDS[b].kinds]
            raise UsageError(
                f"--backends {backends}: none of them runs the {name} suite "
                f"(it runs on {', '.join(able)})"
            )
    options = BenchOptions(
        suites=suites,
        channels=parse_ints(channels, "--channels") if channels is not None else None,
        durations_s=parse_seconds(duration, "--duration") if duration is not None else None,
        backends=chosen,
        repeat=repeat,
        warmup=warmup,
        rate_hz=rate,
        chain=chain,
        seed=seed,
        tolerance=tolerance,
        chunk_seconds=chunk_seconds,
    )
    return options, devices


def _run(options: BenchOptions, show_progress: bool) -> BenchResult:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from audiofx_cli.bench.runner import count_runs, run_bench

    if not show_progress:
        return run_bench(options)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("bench", total=count_runs(options))

        def update(text: str, done: float) -> None:
            bar.update(task, description=text, completed=done)

        return run_bench(options, update)


bench.__doc__ = (bench.__doc__ or "") + EXAMPLES
