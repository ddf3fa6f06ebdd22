"""Compiled kernels (numba) of the delay lines: the feedback delay and the multi-tap echo.

Both keep their line in a float64 ring (rows, R) updated in place, read the input and write
the output in the signal's dtype (float32 or float64), and work through the signal in
segments in which no line wraps and no read depends on a write of the same segment, so every
inner loop is a plain loop over consecutive samples (vectorised by LLVM). Rows [r0, r1) so
`prefilter.run_rows` can spread rows over threads (`nogil`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 256  # echo: samples per segment at most
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def delay_rows(x, y, ring, pos, feedback, mix, r0, r1):  # type: ignore[no-untyped-def]
    """d[n] = w[n - D], w[n] = x[n] + feedback d[n], y = (1 - mix) x + mix d.

    ring: (rows, D) float64 with w[n - D] at ring[(pos + k) % D] for the k-th sample of x
    (w of the D samples before x, oldest at `pos`). A segment ends where the ring wraps: each
    position is read, then written, once per segment."""
    n = x.shape[1]
    length = ring.shape[1]
    for r in range(r0, r1):
        line, xr, yr = ring[r], x[r], y[r]
        p, i = pos, 0
        while i < n:
            seg = min(length - p, n - i)
            for j in range(seg):
                delayed = line[p + j]
                xv = xr[i + j]
                line[p + j] = xv + feedback * delayed
                yr[i + j] = (1.0 - mix) * xv + mix * delayed
            i += seg
            p = 0 if p + seg == length else p + seg


@njit(**_JIT)
def echo_rows(x, y, ring, start, delays, gains, direct, r0, r1):  # type: ignore[no-untyped-def]
    """y[n] = direct x[n] + sum_j gains[j] x[n - delays[j]] (taps in order).

    ring: (rows, R) float64, x[n] at ring[n mod R] (R a power of two > max delay; zeros
    before the stream); start: stream index of x's first sample. Segments are at most the
    shortest delay long, so their reads precede their writes."""
    n = x.shape[1]
    mask = np.uint64(ring.shape[1] - 1)
    step = min(BLOCK, delays.min())
    acc = np.empty(BLOCK)
    for r in range(r0, r1):
        line, xr, yr = ring[r], x[r], y[r]
        for s in range(0, n, step):
            m = min(step, n - s)
            for j in range(m):
                acc[j] = 0.0
            for t in range(delays.shape[0]):
                back = np.uint64(start + s - delays[t])  # mod 2^64, then R
                gain = gains[t]
                for j in range(m):
                    acc[j] += gain * line[(back + np.uint64(j)) & mask]
            at = np.uint64(start + s)
            for j in range(m):
                xv = xr[s + j]
                line[(at + np.uint64(j)) & mask] = xv
                yr[s + j] = direct * xv + acc[j]
