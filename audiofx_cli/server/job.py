"""One command in a process forked from the warm server: become the client's process, run the
command, report its exit code.

The job takes the client's standard streams (the descriptors themselves), working folder,
umask, environment and argv, rebuilds sys.stdin/stdout/stderr with the encodings and buffering
the client's interpreter chose, and runs in its own process group with torch's thread count of
a fresh process. Its temporary folder and files are journaled (`journal`), so a job killed
outright leaves nothing behind once the server reaps it.

A watcher thread (with signals blocked, so they reach the main thread) reads the connection:
{"signal": 2} interrupts the command as Ctrl-C would in-process (KeyboardInterrupt: exit 130,
temporary files removed); the client hanging up, {"signal": 15}, or the server dying cancels
it quietly (its output goes to /dev/null, then the same interrupt); a job still alive
`GRACE_S` later is killed with its process group.
"""

from __future__ import annotations

import io
import os
import select
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn

from audiofx_cli.io import temp
from audiofx_cli.server import warm
from audiofx_cli.server.journal import JOB_DIR_PREFIX, Journal
from audiofx_cli.server.protocol import Channel, ProtocolError

GRACE_S = 10.0
POLL_S = 0.25  # how often the watcher checks that the server is still there
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_FLUSH_FAILED = 120  # what Python exits with when flushing stdout fails at exit
STREAM_NAMES = ("<stdin>", "<stdout>", "<stderr>")


def run_job(
    channel: Channel,
    request: dict[str, Any],
    fds: list[int],
    runner: warm.Runner,
    server_pid: int,
    journal_dir: Path,
    threads: int,
) -> NoReturn:
    """The forked child's whole life; ends with os._exit."""
    code = EXIT_FAILED
    journal = None
    watcher = _Watcher(channel, server_pid)
    try:
        os.setpgid(0, 0)
        journal = Journal(journal_dir / str(os.getpid()))
        _adopt(request, fds, journal)
        warm.after_fork(threads)
        watcher.start()
        code = runner(list(request["argv"]), str(request["prog_name"]))
        code = _flush_stdout(code)
    except KeyboardInterrupt:  # before or after the command's own handling
        code = EXIT_INTERRUPTED
    except BaseException:  # a bug in the job's set-up: report it like an uncaught exception
        traceback.print_exc()
    finally:
        _finish(channel, journal, None if watcher.server_gone else code)


def _finish(channel: Channel, journal: Journal | None, code: int | None) -> NoReturn:
    """Remove the job's temporary things, report the exit code (None: report nothing, the
    client then says the server went away), exit. A late Ctrl-C is ignored from here on."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        if sys.stderr is not None:
            sys.stderr.flush()
    except BaseException:
        pass
    try:
        if journal is not None:
            journal.finish()
    except BaseException:
        pass
    try:
        if code is not None:
            channel.send({"exit": code})
    except BaseException:
        pass
    os._exit(EXIT_FAILED if code is None else code & 0xFF)


def _adopt(request: dict[str, Any], fds: list[int], journal: Journal) -> None:
    """Take the client's streams, folder, umask, environment, argv and temporary folder."""
    received = iter(fds)
    for target, described in enumerate(request["streams"]):
        if described is None:  # closed in the client: closed here too
            try:
                os.close(target)
            except OSError:
                pass
        else:
            fd = next(received)
            os.dup2(fd, target)
            os.close(fd)
    cwd = next(received)
    os.fchdir(cwd)
    os.close(cwd)
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    tempfile.tempdir = None  # found again from the client's TMPDIR
    job_dir = tempfile.mkdtemp(prefix=JOB_DIR_PREFIX)
    journal.add("dir", job_dir)
    tempfile.tempdir = job_dir
    temp.set_journal(journal.add_file)
    streams = [_stream(fd, described) for fd, described in enumerate(request["streams"])]
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _stream(fd: int, described: dict[str, Any] | None) -> io.TextIOWrapper | None:
    """A text stream over `fd` as the client's interpreter built it (see create_stdio in
    CPython: buffered unless write-through, newline '\\n', the same encoding and errors)."""
    if described is None:
        return None
    reading = fd == 0
    raw = io.FileIO(fd, "rb" if reading else "wb", closefd=False)
    raw.name = STREAM_NAMES[fd]  # type: ignore[misc]
    buffered: Any
    if reading:
        buffered = io.BufferedReader(raw)
    elif described["write_through"]:
        buffered = raw
    else:
        buffered = io.BufferedWriter(raw)
    stream = io.TextIOWrapper(
        buffered,
        encoding=described["encoding"],
        errors=described["errors"],
        newline="\n",
        line_buffering=bool(described["line_buffering"]),
        write_through=bool(described["write_through"]),
    )
    stream.mode = "r" if reading else "w"  # type: ignore[misc]
    return stream


def _flush_stdout(code: int) -> int:
    """Flush stdout as Python does at exit: a failure is reported and the exit code is 120."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        print(f"Exception ignored in: {sys.stdout!r}", file=sys.stderr)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FLUSH_FAILED
    return code


class _Watcher(threading.Thread):
    """Reads the client's messages and watches the server; interrupts or cancels the job."""

    def __init__(self, channel: Channel, server_pid: int) -> None:
        super().__init__(name="audiofx-job-watcher", daemon=True)
        self.channel, self.server_pid = channel, server_pid
        self.main = threading.main_thread().ident or 0
        self.server_gone = False

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        while True:
            readable, _, _ = select.select([self.channel.sock], [], [], POLL_S)
            if os.getppid() != self.server_pid:  # the server died: so must the job
                self.server_gone = True
                self._cancel()
                return
            if not readable:
                continue
            try:
                message, _ = self.channel.receive()
            except (OSError, ProtocolError):
                message = None
            if message is None:  # the client is gone
                self._cancel()
                return
            if message.get("signal") == signal.SIGINT:
                signal.pthread_kill(self.main, signal.SIGINT)
            elif message.get("signal") in (signal.SIGTERM, signal.SIGHUP):
                self._cancel()
                return

    def _cancel(self) -> None:
        """Stop the command without a word: nobody is there to read it."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        killer = threading.Timer(GRACE_S, os.killpg, (0, signal.SIGKILL))
        killer.daemon = True
        killer.start()
        signal.pthread_kill(self.main, signal.SIGINT)
