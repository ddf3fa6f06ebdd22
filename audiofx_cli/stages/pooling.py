"""Rate-reducing stages for features and audio: `frames` (window statistics) and `decimate`.

Both work on any (..., time) input: audio (channel, time) or the output of a feature stage
(channel, fc_hz, mfc_hz, time), and keep every axis but time; output k sits at input time
k / output_rate (the time origin is kept), n input samples give ceil(n output_rate / rate)
outputs, ragged axes keep their counts (padded entries stay 0). Streaming is exact
(`dsp.pooling.WindowStream`). Computation is float64 on the CPU (tensors on another device
are moved for it and the result moved back); the output has the input's dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.axes import FeatureAxes, chain_axes
from audiofx_cli.dsp import framing
from audiofx_cli.dsp import pooling as dsp
from audiofx_cli.dsp.auditory import as_rows
from audiofx_cli.errors import ParamError
from audiofx_cli.stages.base import Stage, State

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


def _tensor(y: np.ndarray, like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """float64 rows -> a tensor of `shape` with `like`'s dtype and device. The cast is numpy's:
    torch's float64 -> float32 `.to` of a (372, 1000) array took 30 ms on the loaded 2-core
    machine (its thread pool waking up), numpy's 0.1 ms."""
    cast = _NUMPY.get(like.dtype)
    out = torch.from_numpy(y.astype(cast, copy=False) if cast else y).reshape(shape)
    return out.to(device=like.device, dtype=like.dtype)


class _Windowed(Stage):
    """A chain of `WindowStream`s over rows of (..., time); subclasses set `streams`."""

    streams: list[dsp.WindowStream]
    padding: np.ndarray | None = None  # (n, M) True where the stage before pads with zeros

    def feature_axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.replace(frame_rate=self.output_rate)

    def connect(self, previous: list[Any]) -> None:
        """When the stage just before creates a ragged axis (the modulation filterbank), its
        padded entries are 0 (the axes contract), so their rows are skipped: their frames
        are 0. Measured: a quarter less to read after the jepsen2008 filterbank."""
        if not previous:
            return
        rate = getattr(previous[0], "sample_rate", None)
        after, before = chain_axes(previous, rate), chain_axes(previous[:-1], rate)
        mask = after.mask()
        if mask is not None and before.ragged is None:
            self.padding = ~mask

    def _rows(self, x: Tensor) -> np.ndarray | None:
        """The rows of x to compute (None: all)."""
        padding = self.padding
        if padding is None or x.dim() < 3 or tuple(x.shape[-3:-1]) != padding.shape:
            return None
        repeats = math.prod(x.shape[:-3])
        return np.flatnonzero(~np.tile(padding.ravel(), repeats))

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        rows = as_rows(x[..., :0]).shape[0]
        dtype = np.dtype(np.float64 if x.dtype == torch.float64 else np.float32)
        index = self._rows(x)
        states = [
            stream.init(rows, dtype if i == 0 else np.dtype(np.float64), index)
            for i, stream in enumerate(self.streams)
        ]
        return {"streams": states, "lead": tuple(x.shape[:-1]), "like": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        if not self.streams:
            return x, state
        y, states = dsp.pipeline_step(self.streams, as_rows(x), state["streams"])
        return _tensor(y, x, (*x.shape[:-1], y.shape[1])), {**state, "streams": states}

    def flush(self, state: State) -> Tensor | None:
        if state is None or not self.streams:
            return None
        streams = state["streams"]
        # cascaded stages may round up twice (ceil(ceil(n / 21) 4 / 21) > ceil(n 4 / 441)):
        # the outputs past the end of the signal are dropped
        missing = self.output_frames(streams[0]["total"]) - streams[-1]["next"]
        y = dsp.pipeline_flush(self.streams, streams)
        if y is None or missing <= 0:
            return None
        y = y[:, :missing]
        return _tensor(y, state["like"], (*state["lead"], y.shape[1]))


class Frames(_Windowed):
    """Frame statistics (`frames`): rms, mean, mean of |x| or maximum over windows of
    `window_ms` every `hop_ms`, centred on k * hop_ms (frame rate exactly 1000 / hop_ms Hz).

    Frames at the ends of the signal take the statistic over their samples inside it (no
    zero padding). The weighted statistics use a symmetric window; `max` ignores weights.

    Shape:
        (..., time) -> (..., ceil(time * frame_rate / sample_rate)).

    Example:
        >>> stage = Frames(16000, hop_ms=10, window_ms=25, stat="rms")
        >>> stage(torch.ones(2, 16000)).shape
        torch.Size([2, 100])
    """

    stage_name = "frames"

    def __init__(
        self,
        sample_rate: float,
        hop_ms: float = 10.0,
        window_ms: float = 25.0,
        stat: str = "rms",
        window: str = "rectangular",
    ) -> None:
        super().__init__(sample_rate, hop_ms=hop_ms, window_ms=window_ms, stat=stat, window=window)
        framing.check_frames(hop_ms, window_ms, stat, window, sample_rate)
        hop = framing.hop_samples(hop_ms, sample_rate)
        width = framing.window_samples(window_ms, sample_rate)
        weights = dsp.window_weights(window, width)
        if weights.sum() <= 0 or (width > 2 and weights[(width - 1) // 2] <= 0):
            raise ParamError("window_ms", f"{width} samples is too short for a {window} window")
        self.hop = hop
        self.streams = [dsp.WindowStream(dsp.FramePlan(hop, width), weights[None, :], stat)]

    @property
    def output_rate(self) -> float:
        return float(self.sample_rate / self.hop)

    def output_frames(self, frames: int | None) -> int | None:
        return None if frames is None else framing.output_count(frames, 1 / self.hop)


class Decimate(_Windowed):
    """Anti-aliased decimation (`decimate`) to `rate_hz`, or by an integer `factor`.

    A linear-phase low-pass (Kaiser-windowed sinc) flat to `passband` of the output Nyquist
    frequency and attenuating everything from the output Nyquist frequency up by at least
    `stopband_db`, applied per row (every band of a feature) with the output sampled at
    k / rate_hz: aligned, no delay. Large factors run in two polyphase stages (see
    `dsp.pooling.decimation_stages`). Samples outside the signal count as zeros.

    Shape:
        (..., time) -> (..., ceil(time * rate_hz / sample_rate)).
    """

    stage_name = "decimate"

    def __init__(
        self,
        sample_rate: float,
        rate_hz: float | None = None,
        factor: int | None = None,
        passband: float = 0.8,
        stopband_db: float = 80.0,
    ) -> None:
        super().__init__(
            sample_rate, rate_hz=rate_hz, factor=factor, passband=passband, stopband_db=stopband_db
        )
        framing.check_decimate(rate_hz, factor, sample_rate)
        self.ratio = framing.decimation_ratio(sample_rate, rate_hz, factor)
        stages = dsp.decimation_stages(self.ratio, sample_rate, passband, stopband_db)
        self.streams = [dsp.WindowStream(plan, weights, "sum") for plan, weights in stages]

    @property
    def output_rate(self) -> float:
        return float(self.sample_rate * self.ratio)

    def output_frames(self, frames: int | None) -> int | None:
        return None if frames is None else framing.output_count(frames, self.ratio)

    def response(self) -> list[tuple[Any, np.ndarray]]:
        """The polyphase stages (plan, weights), first to last."""
        return [(s.plan, s.weights) for s in self.streams]
