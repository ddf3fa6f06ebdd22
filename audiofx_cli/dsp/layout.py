"""Fast copies between the file layout (frames, channels) and the engine's (channels, frames).

`process` turns every block it reads from (frames, channels), as libsndfile delivers it, into
(channels, frames) for the chain, and every output block back. numpy and torch do these
transposes at 1-3 GB/s (an 8-channel 10 s float32 block: 4.3-8 ms, more than the IIR chain
takes); a compiled copy with the channel count fixed at compile time, which LLVM vectorises
into wide loads and shuffles, takes 1.4-1.7 ms (0.3 ms for stereo) on the 2-core machine of
docs/performance.md. Kernels are built per (channels, dtype, direction) through
`jit.compile_ir` (cached on disk like the filter kernels). Without a compiler, numpy
does the copy.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

from audiofx_cli import memory
from audiofx_cli.dsp.jit import IR_ELEMENTS

MAX_CHANNELS = 64  # above this numpy copies (one kernel per channel count is compiled)
_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _ir(channels: int, element: str, to_rows: bool) -> str:
    """Copy n frames between src and dst: to_rows (n, C) -> (C, n), else (C, n) -> (n, C)."""
    src = "%tc = add i64 %tC, %c" if to_rows else "%tc = add i64 %cn, %t"
    dst = "%ct = add i64 %cn, %t" if to_rows else "%ct = add i64 %tC, %c"
    return f"""
define void @copy(ptr noalias %src, ptr noalias %dst, i64 %n) {{
entry:
  %any = icmp sgt i64 %n, 0
  br i1 %any, label %frame, label %exit
frame:
  %t = phi i64 [0, %entry], [%t1, %next]
  %tC = mul i64 %t, {channels}
  br label %channel
channel:
  %c = phi i64 [0, %frame], [%c1, %channel]
  %cn = mul i64 %c, %n
  {src}
  {dst}
  %sp = getelementptr {element}, ptr %src, i64 %tc
  %v = load {element}, ptr %sp
  %dp = getelementptr {element}, ptr %dst, i64 %ct
  store {element} %v, ptr %dp
  %c1 = add i64 %c, 1
  %cdone = icmp eq i64 %c1, {channels}
  br i1 %cdone, label %next, label %channel
next:
  %t1 = add i64 %t, 1
  %done = icmp eq i64 %t1, %n
  br i1 %done, label %exit, label %frame
exit:
  ret void
}}
"""


@cache
def _kernel(channels: int, element: str, to_rows: bool):  # type: ignore[no-untyped-def]
    """The compiled copy, or None when nothing can be compiled here (numpy copies)."""
    from audiofx_cli.dsp import jit

    return jit.try_compile(_ir(channels, element, to_rows), "copy", _SIGNATURE)


def _copy(src: np.ndarray, shape: tuple[int, int], to_rows: bool) -> np.ndarray | None:
    element = IR_ELEMENTS.get(src.dtype.name) if src.dtype.isnative else None
    channels = shape[0] if to_rows else shape[1]
    if element is None or not src.flags.c_contiguous or not 1 < channels <= MAX_CHANNELS:
        return None
    kernel = _kernel(channels, element, to_rows)
    if kernel is None:
        return None
    out = memory.empty_array(shape, src.dtype)
    kernel(src.ctypes.data, out.ctypes.data, shape[1] if to_rows else shape[0])
    return out


def to_rows(block: np.ndarray) -> np.ndarray:
    """(frames, channels) -> a new C-contiguous (channels, frames) array (same dtype).

    Example:
        >>> block = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> to_rows(block).tolist()
        [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    """
    out = _copy(block, (block.shape[1], block.shape[0]), True)
    return np.ascontiguousarray(block.T) if out is None else out


def to_frames(rows: np.ndarray) -> np.ndarray:
    """(channels, frames) -> a new C-contiguous (frames, channels) array (same dtype).

    Example:
        >>> to_frames(np.array([[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])).tolist()
        [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    """
    out = _copy(rows, (rows.shape[1], rows.shape[0]), False)
    return np.ascontiguousarray(rows.T) if out is None else out
