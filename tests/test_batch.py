"""Batch processing end to end on a generated corpus: mixed formats, rates and channel counts plus
every kind of bad file. Each bad file gets a one-line reason, the batch goes on, nothing partial
is left, inputs are byte-for-byte unchanged; resume completes a killed run; inputs that change or
vanish mid-batch fail alone. (Shards: tests/test_shards.py; Ctrl-C: tests/test_interrupt.py.)"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli import load_chain
from audiofx_cli.cli.main import app
from tests.conftest import CLI, file_hash, needs_sox, run_cli, unit_noise, write_audio

CHAIN = "name: clean\nstages:\n  - highpass: {cutoff_hz: 100, order: 2}\n  - gain: {gain_db: -6}\n"

GOOD = [  # (relative path, rate, channels, subtype, seconds)
    ("a.wav", 8000, 1, "PCM_16", 0.3),
    ("b.flac", 16000, 2, "PCM_24", 0.2),
    ("c.wav", 22050, 1, "FLOAT", 0.2),
    ("d.ogg", 44100, 2, "VORBIS", 0.2),
    ("e.aiff", 48000, 2, "PCM_16", 0.1),
    ("sub/f.wav", 96000, 6, "PCM_24", 0.05),
    ("sub/g.flac", 192000, 1, "PCM_16", 0.05),
    ("sub/deeper/h.wav", 32000, 32, "PCM_16", 0.02),
    ("sub/deeper/one_sample.wav", 44100, 1, "PCM_16", None),
    ("sub/deeper/silent_zero_length.wav", 44100, 2, "PCM_16", 0.0),
    ("no_extension_audio", 16000, 1, "PCM_16", 0.1),
]
BAD = {  # relative path -> fragment of the reason
    "empty.wav": "cannot read audio",
    "text.wav": "cannot read audio",
    "truncated.wav": "cannot read audio",
    "nan.wav": "NaN or Inf",
    "low_rate.wav": "stage 1 'highpass': key 'cutoff_hz': must be below Nyquist (100 Hz",
}


def make_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    for i, (rel, rate, channels, subtype, seconds) in enumerate(GOOD):
        path = corpus / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = 1 if seconds is None else int(rate * seconds)
        data = 0.4 * unit_noise(channels, max(frames, 1), seed=i)[:, :frames]
        fmt = "WAV" if rel == "no_extension_audio" else None
        sf.write(path, data.T, rate, subtype=subtype, format=fmt)
    (corpus / "empty.wav").write_bytes(b"")
    (corpus / "text.wav").write_text("definitely not audio\n")
    whole = (corpus / "a.wav").read_bytes()
    (corpus / "truncated.wav").write_bytes(whole[:30])
    nan = 0.4 * unit_noise(1, 800, seed=99)
    nan[0, 400] = np.nan
    sf.write(corpus / "nan.wav", nan.T, 16000, subtype="FLOAT")
    write_audio(corpus / "low_rate.wav", 0.4 * unit_noise(1, 400), 200)  # Nyquist 100 Hz
    (corpus / "notes.txt").write_text("a text file that is not audio and not named .wav\n")
    (corpus / ".hidden.wav").write_bytes(b"")
    return corpus


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_hash(p) for p in folder.rglob("*") if p.is_file()}


def same_audio(a: Path, b: Path) -> bool:
    """Decoded samples equal, file by file (float WAV headers carry a time stamp and Ogg
    streams a random serial number, so bytes may differ between identical runs)."""
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    if names != sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()):
        return False
    for name in names:
        x, rate_x = sf.read(a / name, dtype="float64", always_2d=True)
        y, rate_y = sf.read(b / name, dtype="float64", always_2d=True)
        if rate_x != rate_y or not np.array_equal(x, y):
            return False
    return True


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_corpus(tmp_path)


@pytest.fixture
def chain_file(tmp_path: Path) -> Path:
    path = tmp_path / "clean.yaml"
    path.write_text(CHAIN)
    return path


def expected_output_of(data: np.ndarray, rate: int) -> np.ndarray:
    """CHAIN in float64 on (channels, frames) samples, as (frames, channels)."""
    chain = load_chain(
        [{"highpass": {"cutoff_hz": 100, "order": 2}}, {"gain": {"gain_db": -6}}],
        rate,
        dtype=torch.float64,
    )
    return chain(torch.from_numpy(np.ascontiguousarray(data))).numpy().T


def expected_output(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    return expected_output_of(data.T, rate)


def test_folder_batch_end_to_end(tmp_path, corpus, chain_file, runner):
    before = hashes(corpus)
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "process",
            str(corpus),
            "-c",
            str(chain_file),
            "--out-dir",
            str(out),
            "--recursive",
            "--json",
            str(report),
            "-q",
        ],
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(report.read_text())
    files = {str(Path(f["input"]).relative_to(corpus)): f for f in doc["files"]}
    assert set(files) == {g[0] for g in GOOD} | set(BAD)  # notes.txt and .hidden.wav ignored
    for rel, fragment in BAD.items():
        entry = files[rel]
        assert entry["status"] == "failed" and fragment in entry["error"], entry
        assert "\n" not in entry["error"]
        assert not Path(entry["output"]).exists()
    for rel, rate, channels, _, _ in GOOD:
        entry = files[rel]
        assert entry["status"] == "ok", entry
        written = out / (rel if Path(rel).suffix else rel + ".wav")  # no extension: wav
        assert Path(entry["output"]) == written
        info = sf.info(written)
        assert (info.samplerate, info.channels) == (rate, channels)
        assert info.frames == sf.info(corpus / rel).frames
        if rel.endswith((".wav", ".flac")) and info.frames:
            got = sf.read(written, dtype="float64", always_2d=True)[0]
            tol = (
                2e-5
                if "FLOAT" in info.subtype
                else 2.0 ** -(12 if info.subtype == "PCM_16" else 20)
            )
            assert np.max(np.abs(got - expected_output(corpus / rel))) < tol, rel
    summary = doc["summary"]
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (len(GOOD), len(BAD), 0)
    assert hashes(corpus) == before
    assert not [p for p in out.rglob("*") if "audiofx-tmp" in p.name]
    errors = [line for line in result.stderr.splitlines() if line.startswith("audiofx: error:")]
    assert len(errors) == len(BAD)


def test_sanitize_replaces_nan_by_zero_and_inf_by_one(tmp_path, chain_file, runner):
    """The documented substitution (NaN -> 0, +-Inf -> +-1), checked through the chain against
    its float64 reference on the substituted input: an impulse of 1 at an Inf sample shows."""
    data = 0.4 * unit_noise(2, 8000, seed=5)
    bad = {(0, 100): np.nan, (0, 2000): np.inf, (1, 3000): -np.inf, (1, 5000): np.inf}
    for (channel, frame), value in bad.items():
        data[channel, frame] = value
    src = tmp_path / "in"
    src.mkdir()
    write_audio(src / "bad.wav", data, 16000, "FLOAT")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["process", str(src), "-c", str(chain_file), "--out-dir", str(out), "--sanitize",
         "--json", str(tmp_path / "r.json"), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "r.json").read_text())["files"][0]
    assert entry["status"] == "ok" and entry["sanitized_samples"] == len(bad)
    substituted = np.nan_to_num(data.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    reference = expected_output_of(substituted.astype(np.float64), 16000)
    got = sf.read(out / "bad.wav", dtype="float64", always_2d=True)[0]
    assert np.max(np.abs(got - reference)) < 2e-5
    zeroed = expected_output_of(np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0), 16000)
    assert np.max(np.abs(got - zeroed)) > 0.4  # the Inf samples did become +-1, not 0


def test_names_globs_and_collisions(tmp_path, chain_file, runner):
    src = tmp_path / "takes"
    src.mkdir()
    for name in ("x.wav", "x.flac", "y.flac"):
        write_audio(src / name, 0.3 * unit_noise(1, 1600), 16000)
    out = tmp_path / "out"
    glob_arg = str(src / "*.flac")
    result = runner.invoke(
        app,
        [
            "process",
            glob_arg,
            "-c",
            str(chain_file),
            "--out-dir",
            str(out),
            "--name",
            "{stem}_{chain}_fx.{ext}",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["x_clean_fx.flac", "y_clean_fx.flac"]
    result = runner.invoke(
        app,
        [
            "process",
            str(src),
            "-c",
            str(chain_file),
            "--out-dir",
            str(tmp_path / "o2"),
            "--name",
            "{stem}.wav",
        ],
    )
    assert result.exit_code == 2 and "would both be written to" in result.stderr
    assert not (tmp_path / "o2").exists()
    result = runner.invoke(
        app,
        [
            "process",
            str(src),
            "-c",
            str(chain_file),
            "--out-dir",
            str(tmp_path / "o3"),
            "--name",
            "{stem}.{format}",
        ],
    )
    assert result.exit_code == 2 and "unknown field {format}" in result.stderr
    result = runner.invoke(
        app, ["process", str(src), "-c", str(chain_file), "--out-dir", str(src), "--overwrite"]
    )
    assert result.exit_code == 2 and "would overwrite an input" in result.stderr
    result = runner.invoke(
        app, ["process", str(src / "*.mp9"), "-c", str(chain_file), "--out-dir", str(out)]
    )
    assert result.exit_code == 2 and "no audio files match" in result.stderr
    blocker = tmp_path / "file_not_folder"
    blocker.write_text("x")
    result = runner.invoke(
        app, ["process", str(src), "-c", str(chain_file), "--out-dir", str(blocker / "out")]
    )
    assert result.exit_code == 2 and "cannot create output folder" in result.stderr


def test_chain_errors_exit_2_before_any_file(tmp_path, corpus, runner):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - highpass: {cutof_hz: 100}\n")
    result = runner.invoke(
        app, ["process", str(corpus), "-c", str(bad), "--out-dir", str(tmp_path / "out"), "-R"]
    )
    assert result.exit_code == 2 and "bad.yaml:2:16" in result.stderr
    assert not (tmp_path / "out").exists()


def test_parallel_jobs_equal_serial(tmp_path, corpus, chain_file):
    good = tmp_path / "good"
    shutil.copytree(corpus, good, ignore=shutil.ignore_patterns(*BAD))
    serial = run_cli(
        "process", str(good), "-c", str(chain_file), "--out-dir", str(tmp_path / "s"), "-R", "-q"
    )
    parallel = run_cli(
        "process",
        str(good),
        "-c",
        str(chain_file),
        "--out-dir",
        str(tmp_path / "p"),
        "-R",
        "-q",
        "--jobs",
        "2",
    )
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    assert same_audio(tmp_path / "s", tmp_path / "p")


def test_resume_after_kill(tmp_path, chain_file):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(24):
        write_audio(src / f"take{i:02d}.wav", 0.3 * unit_noise(2, 44100 * 2, seed=i), 44100)
    before = hashes(src)
    out = tmp_path / "out"
    cmd = [
        *CLI,
        "process",
        str(src),
        "-c",
        str(chain_file),
        "--out-dir",
        str(out),
        "-q",
        "--chunk-seconds",
        "0.05",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.wav"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # a crash: no clean-up at all
    proc.wait()
    done = sorted(out.glob("*.wav"))
    assert 3 <= len(done) < 24, "the kill should land mid-batch"
    for path in done:  # only whole files under output names
        assert sf.info(path).frames == 44100 * 2
    resumed = run_cli(
        "process",
        str(src),
        "-c",
        str(chain_file),
        "--out-dir",
        str(out),
        "-q",
        "--skip-existing",
        "--json",
        str(tmp_path / "r.json"),
        "--chunk-seconds",
        "0.05",
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["skipped"] == len(done) and summary["ok"] == 24 - len(done)
    assert not [p for p in out.iterdir() if "audiofx-tmp" in p.name]
    fresh = run_cli(  # the same command in one go (same chunking: same float rounding)
        "process",
        str(src),
        "-c",
        str(chain_file),
        "--out-dir",
        str(tmp_path / "fresh"),
        "-q",
        "--chunk-seconds",
        "0.05",
    )
    assert fresh.returncode == 0
    assert same_audio(out, tmp_path / "fresh")
    assert hashes(src) == before


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))


def test_disk_full_fails_one_file_and_keeps_going(tmp_path, chain_file):
    """A file-size limit stands in for a full disk: the write fails mid-file."""
    src = tmp_path / "in"
    src.mkdir()
    write_audio(src / "big.wav", 0.3 * unit_noise(2, 48000 * 5), 48000)  # 960 KB of output
    write_audio(src / "small.wav", 0.3 * unit_noise(1, 8000), 16000)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            *CLI,
            "process",
            str(src),
            "-c",
            str(chain_file),
            "--out-dir",
            str(out),
            "-q",
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    files = {
        Path(f["input"]).name: f for f in json.loads((tmp_path / "r.json").read_text())["files"]
    }
    assert files["small.wav"]["status"] == "ok"
    assert files["big.wav"]["status"] == "failed"
    assert "write failed" in files["big.wav"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["small.wav"]


def test_input_changed_mid_file(tmp_path, chain_file, runner):
    src = tmp_path / "in"
    src.mkdir()
    long = write_audio(src / "long.wav", 0.3 * unit_noise(2, 44100 * 20), 44100)
    cmd = [
        *CLI,
        "process",
        str(long),
        "-c",
        str(chain_file),
        "--out-dir",
        str(tmp_path / "out"),
        "--chunk-seconds",
        "0.01",
        "--json",
        str(tmp_path / "r.json"),
        "-q",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "out").glob(".*audiofx-tmp")):
        time.sleep(0.02)
    with open(long, "r+b") as handle:  # someone rewrites the input mid-run
        handle.seek(1000)
        handle.write(b"\x00" * 64)
        os.utime(long, ns=(time.time_ns(), time.time_ns() + 10**9))
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    assert "changed while it was processed" in stderr
    assert not any((tmp_path / "out").iterdir())


def test_inputs_vanishing_mid_batch(tmp_path, chain_file):
    """Serial batch a, b, c. While a is being processed (the run is stopped there, its temporary
    output present, so b and c are not yet opened), a and c are deleted: a vanished while it
    was read, c after planning and before it is read. Both fail with their reason, b is
    processed, nothing partial is left, the exit code is 1."""
    src = tmp_path / "in"
    src.mkdir()
    write_audio(src / "a.wav", 0.3 * unit_noise(2, 44100 * 20, seed=1), 44100)
    for name in ("b.wav", "c.wav"):
        write_audio(src / name, 0.3 * unit_noise(1, 8000, seed=2), 16000)
    out, report = tmp_path / "out", tmp_path / "r.json"
    proc = subprocess.Popen(
        [*CLI, "process", str(src), "-c", str(chain_file), "--out-dir", str(out),
         "--chunk-seconds", "0.01", "--json", str(report), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not list(out.glob(".a.wav.*audiofx-tmp")) if out.exists() else True:
            assert proc.poll() is None and time.time() < deadline, "a.wav was never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGSTOP)
        assert list(out.glob(".a.wav.*audiofx-tmp")), "a.wav finished before it could vanish"
        (src / "a.wav").unlink()
        (src / "c.wav").unlink()
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["a.wav"]["status"] == "failed"
    assert "input vanished while it was processed; output discarded" in files["a.wav"]["error"]
    assert files["c.wav"]["status"] == "failed" and "c.wav: no such file" in files["c.wav"]["error"]
    assert files["b.wav"]["status"] == "ok"
    assert sorted(p.name for p in out.iterdir()) == ["b.wav"]
    assert sf.info(out / "b.wav").frames == 8000
    assert stderr.count("audiofx: error:") == 2


def test_pipes_stdin_to_stdout(tmp_path, speech_file):
    data = speech_file.read_bytes()
    result = subprocess.run(
        [
            *CLI,
            "process",
            "-",
            "-c",
            "rumble",
            "-o",
            "-",
            "-t",
            "flac",
            "-q",
        ],
        input=data,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "out.flac").write_bytes(result.stdout)
    info = sf.info(tmp_path / "out.flac")
    assert info.format == "FLAC" and info.frames == sf.info(speech_file).frames
    failed = subprocess.run(
        [
            *CLI,
            "process",
            "-",
            "-c",
            "rumble",
            "-o",
            "-",
            "-t",
            "wav",
        ],
        input=b"not audio",
        capture_output=True,
        timeout=300,
    )
    assert failed.returncode == 1 and failed.stdout == b""


@needs_sox
def test_sox_pipeline(tmp_path):
    cmd = (
        f"sox -n -t wav - synth 1 sine 440 gain -6 | {sys.executable} -m audiofx_cli process - "
        "--chain rumble -o - -t wav -q | sox - -n stats"
    )
    result = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Pk lev dB" in result.stderr
    assert re.search(r"Length s\s+1\.000", result.stderr), result.stderr


def test_ray_executor_matches_local(tmp_path, chain_file):
    pytest.importorskip("ray", reason="ray not installed (pip install '.[ray]')")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_audio(src / f"r{i}.flac", 0.3 * unit_noise(2, 16000, seed=i), 16000)
    (src / "broken.wav").write_text("nope")
    local = run_cli(
        "process", str(src), "-c", str(chain_file), "--out-dir", str(tmp_path / "local"), "-q"
    )
    distributed = run_cli(
        "process",
        str(src),
        "-c",
        str(chain_file),
        "--out-dir",
        str(tmp_path / "ray"),
        "-q",
        "--executor",
        "ray",
        "--json",
        str(tmp_path / "r.json"),
        env={"RAY_ADDRESS": "", "RAY_num_cpus": "2"},
    )
    assert local.returncode == distributed.returncode == 1, distributed.stderr
    assert same_audio(tmp_path / "local", tmp_path / "ray")
    statuses = {
        Path(f["input"]).name: f["status"]
        for f in json.loads((tmp_path / "r.json").read_text())["files"]
    }
    assert statuses == {"r0.flac": "ok", "r1.flac": "ok", "r2.flac": "ok", "broken.wav": "failed"}
