"""What a job leaves on disk if it is killed: a journal per job, removed when the job ends well.

A job writes `jobs/PID` in the server folder: one line per temporary thing it makes, `dir
PATH` (its private temporary folder, holding spooled stdin and stdout) and `file PATH` (each
temporary output beside a target, told by `audiofx_cli.io.temp`). A job that ends normally has
removed them all and deletes its journal. When the server reaps a job that died another way,
or starts after a server was killed, it removes what the remaining journals list. Only names
that audiofx makes are removed (`*.audiofx-tmp*` files, `audiofx-job-*` folders).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from audiofx_cli.io.temp import TEMP_SUFFIX

JOB_DIR_PREFIX = "audiofx-job-"


class Journal:
    """The journal of one job (the forked process that writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the job's life)

    def add(self, kind: str, path: str) -> None:
        self._file.write(f"{kind}\t{os.path.abspath(path)}\n")
        self._file.flush()

    def add_file(self, path: str) -> None:
        self.add("file", path)

    def finish(self) -> None:
        """The job is over: remove what it left and the journal itself."""
        self._file.close()
        clean(self.path)


def clean(journal: Path) -> list[str]:
    """Remove the temporary files and folders a journal lists, then the journal; returns
    what was actually removed."""
    removed = []
    try:
        lines = journal.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        kind, _, name = line.partition("\t")
        base = os.path.basename(name)
        try:
            if kind == "file" and TEMP_SUFFIX in base and os.path.lexists(name):
                os.unlink(name)
                removed.append(name)
            elif kind == "dir" and base.startswith(JOB_DIR_PREFIX) and os.path.isdir(name):
                shutil.rmtree(name, ignore_errors=True)
                removed.append(name)
        except OSError:
            pass
    journal.unlink(missing_ok=True)
    return removed


def clean_leftovers(folder: Path, running: set[int] | None = None) -> list[str]:
    """Clean every journal in `folder` whose job is not running (a server killed with its
    jobs, a job killed outright); returns what was removed."""
    removed: list[str] = []
    try:
        journals = list(folder.iterdir())
    except OSError:
        return removed
    for journal in journals:
        pid = int(journal.name) if journal.name.isdigit() else None
        if pid is not None and ((running and pid in running) or alive(pid)):
            continue
        removed += clean(journal)
    return removed


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True
