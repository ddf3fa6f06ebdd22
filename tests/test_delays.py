"""`delay` and `echo`: impulse responses against the analytic ones, tails, and SoX `echo`.

Impulse responses are exact in float64 (tolerance 1e-12). SoX `echo` works on 24-bit values
internally (sample / 256), hence 1e-6 there; with tail_s = the longest delay our output has
SoX's length (SoX drains the delay line).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli import load_chain
from audiofx_cli.errors import ChainSpecError
from tests.conftest import needs_sox, unit_noise

RATE = 8000


def run(stage, x: np.ndarray, rate: int = RATE) -> np.ndarray:
    return load_chain([stage], rate, dtype=torch.float64)(torch.from_numpy(x)).numpy()


def impulse(n: int, channels: int = 2) -> np.ndarray:
    x = np.zeros((channels, n))
    x[:, 0] = 1.0
    return x


@pytest.mark.parametrize("delay", [1, 5, 63, 64, 400])
@pytest.mark.parametrize("feedback", [0.0, 0.7, -0.5])
def test_delay_impulse_response_is_analytic(delay, feedback):
    n, mix = 3000, 0.4
    y = run(
        {"delay": {"time_ms": delay * 1000 / RATE, "feedback": feedback, "mix": mix}}, impulse(n)
    )
    expected = np.zeros(n)
    expected[0] = 1 - mix
    k = np.arange(1, (n - 1) // delay + 1)
    expected[k * delay] = mix * feedback ** (k - 1)
    np.testing.assert_allclose(y, np.vstack([expected, expected]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("delay", [3, 200])
def test_delay_tail_plays_out_the_line(delay):
    tail_s, n = 0.25, 1000
    stage = {
        "delay": {"time_ms": delay * 1000 / RATE, "feedback": 0.5, "mix": 1.0, "tail_s": tail_s}
    }
    x = unit_noise(1, n, seed=1)
    y = run(stage, x)
    assert y.shape[-1] == n + 2000
    # the same as the stage without a tail run on the input followed by silence
    longer = run({"delay": {**stage["delay"], "tail_s": 0.0}}, np.pad(x, ((0, 0), (0, 2000))))
    np.testing.assert_allclose(y, longer, atol=1e-12)
    chain = load_chain([stage], RATE)
    assert chain[0].output_frames(n) == n + 2000 and chain[0].output_frames(0) == 0


def test_echo_impulse_response_is_analytic():
    stage = {"echo": {"delays_ms": [10, 25, 100], "decays": [0.5, 0.3, 0.1], "gain_in": 0.8}}
    y = run({"echo": {**stage["echo"], "gain_out": 0.9}}, impulse(1200, 1))[0]
    expected = np.zeros(1200)
    expected[[0, 80, 200, 800]] = [0.9 * 0.8, 0.9 * 0.5, 0.9 * 0.3, 0.9 * 0.1]
    np.testing.assert_allclose(y, expected, atol=1e-15)


@needs_sox
def test_echo_against_sox(tmp_path):
    x = 0.4 * unit_noise(2, 4000, seed=3)
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, RATE, subtype="DOUBLE")
    effect = ["echo", "0.8", "0.7", "10", "0.5", "37.5", "0.3"]
    subprocess.run(
        ["sox", "-V1", str(src), "-e", "floating-point", "-b", "64", str(out), *effect],
        check=True,
    )
    ref = sf.read(out, dtype="float64", always_2d=True)[0].T
    params = {"delays_ms": [10, 37.5], "decays": [0.5, 0.3], "gain_in": 0.8, "gain_out": 0.7}
    ours = run({"echo": {**params, "tail_s": 0.0375}}, x)
    assert ours.shape == ref.shape == (2, 4300)
    assert np.max(np.abs(ours - ref)) < 1e-6
    assert run({"echo": params}, x).shape == x.shape  # default: input length


def test_rate_checks():
    with pytest.raises(ChainSpecError, match=r"less than one sample at 8000 Hz"):
        load_chain([{"delay": {"time_ms": 0.01}}], RATE)
    with pytest.raises(ChainSpecError, match="one decay per delay"):
        load_chain([{"echo": {"delays_ms": [1, 2], "decays": [0.5]}}], RATE)
