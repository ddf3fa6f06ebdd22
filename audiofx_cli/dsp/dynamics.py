"""Dynamics processing: compressor, gate and look-ahead limiter with explicit state.

Signals are numpy arrays of shape (batch, channels, frames), float32 or float64, processed by
the compiled kernels of `audiofx_cli.dsp.dynamics_kernels` in float64. Each function takes its
state and returns the new one (the caller's state is never modified), so any chunking gives
the same result as the whole signal. With `apply=True` a function returns the output samples
(x's dtype and shape; written into `out` when given, e.g. a slice of a longer output); with
`apply=False` it returns the gain per signal and frame (float64, (signals, frames)) for a
caller that multiplies itself (autograd). Rows may be strided (see `rows_readable`). A signal
is one batch item when channels are linked (one gain for all channels), else one channel
(signals = batch x channels).

Conventions (Giannoulis, Massberg & Reiss, "Digital dynamic range compressor design: a tutorial
and analysis", JAES 2012):
- a smoothing coefficient for time constant tau is alpha = exp(-1 / (tau * sample_rate)): after
  a step, the smoothed value has moved 1 - 1/e (63.2 %) of the way after tau;
- levels and gains are in dB; the gain computer works on the detector level in dBFS; levels
  are floored at LEVEL_FLOOR_DB (digital silence).

dB conversions use `audiofx_cli.dsp.approx` (log2 within 3.2e-11, exp2 within 3e-13 relative):
levels are within 2e-10 dB and gains within 1e-12 of the exact formulas; outputs are rounded
once to the output dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiofx_cli import memory
from audiofx_cli.dsp import dynamics_kernels as kernels

LEVEL_FLOOR_DB = -400.0  # level of digital silence (keeps logs finite)
_NO_GAINS = np.zeros((0, 0))


def time_coefficient(time_ms: float, sample_rate: float) -> float:
    """One-pole coefficient exp(-1 / (tau fs)); 0 (instantaneous) for time_ms == 0."""
    if time_ms <= 0:
        return 0.0
    return math.exp(-1000.0 / (time_ms * sample_rate))


def signal_count(x: np.ndarray, link: bool) -> int:
    """Signals of a (batch, channels, frames) array: batch (linked) or batch x channels."""
    return x.shape[0] if link else x.shape[0] * x.shape[1]


def _outputs(
    x: np.ndarray, link: bool, apply: bool, frames: int, out: np.ndarray | None
) -> tuple[np.ndarray, Any]:
    """(y, gains) arrays for a kernel: the output (`out` when given) when applying, else the
    gains."""
    if apply:
        if out is not None:
            return out, _NO_GAINS
        return memory.empty_array((*x.shape[:2], frames), x.dtype), _NO_GAINS
    return np.empty((0, 0, 0), dtype=x.dtype), np.empty((signal_count(x, link), frames))


def rows_readable(a: np.ndarray) -> bool:
    """True when the kernels can read or write `a` in place: (batch, channels, frames), float32
    or float64, samples contiguous along time (rows may be strided: a slice of a longer
    signal)."""
    return (
        a.ndim == 3
        and a.dtype in (np.float32, np.float64)
        and (a.shape[2] <= 1 or a.strides[2] == a.itemsize)
        and all(stride % a.itemsize == 0 and stride >= 0 for stride in a.strides)
    )


def _signals(x: np.ndarray, link: bool) -> list[tuple[int, int, int, int]]:
    """(signal, batch item, first row, rows) of every signal of x."""
    batch, channels = x.shape[:2]
    if link:
        return [(b, b, 0, channels) for b in range(batch)]
    return [(b * channels + c, b, c, 1) for b in range(batch) for c in range(channels)]


def _run(kernel: Any, x: np.ndarray, y: np.ndarray, gains: np.ndarray, link: bool,
         per_lane: list[Any], shared: list[Any] = (), lanes: int = 1) -> None:  # fmt: skip
    """Call the kernel over every signal of x, `lanes` signals per call (`kernel(n)` gives
    the n-lane kernel; a last odd signal runs alone), with the common arguments of
    `audiofx_cli.dsp.dynamics_kernels.lane_args`, then each of `per_lane` (a function of the
    signal number giving an address or a number) for every lane, then `shared`."""
    frames = x.shape[-1]
    x_stride, y_stride = x.strides[1] // x.itemsize, y.strides[1] // y.itemsize if y.size else 0
    signals = _signals(x, link)
    for first in range(0, len(signals), lanes):
        group = signals[first : first + lanes]
        xs = [x.ctypes.data + b * x.strides[0] + row * x.strides[1] for _, b, row, _ in group]
        ys = [y.ctypes.data + b * y.strides[0] + row * y.strides[1] if y.size else 0
              for _, b, row, _ in group]  # fmt: skip
        gs = [gains.ctypes.data + sig * gains.shape[-1] * 8 if gains.size else 0
              for sig, *_ in group]  # fmt: skip
        own = [arg(sig) for arg in per_lane for sig, *_ in group]
        rows = group[0][3]
        kernel(len(group))(*xs, *ys, *gs, rows, x_stride, y_stride, frames, *own, *shared)


def _row(array: np.ndarray) -> Any:
    """Signal -> the address of row `signal` of a C-contiguous array."""
    return lambda sig: array.ctypes.data + sig * array.strides[0]


def _value(value: Any) -> Any:
    return lambda sig: value


@dataclass(frozen=True)
class Detector:
    """Level detector: peak (|x|, max over linked channels) or rms (one-pole mean square of the
    linked channels' mean power, coefficient `rms_coef`)."""

    rms: bool
    rms_coef: float
    link: bool


# ------------------------------------------------------------------------------ compressor
@dataclass(frozen=True)
class CompressorParams:
    """Static curve (threshold_db, ratio, knee_db) and smoothing coefficients."""

    detector: Detector
    threshold_db: float
    ratio: float
    knee_db: float
    makeup_db: float
    attack_coef: float
    release_coef: float


def compressor_state(signals: int) -> np.ndarray:
    """Fresh compressor state: (signals, 3) zeros (mean square, held and smoothed reduction)."""
    return np.zeros((signals, 3))


def compressor(
    x: np.ndarray,
    state: np.ndarray,
    p: CompressorParams,
    apply: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Feed-forward compressor: level (dBFS) -> reduction target (1 - 1/R) q(level - T), with
    q the quadratic soft knee of width W (Giannoulis et al. eq. 4: 0 below T - W/2, the
    quadratic (o + W/2)^2 / (2W) inside the knee, o above) -> smooth decoupled peak detector
    (eq. 17: h = max(r, aR h + (1 - aR) r), y = aA y + (1 - aA) h) -> gain makeup_db - y.

    Returns:
        (output or gains, new state).
    """
    state = np.array(state, dtype=np.float64, copy=True)
    d = p.detector
    y, gains = _outputs(x, d.link, apply, x.shape[-1], out)
    params = np.array([d.rms_coef, p.threshold_db, p.knee_db, 1.0 - 1.0 / p.ratio,
                       p.makeup_db, p.attack_coef, p.release_coef])  # fmt: skip

    def kernel(lanes: int) -> Any:
        return kernels.compressor(x.dtype.name, d.rms, p.knee_db > 0, apply, lanes)

    _run(kernel, x, y, gains, d.link, [_row(state)], [params.ctypes.data], kernels.LANES)
    return (y if apply else gains), state


# ------------------------------------------------------------------------------ gate
@dataclass(frozen=True)
class GateParams:
    """Threshold, range, optional expander ratio (None: a gate), hold in samples, smoothing."""

    detector: Detector
    threshold_db: float
    range_db: float
    ratio: float | None
    hold: int
    attack_coef: float
    release_coef: float


def gate_state(signals: int, p: GateParams) -> tuple[np.ndarray, np.ndarray]:
    """Fresh gate state: closed (hold expired), fully attenuated."""
    levels = np.zeros((signals, 2))
    levels[:, 1] = p.range_db
    return levels, np.full(signals, p.hold + 1, dtype=np.int64)


def gate(
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray],
    p: GateParams,
    apply: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Noise gate / downward expander with hold: open (target 0 dB) while the level is at or
    above threshold_db and for `hold` samples after; closed: range_db, or with a ratio
    (ratio - 1) (threshold_db - level) at most range_db. The attenuation moves towards its
    target by one-pole smoothing, release_coef while it grows (closing), attack_coef while it
    falls (opening).

    Returns:
        (output or gains, new state).
    """
    levels = np.array(state[0], dtype=np.float64, copy=True)
    since = np.array(state[1], dtype=np.int64, copy=True)
    d = p.detector
    y, gains = _outputs(x, d.link, apply, x.shape[-1], out)
    slope = 0.0 if p.ratio is None else p.ratio - 1.0
    params = np.array([d.rms_coef, p.threshold_db, p.range_db, slope, float(p.hold),
                       p.attack_coef, p.release_coef])  # fmt: skip

    def kernel(lanes: int) -> Any:
        return kernels.gate(x.dtype.name, d.rms, p.ratio is not None, apply, lanes)

    per_lane = [_row(levels), _row(since)]
    _run(kernel, x, y, gains, d.link, per_lane, [params.ctypes.data], kernels.LANES)
    return (y if apply else gains), (levels, since)


# ------------------------------------------------------------------------------ limiter
@dataclass(frozen=True)
class LimiterParams:
    """ceiling (linear), clamp (the largest output-dtype value <= ceiling), lag (look-ahead in
    samples), release coefficient, link."""

    ceiling: float
    clamp: float
    lag: int
    release_coef: float
    link: bool


@dataclass
class LimiterState:
    """Everything the limiter carries between chunks (arrays per signal, see `limiter`)."""

    position: int  # input samples consumed
    required: np.ndarray  # (signals, lag) required gains of the last lag inputs, oldest first
    segment: np.ndarray  # (signals, lag + 1) the running minimum's current segment
    suffix: np.ndarray  # (signals, lag + 2) suffix minima of the previous segment, then 1
    offset: np.ndarray  # (signals,) int64 position in the current segment
    sums: np.ndarray  # (signals, 3) running sum of the window, release state (dB), prefix min
    window: np.ndarray  # (signals, lag + 1) the averaging window, oldest first
    x_ring: np.ndarray  # (batch, channels, lag) the last lag inputs, oldest first (x's dtype)

    def copy(self) -> LimiterState:
        arrays = {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return LimiterState(position=self.position, **arrays)


def limiter_state(x: np.ndarray, p: LimiterParams) -> LimiterState:
    """Fresh limiter state for chunks shaped like x: no reduction, a silent delay line."""
    signals, lag = signal_count(x, p.link), p.lag
    return LimiterState(
        position=0,
        required=np.ones((signals, lag)),
        segment=np.ones((signals, lag + 1)),
        suffix=np.ones((signals, lag + 2)),  # before the stream: gain 1
        offset=np.zeros(signals, dtype=np.int64),
        sums=np.column_stack([np.full(signals, lag + 1.0), np.zeros(signals), np.ones(signals)]),
        window=np.ones((signals, lag + 1)),
        x_ring=np.zeros((*x.shape[:2], lag), dtype=x.dtype),
    )


def limiter(
    x: np.ndarray,
    state: LimiterState,
    p: LimiterParams,
    apply: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, LimiterState]:
    """Look-ahead brick-wall limiter. For input position n (L = lag):

    1. required gain g[n] = min(1, ceiling / |x[n]|) (max |x| over linked channels);
    2. held: the minimum of g over the last L + 1 samples (van Herk / Gil-Werman), so it is
       <= the gain every sample in [n - L, n] needs; in dB, a reduction r = -20 log10(held);
    3. release: R = max(r, a R + (1 - a) r): follows rises at once, decays with release_coef;
    4. the mean of 10^(-R/20) over the last L + 1 samples (a running sum, recomputed exactly
       at every RESUM_EVERY-th position so it never drifts), then min with g[n - L]: every
       averaged value is <= g[n - L], so the ceiling holds by construction;
    5. output n - L = x[n - L] * gain, clamped to +-clamp (acts only on rounding).

    The first L outputs of a stream do not exist (latency): the result holds
    frames - max(0, min(frames, L - position)) samples; `flush` feeds L zeros for the rest.

    Returns:
        (output or gains for the output samples, new state).
    """
    state = state.copy()
    frames = x.shape[-1]
    skip = max(0, min(frames, p.lag - state.position))
    y, gains = _outputs(x, p.link, apply, frames - skip, out)
    params = np.array([p.ceiling, p.clamp, p.release_coef])
    scratch = np.empty(2 * p.lag + 2 * kernels.BLOCK + 1)
    kernel = kernels.limiter(x.dtype.name, apply)  # one signal per call
    ring = state.x_ring  # (batch, channels, lag): a signal's rows are consecutive
    ring_at = {
        sig: ring.ctypes.data + (b * x.shape[1] + row) * p.lag * ring.itemsize
        for sig, b, row, _ in _signals(x, p.link)
    }
    s = state
    per_signal = [*map(_value, (skip, s.position, p.lag, params.ctypes.data)), _row(s.required),
                  _row(s.window), _row(s.segment), _row(s.suffix), _row(s.offset), _row(s.sums),
                  ring_at.__getitem__, _value(scratch.ctypes.data)]  # fmt: skip
    _run(lambda lanes: kernel, x, y, gains, p.link, per_signal)
    state.position += frames
    return (y if apply else gains), state
