"""Exact gradients of section cascades (dsp.iir_adjoint) for input, coefficients and state:
finite differences (gradcheck) on short signals, torchaudio's lfilter autograd (an independent
implementation) on longer ones, streaming with the state carried, float32, and the torch
backward pass (the one other devices run) against the compiled one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import butter
from torch.autograd import gradcheck

from audiofx_cli.dsp import iir_adjoint
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt

F64 = torch.float64


def _sos(*designs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(designs)).requires_grad_()


def _cascade() -> torch.Tensor:
    return _sos(butter(2, 0.2, output="sos"), butter(3, 0.05, "high", output="sos"))


@pytest.mark.parametrize("engine", ["lanes", "scan", "scipy"])
def test_gradcheck_input_sections_and_state(engine):
    torch.manual_seed(0)
    sos = _cascade()
    x = torch.randn(2, 1, 16, dtype=F64, requires_grad=True)
    zi = torch.randn(sos.shape[0], 2, 1, 2, dtype=F64, requires_grad=True)
    assert gradcheck(lambda x, s, z: sosfilt(s, x, z, engine=engine), (x, sos, zi))
    assert gradcheck(lambda x, s: sosfilt(s, x, engine=engine)[0], (x, sos))


@pytest.mark.parametrize("frames", [0, 1, 2, 3])
def test_gradcheck_very_short_signals(frames):
    torch.manual_seed(1)
    sos = _cascade()
    x = torch.randn(2, frames, dtype=F64, requires_grad=True)
    zi = torch.randn(sos.shape[0], 2, 2, dtype=F64, requires_grad=True)
    assert gradcheck(lambda x, s, z: sosfilt(s, x, z), (x, sos, zi))


def test_a0_is_divided_out_differentiably():
    torch.manual_seed(2)
    sos = _cascade().detach() * torch.tensor([[1.0], [2.0], [0.5]], dtype=F64)
    sos.requires_grad_()
    x = torch.randn(1, 30, dtype=F64)
    assert gradcheck(lambda s: sosfilt(s, x)[0], (sos,))


def test_gradients_match_torchaudio_lfilter():
    """Long low-cutoff cascade in float64: torchaudio's lfilter (its own autograd rule)
    filters section by section; every gradient agrees to 1e-9 relative."""
    torchaudio = pytest.importorskip("torchaudio")
    sos = _sos(butter(4, 0.01, output="sos"), butter(2, 0.3, "high", output="sos"))
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 6000))).requires_grad_()
    weight = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 6000)))
    (sosfilt(sos, x)[0] * weight).sum().backward()
    ours = (x.grad.clone(), sos.grad.clone())
    x.grad, sos.grad = None, None
    y = x
    for row in sos:
        y = torchaudio.functional.lfilter(y, row[3:], row[:3], clamp=False, batching=False)
    (y * weight).sum().backward()
    for mine, theirs in zip(ours, (x.grad, sos.grad), strict=True):
        err = float((mine - theirs).abs().max() / theirs.abs().max())
        assert err < 1e-9, err


def test_streaming_with_carried_state_gives_whole_signal_gradients():
    """Two chunks with the state carried (zf -> zi, gradients through both) == one call."""
    torch.manual_seed(5)
    sos = _cascade()
    x = torch.randn(2, 400, dtype=F64, requires_grad=True)
    weight = torch.randn(2, 400, dtype=F64)
    (sosfilt(sos, x)[0] * weight).sum().backward()
    whole = (x.grad.clone(), sos.grad.clone())
    x.grad, sos.grad = None, None
    y1, z = sosfilt(sos, x[:, :150], sos_zeros_state(sos, x))
    y2, _ = sosfilt(sos, x[:, 150:], z)
    (torch.cat([y1, y2], -1) * weight).sum().backward()
    for a, b in zip(whole, (x.grad, sos.grad), strict=True):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-12


def test_float32_and_batched_shapes():
    torch.manual_seed(6)
    sos = _cascade()
    x64 = torch.randn(3, 2, 500, dtype=F64, requires_grad=True)
    x32 = x64.detach().float().requires_grad_()
    weight = torch.randn(3, 2, 500, dtype=F64)
    (sosfilt(sos, x64)[0] * weight).sum().backward()
    ref_x, ref_sos = x64.grad, sos.grad.clone()
    sos.grad = None
    y32 = sosfilt(sos, x32)[0]
    assert y32.dtype == torch.float32 and y32.shape == x32.shape
    (y32 * weight.float()).sum().backward()
    assert x32.grad.dtype == torch.float32 and sos.grad.dtype == F64
    assert float((x32.grad.double() - ref_x).abs().max() / ref_x.abs().max()) < 1e-5
    assert float((sos.grad - ref_sos).abs().max() / ref_sos.abs().max()) < 1e-5


def test_torch_backward_equals_compiled_backward():
    """`_backward_torch` (other devices: scan engine + torch ops) == `_backward_cpu`."""
    rng = np.random.default_rng(7)
    sos = np.concatenate([butter(2, 0.1, output="sos"), butter(2, 0.4, "high", output="sos")])
    x = torch.from_numpy(rng.standard_normal((6, 257)))  # 4 rows interleaved + 2 alone
    sig = torch.empty((3, 6, 257), dtype=F64)
    sig[0] = x
    for s in range(2):
        sig[s + 1] = sosfilt(torch.from_numpy(sos[s : s + 1]), sig[s])[0]
    g = torch.from_numpy(rng.standard_normal((6, 257)))
    gz = torch.from_numpy(rng.standard_normal((2, 6, 2)))
    coef = np.ascontiguousarray(sos[:, [0, 1, 2, 4, 5]])
    compiled = iir_adjoint._backward_cpu(sig, g, coef, gz)
    plain = iir_adjoint._backward_torch(sig, g, coef, gz, "scan")
    for a, b in zip(compiled, plain, strict=True):
        assert float((a - b).abs().max()) < 1e-9 * float(a.abs().max())
