"""The bit crusher's compiled kernel (numba); `audiofx_cli.dsp.crush` documents it."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def crush_rows(x, y, held, phase, downsample, step, r0, r1):  # type: ignore[no-untyped-def]
    """Rows [r0, r1) of `dsp.crush.bitcrush_rows`."""
    n = x.shape[1]
    scale = 1.0 / step  # a power of two: x * scale == x / step exactly
    for r in range(r0, r1):
        xr, yr = x[r], y[r]
        if downsample == 1:
            for j in range(n):
                yr[j] = np.floor(xr[j] * scale + 0.5) * step
            continue
        # the group in progress (from before x), then whole groups: quantise once, hold
        value = held[r]
        j = 0
        while j < n:
            if j > 0 or phase == 0:
                value = float(xr[j])
            q = np.floor(value * scale + 0.5) * step
            stop = min(n, j + (downsample - phase if j == 0 else downsample))
            for k in range(j, stop):
                yr[k] = q
            j = stop
        held[r] = value
