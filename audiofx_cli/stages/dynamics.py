"""Dynamics stages: `compressor`, `limiter`, `gate`. The gain is computed in float64 numpy
(`audiofx_cli.dsp.dynamics`) and applied to the tensor, so gradients reach the input through
the multiplication (the gain itself is treated as a constant).

State per stream: detector mean square, gain smoother values, hold counters and, for the
limiter, its look-ahead delay line; chunked output equals whole-signal output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import dynamics as dyn
from audiofx_cli.stages.base import Stage, State


def _batches(x: Tensor) -> np.ndarray:
    array = x.detach().to("cpu", torch.float64).numpy()
    batch = int(np.prod(array.shape[:-2]))
    return array.reshape(batch, *array.shape[-2:])


def _signals(x: Tensor, link: bool) -> int:
    batch = int(np.prod(x.shape[:-2])) if x.dim() > 2 else 1
    return batch if link else batch * x.shape[-2]


def _apply_gain_db(x: Tensor, gain_db: np.ndarray, link: bool) -> Tensor:
    """x * 10^(gain_db / 20), gain_db of shape (signals, time)."""
    gain = torch.from_numpy(10.0 ** (gain_db / 20.0)).to(device=x.device, dtype=x.dtype)
    rows = 1 if link else x.shape[-2]
    gain = gain.reshape(*x.shape[:-2], rows, x.shape[-1])
    return x * gain


class _Detecting(Stage):
    """Shared detector set-up: peak or rms, linked or per channel."""

    def _init_detector(self, detector: str, rms_ms: float, link: bool) -> None:
        self.detector, self.link = detector, link
        self.rms_coef = dyn.time_coefficient(rms_ms, self.sample_rate)

    def _detect(self, x: Tensor, state: dict[str, Any]) -> tuple[np.ndarray, Any]:
        return dyn.detect_level(_batches(x), self.detector, self.link, self.rms_coef, state["rms"])

    def _rms_state(self, signals: int) -> np.ndarray | None:
        return np.zeros(signals) if self.detector == "rms" else None


class Compressor(_Detecting):
    """Feed-forward compressor (`compressor`), after Giannoulis, Massberg & Reiss (2012).

    detector level (dBFS) -> static curve with quadratic soft knee -> gain reduction ->
    smooth decoupled peak detector (attack / release) -> gain = makeup_db - reduction.
    A rise of the reduction reaches 63 % (1 - 1/e) after attack_ms; after a fall the
    reduction decays with release_ms (then follows through the attack smoothing).

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "compressor"

    def __init__(
        self,
        sample_rate: float,
        threshold_db: float = -20.0,
        ratio: float = 4.0,
        attack_ms: float = 5.0,
        release_ms: float = 100.0,
        knee_db: float = 0.0,
        makeup_db: float = 0.0,
        detector: str = "peak",
        rms_ms: float = 10.0,
        link: bool = True,
    ) -> None:
        super().__init__(
            sample_rate,
            threshold_db=threshold_db,
            ratio=ratio,
            attack_ms=attack_ms,
            release_ms=release_ms,
            knee_db=knee_db,
            makeup_db=makeup_db,
            detector=detector,
            rms_ms=rms_ms,
            link=link,
        )
        self.threshold_db, self.ratio, self.knee_db = threshold_db, ratio, knee_db
        self.makeup_db = makeup_db
        self.attack_coef = dyn.time_coefficient(attack_ms, self.sample_rate)
        self.release_coef = dyn.time_coefficient(release_ms, self.sample_rate)
        self._init_detector(detector, rms_ms, link)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        signals = _signals(x, self.link)
        return {"rms": self._rms_state(signals), "smooth": (np.zeros(signals), np.zeros(signals))}

    def gain_reduction_db(self, x: Tensor, state: State) -> tuple[np.ndarray, State]:
        """Smoothed gain reduction in dB (>= 0), shape (signals, time), and the new state."""
        if state is None:
            state = self.init_state(x)
        level, rms = self._detect(x, state)
        target = level - dyn.compressor_curve(level, self.threshold_db, self.ratio, self.knee_db)
        reduction, smooth = dyn.smooth_decoupled(
            target, state["smooth"], self.attack_coef, self.release_coef
        )
        return reduction, {"rms": rms, "smooth": smooth}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        reduction, state = self.gain_reduction_db(x, state)
        return _apply_gain_db(x, self.makeup_db - reduction, self.link), state


class Gate(_Detecting):
    """Noise gate / downward expander with hold (`gate`).

    The gate is open while the detector level is at or above threshold_db and for hold_ms
    after it falls below. Open: 0 dB. Closed: -range_db, or with `ratio` (expander)
    -(ratio - 1) (threshold_db - level), at most range_db. The attenuation (dB) moves towards
    its target with one-pole smoothing: attack_ms while opening, release_ms while closing
    (63 % of the change after the time constant). The gate starts closed.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "gate"

    def __init__(
        self,
        sample_rate: float,
        threshold_db: float = -50.0,
        range_db: float = 80.0,
        ratio: float | None = None,
        attack_ms: float = 1.0,
        hold_ms: float = 20.0,
        release_ms: float = 100.0,
        detector: str = "rms",
        rms_ms: float = 10.0,
        link: bool = True,
    ) -> None:
        super().__init__(
            sample_rate,
            threshold_db=threshold_db,
            range_db=range_db,
            ratio=ratio,
            attack_ms=attack_ms,
            hold_ms=hold_ms,
            release_ms=release_ms,
            detector=detector,
            rms_ms=rms_ms,
            link=link,
        )
        self.threshold_db, self.range_db, self.ratio = threshold_db, range_db, ratio
        self.hold = int(round(hold_ms * self.sample_rate / 1000.0))
        self.attack_coef = dyn.time_coefficient(attack_ms, self.sample_rate)
        self.release_coef = dyn.time_coefficient(release_ms, self.sample_rate)
        self._init_detector(detector, rms_ms, link)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        signals = _signals(x, self.link)
        return {
            "rms": self._rms_state(signals),
            "since": np.full(signals, self.hold + 1, dtype=np.int64),  # closed, hold expired
            "atten": np.full(signals, float(self.range_db)),
        }

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        level, rms = self._detect(x, state)
        frames = level.shape[-1]
        offsets = np.arange(1, frames + 1, dtype=np.int64)
        last_above = np.maximum.accumulate(np.where(level >= self.threshold_db, offsets, 0), -1)
        since = np.where(last_above > 0, offsets - last_above, state["since"][:, None] + offsets)
        since = np.minimum(since, self.hold + 1)
        closed = since > self.hold
        if self.ratio is None:
            target = np.where(closed, self.range_db, 0.0)
        else:
            below = np.maximum(self.threshold_db - level, 0.0) * (self.ratio - 1.0)
            target = np.where(closed, np.minimum(below, self.range_db), 0.0)
        atten, atten_state = dyn.smooth_branching(
            target, state["atten"], self.release_coef, self.attack_coef
        )
        new_state = {
            "rms": rms,
            "since": since[:, -1].copy() if frames else state["since"],
            "atten": atten_state,
        }
        return _apply_gain_db(x, -atten, self.link), new_state


class Limiter(Stage):
    """Look-ahead brick-wall limiter (`limiter`): no output sample exceeds ceiling_db.

    With L look-ahead samples, the input is delayed by L and the gain for the delayed sample
    x[n - L] is built as follows (all steps vectorised except the release recursion):

    1. required gain g[k] = min(1, ceiling / |x[k]|) (max over channels when linked);
    2. reduction hold: p[n] = max of -20 log10 g over the last L + 1 samples, so p[j] >= the
       reduction needed at n - L for every j in [n - L, n];
    3. release: r[n] follows p instantly upwards and decays towards it with release_ms, so
       r >= p;
    4. a moving average of 10^(-r/20) over the last L + 1 samples: every averaged value is
       <= g[n - L], hence the average is too; the gain ramps down linearly over the look-ahead
       before a peak instead of jumping.

    The final gain is min(average, g[n - L]) (a no-op up to rounding) and the result is clamped
    to the ceiling in the output dtype (which acts only on rounding, below one ulp). The
    latency of L samples is compensated: the first L outputs are dropped and `flush` returns
    the last L, so the output is aligned with the input and has the same length.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "limiter"

    def __init__(
        self,
        sample_rate: float,
        ceiling_db: float = -1.0,
        release_ms: float = 50.0,
        lookahead_ms: float = 5.0,
        link: bool = True,
    ) -> None:
        super().__init__(
            sample_rate,
            ceiling_db=ceiling_db,
            release_ms=release_ms,
            lookahead_ms=lookahead_ms,
            link=link,
        )
        self.ceiling = 10.0 ** (ceiling_db / 20.0)
        self.latency = int(round(lookahead_ms * self.sample_rate / 1000.0))
        self.release_coef = dyn.time_coefficient(release_ms, self.sample_rate)
        self.link = link

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        signals, lag = _signals(x, self.link), self.latency
        return {
            "x": x.new_zeros((*x.shape[:-1], lag)),
            "required": np.ones((signals, lag)),
            "reduction": np.zeros((signals, lag)),
            "release": np.zeros(signals),
            "gain": np.ones((signals, lag)),
            "drop": lag,
        }

    def _ceiling_in(self, dtype: torch.dtype) -> float:
        """The largest value of `dtype` that is <= the ceiling."""
        if dtype == torch.float64:
            return self.ceiling
        value = torch.tensor(self.ceiling, dtype=dtype)
        if float(value) > self.ceiling:
            value = torch.nextafter(value, torch.zeros((), dtype=dtype))
        return float(value)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        frames, lag = x.shape[-1], self.latency
        block = _batches(x)
        batch, channels = block.shape[0], block.shape[1]
        magnitude = np.abs(block)
        level = magnitude.max(axis=1) if self.link else magnitude.reshape(batch * channels, frames)
        with np.errstate(divide="ignore"):
            required = np.minimum(1.0, self.ceiling / level)
        reduction = -20.0 * np.log10(required)
        held, reduction_history = dyn.running_max(reduction, state["reduction"])
        released, release_state = dyn.smooth_branching(
            held, state["release"], 0.0, self.release_coef
        )
        average, gain_history = dyn.moving_average(10.0 ** (-released / 20.0), state["gain"])
        required_all = np.concatenate([state["required"], required], axis=-1)
        gain = np.minimum(average, required_all[..., :frames])
        x_all = torch.cat([state["x"], x], dim=-1)
        rows = 1 if self.link else channels
        gain_t = torch.from_numpy(gain).to(device=x.device, dtype=x.dtype)
        y = x_all[..., :frames] * gain_t.reshape(*x.shape[:-2], rows, frames)
        ceiling = self._ceiling_in(x.dtype)
        y = y.clamp(-ceiling, ceiling)
        drop = min(state["drop"], frames)
        new_state = {
            "x": x_all[..., x_all.shape[-1] - lag :],
            "required": required_all[..., required_all.shape[-1] - lag :],
            "reduction": reduction_history,
            "release": release_state,
            "gain": gain_history,
            "drop": state["drop"] - drop,
        }
        return y[..., drop:], new_state

    def flush(self, state: State) -> Tensor | None:
        if not self.latency or state is None:
            return None
        history = state["x"]
        return self.step(history.new_zeros(history.shape), state)[0]
