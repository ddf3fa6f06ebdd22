"""Shared fixtures: seeded test signals, real audio files through libsndfile, CLI runners."""

from __future__ import annotations

import hashlib
import os
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
