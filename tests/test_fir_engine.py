"""FIR engine (dsp/fir.py): direct and FFT overlap-save paths against scipy.signal.lfilter in
float64, with history across chunks of every size (shorter and longer than the filter), FFT
frame groups, and the cached taps spectrum following in-place changes of the taps.

Tolerances: float64 1e-12 relative to sum|taps| (the bound on |y| for unit-peak input);
float32 2e-6 relative (FFT rounding grows like log2(n_fft) * eps32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli.dsp import fir
from audiofx_cli.dsp.fir import fft_size, fir_filter, fir_zeros_history


def stream(taps: torch.Tensor, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    history, outs, start = fir_zeros_history(taps, x), [], 0
    for size in sizes:
        y, history = fir_filter(taps, x[..., start : start + size], history)
        outs.append(y)
        start += size
    return torch.cat(outs, -1)


@pytest.mark.parametrize("n_taps", [1, 7, 32, 33, 101, 511, 2049])
def test_fir_filter_matches_lfilter_for_any_chunking(n_taps):
    rng = np.random.default_rng(n_taps)
    taps = rng.standard_normal(n_taps)
    x = rng.uniform(-1, 1, (2, 2, 12000))
    ref = signal.lfilter(taps, 1.0, x, axis=-1)
    scale = np.abs(taps).sum()
    t = torch.from_numpy(taps)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        xt = torch.from_numpy(x).to(dtype)
        for sizes in ([12000], [1] * 20 + [11980], [5, 700, 0, 3000, 8295], [n_taps // 2 + 1] * 12):
            sizes = sizes + [12000 - sum(sizes)] if sum(sizes) < 12000 else sizes
            got = stream(t, xt, sizes)
            err = float(np.max(np.abs(got.double().numpy() - ref)) / scale)
            assert err < tol, f"{n_taps} taps {dtype} chunks {sizes[:3]}: {err:.3g}"


def test_overlap_save_frame_groups_and_direct_agree(monkeypatch):
    monkeypatch.setattr(fir, "FRAME_SAMPLES", 3000)  # many frame groups on a short signal
    monkeypatch.setattr(fir, "CPU_FRAME_SAMPLES", 3000)
    rng = np.random.default_rng(1)
    taps = torch.from_numpy(rng.standard_normal(300))
    xx = torch.from_numpy(rng.uniform(-1, 1, (2, 20299)))
    ref = signal.lfilter(taps.numpy(), 1.0, xx.numpy(), axis=-1)[..., 299:]
    got = fir._overlap_save(taps, xx, 20000)
    assert float(np.max(np.abs(got.numpy() - ref))) < 1e-11
    got = fir._direct(taps, xx, 20000)
    assert float(np.max(np.abs(got.numpy() - ref))) < 1e-11


def test_cached_spectrum_follows_taps_changes():
    taps = torch.ones(129, dtype=torch.float64) / 129
    x = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (1, 5000)))
    first, _ = fir_filter(taps, x)
    taps.mul_(2.0)  # in place: the cached spectrum must not be reused
    second, _ = fir_filter(taps, x)
    assert torch.allclose(second, 2 * first, atol=1e-12)


def test_fft_size_is_a_power_of_two_above_twice_the_taps():
    for n in (64, 101, 511, 5000):
        size = fft_size(n)
        assert size >= 2 * n and size & (size - 1) == 0


def test_gradient_flows_through_fft_path():
    rng = np.random.default_rng(3)
    taps = torch.from_numpy(rng.standard_normal(129))
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 4000))).requires_grad_()
    g = rng.uniform(-1, 1, (2, 4000))
    y, _ = fir_filter(taps, x)
    (grad,) = torch.autograd.grad((y * torch.from_numpy(g)).sum(), x)
    ref = signal.lfilter(taps.numpy(), 1.0, g[:, ::-1], axis=-1)[:, ::-1]  # the adjoint
    assert float(np.max(np.abs(grad.numpy() - ref))) < 1e-10


def test_out_writes_into_slices_and_survives_aliasing():
    """`out=`: chunk outputs written into views of one big output equal lfilter; an `out`
    that is the input itself falls back to a copy (the FFT path reads x after writing)."""
    rng = np.random.default_rng(9)
    taps = torch.from_numpy(rng.standard_normal(301))
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 40000)))
    ref = signal.lfilter(taps.numpy(), 1.0, x.numpy(), axis=-1)
    out = torch.full((2, 40000), 5.0, dtype=torch.float64)
    history = fir_zeros_history(taps, x)
    for start in range(0, 40000, 15000):
        view = out[:, start : start + 15000]
        y, history = fir_filter(taps, x[:, start : start + 15000], history, out=view)
        assert y.data_ptr() == view.data_ptr()
    assert float(np.max(np.abs(out.numpy() - ref))) < 1e-10
    same = x.clone()
    y, _ = fir_filter(taps, same, out=same)
    assert float(np.max(np.abs(y.numpy() - ref))) < 1e-10
    with pytest.raises(ValueError, match="gradients"):
        fir_filter(taps, x.clone().requires_grad_(), out=torch.empty_like(x))
