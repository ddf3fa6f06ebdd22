"""Benchmark backends: who filters the suite's signal, and the registry new ones join.

The types (`Case`, `Backend`, `Prepared`) and the registry are in `audiofx_cli.bench.base`.

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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiofx_cli.bench.base import (
    BACKENDS,
    Backend,
    Case,
    FunctionRun,
    Prepared,
    TorchRun,
    register,
    stream_chain,
)
from audiofx_cli.bench.files import IOOnlyBackend, ProcessRun
from audiofx_cli.bench.torchfx_backend import TorchfxBackend

__all__ = ["BACKENDS", "Backend", "Case", "FunctionRun", "Prepared", "register", "stream_chain"]


class AudiofxBackend(Backend):
    name = "audiofx"
    kinds = ("iir", "fir", "chain", "file")
    uses_device = True
    copies = 1.5
    ours = True
    summary = "audiofx: load_chain + init_state/step/flush in --chunk-seconds chunks, float32"

    def work_copies(self, case_chunk_frames: int) -> float:
        return self.copies if case_chunk_frames > 0 else 6.0  # whole-signal float64 temporaries

    def prepare(self, case: Case) -> Prepared:
        if case.kind == "file":
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


register(TorchfxBackend())
register(IOOnlyBackend())
