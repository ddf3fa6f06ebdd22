"""`audiofx process`: run a chain over an audio file."""

from __future__ import annotations

from typing import Annotated

import typer

from audiofx_cli.cli.common import DEBUG_HELP, exit_on_error, warn
from audiofx_cli.device import PRECISIONS, check_device_name
from audiofx_cli.errors import UsageError

EXAMPLES = """

[bold]Examples[/bold]

  audiofx process speech.wav --chain vocal -o speech_vocal.wav

  audiofx process in.flac --chain my_chain.yaml -o out.flac --device auto --chunk-seconds 5

Exit codes: 0 success, 1 processing failed, 2 usage or chain-spec error (nothing written).
"""


def process(
    input: Annotated[str, typer.Argument(help="audio file to process (any libsndfile format)")],
    chain: Annotated[
        str, typer.Option("--chain", "-c", help="chain YAML file or preset name (vocal, ...)")
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="output file; format from its extension")
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    chunk_seconds: Annotated[
        float, typer.Option(help="chunk length in seconds (memory is bounded by it)")
    ] = 10.0,
    precision: Annotated[str, typer.Option(help="float32 | float64 processing")] = "float32",
    subtype: Annotated[
        str | None,
        typer.Option(
            help="output subtype PCM_16 | PCM_24 | PCM_32 | FLOAT | DOUBLE (default: the input's)"
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print errors only")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Process an audio file through a chain and write the result (atomically)."""
    with exit_on_error(debug):
        if output is None:
            raise UsageError("give an output file with -o OUT")
        check_device_name(device)
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{precision}' (use float32 or float64)")
        from audiofx_cli.api import process_file  # imports torch

        report = process_file(
            input,
            output,
            chain,
            device=device,
            precision=precision,
            chunk_seconds=chunk_seconds,
            subtype=subtype,
            overwrite=overwrite,
        )
        if report.clipped_samples:
            total = report.output_frames * report.output_channels
            warn(
                f"{report.output}: clipped {report.clipped_samples} samples "
                f"({100 * report.clipped_samples / max(total, 1):.3g} %); lower the gain or "
                "write --subtype FLOAT"
            )
        if not quiet:
            typer.echo(
                f"wrote {report.output}: {report.duration_s:.2f} s, "
                f"{report.output_rate:g} Hz, {report.output_channels} ch, {report.format} "
                f"{report.subtype}, peak {report.peak_dbfs:.1f} dBFS "
                f"({report.seconds:.2f} s, {report.realtime_factor:.0f}x real time on "
                f"{report.device})",
                err=True,
            )


process.__doc__ = (process.__doc__ or "") + EXAMPLES
