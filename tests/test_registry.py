"""The registry and the stage classes agree: every YAML key is a constructor keyword with the
same default, and every class knows its YAML name. Catches drift between `chain/defs` (what
`audiofx stages` and `validate` show) and `stages/` (what runs)."""

from __future__ import annotations

import inspect

import pytest

from audiofx_cli.chain.params import REQUIRED
from audiofx_cli.chain.registry import load_impl, registry

NAMES = sorted(registry())


@pytest.mark.parametrize("name", NAMES)
def test_constructor_matches_registry(name):
    stage_def = registry()[name]
    cls = load_impl(stage_def)
    assert cls.stage_name == name
    signature = inspect.signature(cls.__init__)
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for param in stage_def.params:
        if param.name not in signature.parameters:
            assert takes_kwargs, f"{name}: '{param.name}' is not a constructor keyword"
            continue  # e.g. 'pass', a Python keyword, arrives through **kwargs
        default = signature.parameters[param.name].default
        if default is None and param.default in ({}, []):
            continue  # None stands for the empty container (mutable defaults are avoided)
        if param.default is REQUIRED:
            assert default is inspect.Parameter.empty, f"{name}.{param.name} should be required"
        else:
            assert default == param.default, (
                f"{name}.{param.name}: class default {default!r} != registry {param.default!r}"
            )


@pytest.mark.parametrize("name", NAMES)
def test_definition_is_documented(name):
    stage_def = registry()[name]
    assert stage_def.summary and stage_def.example and stage_def.family
    for param in stage_def.params:
        assert param.doc, f"{name}.{param.name} has no meaning"
        assert param.name.islower()
