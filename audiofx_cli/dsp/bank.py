"""Run a bank of complex one-pole cascades on the lanes engine (gammatone, AMT efilt).

A bank is a list of lanes, each one (input row, output row, filter): lane l reads row
`x_row[l]` of x, writes row `y_row[l]` of y, and runs `order` equal complex one-poles with
pole `pole[l]` and input gain `gain[l]`, writing post[l] * Re(y) or post[l] * |y|
(`envelope[l]`). Lanes are packed 8 to a kernel call (two <4 x double> groups, see
`audiofx_cli.dsp.bank_kernels`), calls of one output mode together, and the calls are spread
over the threads by the IIR engine's dispatcher (OpenMP, or a thread pool).

Example:
    >>> import numpy as np
    >>> x = np.zeros((1, 8)); x[0, 0] = 1.0
    >>> y = np.zeros((1, 8)); state = np.zeros((1, 1, 2))
    >>> run(x, y, [0], [0], np.array([0.5]), np.array([1.0]), np.array([1.0]), [False], state)
    >>> y[0, :4].tolist()
    [1.0, 0.5, 0.25, 0.125]
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from audiofx_cli.dsp import bank_kernels, iir_cpu

GROUPS = 2  # <4 x double> groups per kernel call (8 lanes): measured as fast as 1 or 4
LANES = bank_kernels.GROUP_LANES * GROUPS


def run(
    x: np.ndarray,
    y: np.ndarray,
    x_row: Sequence[int],
    y_row: Sequence[int],
    pole: np.ndarray,
    gain: np.ndarray,
    post: np.ndarray,
    envelope: Sequence[bool],
    state: np.ndarray,
    threads: int = 1,
) -> None:
    """Filter every lane of the bank over all of x's frames (see the module docstring).

    Args:
        x: (rows, frames) float32 or float64, C-contiguous.
        y: (out rows, frames), x's frame count, float32 or float64, C-contiguous.
        x_row, y_row: per lane, the row it reads and the row it writes (no two lanes write
            the same row).
        pole: complex (lanes,); gain, post: float64 (lanes,); envelope: bool (lanes,).
        state: (lanes, order, 2) float64, Re / Im of each stage; updated in place.
        threads: kernel calls run up to this many at once.
    """
    n_lanes, order = state.shape[0], state.shape[1]
    frames = x.shape[1]
    if n_lanes == 0 or frames == 0:
        return
    coef_all = np.stack([pole.real, pole.imag, -pole.imag, gain, post]).astype(np.float64)
    jobs, finishes = [], []
    modes = np.asarray(envelope, dtype=bool)
    for mode in (False, True):
        chosen = np.flatnonzero(modes == mode)
        if chosen.size == 0:
            continue
        kernel = bank_kernels.complex_bank(order, GROUPS, str(x.dtype), str(y.dtype), mode)
        for start in range(0, chosen.size, LANES):
            job, finish = _job(kernel, x, y, x_row, y_row, coef_all, state, chosen[start:][:LANES])
            jobs.append(job)
            finishes.append(finish)
    iir_cpu._dispatch(jobs, threads)  # noqa: SLF001 (the engine's own dispatcher)
    for finish in finishes:
        finish()


def _job(kernel, x, y, x_row, y_row, coef_all, state, lanes: np.ndarray):  # type: ignore[no-untyped-def]
    """(job, finish) for up to LANES lanes: unused lanes repeat the first lane's input and
    coefficients and write to scratch."""
    pad = LANES - lanes.size
    idx = np.concatenate([lanes, np.repeat(lanes[:1], pad)])
    coef = np.ascontiguousarray(coef_all[:, idx])
    kstate = np.ascontiguousarray(state[idx].transpose(1, 2, 0))  # (order, 2, LANES)
    xs = [x.ctypes.data + int(x_row[i]) * x.strides[0] for i in idx]
    ys = [y.ctypes.data + int(y_row[i]) * y.strides[0] for i in lanes]
    scratch = np.empty((pad, x.shape[1]), dtype=y.dtype) if pad else None
    if scratch is not None:
        ys += [scratch.ctypes.data + k * scratch.strides[0] for k in range(pad)]
    ptrs = ctypes.c_void_p * LANES

    def finish() -> None:
        state[lanes] = kstate[:, :, : lanes.size].transpose(2, 0, 1)

    keep = (coef, kstate, scratch)
    job = (kernel, coef.ctypes.data, kstate.ctypes.data, ptrs(*xs), ptrs(*ys), x.shape[1], keep)
    return job, finish
