"""Shared fixtures: seeded test signals, real audio files through libsndfile, CLI runners;
the `gpu` marker's skip, and the switches that turn skips into failures where a reference must
be there (`AUDIOFX_REQUIRE_SOX=1` in CI, `AUDIOFX_REQUIRE_GPU=1` in scripts/gpu_check.sh)."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
# An audiofx server a developer left running must not answer the CLI tests' commands;
# tests/test_server.py starts its own and sets AUDIOFX_SERVER per command.
os.environ["AUDIOFX_SERVER"] = "off"
CLI = [sys.executable, "-m", "audiofx_cli"]  # the CLI of this checkout, in a subprocess
REQUIRE_SOX = os.environ.get("AUDIOFX_REQUIRE_SOX") == "1"
REQUIRE_GPU = os.environ.get("AUDIOFX_REQUIRE_GPU") == "1"
# the device tests/test_gpu.py runs on: cuda, or cpu to check those tests where there is no GPU
GPU_TEST_DEVICE = os.environ.get("AUDIOFX_GPU_TEST_DEVICE", "cuda")

# SoX reference tests: skipped without sox, unless AUDIOFX_REQUIRE_SOX=1 (CI), where a missing
# sox stops the run at its start instead (see pytest_sessionstart)
needs_sox = pytest.mark.skipif(
    shutil.which("sox") is None, reason="sox not installed (apt-get install sox)"
)


@functools.cache
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_SOX and shutil.which("sox") is None:
        raise pytest.UsageError(
            "AUDIOFX_REQUIRE_SOX=1 but sox is not installed: the SoX reference tests would be "
            "skipped (apt-get install sox)"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests run where CUDA is available and are skipped with a reason elsewhere; with
    AUDIOFX_REQUIRE_GPU=1 a machine without CUDA is an error, never a silent skip."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items or cuda_available() or not GPU_TEST_DEVICE.startswith("cuda"):
        return
    import torch

    reason = (
        f"needs CUDA: torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no GPU "
        "here; scripts/gpu_check.sh runs these on a GPU machine"
    )
    if REQUIRE_GPU:
        raise pytest.UsageError(f"AUDIOFX_REQUIRE_GPU=1 but the gpu tests cannot run: {reason}")
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=reason))


def unit_noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise, (channels, frames) float64, each channel scaled to peak 1."""
    x = np.random.default_rng(seed).standard_normal((channels, frames))
    return x / np.max(np.abs(x), axis=-1, keepdims=True)


def write_audio(path: Path, data: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write (channels, frames) float data to a real file; returns the path."""
    sf.write(path, np.asarray(data).T, rate, subtype=subtype)
    return path


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m audiofx_cli ARGS` in a real subprocess (true exit codes and stderr)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def speech_file() -> Path:
    return ROOT / "examples" / "speech.wav"
