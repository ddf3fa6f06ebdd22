"""Bit crushing as a compiled kernel (numba, imported on first use): sample-and-hold every
`downsample` samples, then the mid-tread quantiser of `dsp.level.quantize_midtread`, in one
pass over rows of float32 / float64 samples (arithmetic in float64; the step is a power of
two, so x / step is exact and the result equals the torch function's in float64)."""

from __future__ import annotations

import numpy as np


def bitcrush_rows(
    x: np.ndarray, y: np.ndarray, held: np.ndarray, phase: int, downsample: int, bits: int
) -> int:
    """y = step floor(h / step + 1/2), step = 2^(1 - bits), h the input held from the first
    sample of each group of `downsample` samples (groups counted from the stream's start).

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        held: (rows,) float64, the value held from before x (any value when phase is 0).
            Updated in place.
        phase: position of x's first sample in its group (stream index mod downsample).

    Returns:
        the phase after x.
    """
    from audiofx_cli.dsp import prefilter
    from audiofx_cli.dsp.crush_kernels import crush_rows

    step = 2.0 ** (1 - bits)
    args = (x, y, held, phase, downsample, step)
    prefilter.run_rows(crush_rows, x.shape[0], *args, cost=x.size)
    return (phase + x.shape[1]) % downsample
