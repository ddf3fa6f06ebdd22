"""Delivery presets measured against their specs: each processes real speech (the shipped
example, and a 44.1 kHz stereo copy of it) through `audiofx process`, and `audiofx info --json`
reads the written file: integrated loudness, true peak, sample peak, RMS, DC, rate, channels.
The clean-up preset is checked on what it must remove (hum and rumble in the pauses, DC) and
keep (the voice band)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audiofx_cli.cli.main import app
from tests.conftest import ROOT

SPEECH = ROOT / "examples" / "speech.wav"
PAUSE_S = (4.85, 5.2)  # no speech in examples/speech.wav: hum, rumble and DC only


@pytest.fixture(scope="module")
def stereo_44k(tmp_path_factory) -> Path:
    """The example at 44.1 kHz, stereo (the right channel 3 dB lower and 1 ms later)."""
    x, rate = sf.read(SPEECH, dtype="float64")
    y = signal.resample_poly(x, 2, 1)  # 22.05 -> 44.1 kHz
    path = tmp_path_factory.mktemp("presets") / "speech44.wav"
    sf.write(path, np.stack([y, 0.7 * np.roll(y, 44)], axis=1), 44100, subtype="PCM_16")
    return path


def process_and_measure(runner, source: Path, preset: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{source.stem}_{preset}.wav"
    result = runner.invoke(app, ["process", str(source), "-c", preset, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    return json.loads(info.stdout)[0]


TRUE_PEAK_SLACK_DB = 0.005  # 16-bit output with TPDF dither: at most 2 LSB on a -1 dB peak


@pytest.mark.parametrize("source", ["mono", "stereo"])
def test_podcast_minus_16_lufs_and_true_peak_below_minus_1(runner, tmp_path, stereo_44k, source):
    m = process_and_measure(runner, SPEECH if source == "mono" else stereo_44k, "podcast", tmp_path)
    assert m["lufs"] == pytest.approx(-16.0, abs=1.0)  # Apple Podcasts: -16 LKFS +-1 dB
    assert m["true_peak_dbtp"] <= -1.0 + TRUE_PEAK_SLACK_DB
    assert max(abs(d) for d in m["dc_offset"]) < 1e-4


@pytest.mark.parametrize("source", ["mono", "stereo"])
def test_broadcast_r128(runner, tmp_path, stereo_44k, source):
    m = process_and_measure(runner, SPEECH if source == "mono" else stereo_44k, "broadcast",
                            tmp_path)  # fmt: skip
    assert m["lufs"] == pytest.approx(-23.0, abs=0.2)  # R 128: -23 LUFS +-0.5 LU
    assert m["true_peak_dbtp"] <= -1.0 + TRUE_PEAK_SLACK_DB


@pytest.mark.parametrize("source", ["mono", "stereo"])
def test_audiobook_acx(runner, tmp_path, stereo_44k, source):
    m = process_and_measure(runner, SPEECH if source == "mono" else stereo_44k, "audiobook",
                            tmp_path)  # fmt: skip
    assert -23.0 <= m["rms_dbfs"] <= -18.0
    assert m["peak_dbfs"] <= -3.0


def test_speech_ml_mono_16k_dc_free_high_passed_at_minus_20_rms(runner, tmp_path, stereo_44k):
    x, rate = sf.read(stereo_44k, dtype="float64")
    t = np.arange(len(x)) / rate
    x = x + 0.05 * np.sin(2 * np.pi * 20 * t)[:, None] + 0.02  # rumble and DC on top
    source = tmp_path / "rumbly.wav"
    sf.write(source, x, rate, subtype="FLOAT")
    m = process_and_measure(runner, source, "speech-ml", tmp_path)
    assert (m["sample_rate"], m["channels"]) == (16000, 1)
    assert m["rms_dbfs"] == pytest.approx(-20.0, abs=0.5)
    assert m["peak_dbfs"] <= -1.0
    assert abs(m["dc_offset"][0]) < 1e-4
    # the 20 Hz rumble, relative to the voice band, at least 15 dB down (2nd-order high-pass
    # at 60 Hz: 19 dB at 20 Hz)
    y, out_rate = sf.read(tmp_path / "rumbly_speech-ml.wav", dtype="float64")
    mono = x.mean(axis=1)
    before = _tone_db(mono, rate, 20) - _band_db(mono, rate, 300, 3000, (0.2, 4.8))
    after = _tone_db(y, out_rate, 20) - _band_db(y, out_rate, 300, 3000, (0.2, 4.8))
    assert after < before - 15


def _tone_db(x: np.ndarray, rate: int, freq_hz: float) -> float:
    """Level (dB) of the x's component at freq_hz (least-squares fit of a sine and cosine)."""
    t = np.arange(len(x)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)], 1)
    coef = np.linalg.lstsq(basis, x, rcond=None)[0]
    return 20 * np.log10(np.hypot(*coef))


def _band_db(x: np.ndarray, rate: int, low_hz: float, high_hz: float, span_s) -> float:
    sos = signal.butter(4, [low_hz, high_hz], "bandpass", fs=rate, output="sos")
    y = signal.sosfilt(sos, x)[int(span_s[0] * rate) : int(span_s[1] * rate)]
    return 10 * np.log10(np.mean(y**2))


def test_cleanup_removes_hum_rumble_and_dc_and_keeps_the_voice(runner, tmp_path):
    out = tmp_path / "clean.wav"
    result = runner.invoke(app, ["process", str(SPEECH), "-c", "cleanup", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    x, rate = sf.read(SPEECH, dtype="float64")
    y, _ = sf.read(out, dtype="float64")
    # the pauses: hum (50 Hz and 150 Hz) and rumble below 200 Hz at least 20 dB down
    assert _band_db(y, rate, 40, 200, PAUSE_S) < _band_db(x, rate, 40, 200, PAUSE_S) - 20
    for hum_hz in (50, 150):
        assert _tone_db(y, rate, hum_hz) < _tone_db(x, rate, hum_hz) - 30
    assert abs(y.mean()) < 1e-4 < abs(x.mean())
    # the voice band is kept within 0.5 dB
    speech = (0.2, 4.8)
    assert _band_db(y, rate, 300, 4000, speech) == pytest.approx(
        _band_db(x, rate, 300, 4000, speech), abs=0.5
    )
