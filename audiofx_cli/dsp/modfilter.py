"""Modulation filterbanks as the Auditory Modeling Toolbox defines them, designed in float64.

- `modfilterbank` (AMT 1.x, Dau et al. 1997, Verhey et al. 1999, Jepsen et al. 2008): a 2.5 Hz
  second-order Butterworth low-pass, then complex frequency-shifted first-order low-passes
  ("efilt": b = 1 - e0, a = [1, -e0 exp(i w0)], e0 = exp(-bw / 2)) at 5, 10 Hz and log-spaced
  above with factor (1 + 1/2Q) / (1 - 1/2Q); x2 emphasis; Re(y) at or below 10 Hz, att |y| above.
- `king2019_modfilterbank` (AMT, King et al. 2019): log-spaced 4th-order Butterworth band-passes
  (`butter(2, [f_lo, f_hi])`), Hilbert envelope above 10 Hz scaled to the band's RMS.

Every filter runs exactly (no grouping of coefficients, no truncated impulse responses) in
`bank` and `prefilter`, with float64 state carried across chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import signal
from torch import Tensor

from audiofx_cli import memory
from audiofx_cli.dsp import bank, prefilter
from audiofx_cli.dsp.auditory import as_rows, from_rows

# AMT arg_modfilterbank groups: (per-channel upper limit 0.25 fc, 150 Hz pre-filter, att_factor)
MODFB_PRESETS: dict[str, tuple[bool, bool, float]] = {
    "dau1997": (False, False, 1.0),
    "verhey1999": (True, False, 1.0),
    "jepsen2008": (True, True, 1 / math.sqrt(2)),
    "paulick2024": (True, True, 1 / math.sqrt(2)),
    "none": (False, False, 1.0),
}
_IDENTITY = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])


def _fix(value: float) -> int:
    """MATLAB fix: truncation toward zero."""
    return int(math.trunc(value))


def modfilterbank_mfc(umf_hz: float, q: float = 2.0) -> np.ndarray:
    """Modulation centre frequencies of AMT modfilterbank for one channel's upper limit umf.

    Example:
        >>> [round(float(f), 2) for f in modfilterbank_mfc(150.0)]
        [0.0, 5.0, 10.0, 16.67, 27.78, 46.3, 77.16, 128.6]
    """
    if umf_hz == 0:
        return np.zeros(1)
    start, bw = 5.0, 5.0
    ex = (1 + 1 / (2 * q)) / (1 - 1 / (2 * q))
    # at least the 5 Hz band for any umf > 0 (a umf within rounding of 0 made the count 0)
    linear = start + 5.0 * np.arange(max(_fix((min(umf_hz, 10.0) - start) / bw) + 1, 1))
    first = (linear[-1] + bw / 2) / (1 - 1 / (2 * q))
    n_log = _fix((math.log(umf_hz) - math.log(first)) / math.log(ex))  # no 0 for tiny umf
    logs = first * ex ** np.arange(n_log + 1) if n_log >= 0 else np.zeros(0)
    return np.concatenate([[0.0], linear, logs])


def upper_limits(fc_hz: np.ndarray, use_upper_limit: bool, max_mfc_hz: float) -> np.ndarray:
    """Per-channel upper bound umf: min(0.25 fc, max) with the limit, else max (AMT)."""
    fc = np.asarray(fc_hz, dtype=np.float64)
    return np.minimum(0.25 * fc, max_mfc_hz) if use_upper_limit else np.full(fc.shape, max_mfc_hz)


@dataclass(frozen=True)
class ModFilterbank:
    """Designed AMT modfilterbank for a set of auditory channels (all arrays float64/int64).

    Distinct band filters are stored once (`mfc_unique`); `slots[c, m]` is the filter index of
    output slot m of channel c (slot 0 is the 2.5 Hz low-pass), `counts[c]` the valid slots.
    """

    fc_hz: np.ndarray  # (C,)
    mfc_hz: np.ndarray  # (C, M) NaN-padded
    counts: np.ndarray  # (C,)
    slots: np.ndarray  # (C, M) int64
    mfc_unique: np.ndarray  # (F,)
    gain: np.ndarray  # (F,) efilt numerator 1 - e0
    pole: np.ndarray  # (F,) complex efilt pole e0 exp(i w0)
    mode: np.ndarray  # (F,) 0: Re(y), 1: |y|
    post: np.ndarray  # (F,) output factor: 2 (emphasis) or 2 att
    band_sos: np.ndarray  # (F, 2, 6) Butterworth variant sections (x2 emphasis), low-pass first
    lowpass_sos: np.ndarray  # (6,)
    pre: np.ndarray  # (3,) [b0, b1, -a1] of the 150 Hz pre-filter, zeros when off
    filter_type: str


def first_order_lowpass(cutoff_hz: float, sample_rate: float) -> np.ndarray:
    """[b0, b1, -a1] of AMT's butter(1, cutoff / (fs / 2))."""
    b, a = signal.butter(1, cutoff_hz, fs=sample_rate)
    return np.array([b[0], b[1], -a[1]])


def modfilterbank_design(
    fc_hz: np.ndarray,
    sample_rate: float,
    q: float = 2.0,
    max_mfc_hz: float = 1000.0,
    use_upper_limit: bool = True,
    lp150: bool = True,
    att_factor: float = 1 / math.sqrt(2),
    filter_type: str = "efilt",
) -> ModFilterbank:
    """Design AMT modfilterbank for channels with auditory centre frequencies `fc_hz`.

    Raises:
        ValueError: a modulation filter would reach Nyquist.
    """
    fs = float(sample_rate)
    fc = np.atleast_1d(np.asarray(fc_hz, dtype=np.float64))
    per_channel = [modfilterbank_mfc(u, q) for u in upper_limits(fc, use_upper_limit, max_mfc_hz)]
    n_slots = max(len(m) for m in per_channel)
    unique = np.unique(np.concatenate([m[1:] for m in per_channel] + [np.zeros(0)]))
    unique = np.concatenate([[0.0], unique])  # index 0: the low-pass
    highest = unique.max()
    top = (
        highest if filter_type == "efilt" else highest + (5.0 if highest < 10 else highest / q) / 2
    )
    if top >= fs / 2:
        raise ValueError(
            f"modulation filters up to {highest:.6g} Hz need a sample rate above "
            f"{2 * top:.6g} Hz, got {fs:g} Hz (lower max_mfc_hz)"
        )
    mfc = np.full((fc.size, n_slots), np.nan)
    slots = np.zeros((fc.size, n_slots), dtype=np.int64)
    for c, m in enumerate(per_channel):
        mfc[c, : len(m)] = m
        slots[c, : len(m)] = np.searchsorted(unique, m)
        slots[c, 0] = 0
    w0 = 2 * np.pi * unique / fs
    bw = np.where(unique < 10, 2 * np.pi * 5 / fs, w0 / q)
    e0 = np.exp(-bw / 2)
    mode = (unique > 10).astype(np.int64)
    post = np.where(mode == 1, 2.0 * att_factor, 2.0)
    band_sos = np.tile(_IDENTITY, (unique.size, 2, 1))
    lowpass = signal.butter(2, 2.5, fs=fs, output="sos")[0]
    band_sos[0, 0] = lowpass
    for f in range(1, unique.size):
        width = 5.0 if unique[f] < 10 else unique[f] / q
        sos = signal.butter(
            2, [unique[f] - width / 2, unique[f] + width / 2], "bandpass", fs=fs, output="sos"
        )
        sos[0, :3] *= 2.0  # AMT's 6 dB emphasis
        band_sos[f] = sos
    return ModFilterbank(
        fc_hz=fc,
        mfc_hz=mfc,
        counts=np.array([len(m) for m in per_channel], dtype=np.int64),
        slots=slots,
        mfc_unique=unique,
        gain=1.0 - e0,
        pole=e0 * np.exp(1j * w0),
        mode=mode,
        post=post,
        band_sos=band_sos,
        lowpass_sos=lowpass,
        pre=first_order_lowpass(150.0, fs) if lp150 else np.zeros(3),
        filter_type=filter_type,
    )


def modfilterbank_zeros_state(design: ModFilterbank, rows: int) -> np.ndarray:
    """Zero state (rows, width) for `modfilterbank_filter` (rows = batch x channels)."""
    n_slots = design.mfc_hz.shape[1]
    width = 4 + 2 * n_slots if design.filter_type == "efilt" else 2 + 4 * n_slots
    return np.zeros((rows, width))


def modfilterbank_filter(x: Tensor, design: ModFilterbank, state: np.ndarray) -> Tensor:
    """(..., C, time) envelopes of C auditory channels -> (..., C, M, time), zero-padded
    beyond each channel's `counts`. `state` is updated in place."""
    lead, n_chan, n_time = x.shape[:-2], x.shape[-2], x.shape[-1]
    n_slots = design.mfc_hz.shape[1]
    xn = as_rows(x)
    rows = xn.shape[0]
    if design.counts.size not in (1, n_chan):
        raise ValueError(f"{design.counts.size} centre frequencies for {n_chan} channels")
    reps = rows // design.counts.size  # one design row for all channels, or one per channel
    counts = np.tile(design.counts, reps)
    slots = np.tile(design.slots, (reps, 1))
    out = memory.empty_array((rows, n_slots, n_time), dtype=xn.dtype)
    if n_time:
        if design.filter_type == "efilt":
            _efilt_bank(xn, out, counts, slots, design, state)
        else:
            _sos_bank(xn, out, counts, slots, design.band_sos, design.pre, state)
    return from_rows(out, x, (*lead, n_chan, n_slots, n_time))


def _efilt_bank(
    xn: np.ndarray,
    out: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    design: ModFilterbank,
    state: np.ndarray,
) -> None:
    """AMT's filters per row: [150 Hz pre-filter] -> 2.5 Hz low-pass (slot 0) and complex
    one-pole band-passes (slots 1 .. counts - 1, on the lanes engine); zero beyond."""
    rows, n_slots, n_time = out.shape
    # pre-filtered envelopes, in float64 as the band-passes take them
    v = memory.empty_array((rows, n_time), np.float64)
    lp = design.lowpass_sos
    prefilter.run_rows(
        prefilter.prefilter_rows, rows, xn, out, design.pre, lp, state, v, cost=v.size
    )
    row, slot = _slot_lanes(counts, n_slots, first=1)
    f = slots[row, slot]
    re, im = 4 + 2 * slot, 5 + 2 * slot  # where each slot's one-pole keeps Re / Im in state
    lane_state = np.stack([state[row, re], state[row, im]], axis=-1)[:, None, :]
    bank.run(
        v,
        out.reshape(rows * n_slots, n_time),
        row,
        row * n_slots + slot,
        design.pole[f],
        design.gain[f],
        design.post[f],
        design.mode[f] == 1,
        lane_state,
        torch.get_num_threads(),
    )
    state[row, re], state[row, im] = lane_state[:, 0, 0], lane_state[:, 0, 1]
    _zero_unused(out, counts)


def _slot_lanes(counts: np.ndarray, n_slots: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, slot) of every filter in use: slots first .. counts[row] - 1 of each row."""
    row, slot = (a.ravel() for a in np.indices((counts.size, n_slots)))
    used = (slot >= first) & (slot < counts[row])
    return row[used], slot[used]


def _zero_unused(out: np.ndarray, counts: np.ndarray) -> None:
    """Zeros in the slots beyond each row's count (the padded, ragged modulation axis)."""
    for r, count in enumerate(counts):
        out[r, count:] = 0.0


def _sos_bank(
    xn: np.ndarray,
    out: np.ndarray,
    counts: np.ndarray,
    slots: np.ndarray,
    sos: np.ndarray,
    pre: np.ndarray,
    state: np.ndarray,
) -> None:
    """Each row through [a first-order pre-filter] and its own list of SOS cascades: slot m
    of row r is cascade sos[slots[r, m]] (F, S, 6) for m < counts[r], zero beyond. state
    (R, 2 + 2 M S): pre-filter x1, y1, then z1, z2 per slot and section."""
    rows, n_slots, n_time = out.shape
    n_sec = sos.shape[1]
    src = xn
    if pre[0] != 0.0:
        src = memory.empty_array((rows, n_time), np.float64)  # pre-filtered rows
        pre_state = np.zeros((rows, 4))
        pre_state[:, :2] = state[:, :2]
        prefilter.run_rows(
            prefilter.prefilter_rows, rows, xn, out, pre, np.zeros(6), pre_state, src, cost=src.size
        )
        state[:, :2] = pre_state[:, :2]
    row, slot = _slot_lanes(counts, n_slots, first=0)
    where = 2 + 2 * n_sec * slot[:, None] + np.arange(2 * n_sec)  # each lane's state columns
    lane_state = state[row[:, None], where].reshape(-1, n_sec, 2)
    bank.run_sos(
        src,
        out.reshape(rows * n_slots, n_time),
        row,
        row * n_slots + slot,
        sos[slots[row, slot]],
        lane_state,
        torch.get_num_threads(),
    )
    state[row[:, None], where] = lane_state.reshape(-1, 2 * n_sec)
    _zero_unused(out, counts)


# ----------------------------------------------------------------------------- King 2019
def king2019_mfc(
    mflow_hz: float = 2.0, mfhigh_hz: float = 150.0, q: float = 1.0, n_mod: int | None = None
) -> np.ndarray:
    """Centre frequencies of AMT king2019_modfilterbank.

    Example:
        >>> [round(float(f), 2) for f in king2019_mfc()]
        [2.0, 5.24, 13.71, 35.89, 93.96]
    """
    lo, hi = math.log(mflow_hz), math.log(mfhigh_hz)
    if n_mod is not None:
        return np.exp(np.linspace(lo, hi, n_mod))
    step = math.log((math.sqrt(4 * q * q + 1) + 1) / (math.sqrt(4 * q * q + 1) - 1))
    count = int(math.floor((hi - lo) / step + 1e-10)) + 1  # MATLAB lo:step:hi
    return np.exp(lo + step * np.arange(count))


def king2019_edges(mfc_hz: np.ndarray, q: float = 1.0) -> np.ndarray:
    """Band edges (F, 2): f sqrt(4 + 1/Q^2) / 2 -+ f / (2Q) (geometric mean f, width f / Q)."""
    f = np.asarray(mfc_hz, dtype=np.float64)[:, None]
    return f * math.sqrt(4 + 1 / q**2) / 2 + np.array([-1.0, 1.0]) * f / q / 2


def king2019_sos(mfc_hz: np.ndarray, sample_rate: float, q: float = 1.0) -> np.ndarray:
    """(F, 2, 6): butter(2, [f_lo, f_hi], 'band') per filter, as second-order sections."""
    edges = king2019_edges(mfc_hz, q)
    return np.stack([signal.butter(2, e, "bandpass", fs=sample_rate, output="sos") for e in edges])


def sos_bank_filter(x: Tensor, sos: np.ndarray, pre: np.ndarray, state: np.ndarray) -> Tensor:
    """(..., time) through each of the F cascades in `sos` (F, S, 6) -> (..., F, time).

    `pre` ([b0, b1, -a1], zeros for none) is a first-order pre-filter shared by all filters;
    `state` (rows, 2 + 2 F S) from `sos_bank_zeros_state` is updated in place.
    """
    lead, n_time = x.shape[:-1], x.shape[-1]
    n_filters = sos.shape[0]
    xn = as_rows(x)
    rows = xn.shape[0]
    out = memory.empty_array((rows, n_filters, n_time), dtype=xn.dtype)
    if n_time:
        counts = np.full(rows, n_filters, dtype=np.int64)
        slots = np.tile(np.arange(n_filters, dtype=np.int64), (rows, 1))
        _sos_bank(xn, out, counts, slots, sos, pre, state)
    return from_rows(out, x, (*lead, n_filters, n_time))


def sos_bank_zeros_state(sos: np.ndarray, rows: int) -> np.ndarray:
    return np.zeros((rows, 2 + 2 * sos.shape[0] * sos.shape[1]))


# ----------------------------------------------------------------------------- Hilbert
def hilbert_envelope(y: Tensor) -> Tensor:
    """|analytic signal| along the last axis, as abs(scipy.signal.hilbert(y)) (whole-signal FFT).

    The analytic signal is y + i H(y) with H(y) = irfft(-i sign(k) Y[k]) (DC and Nyquist bins
    zero), which is what scipy's FFT construction gives; computed with real FFTs in float64
    over groups of rows so the intermediates stay small.
    """
    n = y.shape[-1]
    if n == 0:
        return y.clone()
    flat = y.reshape(math.prod(y.shape[:-1]), n)
    out = torch.empty(flat.shape, dtype=y.dtype, device=y.device)
    half = n // 2 + 1
    rotate = torch.full((half,), -1j, dtype=torch.complex128, device=y.device)
    rotate[0] = 0.0
    if n % 2 == 0:
        rotate[-1] = 0.0
    step = max(1, (1 << 22) // n)  # 32 MB of float64 rows per group: 2.4x faster than 128 MB
    for start in range(0, flat.shape[0], step):  # (fewer fresh pages), and in-place / fused ops
        rows = flat[start : start + step].to(torch.float64)
        spectrum = torch.fft.rfft(rows, dim=-1)
        spectrum *= rotate
        quadrature = torch.fft.irfft(spectrum, n=n, dim=-1)
        out[start : start + step] = torch.hypot(rows, quadrature)
    return out.reshape(y.shape)


def rms_match(envelope: Tensor, y: Tensor) -> Tensor:
    """envelope * rms(y) / rms(envelope) over the last axis (0 where the envelope is silent)."""

    def energy(v: Tensor) -> Tensor:  # sum of squares in float64, no float64 copy of v
        return torch.linalg.vector_norm(v, dim=-1, keepdim=True, dtype=torch.float64).square_()

    num, den = energy(y), energy(envelope)
    scale = torch.where(den > 0, torch.sqrt(num / torch.where(den > 0, den, 1.0)), 0.0)
    scaled = envelope.to(torch.float64)
    scaled *= scale
    return scaled.to(envelope.dtype)


def hilbert_fir(n_taps: int) -> np.ndarray:
    """Type III linear-phase Hilbert transformer (odd length, Blackman window), float64.

    h[D + k] = 2 / (pi k) for odd k, 0 for even k, D = (n_taps - 1) / 2 samples of latency.
    """
    half = (n_taps - 1) // 2
    k = np.arange(-half, half + 1)
    ideal = np.zeros(n_taps)
    odd = k % 2 != 0
    ideal[odd] = 2.0 / (np.pi * k[odd])
    return ideal * np.blackman(n_taps)


def fft_fir(taps: Tensor, x: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
    """Causal FIR y[n] = sum_k taps[k] x[n-k] of one chunk by one FFT of history + chunk.

    Exact up to rounding for any chunking; `history` holds the last n_taps - 1 inputs.
    Returns (y, new_history).
    """
    n_taps, n_out = taps.shape[-1], x.shape[-1]
    joined = torch.cat([history, x], dim=-1)
    new_history = joined[..., joined.shape[-1] - (n_taps - 1) :]
    if n_out == 0:
        return x, new_history
    n_fft = 1 << (joined.shape[-1] - 1).bit_length()
    spectrum = torch.fft.rfft(joined, n_fft) * torch.fft.rfft(taps.to(joined), n_fft)
    full = torch.fft.irfft(spectrum, n_fft)
    return full[..., n_taps - 1 : n_taps - 1 + n_out], new_history
