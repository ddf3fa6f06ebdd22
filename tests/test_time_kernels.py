"""The compiled kernels of the time-based effects: their polynomial approximations against
numpy's libm functions (stated errors), the torch paths autograd uses against the kernels,
and memory that does not grow with the signal (no whole-signal temporaries).

Tolerances: sine 1e-15 absolute, 2^r 5e-16 relative, phaser coefficients 1e-14 absolute
(all a few float64 roundings); paths 1e-12 in float64.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from audiofx_cli import load_chain
from audiofx_cli.dsp import modulation_kernels as mk
from audiofx_cli.dsp.modulation import lfo
from tests.conftest import unit_noise

RATE = 8000


def test_sine_polynomial_is_within_rounding_of_libm():
    z = np.linspace(-0.25, 0.25, 400_001)
    got = np.array([mk.sin_turns(v) for v in z[::97]])
    assert np.max(np.abs(got - np.sin(2 * np.pi * z[::97]))) < 1e-15
    r = np.linspace(-0.5, 0.5, 20_001)
    got = np.array([mk.exp2_poly(v) for v in r])
    assert np.max(np.abs(got / np.exp2(r) - 1)) < 5e-16


@pytest.mark.parametrize("shape", ["sine", "triangle"])
def test_lfo_kernel_equals_numpy_lfo(shape):
    out = np.empty(5000)
    start, inc, offset = 123_456_789, 3.7 / 44100, 0.3
    mk.lfo_block(out, start, 5000, inc, offset, shape == "triangle")
    ref = lfo(start, 5000, 3.7, 44100, np.array([offset]), shape)[0]
    assert np.max(np.abs(out - ref)) < 1e-15


def test_phaser_coefficients_equal_the_tan_formula():
    lfo_values = np.linspace(-1, 1, 2001)
    for span, centre_hz in ((1.0, 1300.0), (9.0, 40.0), (2.0, 5500.0)):  # top < Nyquist
        theta = np.pi * centre_hz / 44100
        got = lfo_values.copy()
        mk.phaser_coefficients(got, got.size, span, theta)
        t = np.tan(theta * np.exp2(span * lfo_values))
        assert np.max(np.abs(got - (t - 1) / (t + 1))) < 1e-14, (span, centre_hz)


@pytest.mark.parametrize(
    "stage",
    [
        {"delay": {"time_ms": 0.5, "feedback": 0.6}},  # 4 samples
        {"delay": {"time_ms": 40, "feedback": -0.5}},
        {"echo": {"delays_ms": [1, 12.5], "decays": [0.5, 0.3]}},
        {"tremolo": {"spread_deg": 90}},
        {"bitcrush": {"bits": 6, "downsample": 3}},
    ],
)
def test_autograd_path_equals_kernel_path(stage):
    chain = load_chain([stage], RATE, dtype=torch.float64)
    x = torch.from_numpy(unit_noise(2, 3000, seed=7))
    kernel = chain(x)
    tracked = chain(x.clone().requires_grad_())
    assert tracked.requires_grad
    assert float((tracked.detach() - kernel).abs().max()) < 1e-12


@pytest.mark.parametrize("name", ["chorus", "flanger", "phaser"])
def test_autograd_reaches_the_dry_part(name):
    chain = load_chain([{name: {"mix": 0.3}}], RATE, dtype=torch.float64)
    x = torch.from_numpy(unit_noise(2, 2000, seed=8)).requires_grad_()
    y = chain(x)
    assert float((y.detach() - chain(x.detach())).abs().max()) < 1e-12
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(grad, torch.full_like(grad, 0.7))


def _numpy_peak(run) -> int:  # type: ignore[no-untyped-def]
    """Peak bytes numpy allocated (tracemalloc) while `run` ran."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "stage",
    [
        "reverb",
        "chorus",
        {"chorus": {"voices": 3}},
        "flanger",
        "phaser",
        "tremolo",
        "delay",
        {"echo": {"delays_ms": [10, 30], "decays": [0.5, 0.2]}},
        {"bitcrush": {"downsample": 2}},
    ],
)
def test_memory_is_the_output_and_a_few_blocks(stage):
    """Whole-signal forward allocates the output and a bounded state, whatever the length."""
    chain = load_chain([stage], 44100)
    x = torch.from_numpy(unit_noise(2, 400_000, seed=9)).float()
    chain(x[..., :1000])  # compile / load the kernels first
    peak = _numpy_peak(lambda: chain(x))
    assert peak < x.numel() * 4 + 600_000, peak  # output + state (reverb: ~270 kB)
