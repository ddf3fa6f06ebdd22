"""The server's wire protocol and the fingerprint that says two processes run the same audiofx.
Standard library only (the client imports it before deciding anything).

Messages are JSON objects, one per line (UTF-8), over a Unix stream socket:

    client -> server  {"op": "run", "protocol", "fingerprint", "argv", "prog_name", "umask",
                       "env", "streams"}, with SCM_RIGHTS: the client's open standard streams
                       (0, 1, 2 in that order, a closed one left out) and its working folder
                       {"op": "status"} | {"op": "stop"}
    server -> client  {"accepted": true} | {"declined": REASON} | {"refused": REASON}
                       (declined: run in-process; refused: another user) | status fields
    client -> job     {"signal": 2}: Ctrl-C, interrupt the job;  {"signal": 15}: cancel quietly
    job -> client     {"exit": CODE}; the connection closing without it means the job or the
                      server was killed

A fingerprint names what a process runs: protocol, audiofx version, where the package is, the
interpreter and its flags, the newest source file, and the environment read at import time
(thread counts, library paths, ...). A server whose fingerprint differs from the client's
declines the job, and the client runs it in-process.
"""

from __future__ import annotations

import json
import os
import socket
import sys

PROTOCOL = 1
MAX_FDS = 8  # stdin, stdout, stderr, working folder (+ the client's socket, to a spare)
MAX_MESSAGE = 1 << 22
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# Read once when Python, torch, OpenMP, numba or typer start: a warm server cannot follow a
# change, so a client whose values differ runs in-process.
STARTUP_ENV_PREFIXES = (
    "PYTHON",
    "LD_",
    "OMP_",
    "GOMP_",
    "KMP_",
    "MKL_",
    "OPENBLAS_",
    "NUMBA_",
    "PYTORCH_",
    "TORCH_",
    "CUDA_",
    "TYPER_",
    "_TYPER_",
)
STARTUP_ENV_NAMES = ("LANG", "LC_ALL", "LC_CTYPE", "AUDIOFX_NO_OPENMP")


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol, or went away."""


def startup_env(environ: dict[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in environ.items()
        if key.startswith(STARTUP_ENV_PREFIXES) or key in STARTUP_ENV_NAMES
    }


def _newest_source() -> tuple[int, int]:
    """(newest mtime in ns, number of files) over the package's .py and .yaml files."""
    newest = count = 0
    for folder, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".yaml")):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
                count += 1
    return newest, count


def fingerprint(environ: dict[str, str] | None = None) -> dict[str, object]:
    """What this process runs; two processes may share jobs only when these are equal."""
    from audiofx_cli._version import __version__

    newest, count = _newest_source()
    return {
        "protocol": PROTOCOL,
        "version": __version__,
        "package": PACKAGE_DIR,
        "python": [os.path.realpath(sys.executable), sys.prefix],
        "python_version": sys.version,
        "flags": list(sys.flags),
        "warnoptions": list(sys.warnoptions),
        "sources": [newest, count],
        "env": startup_env(dict(os.environ if environ is None else environ)),
    }


def fingerprint_difference(server: dict[str, object], client: dict[str, object]) -> str | None:
    """None when equal, else one phrase naming the first difference (server's value first)."""
    if server.get("protocol") != client.get("protocol"):
        return f"protocol {server.get('protocol')} here, {client.get('protocol')} in the client"
    if server.get("version") != client.get("version"):
        return f"it runs audiofx {server.get('version')}, this is {client.get('version')}"
    if server.get("package") != client.get("package"):
        return f"it runs the audiofx installed at {server.get('package')}"
    if server.get("sources") != client.get("sources"):
        return "audiofx's files changed since it started (restart it)"
    for key in ("python", "python_version", "flags", "warnoptions"):
        if server.get(key) != client.get(key):
            return f"it runs another Python ({key} differs)"
    ours, theirs = server.get("env", {}), client.get("env", {})
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            return (
                f"{key} is {ours.get(key, 'unset')!r} for it and {theirs.get(key, 'unset')!r} "
                "here (read once at start-up)"
            )
    return None


def encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class Channel:
    """A socket carrying JSON lines (and descriptors); keeps bytes read past a line for the
    next `receive`, so a forked job goes on reading where the server stopped."""

    def __init__(self, sock: socket.socket, buffer: bytes = b"") -> None:
        self.sock = sock
        self.buffer = buffer

    def send(self, message: dict[str, object], fds: list[int] | None = None) -> None:
        data = encode(message)
        if fds:
            sent = socket.send_fds(self.sock, [data], fds)
            data = data[sent:]
        if data:
            self.sock.sendall(data)

    def receive(self, with_fds: bool = False) -> tuple[dict[str, object] | None, list[int]]:
        """The next message (None at a clean end of the stream) and any descriptors that came
        with it.

        Raises:
            ProtocolError: not a JSON object line, over MAX_MESSAGE, or the stream ended in
                the middle of a line.
        """
        fds: list[int] = []
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_MESSAGE:
                close_fds(fds)
                raise ProtocolError("message too long")
            if with_fds:
                data, received = _recv_fds(self.sock, 1 << 16)
                fds += received
            else:
                data = self.sock.recv(1 << 16)
            if not data:
                close_fds(fds)
                if self.buffer:
                    raise ProtocolError("the connection closed in the middle of a message")
                return None, []
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            close_fds(fds)
            raise ProtocolError("not a JSON message") from None
        if not isinstance(message, dict):
            close_fds(fds)
            raise ProtocolError("not a JSON object")
        return message, fds

    def close(self) -> None:
        self.sock.close()


def _recv_fds(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds, but descriptors are created close-on-exec (MSG_CMSG_CLOEXEC)."""
    import array

    fds = array.array("i")
    flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_LEN(MAX_FDS * fds.itemsize), flags)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return data, list(fds)


def close_fds(fds: list[int]) -> None:
    """Close descriptors received from a peer (errors ignored)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
