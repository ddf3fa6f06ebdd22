"""The server's warm-up, and what each forked job resets so it behaves as a fresh process.

Warm-up runs real commands once (each preset through `process`, then `info`, `validate` and
`stages`) on a short generated file, with `--device cpu`, so typer, rich, torch, scipy, the
compiled kernels and the lazily imported modules are in memory before the first job forks.
CUDA is never initialised in the server: a forked child could not use it (a job that asks for
a GPU initialises CUDA itself).

OpenMP thread teams (libgomp's, which torch and MKL use) do not survive fork: a child that
enters a parallel region after its parent ran one with several threads waits for ever for
threads it does not have (measured here: `x.abs().sum()` on 38 M samples in the parent, then
the same in a forked child, hangs). So the server sets torch to one thread before anything
runs and never starts a thread team; each job sets torch back to the thread count a fresh
process has (`after_fork`), and its first parallel region starts a team of its own.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from audiofx_cli.server.protocol import PACKAGE_DIR

Runner = Callable[[list[str], str], int]  # (argv, program name) -> exit code
WARM_RATE_HZ = 48000
WARM_SECONDS = 0.25


def presets() -> list[str]:
    return sorted(p.stem for p in (Path(PACKAGE_DIR) / "presets").glob("*.yaml"))


def warm_up(runner: Runner, log: Callable[[str], None]) -> int:
    """Import and run what the commands need (see the module docstring); returns the torch
    thread count jobs must restore."""
    import torch

    threads = torch.get_num_threads()  # what a fresh process has: cores or OMP_NUM_THREADS
    torch.set_num_threads(1)  # no OpenMP thread team in the server (module docstring)
    with tempfile.TemporaryDirectory(prefix="audiofx-warm-") as folder:
        source = _write_noise(Path(folder) / "warm.wav")
        commands = [  # every preset through the batch path, which picks wav or npz itself
            ["process", str(source), "-c", name, "--out-dir", str(Path(folder) / name)]
            + ["--device", "cpu", "--overwrite", "-q"]
            for name in presets()
        ]
        out = str(Path(folder) / "single.wav")
        commands += [["process", str(source), "-c", "vocal", "-o", out, "--device", "cpu", "-q"]]
        commands += [["info", str(source)], ["validate", "vocal"], ["stages"]]
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            for args in commands:
                code = runner(["audiofx", *args], "audiofx")
                if code:
                    log(f"warm-up: 'audiofx {' '.join(args)}' exited {code}")
    _forget_environment_reads()
    torch.manual_seed(torch.initial_seed())  # the default generator as a fresh process has it
    release = getattr(sys.modules.get("audiofx_cli.memory"), "release", None)
    if release is not None:
        release()  # pooled buffers: children start without them, as a fresh process does
    gc.collect()
    gc.freeze()  # the warm objects are never collected: forked jobs do not copy their pages
    return threads


def _write_noise(path: Path) -> Path:
    import numpy as np
    import soundfile as sf

    frames = int(WARM_RATE_HZ * WARM_SECONDS)
    noise = 0.1 * np.random.default_rng(0).standard_normal(frames)
    sf.write(str(path), noise, WARM_RATE_HZ, subtype="PCM_16")
    return path


def _forget_environment_reads() -> None:
    """typer.rich_utils reads TERMINAL_WIDTH, FORCE_COLOR, ... once, at import: let each job
    import it with its own environment (it is only needed for help and error screens)."""
    module = sys.modules.pop("typer.rich_utils", None)
    typer = sys.modules.get("typer")
    if module is not None and typer is not None and hasattr(typer, "rich_utils"):
        delattr(typer, "rich_utils")


def after_fork(threads: int) -> None:
    """In a job: torch's thread count, the random state and the warning registries of a fresh
    process."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # unseeded, as at start-up (Python's `random` reseeds itself)
    warnings.onceregistry.clear()
    warnings._filters_mutated()  # noqa: SLF001 (forget which warnings were already shown)
