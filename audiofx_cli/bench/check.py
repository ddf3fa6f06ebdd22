"""Correctness of every benchmark output against a float64 reference on the same signal.

Reference, computed channel by channel in float64, in blocks of `BLOCK_FRAMES` (the filter
state carried from block to block: the same output as whole rows), and kept rounded to float32
(one signal-sized copy; the rounding adds at most 6e-8 of the peak, far below any tolerance):

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

BLOCK_FRAMES = 1 << 18  # float64 work in blocks of 2 MB: cache-sized, 2-3x faster than whole rows


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
            ref[c] = _fir_blocks(signal, x[c], taps)
    else:
        sos = case.suite.fused_sos(case.rate_hz)
        for c in range(x.shape[0]):
            zi = np.zeros((sos.shape[0], 2))
            for start in range(0, x.shape[-1], BLOCK_FRAMES):
                block = x[c, start : start + BLOCK_FRAMES].astype(np.float64)
                ref[c, start : start + BLOCK_FRAMES], zi = signal.sosfilt(sos, block, zi=zi)
    return ref


def _fir_blocks(signal: Any, x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """The causal convolution of one channel, block by block: each block's 'valid' part of
    the convolution of the block and the taps - 1 frames before it (zeros before the start)."""
    out = np.empty(x.shape, np.float32)
    history = taps.size - 1
    for start in range(0, x.size, BLOCK_FRAMES):
        low = start - history
        segment = x[max(low, 0) : start + BLOCK_FRAMES].astype(np.float64)
        if low < 0:
            segment = np.concatenate([np.zeros(-low), segment])
        out[start : start + BLOCK_FRAMES] = signal.oaconvolve(segment, taps, mode="valid")
    return out


def _blocks(y: Any) -> Any:
    """Yield (float64 block, channels, first frame) from any output, in cache-sized blocks."""
    if isinstance(y, (str, Path)):
        from audiofx_cli.bench.files import read_blocks

        pos = 0
        for block in read_blocks(Path(y), 1 << 20):
            yield block.astype(np.float64), slice(None), pos
            pos += block.shape[-1]
        return
    for c in range(y.shape[0]):
        row = y[c]
        if not isinstance(row, np.ndarray):  # a tensor, maybe on a GPU: one channel at a time
            row = row.detach().cpu().numpy()
        for start in range(0, row.shape[-1], BLOCK_FRAMES):
            yield row[None, start : start + BLOCK_FRAMES].astype(np.float64), slice(c, c + 1), start


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
    for block, channels, start in _blocks(y):
        expected = ref[channels, start : start + block.shape[-1]].astype(np.float64)
        if not np.all(np.isfinite(block)):
            return float("nan"), "output holds NaN or Inf"
        if block.size:
            worst = max(worst, float(np.max(np.abs(block - expected))))
    return (worst / peak if peak > 0 else worst), ""
