"""Watching a drop folder: which files are there, which have settled, which are done. Torch-free.

The folder is polled with `os.scandir` (no inotify dependency, and it works the same on network
and container file systems, where change events are often missing). A file is taken once its
size and modification time have not changed for `settle_s` seconds of our own observation, so
a file still being written (copied, uploaded, recorded) is never opened. Each poll costs one
scan of the folder (tree, with `recursive`).

Bookkeeping: a settled file is handled once per (size, mtime) stamp: processed, skipped,
failed, or ignored when it is not audio. It is looked at again only when its stamp changes (a
failed file is not retried until it changes) or after it vanished and came back.

Resume rule (as `make` decides): an input whose output exists and is not older than the input
is skipped; an input modified after its output was written is processed again.

Invariant: an input is handed to `process` only when its stamp has been the same for
`settle_s`, and never twice for the same stamp.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audiofx_cli.batch.inputs import AUDIO_EXTENSIONS, InputFile, _hidden, is_audio
from audiofx_cli.batch.plan import Task, plan
from audiofx_cli.batch.runner import FileResult
from audiofx_cli.errors import AudiofxError, UsageError

DEFAULT_SETTLE_S = 2.0
DEFAULT_POLL_S = 0.5


@dataclass(frozen=True)
class Stamp:
    """What says a file changed: its size and modification time."""

    size: int
    mtime_ns: int


def stamp_of(path: Path) -> Stamp | None:
    """The file's stamp now; None when it has gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return Stamp(info.st_size, info.st_mtime_ns)


def check_folders(folder: Path, out_dir: Path, recursive: bool) -> Path | None:
    """Check that outputs can never be taken as inputs; the folder to leave out of the scan
    (the output folder when it sits inside the watched one), or None.

    Raises:
        UsageError: the watched folder is missing or not a folder, or the outputs would land in
            it (OUT is DIR, or DIR is inside OUT with --recursive).
    """
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        raise UsageError(f"{folder}: {what}")
    watched, out = Path(os.path.realpath(folder)), Path(os.path.realpath(out_dir))
    if out == watched:
        raise UsageError(f"--out-dir {out_dir} is the watched folder: outputs would be inputs")
    if recursive and watched.is_relative_to(out):
        raise UsageError(
            f"{folder} is inside --out-dir {out_dir}: with --recursive, outputs could land in "
            "the watched folder"
        )
    return out if out.is_relative_to(watched) else None


def _walk(folder: Path, recursive: bool, exclude: Path | None) -> Iterator[os.DirEntry[str]]:
    """Visible regular files under `folder` (hidden files and folders, our temporary files and
    `exclude` left out); sub-folders only with `recursive`, symlinked folders never."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:  # a sub-folder that vanished or cannot be read: nothing to take there
        return
    for entry in entries:
        path = Path(entry.path)
        if _hidden(path):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive and (exclude is None or os.path.realpath(path) != str(exclude)):
                    yield from _walk(path, recursive, exclude)
            elif entry.is_file():
                yield entry
        except OSError:  # vanished between the listing and the look
            continue


def scan(folder: Path, recursive: bool = False, exclude: Path | None = None) -> dict[Path, Stamp]:
    """Every visible file under `folder` with its stamp.

    Raises:
        AudiofxError: the watched folder itself has gone.
    """
    if not folder.is_dir():
        raise AudiofxError(f"{folder}: the watched folder has gone")
    found = {}
    for entry in _walk(folder, recursive, exclude):
        try:
            info = entry.stat()
        except OSError:
            continue
        found[Path(entry.path)] = Stamp(info.st_size, info.st_mtime_ns)
    return found


@dataclass
class _Seen:
    stamp: Stamp
    since_s: float  # clock time the stamp was first seen


@dataclass
class Settling:
    """Which files have settled (stamp unchanged for `settle_s`) and are not handled yet."""

    settle_s: float
    clock: Callable[[], float] = time.monotonic
    seen: dict[Path, _Seen] = field(default_factory=dict)
    handled: dict[Path, Stamp] = field(default_factory=dict)

    def update(self, files: dict[Path, Stamp]) -> None:
        """Take a scan: new or changed stamps start their settling time again; files that
        vanished are forgotten."""
        now = self.clock()
        for path in set(self.seen) - set(files):
            del self.seen[path]
        for path in set(self.handled) - set(files):
            del self.handled[path]
        for path, stamp in files.items():
            known = self.seen.get(path)
            if known is None or known.stamp != stamp:
                self.seen[path] = _Seen(stamp, now)

    def _waiting(self) -> dict[Path, _Seen]:
        return {p: s for p, s in self.seen.items() if self.handled.get(p) != s.stamp}

    def ready(self) -> list[tuple[Path, Stamp]]:
        """Settled files not handled at their stamp, sorted by path."""
        now = self.clock()
        return sorted(
            (path, seen.stamp)
            for path, seen in self._waiting().items()
            if now - seen.since_s >= self.settle_s
        )

    def pending(self) -> bool:
        """Whether a file not handled yet is still settling."""
        now = self.clock()
        return any(now - seen.since_s < self.settle_s for seen in self._waiting().values())

    def mark_handled(self, path: Path, stamp: Stamp) -> None:
        self.handled[path] = stamp


def is_candidate(path: Path) -> bool:
    """Whether a settled file is an input: an audio extension (a broken "x.wav" then fails
    with its reason), or a header libsndfile can open (as `batch.inputs` decides)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS or is_audio(path)


def is_up_to_date(output: Path, stamp: Stamp) -> bool:
    """The resume rule: the output exists and is not older than the input's stamp."""
    done = stamp_of(output)
    return done is not None and done.mtime_ns >= stamp.mtime_ns


@dataclass
class Namer:
    """Output paths for watched inputs, as `process --out-dir` names them (`plan`): mirrored
    sub-folders, the `--name` template; two inputs never share one output."""

    folder: Path
    out_dir: Path
    template: str
    chain_name: str
    default_ext: str | None = None
    claimed: dict[Path, Path] = field(default_factory=dict)  # output -> input

    def task(self, path: Path) -> Task:
        """The task for one input.

        Raises:
            UsageError: the output is another input's (the name template collides).
        """
        item = InputFile(path, path.relative_to(self.folder), explicit=False)
        (task,) = plan([item], self.out_dir, self.template, self.chain_name, self.default_ext)
        owner = self.claimed.setdefault(Path(task.output), path)
        if owner != path:
            raise UsageError(
                f"{owner} and {path} would both be written to {task.output}; use --name "
                "with {parent} or keep folders apart"
            )
        return task


Process = Callable[[Task], FileResult]  # runs one task; KeyboardInterrupt passes through


def handle(path: Path, stamp: Stamp, namer: Namer, process: Process) -> FileResult | None:
    """One settled file: None when it is not audio, else its result (skipped when its output
    is up to date, failed when it cannot be named, else what `process` gives)."""
    if not is_candidate(path):
        return None
    try:
        task = namer.task(path)
    except AudiofxError as exc:
        return FileResult(str(path), "", "failed", error=str(exc))
    if is_up_to_date(Path(task.output), stamp):
        return FileResult(str(path), str(task.output), "skipped", error="output is up to date")
    return process(task)


def watch(
    settling: Settling,
    scan_folder: Callable[[], dict[Path, Stamp]],
    on_file: Callable[[Path, Stamp], None],
    *,
    poll_s: float,
    once: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until interrupted (or, with `once`, until nothing is left settling). Each settled
    file goes to `on_file(path, stamp)` once per stamp, and only if its stamp is still the same
    just before (a file that changed since the scan settles again first)."""
    while True:
        settling.update(scan_folder())
        ready = settling.ready()
        for path, stamp in ready:
            if stamp_of(path) == stamp:
                on_file(path, stamp)
                settling.mark_handled(path, stamp)
        if once and not ready and not settling.pending():
            return
        if not ready:
            sleep(poll_s)
