"""A small impulse-response file for stage examples that need one (`convolve`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_ir(path: Path, rate: int = 22050, taps: int = 300, channels: int = 1) -> Path:
    """Decaying noise, peak 1, written as a float64 WAV."""
    rng = np.random.default_rng(taps + channels)
    ir = rng.standard_normal((channels, taps)) * np.exp(-np.arange(taps) / (taps / 5))
    sf.write(path, (ir / np.abs(ir).max()).T, rate, subtype="DOUBLE")
    return path


def convolve_example(tmp_path: Path) -> object:
    """`convolve` with an IR at 22.05 kHz (resampled to the test rate) and a tail."""
    path = write_ir(tmp_path / "ir.wav")
    return {"convolve": {"ir": str(path), "wet": 0.5, "dry": 0.5, "tail_s": 0.005}}
