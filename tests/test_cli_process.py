"""`audiofx process` end to end on real files (WAV/FLAC, 16-bit/24-bit/float, mono/stereo), and
every bad input: one clear line, the documented exit code, no output left, input unchanged."""

from __future__ import annotations

import json
import os
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
from audiofx_cli.io.audio import quantize
from tests.conftest import CLI, file_hash, run_cli, unit_noise, write_audio

CHAIN = (
    "stages:\n  - highpass: {cutoff_hz: 100, order: 4}\n  - peaking: {freq_hz: 2000, "
    "gain_db: 3}\n  - fir: {cutoff_hz: 5000, taps: 63}\n  - gain: {gain_db: -6}\n"
)


@pytest.fixture
def chain_file(tmp_path: Path) -> Path:
    path = tmp_path / "chain.yaml"
    path.write_text(CHAIN)
    return path


def expected_output(data: np.ndarray, rate: int, subtype: str) -> np.ndarray:
    """The chain applied in float64 to the decoded input, quantised like the output format."""
    y = load_chain(str_chain(), rate, dtype=torch.float64)(torch.from_numpy(data)).numpy()
    bits = {"PCM_16": 16, "PCM_24": 24}.get(subtype)
    if bits is None:
        return y
    return quantize(y, bits)[0].astype(np.float64) / 2 ** (31 if bits == 24 else 15)


def str_chain():
    import yaml

    return yaml.safe_load(CHAIN)["stages"]


@pytest.mark.parametrize(
    "ext,subtype,channels,rate",
    [
        ("wav", "PCM_16", 1, 16000),
        ("wav", "FLOAT", 2, 44100),
        ("flac", "PCM_24", 2, 48000),
        ("flac", "PCM_16", 1, 22050),
        ("wav", "PCM_24", 3, 96000),
    ],
)
def test_process_real_files(tmp_path, runner, chain_file, ext, subtype, channels, rate):
    src = write_audio(
        tmp_path / f"in.{ext}", 0.5 * unit_noise(channels, rate, seed=channels), rate, subtype
    )
    before = file_hash(src)
    out = tmp_path / f"out.{ext}"
    result = runner.invoke(
        app, ["process", str(src), "-c", str(chain_file), "-o", str(out), "--chunk-seconds", "0.1"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        rate,
        channels,
        rate,
        subtype,
    )
    decoded = sf.read(src, dtype="float64", always_2d=True)[0].T
    got = sf.read(out, dtype="float64", always_2d=True)[0].T
    want = expected_output(decoded, rate, subtype)
    lsb = {"PCM_16": 2**-15, "PCM_24": 2**-23}.get(subtype, 0.0)
    assert np.max(np.abs(got - want)) <= lsb + 1e-6  # float32 processing vs float64 reference
    assert file_hash(src) == before
    assert not list(tmp_path.glob("*.audiofx-tmp"))


def test_process_example_with_preset(tmp_path, runner, speech_file):
    out = tmp_path / "speech_vocal.wav"
    result = runner.invoke(app, ["process", str(speech_file), "--chain", "vocal", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sf.info(out).frames == sf.info(speech_file).frames


def test_chunk_size_does_not_change_output(tmp_path, runner, chain_file):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, 30000, seed=1), 44100, "FLOAT")
    outs = []
    for seconds in ("0.001", "0.037", "100"):
        out = tmp_path / f"out_{seconds}.wav"
        result = runner.invoke(
            app,
            [
                "process",
                str(src),
                "-c",
                str(chain_file),
                "-o",
                str(out),
                "--chunk-seconds",
                seconds,
            ],
        )
        assert result.exit_code == 0, result.output
        outs.append(sf.read(out)[0])
    assert np.max(np.abs(outs[0] - outs[2])) <= 1e-5
    assert np.max(np.abs(outs[1] - outs[2])) <= 1e-5


def test_format_conversion_and_subtypes(tmp_path, runner):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, 4000), 48000, "FLOAT")
    cases = [
        ("out.flac", [], "PCM_24"),
        ("out16.flac", ["--subtype", "PCM_16"], "PCM_16"),
        ("out.ogg", [], "VORBIS"),
        ("out32.wav", ["--subtype", "pcm_32"], "PCM_32"),
        ("out.aiff", [], "FLOAT"),
    ]
    for name, extra, subtype in cases:
        result = runner.invoke(
            app, ["process", str(src), "-c", "rumble", "-o", str(tmp_path / name), *extra]
        )
        assert result.exit_code == 0, result.output
        assert sf.info(tmp_path / name).subtype == subtype, name


def test_precision_float64(tmp_path, runner, chain_file):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(1, 8000), 16000, "DOUBLE")
    out = tmp_path / "out.wav"
    result = runner.invoke(
        app, ["process", str(src), "-c", str(chain_file), "-o", str(out), "--precision", "float64"]
    )
    assert result.exit_code == 0, result.output
    decoded = sf.read(src, dtype="float64", always_2d=True)[0].T
    np.testing.assert_allclose(
        sf.read(out, always_2d=True)[0].T, expected_output(decoded, 16000, "DOUBLE"), atol=1e-12
    )


def test_clipping_is_counted_and_reported(tmp_path, runner):
    data = 0.5 * unit_noise(2, 10000, seed=4)
    src = write_audio(tmp_path / "in.wav", data, 16000, "PCM_16")
    chain = tmp_path / "loud.yaml"
    chain.write_text("stages:\n  - gain: {gain_db: 12}\n")
    out = tmp_path / "out.wav"
    result = runner.invoke(app, ["process", str(src), "-c", str(chain), "-o", str(out)])
    assert result.exit_code == 0
    decoded = sf.read(src, dtype="float64", always_2d=True)[0]
    scaled = np.rint(decoded * 10 ** (12 / 20) * 32768)
    expected = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    assert expected > 0
    assert f"clipped {expected} samples" in result.stderr
    assert np.max(np.abs(sf.read(out)[0])) <= 1.0  # clipped, never wrapped around


def bad_case_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "good": write_audio(tmp_path / "good.wav", 0.5 * unit_noise(2, 8000), 16000),
        "text": tmp_path / "notes.wav",
        "empty": tmp_path / "empty.wav",
        "nan": tmp_path / "nan.wav",
    }
    files["text"].write_text("this is not audio\n")
    files["empty"].write_bytes(b"")
    nan = 0.5 * unit_noise(1, 1000)
    nan[0, 500] = np.nan
    sf.write(files["nan"], nan.T, 16000, subtype="FLOAT")
    return files


BAD_CASES = [
    # (input key, extra args, exit code, message fragment)
    ("good", ["-c", "hihgpass.yaml"], 2, "chain file not found: hihgpass.yaml"),
    ("good", ["-c", "vocla"], 2, "did you mean 'vocal'"),
    ("good", ["-c", "@nyquist"], 2, "good.wav (16000 Hz): "),
    (
        "good",
        ["-c", "@channels"],
        2,
        "channels.yaml:2:16: stage 1 'channels': key 'map': channel index 3 does not exist",
    ),
    pytest.param(
        "good",
        ["-c", "vocal", "--device", "cuda"],
        2,
        "CUDA is not available",
        marks=pytest.mark.skipif(
            torch.cuda.is_available(), reason="CUDA is available here (tests/test_gpu.py)"
        ),
        id="CUDA is not available",
    ),
    ("good", ["-c", "vocal", "--device", "gpu"], 2, "unknown device 'gpu'"),
    ("good", ["-c", "vocal", "--precision", "float16"], 2, "unknown precision"),
    ("good", ["-c", "vocal", "--chunk-seconds", "0"], 2, "--chunk-seconds must be > 0"),
    ("good", ["-c", "vocal", "--out", "out.xyz"], 2, "unknown output extension '.xyz'"),
    (
        "good",
        ["-c", "vocal", "--out", "out.flac", "--subtype", "FLOAT"],
        2,
        "FLAC cannot hold subtype FLOAT",
    ),
    ("good", ["-c", "vocal", "--out", "missing_dir/out.wav"], 2, "does not exist"),
    ("good", ["-c", "vocal", "--no-out"], 2, "give an output: -o OUT for one file"),
    ("missing", ["-c", "vocal"], 2, "missing.wav: no such file"),
    ("text", ["-c", "vocal"], 1, "notes.wav: cannot read audio"),
    ("empty", ["-c", "vocal"], 1, "empty.wav: cannot read audio"),
    ("nan", ["-c", "vocal"], 1, "nan.wav: input holds NaN or Inf samples (first at frame 500)"),
]


@pytest.mark.parametrize(
    "key,extra,code,fragment",
    BAD_CASES,
    ids=[c.id if hasattr(c, "id") else c[3][:28] for c in BAD_CASES],
)
def test_bad_inputs(tmp_path, runner, key, extra, code, fragment):
    files = bad_case_files(tmp_path)
    (tmp_path / "nyquist.yaml").write_text("stages:\n  - lowpass: {cutoff_hz: 9000}\n")
    src = files.get(key, tmp_path / f"{key}.wav")
    hashes = {p: file_hash(p) for p in tmp_path.iterdir() if p.is_file()}
    (tmp_path / "channels.yaml").write_text("stages:\n  - channels: {map: [0, 3]}\n")
    extra = [str(tmp_path / a[1:]) + ".yaml" if a.startswith("@") else a for a in extra]
    out = tmp_path / "out.wav"
    if "--out" in extra:
        i = extra.index("--out")
        out = tmp_path / extra[i + 1]
        extra = [*extra[:i], *extra[i + 2 :]]
    args = ["process", str(src), *extra]
    if "--no-out" in extra:
        args.remove("--no-out")
    else:
        args += ["-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiofx: error: "), result.stderr
    assert fragment in lines[0]
    assert not out.exists()
    assert {p: file_hash(p) for p in hashes} == hashes
    assert not [p for p in tmp_path.iterdir() if "audiofx-tmp" in p.name]


def test_refuses_existing_output_and_input_as_output(tmp_path, runner):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(1, 4000), 16000)
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    result = runner.invoke(app, ["process", str(src), "-c", "vocal", "-o", str(out)])
    assert result.exit_code == 2 and "exists (use --overwrite" in result.stderr
    assert out.read_bytes() == b"keep me"
    result = runner.invoke(app, ["process", str(src), "-c", "vocal", "-o", str(out), "--overwrite"])
    assert result.exit_code == 0 and sf.info(out).frames == 4000
    before = file_hash(src)
    for target in (src, tmp_path / "." / "in.wav"):
        result = runner.invoke(
            app, ["process", str(src), "-c", "vocal", "-o", str(target), "--overwrite"]
        )
        assert result.exit_code == 2 and "output is the input" in result.stderr
    os.symlink(src, tmp_path / "link.wav")
    result = runner.invoke(
        app, ["process", str(src), "-c", "vocal", "-o", str(tmp_path / "link.wav"), "--overwrite"]
    )
    assert result.exit_code == 2 and "output is the input" in result.stderr
    assert file_hash(src) == before


def test_real_exit_codes_and_debug_traceback(tmp_path, speech_file):
    ok = run_cli("process", str(speech_file), "-c", "telephone", "-o", str(tmp_path / "t.flac"))
    assert ok.returncode == 0, ok.stderr
    assert sf.info(tmp_path / "t.flac").subtype == "PCM_16"
    bad = run_cli("process", str(speech_file), "-c", "nope", "-o", str(tmp_path / "x.wav"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    debug = run_cli(
        "process", str(speech_file), "-c", "nope", "-o", str(tmp_path / "x.wav"), "--debug"
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_ctrl_c_leaves_no_partial_output(tmp_path):
    src = write_audio(tmp_path / "long.wav", 0.5 * unit_noise(2, 44100 * 60, seed=2), 44100)
    before = file_hash(src)
    out = tmp_path / "out.wav"
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [
            *CLI,
            "process",
            str(src),
            "-c",
            "podcast-eq",
            "-o",
            str(out),
            "--chunk-seconds",
            "0.005",  # many small chunks: the processing pass takes seconds
            "--json",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*.audiofx-tmp")):
        time.sleep(0.01)
    assert list(tmp_path.glob("*.audiofx-tmp")), "processing never started writing"
    proc.send_signal(signal.SIGINT)  # while the temporary output is being written
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not out.exists()
    assert not list(tmp_path.glob("*.audiofx-tmp"))
    assert file_hash(src) == before
    doc = json.loads(report.read_text())  # written also after Ctrl-C, as a batch's is
    assert doc["summary"]["interrupted"] is True and doc["files"] == []


def tiny_then_loud(path: Path) -> Path:
    """2 s at 1e-36 of full scale, then 1 s at half scale (float WAV, 16 kHz)."""
    x = unit_noise(1, 48000, seed=9)
    x[:, :32000] *= 1e-36
    x[:, 32000:] *= 0.5
    return write_audio(path, x, 16000, "FLOAT")


@pytest.mark.parametrize("fuse,frame", [("--no-fuse", 32000), ("--fuse", 0)])
def test_chain_overflow_fails_the_file_and_writes_nothing(tmp_path, runner, fuse, frame):
    """NaN / Inf made by the chain, not found in the input: four +200 dB gains (1e40) overflow
    float32. Unfused, the quiet first 2 s come out finite (1e4) and are written to the temporary
    file before the loud part overflows; fused, the folded gain is already infinite in float32.
    Either way: exit 1, one line naming the file and the frame, nothing written, the input
    untouched, and the --json report says why."""
    src = tiny_then_loud(tmp_path / "in.wav")
    before = file_hash(src)
    chain = tmp_path / "boost.yaml"
    chain.write_text("stages:\n" + "  - gain: {gain_db: 200}\n" * 4)
    out, report = tmp_path / "out.wav", tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["process", str(src), "-c", str(chain), "-o", str(out), fuse, "--chunk-seconds", "0.1",
         "--json", str(report)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    message = (
        f"audiofx: error: {src}: the chain produced NaN or Inf samples (near output frame "
        f"{frame}); nothing was written"
    )
    assert result.stderr.strip().splitlines() == [message]
    assert not out.exists() and not list(tmp_path.glob("*audiofx-tmp*"))
    assert file_hash(src) == before
    entry = json.loads(report.read_text())["files"][0]
    assert entry["status"] == "failed" and "produced NaN or Inf" in entry["error"]


def test_help_stages_validate_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audiofx_cli.cli.main import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['stages'], ['stages', 'highpass'], ['process', '--help'],\n"
        "             ['validate', 'vocal', '--sample-rate', '48000']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        "print('torch' in sys.modules, 'scipy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_a_write_error_behind_the_engine_stops_the_run_and_leaves_nothing(tmp_path, monkeypatch):
    """Blocks are written by a background thread: its error must still stop processing, be
    reported, and leave neither the output nor the temporary file (input untouched)."""
    from audiofx_cli.api import process_file
    from audiofx_cli.errors import AudioWriteError
    from audiofx_cli.io.audio import AtomicAudioWriter

    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, 44100 * 5, seed=4), 44100)
    before = file_hash(src)
    real_write = AtomicAudioWriter.write
    calls = []

    def failing_write(self, block):  # the third block hits a full disk
        calls.append(block.shape)
        if len(calls) == 3:
            raise AudioWriteError(f"{self.path}: write failed: No space left on device")
        real_write(self, block)

    monkeypatch.setattr(AtomicAudioWriter, "write", failing_write)
    out = tmp_path / "out.wav"
    with pytest.raises(AudioWriteError, match="No space left"):
        process_file(src, out, "vocal", device="cpu", chunk_seconds=0.5)
    assert len(calls) == 3  # the failure stopped the engine: no block was written after it
    assert not out.exists() and not list(tmp_path.glob("*.audiofx-tmp"))
    assert file_hash(src) == before
    monkeypatch.setattr(AtomicAudioWriter, "write", real_write)
    report = process_file(src, out, "vocal", device="cpu", chunk_seconds=0.5)
    assert report.frames == 44100 * 5 and sf.info(str(out)).frames == 44100 * 5
