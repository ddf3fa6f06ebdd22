"""`audiofx bench` on tiny configurations: CSV columns and rows, speed-ups from the same run,
the error column against a float64 scipy reference (catches a deliberately wrong backend),
optional backends skipped with a note, bad arguments (exit 2), the plot's install hint, the
memory refusal, the file and chain suites, and the sweep script. No timing assertions."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import types

import numpy as np
import pytest
from scipy import signal

from audiofx_cli.bench import backends as bk
from audiofx_cli.bench.report import CSV_COLUMNS, read_csv
from audiofx_cli.bench.runner import BenchOptions, check_memory, estimate_bytes, make_signal, plan
from audiofx_cli.bench.suites import SUITES
from audiofx_cli.cli.main import app
from audiofx_cli.errors import UsageError
from tests.conftest import ROOT

RATE = 44100
TINY = ["--duration", "0.05", "--repeat", "2", "--warmup", "1", "--device", "cpu"]
ISSUE_COLUMNS = [
    "suite",
    "backend",
    "device",
    "channels",
    "duration_s",
    "samples",
    "repeat",
    "median_s",
    "min_s",
    "max_s",
    "msamples_per_s",
    "speedup_vs_scipy",
    "rel_error",
    "peak_mem_mb",
    "cpu_model",
    "threads",
    "torch_version",
    "device_name",
]


def _bench(runner, tmp_path, *args):
    csv = tmp_path / "bench.csv"
    result = runner.invoke(app, ["bench", *args, "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    return read_csv(csv), result


@pytest.fixture(scope="module")
def iir_fir_rows(tmp_path_factory):
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("bench")
    rows, result = _bench(
        CliRunner(),
        tmp,
        "--suite",
        "iir,fir",
        "--channels",
        "1,2",
        "--backends",
        "audiofx,scipy,scipy-sos,scipy-oa,torchaudio",
        *TINY,
    )
    return rows, result.stdout


def test_csv_columns_and_one_row_per_suite_backend_channels(iir_fir_rows):
    rows, _ = iir_fir_rows
    assert all(col in CSV_COLUMNS for col in ISSUE_COLUMNS)
    assert list(rows[0]) == CSV_COLUMNS
    # iir: audiofx, scipy, scipy-sos, torchaudio; fir: audiofx, scipy, scipy-oa, torchaudio
    assert len(rows) == (4 + 4) * 2
    keys = {(r["suite"], r["backend"], r["channels"]) for r in rows}
    assert len(keys) == len(rows)
    assert {r["backend"] for r in rows if r["suite"] == "iir"} == {
        "audiofx",
        "scipy",
        "scipy-sos",
        "torchaudio",
    }
    for r in rows:
        samples = int(r["channels"]) * round(0.05 * RATE)
        assert int(r["samples"]) == samples
        median, low, high = float(r["median_s"]), float(r["min_s"]), float(r["max_s"])
        assert 0 < low <= median <= high
        assert float(r["msamples_per_s"]) == pytest.approx(samples / median / 1e6, rel=1e-9)
        assert r["repeat"] == "2" and r["device"] == "cpu" and r["cpu_model"]
        assert r["mem_method"] and math.isfinite(float(r["peak_mem_mb"]))


def test_every_backend_is_within_tolerance_of_the_float64_reference(iir_fir_rows):
    rows, _ = iir_fir_rows
    for r in rows:
        # float64 arithmetic (scipy lfilter, audiofx's float64-state sections) and float32 FIR
        # convolutions land near float32 rounding; float32 recursions (scipy-sos, torchaudio) on
        # these order-2 filters stay well under 1e-4 of the peak.
        limit = 1e-4 if r["backend"] in ("scipy-sos", "torchaudio") else 1e-5
        assert r["flag"] == "ok", r
        assert 0 <= float(r["rel_error"]) < limit, r


def test_speedups_come_from_the_same_runs_medians(iir_fir_rows):
    rows, _ = iir_fir_rows
    scipy = {
        (r["suite"], r["channels"]): float(r["median_s"]) for r in rows if r["backend"] == "scipy"
    }
    for r in rows:
        expected = scipy[(r["suite"], r["channels"])] / float(r["median_s"])
        assert float(r["speedup_vs_scipy"]) == pytest.approx(expected, rel=1e-9)
        if r["backend"] == "scipy":
            assert float(r["speedup_vs_scipy"]) == 1.0


def test_output_states_designs_and_skips(iir_fir_rows):
    _, out = iir_fir_rows
    assert "HP Chebyshev I 1500 Hz order 2 ripple 0.1 dB" in out
    assert "error vs scipy.signal.sosfilt" in out


class _ScaledSOS(bk.Backend):
    """Test-only: the correct cascade, then 1 % too loud (a subtle, realistic bug)."""

    name = "broken"
    kinds = ("iir",)

    def prepare(self, case):
        sos = case.suite.fused_sos(case.rate_hz)
        return bk.FunctionRun(lambda: (signal.sosfilt(sos, case.x) * 1.01).astype(np.float32))


class _NaNs(bk.Backend):
    name = "nans"
    kinds = ("iir",)

    def prepare(self, case):
        return bk.FunctionRun(lambda: np.full_like(case.x, np.nan))


def test_error_column_flags_a_wrong_backend(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(bk.BACKENDS, "broken", _ScaledSOS())
    monkeypatch.setitem(bk.BACKENDS, "nans", _NaNs())
    rows, result = _bench(
        runner,
        tmp_path,
        "--suite",
        "iir",
        "--channels",
        "2",
        "--backends",
        "scipy,broken,nans",
        *TINY,
    )
    by = {r["backend"]: r for r in rows}
    assert by["scipy"]["flag"] == "ok"
    assert by["broken"]["flag"] == "WRONG"
    assert float(by["broken"]["rel_error"]) == pytest.approx(0.01, rel=0.05)
    assert by["nans"]["flag"] == "WRONG" and by["nans"]["rel_error"] == "nan"
    assert "WRONG" in result.stdout


def test_api_suite_states_torchfx_defaults_and_flags_torchaudio_nan(runner, tmp_path):
    rows, result = _bench(
        runner, tmp_path, "--suite", "api", "--channels", "1", "--backends", "scipy,torchaudio",
        *TINY,
    )  # fmt: skip
    assert "order 4, ripple 0.1 dB" in result.stdout and "order 5" in result.stdout
    assert len(SUITES["api"].fused_sos(RATE)) == 15
    by = {r["backend"]: r for r in rows}
    assert by["scipy"]["flag"] == "ok" and float(by["scipy"]["rel_error"]) < 1e-5
    # torchaudio's float32 (b, a) recursion of the 20 Hz order-4 Chebyshev diverges: NaN.
    assert by["torchaudio"]["flag"] == "WRONG"


def test_missing_torchfx_is_skipped_with_a_note(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchfx", None)  # import torchfx -> ImportError
    rows, result = _bench(runner, tmp_path, "--suite", "iir", "--channels", "1", *TINY)
    assert "torchfx: skipped, not importable" in result.stdout
    assert "torchfx" not in {r["backend"] for r in rows}
    assert {"audiofx", "scipy", "scipy-sos"} <= {r["backend"] for r in rows}


def _fake_torchfx(broken: bool) -> types.ModuleType:
    """A stand-in with torchfx 0.8.0's shape: lazy Wave pipes materialised by `.ys`."""
    import torch

    class Filter:
        def __init__(self, cutoff, order=2, ripple=None, fs=None, btype="lowpass"):
            self.cutoff, self.order, self.ripple, self.fs, self.btype = (
                cutoff,
                order,
                ripple,
                fs,
                btype,
            )
            self.sos = None

        def to(self, device):
            return self

        def compute_coefficients(self):
            if self.ripple is None:
                self.sos = signal.butter(
                    self.order, self.cutoff, self.btype, fs=self.fs, output="sos"
                )
            else:
                self.sos = signal.cheby1(
                    self.order, self.ripple, self.cutoff, self.btype, fs=self.fs, output="sos"
                )

    def make(btype, cheby):
        def build(cutoff, order=2, ripple=0.1, fs=None):
            return Filter(cutoff, order, ripple if cheby else None, fs, btype)

        return build

    class Wave:
        calls = 0

        def __init__(self, ys, fs, device="cpu", pipeline=()):
            self._x, self.fs, self.pipeline = ys, fs, pipeline

        def __or__(self, f):
            return Wave(self._x, self.fs, pipeline=(*self.pipeline, f))  # lazy: no filtering

        @property
        def ys(self):
            if broken:
                raise RuntimeError("CUDA extension not compiled")
            y = self._x.numpy().astype(np.float64)
            for f in self.pipeline:
                y = signal.sosfilt(f.sos, y)
            return torch.from_numpy(y.astype(np.float32))

    module = types.ModuleType("torchfx")
    module.Wave = Wave
    module.filter = types.SimpleNamespace(
        LoButterworth=make("lowpass", False),
        HiButterworth=make("highpass", False),
        LoChebyshev1=make("lowpass", True),
        HiChebyshev1=make("highpass", True),
    )
    return module


def test_torchfx_that_fails_to_run_is_skipped_with_a_note(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchfx", _fake_torchfx(broken=True))
    rows, result = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1", "--backends", "scipy,torchfx", *TINY
    )
    assert (
        "torchfx: skipped for iir suites, failed to run (RuntimeError: CUDA extension not compiled)"
        in (" ".join(result.stdout.split()))
    )
    assert [r["backend"] for r in rows] == ["scipy"]


def test_torchfx_lazy_output_is_materialised_and_checked(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchfx", _fake_torchfx(broken=False))
    rows, _ = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "2", "--backends", "scipy,torchfx", *TINY
    )
    by = {r["backend"]: r for r in rows}
    assert by["torchfx"]["flag"] == "ok" and float(by["torchfx"]["rel_error"]) < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["--duration", "-5"], "--duration: must be > 0 seconds"),
        (["--duration=-5"], "--duration: must be > 0 seconds"),
        (["--duration", "1,0"], "--duration: must be > 0 seconds"),
        (["--duration", "abc"], "not a number of seconds"),
        (["--channels", "0"], "--channels: must be at least 1"),
        (["--channels", "2,x"], "not an integer"),
        (["--suite", "nope"], "--suite: unknown 'nope'"),
        (["--backends", "scipy,nope"], "--backends: unknown 'nope'"),
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--budget", "-1"], "--budget must be 0 (no limit) or more seconds"),
        (["--memory-share", "1.5"], "--memory-share must be in (0, 1]"),
        (["--format", "yaml"], "--format: unknown 'yaml'"),
        (["--suite", "fir", "--backends", "scipy-sos"], "none of them runs the fir suite"),
        (["--suite", "chain"], "--suite chain needs --chain"),
        (["--suite", "iir", "--chain", "vocal"], "--chain is for the chain and file suites"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--chain", "no_such_chain.yaml"], "no_such_chain"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(runner, args, message):
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiofx: error: "), result.stderr
    assert message in lines[0]


def test_memory_refusal_before_anything_runs(runner):
    result = runner.invoke(app, ["bench", "--channels", "12", "--duration", "1000000"])
    assert result.exit_code == 2
    assert "needs about" in result.stderr and "of memory available" in result.stderr
    options = BenchOptions(suites=["iir"], channels=[8], durations_s=[60.0])
    check_memory(options, available=10 * 10**9)  # 85 MB signal x a few copies: fits
    with pytest.raises(UsageError, match="8 ch x 60 s needs about"):
        check_memory(options, available=100 * 10**6)
    need, _ = estimate_bytes(options, plan(options)[0])  # fits in all, not in the share
    options.memory_share = 0.5
    with pytest.raises(UsageError, match="memory budget is"):
        check_memory(options, available=int(need * 1.5))


class _Hungry(bk.Backend):
    name = "hungry"
    kinds = ("iir",)
    copies = 1e9  # a billion signal copies: never fits

    def prepare(self, case):  # pragma: no cover - must never be called
        raise AssertionError("a backend that cannot fit must not run")


def test_backend_that_cannot_fit_is_skipped_before_it_runs(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(bk.BACKENDS, "hungry", _Hungry())
    rows, result = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1", "--backends", "scipy,hungry", *TINY
    )
    assert [r["backend"] for r in rows] == ["scipy"]
    assert "hungry: skipped at iir 1 ch x 0.05 s: needs about" in result.stdout


def test_plot_without_matplotlib_gives_the_install_hint(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from audiofx_cli.cli.main import main; "
        "sys.argv = ['audiofx', 'bench', '--duration', '0.05', '--plot', sys.argv[1]]; "
        "main()"
    )
    png = str(tmp_path / "p.png")
    result = subprocess.run(
        [sys.executable, "-c", code, png], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'audiofx-cli[plot]'" in result.stderr
    assert "torch" not in result.stderr and not (tmp_path / "p.png").exists()


def test_plot_writes_a_png(runner, tmp_path):
    pytest.importorskip("matplotlib")  # in the dev and plot extras
    png = tmp_path / "p.png"
    rows, _ = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1,2", "--backends", "scipy,audiofx",
        "--plot", str(png), *TINY,
    )  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(rows) == 4


def test_file_suite_times_io_alone_and_the_whole_process_path(runner, tmp_path):
    rows, result = _bench(runner, tmp_path, "--suite", "file", "--channels", "2", *TINY)
    by = {r["backend"]: r for r in rows}
    assert set(by) == {"audiofx", "io-only"}
    assert by["audiofx"]["flag"] == "ok" and float(by["audiofx"]["rel_error"]) < 1e-5
    assert by["io-only"]["rel_error"] == "" and "x io-only" in by["audiofx"]["note"]


def test_chain_suite_runs_a_chain_file(runner, tmp_path):
    chain = tmp_path / "c.yaml"
    chain.write_text("stages:\n  - highpass: {cutoff_hz: 80}\n  - gain: {gain_db: -3}\n")
    rows, _ = _bench(runner, tmp_path, "--chain", str(chain), "--channels", "1", *TINY)
    assert [(r["suite"], r["backend"], r["flag"]) for r in rows] == [("chain", "audiofx", "ok")]


def test_signal_is_seeded_float32_noise_with_unit_peak_per_channel():
    x = make_signal(3, 1000, seed=7)
    assert x.dtype == np.float32 and x.shape == (3, 1000)
    assert np.allclose(np.max(np.abs(x), axis=1), 1.0)
    assert np.array_equal(x, make_signal(3, 1000, seed=7))
    assert not np.array_equal(x, make_signal(3, 1000, seed=8))


def test_sweep_script_writes_csv_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location(
        "bench_sweep", ROOT / "scripts" / "bench_sweep.py"
    )
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    assert sweep.GRID["iir"] == ([1, 2, 4, 8, 12], [1, 5, 180, 300, 600])
    args = ["--channels", "1", "--durations", "0.02", "--repeat", "1", "--backends", "scipy"]
    assert sweep.main([str(tmp_path / "out"), *args]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert {"bench.csv", "iir.png", "fir.png", "api.png"} <= set(written), written
    rows = read_csv(tmp_path / "out" / "bench.csv")
    assert {r["suite"] for r in rows} == {"iir", "fir", "api"}


# --------------------------------------------------------------------------- budgets
def test_water_level_gives_fast_measurements_what_they_want_and_slow_ones_an_equal_cap():
    from audiofx_cli.bench.budget import water_level

    assert water_level([1, 2, 10, 10], 13) == 5.0  # 1 + 2 + 5 + 5
    assert water_level([1, 2], 10) == math.inf  # everything fits
    assert water_level([5, 5], -1) == 0.0  # nothing left
    cap = water_level([3, 40, 100, 7], 50)
    assert sum(min(w, cap) for w in [3, 40, 100, 7]) == pytest.approx(50)


def test_fit_to_time_cuts_repeats_then_warmups_then_the_signal():
    from audiofx_cli.bench.budget import fit_to_time

    assert fit_to_time(1.0, 6.0, 5, 1, forced=False) == (5, 1, 1.0)  # fits
    assert fit_to_time(1.0, 4.5, 5, 1, forced=False) == (3, 1, 1.0)  # fewer repeats
    assert fit_to_time(1.0, 3.5, 5, 1, forced=False) == (3, 0, 1.0)  # no warm-up
    assert fit_to_time(1.0, 1.5, 5, 1, forced=False) == (3, 0, 0.5)  # half the signal
    assert fit_to_time(1.0, 2.5, 2, 1, forced=False) == (2, 0, 1.0)  # asked for fewer
    # --repeat given: never fewer repeats, a shorter signal instead
    assert fit_to_time(1.0, 6.0, 6, 1, forced=True) == (6, 0, 1.0)
    assert fit_to_time(1.0, 3.0, 6, 1, forced=True) == (6, 0, 0.5)


def test_slices_are_whole_seconds_and_never_longer_than_the_signal():
    from audiofx_cli.bench.budget import round_slice

    rate = 1000
    assert round_slice(137_400, 600_000, rate) == 130_000  # multiples of 10 s from 10 s
    assert round_slice(7_900, 600_000, rate) == 7_000  # whole seconds below
    assert round_slice(10, 600_000, rate) == 1_000  # at least MIN_SLICE_S
    assert round_slice(10, 500, rate) == 500  # a signal shorter than that stays whole


def test_plan_run_slices_a_slow_peer_and_keeps_ours_in_full():
    from audiofx_cli.bench.budget import Estimate, plan_run

    rate, frames = 1000, 600_000  # 600 s
    slow = Estimate(run_s_per_frame=1e-4, peak_bytes_per_frame=100.0)  # 60 s per run
    common = {"allowed_bytes": 1e9, "repeat": 5, "warmup": 1, "forced": False}
    run = plan_run(slow, frames, rate, cap_s=36.0, can_slice=True, **common)
    assert (run.repeats, run.warmups, run.frames // rate) == (3, 0, 120)  # 36 s / 3 / 60 s
    assert run.sliced and run.reason == "time budget" and run.estimate_s == pytest.approx(36.0)
    ours = plan_run(slow, frames, rate, cap_s=math.inf, can_slice=False, **common)
    assert (ours.repeats, ours.warmups, ours.frames, ours.reason) == (5, 1, frames, "")


def test_plan_run_fits_memory_by_slicing_or_skips():
    from audiofx_cli.bench.budget import MEMORY_MARGIN, Estimate, plan_run

    rate, frames = 1000, 600_000
    hungry = Estimate(run_s_per_frame=1e-9, peak_bytes_per_frame=1000.0)  # 600 MB in full
    common = {"cap_s": math.inf, "repeat": 5, "warmup": 1, "forced": False}
    run = plan_run(hungry, frames, rate, allowed_bytes=150e6, can_slice=True, **common)
    assert run.frames // rate == 120 and run.reason == "memory budget"  # 125 s fit
    assert run.frames * 1000 * MEMORY_MARGIN <= 150e6
    assert (run.repeats, run.warmups) == (5, 1)  # the time budget did not cut it
    skip = plan_run(hungry, frames, rate, allowed_bytes=1e6, can_slice=True, **common)
    assert "needs about 0.7 GB" in skip.skip  # not even 1 s fits
    ours = plan_run(hungry, frames, rate, allowed_bytes=150e6, can_slice=False, **common)
    assert ours.skip and ours.repeats == 0  # never sliced: skipped instead


def test_planner_shares_what_is_left_after_fixed_costs():
    from audiofx_cli.bench.budget import Planner

    planner = Planner(budget_s=100.0)
    planner.add("signal and reference", 30.0, flexible=False)
    planner.add("audiofx", 5.0, flexible=False)
    for name, want in (("sos", 5.0), ("lfilter", 80.0), ("torchaudio", 400.0)):
        planner.add(name, want)
    assert planner.cap_s(elapsed_s=0.0) == pytest.approx(30.0)  # (100 - 35 - 5) / 2
    assert planner.remaining_s(elapsed_s=0.0) == pytest.approx(100.0)
    planner.commit("lfilter", 30.0)  # planned: its time is fixed now
    planner.done("signal and reference")
    assert planner.cap_s(elapsed_s=40.0) == pytest.approx(20.0)  # 100 - 40 - 35 - 5
    assert Planner(budget_s=None).cap_s(0.0) == math.inf


def _rows_by(rows):
    return {(r["suite"], r["backend"]): r for r in rows}


def test_time_budget_cuts_peers_and_never_audiofx(runner, tmp_path):
    rows, result = _bench(
        runner, tmp_path, "--suite", "iir,fir", "--channels", "1", "--duration", "3",
        "--backends", "audiofx,scipy,torchaudio", "--budget", "0.001", "--device", "cpu",
    )  # fmt: skip
    frames = 3 * RATE
    for r in rows:
        if r["backend"] == "audiofx":  # the full configuration, always
            assert float(r["slice_s"]) == 3.0 and int(r["samples"]) == frames
            assert (r["repeats_done"], r["warmups_done"], r["budget"]) == ("5", "1", "")
        else:  # a budget of 1 ms: the fewest repeats on the shortest slice
            assert float(r["slice_s"]) == 1.0 and int(r["samples"]) == RATE
            assert (r["repeats_done"], r["warmups_done"]) == ("3", "0")
            assert r["budget"] == "time budget" and r["flag"] == "ok"
            full = float(r["median_s"]) * 3
            assert float(r["median_full_s"]) == pytest.approx(full, rel=1e-9)
        per_sample = int(r["samples"]) / float(r["median_s"]) / 1e6
        assert float(r["msamples_per_s"]) == pytest.approx(per_sample, rel=1e-9)
    by = _rows_by(rows)
    for suite in ("iir", "fir"):  # speed-ups per sample, slices against full rows
        ratio = float(by[suite, "audiofx"]["msamples_per_s"]) / float(
            by[suite, "scipy"]["msamples_per_s"]
        )
        assert float(by[suite, "audiofx"]["speedup_vs_scipy"]) == pytest.approx(ratio)
    assert "measured on the first 'slice s' seconds" in result.stdout
    assert "iir 1 ch x 3 s torchaudio cpu: median" in result.stderr
    assert "3 runs on the first 1 s (time budget)" in result.stderr


def test_repeat_given_is_kept_under_a_budget(runner, tmp_path):
    rows, _ = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1", "--duration", "2",
        "--backends", "audiofx,scipy", "--budget", "0.001", "--repeat", "2", "--device", "cpu",
    )  # fmt: skip
    by = _rows_by(rows)
    assert by["iir", "scipy"]["repeats_done"] == "2" and float(by["iir", "scipy"]["slice_s"]) == 1
    assert by["iir", "audiofx"]["repeats_done"] == "2"
    assert float(by["iir", "audiofx"]["slice_s"]) == 2


class _Greedy(bk.Backend):
    """Test-only: correct output, and 2,000 bytes of work space per frame (a real allocation)."""

    name = "greedy"
    kinds = ("iir",)

    def prepare(self, case):
        sos = case.suite.fused_sos(case.rate_hz)

        def run():
            work = np.ones((500, case.x.shape[-1]), np.float32)  # 2,000 bytes per frame
            out = signal.sosfilt(sos, case.x.astype(np.float64)).astype(np.float32)
            del work
            return out

        return bk.FunctionRun(run)


@pytest.mark.parametrize("left_mb, sliced", [(300, True), (60, False)])
def test_memory_budget_slices_or_skips_a_backend_from_its_calibration(
    runner, tmp_path, monkeypatch, left_mb, sliced
):
    from audiofx_cli.bench import machine
    from audiofx_cli.bench import runner as bench_runner

    monkeypatch.setitem(bk.BACKENDS, "greedy", _Greedy())
    rss = machine.rss_bytes()
    # memory budget = 0.5 x (available + RSS): about the RSS now + left_mb
    available = rss + 2 * left_mb * 10**6
    monkeypatch.setattr(bench_runner, "available_memory_bytes", lambda: available)
    rows, result = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1", "--duration", "10",
        "--backends", "audiofx,greedy", "--budget", "0", "--device", "cpu", "--warmup", "0",
    )  # fmt: skip
    by = _rows_by(rows)
    assert float(by["iir", "audiofx"]["slice_s"]) == 10  # ours: small, in full
    if sliced:  # 10 s would need 1.1 GB: cut to what fits (about 2 s)
        assert 1 <= float(by["iir", "greedy"]["slice_s"]) < 10
        assert by["iir", "greedy"]["budget"] == "memory budget"
        assert by["iir", "greedy"]["flag"] == "ok"  # checked against the reference's start
    else:  # not even 1 s (106 MB) fits
        assert ("iir", "greedy") not in by
        assert "greedy: skipped at iir 1 ch x 10 s: needs about 1.1 GB" in result.stdout
        assert "greedy: skipped at iir 1 ch x 10 s" in result.stderr  # its log line


# --------------------------------------------------------------------------- output
def test_output_off_a_terminal_is_plain_lines_and_a_full_width_table(iir_fir_rows):
    rows, out = iir_fir_rows
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("suite"))
    assert "…" not in out and "backend" in header and "check" in header
    table = [line for line in lines if line.startswith(("iir ", "fir "))]
    assert len(table) == len(rows)
    for line, r in zip(table, rows, strict=True):
        assert line.split()[:3] == [r["suite"], r["backend"], r["device"]]
        assert line.split()[-1] == r["flag"]
    assert any(line.startswith("  summary: audiofx against each peer") for line in lines)
    assert "peak RSS of the whole command" in lines[-1]


def test_one_log_line_per_finished_measurement(runner, tmp_path):
    rows, result = _bench(
        runner, tmp_path, "--suite", "iir", "--channels", "1,2", "--backends",
        "audiofx,scipy", *TINY,
    )  # fmt: skip
    logged = [line for line in result.stderr.splitlines() if " M samples/s" in line]
    assert len(logged) == len(rows) == 4
    for line in logged:  # [m:ss] suite shape backend device: median, runs, speed, speed-up, error
        assert line.startswith("[") and " ch x 0.05 s " in line and "median" in line
        assert "error" in line and line.endswith("ok")
    assert sum("x scipy" in line for line in logged) == 2  # audiofx's rows, after scipy's
    assert "] plan: 2 configuration(s), 4 measurement(s)" in result.stderr


def test_summary_gives_audiofx_against_each_peer_with_errors(iir_fir_rows):
    rows, out = iir_fir_rows
    summary = out[out.index("summary:") :].splitlines()
    by = {(r["suite"], r["channels"], r["backend"]): r for r in rows}
    peer = next(line for line in summary if line.strip().startswith("torchaudio cpu"))
    ratio = float(by["iir", "1", "audiofx"]["msamples_per_s"]) / float(
        by["iir", "1", "torchaudio"]["msamples_per_s"]
    )
    assert f"{ratio:.3g}x" in peer and "error" in peer
    assert sum(line.strip().startswith("iir 1 ch x 0.05 s: audiofx cpu") for line in summary) == 1


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_format_csv_and_json_on_stdout(runner, monkeypatch, fmt):
    import csv as csv_module
    import io
    import json

    monkeypatch.setitem(bk.BACKENDS, "nans", _NaNs())
    args = ["bench", "--suite", "iir", "--channels", "1", "--backends", "scipy,nans"]
    result = runner.invoke(app, [*args, *TINY, "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows = list(csv_module.DictReader(io.StringIO(result.stdout)))
        assert list(rows[0]) == CSV_COLUMNS
    else:
        data = json.loads(result.stdout, parse_constant=pytest.fail)  # strict: NaN is null
        rows = data["rows"]
        assert data["peak_rss_bytes"] > 0 and data["summary"][0].startswith("summary:")
        assert next(r for r in rows if r["backend"] == "nans")["rel_error"] is None
    assert {r["backend"] for r in rows} == {"scipy", "nans"}
    assert "peak RSS of the whole command" in result.stderr


def test_progress_bar_prints_each_result_above_the_bar():
    import io

    from rich.console import Console

    from audiofx_cli.bench.live import ProgressBar
    from audiofx_cli.bench.runner import BenchEvent, Row

    row = Row("iir", "scipy", "cpu", "cpu", 1, 1.0, RATE, RATE, repeat=5, warmup=1)
    row.repeats_done, row.slice_s, row.median_s, row.msamples_per_s = 5, 1.0, 0.1, 0.441
    row.rel_error, row.flag = 1e-9, "ok"
    out = io.StringIO()
    with ProgressBar(Console(file=out, force_terminal=True, width=100)) as bar:
        bar(BenchEvent("calibrating", 0.5))
        bar(BenchEvent("iir 1 ch x 1 s: scipy", 2.0, 30.0))
        bar(BenchEvent("iir 1 ch x 1 s: scipy", 2.5, 29.5, row=row))
    text = out.getvalue()
    assert "iir 1 ch x 1 s scipy cpu: median 0.1 s, 5 runs, 0.441 M samples/s" in text
    assert "ETA 0:" in text


def test_a_narrow_terminal_gets_the_plain_table_not_squeezed_cells():
    import io

    from rich.console import Console

    from audiofx_cli.bench import report
    from audiofx_cli.bench.runner import BenchResult, Row

    row = Row("iir", "torchaudio", "cpu", "cpu", 8, 600.0, RATE, 8 * 20 * RATE, 5, 1)
    row.repeats_done, row.slice_s, row.median_s, row.msamples_per_s = 3, 20.0, 2.87, 2.46
    row.speedup_vs_scipy, row.rel_error, row.flag, row.budget = 0.18, 3.6e-6, "ok", "time budget"
    machine = {"cpu_model": "cpu", "cpu_count": 2, "torch_version": "t", "threads": 2}
    result = BenchResult([row], [], {**machine, "audiofx_version": "a", "load_1m": 0.0})
    for width in (60, 250):
        out = io.StringIO()
        report.render(result, Console(file=out, width=width, force_terminal=True))
        text = out.getvalue()
        assert "…" not in text and "torchaudio" in text and "2.46*" in text
        assert "3 runs on the first 20 s (time budget)" in text
