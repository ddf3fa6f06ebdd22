"""The compiled dynamics kernels against the plain-Python references of
tests/dynamics_reference.py (libm log10 / pow, sample by sample), the branch-free log2 / exp2
against numpy, and the autograd path (the gain as a constant factor)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli.dsp import approx
from audiofx_cli.dsp.approx import EXP2_REL_ERROR, LOG2_ERROR
from audiofx_cli.dsp.ir_loops import I64, PTR, Kernel
from audiofx_cli.stages.dynamics import Compressor, Gate, Limiter
from tests import dynamics_reference as ref
from tests.conftest import ROOT

RATE = 22050


def _elementwise(emit):
    """A compiled y[i] = emit(x[i]) over float64 arrays (an `ir_loops` kernel)."""
    k = Kernel(f"map_{emit.__name__}", [("x", PTR), ("y", PTR), ("n", I64)])
    with k.loop(k.arg("n")) as i:
        k.store(emit(k, k.load("x", i)), "y", i)
    fn = k.compile()

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, x.size)
        return y

    return run


def test_log2_and_exp2_within_their_stated_error():
    rng = np.random.default_rng(0)
    v = 10 ** rng.uniform(-20, 20, 200_000)
    v[:4] = [1.0, 2.0, 0.5, 1e-20]
    log2, exp2 = _elementwise(approx.log2), _elementwise(approx.exp2)
    assert np.max(np.abs(log2(v) - np.log2(v))) <= LOG2_ERROR
    assert log2(np.array([1.0]))[0] == 0.0  # no reduction reads exactly 0 dB
    t = rng.uniform(-1000, 1000, 200_000)
    t[:3] = [0.0, 1.0, -0.5]
    assert np.max(np.abs(exp2(t) / np.exp2(t) - 1)) <= EXP2_REL_ERROR


def program(seconds: float = 0.6) -> np.ndarray:
    """Stereo speech with a quiet stretch and a loud burst: every stage acts somewhere."""
    speech, rate = sf.read(ROOT / "examples" / "speech.wav", dtype="float64", always_2d=True)
    assert rate == RATE
    x = speech[RATE : RATE + int(seconds * RATE), 0] / np.abs(speech).max()
    x = np.stack([x, np.roll(x, 37) * 0.5])
    x[:, len(x[0]) // 3 : len(x[0]) // 2] *= 0.002  # -54 dB
    x[:, -RATE // 10 :] *= 4.0  # over full scale
    return x


CASES = [
    ("compressor", Compressor, ref.compressor, {"threshold_db": -24, "ratio": 3, "attack_ms": 2,
     "release_ms": 40, "knee_db": 6, "makeup_db": 2}),
    ("compressor", Compressor, ref.compressor, {"threshold_db": -30, "ratio": 8, "attack_ms": 0,
     "release_ms": 20, "detector": "rms", "rms_ms": 3, "link": False}),
    ("gate", Gate, ref.gate, {"threshold_db": -40, "range_db": 60, "hold_ms": 5,
     "release_ms": 20}),
    ("gate", Gate, ref.gate, {"threshold_db": -35, "range_db": 30, "ratio": 2.5,
     "detector": "peak", "hold_ms": 0, "link": False}),
    ("limiter", Limiter, ref.limiter, {"ceiling_db": -3, "release_ms": 30, "lookahead_ms": 2}),
    ("limiter", Limiter, ref.limiter, {"ceiling_db": -6, "release_ms": 0, "lookahead_ms": 0,
     "link": False}),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
def test_kernels_match_the_sample_by_sample_reference(case, dtype):
    """Same output to 1e-9 of the peak in float64 (approximated logs and exponentials, 2e-10
    dB) and to one float32 rounding in float32."""
    _, stage_class, reference, params = CASES[case]
    x = program()
    expected = reference(x, RATE, **params)
    got = stage_class(RATE, **params)(torch.from_numpy(x).to(dtype)).double().numpy()
    peak = np.abs(expected).max()
    tolerance = 1e-9 * peak if dtype == torch.float64 else 1.2e-7 * peak
    assert np.max(np.abs(got - expected)) <= tolerance


@pytest.mark.parametrize("stage_class", [Compressor, Gate, Limiter])
def test_gradient_flows_through_the_gain(stage_class):
    """With autograd the output is x times the kernel's gain, the gain held constant: the
    gradient of sum(y) is that gain (y / x), and the output equals the no-grad output."""
    x = torch.from_numpy(program(0.2)).requires_grad_()
    stage = stage_class(RATE)
    y = stage(x)
    y.sum().backward()
    with torch.no_grad():
        plain = stage(x)
    np.testing.assert_allclose(y.detach().numpy(), plain.numpy(), rtol=0, atol=1e-12)
    nonzero = x.detach().abs() > 1e-3
    if stage_class is Limiter:  # aligned gain: y = x * g, so dy/dx = y / x where unclamped
        nonzero &= plain.abs() < 10 ** (-1 / 20) * (1 - 1e-9)
    gain = (plain / x.detach())[nonzero]
    np.testing.assert_allclose(x.grad[nonzero].numpy(), gain.numpy(), rtol=1e-9)


@pytest.mark.parametrize("chunk", [1, 97, 4096])
@pytest.mark.parametrize("spec", [
    {"compressor": {"threshold_db": -30, "link": False}},
    {"gate": {"threshold_db": -40, "ratio": 2, "detector": "peak"}},
    {"limiter": {"ceiling_db": -6, "lookahead_ms": 2}},
], ids=["compressor", "gate", "limiter"])  # fmt: skip
def test_writing_into_the_engines_output_equals_stepping(spec, chunk):
    """`stream.run_tensor` hands each chunk as a strided slice of the signal and lets the stage
    write into a slice of one output (`step_into`): the same samples as `forward`."""
    from audiofx_cli.api import load_chain
    from audiofx_cli.stream import run_tensor

    x = torch.from_numpy(program(0.3)).float()
    chain = load_chain([spec], RATE)
    with torch.no_grad():
        expected = chain(x)
        got = run_tensor(chain, x, chunk)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
