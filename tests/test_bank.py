"""Filterbank lanes (`audiofx_cli.dsp.bank`, complex one-pole cascades on the lanes engine)
against scipy.signal.lfilter with complex coefficients in float64, one filter at a time.

Reference per lane: `order` passes of lfilter([g], [1, -p], .) on the lane's input row (the
one-pole y[t] = p y[t-1] + g u[t]), output post * Re(y) or post * |y|.
Tolerances: float64 I/O 1e-12 relative to the reference's peak, float32 I/O 1e-6 (after the
float32 rounding of the input, which the reference sees too). Chunked runs, thread counts and
lane packing must not change a single bit.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from scipy import signal

from audiofx_cli.dsp import bank


def make_bank(rng: np.random.Generator, lanes: int, rows: int) -> dict:
    radius = rng.uniform(0.5, 0.9995, lanes)  # up to AMT's lowest-frequency bands
    angle = rng.uniform(0.0, np.pi, lanes)
    return {
        "x_row": rng.integers(0, rows, lanes),
        "y_row": rng.permutation(lanes),
        "pole": radius * np.exp(1j * angle),
        "gain": 1.0 - radius,
        "post": rng.uniform(0.5, 2.0, lanes),
        "envelope": rng.random(lanes) < 0.5,
    }


def reference(x: np.ndarray, b: dict, order: int) -> np.ndarray:
    y = np.zeros((len(b["pole"]), x.shape[1]))
    for lane, p in enumerate(b["pole"]):
        u = x[b["x_row"][lane]].astype(np.complex128)
        for _ in range(order):
            u = signal.lfilter([b["gain"][lane]], [1.0, -p], u)
        out = np.abs(u) if b["envelope"][lane] else u.real
        y[b["y_row"][lane]] = b["post"][lane] * out
    return y


def run(x: np.ndarray, b: dict, order: int, chunks=(), threads: int = 1, dtype=np.float64):
    lanes = len(b["pole"])
    x = x.astype(dtype)
    y = np.empty((lanes, x.shape[1]), dtype=dtype)
    state = np.zeros((lanes, order, 2))
    edges = [0, *chunks, x.shape[1]]
    for a, e in zip(edges[:-1], edges[1:], strict=True):
        xc, yc = np.ascontiguousarray(x[:, a:e]), np.empty((lanes, e - a), dtype=dtype)
        args = (b["x_row"], b["y_row"], b["pole"], b["gain"], b["post"], b["envelope"])
        bank.run(xc, yc, *args, state, threads)
        y[:, a:e] = yc
    return y, state


@pytest.mark.parametrize("order", [1, 2, 4])
@pytest.mark.parametrize("lanes", [1, 5, 8, 13])
def test_bank_matches_scipy_lfilter_per_filter(order, lanes):
    rng = np.random.default_rng(order * 100 + lanes)
    x = rng.uniform(-1, 1, (3, 3001))
    b = make_bank(rng, lanes, 3)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        xr = x.astype(dtype).astype(np.float64)  # the reference sees the same rounded input
        ref = reference(xr, b, order)
        got, _ = run(x, b, order, dtype=dtype)
        assert got.dtype == dtype
        err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        assert err < tol, (dtype, err)


def test_chunks_threads_and_packing_do_not_change_a_bit():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5003))
    b = make_bank(rng, 19, 2)
    whole, state = run(x, b, 4)
    chunked, state_c = run(x, b, 4, chunks=(1, 4, 7, 8, 1000, 1003, 4999))
    threaded, _ = run(x, b, 4, threads=2)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(state_c, state)
    np.testing.assert_array_equal(threaded, whole)
    # one lane alone computes what it computed among 18 others
    one = {k: v[[11]] for k, v in b.items()}
    one["y_row"] = np.array([0])
    alone, _ = run(x, one, 4)
    np.testing.assert_array_equal(alone[0], whole[b["y_row"][11]])


def test_state_is_the_complex_state_of_every_stage():
    """After a run, state[l, k] is (Re, Im) of stage k's last output: continuing from it with
    scipy's lfilter zi gives the same signal."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 400))
    b = make_bank(rng, 1, 1)
    b["envelope"][:] = False
    _, state = run(x[:, :250], b, 2)
    zi = state[0, :, 0] + 1j * state[0, :, 1]
    p, g = b["pole"][0], b["gain"][0]
    u = x[0, 250:].astype(np.complex128)
    for k in range(2):  # lfilter's zi for y = p y[-1] + g u is p * y[-1]
        u, _ = signal.lfilter([g], [1.0, -p], u, zi=[p * zi[k]])
    rest, _ = run(x, b, 2)
    np.testing.assert_allclose(rest[0, 250:], b["post"][0] * u.real, rtol=0, atol=1e-12)


def test_empty_inputs_are_a_no_op():
    b = make_bank(np.random.default_rng(0), 3, 1)
    y, state = run(np.zeros((1, 0)), b, 1)
    assert y.shape == (3, 0) and not state.any()


def random_sections(rng: np.random.Generator, lanes: int, n_sections: int) -> np.ndarray:
    """(lanes, n_sections, 6): stable sections, poles up to radius 0.9995, any zeros."""
    sos = np.zeros((lanes, n_sections, 6))
    radius = rng.uniform(0.3, 0.9995, (lanes, n_sections))
    angle = rng.uniform(0.0, np.pi, (lanes, n_sections))
    sos[..., :3] = rng.uniform(-1, 1, (lanes, n_sections, 3))
    sos[..., 3] = 1.0
    sos[..., 4] = -2 * radius * np.cos(angle)
    sos[..., 5] = radius**2
    return sos


def run_sos(x, x_row, sos, chunks=(), threads=1, dtype=np.float64):
    lanes = sos.shape[0]
    x = x.astype(dtype)
    y = np.empty((lanes, x.shape[1]), dtype=dtype)
    state = np.zeros((lanes, sos.shape[1], 2))
    edges = [0, *chunks, x.shape[1]]
    for a, e in zip(edges[:-1], edges[1:], strict=True):
        yc = np.empty((lanes, e - a), dtype=dtype)
        bank.run_sos(
            np.ascontiguousarray(x[:, a:e]), yc, x_row, np.arange(lanes), sos, state, threads
        )
        y[:, a:e] = yc
    return y, state


@pytest.mark.parametrize("n_sections", [1, 2, 3])
def test_sos_bank_matches_scipy_sosfilt_per_lane(n_sections):
    rng = np.random.default_rng(n_sections)
    x = rng.uniform(-1, 1, (2, 4001))
    sos = random_sections(rng, 11, n_sections)
    x_row = rng.integers(0, 2, 11)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        xr = x.astype(dtype).astype(np.float64)
        got, state = run_sos(x, x_row, sos, dtype=dtype)
        for lane in range(11):
            zi = np.zeros((n_sections, 2))
            ref, zf = signal.sosfilt(sos[lane], xr[x_row[lane]], zi=zi)
            err = np.max(np.abs(got[lane] - ref)) / np.max(np.abs(ref))
            assert err < tol, (dtype, lane, err)
            if dtype == np.float64:  # the state is scipy's zf
                np.testing.assert_allclose(state[lane], zf, rtol=0, atol=1e-9 * np.abs(zf).max())


def test_sos_bank_chunks_and_threads_do_not_change_a_bit():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 3001))
    sos = random_sections(rng, 10, 2)
    x_row = rng.integers(0, 3, 10)
    whole, state = run_sos(x, x_row, sos)
    chunked, state_c = run_sos(x, x_row, sos, chunks=(1, 2, 6, 7, 1500, 3000))
    threaded, _ = run_sos(x, x_row, sos, threads=2)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(state_c, state)
    np.testing.assert_array_equal(threaded, whole)


def exp_kernel():
    """A kernel whose output is the adaptation kernel's exponential of its input."""
    from audiofx_cli.dsp import bank_kernels as bk
    from audiofx_cli.dsp.iir_kernels import KERNEL_NAME, KERNEL_SIGNATURE
    from audiofx_cli.dsp.jit import compile_ir

    def body(out, samples, state, tags):
        return [
            [bk._exp(out, x, f"e.{t}.{g}") for g, x in enumerate(xs)]
            for xs, t in zip(samples, tags, strict=True)
        ]

    ir = bk._kernel_ir(1, "float64", "float64", [], 0, body)
    return KERNEL_SIGNATURE(compile_ir(ir, KERNEL_NAME))


def test_vector_exp_is_within_2_ulp_of_libm_and_saturates():
    kernel = exp_kernel()
    rng = np.random.default_rng(11)
    edges = [0.0, 1e-300, -1e-300, 709.78, -708.4, -745.1, 710.0, 1e6, -1e6, np.nan]
    x = np.concatenate([rng.uniform(-745, 709.78, 40000), rng.uniform(-5, 5, 40000), edges])
    x = np.ascontiguousarray(x[: len(x) // 4 * 4].reshape(4, -1))
    y = np.empty_like(x)
    ptrs = ctypes.c_void_p * 4
    xs, ys = ptrs(*[r.ctypes.data for r in x]), ptrs(*[r.ctypes.data for r in y])
    kernel(0, 0, xs, ys, x.shape[1])
    with np.errstate(over="ignore"):
        want = np.exp(x)
    normal = np.isfinite(want) & (want > 1e-300)
    ulp = np.abs(y[normal] - want[normal]) / np.spacing(want[normal])
    assert ulp.max() <= 2, ulp.max()
    assert np.all(y[x > 709.79] == np.inf) and np.all(y[x < -745.2] == 0.0)
    assert np.all(np.isfinite(y[np.isnan(x)]))  # NaN lanes stay harmless (discarded)


def adapt_reference(x, c, limited, state):
    """comp_adaptloop as written (float64, scalar), with the kernel's constant layout."""
    gain, minlvl, corr, mult = c[:4]
    loops = np.asarray(c[4:]).reshape(-1, 5)
    y = np.empty_like(x)
    for r in range(x.shape[0]):
        for t in range(x.shape[1]):
            v = max(gain * x[r, t], minlvl)
            for k, (a1, b0, factor, expfac, offset) in enumerate(loops):
                v = v / state[r, k]
                if limited and v > 1.0:
                    v = factor / (1.0 + np.exp(expfac * (v - 1.0))) - offset
                state[r, k] = a1 * state[r, k] + b0 * v
            y[r, t] = (v - corr) * mult
    return y


@pytest.mark.parametrize("limited", [False, True])
def test_adaptation_lanes_match_the_scalar_loops(limited):
    from audiofx_cli.dsp.auditory import ADAPT_PRESETS, adapt_design, adapt_zeros_state

    design = adapt_design(16000, *ADAPT_PRESETS["dau1997"])
    loops = np.stack([design.a1, design.b0, design.factor, design.expfac, design.offset], 1)
    c = np.concatenate([[design.gain, design.minlvl, design.corr, design.mult], loops.ravel()])
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal((5, 1203))) * np.where(np.arange(1203) % 400 < 100, 1.0, 1e-3)
    ref = adapt_reference(x, c, limited, adapt_zeros_state(design, 5))
    whole = np.empty_like(x)
    state = adapt_zeros_state(design, 5)
    bank.run_adapt(x, whole, c, limited, state)
    np.testing.assert_allclose(whole, ref, rtol=1e-12, atol=1e-9 * np.abs(ref).max())
    chunked, state2 = np.empty_like(x), adapt_zeros_state(design, 5)
    for a, e in ((0, 1), (1, 6), (6, 600), (600, 1203)):
        part = np.empty((5, e - a))
        bank.run_adapt(np.ascontiguousarray(x[:, a:e]), part, c, limited, state2, threads=2)
        chunked[:, a:e] = part
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(state2, state)
