"""`audiofx info`: format, levels, loudness and sanity counts of audio files (torch-free)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiofx_cli.cli.common import DEBUG_HELP, NoServer, error
from audiofx_cli.errors import EXIT_FAILED, AudiofxError

ROWS = (
    "format",
    "sample rate",
    "channels",
    "duration",
    "peak",
    "true peak",
    "RMS",
    "integrated loudness",
    "DC offset",
    "clipped samples",
    "NaN/Inf samples",
)


def _level(value: float, unit: str) -> str:
    return f"{value:.2f} {unit}" if math.isfinite(value) else f"-inf {unit}"


def _values(stats: Any) -> list[str]:
    return [
        f"{stats.format} {stats.subtype}",
        f"{stats.sample_rate} Hz",
        f"{stats.channels}",
        f"{stats.duration_s:.3f} s ({stats.frames} frames)",
        _level(stats.peak_dbfs, "dBFS"),
        _level(stats.true_peak_dbtp, "dBTP"),
        _level(stats.rms_dbfs, "dBFS"),
        _level(stats.lufs, "LUFS"),
        " ".join(f"{v:+.6f}" for v in stats.dc_offset),
        f"{stats.clipped_samples}",
        f"{stats.nonfinite_samples}",
    ]


def render(stats: Any, console: Console) -> None:
    """The file's path (never wrapped: a long one stays one line to copy), then a two-column
    table (quantity, value)."""
    console.print(str(stats.path), soft_wrap=True, markup=False, highlight=False)
    table = Table(show_header=False)
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    for name, value in zip(ROWS, _values(stats), strict=True):
        table.add_row(name, value)
    console.print(table)


def info(
    files: Annotated[list[str], typer.Argument(help="audio files to analyse")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print a JSON list on stdout (for scripts)")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    no_server: NoServer = False,
) -> None:
    """Show format, duration, peak, true peak, RMS, integrated loudness (EBU R128), DC offset,
    clipped and NaN/Inf sample counts of audio files, streamed in blocks.

    [bold]Examples[/bold]

      audiofx info speech.wav

      audiofx info *.flac --json > levels.json

    An unreadable file gives one error line on stderr and exit code 1; the others are still
    reported.
    """
    from audiofx_cli.analysis import analyze_file  # numpy / scipy / soundfile, no torch

    results: list[Any] = []
    failed = False
    for path in files:
        try:
            results.append(analyze_file(path))
        except AudiofxError as exc:
            if debug:
                raise
            error(str(exc))
            results.append({"path": path, "error": str(exc)})
            failed = True
    if as_json:
        typer.echo(json.dumps([r if isinstance(r, dict) else r.as_json() for r in results]))
    else:
        console = Console()
        for result in results:
            if not isinstance(result, dict):
                render(result, console)
    if failed:
        raise typer.Exit(EXIT_FAILED)
