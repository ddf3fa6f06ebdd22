"""`audiofx stages`: list stages, or one stage's parameters (from the registry; torch-free)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from audiofx_cli.cli.common import exit_on_error
from audiofx_cli.errors import UsageError


def stages(
    name: Annotated[str | None, typer.Argument(help="a stage name to show its parameters")] = None,
) -> None:
    """List every stage with a one-line description, or one stage's parameters.

    [bold]Examples[/bold]

      audiofx stages

      audiofx stages highpass
    """
    from audiofx_cli.chain.registry import registry, suggest

    console = Console()
    with exit_on_error():
        stage_defs = registry()
        if name is None:
            table = Table(title="audiofx stages", show_lines=False)
            table.add_column("stage", style="bold")
            table.add_column("family")
            table.add_column("what it does")
            for stage in stage_defs.values():
                table.add_row(stage.name, stage.family, stage.summary)
            console.print(table)
            console.print("`audiofx stages NAME` shows a stage's parameters.")
            return
        stage = stage_defs.get(name)
        if stage is None:
            raise UsageError(f"unknown stage '{name}'{suggest(name)}; `audiofx stages` lists them")
        table = Table(title=f"{stage.name}: {stage.summary}")
        for column in ("key", "type", "default", "allowed", "meaning"):
            table.add_column(column, style="bold" if column == "key" else None)
        for param in stage.params:
            table.add_row(
                param.name, param.type_text(), param.default_text(), param.range_text(), param.doc
            )
        console.print(table)
        console.print(f"example:  {stage.example}")
