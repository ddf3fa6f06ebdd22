"""The examples in docstrings run (julius-style test_doc)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "audiofx_cli.dsp.design",
    "audiofx_cli.dsp.iir",
    "audiofx_cli.dsp.fir",
    "audiofx_cli.chain.spec",
    "audiofx_cli.api",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
