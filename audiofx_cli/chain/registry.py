"""Stage name -> StageDef, collected from the torch-free family modules in `chain.defs`.

Adding a family: write `chain/defs/<family>.py` with a `DEFS` list and name it in FAMILIES.
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache

from audiofx_cli.chain.params import StageDef

FAMILIES = (
    "filters",
    "fir",
    "basic",
    "structure",
    "delays",
    "channels",
    "modulation",
    "space",
    "rate",
    "level",
    "dynamics",
    "distortion",
    "auditory",
    "spectral",
    "pooling",
)


@cache
def registry() -> dict[str, StageDef]:
    """All stage definitions by YAML name, in family order."""
    stages: dict[str, StageDef] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"audiofx_cli.chain.defs.{family}")
        for stage in module.DEFS:
            if stage.name in stages:
                raise RuntimeError(f"stage '{stage.name}' is defined twice")
            stages[stage.name] = stage
    return stages


def get_stage(name: str) -> StageDef | None:
    return registry().get(name)


def suggest(name: str, options: list[str] | None = None) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    options = list(registry()) if options is None else options
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_impl(stage: StageDef) -> type:
    """Import the nn.Module class of a stage (this imports torch)."""
    module_name, _, attr = stage.impl.partition(":")
    return getattr(importlib.import_module(module_name), attr)
