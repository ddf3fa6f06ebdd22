"""Imports go one way: a module imports only from its own layer or the layers below it
(DESIGN.md, "Layers"), lazy imports inside functions included. The layers, bottom up:

    0  _version, errors, axes, memory, device     what every layer needs
    1  dsp                                        maths, kernels, the JIT
    2  io                                         files, sinks
    3  stages                                     nn.Modules over dsp
    4  chain                                      spec, registry, build, fusion
    5  stream, api, features, analysis            the engine and the library surface
    6  batch, bench, plot, server, integrations,  what runs the library
       ray_data
    7  cli, __main__                              the command line

The package's `__init__` (which re-exports `api` lazily) sits above them all; no module imports
the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = "audiofx_cli"
LAYERS = [
    ("_version", "errors", "axes", "memory", "device"),
    ("dsp",),
    ("io",),
    ("stages",),
    ("chain",),
    ("stream", "api", "features", "analysis"),
    ("batch", "bench", "plot", "server", "integrations", "ray_data"),
    ("cli", "__main__"),
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every audiofx_cli import in a file (or in `text` as if
    it were that file), lazy ones too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from audiofx_cli.dsp import iir`: the submodule iir
                sub = f"{target}.{alias.name}"
                is_module = (ROOT / (sub.replace(".", "/") + ".py")).exists() or (
                    ROOT / sub.replace(".", "/")
                ).is_dir()
                found.append((node.lineno, sub if is_module else target))
    return [(line, m) for line, m in found if m == PACKAGE or m.startswith(PACKAGE + ".")]


def layer(module: str) -> int | None:
    """The layer of `audiofx_cli.X...` (None for the package itself)."""
    parts = module.split(".")
    return LAYER_OF.get(parts[1]) if len(parts) > 1 else None


FILES = sorted((ROOT / PACKAGE).rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = {module_name(f) for f in FILES if f.parent != ROOT / PACKAGE or f.stem != "__init__"}
    unplaced = sorted(m for m in unplaced if layer(m) is None)
    assert not unplaced, f"modules outside the layer table (add them to LAYERS): {unplaced}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_imports_go_down(path):
    name = module_name(path)
    if name == PACKAGE:
        return  # the package's __init__ re-exports the API: above every layer
    own = layer(name)
    wrong = []
    for line, target in imported_modules(path):
        if target == PACKAGE:
            wrong.append(f"line {line}: imports the package itself (import from its module)")
        elif layer(target) > own:  # type: ignore[operator]
            wrong.append(
                f"line {line}: {target} (layer {layer(target)}) from layer {own}: "
                "move what is needed down to the layer that owns it"
            )
    assert not wrong, f"{name}:\n  " + "\n  ".join(wrong)


def test_the_checker_sees_upward_and_relative_imports():
    """The check itself can fail: an upward lazy import inside a function is caught, and a
    relative import is resolved to its module."""
    probe = ROOT / PACKAGE / "dsp" / "_layer_probe.py"
    text = "def f():\n    from audiofx_cli.chain.spec import load_spec\nfrom ..stages import base\n"
    found = imported_modules(probe, text)
    assert found == [(3, "audiofx_cli.stages.base"), (2, "audiofx_cli.chain.spec")]
    assert layer(found[0][1]) > layer("audiofx_cli.dsp._layer_probe")  # type: ignore[operator]
