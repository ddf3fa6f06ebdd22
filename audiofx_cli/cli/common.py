"""Shared CLI helpers: error reporting and exit codes (0 ok, 1 failed, 2 usage/chain)."""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from audiofx_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, AudiofxError, UsageError

DEBUG_HELP = "show a traceback on errors"
# Read by the entry point before the app runs (audiofx_cli.server.client); the app ignores it.
NoServer = Annotated[
    bool,
    typer.Option(
        "--no-server",
        help="run in this process even when an audiofx server runs (also AUDIOFX_SERVER=off)",
    ),
]


# The processing options `process` and `watch` share (defaults stay in each signature).
SanitizeOption = Annotated[
    bool, typer.Option("--sanitize", help="replace NaN/Inf input samples instead of failing")
]
DitherOption = Annotated[
    str, typer.Option(help="tpdf | none: dither when writing integer PCM (seeded)")
]
FuseOption = Annotated[
    bool, typer.Option("--fuse/--no-fuse", help="fuse runs of linear stages (same output)")
]
DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")]
ChunkSecondsOption = Annotated[
    float, typer.Option(help="chunk length in seconds (memory is bounded by it)")
]
PrecisionOption = Annotated[str, typer.Option(help="float32 | float64 processing")]
SubtypeOption = Annotated[
    str | None,
    typer.Option(
        help="output subtype PCM_16 | PCM_24 | PCM_32 | FLOAT | DOUBLE (default: the input's);"
        " feature files FLOAT | DOUBLE | HALF | BFLOAT16"
    ),
]


def check_processing(device: str, precision: str, chunk_seconds: float) -> None:
    """Raises UsageError for a processing option out of range (before anything is read)."""
    from audiofx_cli.device import PRECISIONS, check_device_name

    check_device_name(device)
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}' (use float32 or float64)")
    if not (chunk_seconds > 0 and math.isfinite(chunk_seconds)):
        raise UsageError(f"--chunk-seconds must be > 0, got {chunk_seconds:g}")


def processing_kwargs(
    *,
    device: str,
    precision: str,
    chunk_seconds: float,
    subtype: str | None,
    overwrite: bool,
    sanitize: bool,
    dither: str,
    fuse: bool,
) -> dict[str, Any]:
    """What `process` and `watch` pass to each file's `process_file`, by its keyword names."""
    return {
        "device": device,
        "precision": precision,
        "chunk_seconds": chunk_seconds,
        "subtype": subtype,
        "overwrite": overwrite,
        "sanitize": sanitize,
        "dither": dither,
        "fuse": fuse,
    }


def error(message: str) -> None:
    typer.echo(f"audiofx: error: {message}", err=True)


def warn(message: str) -> None:
    typer.echo(f"audiofx: warning: {message}", err=True)


@contextmanager
def exit_on_error(debug: bool = False) -> Iterator[None]:
    """Turn audiofx errors into one line on stderr and the documented exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except AudiofxError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted; no partial output was left")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc(file=sys.stderr)
        error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        raise typer.Exit(EXIT_FAILED) from None
