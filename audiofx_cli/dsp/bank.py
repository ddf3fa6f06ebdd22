"""Run filterbanks on the lanes engine: gammatone bands, modulation filterbanks, King 2019.

A bank is a list of lanes, each one (input row, output row, filter): lane l reads row
`x_row[l]` of x, writes row `y_row[l]` of y and runs its own filter with its own state.
`run` runs complex one-pole cascades (`order` equal one-poles with pole `pole[l]` and input
gain `gain[l]`, output post[l] * Re(y) or post[l] * |y|, `envelope[l]`); `run_sos` runs a
cascade of second-order sections per lane; `run_adapt` runs AMT's adaptation loops (a
nonlinear recursion) with a lane per row. Lanes are packed 8 to a kernel call (two
<4 x double> groups, see `audiofx_cli.dsp.bank_kernels`), and the calls are spread over the
threads by the IIR engine's dispatcher (OpenMP, or a thread pool).

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
    """Complex one-pole cascades over all of x's frames (see the module docstring).

    Args:
        x: (rows, frames) float32 or float64, C-contiguous.
        y: (out rows, frames), x's frame count, float32 or float64, C-contiguous.
        x_row, y_row: per lane, the row it reads and the row it writes (no two lanes write
            the same row).
        pole: complex (lanes,); gain, post: float64 (lanes,); envelope: bool (lanes,).
        state: (lanes, order, 2) float64, Re / Im of each stage; updated in place.
        threads: kernel calls run up to this many at once.
    """
    order = state.shape[1]
    coef = np.stack([pole.real, pole.imag, -pole.imag, gain, post]).astype(np.float64)
    modes = np.asarray(envelope, dtype=bool)
    kernels = {
        mode: bank_kernels.complex_bank(order, GROUPS, str(x.dtype), str(y.dtype), mode)
        for mode in (False, True)
        if (modes == mode).any()
    }
    _run(kernels, modes, x, y, x_row, y_row, coef, state, threads)


def run_sos(
    x: np.ndarray,
    y: np.ndarray,
    x_row: Sequence[int],
    y_row: Sequence[int],
    sos: np.ndarray,
    state: np.ndarray,
    threads: int = 1,
) -> None:
    """A cascade of second-order sections per lane over all of x's frames.

    Args:
        x, y, x_row, y_row, threads: as in `run`.
        sos: (lanes, n_sections, 6) float64 sections with a0 == 1.
        state: (lanes, n_sections, 2) float64, scipy's zi of each section; updated in place.
    """
    n_sections = sos.shape[1]
    coef = np.concatenate(
        [np.stack([s[:, 0], s[:, 1], s[:, 2], -s[:, 4], -s[:, 5]]) for s in sos.transpose(1, 0, 2)]
    )  # (5 n_sections, lanes): b0, b1, b2, -a1, -a2 of each section in turn
    kernel = bank_kernels.sos_bank(n_sections, GROUPS, str(x.dtype), str(y.dtype))
    modes = np.zeros(state.shape[0], dtype=bool)
    _run({False: kernel}, modes, x, y, x_row, y_row, coef, state, threads)


def run_adapt(
    x: np.ndarray,
    y: np.ndarray,
    constants: np.ndarray,
    limited: bool,
    state: np.ndarray,
    threads: int = 1,
) -> None:
    """AMT's adaptation loops on every row of x (lane r reads row r, writes row r of y).

    Args:
        x, y: (rows, frames) as in `run`.
        constants: float64 values in the order of `bank_kernels.adapt_params`: gain, minlvl,
            corr, mult, then a1, b0, factor, expfac, offset of each loop.
        limited: apply the overshoot limiter.
        state: (rows, loops) float64, the loops' divisors; updated in place.
        threads: as in `run`.
    """
    rows, n_loops = state.shape
    coef = np.repeat(np.asarray(constants, dtype=np.float64)[:, None], rows, axis=1)
    kernel = bank_kernels.adapt_bank(n_loops, limited, GROUPS, str(x.dtype), str(y.dtype))
    lanes = np.arange(rows)
    _run({False: kernel}, np.zeros(rows, dtype=bool), x, y, lanes, lanes, coef, state, threads)


def _run(kernels, modes, x, y, x_row, y_row, coef, state, threads) -> None:  # type: ignore[no-untyped-def]
    """Pack the lanes of each mode into kernel calls, run them all, write the states back."""
    if state.shape[0] == 0 or x.shape[1] == 0:
        return
    flat = state.reshape(state.shape[0], -1)  # (lanes, state rows), written back in place
    if not np.may_share_memory(flat, state):
        raise ValueError("bank state must be reshapeable without a copy (a contiguous array)")
    jobs, finishes = [], []
    for mode, kernel in kernels.items():
        chosen = np.flatnonzero(modes == mode)
        for start in range(0, chosen.size, LANES):
            job, finish = _job(kernel, x, y, x_row, y_row, coef, flat, chosen[start:][:LANES])
            jobs.append(job)
            finishes.append(finish)
    iir_cpu.dispatch(jobs, threads)  # the IIR engine's dispatcher: OpenMP or a thread pool
    for finish in finishes:
        finish()


def _job(kernel, x, y, x_row, y_row, coef_all, state, lanes: np.ndarray):  # type: ignore[no-untyped-def]
    """(job, finish) for up to LANES lanes: unused lanes repeat the first lane's input and
    coefficients and write to scratch."""
    pad = LANES - lanes.size
    idx = np.concatenate([lanes, np.repeat(lanes[:1], pad)])
    coef = np.ascontiguousarray(coef_all[:, idx])
    kstate = np.ascontiguousarray(state[idx].T)  # (state rows, LANES)
    xs = [x.ctypes.data + int(x_row[i]) * x.strides[0] for i in idx]
    ys = [y.ctypes.data + int(y_row[i]) * y.strides[0] for i in lanes]
    scratch = np.empty((pad, x.shape[1]), dtype=y.dtype) if pad else None
    if scratch is not None:
        ys += [scratch.ctypes.data + k * scratch.strides[0] for k in range(pad)]
    ptrs = ctypes.c_void_p * LANES

    def finish() -> None:
        state[lanes] = kstate[:, : lanes.size].T

    keep = (coef, kstate, scratch)
    job = (kernel, coef.ctypes.data, kstate.ctypes.data, ptrs(*xs), ptrs(*ys), x.shape[1], keep)
    return job, finish
