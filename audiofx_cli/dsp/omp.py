"""Run several compiled kernel calls at once on the OpenMP threads torch already has.

The lanes engine runs one kernel call per group of 4 channels, once per streamed chunk. Handing
a call to a Python thread pool goes through the GIL and two futex wake-ups: about 140 us per
chunk on the 2-core KVM machine of docs/performance.md (measured), and most of the gap between
chunks. libgomp, the OpenMP runtime that torch's wheels ship and load, keeps its threads
spinning for a while after each parallel region, so dispatching the same calls through
`GOMP_parallel` takes about 5 us. The region body is a tiny compiled driver (LLVM IR, cached
like the kernels): thread t runs calls t, t + threads, ... The ctypes call releases the GIL for
the whole region, and the calling thread works as thread 0.

`run_calls` returns False (the caller then uses its own thread pool) where libgomp is not found
next to torch, in a child forked after libgomp started its threads (they do not survive a
fork), or when compiled code is unavailable.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import cache

import numpy as np

from audiofx_cli.dsp import jit

_DRIVER_IR = """
define void @driver(ptr %data) {
entry:
  %tidf.p = getelementptr i64, ptr %data, i64 1
  %tidf = load ptr, ptr %tidf.p
  %nthf.p = getelementptr i64, ptr %data, i64 2
  %nthf = load ptr, ptr %nthf.p
  %tid32 = call i32 %tidf()
  %nth32 = call i32 %nthf()
  %tid = sext i32 %tid32 to i64
  %nth = sext i32 %nth32 to i64
  %calls = load i64, ptr %data
  %any = icmp slt i64 %tid, %calls
  br i1 %any, label %loop, label %exit
loop:
  %j = phi i64 [%tid, %entry], [%jn, %loop]
  %at = mul i64 %j, 6
  %at3 = add i64 %at, 3
  %rec = getelementptr i64, ptr %data, i64 %at3
  %fn = load ptr, ptr %rec
  %a1.p = getelementptr i64, ptr %rec, i64 1
  %a1 = load ptr, ptr %a1.p
  %a2.p = getelementptr i64, ptr %rec, i64 2
  %a2 = load ptr, ptr %a2.p
  %a3.p = getelementptr i64, ptr %rec, i64 3
  %a3 = load ptr, ptr %a3.p
  %a4.p = getelementptr i64, ptr %rec, i64 4
  %a4 = load ptr, ptr %a4.p
  %a5.p = getelementptr i64, ptr %rec, i64 5
  %a5 = load i64, ptr %a5.p
  call void %fn(ptr %a1, ptr %a2, ptr %a3, ptr %a4, i64 %a5)
  %jn = add i64 %j, %nth
  %more = icmp slt i64 %jn, %calls
  br i1 %more, label %loop, label %exit
exit:
  ret void
}
"""
_forked = False


def _after_fork() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@cache
def _runtime() -> tuple[ctypes._CFuncPtr, int, int, int] | None:  # type: ignore[name-defined]
    """(GOMP_parallel, driver address, omp_get_thread_num, omp_get_num_threads) or None."""
    if os.environ.get("AUDIOFX_NO_OPENMP"):
        return None
    try:
        import torch

        found = sorted(
            glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*"))
        )
        if not found:
            return None
        gomp = ctypes.CDLL(found[0])
        parallel = gomp.GOMP_parallel
        parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        parallel.restype = None
        thread_num = ctypes.cast(gomp.omp_get_thread_num, ctypes.c_void_p).value
        num_threads = ctypes.cast(gomp.omp_get_num_threads, ctypes.c_void_p).value
        driver = jit.compile_ir(_DRIVER_IR, "driver")
    except Exception:  # no libgomp, no symbols, no compiler: the caller's pool does the work
        return None
    return parallel, driver, int(thread_num or 0), int(num_threads or 0)


def available() -> bool:
    """True when `run_calls` can dispatch through OpenMP in this process."""
    return not _forked and _runtime() is not None


def run_calls(calls: list[tuple], threads: int) -> bool:
    """Make every call, up to `threads` at a time; False (nothing run) when OpenMP is not
    available here.

    Args:
        calls: (kernel, coef address, state address, x row pointers, y row pointers, frames)
            per call, `kernel` a compiled function of `iir_kernels.KERNEL_SIGNATURE`; the
            pointer arrays are ctypes arrays kept alive by the caller.
        threads: at most this many threads (the caller's counts as one).
    """
    runtime = None if _forked else _runtime()
    if runtime is None:
        return False
    parallel, driver, thread_num, num_threads = runtime
    data = np.empty(3 + 6 * len(calls), dtype=np.int64)
    data[:3] = (len(calls), thread_num, num_threads)
    for j, (kernel, coef, state, xs, ys, n) in enumerate(calls):
        fn = ctypes.cast(kernel, ctypes.c_void_p).value
        data[3 + 6 * j : 9 + 6 * j] = (
            fn,
            coef,
            state,
            ctypes.addressof(xs),
            ctypes.addressof(ys),
            n,
        )
    parallel(driver, data.ctypes.data, max(1, min(threads, len(calls))), 0)
    return True
