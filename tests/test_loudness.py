"""BS.1770-4 loudness and true peak (`audiofx_cli.dsp.loudness`) against independent references:
the published 48 kHz K-weighting coefficients, pyloudnorm (dev extra), EBU Tech 3341 style test
signals with known answers, and scipy polyphase oversampling for the true peak."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy import signal

from audiofx_cli.dsp import level as dsp_level
from audiofx_cli.dsp import loudness
from audiofx_cli.dsp.loudness import (
    LoudnessMeter,
    TruePeakMeter,
    integrated_loudness,
    k_weighting_sos,
    true_peak,
)
from tests.conftest import ROOT

LU_TOLERANCE = 0.1  # the bound against an independent BS.1770 implementation


def sine(freq_hz: float, level_dbfs: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq_hz * t)


def music_like(rate: int, seconds: float, channels: int, seed: int) -> np.ndarray:
    """Chords of harmonic tones with decaying envelopes plus a little noise, per channel."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros((channels, n))
    for c in range(channels):
        for start in np.arange(0, seconds, 0.5):
            f0 = rng.choice([110, 147, 196, 220, 262, 330, 392])
            env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(2, 6)), 0.0)
            for h in range(1, 8):
                phase = rng.uniform(0, 2 * np.pi)
                out[c] += env * np.sin(2 * np.pi * f0 * h * t + phase) / h**1.3
        out[c] += 0.01 * rng.standard_normal(n)
    return 0.3 * out / np.max(np.abs(out))


def pyloudnorm_lufs(x: np.ndarray, rate: int, exact_filters: bool = True) -> float:
    """pyloudnorm's integrated loudness of a (channels, time) signal. With exact_filters the
    meter uses its 'DeMan' K-weighting (the BS.1770 filters at any rate); otherwise its default
    RBJ-cookbook approximation of them."""
    meter = pyloudnorm.Meter(rate, filter_class="DeMan" if exact_filters else "K-weighting")
    return float(meter.integrated_loudness(x.T))


def speech() -> tuple[np.ndarray, int]:
    data, rate = sf.read(ROOT / "examples" / "speech.wav", dtype="float64", always_2d=True)
    return data.T, rate


def test_k_weighting_equals_bs1770_tables_at_48k():
    # ITU-R BS.1770-4 Table 1 (pre-filter) and Table 2 (RLB high-pass), 48 kHz
    table = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1, -1.69065929318241,
             0.73248077421585],
            [1.0, -2.0, 1.0, 1, -1.99004745483398, 0.99007225036621],
        ]
    )  # fmt: skip
    np.testing.assert_allclose(k_weighting_sos(48000), table, atol=1e-10)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 96000, 192000])
def test_k_weighting_response_at_any_rate(rate):
    """The filter is the same analog response at every rate: compare the magnitude with the
    48 kHz table design up to rate / 16 (the bilinear transform warps the shelf above)."""
    ref_sos = k_weighting_sos(48000)
    freqs = np.array([f for f in (20, 30, 50, 100, 200, 500, 1000, 2000, 3000) if f <= rate / 16])
    _, ref = signal.sosfreqz(ref_sos, worN=freqs, fs=48000)
    _, got = signal.sosfreqz(k_weighting_sos(rate), worN=freqs, fs=rate)
    err_db = np.abs(20 * np.log10(np.abs(got) / np.abs(ref)))
    assert err_db.max() < 0.05, err_db


def _signals():
    x_speech, rate_speech = speech()
    rng = np.random.default_rng(7)
    stereo_speech = signal.resample_poly(x_speech, 2, 1, axis=-1)  # 44.1 kHz
    stereo_speech = np.stack([stereo_speech[0], 0.5 * stereo_speech[0]])
    noise = rng.standard_normal((2, 48000 * 4)) * 0.05
    noise[:, 48000:96000] *= 0.02  # a quiet second: exercises the relative gate
    return {
        "speech_22k_mono": (x_speech, rate_speech),
        "speech_44k_stereo": (stereo_speech, 44100),
        "noise_48k_stereo": (noise, 48000),
        "music_44k_stereo": (music_like(44100, 5, 2, seed=1), 44100),
        "music_48k_mono": (music_like(48000, 4, 1, seed=2), 48000),
        "music_32k_stereo": (music_like(32000, 4, 2, seed=3), 32000),
        "music_96k_stereo": (music_like(96000, 3, 2, seed=6), 96000),
        "noise_96k_5ch": (rng.standard_normal((5, 96000 * 3)) * [[0.1], [0.1], [0.05], [0.02],
                                                                   [0.03]], 96000),
    }  # fmt: skip


SIGNALS = _signals()


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_integrated_loudness_matches_pyloudnorm(name):
    x, rate = SIGNALS[name]
    got = integrated_loudness(x, rate)
    want = pyloudnorm_lufs(x, rate)
    assert abs(got - want) <= LU_TOLERANCE, (got, want)
    if rate >= 44100:  # pyloudnorm's default approximate K filters are close there too
        assert abs(got - pyloudnorm_lufs(x, rate, exact_filters=False)) <= LU_TOLERANCE


@pytest.mark.parametrize("name", ["music_32k_stereo", "music_96k_stereo"])
def test_loudness_is_rate_independent(name):
    """Against pyloudnorm at 48 kHz on the signal resampled to 48 kHz (scipy resample_poly):
    the K-weighting has the same analog response at every rate. (Below 32 kHz the bilinear
    transform compresses the shelf's transition: speech.wav at 22.05 kHz reads 0.09 LU below
    its 48 kHz resampled copy.)"""
    x, rate = SIGNALS[name]
    ratio = Fraction(48000, rate)
    at_48k = signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    assert abs(integrated_loudness(x, rate) - pyloudnorm_lufs(at_48k, 48000)) <= LU_TOLERANCE


@pytest.mark.parametrize("seconds", [1.0, 2.05, 3.33])
def test_block_edges_match_pyloudnorm(seconds):
    """Lengths that are not a whole number of 100 ms hops."""
    x = music_like(44100, seconds, 2, seed=int(seconds * 100))
    assert abs(integrated_loudness(x, 44100) - pyloudnorm_lufs(x, 44100)) <= LU_TOLERANCE


def test_1khz_sine_at_minus_23_dbfs_per_channel_reads_minus_23_lufs():
    tone = sine(1000, -23, 20, 48000)
    assert integrated_loudness(np.stack([tone, tone]), 48000) == pytest.approx(-23.0, abs=0.1)
    # one channel alone is 3 dB lower (power sum over channels)
    assert integrated_loudness(tone[None], 48000) == pytest.approx(-26.0, abs=0.1)


def _segments(parts, rate=48000):
    """Concatenate (level_dbfs, seconds) 1 kHz segments, same on both channels."""
    tone = np.concatenate([sine(1000, level, seconds, rate) for level, seconds in parts])
    return np.stack([tone, tone])


# EBU Tech 3341 (2016) minimum requirements, cases 1-5 (stereo, 1 kHz sine, 48 kHz): each
# must read the stated integrated loudness within +-0.1 LU.
TECH_3341 = {
    "case1": ([(-23, 20)], -23.0),
    "case2": ([(-33, 20)], -33.0),
    "case3": ([(-36, 10), (-23, 60), (-36, 10)], -23.0),
    "case4": ([(-72, 10), (-36, 10), (-23, 20), (-36, 10), (-72, 10)], -23.0),
    "case5": ([(-26, 20), (-20, 20.1), (-26, 20)], -23.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3341))
def test_ebu_tech_3341_cases(case):
    parts, expected = TECH_3341[case]
    assert integrated_loudness(_segments(parts), 48000) == pytest.approx(expected, abs=0.1)


def test_ebu_tech_3341_case6_five_channels():
    """5.0 channels L R C Ls Rs at -28, -28, -24, -30, -30 dBFS give -23 LUFS (surround
    channels weighted 1.41)."""
    levels = [-28, -28, -24, -30, -30]
    x = np.stack([sine(1000, level, 20, 48000) for level in levels])
    assert integrated_loudness(x, 48000) == pytest.approx(-23.0, abs=0.1)
    assert list(loudness.channel_weights(6)) == [1, 1, 1, 0, 1.41, 1.41]  # 5.1, LFE skipped


def test_streaming_equals_whole_for_any_block_size():
    x, rate = SIGNALS["music_44k_stereo"]
    whole = integrated_loudness(x, rate)
    for size in (97, 441, 4409, 4410, 100_000):
        meter = LoudnessMeter(rate, 2)
        for start in range(0, x.shape[-1], size):
            meter.update(x[None, :, start : start + size])
            if size == 441:
                meter.update(x[None, :, :0])  # empty blocks are fine
        assert meter.integrated()[0] == pytest.approx(whole, abs=1e-9)


def test_fractional_hop_rate():
    """11025 Hz: 100 ms is 1102.5 samples; segments alternate 1102 / 1103 samples. Against
    pyloudnorm at 48 kHz on the resampled signal (at 11025 Hz pyloudnorm's own K filters keep
    libebur128's rate-dependent +0.14 dB high-pass gain)."""
    x = music_like(11025, 4, 1, seed=9)
    at_48k = signal.resample_poly(x, 640, 147, axis=-1)
    assert abs(integrated_loudness(x, 11025) - pyloudnorm_lufs(at_48k, 48000)) <= LU_TOLERANCE


def test_batch_items_are_independent():
    a, b = music_like(48000, 2, 2, seed=4), 0.1 * music_like(48000, 2, 2, seed=5)
    meter = LoudnessMeter(48000, 2, batch=2)
    meter.update(np.stack([a, b]))
    got = meter.integrated()
    assert got[0] == pytest.approx(integrated_loudness(a, 48000), abs=1e-9)
    assert got[1] == pytest.approx(integrated_loudness(b, 48000), abs=1e-9)


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((2, 48000)),  # digital silence
        1e-5 * np.random.default_rng(0).standard_normal((2, 48000)),  # -100 dBFS: all gated
        0.5 * np.ones((2, 1000)),  # shorter than one 400 ms block
        np.zeros((2, 0)),  # empty
    ],
    ids=["silence", "below-absolute-gate", "too-short", "empty"],
)
def test_unmeasurable_loudness_is_minus_inf_without_warnings(x):
    assert integrated_loudness(x, 48000) == -math.inf


def test_true_peak_of_intersample_peak_sine():
    """fs/4 sine with 45 degree phase: samples at 0.707 of the true peak (-3.01 dB), while the
    true peak is the sine's amplitude (0 dB). Annex 2 allows some overshoot; within 0.2 dB."""
    t = np.arange(4800)
    x = np.sin(2 * np.pi * t / 4 + np.pi / 4)
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert 20 * np.log10(true_peak(x[None])) == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("name", ["speech_22k_mono", "music_48k_mono", "noise_48k_stereo"])
def test_true_peak_against_scipy_oversampling(name):
    """Against 16x oversampling with scipy.signal.resample_poly (Kaiser windowed sinc)."""
    x, _ = SIGNALS[name]
    reference = np.abs(signal.resample_poly(x, 16, 1, axis=-1)).max()
    got = true_peak(x)
    assert abs(20 * np.log10(got / reference)) < 0.3
    meter = TruePeakMeter(x.shape[0])
    for start in range(0, x.shape[-1], 1000):  # streaming: the same value
        meter.update(x[None, :, start : start + 1000])
    assert meter.peak()[0] == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("module", [loudness, dsp_level])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
