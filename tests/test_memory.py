"""Bounded memory: a 30-minute stereo 44.1 kHz file is processed without holding it in memory.

Peak RSS of the whole `audiofx process` run on the long file is compared with the same run on a
one-second file; the difference must be far below the decoded size of the long file (635 MB in
float32).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100
MINUTES = 30
MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def write_long_file(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", RATE, 2, "PCM_16") as f:
        for _ in range(seconds // 60):
            f.write((0.3 * rng.standard_normal((RATE * 60, 2))).astype(np.float32))
        if seconds % 60:
            f.write((0.3 * rng.standard_normal((RATE * (seconds % 60), 2))).astype(np.float32))


def peak_rss_mb(src: Path, out: Path) -> float:
    cmd = [
        sys.executable,
        "-c",
        MEASURE,
        sys.executable,
        "-m",
        "audiofx_cli",
        "process",
        str(src),
        "-c",
        "podcast-eq",
        "-o",
        str(out),
        "--overwrite",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(result.stdout.strip()) / 1024


def test_thirty_minute_stereo_file_in_bounded_memory(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_long_file(short, 1)
    write_long_file(long, MINUTES * 60)
    baseline = peak_rss_mb(short, tmp_path / "short_out.wav")
    peak = peak_rss_mb(long, tmp_path / "long_out.wav")
    decoded_mb = MINUTES * 60 * RATE * 2 * 4 / 2**20
    print(
        f"peak RSS: {peak:.0f} MB on {MINUTES} min stereo, {baseline:.0f} MB on 1 s "
        f"(decoded file: {decoded_mb:.0f} MB)"
    )
    assert sf.info(tmp_path / "long_out.wav").frames == MINUTES * 60 * RATE
    assert peak - baseline < 150, f"peak {peak:.0f} MB vs baseline {baseline:.0f} MB"
