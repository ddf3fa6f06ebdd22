"""The `audiofx` Typer app, joining one file per command. No torch import here; the entry point
is `audiofx_cli.cli.main.main`, which may hand the command to a running server first."""

from __future__ import annotations

from typing import Annotated

import typer

from audiofx_cli.cli.bench import bench
from audiofx_cli.cli.info import info
from audiofx_cli.cli.plot import plot
from audiofx_cli.cli.presets import presets
from audiofx_cli.cli.process import process
from audiofx_cli.cli.server import server
from audiofx_cli.cli.stages import stages
from audiofx_cli.cli.validate import validate
from audiofx_cli.cli.watch import watch

app = typer.Typer(
    name="audiofx",
    help="Batch audio processing on PyTorch: YAML chains of filters and effects, streamed in "
    "bounded memory.\n\nExit codes: 0 success, 1 processing failed, 2 usage or chain error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from audiofx_cli.cli.version import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="print the versions and exit"
        ),
    ] = False,
) -> None:
    """Batch audio processing on PyTorch."""


app.command()(process)
app.command()(watch)
app.command()(validate)
app.command()(stages)
app.command()(info)
app.command()(bench)
app.command()(plot)
app.add_typer(server)
app.add_typer(presets)
