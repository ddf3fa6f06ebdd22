"""Chain fusion: fused chains equal unfused ones (whole and chunked), LTI detection, repr.

The reference for each random chain is the same chain built with fuse=False (every stage run
on its own, stage semantics unchanged); the unfused stages themselves are checked against
scipy in tests/test_filters_vs_scipy.py and tests/test_fir.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.dsp.lti import FIRPart, SOSPart, combine
from audiofx_cli.stages.base import Stage
from audiofx_cli.stages.fused import FusedLTI
from audiofx_cli.stages.structure import Parallel
from tests.conftest import unit_noise
from tests.test_stage_contract import chunked

RATE = 44100
TOL32 = 1e-5  # max abs difference, float32 processing, unit-peak noise
TOL64 = 1e-9  # float64 processing


def random_stage(rng: np.random.Generator, depth: int = 0) -> object:
    kind = str(
        rng.choice(
            ["highpass", "lowpass", "peaking", "dc_remove", "gain", "fir", "fir_taps", "ba"]
            + (["parallel_fir", "parallel_iir"] if depth == 0 else [])
        )
    )
    if kind in ("highpass", "lowpass"):
        family = str(rng.choice(["butterworth", "chebyshev1", "elliptic", "bessel"]))
        cutoff = float(rng.uniform(30, 3000) if kind == "highpass" else rng.uniform(1000, 15000))
        return {kind: {"cutoff_hz": cutoff, "order": int(rng.integers(1, 7)), "type": family}}
    if kind == "peaking":
        return {"peaking": {"freq_hz": float(rng.uniform(100, 8000)), "gain_db": 4.0, "q": 2.0}}
    if kind == "dc_remove":
        return "dc_remove"
    if kind == "gain":
        return {"gain": {"gain_db": float(rng.uniform(-6, 6))}}
    if kind == "fir":
        taps = int(rng.integers(5, 80)) * 2 + 1
        comp = bool(rng.integers(0, 2))
        return {"fir": {"cutoff_hz": float(rng.uniform(2000, 12000)), "taps": taps,
                        "compensate_delay": comp}}  # fmt: skip
    if kind == "fir_taps":
        n = int(rng.integers(1, 15)) * 2 + 1
        taps = (rng.standard_normal(n) / n).tolist()
        return {"fir_taps": {"taps": taps, "compensate_delay": bool(rng.integers(0, 2))}}
    if kind == "ba":
        b, a = signal.butter(int(rng.integers(1, 4)), float(rng.uniform(0.05, 0.4)))
        return {"ba": {"b": b.tolist(), "a": a.tolist()}}
    if kind == "parallel_fir":
        branches = [[random_stage(rng, 1)] for _ in range(2)]
        if any("fir" not in str(b) and "gain" not in str(b) for b in branches):
            branches = [[{"fir": {"cutoff_hz": 3000.0, "taps": 31}}], [{"gain": {"gain_db": -2.0}}]]
        return {"parallel": {"branches": branches, "weights": [0.7, 0.4]}}
    branches = [[{"highpass": {"cutoff_hz": 2000.0}}], [{"lowpass": {"cutoff_hz": 500.0}}]]
    return {"parallel": {"branches": branches, "weights": [1.0, 0.5]}}


@pytest.mark.parametrize("seed", range(8))
def test_random_lti_chains_fused_equal_unfused(seed):
    rng = np.random.default_rng(seed)
    stages = [random_stage(rng) for _ in range(int(rng.integers(2, 7)))]
    x64 = torch.from_numpy(unit_noise(2, 6000, seed=seed))
    for dtype, tol in ((torch.float64, TOL64), (torch.float32, TOL32)):
        fused = load_chain(stages, RATE, dtype=dtype)
        plain = load_chain(stages, RATE, dtype=dtype, fuse=False)
        assert len(fused) <= len(plain)
        x = x64.to(dtype)
        ref = plain(x)
        got = fused(x)
        assert got.shape == ref.shape
        err = float((got - ref).abs().max())
        assert err <= tol, f"{stages}: whole-signal max abs diff {err:.3g} ({dtype})"
        for sizes in ([1] * 60 + [5940], [777] * 8, [0, 3, 5997, 0]):
            err = float((chunked(fused, x, sizes) - ref).abs().max())
            assert err <= tol, f"{stages} chunks {sizes[:3]}: max abs diff {err:.3g}"


def test_iir_run_becomes_one_cascade_and_fir_run_one_fir():
    iir = [
        {"highpass": {"cutoff_hz": 1000}},
        {"lowpass": {"cutoff_hz": 5000}},
        {"highpass": {"cutoff_hz": 1500, "type": "chebyshev1"}},
        {"lowpass": {"cutoff_hz": 1800, "type": "chebyshev1"}},
    ]
    chain = load_chain(iir, RATE)
    assert len(chain) == 1 and isinstance(chain[0], FusedLTI)
    parts = chain[0].linear_operator()
    assert len(parts) == 1 and isinstance(parts[0], SOSPart) and parts[0].sos.shape == (4, 6)
    firs = [
        {"fir": {"cutoff_hz": c, "taps": n, "compensate_delay": False}}
        for n, c in ((101, 1000), (102, 5000), (103, 1500), (104, 1800), (105, 1850))
    ]
    parts = load_chain(firs, RATE)[0].linear_operator()
    assert len(parts) == 1 and isinstance(parts[0], FIRPart) and parts[0].taps.size == 511
    # and the fused taps are the convolution of scipy's designs
    ref = np.array([1.0])
    for n, c in ((101, 1000), (102, 5000), (103, 1500), (104, 1800), (105, 1850)):
        ref = np.convolve(ref, signal.firwin(n, c, fs=RATE))
    np.testing.assert_allclose(parts[0].taps, ref, atol=1e-15)


def test_fir_then_iir_is_fir_followed_by_cascade_with_gain_folded():
    stages = [
        {"lowpass": {"cutoff_hz": 3000}},
        {"fir": {"cutoff_hz": 5000, "taps": 31, "compensate_delay": False}},
        {"gain": {"gain_db": -6}},
        "dc_remove",
    ]
    parts = load_chain(stages, RATE)[0].linear_operator()
    assert [type(p) for p in parts] == [FIRPart, SOSPart]
    assert parts[1].sos.shape[0] == 2
    np.testing.assert_allclose(
        parts[0].taps, signal.firwin(31, 5000, fs=RATE) * 10 ** (-6 / 20), atol=1e-15
    )


def test_compensated_fir_keeps_its_latency_and_is_a_barrier():
    parts = combine(
        [
            SOSPart(signal.butter(2, 0.1, output="sos")),
            FIRPart(np.ones(5) / 5, latency=2),
            FIRPart(np.array([0.5])),
            SOSPart(signal.butter(2, 0.2, output="sos")),
            FIRPart(np.array([1.0, -1.0])),
        ]
    )
    assert [type(p).__name__ for p in parts] == ["SOSPart", "FIRPart", "FIRPart", "SOSPart"]
    assert parts[1].latency == 2
    np.testing.assert_allclose(parts[1].taps, np.ones(5) / 5 * 0.5)  # the gain, folded


def test_parallel_of_firs_fuses_with_aligned_latencies_and_iir_parallel_does_not():
    stages = [
        {
            "parallel": {
                "branches": [
                    [{"fir": {"cutoff_hz": 2000, "taps": 41}}],
                    [{"fir": {"cutoff_hz": 5000, "taps": 11}}],
                    [{"gain": {"gain_db": -3}}],
                ],
                "weights": [0.5, 0.3, 0.2],
            }
        }
    ]
    fused = load_chain(stages, RATE, dtype=torch.float64)
    assert isinstance(fused[0], FusedLTI)
    assert fused[0].linear_operator()[0].latency == 20
    plain = load_chain(stages, RATE, dtype=torch.float64, fuse=False)
    x = torch.from_numpy(unit_noise(2, 3000, seed=1))
    assert float((fused(x) - plain(x)).abs().max()) < TOL64
    iir = [{"parallel": {"branches": [[{"highpass": {"cutoff_hz": 2000}}], ["dc_remove"]]}}]
    assert isinstance(load_chain(iir, RATE)[0], Parallel)


def test_non_lti_stages_break_runs_and_unknown_stages_are_not_lti():
    stages = [
        {"highpass": {"cutoff_hz": 80}},
        {"gain": {"gain_db": -1}},
        {"module": {"name": "torch.nn.Tanh"}},
        {"lowpass": {"cutoff_hz": 5000}},
        {"peaking": {"freq_hz": 1000, "gain_db": 3}},
    ]
    chain = load_chain(stages, RATE)
    assert [type(m).__name__ for m in chain] == ["FusedLTI", "TorchModule", "FusedLTI"]
    text = repr(chain)
    assert "highpass(cutoff_hz=80.0) + gain(gain_db=-1.0) => sos[1 section]" in text
    assert (
        "lowpass(cutoff_hz=5000.0) + peaking(freq_hz=1000.0, gain_db=3.0) => sos[2 sections]"
    ) in text

    class Custom(Stage):  # another helper's stage: not LTI unless it says so
        def step(self, x, state):
            return x * 2, None

    assert Custom(RATE).linear_operator() is None
    assert len(load_chain(stages, RATE, fuse=False)) == len(stages)


def test_gradient_flows_through_fused_chain():
    stages = [
        {"highpass": {"cutoff_hz": 200}},
        {"fir": {"cutoff_hz": 4000, "taps": 21, "compensate_delay": False}},
        {"lowpass": {"cutoff_hz": 3000}},
    ]
    x = torch.from_numpy(unit_noise(1, 2000, seed=3)).requires_grad_(True)
    weights = torch.from_numpy(unit_noise(1, 2000, seed=4))
    grads = []
    for fuse in (True, False):
        chain = load_chain(stages, RATE, dtype=torch.float64, fuse=fuse)
        (grad,) = torch.autograd.grad((chain(x) * weights).sum(), x)
        grads.append(grad)
    assert float((grads[0] - grads[1]).abs().max()) < 1e-9
