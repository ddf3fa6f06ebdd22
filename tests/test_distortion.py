"""`distortion` and `bitcrush` against numpy formulas written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiofx_cli.stages.distortion import Bitcrush, Distortion
from tests.conftest import unit_noise


def test_distortion_is_tanh_of_the_driven_signal():
    x = 1.5 * unit_noise(2, 4000, seed=1)
    y = Distortion(48000, drive_db=12)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, np.tanh(10 ** (12 / 20) * x), atol=1e-12)
    assert np.abs(y).max() < 1.0


def test_distortion_mix_and_output_gain():
    x = unit_noise(1, 1000, seed=2)
    y = Distortion(48000, drive_db=6, mix=0.25, output_db=-6)(torch.from_numpy(x)).numpy()
    want = 10 ** (-6 / 20) * (0.75 * x + 0.25 * np.tanh(10 ** (6 / 20) * x))
    np.testing.assert_allclose(y, want, atol=1e-12)


def test_distortion_harmonics_are_odd():
    """A symmetric curve on a sine makes odd harmonics only."""
    rate, n = 48000, 48000
    x = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)
    y = Distortion(rate, drive_db=10)(torch.from_numpy(x)[None]).numpy()[0]
    spectrum = np.abs(np.fft.rfft(y)) / n
    odd = spectrum[[1000, 3000, 5000]]
    even = spectrum[[2000, 4000, 6000]]
    assert odd.min() > 1e-3 and even.max() < 1e-9


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 12])
def test_bitcrush_is_a_mid_tread_quantiser(bits):
    x = 1.2 * unit_noise(2, 5000, seed=bits)
    y = Bitcrush(48000, bits=bits)(torch.from_numpy(x)).numpy()
    step = 2.0 / 2**bits
    np.testing.assert_allclose(y, step * np.floor(x / step + 0.5), atol=0)
    assert np.all(np.abs(y - x) <= step / 2 + 1e-15)
    assert Bitcrush(48000, bits=bits)(torch.zeros(1, 3, dtype=torch.float64)).abs().max() == 0
    if bits >= 2:  # error is uniform over one step: RMS step / sqrt(12)
        err = (y - x)[np.abs(x) < 1]
        assert np.sqrt(np.mean(err**2)) == pytest.approx(step / np.sqrt(12), rel=0.1)


def test_bitcrush_sample_and_hold_streams():
    x = unit_noise(2, 1001, seed=5)
    stage = Bitcrush(48000, bits=16, downsample=4)
    y = stage(torch.from_numpy(x)).numpy()
    held = np.repeat(x[:, ::4], 4, axis=1)[:, :1001]
    step = 2.0**-15
    np.testing.assert_allclose(y, step * np.floor(held / step + 0.5), atol=0)
    state, parts = stage.init_state(torch.from_numpy(x)), []
    for start, size in ((0, 3), (3, 1), (4, 6), (10, 0), (10, 991)):
        out, state = stage.step(torch.from_numpy(x[:, start : start + size]), state)
        parts.append(out.numpy())
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), y)
