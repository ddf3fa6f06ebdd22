"""Temporary files beside an output, renamed into place when the output is complete.

Every writer makes its temporary file here, `.NAME.XXXXXXXX.audiofx-tmp` in the target's
folder, so one pattern finds them (a resumed batch removes a killed run's). A process that can
be killed before its own clean-up runs (a job of the audiofx server) sets a journal: a callable
told the absolute path of each temporary file as it is made, so the process that outlives it
can remove what it left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".audiofx-tmp"
_journal: Callable[[str], None] | None = None


def set_journal(record: Callable[[str], None] | None) -> None:
    """Tell `record(path)` about every temporary file made from now on (None: stop)."""
    global _journal
    _journal = record


def temp_beside(path: Path, suffix: str = TEMP_SUFFIX) -> tuple[int, Path]:
    """Create a temporary file in `path`'s folder; returns (open descriptor, its path)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    if _journal is not None:
        _journal(os.path.abspath(name))
    return fd, Path(name)


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a small text file (a chain, a preset) through a temporary file beside it: readers
    see the old file or the whole new one, never a part.

    Raises:
        OSError: the folder cannot be written (the temporary file is removed).
    """
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
