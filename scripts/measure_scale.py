"""Measure a folder -> bucket batch on a local Ray cluster against the same batch on local files.

Starts an S3-compatible server (moto_server) and a local Ray cluster on 127.0.0.1, uploads a
generated corpus, then times, in one run:

  1. audiofx process s3://corpus/raw/ -R --chain CHAIN --out-dir s3://corpus/clean/ --executor ray
  2. audiofx process LOCAL/raw/ -R --chain CHAIN --out-dir LOCAL/clean/ --jobs N   (same files)

and prints files, hours of audio, wall time and x real time of each (from the --json reports).
Needs the dev extra (s3fs, moto[server], ray). Example (docs/scale.md):

    python scripts/measure_scale.py --files 100 --seconds 30 --chain podcast --cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def make_corpus(folder: Path, files: int, seconds: float, rate: int) -> None:
    """Pink-ish noise recordings, stereo PCM_16, in 10 sub-folders."""
    rng = np.random.default_rng(0)
    for i in range(files):
        path = folder / f"s{i % 10}" / f"take{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        x = rng.standard_normal((int(seconds * rate), 2)).cumsum(axis=0)
        x -= x.mean(axis=0)
        x *= 0.3 / np.abs(x).max()
        sf.write(path, x, rate, subtype="PCM_16")


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return wall


def summary(report: Path) -> dict:
    return json.loads(report.read_text())["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--chain", default="podcast")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="audiofx-scale-"))
    port, ray_port = free_port(), free_port()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_AUTH_MODE": "disabled",
    }
    moto = subprocess.Popen(
        [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ray = str(bin_dir / "ray")
    try:
        wait_for_port(port)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        import s3fs

        make_corpus(work / "raw", args.files, args.seconds, args.rate)
        fs = s3fs.S3FileSystem()
        fs.mkdir("corpus")
        fs.put(str(work / "raw"), "corpus/raw", recursive=True)
        subprocess.run(
            [
                ray,
                "start",
                "--head",
                f"--port={ray_port}",
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={args.cpus}",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        cli = [sys.executable, "-m", "audiofx_cli", "process"]
        remote = work / "remote.json"
        ray_wall = run(
            [
                *cli,
                "s3://corpus/raw/",
                "-R",
                "-c",
                args.chain,
                "--out-dir",
                "s3://corpus/clean/",
                "--executor",
                "ray",
                "--json",
                str(remote),
                "-q",
            ],
            {**env, "RAY_ADDRESS": f"127.0.0.1:{ray_port}"},
        )
        local = work / "local.json"
        local_wall = run(
            [
                *cli,
                str(work / "raw"),
                "-R",
                "-c",
                args.chain,
                "--out-dir",
                str(work / "clean"),
                "--jobs",
                str(args.cpus),
                "--json",
                str(local),
                "-q",
            ],
            env,
        )
        load = os.getloadavg()[0]
        print(
            f"corpus: {args.files} files x {args.seconds:g} s, stereo {args.rate} Hz PCM_16, "
            f"chain {args.chain}, {args.cpus} CPUs, load {load:.1f}"
        )
        print("| run | files ok | audio (h) | wall (s) | x real time |")
        print("|---|---|---|---|---|")
        for label, report, wall in (
            (f"s3 -> s3, --executor ray ({args.cpus} CPUs)", remote, ray_wall),
            (f"local -> local, --jobs {args.cpus}", local, local_wall),
        ):
            s = summary(report)
            audio_h = s["audio_s"] / 3600
            print(
                f"| {label} | {s['ok']} | {audio_h:.2f} | {wall:.1f} | {s['audio_s'] / wall:.0f}x |"
            )
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
        moto.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
