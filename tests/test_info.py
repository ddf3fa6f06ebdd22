"""`audiofx info` and `audiofx_cli.analysis` against independent numpy computations on the whole
decoded file and pyloudnorm; the --json schema; unreadable files; no torch import."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy import signal

from audiofx_cli.analysis import analyze_file
from audiofx_cli.cli.main import app
from tests.conftest import ROOT, unit_noise

SCHEMA = {
    "path": str,
    "format": str,
    "subtype": str,
    "sample_rate": int,
    "channels": int,
    "frames": int,
    "duration_s": float,
    "peak_dbfs": float,
    "true_peak_dbtp": float,
    "rms_dbfs": float,
    "lufs": float,
    "dc_offset": list,
    "clipped_samples": int,
    "nonfinite_samples": int,
}


@pytest.fixture
def files(tmp_path):
    rate = 44100
    t = np.arange(3 * rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.01
    right = 0.3 * unit_noise(1, t.size, seed=1)[0] - 0.02
    pcm = np.stack([left, right], axis=1)
    pcm[1000:1010, 0] = 1.0  # 10 samples at full scale: written as code 32767
    pcm[2000:2003, 1] = -1.0  # 3 at code -32768
    sf.write(tmp_path / "pcm16.wav", pcm, rate, subtype="PCM_16")
    flt = 0.2 * unit_noise(1, 2 * 48000, seed=2)[0]
    flt[100:105] = 1.5  # beyond full scale
    flt[200] = -1.0
    flt[300:302] = np.nan
    flt[400] = np.inf
    sf.write(tmp_path / "float.wav", flt, 48000, subtype="FLOAT")
    sf.write(tmp_path / "pcm24.flac", 0.1 * unit_noise(2, 32000 * 2, seed=3).T, 32000,
             subtype="PCM_24")  # fmt: skip
    (tmp_path / "bad.wav").write_text("not audio")
    return tmp_path


def reference(path):
    """Independent numbers from the whole decoded file."""
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    nonfinite = int(np.count_nonzero(~np.isfinite(data)))
    data = np.where(np.isfinite(data), data, 0.0)
    info = sf.info(path)
    if info.subtype.startswith("PCM_"):
        bits = int(info.subtype[4:])
        codes = np.rint(data * 2 ** (bits - 1))
        clipped = int(
            np.count_nonzero((codes == 2 ** (bits - 1) - 1) | (codes == -(2 ** (bits - 1))))
        )
    else:
        clipped = int(np.count_nonzero(np.abs(data) >= 1.0))
    oversampled = signal.resample_poly(data, 16, 1, axis=0)  # Kaiser-windowed sinc
    return {
        "peak_dbfs": 20 * np.log10(np.abs(data).max()),
        "true_peak_dbtp": 20 * np.log10(np.abs(oversampled).max()),
        "rms_dbfs": 10 * np.log10(np.mean(data**2)),
        "lufs": pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(data),
        "dc_offset": list(data.mean(axis=0)),
        "clipped_samples": clipped,
        "nonfinite_samples": nonfinite,
        "frames": data.shape[0],
        "sample_rate": rate,
        "channels": data.shape[1],
    }


@pytest.mark.parametrize("name", ["pcm16.wav", "float.wav", "pcm24.flac"])
def test_analysis_matches_independent_computation(files, name):
    got = analyze_file(files / name, block_frames=10_000)
    want = reference(files / name)
    assert got.peak_dbfs == pytest.approx(want["peak_dbfs"], abs=1e-9)
    assert got.rms_dbfs == pytest.approx(want["rms_dbfs"], abs=1e-9)
    assert got.lufs == pytest.approx(want["lufs"], abs=0.1)
    np.testing.assert_allclose(got.dc_offset, want["dc_offset"], atol=1e-12)
    for key in ("clipped_samples", "nonfinite_samples", "frames", "sample_rate", "channels"):
        assert getattr(got, key) == want[key], key
    # BS.1770-4 Annex 2 (4x polyphase) against 16x scipy oversampling, as tests/test_loudness.py
    assert got.true_peak_dbtp == pytest.approx(want["true_peak_dbtp"], abs=0.3)
    assert got.true_peak_dbtp >= got.peak_dbfs - 1e-9
    # the block size does not matter
    other = analyze_file(files / name, block_frames=777)
    assert other.lufs == pytest.approx(got.lufs, abs=1e-9)
    assert other.true_peak_dbtp == pytest.approx(got.true_peak_dbtp, abs=1e-12)


def test_known_counts(files):
    assert analyze_file(files / "pcm16.wav").clipped_samples == 13
    flt = analyze_file(files / "float.wav")
    assert (flt.clipped_samples, flt.nonfinite_samples) == (6, 3)


def test_speech_example_against_pyloudnorm(speech_file):
    data, rate = sf.read(speech_file, dtype="float64")
    got = analyze_file(speech_file)
    assert got.lufs == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(data), abs=0.1)
    assert got.duration_s == pytest.approx(data.size / rate)


def test_json_output_schema_and_errors(files, runner):
    paths = [str(files / n) for n in ("pcm16.wav", "bad.wav", "float.wav", "missing.wav")]
    result = runner.invoke(app, ["info", *paths, "--json"])
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("audiofx: error: ") for e in errors)
    assert "bad.wav: cannot read audio" in errors[0] and "missing.wav: no such file" in errors[1]
    records = json.loads(result.stdout)  # stdout holds the JSON only
    assert [r["path"] for r in records] == paths
    assert "error" in records[1] and "error" in records[3]
    for record in (records[0], records[2]):
        assert set(record) == set(SCHEMA)
        for key, kind in SCHEMA.items():
            assert isinstance(record[key], kind), key
    assert records[0]["clipped_samples"] == 13 and records[2]["nonfinite_samples"] == 3


def test_json_silence_levels_are_null(tmp_path, runner):
    sf.write(tmp_path / "silence.wav", np.zeros(48000), 48000, subtype="PCM_16")
    result = runner.invoke(app, ["info", str(tmp_path / "silence.wav"), "--json"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)[0]
    assert record["peak_dbfs"] is None and record["lufs"] is None and record["rms_dbfs"] is None


def test_table_output(files, runner):
    result = runner.invoke(app, ["info", str(files / "pcm16.wav"), str(files / "pcm24.flac")])
    assert result.exit_code == 0, result.output
    want = reference(files / "pcm16.wav")
    for text in ("pcm16.wav", "pcm24.flac", "WAV PCM_16", "FLAC PCM_24", "44100 Hz",
                 f"{want['lufs']:.2f} LUFS", "integrated loudness", "clipped samples"):  # fmt: skip
        assert text in result.stdout, text
    assert not math.isnan(analyze_file(files / "pcm24.flac").lufs)


def test_info_does_not_import_torch(files):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audiofx_cli.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['info', {str(files / 'pcm16.wav')!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.split() == ["False"]
