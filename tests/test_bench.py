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
from audiofx_cli.bench.runner import BenchOptions, check_memory, make_signal
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
    assert "needs about" in result.stderr and "GB of memory is available" in result.stderr
    options = BenchOptions(suites=["iir"], channels=[8], durations_s=[60.0])
    check_memory(options, available=10 * 10**9)  # 85 MB signal x a few copies: fits
    with pytest.raises(UsageError, match="8 ch x 60 s needs about"):
        check_memory(options, available=100 * 10**6)


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
