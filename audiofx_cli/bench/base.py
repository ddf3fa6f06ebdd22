"""Benchmark types: a `Case` to measure, a `Backend` that prepares it, the `Prepared` run the
runner times, and the registry (`BACKENDS`, `register`) backends join.

A backend turns a `Case` (suite, signal, rate, device) into a `Prepared` run: everything that
is not filtering (design, building, moving the signal to the device) happens in `prepare`, and
`Prepared.run()` filters the whole signal and returns the output, materialised (a lazy result
would time a call, not the work). The runner times `run()` between two `sync()` calls.

Example (a test-only backend)::

    class Doubler(Backend):
        name = "doubler"
        def prepare(self, case):
            return FunctionRun(lambda: case.x * 2)
    register(Doubler())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from audiofx_cli.bench.suites import Suite


@dataclass
class Case:
    """One measurement: a suite on one signal, for one device.

    Attributes:
        suite: what to filter.
        x: (channels, frames) float32 test signal, shared by every backend (never modified).
        rate_hz: sample rate.
        device: torch device for backends that use one ('cpu', 'cuda', 'cuda:1').
        chain: chain for the chain / file suites (path, preset or stage list); None: the
            suite's filters.
        chunk_frames: audiofx streaming chunk; 0 means the whole signal in one step.
        input_path: the generated file (file suite).
        workdir: a temporary folder for outputs (file suite).
    """

    suite: Suite
    x: np.ndarray
    rate_hz: int
    device: str = "cpu"
    chain: Any = None
    chunk_frames: int = 0
    input_path: Path | None = None
    workdir: Path | None = None

    @property
    def kind(self) -> str:
        return self.suite.kind


class Prepared:
    """A backend ready to run a case. `run()` returns the output: a (channels, frames) array
    or tensor, or the path of a written file (file suite)."""

    device: str = "cpu"

    def run(self) -> Any:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (CUDA); called before and after each timed run."""


class FunctionRun(Prepared):
    """A `Prepared` from a plain function (for simple and test backends)."""

    def __init__(self, fn: Callable[[], Any], device: str = "cpu") -> None:
        self.fn, self.device = fn, device

    def run(self) -> Any:
        return self.fn()


class TorchRun(Prepared):
    """Base of torch backends: runs under no_grad and synchronises CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)


class Backend:
    """A way to filter a suite. Subclass, set the class attributes, implement `prepare`.

    Attributes:
        name: the ``--backends`` name.
        kinds: suite kinds it can run ('iir', 'fir', 'chain', 'file').
        uses_device: runs on ``--device`` (else always on the CPU).
        optional: not a dependency: when unavailable or failing it is skipped with a note
            instead of reported as failed.
        copies: signal-sized buffers alive while it runs (output included), for the memory
            estimate made before anything runs (and where its calibration run failed).
        summary: one line for the table's notes.
        ours: audiofx's own engine: always the full configuration (never cut to fewer
            repeats or a slice by the time budget).
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("iir", "fir")
    uses_device: ClassVar[bool] = False
    optional: ClassVar[bool] = False
    copies: ClassVar[float] = 1.5
    summary: ClassVar[str] = ""
    ours: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """Why it cannot run here (None when it can)."""
        return None

    def work_copies(self, case_chunk_frames: int) -> float:
        return self.copies

    def prepare(self, case: Case) -> Prepared:
        raise NotImplementedError


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add (or replace) a backend in the registry; returns it."""
    BACKENDS[backend.name] = backend
    return backend


def stream_chain(chain: Any, x: Any, chunk_frames: int, dtype: Any = None) -> Any:
    """`audiofx_cli.stream.run_tensor`: the chain over an in-memory signal in chunks, as the
    `process` engine streams a file (imported lazily: the bench plans without torch)."""
    from audiofx_cli.stream import run_tensor

    return run_tensor(chain, x, chunk_frames, dtype)
