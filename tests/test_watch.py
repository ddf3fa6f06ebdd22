"""`audiofx watch`: a drop folder watched by a real CLI process, with real audio files.

The reference for every output is `audiofx process` on the same file with the same chain (byte
for byte). Cases: `--once` over a folder tree, a file written slowly while the watch runs (its
output appears only once the writer is done and is the whole file's), resume (done outputs
skipped, an input touched later processed again), Ctrl-C in the middle of a file, a bad file
(failed once, the watch goes on), and the same through a warm server. Settle and poll times are
short; nothing asserts on speed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf

from audiofx_cli.batch.watch import Settling, Stamp, check_folders, scan
from audiofx_cli.errors import UsageError
from tests.conftest import CLI, file_hash, unit_noise, write_audio
from tests.test_server import NEUTRAL_CWD, Server, temps

CHAIN = "name: clean\nstages:\n  - highpass: {cutoff_hz: 100, order: 2}\n  - gain: {gain_db: -6}\n"
RATE = 44100
FAST = ["--settle-seconds", "0.3", "--poll-seconds", "0.05"]


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    path = tmp_path / "clean.yaml"
    path.write_text(CHAIN)
    return path


def take(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, 0.3 * unit_noise(2, int(RATE * seconds), seed=seed), RATE)


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=NEUTRAL_CWD
    )


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=NEUTRAL_CWD,
        start_new_session=True,  # its own process group, as a shell job
    )


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"watch ended (exit {proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> str:
    """Ctrl-C to a running watch; its stderr. Exit 130 with the one-line message."""
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "audiofx: error: interrupted" in stderr and "Traceback" not in stderr, stderr
    return stderr


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def report(path: Path) -> dict:
    return json.loads(path.read_text())


def statuses(doc: dict) -> dict[str, str]:
    return {Path(f["input"]).name: f["status"] for f in doc["files"]}


def outputs(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_hash(p) for p in folder.rglob("*") if p.is_file()}


def reference(source: Path, chain: Path, out: Path) -> str:
    """`audiofx process` of one file: the hash every watched output must have."""
    result = run(["process", str(source), "-c", str(chain), "-o", str(out), "-q"])
    assert result.returncode == 0, result.stderr
    return file_hash(out)


def test_settling_takes_a_file_once_per_stamp():
    """The library's bookkeeping on a fake clock: ready only after `settle_s` without change,
    never twice for one stamp, again once the stamp changes, forgotten when the file goes."""
    now = [0.0]
    settling = Settling(settle_s=1.0, clock=lambda: now[0])
    a = Path("a.wav")
    for t, size in ((0.0, 10), (0.6, 20), (1.2, 20)):  # still growing at 0.6 s
        now[0] = t
        settling.update({a: Stamp(size, 1)})
        assert settling.ready() == [] and settling.pending()
    now[0] = 1.6
    settling.update({a: Stamp(20, 1)})
    assert settling.ready() == [(a, Stamp(20, 1))]
    settling.mark_handled(a, Stamp(20, 1))
    now[0] = 5.0
    settling.update({a: Stamp(20, 1)})
    assert settling.ready() == [] and not settling.pending()
    settling.update({a: Stamp(20, 2)})  # touched
    assert settling.pending()
    now[0] = 6.0
    assert settling.ready() == [(a, Stamp(20, 2))]
    settling.update({})
    assert settling.seen == {} and settling.handled == {}


def test_scan_leaves_out_hidden_temporary_and_output_files(tmp_path):
    drop = tmp_path / "drop"
    for name in ("a.wav", "sub/b.flac", ".c.wav", ".cache/d.wav", ".e.wav.x1.audiofx-tmp",
                 "done/e.wav", "notes.txt"):  # fmt: skip
        (drop / name).parent.mkdir(parents=True, exist_ok=True)
        (drop / name).write_bytes(b"x")
    exclude = check_folders(drop, drop / "done", recursive=True)
    found = {p.relative_to(drop).as_posix() for p in scan(drop, True, exclude)}
    assert found == {"a.wav", "sub/b.flac", "notes.txt"}
    assert {p.name for p in scan(drop, False, exclude)} == {"a.wav", "notes.txt"}
    with pytest.raises(UsageError, match="inside --out-dir"):
        check_folders(drop / "sub", drop, recursive=True)


def test_once_equals_process_out_dir(tmp_path, chain):
    """`--once -R` over a tree with hidden files, a hidden folder, a text file and a broken
    "x.wav": the same outputs, byte for byte, as `process -r --out-dir`, and exit 1 for the
    failed file."""
    drop = tmp_path / "drop"
    take(drop / "a.wav", 0.5, 1)
    take(drop / "sub" / "b.wav", 0.4, 2)
    take(drop / ".hidden.wav", 0.2, 3)
    take(drop / ".cache" / "c.wav", 0.2, 4)
    (drop / "notes.txt").write_text("not audio, not an input")
    (drop / "bad.wav").write_text("text named .wav: fails with its reason")
    done, ref, json_path = tmp_path / "done", tmp_path / "ref", tmp_path / "report.json"

    result = run(["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "-R", "--once",
                  "--json", str(json_path), *FAST])  # fmt: skip
    assert result.returncode == 1, result.stderr  # --once: a file failed
    assert f"wrote {done / 'a.wav'}" in result.stderr
    processed = run(["process", str(drop), "-c", str(chain), "--out-dir", str(ref), "-R", "-q"])
    assert processed.returncode == 1, processed.stderr
    assert outputs(done) == outputs(ref) and set(outputs(done)) == {"a.wav", "sub/b.wav"}

    doc = report(json_path)
    assert doc["chain"]["name"] == "clean"
    summary = doc["summary"]
    assert (summary["files"], summary["ok"], summary["failed"]) == (3, 2, 1)
    assert summary["interrupted"] is False
    assert statuses(doc)["bad.wav"] == "failed"
    ok = [f for f in doc["files"] if f["status"] == "ok"]
    assert {(f["input"], f["output"]) for f in ok} == {
        (str(drop / "a.wav"), str(done / "a.wav")),
        (str(drop / "sub" / "b.wav"), str(done / "sub" / "b.wav")),
    }
    assert all(f["duration_s"] > 0 and f["error"] is None for f in ok)


def wav_bytes(seconds: float, seed: int) -> bytes:
    buffer = io.BytesIO()
    data = 0.3 * unit_noise(2, int(RATE * seconds), seed=seed)
    sf.write(buffer, data.T, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_slowly(path: Path, data: bytes, pieces: int, gap_s: float) -> None:
    """A finished WAV file's bytes, a piece every `gap_s` (the header comes first, so a reader
    that opens it early sees a valid, truncated file)."""
    step = -(-len(data) // pieces)
    with open(path, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(gap_s)


def test_a_file_being_written_is_taken_once_complete(tmp_path, chain):
    """The watch is live (a first file done) when a second file starts arriving in 10 pieces
    over about 2.5 s; settling takes 1 s of no change. Its output appears only after the writer
    has finished, and is the whole file processed."""
    drop, done, json_path = tmp_path / "drop", tmp_path / "done", tmp_path / "report.json"
    take(drop / "first.wav", 0.3, 1)
    proc = spawn(["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "--json",
                  str(json_path), "--settle-seconds", "1.0", "--poll-seconds", "0.05"])  # fmt: skip
    try:
        wait_until((done / "first.wav").exists, proc, "the first output")
        late, late_out = drop / "late.wav", done / "late.wav"
        writer = threading.Thread(target=write_slowly, args=(late, wav_bytes(1.0, 5), 10, 0.25))
        writer.start()
        early = False
        while writer.is_alive():
            early = early or late_out.exists()
            time.sleep(0.02)
        assert not early, "the output was written while the input was still being written"
        wait_until(late_out.exists, proc, "the late output")
        stderr = stop(proc)
    finally:
        kill_group(proc)
    assert late_out.read_bytes() and file_hash(late_out) == reference(
        late, chain, tmp_path / "r.wav"
    )
    assert stderr.count(f"wrote {late_out}") == 1
    doc = report(json_path)
    assert statuses(doc) == {"first.wav": "ok", "late.wav": "ok"}
    assert doc["summary"]["interrupted"] is True


def test_resume_skips_done_outputs_and_redoes_changed_inputs(tmp_path, chain):
    """A second `--once` run: an output not older than its input is skipped (and reported
    so); an input touched after its output was written is processed again."""
    drop, done, json_path = tmp_path / "drop", tmp_path / "done", tmp_path / "report.json"
    take(drop / "a.wav", 0.3, 1)
    take(drop / "b.wav", 0.3, 2)
    args = ["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "--once", *FAST]
    first = run([*args, "-q"])
    assert first.returncode == 0 and first.stderr == "", first.stderr
    a_hash, a_done = file_hash(done / "a.wav"), (done / "a.wav").stat().st_mtime_ns
    later = a_done / 1e9 + 5
    os.utime(drop / "a.wav", (later, later))  # touched: now newer than its output

    second = run([*args, "--json", str(json_path)])
    assert second.returncode == 0, second.stderr
    doc = report(json_path)
    assert statuses(doc) == {"a.wav": "ok", "b.wav": "skipped"}
    assert (doc["summary"]["ok"], doc["summary"]["skipped"]) == (1, 1)
    assert f"skipped {drop / 'b.wav'}" in second.stderr
    assert (done / "a.wav").stat().st_mtime_ns > a_done  # written again, atomically
    assert file_hash(done / "a.wav") == a_hash
    assert not temps(done)


def test_ctrl_c_mid_file_leaves_no_partial_output(tmp_path, chain):
    """SIGINT while the output is being written (the run is stopped with its temporary file
    there, then interrupted): exit 130, no output and no temporary file, the report written."""
    drop, done, json_path = tmp_path / "drop", tmp_path / "done", tmp_path / "report.json"
    take(drop / "long.wav", 4.0, 1)
    proc = spawn(["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "-q",
                  "--json", str(json_path), "--chunk-seconds", "0.01", *FAST])  # fmt: skip
    try:

        def stopped_mid_file() -> bool:
            if not (done.exists() and temps(done)):
                return False
            os.killpg(proc.pid, signal.SIGSTOP)
            time.sleep(0.05)  # stopped for sure
            if temps(done):
                return True
            os.killpg(proc.pid, signal.SIGCONT)
            return False

        wait_until(stopped_mid_file, proc, "the output was being written")
        proc.send_signal(signal.SIGINT)
        os.killpg(proc.pid, signal.SIGCONT)
        stop(proc)
    finally:
        kill_group(proc)
    assert list(done.iterdir()) == []
    summary = report(json_path)["summary"]
    assert summary["interrupted"] is True and summary["done"] == 0


def test_a_bad_file_fails_once_and_the_watch_goes_on(tmp_path, chain):
    drop, done, json_path = tmp_path / "drop", tmp_path / "done", tmp_path / "report.json"
    drop.mkdir()
    (drop / "bad.wav").write_bytes(b"RIFF not really a wave file")
    proc = spawn(["watch", str(drop), "-c", str(chain), "--out-dir", str(done),
                  "--json", str(json_path), *FAST])  # fmt: skip
    try:
        wait_until(json_path.exists, proc, "the bad file's report")
        take(drop / "good.wav", 0.3, 1)
        wait_until((done / "good.wav").exists, proc, "the good output")
        time.sleep(0.5)  # several polls: the bad file must not come back
        stderr = stop(proc)
    finally:
        kill_group(proc)
    doc = report(json_path)
    assert statuses(doc) == {"bad.wav": "failed", "good.wav": "ok"}
    assert len(doc["files"]) == 2 and "bad.wav" in doc["files"][0]["error"]
    assert stderr.count("audiofx: error: ") == 2  # the bad file once, then the interrupt
    assert not (done / "bad.wav").exists()


def test_usage_errors(tmp_path, chain):
    drop = tmp_path / "drop"
    drop.mkdir()
    missing = run(["watch", str(tmp_path / "nope"), "-c", str(chain), "--out-dir", str(drop)])
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    same = run(["watch", str(drop), "-c", str(chain), "--out-dir", str(drop), "--once"])
    assert same.returncode == 2 and "outputs would be inputs" in same.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the server is Linux-only")
def test_through_a_server(tmp_path, chain):
    """A watch served by a warm server: the same bytes as in-process, and Ctrl-C to the client
    cancels it mid-file (130, no temporary file)."""
    parent = Path(tempfile.mkdtemp(prefix="afx-watch-", dir="/tmp"))  # a short socket path
    server = Server(parent / "server")
    try:
        server.ensure()
        drop, done = tmp_path / "drop", tmp_path / "done"
        take(drop / "a.wav", 0.3, 1)
        served = server.served()
        result = run(["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "--once",
                      *FAST], server.env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert server.served() == served + 1
        assert file_hash(done / "a.wav") == reference(drop / "a.wav", chain, tmp_path / "r.wav")

        take(drop / "long.wav", 20.0, 2)
        client = spawn(["watch", str(drop), "-c", str(chain), "--out-dir", str(done), "-q",
                        "--chunk-seconds", "0.001", *FAST], server.env)  # fmt: skip
        try:
            wait_until(lambda: bool(temps(done)), client, "the served job's temporary output")
            stop(client)
        finally:
            kill_group(client)
        assert not temps(done) and not (done / "long.wav").exists()
        assert server.status() is not None
    finally:
        server.shutdown()
        shutil.rmtree(parent, ignore_errors=True)


def test_inline_stages_and_shortcuts_as_process_takes_them(tmp_path):
    drop, done, ref = tmp_path / "drop", tmp_path / "done", tmp_path / "ref"
    drop.mkdir()
    take(drop / "a.wav", 0.5, seed=7)
    options = ["-e", "highpass:cutoff_hz=100", "-r", "16k", "-C", "1", "-b", "16",
               "--name", "{stem}.flac"]  # fmt: skip
    watched = run(["watch", str(drop), "--out-dir", str(done), "--once", *FAST, *options])
    assert watched.returncode == 0, watched.stderr
    processed = run(["process", str(drop), "--out-dir", str(ref), "-q", *options])
    assert processed.returncode == 0, processed.stderr
    assert (done / "a.flac").read_bytes() == (ref / "a.flac").read_bytes()
    info = sf.info(str(done / "a.flac"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
