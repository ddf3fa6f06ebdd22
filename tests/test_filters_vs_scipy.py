"""IIR filter stages against scipy.signal in float64: same design through sosfilt, and the
magnitude of the stage's own impulse response against sosfreqz of scipy's design."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from tests.conftest import unit_noise

RATE = 48000
TYPES = ["butterworth", "chebyshev1", "chebyshev2", "elliptic", "bessel", "linkwitz_riley"]


def scipy_sos(btype: str, wn, order: int, kind: str, rp: float = 1.0, rs: float = 40.0):
    """The reference design, written against scipy directly (not through audiofx)."""
    if kind == "butterworth":
        return signal.butter(order, wn, btype, fs=RATE, output="sos")
    if kind == "chebyshev1":
        return signal.cheby1(order, rp, wn, btype, fs=RATE, output="sos")
    if kind == "chebyshev2":
        return signal.cheby2(order, rs, wn, btype, fs=RATE, output="sos")
    if kind == "elliptic":
        return signal.ellip(order, rp, rs, wn, btype, fs=RATE, output="sos")
    if kind == "bessel":
        return signal.bessel(order, wn, btype, fs=RATE, output="sos")
    half = signal.butter(order // 2, wn, btype, fs=RATE, output="sos")
    return np.vstack([half, half])


def run_stage(stage: dict, x: np.ndarray, dtype=torch.float64) -> np.ndarray:
    chain = load_chain([stage], RATE, dtype=dtype)
    return chain(torch.from_numpy(x).to(dtype)).double().numpy()


def dtft(h: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    n = np.arange(h.size)
    return np.exp(-2j * np.pi * np.outer(freqs, n) / RATE) @ h


CASES = [
    ("lowpass", {"cutoff_hz": 1000.0}, 1000.0),
    ("highpass", {"cutoff_hz": 300.0}, 300.0),
    ("bandpass", {"low_hz": 500.0, "high_hz": 2000.0}, [500.0, 2000.0]),
    ("bandstop", {"low_hz": 500.0, "high_hz": 2000.0}, [500.0, 2000.0]),
]


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("name,params,wn", CASES)
@pytest.mark.parametrize("order", [2, 4])
def test_iir_matches_scipy_sosfilt(kind, name, params, wn, order):
    x = unit_noise(2, 20000, seed=order)
    stage = {
        name: {**params, "order": order, "type": kind, "ripple_db": 0.5, "attenuation_db": 50.0}
    }
    ref = signal.sosfilt(scipy_sos(name, wn, order, kind, 0.5, 50.0), x, axis=-1)
    y = run_stage(stage, x)
    err = np.max(np.abs(y - ref))
    assert err < 1e-12, f"max abs error {err:.3g}"
    # float32 processing: within 1e-5 of the float64 reference
    y32 = run_stage(stage, x, torch.float32)
    assert np.max(np.abs(y32 - ref)) < 1e-5


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("name,params,wn", CASES)
def test_iir_magnitude_response(kind, name, params, wn):
    order = 4
    stage = {name: {**params, "order": order, "type": kind}}
    impulse = np.zeros((1, 1 << 16))
    impulse[0, 0] = 1.0
    h = run_stage(stage, impulse)[0]
    freqs = np.array([50.0, 300.0, 500.0, 1000.0, 1500.0, 2000.0, 5000.0, 15000.0])
    ref = np.abs(signal.freqz_sos(scipy_sos(name, wn, order, kind), freqs, fs=RATE)[1])
    got = np.abs(dtft(h, freqs))
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=1e-6)


def test_butterworth_is_3db_down_at_cutoff_and_unity_in_passband():
    impulse = np.zeros((1, 1 << 15))
    impulse[0, 0] = 1.0
    for order in (1, 2, 5, 8):
        h = run_stage({"lowpass": {"cutoff_hz": 2000.0, "order": order}}, impulse)[0]
        gain_db = 20 * np.log10(np.abs(dtft(h, np.array([2000.0, 0.0, 20.0]))))
        assert gain_db[0] == pytest.approx(-3.0103, abs=1e-3)
        assert gain_db[1] == pytest.approx(0.0, abs=1e-9)


def test_linkwitz_riley_is_6db_down_and_sums_flat():
    impulse = np.zeros((1, 1 << 15))
    impulse[0, 0] = 1.0
    lo = run_stage(
        {"lowpass": {"cutoff_hz": 1000.0, "order": 4, "type": "linkwitz_riley"}}, impulse
    )[0]
    hi = run_stage(
        {"highpass": {"cutoff_hz": 1000.0, "order": 4, "type": "linkwitz_riley"}}, impulse
    )[0]
    freqs = np.array([100.0, 1000.0, 3000.0, 10000.0])
    assert 20 * np.log10(abs(dtft(lo, freqs[1:2])[0])) == pytest.approx(-6.0206, abs=1e-3)
    # LR4 crossover: low + high is an all-pass (flat magnitude)
    np.testing.assert_allclose(np.abs(dtft(lo + hi, freqs)), 1.0, atol=1e-9)


def test_chebyshev_ripple_and_stopband_bounds():
    impulse = np.zeros((1, 1 << 15))
    impulse[0, 0] = 1.0
    freqs = np.linspace(10, 1000, 200)
    h = run_stage(
        {"lowpass": {"cutoff_hz": 1000.0, "order": 5, "type": "chebyshev1", "ripple_db": 2.0}},
        impulse,
    )[0]
    db = 20 * np.log10(np.abs(dtft(h, freqs)))
    assert db.min() >= -2.0 - 1e-6 and db.max() <= 1e-6
    h = run_stage(
        {
            "lowpass": {
                "cutoff_hz": 1000.0,
                "order": 5,
                "type": "chebyshev2",
                "attenuation_db": 60.0,
            }
        },
        impulse,
    )[0]
    stop = 20 * np.log10(np.abs(dtft(h, np.linspace(1000, 20000, 200))))
    assert stop.max() <= -60.0 + 1e-6


def test_high_order_near_unit_circle_stays_exact():
    """20 Hz high-pass at 192 kHz, order 8: poles within 1e-3 of z = 1."""
    rate = 192000
    x = unit_noise(1, 100000, seed=3)
    chain = load_chain([{"highpass": {"cutoff_hz": 20.0, "order": 8}}], rate, dtype=torch.float32)
    y = chain(torch.from_numpy(x).float()).double().numpy()
    ref = signal.sosfilt(signal.butter(8, 20.0, "highpass", fs=rate, output="sos"), x)
    assert np.max(np.abs(y - ref)) < 1e-5


def test_sos_and_ba_stages_match_scipy():
    x = unit_noise(2, 5000, seed=4)
    sos = signal.cheby1(4, 1.0, 3000, "lowpass", fs=RATE, output="sos")
    y = run_stage({"sos": {"sections": (sos * 2.0).tolist()}}, x)  # a0 = 2: normalised
    np.testing.assert_allclose(y, signal.sosfilt(sos, x), atol=1e-12)
    b, a = signal.butter(3, 2000, fs=RATE)
    y = run_stage({"ba": {"b": b.tolist(), "a": a.tolist()}}, x)
    np.testing.assert_allclose(y, signal.lfilter(b, a, x), atol=1e-10)
    y = run_stage({"ba": {"b": [0.5, 0.3, 0.2], "a": [2.0]}}, x)
    np.testing.assert_allclose(y, signal.lfilter([0.5, 0.3, 0.2], [2.0], x), atol=1e-12)


def test_dc_remove_removes_offset_and_keeps_audio_band():
    rate = 16000
    t = np.arange(rate * 4) / rate
    x = (0.3 + 0.5 * np.sin(2 * np.pi * 440 * t))[None]
    y = load_chain(["dc_remove"], rate, dtype=torch.float64)(torch.from_numpy(x)).numpy()
    tail = y[0, -rate:]
    assert abs(tail.mean()) < 1e-3
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_gain_is_exact():
    x = unit_noise(2, 1000)
    np.testing.assert_allclose(
        run_stage({"gain": {"gain_db": -6.0}}, x), x * 10 ** (-6 / 20), rtol=1e-15
    )
