"""`audiofx server`: real servers in real processes, real clients (`python -m audiofx_cli`).

Each case runs once in-process (AUDIOFX_SERVER=off, a fresh interpreter, the reference) and once
through a server; outputs must be the same bytes, stdout and stderr the same text (timings
masked), exit codes equal. Then: pipes, four clients at once, Ctrl-C, SIGKILL of the client and
of the server (with the journal cleaned on the next start), another uid refused, stale sockets,
idle timeout, and a server from another install declined. Servers live in folders made here
(AUDIOFX_SERVER_DIR) and are stopped (or killed) at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from audiofx_cli.server.client import LOST
from tests.conftest import CLI, ROOT, unit_noise, write_audio

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the server is Linux-only")

BAD_CHAIN = "stages:\n  - highpass: {cutoff_hz: 80}\n  - peaking: {freq_hz: 300, q: -1}\n"
_TIMING = re.compile(r"\(\d+\.\d+ s, \d+x real time on (\w+)\)")
_DIGITS = re.compile(r"[\d.]+")
_RULE = re.compile(r"[ ─━╸╺]+")


def make_env(folder: Path, mode: str = "on", **extra: str) -> dict[str, str]:
    return {**os.environ, "AUDIOFX_SERVER_DIR": str(folder), "AUDIOFX_SERVER": mode, **extra}


# Every command runs outside the source tree unless a test says where: `python -m audiofx_cli`
# started in the checkout imports the checkout's package, started elsewhere the installed one,
# and a server and a client that run different installs (CI installs non-editable) decline.
NEUTRAL_CWD = Path(tempfile.gettempdir())


def cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        cwd=cwd or NEUTRAL_CWD,
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def spawn(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args],
        env=env,
        cwd=cwd or NEUTRAL_CWD,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if "audiofx-tmp" in p.name]


def alive(pid: int) -> bool:
    from audiofx_cli.server.journal import alive as process_alive

    return process_alive(pid)


class Server:
    """A server folder the tests start, ask, stop and kill servers in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = make_env(folder)

    def status(self) -> dict | None:
        result = cli(["server", "status", "--json"], self.env)
        reply = json.loads(result.stdout)
        return reply if reply.get("pid") else None

    def ensure(self) -> dict:
        status = self.status()
        if status is None:
            result = cli(["server", "start", "--idle-timeout", "600"], self.env)
            assert result.returncode == 0, result.stderr.decode()
            status = self.status()
        assert status is not None
        return status

    def served(self) -> int:
        status = self.status()
        assert status is not None, "the server is not running"
        return status["jobs_served"]

    def shutdown(self) -> None:
        status = self.status()
        cli(["server", "stop"], self.env)
        if status is not None and alive(status["pid"]):
            os.kill(status["pid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def server():
    # a short path (sockets allow 107 bytes), under /tmp so another uid can be let in
    parent = Path(tempfile.mkdtemp(prefix="afx-test-", dir="/tmp"))
    os.chmod(parent, 0o711)
    handle = Server(parent / "server")
    try:
        handle.ensure()
        yield handle
    finally:
        handle.shutdown()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    write_audio(folder / "in.wav", 0.3 * unit_noise(1, 67200, seed=1), 48000)
    write_audio(folder / "st.wav", 0.5 * unit_noise(2, 35280, seed=2), 44100, "FLOAT")
    write_audio(folder / "six.wav", 0.3 * unit_noise(6, 48000, seed=5), 48000, "PCM_24")
    nan = 0.1 * unit_noise(1, 4800, seed=3)
    nan[0, 100] = np.nan
    write_audio(folder / "nan.wav", nan, 48000, "FLOAT")
    (folder / "bad.yaml").write_text(BAD_CHAIN)
    (folder / "takes").mkdir()
    for i in range(3):
        write_audio(folder / "takes" / f"t{i}.wav", 0.2 * unit_noise(1, 16000, seed=i), 16000)
    # long enough in tiny chunks that a job is still writing when the test acts on it
    write_audio(folder / "long.wav", 0.2 * unit_noise(1, 16000 * 40, seed=4), 16000)
    return folder


def copy_inputs(inputs: Path, folder: Path) -> Path:
    shutil.copytree(inputs, folder, ignore=shutil.ignore_patterns("long.wav"))
    return folder


def outputs(folder: Path, inputs: Path) -> dict[str, bytes]:
    """Every file a command left in `folder` (inputs excluded), by relative path."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and not (inputs / name).exists():
            found[name] = path.read_bytes()
    return found


def normalized(text: bytes, masked: bool) -> str:
    """Timings masked: the 'wrote' line's; for batches every number, and the table widths
    that follow from them (rules and spaces)."""
    out = _TIMING.sub(r"(T s, Nx real time on \1)", text.decode())
    return _RULE.sub(" ", _DIGITS.sub("N", out)) if masked else out


def json_report(data: bytes) -> dict:
    report = json.loads(data)
    for key in ("started", "finished"):
        report.pop(key)
    for entry in report["files"]:
        entry.pop("processing_s")
    for key in ("wall_s", "realtime_factor"):
        report["summary"].pop(key)
    return report


# (arguments, masked): masked cases print timings in tables or progress lines
CASES = [
    (["process", "in.wav", "-c", "vocal", "-o", "out.wav"], False),
    (["process", "st.wav", "-c", "podcast", "-o", "out.flac", "--subtype", "PCM_24"], False),
    (["process", "six.wav", "-c", "telephone", "-o", "six_out.wav"], False),  # 2 lane groups
    (["process", "in.wav", "-c", "mfcc-13", "-o", "feat.npz", "--precision", "float64"], False),
    (["process", "takes", "--out-dir", "clean", "-c", "rumble", "--json", "r.json"], True),
    (["process", "nan.wav", "-c", "vocal", "-o", "nan_out.wav"], False),
    (["process", "in.wav", "-c", "vocal"], False),
    (
        ["process", "st.wav", "-e", "highpass:cutoff_hz=80", "-C", "1", "-b", "24", "-o", "e.wav"],
        False,
    ),  # fmt: skip
    (["process", "st.wav", "-o", "converted.flac"], False),
    (["validate", "-e", "highpass:cutoff_hz=3e4", "--sample-rate", "44100"], False),
    (["info", "in.wav", "st.wav", "missing.wav"], False),
    (["info", "--json", "st.wav"], False),
    (["validate", "bad.yaml"], False),
    (["validate", "podcast", "--sample-rate", "44100"], False),
    (["stages", "peaking"], False),
    (["process", "--help"], False),
]


def test_commands_give_the_same_bytes_through_the_server(server, inputs, tmp_path):
    here = copy_inputs(inputs, tmp_path / "off")
    there = copy_inputs(inputs, tmp_path / "on")
    served = server.served()
    wide = {"COLUMNS": "200"}  # rich reads it in the job: no timing-dependent line wraps
    for args, masked in CASES:
        ref = cli(args, make_env(server.folder, "off", **wide), cwd=here)
        got = cli(args, make_env(server.folder, "on", **wide), cwd=there)
        what = " ".join(args)
        assert got.returncode == ref.returncode, f"{what}: {got.stderr.decode()}"
        assert got.stdout == ref.stdout, what
        assert normalized(got.stderr, masked) == normalized(ref.stderr, masked), what
    assert server.served() == served + len(CASES)  # every case ran on the server
    ours, theirs = outputs(there, inputs), outputs(here, inputs)
    assert sorted(ours) == sorted(theirs)
    assert {"out.wav", "out.flac", "six_out.wav", "feat.npz", "clean/t0.wav", "r.json"} <= set(ours)
    for name, data in theirs.items():
        if name.endswith(".json"):
            assert json_report(ours[name]) == json_report(data), name
        else:
            assert ours[name] == data, f"{name} differs"


def test_pipes_in_and_out(server, inputs):
    source = (inputs / "st.wav").read_bytes()
    args = ["process", "-", "-c", "rumble", "-o", "-", "-t", "flac"]
    ref = cli(args, make_env(server.folder, "off"), stdin=source)
    got = cli(args, server.env, stdin=source)
    assert got.returncode == ref.returncode == 0, got.stderr.decode()
    assert got.stdout == ref.stdout and got.stdout.startswith(b"fLaC")
    assert normalized(got.stderr, False) == normalized(ref.stderr, False)
    empty = cli(args, server.env, stdin=b"")
    assert empty.returncode == 1 and b"stdin is empty" in empty.stderr


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> bytes:
    """What a command writes to a terminal (a pseudo-terminal as stdin, stdout and stderr)."""
    import pty

    master, slave = pty.openpty()
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    client = subprocess.Popen(
        [*CLI, *args], env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert client.wait(timeout=120) == 0, seen.decode(errors="replace")
    return seen


def test_progress_bars_and_colours_on_the_clients_terminal(server, inputs, tmp_path):
    args = ["process", "takes", "--out-dir", "out", "-c", "rumble"]
    ref = on_a_terminal(args, make_env(server.folder, "off"), copy_inputs(inputs, tmp_path / "a"))
    got = on_a_terminal(args, server.env, copy_inputs(inputs, tmp_path / "b"))
    assert b"\x1b[?25l" in got and b"3/3 files" in got  # rich's live progress bar, hidden cursor
    assert normalized(got, True) == normalized(ref, True)


def test_four_clients_at_once(server, inputs, tmp_path):
    ref = tmp_path / "ref.wav"
    cli(["process", str(inputs / "in.wav"), "-c", "vocal", "-o", str(ref)], server.env)
    served = server.served()
    clients = [
        spawn(
            ["process", str(inputs / "in.wav"), "-c", "vocal", "-o", f"o{i}.wav"],
            server.env,
            tmp_path,
        )
        for i in range(4)
    ]
    for client in clients:
        _, err = client.communicate(timeout=120)
        assert client.returncode == 0, err.decode()
    for i in range(4):
        assert (tmp_path / f"o{i}.wav").read_bytes() == ref.read_bytes()
    assert server.served() == served + 4


def test_user_presets_resolve_in_the_callers_environment(server, inputs, tmp_path):
    """A preset saved under the client's XDG_CONFIG_HOME is found by the job the server runs
    for it (the server's own environment has no such folder)."""
    folder = copy_inputs(inputs, tmp_path / "work")
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "AUDIOFX_PRESETS": ""}
    saved = cli(["presets", "save", "hp", "-e", "highpass:cutoff_hz=120"],
                make_env(server.folder, "off", **config), cwd=folder)  # fmt: skip
    assert saved.returncode == 0, saved.stderr.decode()
    served = server.served()
    on = cli(["process", "in.wav", "-c", "hp", "-o", "on.wav"],
             make_env(server.folder, "on", **config), cwd=folder)  # fmt: skip
    off = cli(["process", "in.wav", "-c", "hp", "-o", "off.wav"],
              make_env(server.folder, "off", **config), cwd=folder)  # fmt: skip
    assert on.returncode == off.returncode == 0, on.stderr.decode()
    assert server.served() == served + 1
    assert (folder / "on.wav").read_bytes() == (folder / "off.wav").read_bytes()


def test_no_server_flag_and_off_run_in_process(server, inputs, tmp_path):
    served = server.served()
    args = ["validate", "vocal", "-q"]
    assert cli([*args, "--no-server"], server.env).returncode == 0
    assert cli(args, make_env(server.folder, "off")).returncode == 0
    assert server.served() == served


def long_job(inputs: Path, folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """A client whose job is writing its temporary output when this returns."""
    out = folder / "long_out.wav"
    args = ["process", str(inputs / "long.wav"), "-c", "rumble", "-o", str(out)]
    client = spawn([*args, "--chunk-seconds", "0.001"], env)
    wait_for(lambda: temps(folder) or client.poll() is not None, what="the temporary output")
    assert client.poll() is None, client.communicate()[1].decode()
    return client, out


def test_ctrl_c_cancels_the_job(server, inputs, tmp_path):
    client, out = long_job(inputs, tmp_path, server.env)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=60)
    assert client.returncode == 130
    assert err.decode() == "audiofx: error: interrupted; no partial output was left\n"
    assert not out.exists() and not temps(tmp_path)
    assert server.status() is not None


def test_killed_client_cancels_its_job(server, inputs, tmp_path):
    served = server.served()
    client, out = long_job(inputs, tmp_path, server.env)
    client.kill()
    client.communicate(timeout=60)
    wait_for(lambda: server.served() == served + 1, 30, "the job to end")
    assert not out.exists() and not temps(tmp_path)


def job_pid(server: Server) -> int:
    """The running job's pid: the name of its journal (the spare child has none yet)."""
    journals = list((server.folder / "jobs").iterdir())
    assert len(journals) == 1, journals
    return int(journals[0].name)


def test_killed_server_ends_the_client_with_one_line(server, inputs, tmp_path):
    pid = server.ensure()["pid"]
    client, out = long_job(inputs, tmp_path, server.env)
    job = job_pid(server)
    os.kill(pid, signal.SIGKILL)
    _, err = client.communicate(timeout=60)
    assert client.returncode == 1
    assert err.decode() == LOST + "\n"
    wait_for(lambda: not alive(job), 30, "the orphaned job to cancel itself")
    assert not out.exists() and not temps(tmp_path)
    wait_for(lambda: not alive(pid), 30, "the killed server to be gone")
    # the socket is stale now: clients run in-process, silently, with --debug too
    assert (server.folder / "server.sock").exists()
    result = cli(["validate", "vocal", "-q", "--debug"], server.env)
    assert result.returncode == 0 and result.stderr == b""


def test_server_and_job_killed_leave_nothing_after_a_restart(server, inputs, tmp_path):
    pid = server.ensure()["pid"]
    client, out = long_job(inputs, tmp_path, server.env)
    job = job_pid(server)
    os.kill(job, signal.SIGSTOP)  # frozen: it cannot clean up after itself
    os.kill(pid, signal.SIGKILL)
    os.kill(job, signal.SIGKILL)
    client.communicate(timeout=60)
    wait_for(lambda: not alive(pid), 30, "the killed server to be gone")
    left = temps(tmp_path)
    assert left and list((server.folder / "jobs").iterdir())
    # AUDIOFX_SERVER=auto starts a server (replacing the stale socket, cleaning the journal)
    auto = make_env(server.folder, "auto")
    result = cli(
        ["process", str(inputs / "in.wav"), "-c", "vocal", "-o", str(tmp_path / "a.wav")], auto
    )
    assert result.returncode == 0, result.stderr.decode()
    assert server.status()["pid"] != pid
    assert not temps(tmp_path) and not out.exists()
    assert not list((server.folder / "jobs").iterdir())
    assert f"removed {left[0]}" in (server.folder / "server.log").read_text()


def runnable_as_nobody() -> str | None:
    """An interpreter user 65534 may run (the tests' own may sit in root's home)."""
    if os.geteuid() != 0:
        return None
    for python in (sys.executable, shutil.which("python3", path="/usr/bin:/bin")):
        try:
            probe = subprocess.run(
                [python or "", "-c", "pass"], user=65534, group=65534, extra_groups=[]
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return python
    return None


ASK = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
try:
    sock.sendall(json.dumps({"op": sys.argv[2]}).encode() + b"\\n")
except BrokenPipeError:
    pass  # refused before it read anything: the answer waits all the same
print(sock.recv(4096).decode().strip())
"""


def test_another_user_is_refused(server):
    python = runnable_as_nobody()
    if python is None:
        pytest.skip("needs root and an interpreter user 65534 can run")
    server.ensure()
    sock = server.folder / "server.sock"
    os.chmod(server.folder, 0o755)  # let uid 65534 reach the socket: the server must refuse
    os.chmod(sock, 0o777)
    try:
        replies = [
            subprocess.run(
                [python, "-c", ASK, str(sock), op],
                user=65534,
                group=65534,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=30,
            )
            for op in ("status", "stop", "run")
        ]
    finally:
        os.chmod(server.folder, 0o700)
        os.chmod(sock, 0o600)
    for reply in replies:
        assert reply.returncode == 0, reply.stderr
        refused = f"this audiofx server serves uid {os.geteuid()} only"
        assert json.loads(reply.stdout) == {"refused": refused}
    assert server.status() is not None  # "stop" from the other user did nothing
    assert "refused a connection from uid 65534" in (server.folder / "server.log").read_text()


def test_another_install_is_declined_then_idles_out(tmp_path):
    """A server from a copy of the package (another install, another version) declines jobs:
    they run in-process, and say so in one line with --debug only. Its idle timeout ends it."""
    copy = tmp_path / "site"
    shutil.copytree(
        ROOT / "audiofx_cli", copy / "audiofx_cli", ignore=shutil.ignore_patterns("__pycache__")
    )
    version = copy / "audiofx_cli" / "_version.py"
    version.write_text(version.read_text().replace('__version__ = "', '__version__ = "0.0.0+copy.'))
    folder = tmp_path / "srv"
    env = make_env(folder)
    start = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from audiofx_cli.server import control; "
        "print(control.start(Path(sys.argv[2]), idle_timeout_s=5)['pid'])"
    )
    started = subprocess.run(
        [sys.executable, "-c", start, str(copy), str(folder)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout)
    loud = cli(["validate", "vocal", "--debug"], env)
    lines = loud.stderr.decode().splitlines()
    assert loud.returncode == 0 and len(lines) == 1, lines
    assert lines[0].startswith("audiofx: debug: not using the audiofx server: ")
    assert "it runs audiofx 0.0.0+copy." in lines[0]
    assert lines[0].endswith("; running in this process")
    assert loud.stdout.startswith(b"chain 'vocal'")
    quiet = cli(["validate", "vocal"], env)
    assert quiet.returncode == 0 and quiet.stderr == b"" and quiet.stdout == loud.stdout
    busy = cli(["server", "start"], env)
    assert busy.returncode == 1 and b"another audiofx server runs" in busy.stderr
    wait_for(lambda: not alive(pid), 60, "the idle timeout")
    assert not (folder / "server.sock").exists()
    assert "stopped (idle for 5 s)" in (folder / "server.log").read_text()


def test_server_commands(server):
    status = server.ensure()
    again = cli(["server", "start"], server.env)
    assert again.returncode == 0 and b"already running" in again.stderr
    text = cli(["server", "status"], server.env)
    assert text.returncode == 0
    assert f"running, pid {status['pid']}" in text.stdout.decode()
    assert status["rss_bytes"] > 0 and status["max_jobs"] == os.cpu_count()
    bad = cli(["server", "start", "--idle-timeout", "soon"], server.env)
    assert bad.returncode == 2 and b"not a duration" in bad.stderr


def test_stop_then_status_says_not_running(tmp_path):
    folder = tmp_path / "none"
    env = make_env(folder)
    assert cli(["server", "stop"], env).returncode == 0
    result = cli(["server", "status"], env)
    assert result.returncode == 1 and b"not running" in result.stdout


def test_a_folder_others_can_read_is_not_used(tmp_path, inputs):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    result = cli(["validate", "vocal", "-q", "--debug"], make_env(folder))
    assert result.returncode == 0
    assert b"has mode 0755; it must be 0700" in result.stderr
    start = cli(["server", "start"], make_env(folder))
    assert start.returncode == 1 and b"it must be 0700" in start.stderr


def test_the_client_imports_only_the_standard_library():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from audiofx_cli.server.client import run_on_server\n"
        "new = sorted(set(sys.modules) - before)\n"
        "ours = [m for m in new if m.startswith('audiofx_cli')]\n"
        "other = [m for m in new if not m.startswith('audiofx_cli')\n"
        "         and m.split('.')[0] not in sys.stdlib_module_names]\n"
        "print(ours); print(other)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    ours, other = (eval(line) for line in result.stdout.splitlines())  # noqa: S307 (our output)
    assert other == []
    assert set(ours) <= {
        "audiofx_cli",
        "audiofx_cli._version",
        "audiofx_cli.server",
        "audiofx_cli.server.client",
        "audiofx_cli.server.paths",
        "audiofx_cli.server.protocol",
    }
