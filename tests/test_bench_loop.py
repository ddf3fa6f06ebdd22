"""The loop suite (`audiofx bench --suite loop`) and its SoX translation of a chain.

The SoX effects must compute the same filters as audiofx: run on a float WAV without dither,
SoX's output matches audiofx's float64 output to 1e-5 (SoX works in 32-bit integers inside;
tests/test_rbj.py holds single biquads to the same bound).
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from audiofx_cli import load_chain
from audiofx_cli.bench.sox_chain import NoSoxEquivalent, butterworth_qs, sox_effects
from audiofx_cli.chain.spec import load_spec, parse_spec
from tests.conftest import run_cli, unit_noise

RATE = 48000
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
CHAINS = [
    "vocal",
    [
        {"highpass": {"cutoff_hz": 120, "order": 4}},
        {"lowpass": {"cutoff_hz": 9000, "order": 6}},
        {"lowshelf": {"freq_hz": 200, "gain_db": -3}},
        {"notch": {"freq_hz": 60, "q": 8}},
        {"allpass": {"freq_hz": 1000, "q": 0.9}},
        {"biquad_lowpass": {"freq_hz": 12000, "q": 0.6}},
        {"gain": {"gain_db": -1.5}},
    ],
]


def stages_of(chain) -> list[tuple[str, dict]]:
    if isinstance(chain, str):
        return [(s.name, s.params) for s in load_spec(chain).stages]
    return [(s.name, s.params) for s in parse_spec(yaml.safe_dump({"stages": chain})).stages]


def test_butterworth_qs_are_the_prototype_pole_pairs():
    from scipy import signal

    for order in (2, 4, 6, 8):
        poles = signal.buttap(order)[1]
        upper = sorted((p for p in poles if p.imag > 0), key=lambda p: -p.real)
        expected = sorted(1 / (2 * -p.real) for p in upper)  # |p| = 1: Q = 1 / (2 cos angle)
        np.testing.assert_allclose(butterworth_qs(order), expected, rtol=1e-12)


@needs_sox
@pytest.mark.parametrize("chain", CHAINS, ids=["vocal", "filters"])
def test_sox_effects_compute_the_same_chain(tmp_path, chain):
    x = 0.25 * unit_noise(1, 24000, seed=3)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, RATE, subtype="FLOAT")
    effects = sox_effects(stages_of(chain))
    subprocess.run(["sox", "-D", str(src), "-e", "floating-point", str(dst), *effects], check=True)
    ref = sf.read(dst, dtype="float64")[0]
    y = load_chain(chain, RATE, dtype=torch.float64)(torch.from_numpy(x)).numpy()[0]
    err = np.max(np.abs(y - ref))
    assert err < 1e-5, f"{' '.join(effects)}: max abs difference from SoX {err:.3g}"


@pytest.mark.parametrize(
    "stage",
    [
        {"dc_remove": {}},
        {"highpass": {"cutoff_hz": 80, "order": 3}},
        {"lowpass": {"cutoff_hz": 5000, "order": 4, "type": "chebyshev1"}},
        {"fir": {"cutoff_hz": 5000, "taps": 63}},
    ],
    ids=lambda s: next(iter(s)),
)
def test_no_sox_equivalent_names_the_stage(stage):
    with pytest.raises(NoSoxEquivalent, match=f"stage '{next(iter(stage))}'"):
        sox_effects(stages_of([stage]))


def test_loop_suite_times_three_ways_in_one_run(tmp_path):
    out = tmp_path / "loop.csv"
    args = ["bench", "--suite", "loop", "--files", "2", "--duration", "0.2", "--warmup", "0"]
    result = run_cli(*args, "--csv", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    with out.open() as handle:
        rows = {row["backend"]: row for row in csv.DictReader(handle)}
    expected = {"audiofx-cold", "audiofx-server"} | ({"sox"} if shutil.which("sox") else set())
    assert set(rows) == expected
    assert all(row["flag"] == "ok" and row["sample_rate"] == "48000" for row in rows.values())
    assert float(rows["audiofx-server"]["rel_error"]) == 0.0  # byte for byte the in-process files
    assert "byte for byte" in rows["audiofx-server"]["note"]
    if "sox" in rows:
        assert float(rows["sox"]["rel_error"]) < 1e-2
    assert "loop: sox" in result.stdout and "start-up" in result.stdout
