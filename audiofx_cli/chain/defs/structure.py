"""Structural stages: parallel branches and allow-listed torch modules."""

from __future__ import annotations

import re
from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError

MODULE_PREFIXES = ("torch.nn.", "torchaudio.transforms.")
_MODULE_NAME = re.compile(r"^(torch\.nn|torchaudio\.transforms)\.[A-Za-z_][A-Za-z0-9_]*$")


def _check_parallel(params: dict[str, Any], sample_rate: float | None) -> None:
    weights, branches = params["weights"], params["branches"]
    if weights is not None and len(weights) != len(branches):
        raise ParamError(
            "weights", f"needs one weight per branch ({len(branches)}), got {len(weights)}"
        )


def _check_module(params: dict[str, Any], sample_rate: float | None) -> None:
    name = params["name"]
    if not _MODULE_NAME.match(name):
        raise ParamError(
            "name",
            f"'{name}' is not allowed: only classes directly in torch.nn or "
            "torchaudio.transforms (e.g. torch.nn.Tanh, torchaudio.transforms.Vol)",
        )
    for key in params["args"]:
        if not isinstance(key, str) or not key.isidentifier():
            raise ParamError("args", f"argument names must be identifiers, got {key!r}")


DEFS = [
    StageDef(
        "parallel",
        "runs branches (stage lists) on the same input and sums their outputs",
        [
            Param("branches", "branches", "list of stage lists, each a chain of its own"),
            Param(
                "weights",
                "floats",
                "weight of each branch in the sum (default all 1)",
                default=None,
            ),
        ],
        "audiofx_cli.stages.structure:Parallel",
        "structure",
        "- parallel: {branches: [[{highpass: {cutoff_hz: 2000}}], [{lowpass: {cutoff_hz: 500}}]]}",
        _check_parallel,
    ),
    StageDef(
        "module",
        "a memoryless torch module from torch.nn or torchaudio.transforms",
        [
            Param("name", "str", "dotted class name, e.g. torchaudio.transforms.Vol"),
            Param("args", "mapping", "keyword arguments for the constructor", default={}),
        ],
        "audiofx_cli.stages.structure:TorchModule",
        "structure",
        "- module: {name: torch.nn.Hardtanh, args: {min_val: -0.5, max_val: 0.5}}",
        _check_module,
    ),
]
