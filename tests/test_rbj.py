"""RBJ Audio EQ Cookbook biquads, checked three independent ways: the bilinear transform of the
cookbook's analog prototypes (with f0 pre-warped), analytic gains, and SoX's implementation."""

from __future__ import annotations

import math
import subprocess
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from audiofx_cli import load_chain
from tests.conftest import needs_sox, unit_noise

RATE = 48000


def analog_prototype(kind: str, q: float, gain_db: float):
    """Cookbook analog transfer functions H(s) for s normalised to w0 (b, a high power first)."""
    big_a = 10 ** (gain_db / 40)
    r = math.sqrt(big_a) / q
    return {
        "biquad_lowpass": ([1.0], [1.0, 1 / q, 1.0]),
        "biquad_highpass": ([1.0, 0.0, 0.0], [1.0, 1 / q, 1.0]),
        "notch": ([1.0, 0.0, 1.0], [1.0, 1 / q, 1.0]),
        "allpass": ([1.0, -1 / q, 1.0], [1.0, 1 / q, 1.0]),
        "peaking": ([1.0, big_a / q, 1.0], [1.0, 1 / (big_a * q), 1.0]),
        "lowshelf": ([big_a, big_a * r, big_a * big_a], [big_a, r, 1.0]),
        "highshelf": ([big_a * big_a, big_a * r, big_a], [1.0, r, big_a]),
    }[kind]


def bilinear_reference(kind: str, freq_hz: float, q: float, gain_db: float) -> np.ndarray:
    b, a = analog_prototype(kind, q, gain_db)
    w0 = 2 * RATE * math.tan(math.pi * freq_hz / RATE)  # pre-warped analog frequency
    b = np.array(b, dtype=float)
    a = np.array(a, dtype=float)
    b = b / w0 ** np.arange(b.size - 1, -1, -1) if b.size == 3 else b
    a = a / w0 ** np.arange(a.size - 1, -1, -1)
    with warnings.catch_warnings():  # exact zeros at f0 = fs/4 trip scipy's conditioning check
        warnings.simplefilter("ignore", signal.BadCoefficients)
        bz, az = signal.bilinear(b, a, fs=RATE)
    bz = np.pad(bz, (3 - bz.size, 0)) if bz.size < 3 else bz
    return np.concatenate([bz, az]) / az[0]


def stage_params(kind: str, freq_hz: float, q: float, gain_db: float) -> dict:
    params = {"freq_hz": freq_hz, "q": q}
    if kind in ("peaking", "lowshelf", "highshelf"):
        params["gain_db"] = gain_db
    return {kind: params}


def sections(stage: dict) -> np.ndarray:
    return load_chain([stage], RATE)[0].sos.numpy()


KINDS = [
    "biquad_lowpass",
    "biquad_highpass",
    "notch",
    "allpass",
    "peaking",
    "lowshelf",
    "highshelf",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "freq_hz,q,gain_db", [(100.0, 0.7071, 6.0), (1000.0, 2.0, -9.0), (12000.0, 0.5, 3.0)]
)
def test_biquads_equal_bilinear_transform_of_cookbook_prototypes(kind, freq_hz, q, gain_db):
    got = sections(stage_params(kind, freq_hz, q, gain_db))[0]
    ref = bilinear_reference(kind, freq_hz, q, gain_db)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def gain_at(stage: dict, freqs) -> np.ndarray:
    return np.abs(signal.freqz_sos(sections(stage), worN=np.asarray(freqs, float), fs=RATE)[1])


def test_analytic_gains():
    db = lambda g: 20 * np.log10(g)  # noqa: E731
    peak = gain_at({"peaking": {"freq_hz": 1000, "gain_db": 6, "q": 1}}, [1000, 0, 23999])
    np.testing.assert_allclose(db(peak), [6.0, 0.0, 0.0], atol=1e-3)
    shelf = gain_at({"lowshelf": {"freq_hz": 500, "gain_db": -8}}, [0.001, 500, 23999])
    np.testing.assert_allclose(db(shelf), [-8.0, -4.0, 0.0], atol=1e-3)
    shelf = gain_at({"highshelf": {"freq_hz": 5000, "gain_db": 4}}, [0.001, 5000, 23999.9])
    np.testing.assert_allclose(db(shelf), [0.0, 2.0, 4.0], atol=1e-2)
    notch = gain_at({"notch": {"freq_hz": 50, "q": 10}}, [50, 0, 1000])
    assert notch[0] < 1e-9 and notch[1] == pytest.approx(1) and notch[2] > 0.99
    allpass = gain_at({"allpass": {"freq_hz": 2000, "q": 0.7}}, np.linspace(1, 23000, 50))
    np.testing.assert_allclose(allpass, 1.0, atol=1e-12)
    phase = np.angle(
        signal.freqz_sos(
            sections({"allpass": {"freq_hz": 2000, "q": 0.7}}), worN=[2000.0], fs=RATE
        )[1][0]
    )
    assert abs(abs(phase) - math.pi) < 1e-9
    lp = gain_at({"biquad_lowpass": {"freq_hz": 3000, "q": 2.0}}, [0, 3000])
    np.testing.assert_allclose(lp, [1.0, 2.0], rtol=1e-9)


SOX_EFFECTS = [
    ({"biquad_lowpass": {"freq_hz": 3000.0, "q": 0.7071}}, ["lowpass", "-2", "3000", "0.7071q"]),
    ({"biquad_highpass": {"freq_hz": 200.0, "q": 1.5}}, ["highpass", "-2", "200", "1.5q"]),
    ({"peaking": {"freq_hz": 1000.0, "gain_db": 6.0, "q": 2.0}}, ["equalizer", "1000", "2q", "6"]),
    ({"notch": {"freq_hz": 4000.0, "q": 5.0}}, ["bandreject", "4000", "5q"]),
    ({"allpass": {"freq_hz": 700.0, "q": 0.8}}, ["allpass", "700", "0.8q"]),
    (
        {"lowshelf": {"freq_hz": 150.0, "gain_db": -4.0, "q": 0.7071}},
        ["bass", "-4", "150", "0.7071q"],
    ),
    (
        {"highshelf": {"freq_hz": 6000.0, "gain_db": 3.0, "q": 0.7071}},
        ["treble", "3", "6000", "0.7071q"],
    ),
]


@needs_sox
@pytest.mark.parametrize("stage,effect", SOX_EFFECTS, ids=lambda v: str(v)[:30])
def test_biquads_match_sox(tmp_path, stage, effect):
    x = 0.25 * unit_noise(2, 24000, seed=7)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, RATE, subtype="FLOAT")
    subprocess.run(["sox", "-D", str(src), "-e", "floating-point", str(dst), *effect], check=True)
    ref = sf.read(dst, dtype="float64")[0].T
    y = load_chain([stage], RATE, dtype=torch.float64)(torch.from_numpy(x)).numpy()
    err = np.max(np.abs(y - ref))
    assert err < 1e-5, f"max abs difference from SoX {err:.3g}"
