"""Float samples to integer PCM in one compiled pass (what `io.audio.quantize` computes).

Writing 16- or 24-bit files, numpy's version of the conversion makes about a dozen passes over
float64 temporaries (scale, round, clip count, dither, compare, round again, clip, shift,
cast): 3.3 s of a 4.1 s `process` of an 8 ch x 300 s file on the 2-core machine of
docs/performance.md, against 0.8 s for the same run writing floats. This kernel does it per
sample in one loop, with the same float64 arithmetic in the same order, so its integers are
identical to numpy's (tested); the dither noise still comes from numpy's generator (drawn into
a reused buffer), so the seeded noise sequence is unchanged. Built through
`dsp.jit.compile_ir` (llvmlite, cached on disk); without it, numpy converts.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

from audiofx_cli.dsp.jit import IR_ELEMENTS

_SIGNATURE = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_double,
    ctypes.c_double,
    ctypes.c_double,
    ctypes.c_double,
)


def _ir(element: str, out_int: str, dither: bool) -> str:
    """i64 quantize(x, noise, out, n, scale, lo, hi, shift): the number of clipped samples."""
    if element == "float":
        load = "%xv = load float, ptr %xp\n  %xd = fpext float %xv to double"
    else:
        load = "%xd = load double, ptr %xp"
    if dither:
        dither_ir = """
  %on = fcmp oeq double %q, %s
  %ui = shl i64 %i, 1
  %u0p = getelementptr double, ptr %noise, i64 %ui
  %u0 = load double, ptr %u0p
  %u1p = getelementptr double, ptr %u0p, i64 1
  %u1 = load double, ptr %u1p
  %d = fsub double %u0, %u1
  %sd = fadd double %s, %d
  %qd = call double @llvm.rint.f64(double %sd)
  %qq = select i1 %on, double %q, double %qd"""
    else:
        dither_ir = "\n  %qq = select i1 true, double %q, double %q"
    return f"""
declare double @llvm.rint.f64(double)
declare double @llvm.maxnum.f64(double, double)
declare double @llvm.minnum.f64(double, double)

define i64 @quantize(ptr noalias %x, ptr noalias %noise, ptr noalias %out, i64 %n,
                     double %scale, double %lo, double %hi, double %shift) {{
entry:
  %any = icmp sgt i64 %n, 0
  br i1 %any, label %loop, label %exit
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %clipped = phi i64 [0, %entry], [%clipped1, %loop]
  %xp = getelementptr {element}, ptr %x, i64 %i
  {load}
  %s = fmul double %xd, %scale
  %q = call double @llvm.rint.f64(double %s)
  %below = fcmp olt double %q, %lo
  %above = fcmp ogt double %q, %hi
  %out.of = or i1 %below, %above
  %inc = zext i1 %out.of to i64
  %clipped1 = add i64 %clipped, %inc{dither_ir}
  %c1 = call double @llvm.maxnum.f64(double %qq, double %lo)
  %c2 = call double @llvm.minnum.f64(double %c1, double %hi)
  %v = fmul double %c2, %shift
  %iv = fptosi double %v to {out_int}
  %op = getelementptr {out_int}, ptr %out, i64 %i
  store {out_int} %iv, ptr %op
  %i1 = add i64 %i, 1
  %done = icmp eq i64 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
  %total = phi i64 [0, %entry], [%clipped1, %loop]
  ret i64 %total
}}
"""


@cache
def _kernel(element: str, out_int: str, dither: bool):  # type: ignore[no-untyped-def]
    """The compiled conversion, or None when nothing can be compiled here (numpy converts)."""
    from audiofx_cli.dsp import jit

    return jit.try_compile(_ir(element, out_int, dither), "quantize", _SIGNATURE)


def quantize_compiled(
    block: np.ndarray, bits: int, noise: np.ndarray | None
) -> tuple[np.ndarray, int] | None:
    """`io.audio.quantize` in one pass, or None when no kernel is available for `block`.

    Args:
        block: float32 or float64 samples, C-contiguous.
        bits: 8 to 32.
        noise: None (no dither) or float64 uniform draws of shape (*block.shape, 2), as
            `io.audio.tpdf_noise` draws them.
    """
    element = IR_ELEMENTS.get(block.dtype.name) if block.dtype.isnative else None
    if element is None or not block.flags.c_contiguous:
        return None
    out_int = "i16" if bits <= 16 else "i32"
    kernel = _kernel(element, out_int, noise is not None)
    if kernel is None:
        return None
    scale = float(1 << (bits - 1))
    shift = float(1 << ((16 if bits <= 16 else 32) - bits))
    out = np.empty(block.shape, dtype=np.int16 if bits <= 16 else np.int32)
    noise_at = 0 if noise is None else noise.ctypes.data
    clipped = kernel(
        block.ctypes.data, noise_at, out.ctypes.data, block.size, scale, -scale, scale - 1, shift
    )
    return out, int(clipped)
