"""The thin client: the `audiofx` entry point hands `process`, `watch`, `info`, `validate` and
`stages` to a running audiofx server, or learns that the command runs in this process.

This runs before Typer, rich, numpy or torch are imported, and a shell loop pays for every
import here once per file: standard library only (a test keeps it so).

The server gets argv, the program name click would print, the working folder (a descriptor, so
relative paths and presets resolve exactly as here), the umask, the whole environment, and the
standard streams themselves (descriptors, with the encodings and buffering this interpreter
chose), so output, pipes, terminals and progress bars are what the command gives in-process.
While the job runs, Ctrl-C is forwarded: the job stops as it would here (exit 130, temporary
files removed). SIGTERM and SIGHUP cancel the job quietly, then end this process by the same
signal. A server that declines the job (another audiofx, another environment) leaves it to
this process; `--debug` says why in one line.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from audiofx_cli.server import paths, protocol

ROUTED = frozenset({"process", "watch", "info", "validate", "stages"})
MODES = ("on", "off", "auto")
CONNECT_TIMEOUT_S = 2.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_FAILED = 1
LOST = (
    "audiofx: error: the audiofx server went away before this command finished (no partial "
    "output is left); run it again, or with --no-server"
)


class Unavailable(Exception):
    """No server takes this command; the message says why (shown with --debug)."""


class Gone(Unavailable):
    """The server hung up before answering: it is dying (a socket about to be stale)."""


def server_mode(environ: dict[str, str]) -> str:
    """AUDIOFX_SERVER: 'on' (default: use a running server), 'off' or 'auto' (start one)."""
    value = environ.get("AUDIOFX_SERVER", "").strip().lower() or "on"
    if value not in MODES:
        print(
            f"audiofx: warning: AUDIOFX_SERVER={value!r} is not one of {', '.join(MODES)}; "
            "using a running server if there is one",
            file=sys.stderr,
        )
        return "on"
    return value


def run_on_server(argv: list[str], environ: dict[str, str] | None = None) -> int | None:
    """Run the command on the server; its exit code, or None when it must run in-process."""
    env = os.environ if environ is None else environ
    args = argv[1:]
    if not args or args[0] not in ROUTED:
        return None
    options = args[: args.index("--")] if "--" in args else args
    if "--no-server" in options:
        return None
    mode = server_mode(env)
    if mode == "off":
        return None
    try:
        folder = paths.server_dir(env)
        channel = connect(folder)
        if channel is None and mode == "auto":
            from audiofx_cli.server import control

            control.start(folder, environ=env)
            channel = connect(folder)
        if channel is None:
            return None
        try:
            return _Job(channel, argv, env).run()
        except Gone:
            if mode != "auto":
                raise
        from audiofx_cli.server import control  # a dying server: start another one

        control.start(folder, environ=env)
        channel = connect(folder)
        return None if channel is None else _Job(channel, argv, env).run()
    except Unavailable as exc:
        if "--debug" in options:
            print(
                f"audiofx: debug: not using the audiofx server: {exc}; running in this process",
                file=sys.stderr,
            )
        return None


def connect(folder: paths.Folder, timeout_s: float = CONNECT_TIMEOUT_S) -> protocol.Channel | None:
    """A connection to the server in `folder`; None when none runs (no socket, or a stale one).

    Raises:
        Unavailable: the folder is not private, or the socket cannot be reached.
    """
    if not os.path.lexists(folder):
        return None
    problem = paths.folder_problem(folder)
    if problem:
        raise Unavailable(problem)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(paths.socket_path(folder))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot connect to {paths.socket_path(folder)}: {exc}") from None
    sock.settimeout(None)
    return protocol.Channel(sock)


def prog_name(argv: list[str]) -> str:
    """The program name click would print in usage lines (its `_detect_program_name`)."""
    main = sys.modules.get("__main__")
    package = getattr(main, "__package__", None)
    path = argv[0] if argv else "audiofx"
    if not package:
        return os.path.basename(path)
    name = os.path.splitext(os.path.basename(path))[0]
    module = package if name == "__main__" else f"{package}.{name}"
    return f"python -m {module.lstrip('.')}"


def _streams() -> tuple[list[dict[str, object] | None], list[int]]:
    """What the job needs to rebuild sys.stdin/stdout/stderr, and their descriptors."""
    described: list[dict[str, object] | None] = []
    fds = []
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            fd = stream.fileno() if stream is not None else -1
            os.fstat(fd)
        except (OSError, ValueError, AttributeError):
            described.append(None)
            continue
        described.append(
            {
                "encoding": stream.encoding,
                "errors": stream.errors,
                "line_buffering": stream.line_buffering,
                "write_through": getattr(stream, "write_through", False),
            }
        )
        fds.append(fd)
    return described, fds


def build_request(argv: list[str], env: dict[str, str]) -> tuple[dict[str, object], list[int]]:
    """The run request and the descriptors to send with it (the last one, the working folder,
    is opened here: close it after sending)."""
    streams, fds = _streams()
    try:
        cwd = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise Unavailable(f"cannot open the working folder: {exc.strerror or exc}") from None
    umask = os.umask(0o077)
    os.umask(umask)
    request = {
        "op": "run",
        "fingerprint": protocol.fingerprint(dict(env)),
        "argv": list(argv),
        "prog_name": prog_name(argv),
        "umask": umask,
        "env": dict(env),
        "streams": streams,
    }
    return request, [*fds, cwd]


class _Job:
    """One command on the server: send it, forward signals, wait for its exit code."""

    def __init__(self, channel: protocol.Channel, argv: list[str], env: dict[str, str]):
        self.channel, self.argv, self.env = channel, argv, env
        self.accepted = False
        self.pending: list[int] = []  # signals that came before the server accepted
        self.terminating = 0  # SIGTERM / SIGHUP received: end by it once the job is cancelled

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.channel.close()
            if self.terminating:
                signal.signal(self.terminating, signal.SIG_DFL)
                os.kill(os.getpid(), self.terminating)
            for sig in self.pending:  # arrived before a refusal: as if no server was asked
                signal.raise_signal(sig)

    def _run(self) -> int:
        request, fds = build_request(self.argv, self.env)
        try:
            try:
                self.channel.send(request, fds)
            except OSError:
                pass  # a server that refuses hangs up early: its answer can still be read
            reply, _ = self.channel.receive()
        except (OSError, protocol.ProtocolError) as exc:
            raise Gone(f"the server did not answer: {exc}") from None
        finally:
            os.close(fds[-1])
        if reply is None:
            raise Gone("the server hung up without an answer")
        if not reply.get("accepted"):
            raise Unavailable(reply.get("declined") or reply.get("refused") or str(reply))
        self.accepted = True
        for sig in self.pending:
            self._forward(sig)
        self.pending.clear()
        while True:
            try:
                message, _ = self.channel.receive()
            except (OSError, protocol.ProtocolError):
                message = None
            if message is None:
                print(LOST, file=sys.stderr)
                return EXIT_FAILED
            if "exit" in message:
                return int(message["exit"])
            if "retry" in message:  # stopping before the job started: nothing ran there
                raise Unavailable(str(message["retry"]))

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum != signal.SIGINT:
            self.terminating = signum
        if self.accepted:
            self._forward(signum)
        else:
            self.pending.append(signum)

    def _forward(self, signum: int) -> None:
        try:
            self.channel.send({"signal": int(signum)})
        except OSError:
            pass  # the job is gone already; its exit (or the lost line) follows
