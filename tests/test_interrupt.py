"""Ctrl-C, for real: a folder batch with `--jobs 2`, a `--executor ray` batch and a pipe run, each
in a real subprocess interrupted at a deterministic point (after the first output is committed,
or while stdin is being spooled, or while the output is being written). Each run exits 130,
leaves no partial or temporary file, leaves its inputs untouched, and writes a `--json` report
that agrees with what is on disk. (One file with `-o`: tests/test_cli_process.py.)"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli import load_chain
from tests.conftest import CLI, file_hash, unit_noise, write_audio

CHAIN = "name: clean\nstages:\n  - highpass: {cutoff_hz: 100, order: 2}\n  - gain: {gain_db: -6}\n"
RATE = 44100
PCM16_TOLERANCE = 2.0**-12  # float32 processing and 16-bit output against the float64 chain


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    """Poll until `condition()`; fail (and kill the run) if the process ends first or 120 s pass."""
    deadline = time.monotonic() + 120
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {err!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_group(proc: subprocess.Popen) -> None:
    """Clean-up after a failed test (nothing of the run may outlive it); closes the pipes."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except BrokenPipeError:  # stdin with unsent bytes: the reader is gone
                pass


def assert_interrupted(proc: subprocess.Popen, stderr: str) -> None:
    """Exit 130 with the one-line message, no traceback."""
    assert proc.returncode == 130, stderr
    assert "audiofx: error: interrupted" in stderr and "Traceback" not in stderr, stderr


def group_gone(pgid: int, timeout_s: float = 20.0) -> bool:
    """Whether every process of the run's process group (the CLI and its workers) has ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_hash(p) for p in folder.rglob("*") if p.is_file()}


def make_takes(folder: Path, count: int, seconds: float) -> Path:
    folder.mkdir()
    for i in range(count):
        data = 0.3 * unit_noise(2, int(RATE * seconds), seed=i)
        write_audio(folder / f"take{i}.wav", data, RATE)
    return folder


def expected_output(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    chain = load_chain(
        [{"highpass": {"cutoff_hz": 100, "order": 2}}, {"gain": {"gain_db": -6}}],
        rate,
        dtype=torch.float64,
    )
    return chain(torch.from_numpy(data.T.copy())).numpy().T


def check_interrupted_batch(src: Path, out: Path, report: Path, before: dict[str, str]) -> None:
    """Exit 130 was checked by the caller. No temporary or partial file; inputs untouched; the
    report says interrupted, lists every committed output as ok and nothing else; each
    committed output is whole and right."""
    left = [p.name for p in out.rglob("*") if p.name.startswith(".") or "audiofx-tmp" in p.name]
    assert not left, f"temporary files left: {left}"
    assert hashes(src) == before
    doc = json.loads(report.read_text())
    summary = doc["summary"]
    assert summary["interrupted"] is True, summary
    assert summary["files"] == len(before)
    assert summary["done"] == len(doc["files"]) == summary["ok"]
    ok_outputs = {Path(f["output"]) for f in doc["files"] if f["status"] == "ok"}
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert on_disk == ok_outputs, f"report {sorted(ok_outputs)} != on disk {sorted(on_disk)}"
    assert 1 <= len(on_disk) < len(before), f"not mid-batch: {len(on_disk)} of {len(before)}"
    for entry in doc["files"]:
        got = sf.read(entry["output"], dtype="float64", always_2d=True)[0]
        want = expected_output(Path(entry["input"]))
        assert got.shape == want.shape, entry["output"]
        assert np.max(np.abs(got - want)) < PCM16_TOLERANCE, entry["output"]


def start_batch(
    tmp_path: Path, count: int, *options: str
) -> tuple[Path, Path, Path, subprocess.Popen]:
    """A batch of `count` 3 s takes in its own process group (as a shell job is): returns the
    input folder, the output folder, the report path and the running CLI."""
    src = make_takes(tmp_path / "in", count, seconds=3.0)
    (tmp_path / "clean.yaml").write_text(CHAIN)
    out, report = tmp_path / "out", tmp_path / "report.json"
    proc = subprocess.Popen(
        [*CLI, "process", str(src), "-c", str(tmp_path / "clean.yaml"), "--out-dir", str(out),
         "--chunk-seconds", "0.02", "--json", str(report), "-q", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "RAY_ADDRESS": ""},  # Ray: a local cluster of this machine
    )  # fmt: skip
    return src, out, report, proc


def committed(out: Path) -> list[Path]:
    return sorted(out.glob("take*.wav")) if out.exists() else []


def test_ctrl_c_stops_a_parallel_batch(tmp_path):
    """Ctrl-C reaches the CLI and its two workers at once (the terminal's process group). It is
    sent while the group is stopped with at least one output committed and another file being
    written, so it lands mid-file."""
    src, out, report, proc = start_batch(tmp_path, 6, "--jobs", "2")
    before = hashes(src)
    try:

        def stopped_mid_file() -> bool:
            if not committed(out):
                return False
            os.killpg(proc.pid, signal.SIGSTOP)
            time.sleep(0.05)  # every process of the group has stopped
            if list(out.glob(".*.audiofx-tmp")):
                return True
            os.killpg(proc.pid, signal.SIGCONT)  # between two files: look again
            return False

        wait_until(stopped_mid_file, proc, "an output was committed with another in progress")
        os.killpg(proc.pid, signal.SIGINT)  # delivered as the group resumes
        os.killpg(proc.pid, signal.SIGCONT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert_interrupted(proc, stderr)
    assert group_gone(proc.pid), "a worker outlived the interrupted batch"
    check_interrupted_batch(src, out, report, before)


def test_ctrl_c_stops_a_ray_batch(tmp_path):
    """Ctrl-C on the driver of a local Ray cluster: running tasks are cancelled (each removes its
    temporary file), queued ones never start, and nothing is written after the driver exits."""
    pytest.importorskip("ray", reason="ray not installed (pip install 'audiofx-cli[ray]')")
    src, out, report, proc = start_batch(tmp_path, 8, "--executor", "ray")
    before = hashes(src)
    try:
        deadline = time.monotonic() + 180
        while not committed(out):
            if proc.poll() is not None:
                _, stderr = proc.communicate()
                if proc.returncode != 0:
                    pytest.skip(f"Ray could not start here: {stderr.strip()[-300:]}")
                pytest.fail(f"the Ray batch ended (exit {proc.returncode}) before Ctrl-C")
            assert time.monotonic() < deadline, "no output committed in 180 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert_interrupted(proc, stderr)
    written = sorted(out.rglob("*"))
    time.sleep(2.0)  # cancelled tasks must not go on writing after the driver has gone
    assert sorted(out.rglob("*")) == written
    check_interrupted_batch(src, out, report, before)


def wav_bytes(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * unit_noise(2, int(RATE * seconds), seed=7).T, RATE, format="WAV",
             subtype="PCM_16")  # fmt: skip
    return buffer.getvalue()


@pytest.mark.parametrize("phase", ["spooling stdin", "writing the output"])
def test_ctrl_c_stops_a_pipe_run(tmp_path, phase):
    """`audiofx process - -o -`: interrupted while stdin is still arriving (the writer stalls
    with the pipe open) or while the output is being written. stdout stays empty (never half a
    file), the spooled input and the temporary output are removed (TMPDIR is watched), and the
    --json report says interrupted."""
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    data = wav_bytes(20.0)
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [*CLI, "process", "-", "-c", "rumble", "-o", "-", "-t", "wav", "--chunk-seconds", "0.01",
         "--json", str(report), "-q"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(spool_dir)}, start_new_session=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        if phase == "spooling stdin":
            sent = 1 << 20
            proc.stdin.write(data[:sent])
            proc.stdin.flush()

            def spooled() -> bool:
                files = list(spool_dir.glob("audiofx-stdin-*/stdin"))
                return bool(files) and files[0].stat().st_size >= sent - 8192  # write buffer

            wait_until(spooled, proc, "the piped bytes were spooled")
            time.sleep(0.2)  # now blocked on the stalled pipe
            proc.send_signal(signal.SIGINT)
        else:
            proc.stdin.write(data)
            proc.stdin.close()

            def writing() -> bool:
                return bool(list(spool_dir.glob("audiofx-stdout-*/.stdout.wav.*.audiofx-tmp")))

            wait_until(writing, proc, "the output was being written")
            os.killpg(proc.pid, signal.SIGSTOP)
            assert writing(), "the output was finished before the interrupt"
            proc.send_signal(signal.SIGINT)
            os.killpg(proc.pid, signal.SIGCONT)
        proc.wait(timeout=120)
        stdout, stderr = proc.stdout.read(), proc.stderr.read().decode()
    finally:
        kill_group(proc)
    assert_interrupted(proc, stderr)
    assert stdout == b""
    assert not list(spool_dir.iterdir()), "a spooled input or temporary output was left"
    summary = json.loads(report.read_text())["summary"]
    assert summary["interrupted"] is True and (summary["done"], summary["ok"]) == (0, 0)


def test_a_stop_inside_a_finalizer_is_raised_after_it():
    """A worker's stop signal that lands in a `__del__` (a SoundFile being collected) would be
    printed as "Exception ignored" with a traceback and lost; it is raised again just after."""
    import signal as signals
    import sys as system
    import time as clock

    from audiofx_cli.batch import runner

    class Closing:
        def __del__(self) -> None:
            runner._stop_worker(signals.SIGINT, system._getframe())

    previous = signals.signal(signals.SIGALRM, runner._retry_stop)
    runner._worker.stopping, runner._worker.busy = False, True
    try:
        with pytest.raises(KeyboardInterrupt):
            Closing()  # collected at once: the handler runs inside __del__ and must not raise
            deadline = clock.monotonic() + 5
            while clock.monotonic() < deadline:  # the task goes on ... until SIGALRM stops it
                clock.sleep(0.001)
        assert not runner._worker.pending
    finally:
        signals.setitimer(signals.ITIMER_REAL, 0)
        signals.signal(signals.SIGALRM, previous)
        runner._worker.stopping = runner._worker.busy = runner._worker.pending = False
