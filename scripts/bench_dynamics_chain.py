"""End to end: a mastering chain on a 10-minute stereo PCM_16 file, `audiofx process` against SoX.

    python scripts/bench_dynamics_chain.py                 # 600 s, 3 runs each
    python scripts/bench_dynamics_chain.py --seconds 60 --repeat 5 --keep /tmp/chain

The chain (issue 16): high-pass 80 Hz -> compressor (threshold -18 dBFS, ratio 4, attack 5 ms,
release 80 ms) -> normalize to -16 LUFS integrated -> look-ahead limiter at -1 dBFS. SoX runs
`highpass 80 compand 0.005,0.08 -90,-90,-18,-18,0,-13.5 loudness -16 gain -n -1`, the command
the issue compares with (SoX's `loudness` is its ISO 226 loudness-compensated volume, not a
LUFS normaliser, and `gain -n` is a two-pass peak normalisation through a temporary file; it
does about the same amount of work, not the same processing).

The same `audiofx process` command is also timed through a warm `audiofx server` (started by
the script in its own folder). Besides these commands, the script times
`audiofx_cli.api.process_file` on the same file in its own process (torch imported once: what
a batch or a long-running service pays per file) and `python -c "import torch"` (the fixed
cost inside every `audiofx process` run).

The input is 44.1 kHz stereo 16-bit PCM: seeded noise, lightly low-passed, under a syllable-rate
envelope spanning about 40 dB, so that the compressor and the limiter both act. Both tools read
it and write 16-bit PCM (audiofx dithers, SoX too by default). Runs alternate (audiofx, SoX,
audiofx, ...) so that a change in the machine's load hits both; each tool's time is the median
of `--repeat` runs of the whole command (process start-up included), measured in this script
with the load average printed beside it. The output of the last CLI run is measured with
`audiofx_cli.analysis.analyze_file` (integrated loudness, sample and true peak).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

RATE = 44100
CHAIN = """\
name: mastering
description: high-pass, compressor, -16 LUFS, -1 dBFS limiter (scripts/bench_dynamics_chain.py)
stages:
  - highpass: {cutoff_hz: 80, order: 2}
  - compressor: {threshold_db: -18, ratio: 4, attack_ms: 5, release_ms: 80}
  - normalize: {mode: lufs, target_db: -16}
  - limiter: {ceiling_db: -1, release_ms: 50, lookahead_ms: 5}
"""
SOX_EFFECTS = "highpass 80 compand 0.005,0.08 -90,-90,-18,-18,0,-13.5 loudness -16 gain -n -1"


def make_input(path: Path, seconds: float, seed: int = 0) -> None:
    """Write the test program (see the module docstring) in 10 s blocks."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, 6000, fs=RATE, output="sos")
    zi = np.zeros((sos.shape[0], 2, 2))
    frames = int(seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 2, "PCM_16") as out:
        for start in range(0, frames, 10 * RATE):
            n = min(10 * RATE, frames - start)
            noise = rng.standard_normal((2, n))
            noise, zi = signal.sosfilt(sos, noise, axis=-1, zi=zi)
            t = (start + np.arange(n)) / RATE
            envelope_db = -20 + 20 * np.sin(2 * np.pi * 3.1 * t) * np.sin(2 * np.pi * 0.07 * t)
            block = 0.25 * noise * 10 ** (envelope_db / 20)
            out.write(np.clip(block, -1, 1).T)


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the files")
    args = parser.parse_args()
    if shutil.which("sox") is None:
        print("sox is not installed (apt-get install sox)")
        return 1
    folder = args.keep or Path(tempfile.mkdtemp(prefix="audiofx-chain-"))
    folder.mkdir(parents=True, exist_ok=True)
    source, chain = folder / "input.wav", folder / "mastering.yaml"
    make_input(source, args.seconds)
    chain.write_text(CHAIN)
    ours = [sys.executable, "-m", "audiofx_cli", "process", str(source), "-c", str(chain),
            "-o", str(folder / "audiofx.wav"), "--overwrite", "--quiet"]  # fmt: skip
    sox = ["sox", str(source), str(folder / "sox.wav"), *SOX_EFFECTS.split()]
    torch_only = [sys.executable, "-c", "import torch"]
    timed(ours)  # the first run compiles the kernels (cached for the next runs)
    # the same command through a warm `audiofx server` in its own folder (what a shell loop
    # pays once `audiofx server start` has run)
    served = {**os.environ, "AUDIOFX_SERVER": "on", "AUDIOFX_SERVER_DIR": str(folder / "srv")}
    server = [sys.executable, "-m", "audiofx_cli", "server"]
    subprocess.run([*server, "start"], check=True, env=served, cwd=folder)
    timed(ours, served)
    from audiofx_cli.api import process_file  # imports torch: the library rows below

    def library() -> float:
        start = time.perf_counter()
        process_file(source, folder / "library.wav", chain, overwrite=True)
        return time.perf_counter() - start

    library()
    times: dict[str, list[float]] = {
        "audiofx": [],
        "server": [],
        "sox": [],
        "library": [],
        "import torch": [],
    }
    for _ in range(args.repeat):
        times["audiofx"].append(timed(ours))
        times["server"].append(timed(ours, served))
        times["sox"].append(timed(sox))
        times["library"].append(library())
        times["import torch"].append(timed(torch_only))
    load = os.getloadavg()[0]
    subprocess.run([*server, "stop"], env=served, cwd=folder, stdout=subprocess.DEVNULL)
    from audiofx_cli.analysis import analyze_file

    report = analyze_file(folder / "audiofx.wav")
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.seconds:g} s stereo PCM_16 at {RATE} Hz, {args.repeat} runs each, "
          f"load average {load:.2f}")  # fmt: skip
    labels = {
        "audiofx": "audiofx process (CLI, end to end)",
        "server": "audiofx process through a warm audiofx server (end to end)",
        "sox": "sox (end to end)",
        "library": "process_file in a process that has torch (the processing alone)",
        "import torch": "python -c 'import torch' (part of the CLI's time)",
    }
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {labels[name]}: median {median[name]:.2f} s (runs {runs})")
    for name in ("audiofx", "server", "library"):
        print(f"  sox / {name}: {median['sox'] / median[name]:.2f} (above 1: audiofx faster)")
    print(f"  audiofx output: {report.lufs:.2f} LUFS, peak {report.peak_dbfs:.2f} dBFS, "
          f"true peak {report.true_peak_dbtp:.2f} dBTP")  # fmt: skip
    if args.keep is None:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
