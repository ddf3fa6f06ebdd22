"""Differentiable designs (dsp.design_torch) equal scipy.signal's / the RBJ cookbook's in
float64 (1e-9), are twice differentiable (gradgradcheck), and raw denominators stay stable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal
from torch.autograd import gradcheck, gradgradcheck

from audiofx_cli.dsp import design, design_torch

F64 = torch.float64
RATES = (8000, 44100, 48000)


def _close(got: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.max(np.abs(got.detach().numpy() - ref) / np.maximum(1.0, np.abs(ref))))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("btype", ["lowpass", "highpass"])
def test_butterworth_equals_scipy(rate, btype):
    for order in range(1, 11):
        for fraction in (0.0005, 0.01, 0.1, 0.3, 0.49):
            cutoff = fraction * rate
            ref = signal.butter(order, cutoff, btype, fs=rate, output="sos")
            got = design_torch.butter_sos(btype, torch.tensor(cutoff, dtype=F64), rate, order)
            assert _close(got, ref) < 1e-9, (order, cutoff)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("btype", ["bandpass", "bandstop"])
def test_butterworth_bands_equal_scipy(rate, btype):
    """(0.1, 0.4) x rate is centred on rate / 4: mirror-image poles tie, and scipy's
    rounding decides the order of sections (design_torch follows it)."""
    for order in range(1, 9):
        for low, high in ((0.001, 0.002), (0.01, 0.1), (0.1, 0.4), (0.3, 0.49), (0.002, 0.45)):
            edges = [low * rate, high * rate]
            ref = signal.butter(order, edges, btype, fs=rate, output="sos")
            got = design_torch.butter_sos(btype, edges, rate, order)
            assert _close(got, ref) < 1e-9, (order, edges)


@pytest.mark.parametrize("kind", design_torch.RBJ_KINDS)
def test_rbj_equals_design(kind):
    for freq in (20.0, 1000.0, 15000.0):
        for q in (0.1, 0.7071, 10.0):
            for gain in (-24.0, 0.0, 6.0):
                ref = design.rbj_biquad(kind, freq, 44100, q=q, gain_db=gain)
                got = design_torch.rbj_biquad(kind, freq, 44100, q, gain)
                assert _close(got, ref) < 1e-12


@pytest.mark.parametrize(
    "pass_type,cutoff",
    [
        ("lowpass", 1000.0),
        ("highpass", 3000.0),
        ("bandpass", [500.0, 4000.0]),
        ("bandstop", [500.0, 4000.0]),
    ],
)
def test_firwin_equals_scipy(pass_type, cutoff):
    for taps in (11, 31, 101, 102):
        if taps % 2 == 0 and pass_type in ("highpass", "bandstop"):
            continue
        for window in ("hamming", ("kaiser", 8.6), "blackman"):
            ref = signal.firwin(taps, cutoff, window=window, pass_zero=pass_type, fs=16000)
            win = torch.from_numpy(design.window(window, taps))
            got = design_torch.firwin(taps, cutoff, 16000, pass_type, win)
            assert _close(got, ref) < 1e-12


@pytest.mark.parametrize(
    "btype,edges", [("lowpass", [1000.0]), ("highpass", [300.0]), ("bandpass", [300.0, 3000.0])]
)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_butterworth_twice_differentiable(btype, edges, order):
    c = torch.tensor(edges, dtype=F64, requires_grad=True)

    def fn(c):
        return design_torch.butter_sos(
            btype, list(c.unbind()) if c.numel() > 1 else c[0], 16000, order
        )

    assert gradcheck(fn, (c,)) and gradgradcheck(fn, (c,))


@pytest.mark.parametrize("kind", design_torch.RBJ_KINDS)
def test_rbj_twice_differentiable(kind):
    p = torch.tensor([1000.0, 1.4, 6.0], dtype=F64, requires_grad=True)

    def fn(p):
        return design_torch.rbj_biquad(kind, p[0], 16000, p[1], p[2])

    assert gradcheck(fn, (p,)) and gradgradcheck(fn, (p,))


def test_firwin_twice_differentiable():
    win = torch.from_numpy(design.window("hamming", 31))
    c = torch.tensor([500.0, 4000.0], dtype=F64, requires_grad=True)

    def fn(c):
        return design_torch.firwin(31, list(c.unbind()), 16000, "bandpass", win)

    assert gradcheck(fn, (c,)) and gradgradcheck(fn, (c,))


def test_stable_sections_keep_poles_inside_the_unit_circle():
    coords = torch.from_numpy(np.random.default_rng(0).normal(0, 30, (200, 2)))
    sos = design_torch.stable_sections(torch.ones(200, 3, dtype=F64), coords).numpy()
    radius = max(np.max(np.abs(np.roots(row[3:]))) for row in sos)
    assert radius < 1.0
    stable = signal.butter(6, 0.05, output="sos")
    back = design_torch.stable_sections(
        torch.from_numpy(stable[:, :3]), torch.from_numpy(design_torch.section_coords(stable))
    )
    assert _close(back, stable) < 1e-12


def test_poly_product_equals_numpy():
    rows = np.random.default_rng(1).standard_normal((3, 3))
    ref = np.polymul(np.polymul(rows[0], rows[1]), rows[2])
    assert _close(design_torch.poly_product(torch.from_numpy(rows)), ref) < 1e-14
