"""`audiofx stages`: list stages, one stage's parameters, or the Markdown reference (STAGES.md).

Everything comes from the registry's torch-free stage definitions; torch is never imported.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from audiofx_cli.cli.common import NoServer, exit_on_error
from audiofx_cli.errors import UsageError

REGENERATE = "audiofx stages --markdown > STAGES.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") if text else ""


def _stage_markdown(stage) -> list[str]:  # type: ignore[no-untyped-def]
    summary = stage.summary.strip()
    summary = summary[:1].upper() + summary[1:]
    if not summary.endswith((".", "!", "?", ")")):
        summary += "."
    lines = [f"### `{stage.name}`", "", summary, ""]
    if stage.params:
        lines += [
            "| key | type | unit | default | allowed | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for p in stage.params:
            allowed = p.range_text()
            if p.unit and allowed.endswith(f" {p.unit}"):
                allowed = allowed[: -len(p.unit) - 1]
            row = [
                f"`{p.name}`",
                p.type_text(),
                p.unit,
                p.default_text(),
                allowed,
                p.doc,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
    else:
        lines += ["No parameters.", ""]
    lines += ["```yaml", stage.example.strip(), "```", ""]
    return lines


def stages_markdown(names: list[str] | None = None) -> str:
    """The stage reference in Markdown, from the registry (deterministic: registry order).

    Args:
        names: only these stages (default: all, grouped by family, with a contents table).

    Returns:
        The text of STAGES.md (regenerate with `audiofx stages --markdown > STAGES.md`).
    """
    from audiofx_cli.chain.registry import registry

    stage_defs = registry()
    chosen = [stage_defs[n] for n in names] if names else list(stage_defs.values())
    if names:
        return "\n".join(line for s in chosen for line in _stage_markdown(s))
    families: dict[str, list] = {}
    for stage in chosen:
        families.setdefault(stage.family, []).append(stage)
    lines = [
        "# audiofx stage reference",
        "",
        f"Generated from the stage registry by `{REGENERATE}`; do not edit by hand.",
        "A test fails when this file is stale. In a chain file each stage is one list item,",
        "`- name: {key: value, ...}`, or a bare `- name` for the defaults. `required` keys must",
        "be given; `Nyquist` means half the sample rate of the audio the chain processes.",
        "",
        f"{len(chosen)} stages in {len(families)} families.",
        "",
        "| stage | family | what it does |",
        "|---|---|---|",
    ]
    for stage in chosen:
        lines.append(
            f"| [`{stage.name}`](#{stage.name.lower()}) | {stage.family} | {_cell(stage.summary)} |"
        )
    lines.append("")
    for family, members in families.items():
        lines += [f"## {family}", ""]
        for stage in members:
            lines += _stage_markdown(stage)
    return "\n".join(lines).rstrip("\n") + "\n"


def _presets_line() -> str:
    """Presets, shipped and the user's, for the end of the stage list."""
    from audiofx_cli.chain.presets import shipped_presets, user_presets

    line = f"Presets (-c NAME): {', '.join(shipped_presets())}"
    mine = list(user_presets())
    if mine:
        line += f"; yours: {', '.join(mine)}"
    return line + " (`audiofx presets list` describes them)."


def stages(
    name: Annotated[str | None, typer.Argument(help="a stage name to show its parameters")] = None,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="print the stage reference as Markdown (all stages, or NAME) to stdout",
        ),
    ] = False,
    no_server: NoServer = False,
) -> None:
    """List every stage with a one-line description, or one stage's parameters.

    [bold]Examples[/bold]

      audiofx stages

      audiofx stages highpass

      audiofx stages --markdown > STAGES.md
    """
    from audiofx_cli.chain.registry import registry, suggest

    console = Console()
    with exit_on_error():
        stage_defs = registry()
        if name is not None and name not in stage_defs:
            raise UsageError(f"unknown stage '{name}'{suggest(name)}; `audiofx stages` lists them")
        if markdown:
            typer.echo(stages_markdown([name] if name else None), nl=False)
            return
        if name is None:
            table = Table(title="audiofx stages", show_lines=False)
            table.add_column("stage", style="bold")
            table.add_column("family")
            table.add_column("what it does")
            for stage in stage_defs.values():
                table.add_row(stage.name, stage.family, stage.summary)
            console.print(table)
            console.print("`audiofx stages NAME` shows a stage's parameters.")
            console.print(_presets_line())
            return
        stage = stage_defs[name]
        table = Table(title=f"{stage.name}: {stage.summary}")
        for column in ("key", "type", "default", "allowed", "meaning"):
            table.add_column(column, style="bold" if column == "key" else None)
        for param in stage.params:
            table.add_row(
                param.name, param.type_text(), param.default_text(), param.range_text(), param.doc
            )
        console.print(table)
        console.print(f"example:  {stage.example}")
