"""ruff (configured in pyproject.toml) passes on the package, tests and scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(
    shutil.which("ruff") is None and not shutil.which("ruff", path=sys.prefix + "/bin"),
    reason="ruff not installed (pip install '.[dev]')",
)
def test_ruff_check():
    ruff = shutil.which("ruff") or sys.prefix + "/bin/ruff"
    result = subprocess.run(
        [ruff, "check", "audiofx_cli", "tests", "scripts"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None and not shutil.which("ruff", path=sys.prefix + "/bin"),
    reason="ruff not installed (pip install '.[dev]')",
)
def test_ruff_format():
    ruff = shutil.which("ruff") or sys.prefix + "/bin/ruff"
    result = subprocess.run(
        [ruff, "format", "--check", "audiofx_cli", "tests", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
