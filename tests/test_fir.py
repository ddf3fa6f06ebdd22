"""FIR stages against scipy.signal.firwin + lfilter in float64; delay compensation; taps files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.errors import ChainSpecError
from tests.conftest import unit_noise

RATE = 44100


def run(stage, x, dtype=torch.float64):
    return load_chain([stage], RATE, dtype=dtype)(torch.from_numpy(x).to(dtype)).double().numpy()


@pytest.mark.parametrize(
    "pass_type,cutoff,taps",
    [
        ("lowpass", 1000.0, 101),
        ("highpass", 2000.0, 63),
        ("bandpass", [500.0, 3000.0], 200),
        ("bandstop", [500.0, 3000.0], 129),
        ("lowpass", 5000.0, 1001),
    ],
)
@pytest.mark.parametrize("window", ["hamming", "blackman", "kaiser"])
def test_fir_plain_equals_lfilter_of_firwin(pass_type, cutoff, taps, window):
    x = unit_noise(2, 8000, seed=taps)
    win = ("kaiser", 8.6) if window == "kaiser" else window
    h = signal.firwin(taps, cutoff, window=win, pass_zero=pass_type, fs=RATE)
    ref = signal.lfilter(h, 1.0, x, axis=-1)
    stage = {
        "fir": {
            "pass": pass_type,
            "cutoff_hz": cutoff,
            "taps": taps,
            "window": window,
            "compensate_delay": False,
        }
    }
    np.testing.assert_allclose(run(stage, x), ref, atol=1e-12)
    assert np.max(np.abs(run(stage, x, torch.float32) - ref)) < 1e-5


def test_fir_compensated_is_aligned_and_same_length():
    x = unit_noise(1, 5000, seed=1)
    h = signal.firwin(101, 2000.0, fs=RATE)
    full = np.convolve(x[0], h)  # length 5000 + 100
    y = run({"fir": {"cutoff_hz": 2000.0, "taps": 101}}, x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y[0], full[50:5050], atol=1e-12)
    # linear phase: a symmetric pulse stays centred where it was
    pulse = np.zeros((1, 1001))
    pulse[0, 500] = 1.0
    out = run({"fir": {"cutoff_hz": 2000.0, "taps": 101}}, pulse)[0]
    assert int(np.argmax(out)) == 500
    np.testing.assert_allclose(out, out[::-1], atol=1e-15)


def test_fir_shorter_than_latency():
    x = unit_noise(1, 20, seed=2)
    h = signal.firwin(101, 2000.0, fs=RATE)
    y = run({"fir": {"cutoff_hz": 2000.0, "taps": 101}}, x)
    np.testing.assert_allclose(y[0], np.convolve(x[0], h)[50:70], atol=1e-12)


def test_fir_taps_inline_and_files(tmp_path):
    h = np.hanning(31) / np.hanning(31).sum()
    x = unit_noise(2, 3000, seed=5)
    ref = signal.lfilter(h, 1.0, x)
    np.testing.assert_allclose(run({"fir_taps": {"taps": h.tolist()}}, x), ref, atol=1e-12)
    np.save(tmp_path / "h.npy", h)
    np.testing.assert_allclose(
        run({"fir_taps": {"file": str(tmp_path / "h.npy")}}, x), ref, atol=1e-12
    )
    (tmp_path / "h.txt").write_text("\n".join(repr(float(v)) for v in h))
    np.testing.assert_allclose(
        run({"fir_taps": {"file": str(tmp_path / "h.txt")}}, x), ref, atol=1e-12
    )
    y = run({"fir_taps": {"taps": h.tolist(), "compensate_delay": True}}, x)
    np.testing.assert_allclose(
        y, np.apply_along_axis(np.convolve, -1, x, h)[:, 15:3015], atol=1e-12
    )


def test_fir_taps_file_relative_to_chain_file(tmp_path):
    np.save(tmp_path / "taps.npy", np.array([0.5, 0.5]))
    chain_file = tmp_path / "chain.yaml"
    chain_file.write_text("stages:\n  - fir_taps: {file: taps.npy}\n")
    chain = load_chain(str(chain_file), RATE)
    np.testing.assert_allclose(chain[0].taps.numpy(), [0.5, 0.5])


@pytest.mark.parametrize(
    "stage,message",
    [
        ({"fir": {"cutoff_hz": 1000, "taps": 100}}, "compensate_delay needs odd taps"),
        (
            {
                "fir": {
                    "pass": "highpass",
                    "cutoff_hz": 1000,
                    "taps": 100,
                    "compensate_delay": False,
                }
            },
            "odd number of taps",
        ),
        ({"fir": {"pass": "bandpass", "cutoff_hz": 1000}}, "needs [low_hz, high_hz]"),
        ({"fir": {"cutoff_hz": [1000, 500]}}, "low < high"),
        ({"fir_taps": {"taps": [0.5, 0.5], "compensate_delay": True}}, "odd number of taps"),
        ({"fir_taps": {}}, "exactly one of"),
        ({"fir_taps": {"file": "/nonexistent/taps.npy"}}, "taps file not found"),
    ],
)
def test_fir_errors(stage, message):
    with pytest.raises(ChainSpecError) as info:
        load_chain([stage], RATE)
    assert message in str(info.value)


def test_long_fir_uses_fft_and_stays_exact():
    h = signal.firwin(4001, 300.0, fs=RATE)
    x = unit_noise(2, 20000, seed=9)
    y = run({"fir_taps": {"taps": h.tolist()}}, x)
    np.testing.assert_allclose(y, signal.lfilter(h, 1.0, x), atol=1e-11)
