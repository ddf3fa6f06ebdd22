"""The `audiofx` entry point. It decides "server or not" before anything heavy is imported: a
running audiofx server takes `process`, `watch`, `info`, `validate` and `stages` (`server.client`,
standard library only); otherwise, or for any other command, the Typer app runs here."""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from audiofx_cli.server.client import run_on_server

    code = run_on_server(sys.argv)
    if code is not None:
        sys.exit(code)
    from audiofx_cli.cli.app import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":  # `from audiofx_cli.cli.main import app` (tests, older callers)
        from audiofx_cli.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
