"""Correctness of every benchmark output against a float64 reference on the same signal.

Reference, computed channel by channel in float64 and kept rounded to float32 (one signal-sized
copy; the rounding adds at most 6e-8 of the peak, far below any tolerance used here):

- IIR suites (api, iir, file): ``scipy.signal.sosfilt`` of every section, designed directly
  with scipy (not through audiofx), on the float64 signal.
- fir: ``scipy.signal.oaconvolve`` of the fused FIR (the filters' taps convolved in float64).
- chain (and file with ``--chain``): audiofx itself in float64 on the CPU: arbitrary chains
  have no independent implementation, so this only catches float32 and device errors.

The error is ``max |y - ref| / max |ref|`` over all channels and samples (relative to the
reference's peak; the test signal has peak 1 per channel). NaN or Inf anywhere gives NaN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.bench.base import Case, stream_chain


def reference_label(case: Case) -> str:
    if case.chain is not None:
        return "audiofx float64 on the CPU (no independent reference for a chain file)"
    if case.kind == "fir":
        return "scipy.signal.oaconvolve of the fused taps, float64"
    return "scipy.signal.sosfilt of every section, float64"


def reference(case: Case) -> np.ndarray:
    """The expected output of the case's filters on `case.x`, (channels, frames) float32."""
    x = case.x
    if case.chain is not None:
        import torch

        from audiofx_cli.api import load_chain

        chain = load_chain(case.chain, case.rate_hz, device="cpu", dtype=torch.float64)
        chunk = case.chunk_frames or case.rate_hz * 10
        out = stream_chain(chain, torch.from_numpy(x), chunk, dtype=torch.float64)
        return out.numpy()
    from scipy import signal

    ref = np.empty_like(x)
    if case.kind == "fir":
        taps = case.suite.fused_fir(case.rate_hz)
        for c in range(x.shape[0]):
            ref[c] = signal.oaconvolve(x[c].astype(np.float64), taps)[: x.shape[-1]]
    else:
        sos = case.suite.fused_sos(case.rate_hz)
        for c in range(x.shape[0]):
            ref[c] = signal.sosfilt(sos, x[c].astype(np.float64))
    return ref


def _rows(y: Any) -> Any:
    """Yield (channel_block, frame_offset) pairs of float64 numpy arrays from any output."""
    if isinstance(y, (str, Path)):
        from audiofx_cli.bench.files import read_blocks

        pos = 0
        for block in read_blocks(Path(y), 1 << 20):
            yield block.astype(np.float64), pos
            pos += block.shape[-1]
        return
    if not isinstance(y, np.ndarray):  # a tensor, maybe on a GPU: one channel at a time
        for c in range(y.shape[0]):
            yield y[c : c + 1].detach().double().cpu().numpy(), (c,)
        return
    for c in range(y.shape[0]):
        yield y[c : c + 1].astype(np.float64), (c,)


def output_shape(y: Any) -> tuple[int, ...]:
    if isinstance(y, (str, Path)):
        import soundfile as sf

        info = sf.info(str(y))
        return (info.channels, info.frames)
    return tuple(y.shape)


def relative_error(y: Any, ref: np.ndarray) -> tuple[float, str]:
    """(max |y - ref| / max |ref|, problem) where problem is '' or why y is unusable.

    `y` is an array or tensor shaped like `ref`, or the path of an audio file holding it.
    """
    shape = output_shape(y)
    if shape != ref.shape:
        return float("nan"), f"output shape {shape} differs from the expected {ref.shape}"
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    worst = 0.0
    for block, where in _rows(y):
        if isinstance(where, tuple):
            expected = ref[where[0] : where[0] + 1].astype(np.float64)
        else:
            expected = ref[:, where : where + block.shape[-1]].astype(np.float64)
        if not np.all(np.isfinite(block)):
            return float("nan"), "output holds NaN or Inf"
        if block.size:
            worst = max(worst, float(np.max(np.abs(block - expected))))
    return (worst / peak if peak > 0 else worst), ""
