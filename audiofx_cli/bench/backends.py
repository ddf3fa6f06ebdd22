"""Benchmark backends: who filters the suite's signal, and the registry new ones join.

A backend turns a `Case` (suite, signal, rate, device) into a `Prepared` run: everything that
is not filtering (design, building, moving the signal to the device) happens in `prepare`, and
`Prepared.run()` filters the whole signal and returns the output, materialised (a lazy result
would time a call, not the work). The runner times `run()` between two `sync()` calls.

Built in (names as in ``--backends``):

- ``audiofx``: our engine (``audiofx_cli.load_chain``), streamed in chunks as ``process`` does,
  on ``--device``.
- ``scipy``: ``scipy.signal.lfilter`` one filter at a time on (b, a) polynomials, as torchfx's
  published baseline (float64 arithmetic, float32 in and out).
- ``scipy-sos``: ``scipy.signal.sosfilt`` on the fused cascade of every section, float32: the
  best plain-CPU IIR baseline.
- ``scipy-oa``: ``scipy.signal.oaconvolve`` of the fused FIR (all taps convolved into one),
  float32: the best plain-CPU FIR baseline.
- ``torchaudio``: ``torchaudio.functional.lfilter`` one filter at a time, float32 (for FIRs
  with a = [1, 0, ..., 0]), on ``--device``.
- ``torchfx``: only when ``import torchfx`` works (not a dependency); its filters through a
  ``Wave`` pipe, output materialised with ``.ys``. Skipped with a note when absent or broken.

The scipy baselines run channel by channel: the arithmetic is the same as on the whole array
(scipy loops over channels inside), and it keeps their float64 temporaries to one channel.

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
            estimate made before anything runs.
        summary: one line for the table's notes.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("iir", "fir")
    uses_device: ClassVar[bool] = False
    optional: ClassVar[bool] = False
    copies: ClassVar[float] = 1.5
    summary: ClassVar[str] = ""

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


class AudiofxBackend(Backend):
    name = "audiofx"
    kinds = ("iir", "fir", "chain", "file")
    uses_device = True
    copies = 1.5
    summary = "audiofx: load_chain + init_state/step/flush in --chunk-seconds chunks, float32"

    def work_copies(self, case_chunk_frames: int) -> float:
        return self.copies if case_chunk_frames > 0 else 6.0  # whole-signal float64 temporaries

    def prepare(self, case: Case) -> Prepared:
        if case.kind == "file":
            from audiofx_cli.bench.files import ProcessRun

            return ProcessRun(case)
        return _AudiofxRun(case)


class _AudiofxRun(TorchRun):
    def __init__(self, case: Case) -> None:
        import torch

        from audiofx_cli.api import load_chain

        super().__init__(case.device)
        chain = case.chain if case.chain is not None else case.suite.stages()
        self.chain = load_chain(chain, case.rate_hz, device=case.device)
        self.x = torch.from_numpy(case.x).to(case.device)
        self.chunk_frames = case.chunk_frames

    def run(self) -> Any:
        return stream_chain(self.chain, self.x, self.chunk_frames)


class ScipyLfilterBackend(Backend):
    name = "scipy"
    copies = 1.5
    summary = "scipy: signal.lfilter per filter on (b, a), float64 arithmetic, float32 in/out"

    def prepare(self, case: Case) -> Prepared:
        from scipy import signal

        from audiofx_cli import memory

        coeffs = [f.ba(case.rate_hz) for f in case.suite.filters]
        x = case.x

        def run() -> np.ndarray:
            out = memory.empty_array(x.shape, x.dtype)  # as audiofx: recycled, huge pages
            for c in range(x.shape[0]):
                y: np.ndarray = x[c]
                for b, a in coeffs:
                    y = signal.lfilter(b, a, y)
                out[c] = y
            return out

        return FunctionRun(run)


class ScipySOSBackend(Backend):
    name = "scipy-sos"
    kinds = ("iir",)
    copies = 1.2
    summary = "scipy-sos: signal.sosfilt on the fused cascade, float32"

    def prepare(self, case: Case) -> Prepared:
        from scipy import signal

        from audiofx_cli import memory

        sos = case.suite.fused_sos(case.rate_hz).astype(np.float32)
        x = case.x

        def run() -> np.ndarray:
            out = memory.empty_array(x.shape, x.dtype)  # as audiofx: recycled, huge pages
            for c in range(x.shape[0]):
                out[c] = signal.sosfilt(sos, x[c])
            return out

        return FunctionRun(run)


class ScipyOABackend(Backend):
    name = "scipy-oa"
    kinds = ("fir",)
    copies = 1.5
    summary = "scipy-oa: signal.oaconvolve of the fused FIR (taps convolved into one), float32"

    def prepare(self, case: Case) -> Prepared:
        from scipy import signal

        from audiofx_cli import memory

        taps = case.suite.fused_fir(case.rate_hz).astype(np.float32)
        x = case.x

        def run() -> np.ndarray:
            out = memory.empty_array(x.shape, x.dtype)  # as audiofx: recycled, huge pages
            frames = x.shape[-1]
            for c in range(x.shape[0]):
                out[c] = signal.oaconvolve(x[c], taps)[:frames]
            return out

        return FunctionRun(run)


class TorchaudioBackend(Backend):
    name = "torchaudio"
    uses_device = True
    copies = 22.0  # measured here: padded copies, conv1d windows, per-sample loop buffers
    summary = (
        "torchaudio: functional.lfilter per filter, float32, clamp=False "
        "(FIR as b = taps, a = [1, 0, ...])"
    )

    def unavailable(self) -> str | None:
        try:
            import torchaudio.functional  # noqa: F401
        except Exception as exc:  # an optional import: any failure means unavailable
            return f"cannot import torchaudio ({type(exc).__name__}: {exc})"
        return None

    def prepare(self, case: Case) -> Prepared:
        return _TorchaudioRun(case)


class _TorchaudioRun(TorchRun):
    def __init__(self, case: Case) -> None:
        import torch

        super().__init__(case.device)
        self.coeffs = []
        for f in case.suite.filters:
            b, a = f.ba(case.rate_hz)
            n = max(len(b), len(a))
            b, a = np.pad(b, (0, n - len(b))), np.pad(a, (0, n - len(a)))
            self.coeffs.append(
                (
                    torch.tensor(a, dtype=torch.float32, device=case.device),
                    torch.tensor(b, dtype=torch.float32, device=case.device),
                )
            )
        self.x = torch.from_numpy(case.x).to(case.device)

    def run(self) -> Any:
        import torch
        from torchaudio.functional import lfilter

        with torch.no_grad():
            y = self.x
            for a, b in self.coeffs:
                y = lfilter(y, a, b, clamp=False)
        return y


for _backend in (
    AudiofxBackend(),
    ScipyLfilterBackend(),
    ScipySOSBackend(),
    ScipyOABackend(),
    TorchaudioBackend(),
):
    register(_backend)


def _register_optional() -> None:
    from audiofx_cli.bench.files import IOOnlyBackend
    from audiofx_cli.bench.torchfx_backend import TorchfxBackend

    register(TorchfxBackend())
    register(IOOnlyBackend())


_register_optional()
