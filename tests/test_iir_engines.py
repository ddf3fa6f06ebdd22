"""IIR engines (SIMD lanes, time-segmented lanes, block state-space scan) against scipy.signal
in float64, streaming state carry, time-parallel == sequential, gradients, kernel cache.

Reference: scipy.signal.sosfilt in float64 on the same float64 input, with the same zi.
Tolerances: float64 I/O 1e-10 relative to the reference's peak (the scan engine: 1e-6: its
block matrices turn the random, unphysical initial states used here into outputs 175x the
input with ~1e-8 relative rounding; from zero state it stays within 1e-9); float32 I/O 1e-5.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli.dsp import iir_cpu, iir_kernels
from audiofx_cli.dsp.iir import choose_engine, sos_zeros_state, sosfilt
from audiofx_cli.dsp.scan import sosfilt_scan
from audiofx_cli.dsp.statespace import decay_length

ENGINES = ["lanes", "scan", "scipy"]


def random_sos(rng: np.random.Generator, n_sections: int, max_radius: float = 0.999) -> np.ndarray:
    """Stable random sections: conjugate pole pairs inside max_radius, zeros anywhere near."""
    rows = []
    for _ in range(n_sections):
        r, theta = rng.uniform(0.3, max_radius), rng.uniform(0.01, np.pi - 0.01)
        zr, ztheta = rng.uniform(0.2, 1.2), rng.uniform(0, np.pi)
        a = [1.0, -2 * r * np.cos(theta), r * r]
        b = np.array([1.0, -2 * zr * np.cos(ztheta), zr * zr]) * rng.uniform(0.1, 1.0)
        rows.append([*b, *a])
    return np.array(rows)


CASCADES = {
    "random6": random_sos(np.random.default_rng(1), 6),
    "butter8_20hz_192k": signal.butter(8, 20.0, "highpass", fs=192000, output="sos"),
    "api_chain": np.vstack(
        [signal.cheby1(4, 1.0, f, "highpass", fs=44100, output="sos") for f in (20, 60, 65)]
        + [signal.butter(4, f, fs=44100, output="sos") for f in (5000, 4900, 4850)]
    ),
    "one_section": random_sos(np.random.default_rng(2), 1, 0.9),
    # every section kind of the normalised kernel: [1, b1, 1] (u), [1, b1, 0] (z),
    # first order with a2 = 0 (f), any numerator (g); random states make q of 'f' non-zero
    "kinds_mixed": np.vstack(
        [
            signal.butter(5, 0.2, output="sos"),
            [[0.3, 0.2, 0.0, 1.0, -0.5, 0.0]],
            random_sos(np.random.default_rng(4), 1),
            signal.cheby1(2, 0.5, 0.01, "highpass", output="sos"),
        ]
    ),
    "long40": random_sos(np.random.default_rng(3), 40, 0.99),
}


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-300))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CASCADES))
def test_engine_matches_scipy_float64(engine, name):
    sos = CASCADES[name]
    rng = np.random.default_rng(len(name))
    x = rng.uniform(-1, 1, (3, 20000))
    zi = rng.standard_normal((sos.shape[0], 3, 2)) * 0.1
    ref, zref = signal.sosfilt(sos, x, zi=zi)
    tol64 = 1e-6 if engine == "scan" else 1e-10
    for dtype, tol in ((torch.float64, tol64), (torch.float32, 1e-5)):
        xt = torch.from_numpy(x).to(dtype)
        y, zf = sosfilt(torch.from_numpy(sos), xt, torch.from_numpy(zi), engine=engine)
        assert y.dtype == dtype and y.shape == xt.shape
        ref_d = signal.sosfilt(sos, xt.double().numpy(), zi=zi)[0]  # same (rounded) input
        err = rel_err(y.double().numpy(), ref_d)
        assert err < tol, f"{engine} {name} {dtype}: rel err {err:.3g}"
        if dtype == torch.float64:
            zerr = float(np.max(np.abs(zf.numpy() - zref)) / np.max(np.abs(ref)))
            assert zerr < tol64, f"{engine} {name}: state rel err {zerr:.3g}"


def test_near_unit_circle_float32_io_stays_within_1e5():
    """20 Hz order-8 high-pass at 192 kHz, float32 in/out, long signal: every engine."""
    sos = CASCADES["butter8_20hz_192k"]
    x = np.random.default_rng(7).uniform(-1, 1, (2, 400000)).astype(np.float32)
    ref = signal.sosfilt(sos, x.astype(np.float64))
    for engine in ENGINES:
        y, _ = sosfilt(torch.from_numpy(sos), torch.from_numpy(x), engine=engine)
        assert rel_err(y.double().numpy(), ref) < 1e-5, engine


@pytest.mark.parametrize("engine", ["lanes", "scan"])
def test_streaming_state_carry_any_chunking(engine):
    sos = torch.from_numpy(CASCADES["api_chain"])
    x = torch.from_numpy(np.random.default_rng(5).uniform(-1, 1, (2, 3, 5000)))
    whole, zwhole = sosfilt(sos, x, sos_zeros_state(sos, x), engine=engine)
    rng = np.random.default_rng(6)
    for sizes in ([1] * 300 + [4700], [7, 0, 1000, 3993], list(rng.integers(0, 600, 30))):
        state, outs, start = sos_zeros_state(sos, x), [], 0
        for size in sizes:
            y, state = sosfilt(sos, x[..., start : start + int(size)], state, engine=engine)
            outs.append(y)
            start += int(size)
        if start < x.shape[-1]:
            y, state = sosfilt(sos, x[..., start:], state, engine=engine)
            outs.append(y)
        got = torch.cat(outs, -1)
        assert float((got - whole).abs().max()) < 1e-10 * float(whole.abs().max())
        assert float((state - zwhole).abs().max()) < 1e-9


def test_engines_can_be_mixed_chunk_by_chunk():
    sos = torch.from_numpy(CASCADES["random6"])
    x = torch.from_numpy(np.random.default_rng(8).uniform(-1, 1, (2, 9000)))
    ref = signal.sosfilt(sos.numpy(), x.numpy())
    state, outs = sos_zeros_state(sos, x), []
    for i, chunk in enumerate(x.split(1000, -1)):
        y, state = sosfilt(sos, chunk, state, engine=ENGINES[i % 3])
        outs.append(y)
    assert rel_err(torch.cat(outs, -1).numpy(), ref) < 1e-10


@pytest.mark.parametrize("name", ["random6", "api_chain", "butter8_20hz_192k"])
def test_time_parallel_segments_equal_sequential(name):
    sos = CASCADES[name]
    x = np.random.default_rng(9).uniform(-1, 1, (1, 600001))
    zi = np.random.default_rng(10).standard_normal((sos.shape[0], 1, 2))
    seq, zseq = iir_cpu.sosfilt_lanes(sos, x, zi, segments=1)
    for segments in (2, 3, 8):
        par, zpar = iir_cpu.sosfilt_lanes(sos, x, zi, threads=2, segments=segments)
        assert rel_err(par, seq) < 1e-12, f"{segments} segments"
        assert float(np.max(np.abs(zpar - zseq))) < 1e-10 * float(np.max(np.abs(seq)))
    # auto mode segments a 60 s mono file at 44.1 kHz (the decay length allowing)
    assert iir_cpu.segments_for(sos, 1, 44100 * 60, threads=2) > 1 or name.startswith("butter8")


def test_scan_equals_sequential_for_any_block_length():
    sos = CASCADES["api_chain"]
    x = torch.from_numpy(np.random.default_rng(11).uniform(-1, 1, (2, 10007)))
    seq, zseq = iir_cpu.sosfilt_lanes(sos, x.numpy(), None, segments=1)
    for block in (16, 100, 256):
        y, z = sosfilt_scan(sos, x, None, block=block)
        assert rel_err(y.numpy(), seq) < 1e-10, block
        assert float((z - torch.from_numpy(zseq)).abs().max()) < 1e-9


@pytest.mark.parametrize("engine", ENGINES)
def test_gradient_is_the_time_reversed_filter(engine):
    sos = CASCADES["random6"]
    x = torch.from_numpy(np.random.default_rng(12).uniform(-1, 1, (2, 3000))).requires_grad_()
    g = np.random.default_rng(13).uniform(-1, 1, (2, 3000))
    y, _ = sosfilt(torch.from_numpy(sos), x, engine=engine)
    (grad,) = torch.autograd.grad((y * torch.from_numpy(g)).sum(), x)
    ref = signal.sosfilt(sos, g[:, ::-1])[:, ::-1]
    assert rel_err(grad.numpy(), ref) < 1e-10


def test_gradcheck_small():
    sos = torch.from_numpy(CASCADES["one_section"])
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sosfilt(sos, v, engine="lanes")[0], (x,))


def test_engine_choice_and_override(monkeypatch):
    x = torch.zeros(1, 10)
    assert choose_engine(x) == ("lanes" if iir_kernels.available() else "scipy")
    monkeypatch.setenv("AUDIOFX_IIR_ENGINE", "scan")
    assert choose_engine(x) == "scan"
    with pytest.raises(ValueError, match="unknown IIR engine"):
        choose_engine(x, "fast")


def test_decay_length_bounds_the_zero_input_response():
    sos = CASCADES["butter8_20hz_192k"]
    n = decay_length(sos)
    assert n is not None
    zi = np.ones((sos.shape[0], 2))
    zir, _ = signal.sosfilt(sos, np.zeros(n + 1000), zi=zi)
    assert np.max(np.abs(zir[n:])) < 1e-14 * np.max(np.abs(zir))
    assert decay_length(sos, limit=1024) is None


def test_compiled_kernels_are_cached_on_disk(tmp_path):
    code = (
        "import numpy as np; from audiofx_cli.dsp import iir_cpu;"
        "y, _ = iir_cpu.sosfilt_lanes(np.array([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1]]),"
        " np.ones((3, 50)), None); print(repr(float(y.sum())))"
    )
    env = {"AUDIOFX_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        for _ in range(2)
    ]
    assert list((tmp_path / "kernels").glob("sos_*.o"))
    ref = signal.sosfilt([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1]], np.ones((3, 50))).sum()
    for run in runs:
        assert abs(float(run.stdout) - ref) < 1e-12


def test_normalised_plan_kinds_and_fallbacks():
    """The lanes engine normalises sections (b0 = 1, gains applied once) and picks the cheaper
    kernel per numerator; cascades it cannot normalise fall back to the plain kernel. Every
    case equals scipy float64 from a random state."""
    cases = {
        "kinds_mixed": (CASCADES["kinds_mixed"], "uuzfgu"),
        "api_chain": (CASCADES["api_chain"], "u" * 12),
        "random6": (CASCADES["random6"], "g" * 6),
        "b0_zero": (np.vstack([CASCADES["random6"][:2], [[0.0, 0.5, 0.2, 1.0, -0.3, 0.1]]]), ""),
        "gain_underflow": (np.tile([[1e-10, 2e-10, 1e-10, 1.0, -0.5, 0.1]], (20, 1)), ""),
        "long40": (CASCADES["long40"], ""),
    }
    rng = np.random.default_rng(21)
    for name, (sos, kinds) in cases.items():
        plan = iir_cpu.plan_for(np.ascontiguousarray(sos, dtype=np.float64))
        assert plan.kinds == kinds, name
        x = rng.uniform(-1, 1, (5, 3001))
        zi = rng.standard_normal((sos.shape[0], 5, 2)) * 0.1
        ref, zref = signal.sosfilt(sos, x, zi=zi)
        y, zf = iir_cpu.sosfilt_lanes(sos, x, zi, threads=2, segments=1)
        peak = max(float(np.max(np.abs(ref))), 1e-300)
        assert rel_err(y, ref) < 1e-10, name
        assert float(np.max(np.abs(zf - zref))) < 1e-10 * peak, name


@pytest.mark.parametrize("lanes,width", [(4, 4), (8, 4), (8, 8)])
def test_kernel_variants_match_scipy(lanes, width):
    """Every lane layout of the kernel (1 or 2 groups of 4, or 8-wide) with a remainder loop."""
    import ctypes

    sos = CASCADES["api_chain"]
    coef = np.ascontiguousarray(
        np.stack([sos[:, 0], sos[:, 1], sos[:, 2], -sos[:, 4], -sos[:, 5]], 1)
    )
    x = np.random.default_rng(14).uniform(-1, 1, (lanes, 1003))
    y = np.empty_like(x)
    state = np.zeros((sos.shape[0], 2, lanes))
    kernel = iir_kernels.get_kernel(sos.shape[0], lanes, "float64", "float64", width)
    rows = [(ctypes.c_void_p * lanes)(*[a[i].ctypes.data for i in range(lanes)]) for a in (x, y)]
    kernel(coef.ctypes.data, state.ctypes.data, rows[0], rows[1], x.shape[1])
    ref, zref = signal.sosfilt(sos, x, zi=np.zeros((sos.shape[0], lanes, 2)))
    assert rel_err(y, ref) < 1e-12
    assert np.max(np.abs(state.transpose(0, 2, 1) - zref)) < 1e-9


@pytest.mark.parametrize("engine", ENGINES)
def test_out_writes_into_slices_of_a_bigger_signal(engine):
    """`out=` (how run_tensor avoids temporaries): chunk outputs written into views of one
    big output equal scipy float64, for every engine; untouched parts stay untouched."""
    sos = CASCADES["api_chain"]
    x = np.random.default_rng(11).uniform(-1, 1, (3, 70000)).astype(np.float32)
    ref = signal.sosfilt(sos, x.astype(np.float64))
    out = torch.full((3, 70000 + 10), 7.0)
    state = sos_zeros_state(torch.from_numpy(sos), torch.from_numpy(x))
    for start in range(0, 70000, 33000):
        chunk = torch.from_numpy(x[:, start : start + 33000])
        view = out[:, 5 + start : 5 + start + chunk.shape[-1]]
        y, state = sosfilt(torch.from_numpy(sos), chunk, state, engine=engine, out=view)
        assert y.data_ptr() == view.data_ptr()
    assert rel_err(out[:, 5:-5].double().numpy(), ref) < 1e-5
    assert bool((out[:, :5] == 7).all() and (out[:, -5:] == 7).all())


def test_out_may_be_the_input_and_refuses_gradients():
    sos = torch.from_numpy(CASCADES["random6"])
    x = torch.from_numpy(np.random.default_rng(12).uniform(-1, 1, (2, 50000)))
    ref = signal.sosfilt(sos.numpy(), x.numpy())
    y, _ = sosfilt(sos, x, out=x)
    assert y.data_ptr() == x.data_ptr() and rel_err(x.numpy(), ref) < 1e-10
    with pytest.raises(ValueError, match="gradients"):
        sosfilt(sos, x.clone().requires_grad_(), out=torch.empty_like(x))


def _filter_in_child(queue) -> None:  # runs in a forked child (see the test below)
    from audiofx_cli.dsp import omp

    sos = CASCADES["api_chain"]
    x = np.random.default_rng(30).uniform(-1, 1, (8, 20000))
    y, _ = iir_cpu.sosfilt_lanes(sos, x, None, threads=2, segments=1)
    queue.put((omp.available(), y))


def test_openmp_dispatch_equals_the_thread_pool_and_survives_fork(monkeypatch):
    """Lane groups dispatched through libgomp (audiofx_cli.dsp.omp) give the same bits as the
    Python thread pool; a child forked after libgomp started its threads does not use it (its
    threads are gone) and still filters correctly."""
    import multiprocessing

    from audiofx_cli.dsp import omp

    if not omp.available():
        pytest.skip("no libgomp next to torch here: the thread pool is the only path")
    sos = CASCADES["api_chain"]
    x = np.random.default_rng(30).uniform(-1, 1, (8, 20000))
    ref = signal.sosfilt(sos, x)
    via_omp, _ = iir_cpu.sosfilt_lanes(sos, x, None, threads=2, segments=1)
    segmented, _ = iir_cpu.sosfilt_lanes(sos, x[:1], None, threads=2, segments=4)
    with monkeypatch.context() as patch:
        patch.setattr(omp, "run_calls", lambda calls, threads: False)
        via_pool, _ = iir_cpu.sosfilt_lanes(sos, x, None, threads=2, segments=1)
        segmented_pool, _ = iir_cpu.sosfilt_lanes(sos, x[:1], None, threads=2, segments=4)
    assert np.array_equal(via_omp, via_pool) and np.array_equal(segmented, segmented_pool)
    assert rel_err(via_omp, ref) < 1e-10 and rel_err(segmented, ref[:1]) < 1e-10
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_filter_in_child, args=(queue,))
    child.start()
    used_omp, y_child = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0 and not used_omp
    assert np.array_equal(y_child, via_omp)


def test_lanes_engine_from_several_threads_at_once():
    """Library callers may filter from several Python threads: each thread's OpenMP (or pool)
    dispatch runs its own lane groups; every result equals scipy and nothing hangs."""
    import threading

    sos = CASCADES["api_chain"]
    x = torch.from_numpy(np.random.default_rng(31).uniform(-1, 1, (8, 50000)))
    ref = signal.sosfilt(sos, x.numpy())
    errors: list[float] = []

    def work() -> None:
        for _ in range(5):
            y, _ = sosfilt(torch.from_numpy(sos), x, engine="lanes")
            errors.append(rel_err(y.numpy(), ref))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 20 and max(errors) < 1e-10
