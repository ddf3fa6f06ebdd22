"""The loop suite: a shell loop over N short files, one `audiofx process` per file, timed three
ways in one run, as a person at a terminal lives it.

- audiofx-cold: AUDIOFX_SERVER=off, so each file pays a fresh interpreter, imports and kernels.
- audiofx-server: the same commands with a warm server (started before the loop in a private
  folder, stopped after; its start-up is a note, not part of the per-file figures).
- sox: `sox IN OUT EFFECTS` with the same filters (`bench.sox_chain`), where SoX is installed
  and the chain maps onto SoX effects exactly.

Files: --files N of --duration S seconds (default 20 x 1.4 s), --channels (default 1) at --rate
(default 48 kHz), PCM_16, seeded Gaussian noise at a quarter of full scale. Each invocation is
timed from spawn to exit (wall time, the figure a loop adds up) by a small helper process that
spawns it; its peak memory is the process's own maximum RSS (wait4). `--warmup` untimed
invocations per way come first (page cache, .pyc files). Checks: every server output must be
byte for byte the in-process one (else WRONG); SoX's outputs are compared with audiofx's by
relative error (its own dither, so about 1e-4, not zero).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiofx_cli.bench.check import relative_error
from audiofx_cli.bench.machine import MB
from audiofx_cli.bench.runner import BenchOptions, Config, Row
from audiofx_cli.bench.sox_chain import NoSoxEquivalent, sox_effects

DEFAULT_CHAIN = "vocal"
SOX_TOLERANCE = 1e-2  # different dither and float paths; a wrong filter is far above this
Report = Callable[[str], None]


@dataclass
class Way:
    """One way of running the loop: a command per file, and what it measured."""

    name: str
    command: Callable[[Path, Path], list[str]]
    env: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    failure: str = ""


def audiofx_command() -> list[str]:
    """How a user starts audiofx here: the `audiofx` script beside this interpreter, else
    `python -m audiofx_cli`."""
    script = Path(sys.executable).parent / "audiofx"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "audiofx_cli"]


def make_files(folder: Path, count: int, config: Config, rate_hz: int, seed: int) -> list[Path]:
    """`count` seeded noise files of the configuration's channels and duration, PCM_16."""
    folder.mkdir(parents=True, exist_ok=True)
    frames, channels = max(1, int(round(config.duration_s * rate_hz))), config.channels
    files = []
    for i in range(count):
        noise = np.random.default_rng(seed + i).standard_normal((frames, channels))
        path = folder / f"take{i:04d}.wav"
        sf.write(str(path), 0.25 * noise / np.max(np.abs(noise)), rate_hz, subtype="PCM_16")
        files.append(path)
    return files


# Spawns and times each command. A small process of its own: a child's peak RSS (ru_maxrss)
# starts from its spawner's, and this one has about 10 MB where the bench has torch (500 MB).
_LAUNCHER = """
import json, os, sys, time
for line in sys.stdin:
    argv, env, errors = json.loads(line)
    err = os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, err, 2)])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    os.close(err)
    print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]), flush=True)
"""


class Launcher:
    """Runs commands one at a time from a small helper process: (wall seconds from spawn to
    exit, the process's peak RSS in MB, exit status)."""

    def __enter__(self) -> Launcher:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def run(self, argv: list[str], env: dict[str, str], errors: Path) -> tuple[float, float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps([argv, env, str(errors)]) + "\n")
        self.process.stdin.flush()
        seconds, max_rss_kb, code = json.loads(self.process.stdout.readline())
        return seconds, max_rss_kb * 1024 / MB, code

    def __exit__(self, *exc: object) -> None:
        self.process.communicate()


def run_way(way: Way, files: list[Path], out: Path, warmup: int, report: Report) -> None:
    out.mkdir(parents=True, exist_ok=True)
    errors = out / "stderr.txt"
    code = 0
    with Launcher() as launcher:
        for i in range(warmup):
            launcher.run(way.command(files[0], out / f"warmup{i}.wav"), way.env, errors)
        for n, path in enumerate(files, 1):
            report(f"loop: {way.name} {n}/{len(files)}")
            command = way.command(path, out / path.name)
            seconds, peak_mb, code = launcher.run(command, way.env, errors)
            if code != 0:
                break
            way.seconds.append(seconds)
            way.peak_mb.append(peak_mb)
    if code != 0:
        lines = errors.read_text(errors="replace").strip().splitlines()
        way.failure = f"exit {code}: {lines[-1] if lines else 'no message'}"


def run_loop(
    config: Config, options: BenchOptions, machine: dict[str, Any], report: Report
) -> tuple[list[Row], list[str]]:
    """Time the loop three ways; returns (rows, notes) for the bench table and CSV."""
    from audiofx_cli.chain.spec import load_spec

    chain = options.chain or DEFAULT_CHAIN
    spec = load_spec(chain)
    notes = [
        f"loop: chain {chain}; {options.files} files of {config.duration_s:g} s, "
        f"{config.channels} ch, {options.rate_hz} Hz PCM_16"
    ]
    audiofx = audiofx_command()

    def process(src: Path, dst: Path) -> list[str]:
        return [*audiofx, "process", str(src), "-c", chain, "-o", str(dst), "--overwrite"]

    notes.append(f"loop: audiofx command: {' '.join(process(Path('IN.wav'), Path('OUT.wav')))}")
    with tempfile.TemporaryDirectory(prefix="audiofx-loop-") as tmp:
        work = Path(tmp)
        files = make_files(work / "takes", options.files, config, options.rate_hz, options.seed)
        cold = Way("audiofx-cold", process, {**os.environ, "AUDIOFX_SERVER": "off"})
        run_way(cold, files, work / cold.name, options.warmup, report)
        folder = work / "server"
        env = {**os.environ, "AUDIOFX_SERVER": "on", "AUDIOFX_SERVER_DIR": str(folder)}
        warm = Way("audiofx-server", process, env)
        notes.append(_run_with_server(warm, folder, files, work, options.warmup, report))
        ways = [cold, warm]
        sox, why = _sox_way(spec)
        if sox is not None:
            run_way(sox, files, work / sox.name, options.warmup, report)
            ways.append(sox)
            command = " ".join(sox.command(Path("IN.wav"), Path("OUT.wav")))
            notes.append(f"loop: sox command: {command}")
        else:
            notes.append(f"loop: sox: skipped, {why}")
        rows = [_row(way, config, options, machine) for way in ways]
        _check(rows, ways, files, work)
    _speedups(rows)
    return rows, notes


def _run_with_server(
    way: Way, folder: Path, files: list[Path], work: Path, warmup: int, report: Report
) -> str:
    """Start a server, run the loop through it, stop it; returns a note on its start-up."""
    from audiofx_cli.server import control

    report("loop: starting a server")
    started = time.perf_counter()
    control.start(folder, idle_timeout_s=600, environ=way.env)
    start_s = time.perf_counter() - started
    try:
        run_way(way, files, work / way.name, warmup, report)
    finally:
        status = control.stop(folder) or {}
    return (
        f"loop: audiofx-server: start-up (imports, warm-up) {start_s:.1f} s once, not in the "
        f"per-file figures; the server's resident memory {status.get('rss_bytes', 0) / MB:.0f} "
        f"MB after {status.get('jobs_served', 0)} jobs"
    )


def _sox_way(spec: Any) -> tuple[Way | None, str]:
    sox = shutil.which("sox")
    if sox is None:
        return None, "sox is not installed"
    try:
        effects = sox_effects((stage.name, stage.params) for stage in spec.stages)
    except NoSoxEquivalent as exc:
        return None, str(exc)
    return Way(
        "sox", lambda src, dst: [sox, "-q", str(src), str(dst), *effects], dict(os.environ)
    ), ""


def _row(way: Way, config: Config, options: BenchOptions, machine: dict[str, Any]) -> Row:
    channels, duration_s = config.channels, config.duration_s
    frames = max(1, int(round(duration_s * options.rate_hz)))
    row = Row(
        suite=config.suite.name,
        backend=way.name,
        device="cpu",
        device_name=machine["cpu_model"],
        channels=channels,
        duration_s=duration_s,
        sample_rate=options.rate_hz,
        samples=frames * channels,
        repeat=options.files,
        warmup=options.warmup,
        signal_mb=frames * channels * 2 / MB,
        cpu_model=machine["cpu_model"],
        threads=machine["threads"],
        torch_version=machine["torch_version"],
        audiofx_version=machine["audiofx_version"],
        load_1m=os.getloadavg()[0],
        mem_method="ru_maxrss of each process (wait4), median",
    )
    if way.failure:
        row.flag, row.note = "FAILED", way.failure
        return row
    row.median_s = statistics.median(way.seconds)
    row.min_s, row.max_s = min(way.seconds), max(way.seconds)
    row.msamples_per_s = row.samples / row.median_s / 1e6
    row.peak_mem_mb = statistics.median(way.peak_mb)
    return row


def _check(rows: list[Row], ways: list[Way], files: list[Path], work: Path) -> None:
    """Server outputs must be the in-process bytes; SoX's are compared by relative error."""
    cold = work / "audiofx-cold"
    for row, way in zip(rows, ways, strict=True):
        if row.flag == "FAILED" or way.name == "audiofx-cold":
            row.flag = row.flag or "ok"
            continue
        if way.name == "audiofx-server":
            same = all(
                (work / way.name / f.name).read_bytes() == (cold / f.name).read_bytes()
                for f in files
            )
            row.rel_error = 0.0 if same else math.nan
            row.flag = "ok" if same else "WRONG"
            row.note = (
                "outputs byte for byte the in-process ones"
                if same
                else "outputs differ from the in-process ones"
            )
            continue
        worst = 0.0
        for f in files:
            ref = sf.read(str(cold / f.name), dtype="float64", always_2d=True)[0].T
            error, problem = relative_error(work / way.name / f.name, ref)
            worst = max(worst, error) if not problem else math.nan
        row.rel_error = worst
        row.flag = "ok" if worst <= SOX_TOLERANCE else "WRONG"


def _speedups(rows: list[Row]) -> None:
    """In each row's note: how many times faster per file than audiofx in-process."""
    cold = next((r for r in rows if r.backend == "audiofx-cold" and r.flag != "FAILED"), None)
    if cold is None:
        return
    for row in rows:
        if row is not cold and math.isfinite(row.median_s) and row.median_s > 0:
            ratio = f"{cold.median_s / row.median_s:.1f}x faster per file than audiofx-cold"
            row.note = f"{row.note}; {ratio}" if row.note else ratio
