"""Packaging facts that would otherwise drift: one version, one distribution name in every
install hint, a changelog entry for the version. (CI also builds and installs the wheel outside
the source tree: scripts/check_package.sh.)"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest

from audiofx_cli._version import __version__
from tests.conftest import ROOT

DIST = "audiofx-cli"
TEXT_FILES = [
    *sorted((ROOT / "audiofx_cli").rglob("*.py")),
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    ROOT / "STAGES.md",
]


def test_pyproject_reads_the_one_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == DIST
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "audiofx_cli._version.__version__"


def test_installed_metadata_matches_the_version():
    try:
        installed = metadata.version(DIST)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{DIST} is not installed (pip install -e .)")
    assert installed == __version__


def test_no_other_version_literal_in_the_package():
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "audiofx_cli").rglob("*.py")
        if path.name != "_version.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"__version__\s*=|['\"]\d+\.\d+\.\d+['\"]", line)
    ]
    assert not hits, f"version literals outside _version.py: {hits}"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_install_hints_name_this_distribution(path):
    text = path.read_text()
    wrong = re.findall(r"pip install ['\"]?audiofx(?!-cli)\b[^\s'\"]*", text)
    wrong += re.findall(r"(?<![\w-])audiofx\[\w+\]", text)
    assert not wrong, f"{path.name}: install hints with another distribution's name: {wrong}"


def test_changelog_has_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )
    assert "## [Unreleased]" in changelog
