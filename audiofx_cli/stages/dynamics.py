"""Dynamics stages: `compressor`, `limiter`, `gate`, over the compiled kernels of
`audiofx_cli.dsp.dynamics` (float64 arithmetic, output rounded once to the chunk's dtype).

Without autograd the kernel writes the output chunk itself. When the input requires a gradient
the kernel returns the gain instead and the tensor is multiplied by it, so gradients reach the
input through the multiplication (the gain itself is treated as a constant). On CUDA the chunk
is copied to the CPU for the kernel and the result copied back.

State per stream: detector mean square, gain smoother values, hold counters and, for the
limiter, its look-ahead delay line; chunked output equals whole-signal output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import dynamics as dyn
from audiofx_cli.stages.base import Stage, State

Kernel = Callable[[np.ndarray, Any, bool], tuple[np.ndarray, Any]]


def _array(x: Tensor) -> np.ndarray:
    """(..., channels, time) -> (batch, channels, time) numpy on the CPU, float32 or float64:
    a view of x when its samples are contiguous along time (rows may be strided, as in a chunk
    sliced from a longer signal), else a copy."""
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    x = x.to("cpu")
    batch = math.prod(x.shape[:-2])
    array = x.reshape(batch, *x.shape[-2:]).numpy()
    return array if dyn.rows_readable(array) else np.ascontiguousarray(array)


def _out_array(out: Tensor, x: Tensor) -> np.ndarray | None:
    """`out` as a (batch, channels, time) numpy view the kernels can write, or None."""
    if out.device.type != "cpu" or out.dtype != x.dtype or out.shape != x.shape:
        return None
    try:
        view = out.view(math.prod(out.shape[:-2]), *out.shape[-2:]).numpy()
    except RuntimeError:  # not viewable as (batch, channels, time)
        return None
    return view if dyn.rows_readable(view) else None


def _needs_grad(x: Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def _gain_tensor(gains: np.ndarray, like: Tensor, link: bool, frames: int) -> Tensor:
    """(signals, frames) float64 gains -> (..., rows, frames) in like's dtype and device."""
    rows = 1 if link else like.shape[-2]
    gain = torch.from_numpy(gains).to(device=like.device, dtype=like.dtype)
    return gain.reshape(*like.shape[:-2], rows, frames)


def _run(x: Tensor, kernel: Kernel, state: Any, link: bool) -> tuple[Tensor, Any]:
    """Output of a sample-aligned kernel (compressor, gate) for chunk x, and the new state."""
    if _needs_grad(x):
        gains, state = kernel(_array(x), state, False)
        return x * _gain_tensor(gains, x, link, x.shape[-1]), state
    out, state = kernel(_array(x), state, True)
    y = torch.from_numpy(out).reshape(x.shape)
    return y.to(device=x.device, dtype=x.dtype), state


def _run_into(
    x: Tensor, kernel: Any, state: Any, out: Tensor, step: Any
) -> tuple[Tensor | None, Any]:
    """`Stage.step_into` for a sample-aligned kernel: the kernel writes `out` itself (no
    output chunk to allocate and copy) when it can; else `step`."""
    target = None if _needs_grad(x) else _out_array(out, x)
    if target is None:
        return step(x, state)
    _, state = kernel(_array(x), state, True, out=target)
    return None, state


def _signals(x: Tensor, link: bool) -> int:
    batch = math.prod(x.shape[:-2])
    return batch if link else batch * x.shape[-2]


class _Detecting(Stage):
    """Shared by the compressor and the gate: the detector set-up (peak or rms, linked or per
    channel) and the streaming over a sample-aligned kernel (`_kernel`)."""

    def _init_detector(self, detector: str, rms_ms: float, link: bool) -> None:
        self.detector, self.link = detector, link
        self.rms_coef = dyn.time_coefficient(rms_ms, self.sample_rate)
        self._detector = dyn.Detector(detector == "rms", self.rms_coef, link)

    def _kernel(
        self, x: np.ndarray, state: Any, apply: bool, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        return _run(x, self._kernel, state, self.link)

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if state is None:
            state = self.init_state(x)
        return _run_into(x, self._kernel, state, out, self.step)


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
        self.makeup_db = makeup_db
        self._init_detector(detector, rms_ms, link)
        self._params = dyn.CompressorParams(
            self._detector,
            threshold_db,
            ratio,
            knee_db,
            makeup_db,
            dyn.time_coefficient(attack_ms, self.sample_rate),
            dyn.time_coefficient(release_ms, self.sample_rate),
        )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return dyn.compressor_state(_signals(x, self.link))

    def _kernel(
        self, x: np.ndarray, state: Any, apply: bool, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, Any]:
        return dyn.compressor(x, state, self._params, apply, out)

    def gain_reduction_db(self, x: Tensor, state: State) -> tuple[np.ndarray, State]:
        """Smoothed gain reduction in dB (>= 0), shape (signals, time), and the new state."""
        if state is None:
            state = self.init_state(x)
        gains, state = self._kernel(_array(x), state, False)
        return self.makeup_db - 20.0 * np.log10(gains), state


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
        self._init_detector(detector, rms_ms, link)
        self._params = dyn.GateParams(
            self._detector,
            threshold_db,
            range_db,
            ratio,
            int(round(hold_ms * self.sample_rate / 1000.0)),
            dyn.time_coefficient(attack_ms, self.sample_rate),
            dyn.time_coefficient(release_ms, self.sample_rate),
        )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return dyn.gate_state(_signals(x, self.link), self._params)

    def _kernel(
        self, x: np.ndarray, state: Any, apply: bool, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, Any]:
        return dyn.gate(x, state, self._params, apply, out)


class Limiter(Stage):
    """Look-ahead brick-wall limiter (`limiter`): no output sample exceeds ceiling_db.

    With L look-ahead samples, the input is delayed by L and the gain for the delayed sample
    x[n - L] is built as follows (`audiofx_cli.dsp.dynamics.limiter`):

    1. required gain g[k] = min(1, ceiling / |x[k]|) (max over channels when linked);
    2. reduction hold: the minimum of g over the last L + 1 samples, as a reduction p[n] in
       dB, so p[n] >= the reduction needed at every j in [n - L, n];
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

    def _params(self, dtype: np.dtype) -> dyn.LimiterParams:
        torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
        clamp = self._ceiling_in(torch_dtype)
        return dyn.LimiterParams(self.ceiling, clamp, self.latency, self.release_coef, self.link)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        array = _array(x[..., :0])
        return {
            "kernel": dyn.limiter_state(array, self._params(array.dtype)),
            "x": x.new_zeros((*x.shape[:-1], self.latency)),  # the delay line, for autograd
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
        array = _array(x)
        params = self._params(array.dtype)
        grad = _needs_grad(x) or _needs_grad(state["x"])  # flush: zeros after a graph
        out, kernel_state = dyn.limiter(array, state["kernel"], params, apply=not grad)
        frames = out.shape[-1]
        if grad:  # the delay line as tensors, so the gradient flows through it
            x_all = torch.cat([state["x"], x], dim=-1)
            start = x.shape[-1] - frames  # outputs begin once the look-ahead is filled
            delayed = x_all[..., start : start + frames]
            y = delayed * _gain_tensor(out, x, self.link, frames)
            y = y.clamp(-params.clamp, params.clamp)
            history = x_all[..., x_all.shape[-1] - self.latency :]
        else:
            y = torch.from_numpy(out).reshape(*x.shape[:-1], frames)
            y = y.to(device=x.device, dtype=x.dtype)
            history = state["x"]  # unused without autograd
        return y, {"kernel": kernel_state, "x": history}

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if state is None:
            state = self.init_state(x)
        kernel_state = state["kernel"]
        filled = kernel_state.position >= self.latency  # one output sample per input sample
        target = _out_array(out, x) if filled and not _needs_grad(x) else None
        if target is None:
            return self.step(x, state)
        array = _array(x)
        _, kernel_state = dyn.limiter(array, kernel_state, self._params(array.dtype), True, target)
        return None, {"kernel": kernel_state, "x": state["x"]}

    def flush(self, state: State) -> Tensor | None:
        if not self.latency or state is None:
            return None
        history = state["x"]
        return self.step(history.new_zeros(history.shape), state)[0]
