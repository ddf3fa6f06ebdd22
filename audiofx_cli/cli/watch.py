"""`audiofx watch`: process files as they arrive in a drop folder (`batch.watch` decides which)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from audiofx_cli.chain.inline import chain_name, is_feature_chain
from audiofx_cli.cli.chain_options import (
    BitsOption,
    ChainOption,
    ChannelsOption,
    RateOption,
    StageOption,
    bits_subtype,
    chain_from_options,
)
from audiofx_cli.cli.common import (
    DEBUG_HELP,
    ChunkSecondsOption,
    DeviceOption,
    DitherOption,
    FuseOption,
    NoServer,
    PrecisionOption,
    SanitizeOption,
    SubtypeOption,
    check_processing,
    error,
    exit_on_error,
    processing_kwargs,
)
from audiofx_cli.errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from audiofx_cli.batch.report import BatchSummary
    from audiofx_cli.batch.runner import FileResult
    from audiofx_cli.chain.spec import ChainSpec

HELP = """Process files as they arrive in a drop folder, until Ctrl-C (or once, with --once).

[bold]Examples[/bold]

  audiofx watch drop/ --chain podcast --out-dir done/

  audiofx watch drop/ -c vocal --out-dir done/ --recursive --json done/report.json

  audiofx watch drop/ -c rumble --out-dir done/ --once -q        # from cron

  audiofx watch drop/ --out-dir ml/ -e highpass:cutoff_hz=60 -r 16k -C 1 --name '{stem}.flac'

  audiofx watch drop/ -c vocal --out-dir done/ --settle-seconds 10 --name '{stem}_fx.{ext}'

A file is taken once its size and modification time have not changed for --settle-seconds
(the folder is polled every --poll-seconds), so a file still being written is never read.
Outputs are named as with process --out-dir. An input whose output exists and is not older
than the input is skipped, so a restart resumes; an input changed later is processed again.
A file that fails is reported once and not retried until it changes. Hidden files and folders
are ignored. Exit codes: 0 success, 1 a file failed (--once), 2 usage or chain-spec error,
130 interrupted (the file in progress is aborted; no partial output is left).
"""


def _check_options(
    settle_s: float, poll_s: float, chunk_seconds: float, device: str, precision: str
) -> None:
    """Raises UsageError for an option out of range."""
    check_processing(device, precision, chunk_seconds)
    if not (math.isfinite(settle_s) and settle_s >= 0):
        raise UsageError(f"--settle-seconds must be >= 0, got {settle_s:g}")
    if not (math.isfinite(poll_s) and poll_s > 0):
        raise UsageError(f"--poll-seconds must be > 0, got {poll_s:g}")


def _output_ext(spec: ChainSpec) -> str | None:
    """'npz' for a chain that ends in features (as process names them), else the input's."""
    return "npz" if is_feature_chain(spec) else None


class _Report:
    """Results as they come: one line each on stderr, the JSON report rewritten after each."""

    def __init__(self, spec: ChainSpec, json_path: str | None, quiet: bool) -> None:
        from audiofx_cli.batch.report import BatchSummary

        self.spec, self.json_path, self.quiet = spec, json_path, quiet
        self.summary: BatchSummary = BatchSummary(0)

    def add(self, result: FileResult) -> None:
        self.summary.results.append(result)
        self.summary.total = len(self.summary.results)
        self.write()
        if result.status == "failed":
            error(result.error or f"{result.input}: failed")
        elif not self.quiet and result.status == "skipped":
            typer.echo(f"skipped {result.input}: {result.error} ({result.output})", err=True)
        elif not self.quiet:
            typer.echo(
                f"wrote {result.output}: {result.duration_s:.2f} s from {result.input} "
                f"({result.processing_s:.2f} s)",
                err=True,
            )

    def write(self) -> None:
        if self.json_path:
            from audiofx_cli.batch.report import write_json_report

            write_json_report(Path(self.json_path), self.summary, self.spec)

    def exit_code(self) -> int:
        counts = {s: self.summary.count(s) for s in ("ok", "skipped", "failed")}
        if not self.quiet:
            typer.echo(
                f"watch: {self.summary.total} files, {counts['ok']} ok, {counts['skipped']} "
                f"skipped, {counts['failed']} failed",
                err=True,
            )
        return EXIT_FAILED if counts["failed"] else 0


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot create output folder: {exc.strerror or exc}") from None


def _run(
    folder: Path,
    out_dir: Path,
    spec: ChainSpec,
    kwargs: dict[str, Any],
    report: _Report,
    *,
    name: str,
    recursive: bool,
    settle_s: float,
    poll_s: float,
    once: bool,
) -> None:
    """Set up the library's watcher and run it; the report is written on every way out."""
    from audiofx_cli.batch import watch as drop
    from audiofx_cli.batch.plan import check_template
    from audiofx_cli.batch.runner import BatchOptions, run_task

    exclude = drop.check_folders(folder, out_dir, recursive)
    check_template(name)
    _make_out_dir(out_dir)
    namer = drop.Namer(folder, out_dir, name, chain_name(spec), _output_ext(spec))
    options = BatchOptions(process_kwargs=kwargs)

    def on_file(path: Path, stamp: drop.Stamp) -> None:
        result = drop.handle(path, stamp, namer, lambda task: run_task(task, spec, options))
        if result is not None:
            report.add(result)

    if not (once or report.quiet):
        typer.echo(f"audiofx: watching {folder} -> {out_dir} (Ctrl-C stops)", err=True)
    try:
        drop.watch(
            drop.Settling(settle_s),
            lambda: drop.scan(folder, recursive, exclude),
            on_file,
            poll_s=poll_s,
            once=once,
        )
    except KeyboardInterrupt:
        report.summary.interrupted = True
        raise
    finally:
        report.write()


def watch(
    directory: Annotated[Path, typer.Argument(help="the drop folder to watch", show_default=False)],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir", help="output folder (mirrors sub-folders); not the watched folder"
        ),
    ],
    name: Annotated[
        str, typer.Option(help="output name template: {stem} {ext} {chain} {parent}")
    ] = "{stem}.{ext}",
    chain: ChainOption = None,
    stage: StageOption = None,
    rate: RateOption = None,
    channels: ChannelsOption = None,
    bits: BitsOption = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="watch sub-folders too")
    ] = False,
    settle_seconds: Annotated[
        float,
        typer.Option(help="a file is taken once its size and mtime are unchanged this long"),
    ] = 2.0,
    poll_seconds: Annotated[float, typer.Option(help="how often the folder is scanned")] = 0.5,
    once: Annotated[
        bool,
        typer.Option("--once", help="process what is there (once settled) and exit (for cron)"),
    ] = False,
    json_path: Annotated[
        str | None,
        typer.Option(
            "--json", help="write a JSON report after each file (as process --out-dir does)"
        ),
    ] = None,
    sanitize: SanitizeOption = False,
    dither: DitherOption = "tpdf",
    fuse: FuseOption = True,
    device: DeviceOption = "auto",
    chunk_seconds: ChunkSecondsOption = 10.0,
    precision: PrecisionOption = "float32",
    subtype: SubtypeOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print errors only")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    no_server: NoServer = False,
) -> None:
    with exit_on_error(debug):
        _check_options(settle_seconds, poll_seconds, chunk_seconds, device, precision)
        spec = chain_from_options(chain, stage, rate, channels)
        kwargs = processing_kwargs(
            device=device,
            precision=precision,
            chunk_seconds=chunk_seconds,
            subtype=bits_subtype(bits, subtype),
            overwrite=True,  # only outputs older than their input are written over
            sanitize=sanitize,
            dither=dither,
            fuse=fuse,
        )
        report = _Report(spec, json_path, quiet)
        _run(
            directory,
            out_dir,
            spec,
            kwargs,
            report,
            name=name,
            recursive=recursive,
            settle_s=settle_seconds,
            poll_s=poll_seconds,
            once=once,
        )
        code = report.exit_code() if once else 0
        if code:
            raise typer.Exit(code)


watch.__doc__ = HELP
