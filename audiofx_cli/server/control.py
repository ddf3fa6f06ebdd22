"""Start, ask and stop a server from another process: `audiofx server start|status|stop`, and
the client under AUDIOFX_SERVER=auto. Standard library only.

`start` spawns `audiofx server serve` in its own session (stdin and stdout /dev/null, stderr
the server's log) and waits until the server says it is ready on a pipe: warm, listening. When
several clients start one at once, the server that gets the folder's lock serves and the others
say "busy"; their starters then wait until the socket answers.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiofx_cli.server import paths, protocol
from audiofx_cli.server.client import Unavailable, connect
from audiofx_cli.server.journal import alive

DEFAULT_IDLE_TIMEOUT_S = 15 * 60
START_TIMEOUT_S = 180.0
# `python -m audiofx_cli server serve ...` with this package first on sys.path, whatever the
# folder the server runs in (it moves to /).
_BOOT = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'audiofx'; "
    "runpy.run_module('audiofx_cli', run_name='__main__')"
)


class ServerError(Unavailable):
    """The server could not be started, asked or stopped; the message says why."""


def query(folder: paths.Folder, op: str, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """Send {"op": op} ("status" | "stop") and return the reply; None when no server runs.

    Raises:
        ServerError: the folder is unusable or the server does not answer properly.
    """
    try:
        channel = connect(folder, timeout_s)
    except Unavailable as exc:
        raise ServerError(str(exc)) from None
    if channel is None:
        return None
    try:
        channel.sock.settimeout(timeout_s)
        channel.send({"op": op})
        reply, _ = channel.receive()
    except (OSError, protocol.ProtocolError) as exc:
        raise ServerError(f"the server at {folder} did not answer: {exc}") from None
    finally:
        channel.close()
    if reply is None:
        raise ServerError(f"the server at {folder} hung up without an answer")
    if "refused" in reply:
        raise ServerError(f"the server at {folder} refused: {reply['refused']}")
    return reply


def serve_command(
    idle_timeout_s: float, max_jobs: int | None, ready_fd: int | None = None
) -> list[str]:
    """The argv that runs a server in the foreground with this interpreter and package."""
    import subprocess

    command = [
        sys.executable,
        *subprocess._args_from_interpreter_flags(),  # noqa: SLF001 (-X, -W, -O: as here)
        "-c",
        _BOOT,
        os.path.dirname(protocol.PACKAGE_DIR),
        "server",
        "serve",
        "--idle-timeout",
        f"{idle_timeout_s:g}",
    ]
    if max_jobs is not None:
        command += ["--jobs", str(max_jobs)]
    if ready_fd is not None:
        command += ["--ready-fd", str(ready_fd)]
    return command


def start(
    folder: paths.Folder,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    max_jobs: int | None = None,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> dict[str, Any]:
    """Start a server in `folder` unless one runs; returns its status ("started": True when
    this call started it).

    Raises:
        ServerError: the folder is not private, or the server failed to start (the message
            ends with the last line of its log).
    """
    folder = Path(folder)
    deadline = time.monotonic() + timeout_s
    while True:
        status = query(folder, "status")
        if status is not None:
            return {**status, "started": False}
        problem = paths.private_folder(folder)
        if problem:
            raise ServerError(problem)
        answer = _spawn(folder, idle_timeout_s, max_jobs, environ, deadline)
        if answer.get("ready"):
            return {**(query(folder, "status") or answer), "started": True}
        if not answer.get("busy"):
            log = folder / paths.LOG_NAME
            raise ServerError(
                answer.get("error") or f"the server exited during start-up{_tail(log)}"
            )
        # another start holds the folder: wait until its server answers or it gives up
        while _locked(folder) and query(folder, "status") is None:
            if time.monotonic() > deadline:
                raise ServerError(f"no server answered in {folder} after {timeout_s:g} s")
            time.sleep(0.05)


def _spawn(
    folder: Path,
    idle_timeout_s: float,
    max_jobs: int | None,
    environ: Mapping[str, str] | None,
    deadline: float,
) -> dict[str, Any]:
    """Spawn `audiofx server serve` in its own session; its answer on the ready pipe."""
    ready_r, ready_w = os.pipe()
    try:
        os.set_inheritable(ready_w, True)
        pid = os.posix_spawn(
            sys.executable,
            serve_command(idle_timeout_s, max_jobs, ready_w),
            dict(os.environ if environ is None else environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (
                    os.POSIX_SPAWN_OPEN,
                    2,
                    str(folder / paths.LOG_NAME),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o600,
                ),
            ],
            setsid=True,
        )
    except OSError as exc:
        os.close(ready_r)
        raise ServerError(f"cannot start {sys.executable}: {exc.strerror or exc}") from None
    finally:
        os.close(ready_w)
    try:
        return _read_ready(ready_r, pid, deadline - time.monotonic())
    finally:
        os.close(ready_r)


def _locked(folder: Path) -> bool:
    """True while a server (starting, serving or stopping) holds the folder's lock."""
    try:
        fd = os.open(folder / paths.LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read_ready(fd: int, pid: int, timeout_s: float) -> dict[str, Any]:
    """The server's one-line answer on the ready pipe ({} when it died without one)."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"error": f"the server (pid {pid}) was not ready after {timeout_s:g} s"}
        readable, _, _ = select.select([fd], [], [], left)
        chunk = os.read(fd, 4096) if readable else b""
        if readable and not chunk:
            break
        data += chunk
    if not data:
        os.waitpid(pid, 0)  # it exited without a word: reap it
        return {}
    try:
        answer = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return {}
    if not answer.get("ready"):
        os.waitpid(pid, 0)
    return answer if isinstance(answer, dict) else {}


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""


def stop(folder: paths.Folder, timeout_s: float = 30.0) -> dict[str, Any] | None:
    """Stop the server (its running jobs are interrupted); returns its last status, None when
    none ran. Waits until its process is gone.

    Raises:
        ServerError: it did not answer, or did not exit within `timeout_s`.
    """
    status = query(folder, "status")
    if status is None:
        return None
    query(folder, "stop")
    pid = int(status["pid"])
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            raise ServerError(f"the server (pid {pid}) did not stop within {timeout_s:g} s")
        time.sleep(0.02)
    return status
