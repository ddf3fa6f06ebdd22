"""`normalize` (two passes) and `fade`: normalise then measure with independent code (numpy,
pyloudnorm, scipy oversampling); fade gains against the analytic curves."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch
from scipy import signal

from audiofx_cli import load_chain, process_file
from audiofx_cli.errors import UsageError
from audiofx_cli.stages.level import Fade, Normalize
from audiofx_cli.stream import run_analysis
from tests.conftest import ROOT, write_audio


def speech_stereo() -> tuple[np.ndarray, int]:
    data, rate = sf.read(ROOT / "examples" / "speech.wav", dtype="float64", always_2d=True)
    mono = data[:, 0]
    return np.stack([mono, 0.7 * np.roll(mono, 300)]), rate


def streamed(stage, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """What the engine does: the analysis pass over chunks, then step / flush over chunks."""
    chain = load_chain([], 48000)
    chain.append(stage)
    parts = list(x.split(chunk, dim=-1))
    run_analysis(chain, lambda: parts, x[..., :0], x.shape[-1])
    state = chain.init_state(x, x.shape[-1])
    outs = []
    for part in parts:
        y, state = chain.step(part, state)
        outs.append(y)
    return torch.cat(outs, dim=-1)


TARGETS = [("peak", -1.0), ("peak", -6.0), ("rms", -20.0), ("rms", -30.0), ("lufs", -23.0),
           ("lufs", -16.0)]  # fmt: skip


@pytest.mark.parametrize("mode,target", TARGETS)
def test_normalize_then_measure_hits_target(mode, target):
    x, rate = speech_stereo()
    stage = Normalize(rate, mode=mode, target_db=target)
    y = stage(torch.from_numpy(x)).numpy()
    if mode == "peak":
        measured = 20 * np.log10(np.abs(y).max())
    elif mode == "rms":
        measured = 20 * np.log10(np.sqrt(np.mean(y**2)))
    else:
        measured = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(y.T)
    assert measured == pytest.approx(target, abs=0.1 if mode == "lufs" else 1e-6)
    # the gain is the same whether the stream comes whole or in chunks
    chunked = streamed(Normalize(rate, mode=mode, target_db=target), torch.from_numpy(x), 1234)
    np.testing.assert_allclose(chunked.numpy(), y, atol=1e-9)


@pytest.mark.parametrize("mode,expected", [("peak", -1.0), ("rms", -20.0), ("lufs", -23.0)])
def test_default_targets_depend_on_mode(mode, expected):
    x, rate = speech_stereo()
    stage = Normalize(rate, mode=mode)
    stage(torch.from_numpy(x))
    assert stage.target_db == expected
    assert stage.measured_db[0] + stage.gain_db[0] == pytest.approx(expected, abs=1e-9)


def test_true_peak_limit_lowers_the_gain():
    """LUFS target -10 would push the true peak far above -1 dBTP: the gain is lowered so that
    the true peak (checked by 16x scipy oversampling, within the Annex 2 filter's accuracy)
    stays at the limit."""
    x, rate = speech_stereo()
    stage = Normalize(rate, mode="lufs", target_db=-10, true_peak_limit_db=-1.0)
    y = stage(torch.from_numpy(x)).numpy()
    oversampled_peak = 20 * np.log10(np.abs(signal.resample_poly(y, 16, 1, axis=-1)).max())
    assert oversampled_peak == pytest.approx(-1.0, abs=0.2)
    assert oversampled_peak < -0.8
    assert stage.gain_db[0] < -10 - stage.measured_db[0]  # lowered below the loudness gain
    # a limit that is not reached changes nothing
    free = Normalize(rate, mode="lufs", target_db=-30, true_peak_limit_db=-1.0)
    free(torch.from_numpy(x))
    assert free.gain_db[0] == pytest.approx(-30 - free.measured_db[0], abs=1e-12)


@pytest.mark.parametrize("mode", ["peak", "rms", "lufs"])
def test_silence_and_gated_input_get_no_gain_and_no_nan(mode):
    rate = 48000
    for x in (np.zeros((2, rate)), 1e-6 * np.random.default_rng(0).standard_normal((2, rate))):
        stage = Normalize(rate, mode=mode, true_peak_limit_db=-1.0)
        y = stage(torch.from_numpy(x)).numpy()
        assert np.all(np.isfinite(y))
        if mode == "lufs" or not x.any():
            assert stage.gain_db[0] == 0.0
            np.testing.assert_array_equal(y, x)
            continue
        # -120 dBFS noise: one gain of about +100 dB, up to the target or the true-peak limit
        np.testing.assert_allclose(y, x * 10 ** (stage.gain_db[0] / 20), rtol=1e-12)
        true_peak_db = 20 * np.log10(np.abs(signal.resample_poly(y, 16, 1, axis=-1)).max())
        assert true_peak_db < -1.0 + 0.2  # within the Annex 2 filter's accuracy
        level_db = (
            20 * np.log10(np.abs(y).max()) if mode == "peak" else 10 * np.log10(np.mean(y**2))
        )
        target_db = -1.0 if mode == "peak" else -20.0
        reached = level_db == pytest.approx(target_db, abs=1e-9)
        limited = level_db < target_db and true_peak_db == pytest.approx(-1.0, abs=0.2)
        assert reached or limited, (level_db, true_peak_db)


def test_batch_items_are_normalised_independently():
    x, rate = speech_stereo()
    batch = torch.from_numpy(np.stack([x, 0.1 * x]))
    y = Normalize(rate, mode="peak", target_db=-3)(batch).numpy()
    for item in y:
        assert 20 * np.log10(np.abs(item).max()) == pytest.approx(-3.0, abs=1e-9)


def test_normalize_through_process_file_sees_earlier_stages(tmp_path):
    """Engine two-pass run on a real file: the loudness after a gain stage is measured, so the
    output hits the target whatever the gain before it."""
    x, rate = speech_stereo()
    src = write_audio(tmp_path / "in.wav", 0.5 * x, rate, "FLOAT")
    out = tmp_path / "out.wav"
    chain = [{"gain": {"gain_db": -12}}, {"normalize": {"mode": "lufs", "target_db": -20}}]
    process_file(src, out, chain, device="cpu", chunk_seconds=0.37)
    y, _ = sf.read(out, always_2d=True)
    assert pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(y) == pytest.approx(
        -20.0, abs=0.1
    )


def analytic_fade(u: np.ndarray, shape: str) -> np.ndarray:
    """Independent definitions of the documented curves (u in [0, 1])."""
    if shape == "linear":
        return u
    if shape == "exponential":
        return np.exp(np.log(1e-5) * (1 - u))  # -100 dB at u = 0, linear in dB
    if shape == "logarithmic":
        with np.errstate(divide="ignore"):
            return np.clip(1 + 0.2 * np.log10(u), 0, 1)
    return np.sin(np.pi * u / 2) ** 2  # raised cosine (1 - cos(pi u)) / 2


@pytest.mark.parametrize("shape", ["linear", "exponential", "logarithmic", "cosine"])
def test_fade_curves_against_analytic_formulas(shape):
    rate, n = 1000, 5000
    fade = Fade(rate, in_s=1.0, out_s=2.0, shape=shape)
    y = fade(torch.ones(1, n, dtype=torch.float64)).numpy()[0]
    idx = np.arange(n)
    want = np.ones(n)
    want[:1000] = analytic_fade(idx[:1000] / 1000, shape)
    back = n - 1 - idx
    want[back < 2000] *= analytic_fade(back[back < 2000] / 2000, shape)
    np.testing.assert_allclose(y, want, atol=1e-12)
    assert y[-1] == pytest.approx(analytic_fade(np.array([0.0]), shape)[0], abs=1e-15)
    # streaming: the engine gives the length up front, chunks carry the position
    chunked = streamed(Fade(rate, in_s=1.0, out_s=2.0, shape=shape), torch.ones(1, n), 333)
    np.testing.assert_allclose(chunked.numpy()[0], want, atol=1e-6)


def test_fade_out_needs_the_length():
    fade = Fade(48000, out_s=1.0)
    with pytest.raises(UsageError, match="out_s needs the stream's length"):
        fade.init_state(torch.zeros(2, 0), None)
    Fade(48000, in_s=1.0).init_state(torch.zeros(2, 0), None)  # fade-in alone is fine


def test_fade_longer_than_the_signal():
    y = Fade(100, in_s=1.0, out_s=1.0)(torch.ones(1, 50, dtype=torch.float64)).numpy()[0]
    n = np.arange(50)
    np.testing.assert_allclose(y, (n / 100) * ((49 - n) / 100), atol=1e-12)
    assert math.isclose(y.max(), y[24], rel_tol=0.05)
