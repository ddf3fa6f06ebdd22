"""Output paths for a batch: `--out-dir` mirrors the inputs' folders, `--name` names the files.

Every collision (two inputs to one output, an output that is an input) is an error before
anything runs. Torch-free.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path

from audiofx_cli.batch.inputs import InputFile
from audiofx_cli.errors import UsageError
from audiofx_cli.io.urls import Location, URLPath

NAME_FIELDS = ("stem", "ext", "chain", "parent")
DEFAULT_NAME = "{stem}.{ext}"


@dataclass(frozen=True)
class Task:
    """One file of a batch."""

    input: Location
    output: Location


def check_template(template: str) -> None:
    """Raises UsageError for unknown fields or a name without an extension."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise UsageError(f"--name '{template}': {exc}") from None
    for field in fields:
        if field not in NAME_FIELDS:
            raise UsageError(
                f"--name '{template}': unknown field {{{field}}} (use "
                + ", ".join(f"{{{f}}}" for f in NAME_FIELDS)
                + ")"
            )
    if "/" in template or "\\" in template:
        raise UsageError(f"--name '{template}' must be a file name, not a path")


def output_name(template: str, item: InputFile, chain_name: str, default_ext: str | None) -> str:
    ext = default_ext or item.path.suffix.lstrip(".") or "wav"
    parent = item.path.parent if isinstance(item.path, URLPath) else item.path.resolve().parent
    name = template.format(stem=item.path.stem, ext=ext, chain=chain_name, parent=parent.name)
    if not Path(name).suffix:
        raise UsageError(
            f"--name '{template}' gives '{name}', which has no extension (the "
            "output format comes from it)"
        )
    return name


def _identity(loc: Location) -> str:
    """What makes two locations the same: the URL, or the real local path."""
    if isinstance(loc, URLPath):
        return str(loc)
    return os.path.normcase(os.path.realpath(loc))


def plan(
    items: list[InputFile],
    out_dir: Location,
    template: str = DEFAULT_NAME,
    chain_name: str = "chain",
    default_ext: str | None = None,
) -> list[Task]:
    """Map inputs to outputs under out_dir (mirroring relative folders).

    Args:
        default_ext: extension used for {ext} instead of the input's (e.g. 'npz' when the chain
            writes features).

    Raises:
        UsageError: two inputs map to one output, or an output is one of the inputs.
    """
    check_template(template)
    tasks: list[Task] = []
    by_output: dict[str, Location] = {}
    inputs = {_identity(item.path) for item in items}
    for item in items:
        name = output_name(template, item, chain_name, default_ext)
        output = out_dir / item.relative.parent / name
        key = _identity(output)
        if key in by_output:
            raise UsageError(
                f"{by_output[key]} and {item.path} would both be written to "
                f"{output}; use --name with {{parent}} or keep folders apart"
            )
        if key in inputs:
            raise UsageError(
                f"{output} would overwrite an input; choose another --out-dir or --name"
            )
        by_output[key] = item.path
        tasks.append(Task(item.path, output))
    return tasks
