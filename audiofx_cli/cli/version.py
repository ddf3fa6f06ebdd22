"""`audiofx --version`: tool, torch and Python versions, without importing torch."""

from __future__ import annotations

import platform
from importlib import metadata

from audiofx_cli._version import __version__


def version_text() -> str:
    """'audiofx 0.1.0 (torch 2.14.1, Python 3.11.9)'; torch's version is read from its
    installed package metadata, so nothing heavy is imported."""
    try:
        torch_version = f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch_version = "torch not installed"
    return f"audiofx {__version__} ({torch_version}, Python {platform.python_version()})"
