"""Auditory front end as the Auditory Modeling Toolbox (AMT 1.x) defines it, designed in float64.

- ERB scale and spacing: AMT/LTFAT `freqtoaud(.., 'erb')`, `audtofreq`, `audspacebw` (via
  `erbspacebw`) and `audfiltbw` (Glasberg & Moore 1990: ERB = 24.7 + f / 9.265).
- Gammatone filters: AMT `gammatone(fc, fs, 'complex')` (Lyon's all-pole approximation):
  pole exp(-2 pi beta / fs + 2 pi i fc / fs) repeated `order` times, numerator
  (1 - exp(-2 pi beta / fs))^order (unit gain of the complex filter at fc), beta =
  betamul * ERB(fc) with betamul = (n-1)!^2 / (pi (2n-2)! 2^-(2n-2)) (1.0186 for n = 4).
  `auditoryfilterbank` returns 2 Re(y). AMT writes the pole with -2 pi i fc / fs; for a real
  input the two differ only by complex conjugation, so 2 Re(y) and |y| are identical.
- Inner hair cell envelope: AMT `ihcenvelope` (half-wave rectification + Butterworth low-pass).
- Adaptation loops: AMT `adaptloop` / `comp_adaptloop` (Dau et al. 1996/1997).

Filtering runs on the lanes engine (`bank`: compiled, exact recursions with float64 state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from audiofx_cli import memory
from audiofx_cli.dsp import bank

# AMT arg_adaptloop groups: tau (s) and overshoot limit
ADAPT_PRESETS: dict[str, tuple[tuple[float, ...], float]] = {
    "dau1997": ((0.005, 0.050, 0.129, 0.253, 0.500), 10.0),
    # AMT's jepsen2008 model runs adaptloop with the adt_dau1997 group (limit 10)
    "jepsen2008": ((0.005, 0.050, 0.129, 0.253, 0.500), 10.0),
    "dau1996": ((0.005, 0.050, 0.129, 0.253, 0.500), 0.0),
    "osses2021": ((0.005, 0.050, 0.129, 0.253, 0.500), 5.0),
    "breebaart2001": (tuple(np.linspace(0.005, 0.5, 5)), 0.0),
    "puschel1988": (tuple(np.linspace(0.005, 0.5, 5)), 0.0),
}


# ----------------------------------------------------------------------------- ERB scale
def freq_to_erb(freq_hz: np.ndarray | float) -> np.ndarray:
    """ERB-rate (Cams) of a frequency: 9.2645 sign(f) ln(1 + 0.00437 |f|) (AMT freqtoaud)."""
    f = np.asarray(freq_hz, dtype=np.float64)
    return 9.2645 * np.sign(f) * np.log(1 + np.abs(f) * 0.00437)


def erb_to_freq(erb: np.ndarray | float) -> np.ndarray:
    """Inverse of `freq_to_erb` (AMT audtofreq)."""
    e = np.asarray(erb, dtype=np.float64)
    return (1 / 0.00437) * np.sign(e) * (np.exp(np.abs(e) / 9.2645) - 1)


def erb_bandwidth(freq_hz: np.ndarray | float) -> np.ndarray:
    """Equivalent rectangular bandwidth in Hz, 24.7 + f / 9.265 (AMT audfiltbw)."""
    return 24.7 + np.asarray(freq_hz, dtype=np.float64) / 9.265


def erb_space(
    flow_hz: float, fhigh_hz: float, spacing_erb: float = 1.0, base_hz: float | None = None
) -> np.ndarray:
    """Centre frequencies spaced `spacing_erb` apart on the ERB scale (AMT erbspacebw).

    Without `base_hz` the points are centred between flow and fhigh; with it, one point is
    exactly `base_hz` and the others step away from it while staying within [flow, fhigh].

    Example:
        >>> fc = erb_space(80, 8000, 1.0, 1000)
        >>> len(fc), round(float(fc[0]), 2), round(float(fc[-1]), 2)
        (30, 107.65, 7469.67)
    """
    lo, hi = freq_to_erb(flow_hz), freq_to_erb(fhigh_hz)
    if base_hz is None:
        span = hi - lo
        n = int(math.floor(span / spacing_erb))
        points = lo + np.arange(n + 1) * spacing_erb + (span - n * spacing_erb) / 2
    else:
        base = freq_to_erb(base_hz)
        n_low = int(math.floor((base - lo) / spacing_erb))
        n_high = int(math.floor((hi - base) / spacing_erb))
        points = np.arange(-n_low, n_high + 1) * spacing_erb + base
    return erb_to_freq(points)


# ----------------------------------------------------------------------------- gammatone
@dataclass(frozen=True)
class GammatoneDesign:
    """Complex all-pole gammatone bank: `order` equal one-poles per band, each with gain g."""

    fc_hz: np.ndarray
    pole: np.ndarray  # complex128 (B,)
    stage_gain: np.ndarray  # float64 (B,): (1 - exp(-2 pi beta / fs)); total gain g**order
    order: int


def gammatone_betamul(order: int) -> float:
    """Bandwidth factor of AMT gammatone: (n-1)!^2 / (pi (2n-2)! 2^-(2n-2))."""
    n = order
    return math.factorial(n - 1) ** 2 / (
        math.pi * math.factorial(2 * n - 2) * 2.0 ** (-(2 * n - 2))
    )


def gammatone_design(fc_hz: np.ndarray, sample_rate: float, order: int = 4) -> GammatoneDesign:
    """AMT `gammatone(fc, fs, n, 'complex')` poles and gains in float64."""
    fc = np.asarray(fc_hz, dtype=np.float64)
    beta = gammatone_betamul(order) * erb_bandwidth(fc)
    decay = np.exp(-2 * np.pi * beta / sample_rate)
    pole = decay * np.exp(2j * np.pi * fc / sample_rate)
    return GammatoneDesign(fc, pole, 1.0 - decay, order)


def gammatone_zeros_state(design: GammatoneDesign, rows: int) -> np.ndarray:
    """Zero state (2, rows, B, order): real and imaginary parts."""
    return np.zeros((2, rows, design.fc_hz.size, design.order))


def gammatone_filter(
    x: Tensor, design: GammatoneDesign, state: np.ndarray, envelope: bool = False
) -> Tensor:
    """Filter (..., time) through the bank: (..., B, time), 2 Re(y) or 2 |y| (envelope).

    `state` (from `gammatone_zeros_state`, rows = prod of x's leading dims) is updated in place.
    """
    lead, n_time = x.shape[:-1], x.shape[-1]
    n_bands = design.fc_hz.size
    xn = as_rows(x)
    rows = xn.shape[0]
    out = memory.empty_array((rows, n_bands, n_time), dtype=xn.dtype)
    if n_time:
        lanes = rows * n_bands  # lane (row n, band b) reads row n, writes out[n, b]
        lane_state = np.ascontiguousarray(state.transpose(1, 2, 3, 0)).reshape(lanes, -1, 2)
        bank.run(
            xn,
            out.reshape(lanes, n_time),
            np.arange(lanes) // n_bands,
            np.arange(lanes),
            np.tile(design.pole, rows),
            np.tile(design.stage_gain, rows),
            np.full(lanes, 2.0),
            np.full(lanes, envelope),
            lane_state,
            torch.get_num_threads(),
        )
        state[...] = lane_state.reshape(rows, n_bands, -1, 2).transpose(3, 0, 1, 2)
    return from_rows(out, x, (*lead, n_bands, n_time))


# ----------------------------------------------------------------------------- helpers
def as_rows(x: Tensor) -> np.ndarray:
    """(..., time) tensor -> C-contiguous (rows, time) numpy array of float32 or float64."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    flat = x.detach().to("cpu", dtype).reshape(math.prod(x.shape[:-1]), x.shape[-1])
    return np.ascontiguousarray(flat.numpy())


def from_rows(out: np.ndarray, like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """numpy result -> tensor of `shape` with `like`'s dtype and device."""
    return torch.from_numpy(out).reshape(shape).to(device=like.device, dtype=like.dtype)


# ----------------------------------------------------------------------------- adaptation
@dataclass(frozen=True)
class AdaptLoops:
    """AMT comp_adaptloop constants for one sample rate (all float64)."""

    a1: np.ndarray
    b0: np.ndarray
    factor: np.ndarray
    expfac: np.ndarray
    offset: np.ndarray
    limited: bool
    minlvl: float
    corr: float
    mult: float
    steady: np.ndarray  # initial (steady-state) value of each loop
    gain: float  # input scaling from the dB full-scale convention to AMT's 100 dB


def adapt_design(
    sample_rate: float,
    tau_s: tuple[float, ...],
    limit: float,
    min_spl_db: float = 0.0,
    dboffset_db: float = 100.0,
) -> AdaptLoops:
    """Constants of AMT `adaptloop` (dboffset convention: RMS 1 is `dboffset_db` dB SPL)."""
    tau = np.asarray(tau_s, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):  # tau -> 0: a1 = 0, no memory
        a1 = np.exp(-1.0 / (tau * sample_rate))
    b0 = 1.0 - a1
    minlvl = 10.0 ** ((min_spl_db - 100.0) / 20.0)
    n = tau.size
    corr = minlvl ** (1.0 / 2.0**n)
    if not corr < 1.0:  # min_spl_db at (or, after n square roots, rounding to) 100 dB
        raise ValueError(
            f"min_spl_db {min_spl_db:g} dB leaves the {n} adaptation loops no range "
            "(it must be well below 100 dB)"
        )
    mult = 100.0 / (1.0 - corr)
    steady = minlvl ** (1.0 / 2.0 ** np.arange(1, n + 1))
    limited = limit > 1
    maxvalue = (1.0 - steady**2) * limit - 1.0
    with np.errstate(divide="ignore"):
        expfac = -2.0 / maxvalue if limited else np.zeros(n)
    return AdaptLoops(
        a1=a1,
        b0=b0,
        factor=maxvalue * 2.0,
        expfac=np.asarray(expfac, dtype=np.float64),
        offset=maxvalue - 1.0,
        limited=bool(limited),
        minlvl=float(minlvl),
        corr=float(corr),
        mult=float(mult),
        steady=steady,
        gain=10.0 ** ((dboffset_db - 100.0) / 20.0),
    )


def adapt_zeros_state(design: AdaptLoops, rows: int) -> np.ndarray:
    """Initial state (rows, loops): each loop at its steady-state level."""
    return np.tile(design.steady, (rows, 1))


def adapt_filter(x: Tensor, design: AdaptLoops, state: np.ndarray) -> Tensor:
    """Run the loops over (..., time); `state` (rows, loops) is updated in place."""
    xn = as_rows(x)
    out = memory.empty_array(xn.shape, xn.dtype)
    if xn.shape[1]:
        head = [design.gain, design.minlvl, design.corr, design.mult]
        loops = np.stack([design.a1, design.b0, design.factor, design.expfac, design.offset], 1)
        constants = np.concatenate([head, loops.ravel()])
        bank.run_adapt(xn, out, constants, design.limited, state, torch.get_num_threads())
    return from_rows(out, x, tuple(x.shape))
