"""`audiofx presets`: list, show, save and remove presets (a person's own live in
$XDG_CONFIG_HOME/audiofx/presets, or the folders AUDIOFX_PRESETS lists; see chain.presets)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from audiofx_cli.cli.chain_options import StageOption, chain_from_options, complete_chain
from audiofx_cli.cli.common import exit_on_error
from audiofx_cli.errors import UsageError

SUMMARY_CHARS = 70
presets = typer.Typer(
    name="presets",
    help="""List, show, save and remove presets (shipped ones and your own).

[bold]Examples[/bold]

  audiofx presets list

  audiofx presets show vocal

  audiofx presets save my-voice chain.yaml

  audiofx presets save hp80 -e highpass:cutoff_hz=80 -e 'gain gain_db=-3'

  audiofx process in.wav -c my-voice -o out.wav      (or -c user:my-voice)

  audiofx presets remove my-voice

Your presets live in $XDG_CONFIG_HOME/audiofx/presets (~/.config/audiofx/presets), or in the
folders AUDIOFX_PRESETS lists (':'-separated; save writes to the first). A shipped name cannot
be saved; a name found in both places must be given as preset:NAME or user:NAME.
""",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _summary(path: Path) -> str:
    """A preset's description (its first line), or its stage names when it has none."""
    from audiofx_cli.chain.spec import load_spec

    try:
        spec = load_spec(path)
    except UsageError as exc:
        return f"(invalid: {exc})"
    if spec.description:
        return textwrap.shorten(spec.description, SUMMARY_CHARS, placeholder=" ...")
    return " -> ".join(s.name for s in spec.stages) or "(no stages)"


@presets.command("list")
def list_presets() -> None:
    """List shipped and user presets with where they are and what they do."""
    from rich.console import Console
    from rich.table import Table

    from audiofx_cli.chain.presets import all_presets, user_dirs

    with exit_on_error():
        table = Table(title="audiofx presets")
        table.add_column("preset", style="bold")
        table.add_column("where")
        table.add_column("what it does")
        for preset in all_presets():
            where = "shipped" if preset.shipped else "user"
            table.add_row(preset.name, where, _summary(preset.path))
        console = Console()
        console.print(table)
        console.print(
            f"Your presets: {':'.join(map(str, user_dirs()))} "
            "(`audiofx presets save NAME FILE` adds one)."
        )


@presets.command("show")
def show(
    name: Annotated[str, typer.Argument(help="preset name", autocompletion=complete_chain)],
) -> None:
    """Print a preset's chain file."""
    from audiofx_cli.chain.presets import find_preset

    with exit_on_error():
        preset = find_preset(name)
        typer.echo(f"# {preset.label}: {preset.path}")
        typer.echo(preset.path.read_text(encoding="utf-8"), nl=False)


def _preset_text(name: str, chain: str | None, stage: list[str] | None) -> str:
    """What `save` writes: a chain file's own text (comments kept) when it is one file that
    names no other file; else the validated chain in full (absolute paths, defaults filled)."""
    from audiofx_cli.chain.inline import dump_yaml
    from audiofx_cli.chain.spec import is_inline_yaml, resolve_chain

    spec = chain_from_options(chain, stage)
    names_files = any(_names_files(s) for s in spec.stages)
    if chain is not None and not stage and not names_files and not is_inline_yaml(chain):
        if "://" not in chain:
            path, _ = resolve_chain(chain)
            return path.read_text(encoding="utf-8")
    spec.name = name
    return dump_yaml(spec)


def _names_files(stage: Any) -> bool:
    """Whether a stage (or one in its branches) names a file (taps, an impulse response)."""
    if any(
        stage.params.get(p.name) is not None for p in stage.definition.params if p.kind == "path"
    ):
        return True
    return any(_names_files(s) for b in stage.params.get("branches") or [] for s in b)


@presets.command("save")
def save(
    name: Annotated[str, typer.Argument(help="the new preset's name")],
    chain: Annotated[
        str | None,
        typer.Argument(
            help="chain file, preset or YAML text to save", autocompletion=complete_chain
        ),
    ] = None,
    stage: StageOption = None,
    force: Annotated[bool, typer.Option("--force", help="replace a user preset")] = False,
) -> None:
    """Validate a chain and save it as a user preset."""
    from audiofx_cli.chain.presets import check_name, save_preset

    with exit_on_error():
        check_name(name)
        if chain is None and not stage:
            raise UsageError("give a chain file (or preset, or YAML text) or -e stages to save")
        path = save_preset(name, _preset_text(name, chain, stage), overwrite=force)
        typer.echo(f"saved preset '{name}': {path}", err=True)


@presets.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="user preset name", autocompletion=complete_chain)],
) -> None:
    """Delete a user preset (shipped presets cannot be removed)."""
    from audiofx_cli.chain.presets import remove_preset

    with exit_on_error():
        path = remove_preset(name)
        typer.echo(f"removed preset '{name.removeprefix('user:')}': {path}", err=True)
