"""`audiofx bench`: every backend side by side on the same signal, table, CSV and plots.

Arguments are checked before torch is imported; a plan that cannot fit in the memory budget is
refused before anything runs (exit 2). Progress goes to stderr (a bar on a terminal, one line
per finished measurement elsewhere); the table (or CSV, JSON) to stdout.
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

  audiofx bench --channels 8 --duration 600 > bench.log 2>&1    # about 5 min (--budget)

  audiofx bench --channels 8 --duration 600 --budget 0 --repeat 5  # every row in full

  audiofx bench --suite iir --channels 1,2,4,8,12 --duration 1,5,180,300,600 --csv iir.csv

  audiofx bench --suite fir --backends audiofx,scipy,torchaudio --device cpu --repeat 10

  audiofx bench --chain presets/vocal.yaml --duration 60 --channels 2 --plot vocal.png

  audiofx bench --suite file --duration 600 --channels 8

  audiofx bench --suite loop --files 20 --duration 1.4

  audiofx bench --suite effects --channels 2 --duration 60 --csv effects.csv

Suites: api, iir, fir (default: all three), chain (--chain), file (decode + chain + encode),
loop (one `audiofx process` per file: in-process, with a server, and SoX), effects (every
non-linear stage beside pedalboard, SoX and torchfx; --stages picks some).

Backends: audiofx, scipy, scipy-sos, scipy-oa, torchaudio, torchfx (if installed), io-only;
for the effects suite: audiofx, pedalboard, sox, torchfx.

Budgets: the whole run takes about --budget seconds (default 300; 0: no limit): audiofx's
rows always run in full, slower peers get fewer repeats or run on the first seconds of the same
signal (marked * in the table; slice_s, repeats_done in the CSV). Each measurement also stays
within --memory-share of the memory available (run on a slice, or skipped with a note).

Exit codes: 0 done (wrong outputs are flagged in the table and the CSV), 2 bad arguments or a
plan that does not fit in the memory budget.
"""

FORMATS = ("table", "csv", "json")
DEFAULT_REPEAT = 5
DEFAULT_BUDGET_S = 300.0


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
            help="api | iir | fir | chain | file | loop | effects, or a comma list "
            "(default: iir,fir,api); grad: forward + backward of a learnable EQ "
            "(docs/learnable.md)"
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
    repeat: Annotated[
        int | None,
        typer.Option(
            help="timed runs per measurement (default 5; the time budget may give slow peers "
            "fewer, down to 3); given, every row runs exactly N"
        ),
    ] = None,
    warmup: Annotated[int, typer.Option(help="untimed full runs first")] = 1,
    budget: Annotated[
        float,
        typer.Option(
            help="time budget of the whole run in seconds (0: none); audiofx's rows always "
            "run in full, slower peers run fewer repeats or a slice of the signal"
        ),
    ] = DEFAULT_BUDGET_S,
    memory_share: Annotated[
        float,
        typer.Option(help="keep the process's memory within this share of what is available"),
    ] = 0.5,
    output_format: Annotated[
        str, typer.Option("--format", help="stdout: table | csv | json")
    ] = "table",
    csv: Annotated[Path | None, typer.Option("--csv", help="write every row to this CSV")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write a throughput plot (PNG; needs matplotlib)")
    ] = None,
    chain: Annotated[
        str | None, typer.Option(help="chain file or preset for the chain, file and loop suites")
    ] = None,
    rate: Annotated[
        int | None, typer.Option(help="sample rate in Hz (default: 44100; 48000 for --suite loop)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the test signal")] = 0,
    tolerance: Annotated[
        float, typer.Option(help="flag an output whose relative error is above this")
    ] = 1e-3,
    chunk_seconds: Annotated[
        float, typer.Option(help="audiofx streaming chunk and file block (0: whole signal)")
    ] = 10.0,
    files: Annotated[int, typer.Option(help="loop suite: files, one `audiofx process` each")] = 20,
    progress: Annotated[
        bool | None,
        typer.Option(
            help="progress bar on stderr (default: when it is a terminal; else one line per "
            "finished measurement)"
        ),
    ] = None,
    stages: Annotated[
        str | None, typer.Option(help="effects suite: which stages, comma list (default: all)")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Benchmark audiofx against scipy, torchaudio and torchfx on the same signal."""
    if suite == "grad":
        with exit_on_error(debug):
            _grad(channels, duration, device, repeat)
        return
    with exit_on_error(debug):
        if suite is not None and "effects" in _split(suite):  # its own runner and table
            if _split(suite) != ["effects"] or chain is not None or plot is not None:
                raise UsageError(
                    "--suite effects runs on its own (no other suite, --chain, --plot)"
                )
            from audiofx_cli.cli import bench_effects

            bench_effects.run(
                stages=stages, channels=channels, duration=duration, backends=backends,
                device=device, repeat=repeat, warmup=warmup, csv=csv, rate=rate, seed=seed,
                tolerance=tolerance, chunk_seconds=chunk_seconds,
                progress=sys.stderr.isatty() if progress is None else progress,
            )  # fmt: skip
            return
        if stages is not None:
            raise UsageError("--stages is for --suite effects")
        options, devices = _options(
            suite, channels, duration, backends, device, repeat, warmup, chain, rate, seed,
            tolerance, chunk_seconds, csv, plot, files,
        )  # fmt: skip
        _budgets(options, budget, memory_share, output_format)
        from audiofx_cli.bench.runner import check_memory

        check_memory(options)
        from audiofx_cli.device import resolve_device  # imports torch from here on

        options.devices = list(dict.fromkeys(str(resolve_device(d)) for d in devices))
        result = _run(options, sys.stderr.isatty() if progress is None else progress)
        _print(result, output_format)
        if csv is not None:
            from audiofx_cli.bench import report

            report.write_csv(result, csv)
            typer.echo(f"wrote {csv}", err=True)
        if plot is not None:
            from audiofx_cli.bench.plot import plot as make_plot

            make_plot(result.rows, plot)
            typer.echo(f"wrote {plot}", err=True)


def _grad(channels: str | None, duration: str | None, device: str, repeat: int | None) -> None:
    """`--suite grad` (audiofx_cli.bench.grad): one size, its own table."""
    repeat = 5 if repeat is None else repeat
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
    repeat: int | None,
    warmup: int,
    chain: str | None,
    rate: int,
    seed: int,
    tolerance: float,
    chunk_seconds: float,
    csv: Path | None,
    plot: Path | None,
    files: int = 20,
) -> tuple[BenchOptions, list[str]]:
    from audiofx_cli.bench.backends import BACKENDS
    from audiofx_cli.bench.runner import BenchOptions
    from audiofx_cli.bench.suites import DEFAULT_SUITES, SUITES

    if suite is None:
        suites = ["chain"] if chain else list(DEFAULT_SUITES)
    else:
        suites = parse_names(suite, list(SUITES), "--suite")
    if chain is not None and not set(suites) & {"chain", "file", "loop"}:
        raise UsageError("--chain is for the chain and file suites and the loop suite")
    if "chain" in suites and chain is None:
        raise UsageError("--suite chain needs --chain FILE_OR_PRESET")
    if chain is not None:
        from audiofx_cli.chain.spec import load_spec

        load_spec(chain)  # a bad chain is an error now, not after the first measurements
    devices = [check_device_name(d) for d in _split(device)] or ["auto"]
    if repeat is not None and repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")
    if warmup < 0:
        raise UsageError(f"--warmup must be 0 or more, got {warmup}")
    if rate is not None and rate < 1:
        raise UsageError(f"--rate must be a positive number of Hz, got {rate}")
    if files < 1:
        raise UsageError(f"--files must be at least 1, got {files}")
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
        if (
            chosen is not None
            and kind != "loop"
            and not any(kind in BACKENDS[b].kinds for b in chosen)
        ):
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
        repeat=DEFAULT_REPEAT if repeat is None else repeat,
        repeat_forced=repeat is not None,
        warmup=warmup,
        rate_hz=rate or min(SUITES[name].rate_hz for name in suites),
        chain=chain,
        seed=seed,
        tolerance=tolerance,
        chunk_seconds=chunk_seconds,
        files=files,
    )
    return options, devices


def _budgets(options: BenchOptions, budget_s: float, share: float, output_format: str) -> None:
    """Check --budget, --memory-share and --format, and set the budgets on `options`."""
    if not (math.isfinite(budget_s) and budget_s >= 0):
        raise UsageError(f"--budget must be 0 (no limit) or more seconds, got {budget_s:g}")
    if not (math.isfinite(share) and 0 < share <= 1):
        raise UsageError(f"--memory-share must be in (0, 1], got {share:g}")
    if output_format not in FORMATS:
        raise UsageError(f"--format: unknown '{output_format}' (choose from {', '.join(FORMATS)})")
    options.budget_s = budget_s or None
    options.memory_share = share


def _run(options: BenchOptions, show_progress: bool) -> BenchResult:
    """Run with a progress bar on stderr, or one plain line per measurement there."""
    from audiofx_cli.bench.live import LogLines, ProgressBar
    from audiofx_cli.bench.runner import run_bench

    if not show_progress:
        return run_bench(options, LogLines(sys.stderr))
    from rich.console import Console

    with ProgressBar(Console(stderr=True)) as bar:
        return run_bench(options, bar)


def _print(result: BenchResult, output_format: str) -> None:
    """The result on stdout: a rich table on a terminal, plain aligned text elsewhere, or CSV
    or JSON (then the summary and the footer go to stderr)."""
    from audiofx_cli.bench import report

    if output_format == "table":
        if sys.stdout.isatty():
            from rich.console import Console

            report.render(result, Console())
        else:
            report.render_plain(result, sys.stdout)
    else:
        text = report.csv_text(result) if output_format == "csv" else report.json_text(result)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        for line in [*report.summary_lines(result), report.footer_line(result)]:
            typer.echo(line, err=True)
    sys.stdout.flush()


bench.__doc__ = (bench.__doc__ or "") + EXAMPLES
