"""The modulation filterbank's pre-filter and low-pass per row, compiled with numba.

The filterbanks (gammatone bands, the modulation filterbanks' band-passes, King 2019's
band-passes) and the adaptation loops run on the lanes engine (`audiofx_cli.dsp.bank`). What
stays here: the modulation filterbank's shared pre-filter and low-pass per row
(`prefilter_rows`), once per input row. Arithmetic is float64 with float64 state whatever the
output dtype.

Every kernel takes explicit state arrays that it updates in place (exact streaming) and a row
range [r0, r1) so `run_rows` can spread rows over threads (numba `nogil`). Compiled code is
cached on disk (numba `cache=True`), so only the first call on a machine pays the compile time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numba import njit

_POOL: ThreadPoolExecutor | None = None
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


def _threads() -> int:
    import torch

    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def run_rows(kernel: Callable[..., None], n_rows: int, *args: Any, cost: int = 0) -> None:
    """Call ``kernel(*args, r0, r1)`` over [0, n_rows), split across threads when worth it.

    Args:
        kernel: a compiled kernel whose last two arguments are the row range.
        n_rows: number of rows.
        cost: samples x filters of the whole call; below 200k one thread does it all.
    """
    global _POOL
    threads = min(_threads(), n_rows)
    if threads <= 1 or cost < 200_000:
        kernel(*args, 0, n_rows)
        return
    if _POOL is None or _POOL._max_workers < threads:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="audiofx-kernel")
    bounds = np.linspace(0, n_rows, threads + 1).astype(np.int64)
    futures = [
        _POOL.submit(kernel, *args, int(bounds[i]), int(bounds[i + 1]))
        for i in range(threads)
        if bounds[i + 1] > bounds[i]
    ]
    for future in futures:
        future.result()


@njit(**_JIT)
def prefilter_rows(x, out, pre, lp_sos, state, v, r0, r1):
    """AMT modfilterbank's shared part, per row r: the optional first-order pre-filter
    (pre = [b0, b1, -a1], unused when pre[0] == 0) into v[r] (float64, the input of the
    band-passes, which `audiofx_cli.dsp.bank` runs) and the 2.5 Hz low-pass (when
    lp_sos[0] != 0) into out[r, 0]. state (R, >= 4): [pre x1, pre y1, lp z1, lp z2, ...]."""
    lb0, lb1, lb2, la1, la2 = lp_sos[0], lp_sos[1], lp_sos[2], lp_sos[4], lp_sos[5]
    use_pre = pre[0] != 0.0
    use_lp = lb0 != 0.0
    for r in range(r0, r1):
        p0, p1, z1, z2 = state[r, 0], state[r, 1], state[r, 2], state[r, 3]
        for t in range(x.shape[1]):
            u = x[r, t]
            if use_pre:
                y = pre[0] * u + pre[1] * p0 + pre[2] * p1
                p0 = u
                p1 = y
                u = y
            v[r, t] = u
            if use_lp:
                y = lb0 * u + z1
                z1 = lb1 * u - la1 * y + z2
                z2 = lb2 * u - la2 * y
                out[r, 0, t] = y
        state[r, 0], state[r, 1], state[r, 2], state[r, 3] = p0, p1, z1, z2
