"""The audiofx server: a warm process that forks one job per command.

Start: take the folder's lock (one server per folder; a socket without a lock holder is stale
and replaced), remove what killed jobs left (`journal`), warm up (`warm`), listen on the socket
(mode 0600 in a 0700 folder), tell the starter it is ready. Then, in one thread:

- each connection's peer uid (SO_PEERCRED) must be the server's, else it is refused;
- "status" and "stop" are answered at once; a "run" whose fingerprint differs from the
  server's is declined (the client runs it in-process), else accepted and queued;
- up to `max_jobs` jobs run at once, each a child forked from this warm process in its own
  process group (`job.run_job`): a crash, NaN or exception ends only that child, and memory
  goes back when it exits, so the server's own size does not change from job to job;
- one child is forked ahead (the spare) and waits for the next job on a socket pair: a fork
  copies the page tables of 400 MB of warm heap, 20 ms that a job handed to the spare does not
  wait for (the server forks the next spare while that job runs);
- a reaped job that did not end normally has its journal cleaned (and its group killed);
- stop (a "stop" request, SIGTERM or SIGINT, or `idle_timeout_s` without jobs): the socket is
  removed first (new commands run in-process), queued jobs are handed back to their clients
  to run in-process, running jobs are interrupted like Ctrl-C and, `GRACE_S` later, killed.
"""

from __future__ import annotations

import collections
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from audiofx_cli.server import job, journal, paths, protocol, warm

REQUEST_TIMEOUT_S = 5.0
GRACE_S = 10.0
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass
class _Pending:
    channel: protocol.Channel
    request: dict[str, Any]
    fds: list[int]


@dataclass
class _Spare:
    pid: int
    channel: protocol.Channel  # the server's end; the spare waits on the other


@dataclass
class _Running:
    pid: int
    started: float
    argv: list[str] = field(default_factory=list)


class Server:
    """One server in `folder` running `runner` for each accepted command."""

    def __init__(
        self,
        folder: Path,
        runner: warm.Runner,
        *,
        idle_timeout_s: float,
        max_jobs: int,
        log: TextIO = sys.stderr,
    ) -> None:
        self.folder, self.runner = folder, runner
        self.idle_timeout_s, self.max_jobs, self.log_file = idle_timeout_s, max_jobs, log
        self.pid = os.getpid()
        self.journal_dir = folder / paths.JOURNAL_NAME
        self.socket_path = Path(paths.socket_path(folder))
        self.fingerprint: dict[str, Any] = {}
        self.threads = 1
        self.started = time.time()
        self.last_active = time.monotonic()
        self.served = 0
        self.queue: collections.deque[_Pending] = collections.deque()
        self.running: dict[int, _Running] = {}
        self.spare: _Spare | None = None
        self.stopping = ""  # why, once stopping
        self.stop_deadline = 0.0
        self.listener: socket.socket | None = None
        self.selector: selectors.BaseSelector | None = None
        self.lock_fd = -1
        self.wake_fds = (-1, -1)
        self.socket_id = (0, 0)

    # ------------------------------------------------------------------ life
    def run(self, ready: Callable[[dict[str, Any]], None]) -> int:
        """Start, serve until stopped; `ready` gets one answer for the starter: {"ready"},
        {"busy"} (another server has the folder) or {"error"}."""
        problem = paths.private_folder(self.folder)
        if problem:
            ready({"error": problem})
            return 2
        if not self._lock():
            ready({"busy": True})
            return 0
        os.chdir("/")
        self._truncate_log()
        try:
            self.fingerprint = protocol.fingerprint()
            self.journal_dir.mkdir(mode=0o700, exist_ok=True)
            for name in journal.clean_leftovers(self.journal_dir):
                self.log(f"removed {name}, left by a job that was killed")
            started = time.monotonic()
            self.threads = warm.warm_up(self.runner, self.log)
            self._listen()
        except Exception as exc:
            traceback.print_exc(file=self.log_file)
            ready({"error": f"the server failed to start: {type(exc).__name__}: {exc}"})
            return 1
        self.log(
            f"serving on {self.socket_path} (pid {self.pid}, warm in "
            f"{time.monotonic() - started:.1f} s, {self.max_jobs} jobs at a time, idle timeout "
            f"{self.idle_timeout_s:g} s)"
        )
        ready({"ready": True, "pid": self.pid})
        self.last_active = time.monotonic()  # idle from now on, not from before the warm-up
        try:
            self._loop()
        finally:
            self._close()
        self.log(f"stopped ({self.stopping}) after {self.served} jobs")
        return 0

    def log(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} audiofx server: {text}", file=self.log_file, flush=True)

    def _lock(self) -> bool:
        self.lock_fd = os.open(self.folder / paths.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            return False
        return True

    def _truncate_log(self) -> None:
        """Each server starts its log afresh (stderr is the log when `start` spawned it)."""
        try:
            log, err = os.stat(self.folder / paths.LOG_NAME), os.fstat(self.log_file.fileno())
            if (log.st_dev, log.st_ino) == (err.st_dev, err.st_ino):
                os.ftruncate(self.log_file.fileno(), 0)
        except (OSError, ValueError, AttributeError):
            pass

    def _listen(self) -> None:
        self.socket_path.unlink(missing_ok=True)  # stale: we hold the lock, nobody serves it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.socket_path))
        finally:
            os.umask(old)
        listener.listen(128)
        listener.setblocking(False)
        self.listener = listener
        bound = os.stat(self.socket_path)
        self.socket_id = (bound.st_dev, bound.st_ino)  # to remove only our own socket file
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_fds = (wake_r, wake_w)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the pipe
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self.stopping = self.stopping or f"signal {signal.Signals(signum).name}"

    def _close(self) -> None:
        signal.set_wakeup_fd(-1)
        self._stop_listening()
        for fd in (*self.wake_fds, self.lock_fd):
            if fd >= 0:
                os.close(fd)

    def _stop_listening(self) -> None:
        if self.listener is None:
            return
        if self.selector is not None:
            self.selector.unregister(self.listener)
        try:
            now = os.stat(self.socket_path)
            if (now.st_dev, now.st_ino) == self.socket_id:
                self.socket_path.unlink()
        except OSError:
            pass
        self.listener.close()
        self.listener = None

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        assert self.selector is not None
        while True:
            self._reap()
            if self.stopping:
                if not self._wind_down():
                    return
            else:
                self._start_queued()
            for key, _ in self.selector.select(self._timeout()):
                if key.data == "wake":
                    _drain(self.wake_fds[0])
                elif key.data == "accept" and not self.stopping:
                    self._accept()
            if self._idle_for() >= self.idle_timeout_s > 0 and not self.stopping:
                self.stopping = f"idle for {self.idle_timeout_s:g} s"

    def _timeout(self) -> float | None:
        if self.stopping:
            return 0.1
        if self.running or self.queue or self.idle_timeout_s <= 0:
            return None
        return max(0.0, self.idle_timeout_s - self._idle_for())

    def _idle_for(self) -> float:
        if self.running or self.queue:
            return 0.0
        return time.monotonic() - self.last_active

    def _wind_down(self) -> bool:
        """One step of stopping; False once nothing runs any more."""
        if self.listener is not None:  # first step
            self._stop_listening()
            if self.spare is not None:  # it sees the end of its stream and exits
                self.spare.channel.close()
                os.waitpid(self.spare.pid, 0)
                self.spare = None
            while self.queue:
                pending = self.queue.popleft()
                _reply(pending.channel, {"retry": f"the server is stopping ({self.stopping})"})
                protocol.close_fds(pending.fds)
                pending.channel.close()
            for pid in self.running:
                _signal(pid, signal.SIGINT)
            self.stop_deadline = time.monotonic() + GRACE_S
        elif self.running and time.monotonic() > self.stop_deadline:
            for pid in self.running:
                _signal(-pid, signal.SIGKILL)
        return bool(self.running)

    # ------------------------------------------------------------------ connections
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.last_active = time.monotonic()  # any client, served or not, counts as activity
        sock.setblocking(True)
        sock.settimeout(REQUEST_TIMEOUT_S)
        channel = protocol.Channel(sock)
        peer_pid, peer_uid, _ = _CRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
        )
        if peer_uid != os.geteuid():
            self.log(f"refused a connection from uid {peer_uid} (pid {peer_pid})")
            _reply(channel, {"refused": f"this audiofx server serves uid {os.geteuid()} only"})
            channel.close()
            return
        try:
            request, fds = channel.receive(with_fds=True)
        except (OSError, protocol.ProtocolError) as exc:
            self.log(f"dropped a connection from pid {peer_pid}: {exc}")
            channel.close()
            return
        if request is None:
            channel.close()
            return
        self._answer(channel, request, fds)

    def _answer(self, channel: protocol.Channel, request: dict[str, Any], fds: list[int]) -> None:
        op = request.get("op")
        if op == "run":
            reason = self._check_run(request, fds)
            if reason is None:
                channel.sock.settimeout(None)
                _reply(channel, {"accepted": True})
                self.queue.append(_Pending(channel, request, fds))
                return
            _reply(channel, {"declined": reason})
        elif op == "status":
            _reply(channel, self.status())
        elif op == "stop":
            _reply(channel, {"stopping": True, "pid": self.pid})
            self.stopping = self.stopping or "stop requested"
        else:
            _reply(channel, {"declined": f"unknown request {op!r}"})
        protocol.close_fds(fds)
        channel.close()

    def _check_run(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this run request cannot be served (None when it can)."""
        difference = protocol.fingerprint_difference(
            self.fingerprint, request.get("fingerprint") or {}
        )
        if difference:
            return f"the server at {self.folder} differs: {difference}"
        streams = request.get("streams")
        if not (
            isinstance(request.get("argv"), list)
            and isinstance(request.get("env"), dict)
            and isinstance(request.get("umask"), int)
            and isinstance(request.get("prog_name"), str)
            and isinstance(streams, list)
            and len(streams) == 3
            and len(fds) == sum(s is not None for s in streams) + 1
        ):
            return "malformed request"
        return None

    # ------------------------------------------------------------------ jobs
    def _start_queued(self) -> None:
        while self.queue and len(self.running) < self.max_jobs:
            pending = self.queue.popleft()
            if _hung_up(pending.channel.sock):  # Ctrl-C while queued: never started
                protocol.close_fds(pending.fds)
                pending.channel.close()
                continue
            pid = self._hand_to_spare(pending) or self._fork(partial(self._run_job, pending))
            protocol.close_fds(pending.fds)
            pending.channel.close()
            self.running[pid] = _Running(pid, time.time(), pending.request["argv"])
        if self.spare is None and len(self.running) < self.max_jobs:
            self.spare = self._fork_spare()

    def _fork(self, child: Callable[[], None]) -> int:
        """Fork a child in its own process group running `child` (which must not return)."""
        self.log_file.flush()
        pid = os.fork()
        if pid == 0:
            try:
                self._become_job()
                child()
            finally:
                os._exit(1)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # it did so itself already, or is gone
        return pid

    def _run_job(self, pending: _Pending) -> None:
        job.run_job(
            pending.channel,
            pending.request,
            pending.fds,
            self.runner,
            self.pid,
            self.journal_dir,
            self.threads,
        )

    def _fork_spare(self) -> _Spare:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = self._fork(lambda: self._wait_as_spare(ours, theirs))
        theirs.close()
        return _Spare(pid, protocol.Channel(ours))

    def _wait_as_spare(self, ours: socket.socket, theirs: socket.socket) -> None:
        """In the spare: wait for a job (or for the server to go: end of stream), run it."""
        ours.close()
        message, fds = protocol.Channel(theirs).receive(with_fds=True)
        if message is None or not fds:
            os._exit(0)
        client = socket.socket(fileno=fds[0])
        channel = protocol.Channel(client, str(message["buffer"]).encode())
        self._run_job(_Pending(channel, message["request"], fds[1:]))  # type: ignore[arg-type]

    def _hand_to_spare(self, pending: _Pending) -> int | None:
        """Give the job to the spare; its pid, or None when there is no spare (or it died)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        message = {"request": pending.request, "buffer": pending.channel.buffer.decode()}
        try:
            spare.channel.send(message, [pending.channel.sock.fileno(), *pending.fds])
        except OSError:
            return None  # reaped later
        finally:
            spare.channel.close()
        return spare.pid

    def _become_job(self) -> None:
        """In the forked child: drop the server's signal handling and descriptors."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.selector is not None:
            self.selector.close()
        if self.listener is not None:
            self.listener.close()
        if self.spare is not None:  # else the spare would not see the server close its end
            self.spare.channel.close()
        for fd in (*self.wake_fds, self.lock_fd):
            os.close(fd)
        for pending in self.queue:
            protocol.close_fds(pending.fds)
            pending.channel.close()

    def _reap(self) -> None:
        while self.running or self.spare is not None:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare.pid:
                self.spare.channel.close()  # it died waiting: the next job forks another
                self.spare = None
                continue
            done = self.running.pop(pid, None)
            self.served += 1
            self.last_active = time.monotonic()
            left = self.journal_dir / str(pid)
            if os.WIFSIGNALED(status) or left.exists():
                _signal(-pid, signal.SIGKILL)  # its workers, if any
                removed = journal.clean(left)
                how = (
                    f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
                    if os.WIFSIGNALED(status)
                    else f"exited {os.WEXITSTATUS(status)} without cleaning up"
                )
                argv = " ".join(done.argv) if done else "?"
                self.log(f"job {pid} ({argv}) {how}; removed {len(removed)} temporary paths")

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "started": self.started,
            "uptime_s": time.time() - self.started,
            "jobs_served": self.served,
            "jobs_running": len(self.running),
            "jobs_queued": len(self.queue),
            "max_jobs": self.max_jobs,
            "idle_timeout_s": self.idle_timeout_s,
            "rss_bytes": _rss_bytes(self.pid),
            "jobs_rss_bytes": sum(_rss_bytes(pid) for pid in self.running),
            "folder": str(self.folder),
            "socket": str(self.socket_path),
            "log": str(self.folder / paths.LOG_NAME),
            "version": self.fingerprint.get("version"),
            "package": self.fingerprint.get("package"),
            "fingerprint": self.fingerprint,
            "threads": self.threads,
        }


def _reply(channel: protocol.Channel, message: dict[str, Any]) -> None:
    try:
        channel.send(message)
    except OSError:
        pass  # the client went away; nothing to tell


def _signal(pid: int, sig: int) -> None:
    try:
        if pid < 0:
            os.killpg(-pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _hung_up(sock: socket.socket) -> bool:
    """True when the peer closed its end (a clean EOF is waiting)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
