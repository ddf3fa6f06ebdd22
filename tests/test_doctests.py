"""The examples in docstrings run (julius-style test_doc): every module of the package whose
source holds a `>>>` example is collected automatically."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "audiofx_cli"
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8") and path.name != "__main__.py"
)


def test_modules_were_found():
    assert "audiofx_cli.dsp.design" in MODULES and len(MODULES) > 10


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0  # (a module with only +SKIP examples attempts none)
