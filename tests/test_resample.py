"""`resample` against independent references, exact lengths, streaming, and the chain rules.

References and thresholds (float64 processing, 10 % trimmed at each end to leave out the
start/end transients of the references):
- analytic: sums of sines resampled exactly (sin at the new sample times). SNR over the whole
  passband of each quality: low > 55 dB, medium > 75 dB, high > 95 dB, very_high > 120 dB.
- scipy.signal.resample_poly with window ('kaiser', 10) on noise band-limited to 0.6 of the
  lower Nyquist (that reference's flat band): SNR > 90 dB for 'high'. Against resample_poly's
  default Kaiser 5 window the SNR is ~61 dB, the error of that reference's own filter.
- SoX `rate -h` (its passband is 95 %): SNR > 75 dB.
- aliasing: a tone above the new Nyquist (48 k -> 16 k) comes out below -(stopband - 1) dB.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.cli.main import app
from audiofx_cli.dsp.resample import QUALITIES
from audiofx_cli.errors import ChainSpecError
from tests.conftest import needs_sox, unit_noise, write_audio

PAIRS = [(44100, 48000), (48000, 16000), (16000, 44100)]
SINE_SNR_DB = {"low": 55.0, "medium": 75.0, "high": 95.0, "very_high": 120.0}


def resample(x: np.ndarray, src: int, dst: int, quality: str = "high") -> np.ndarray:
    chain = load_chain(
        [{"resample": {"rate_hz": dst, "quality": quality}}], src, dtype=torch.float64
    )
    return chain(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def snr_db(got: np.ndarray, ref: np.ndarray) -> float:
    m = ref.shape[-1]
    inner = slice(m // 10, m - m // 10)
    err = got[..., inner] - ref[..., inner]
    return 10 * math.log10(np.sum(ref[..., inner] ** 2) / np.sum(err**2))


def sines(freqs: list[float], rate: int, n: int) -> np.ndarray:
    t = np.arange(n) / rate
    return sum(0.2 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs))[None]


@pytest.mark.parametrize("src,dst", PAIRS)
@pytest.mark.parametrize("quality", list(QUALITIES))
def test_against_analytic_sines_over_the_passband(src, dst, quality):
    edge = QUALITIES[quality].passband * min(src, dst) / 2
    freqs = [0.02 * edge, 0.3 * edge, 0.71 * edge, 0.97 * edge]
    x = sines(freqs, src, src // 2)
    y = resample(x, src, dst, quality)
    assert y.shape[-1] == math.ceil(x.shape[-1] * dst / src)
    ideal = sines(freqs, dst, y.shape[-1])
    assert snr_db(y, ideal) > SINE_SNR_DB[quality]


@pytest.mark.parametrize("src,dst", PAIRS)
def test_against_resample_poly(src, dst):
    g = math.gcd(src, dst)
    up, down = dst // g, src // g
    x = np.random.default_rng(1).standard_normal((2, src))
    sos = signal.ellip(12, 0.01, 140, 0.3 * min(src, dst), fs=src, output="sos")
    x = signal.sosfiltfilt(sos, x, axis=-1)
    ref = signal.resample_poly(x, up, down, axis=-1, window=("kaiser", 10.0))
    y = resample(x, src, dst, "high")
    assert y.shape == ref.shape
    assert snr_db(y, ref) > 90.0
    default_ref = signal.resample_poly(x, up, down, axis=-1)
    assert snr_db(y, default_ref) > 55.0  # limited by resample_poly's default filter


@needs_sox
@pytest.mark.parametrize("src,dst", PAIRS)
def test_against_sox_rate(tmp_path, src, dst):
    edge = 0.9 * min(src, dst) / 2
    x = sines([0.05 * edge, 0.4 * edge, 0.8 * edge, 0.98 * edge], src, src // 2)
    sf.write(tmp_path / "in.wav", x.T, src, subtype="DOUBLE")
    out = tmp_path / "out.wav"
    cmd = ["sox", "-V1", str(tmp_path / "in.wav"), "-e", "floating-point", "-b", "64", str(out)]
    subprocess.run([*cmd, "rate", "-h", str(dst)], check=True)
    ref = sf.read(out, dtype="float64", always_2d=True)[0].T
    y = resample(x, src, dst, "high")
    assert y.shape == ref.shape
    assert snr_db(y, ref) > 75.0


@pytest.mark.parametrize("quality", list(QUALITIES))
def test_aliasing_is_attenuated_by_the_stopband(quality):
    src, dst = 48000, 16000
    n = 48000
    stop = QUALITIES[quality].stopband_db
    for freq in (8100.0, 9000.0, 12000.0, 20000.0):  # above the new Nyquist (8 kHz)
        x = np.sin(2 * np.pi * freq * np.arange(n) / src)[None]
        y = resample(x, src, dst, quality)
        level_db = 10 * math.log10(np.mean(y[:, 2000:-2000] ** 2) / np.mean(x**2))
        assert level_db < -(stop - 1.5), (freq, level_db)


@pytest.mark.parametrize("src,dst", [*PAIRS, (22050, 8000), (8000, 8000)])
def test_exact_length_and_chunked_equals_whole(src, dst):
    chain = load_chain([{"resample": {"rate_hz": dst}}], src, dtype=torch.float64)
    for n in (0, 1, 2, 5, 147, 160, 441, 1003):
        x = (
            torch.from_numpy(unit_noise(2, n, seed=n))
            if n
            else torch.zeros(2, 0, dtype=torch.float64)
        )
        whole = chain(x)
        assert whole.shape[-1] == math.ceil(n * dst / src) == chain[0].output_frames(n)
    x = torch.from_numpy(unit_noise(2, 3001, seed=9))
    whole = chain(x)
    for sizes in ([1] * 400 + [2601], [7, 0, 500, 2494], [3001]):
        state = chain.init_state(x, 3001)
        parts, start = [], 0
        for size in sizes:
            y, state = chain.step(x[..., start : start + size], state)
            parts.append(y)
            start += size
        tail = chain.flush(state)
        got = torch.cat(parts + ([tail] if tail is not None else []), dim=-1)
        assert got.shape == whole.shape
        assert float((got - whole).abs().max()) < 1e-12


def test_later_stages_are_checked_at_the_new_rate():
    stages = [{"resample": {"rate_hz": 8000}}, {"lowpass": {"cutoff_hz": 5000}}]
    with pytest.raises(ChainSpecError, match=r"Nyquist \(4000 Hz at 8000 Hz\)"):
        load_chain(stages, 44100)
    chain = load_chain([stages[0], {"lowpass": {"cutoff_hz": 3000}}], 44100)
    assert chain.output_rate == 8000.0 and chain[1].sample_rate == 8000.0


def test_non_integer_rates_are_rejected():
    with pytest.raises(ChainSpecError, match="expected an integer"):
        load_chain([{"resample": {"rate_hz": 16000.5}}], 44100)
    with pytest.raises(ChainSpecError, match="integer input rate"):
        load_chain([{"resample": {"rate_hz": 16000}}], 44100.5)
    with pytest.raises(ChainSpecError, match="ratio 44099/44100"):
        load_chain([{"resample": {"rate_hz": 44099}}], 44100)


def test_process_resample_mono_pad_end_to_end(tmp_path, runner):
    """`audiofx process` with resample + mono + pad: the file is written at the new rate, with
    one channel and ceil(n * 16000 / 44100) + padding frames, equal to the chain in memory."""
    n, rate = 44100 + 17, 44100
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, n, seed=4), rate, "FLOAT")
    chain_file = tmp_path / "chain.yaml"
    chain_file.write_text(
        "stages:\n"
        "  - resample: {rate_hz: 16000, quality: high}\n"
        "  - mono\n"
        "  - pad: {start_s: 0.25, end_s: 0.5}\n"
    )
    out = tmp_path / "out.wav"
    args = ["process", str(src), "-c", str(chain_file), "-o", str(out), "--chunk-seconds", "0.3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = sf.info(out)
    expected_frames = math.ceil(n * 16000 / 44100) + 4000 + 8000
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, expected_frames)
    decoded = sf.read(src, dtype="float64", always_2d=True)[0].T
    stages = [{"resample": {"rate_hz": 16000}}, "mono", {"pad": {"start_s": 0.25, "end_s": 0.5}}]
    ref = load_chain(stages, rate, dtype=torch.float64)(torch.from_numpy(decoded)).numpy()
    got = sf.read(out, dtype="float64", always_2d=True)[0].T
    assert np.max(np.abs(got - ref)) < 1e-5  # float32 processing, float WAV
