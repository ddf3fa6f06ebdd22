"""Modulation stages against independent references.

- tremolo: the analytic gain curve, and SoX `tremolo` (same curve: gain 1 - d (1 - cos) / 2).
- chorus / flanger: a slow per-sample Python reference of a fractional delay line with feedback,
  written here from the documented formula (not from the kernel).
- phaser: a per-sample Python all-pass cascade with separate x/y memories per stage; with
  depth 0 also scipy.signal.lfilter of the static first-order all-pass.
SoX `chorus`, `flanger` and `phaser` are not compared: their structures differ (SoX's LFO is a
table rounded to whole samples, its phaser is a single delay-line all-pass, its flanger
balances gains differently), so any match would be approximate by design.
All comparisons run in float64 with tolerance 1e-10 unless noted.
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
from audiofx_cli.errors import ChainSpecError
from tests.conftest import needs_sox, unit_noise

RATE = 8000


def run(stage, x: np.ndarray, rate: int = RATE) -> np.ndarray:
    return load_chain([stage], rate, dtype=torch.float64)(torch.from_numpy(x)).numpy()


def lfo_value(cycles: float, shape: str) -> float:
    c = cycles % 1.0
    if shape == "triangle":
        return 1 - 4 * c if c < 0.5 else -3 + 4 * c
    return math.cos(2 * math.pi * c)


@pytest.mark.parametrize("shape", ["sine", "triangle"])
def test_tremolo_analytic(shape):
    x = unit_noise(2, 3000, seed=1)
    params = {
        "rate_hz": 7.0,
        "depth": 0.6,
        "mix": 0.8,
        "shape": shape,
        "phase_deg": 30.0,
        "spread_deg": 90.0,
    }
    y = run({"tremolo": params}, x)
    n = np.arange(3000)
    for c in range(2):
        cycles = 7.0 * n / RATE + (30.0 + 90.0 * c) / 360
        lfo = np.array([lfo_value(v, shape) for v in cycles])
        gain = 0.2 + 0.8 * (1 - 0.6 * (1 - lfo) / 2)
        np.testing.assert_allclose(y[c], gain * x[c], atol=1e-12)


@needs_sox
def test_tremolo_against_sox(tmp_path):
    x = 0.5 * unit_noise(2, 8000, seed=2)
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, RATE, subtype="DOUBLE")
    subprocess.run(
        [
            "sox",
            "-V1",
            str(src),
            "-e",
            "floating-point",
            "-b",
            "64",
            str(out),
            "tremolo",
            "6",
            "40",
        ],
        check=True,
    )
    ref = sf.read(out, dtype="float64", always_2d=True)[0].T
    ours = run({"tremolo": {"rate_hz": 6, "depth": 0.4}}, x)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-8  # SoX's 32-bit integer pipeline


def delay_reference(x, rate_hz, depth, delay_ms, feedback, mix, voices, shape, phase, spread):
    """Per-sample fractional delay line: w[n] = x[n] + fb * wet[n], wet = mean over voices of
    w at n - d, d = max(1, D (1 + depth lfo)), linear interpolation."""
    channels, n = x.shape
    centre = delay_ms * RATE / 1000
    y = np.zeros_like(x)
    for c in range(channels):
        w = []
        for i in range(n):
            total = 0.0
            for v in range(voices):
                cycles = rate_hz * i / RATE + phase / 360 + c * spread / 360 + v / voices
                d = max(1.0, centre * (1 + depth * lfo_value(cycles, shape)))
                t = i - d
                lo = math.floor(t)
                frac = t - lo
                a = w[lo] if lo >= 0 else 0.0
                b = w[lo + 1] if lo + 1 >= 0 and frac > 0 else 0.0
                total += (1 - frac) * a + frac * b
            wet = total / voices
            w.append(x[c, i] + feedback * wet)
            y[c, i] = (1 - mix) * x[c, i] + mix * wet
    return y


@pytest.mark.parametrize(
    "name,params",
    [
        (
            "chorus",
            {
                "rate_hz": 3.0,
                "depth": 0.3,
                "delay_ms": 5.0,
                "feedback": 0.0,
                "voices": 3,
                "mix": 0.5,
            },
        ),
        (
            "chorus",
            {
                "rate_hz": 1.0,
                "depth": 0.5,
                "delay_ms": 2.0,
                "feedback": -0.4,
                "voices": 2,
                "mix": 0.7,
            },
        ),
        ("flanger", {"rate_hz": 4.0, "depth": 0.95, "delay_ms": 1.0, "feedback": 0.7, "mix": 0.5}),
        ("flanger", {"rate_hz": 2.0, "depth": 0.5, "delay_ms": 3.0, "feedback": 0.3, "mix": 1.0}),
    ],
)
@pytest.mark.parametrize("shape", ["sine", "triangle"])
def test_chorus_flanger_against_per_sample_reference(name, params, shape):
    x = unit_noise(2, 1500, seed=3)
    lfo = {"shape": shape, "phase_deg": 45.0, "spread_deg": 120.0}
    y = run({name: {**params, **lfo}}, x)
    ref = delay_reference(
        x,
        params["rate_hz"],
        params["depth"],
        params["delay_ms"],
        params["feedback"],
        params["mix"],
        params.get("voices", 1),
        shape,
        45.0,
        120.0,
    )
    np.testing.assert_allclose(y, ref, atol=1e-10)


def test_static_chorus_is_a_pure_delay():
    x = unit_noise(1, 500, seed=4)
    y = run({"chorus": {"depth": 0.0, "delay_ms": 2.5, "mix": 1.0}}, x)  # 20 samples
    np.testing.assert_allclose(y[:, 20:], x[:, :-20], atol=1e-15)
    np.testing.assert_allclose(y[:, :20], 0.0, atol=1e-15)


def phaser_reference(x, rate_hz, depth, centre_hz, octaves, stages, feedback, mix, phase, spread):
    channels, n = x.shape
    y = np.zeros_like(x)
    for c in range(channels):
        x_prev, y_prev, last = [0.0] * stages, [0.0] * stages, 0.0
        for i in range(n):
            cycles = rate_hz * i / RATE + phase / 360 + c * spread / 360
            f = centre_hz * 2 ** (depth * octaves * math.cos(2 * math.pi * cycles))
            t = math.tan(math.pi * f / RATE)
            a = (t - 1) / (t + 1)
            u = x[c, i] + feedback * last
            for k in range(stages):
                out = a * u + x_prev[k] - a * y_prev[k]
                x_prev[k], y_prev[k] = u, out
                u = out
            last = u
            y[c, i] = (1 - mix) * x[c, i] + mix * u
    return y


@pytest.mark.parametrize("stages,feedback", [(4, 0.0), (6, 0.6), (3, -0.5)])
def test_phaser_against_per_sample_reference(stages, feedback):
    x = unit_noise(2, 1500, seed=5)
    params = {"rate_hz": 5.0, "depth": 0.8, "centre_hz": 900.0, "octaves": 1.5, "stages": stages}
    y = run({"phaser": {**params, "feedback": feedback, "mix": 0.6, "spread_deg": 90.0}}, x)
    ref = phaser_reference(x, 5.0, 0.8, 900.0, 1.5, stages, feedback, 0.6, 0.0, 90.0)
    np.testing.assert_allclose(y, ref, atol=1e-10)


def test_static_phaser_equals_scipy_allpass_cascade():
    x = unit_noise(1, 4000, seed=6)
    y = run({"phaser": {"depth": 0.0, "centre_hz": 1000.0, "stages": 4, "mix": 1.0}}, x)
    t = np.tan(np.pi * 1000.0 / RATE)
    a = (t - 1) / (t + 1)
    ref = x[0]
    for _ in range(4):
        ref = signal.lfilter([a, 1.0], [1.0, a], ref)
    np.testing.assert_allclose(y[0], ref, atol=1e-12)
    # an all-pass cascade keeps the energy of a long signal (up to its decaying tail)
    assert abs(np.sum(y**2) / np.sum(x**2) - 1) < 0.01


def test_phaser_sweep_above_nyquist_is_rejected():
    with pytest.raises(ChainSpecError, match="above Nyquist"):
        load_chain([{"phaser": {"centre_hz": 3000, "depth": 1.0, "octaves": 1.0}}], RATE)
