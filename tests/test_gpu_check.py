"""scripts/gpu_check.sh, checked where there is no GPU: it stops at once and clearly without
CUDA (exit 3, no folder made, nothing run), refuses to mix results into a used folder, and its
steps (gpu tests, bench, result files) run end to end when pointed at the CPU
(GPU_CHECK_ON_CPU=1), so the day it runs on a GPU machine its commands are known to work."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT, cuda_available

SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in SCRIPT.read_text()


@pytest.mark.skipif(cuda_available(), reason="CUDA is available here: the script would run")
def test_without_cuda_it_stops_before_doing_anything(tmp_path):
    out = tmp_path / "results"
    result = run_check(str(out))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("gpu_check: CUDA is not available here: torch ")
    assert lines[-1].endswith("sees no CUDA device; nothing was run")
    assert not out.exists()


def test_refuses_a_folder_with_results_in_it(tmp_path):
    (tmp_path / "old.txt").write_text("a previous run\n")
    result = run_check(str(tmp_path))
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr


@pytest.mark.slow
def test_every_step_runs_when_pointed_at_the_cpu(tmp_path):
    out = tmp_path / "results"
    result = run_check(
        str(out),
        env={
            "GPU_CHECK_ON_CPU": "1",
            "GPU_CHECK_PYTEST_ARGS": "tests/test_gpu.py -k engine_input_output",
            "GPU_CHECK_CHANNELS": "1",
            "GPU_CHECK_SECONDS": "0.1",
            "GPU_CHECK_REPEAT": "1",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.csv", "bench.txt", "env.txt", "summary.txt", "tests.log", "tests.xml",
    ]  # fmt: skip
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in summary] == ["gpu tests", "bench"]
    assert all(": passed in " in line for line in summary)
    assert "1 passed" in (out / "tests.log").read_text()
    rows = (out / "bench.csv").read_text().splitlines()
    suites = {row.split(",")[0] for row in rows[1:]}
    assert rows[0].startswith("suite,backend,device") and suites == {"iir", "fir", "api"}
    assert "commit: " in (out / "env.txt").read_text()
