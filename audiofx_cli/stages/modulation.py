"""Modulation stages: `tremolo`, `chorus`, `flanger`, `phaser`.

The state keeps the absolute index of the next input sample (the LFO is a function of it) and,
for the delay and all-pass effects, the delay line / all-pass memories (float64). Output has
the input's shape; leading batch dims share the channel LFOs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp.modulation import (
    allpass_cascade,
    allpass_coefficient,
    lfo,
    max_delay_samples,
    modulated_delay,
)
from audiofx_cli.stages.base import Stage, State


class _Modulated(Stage):
    """Shared LFO plumbing: per-channel phase offsets and rows <-> (..., channels, time)."""

    def __init__(self, sample_rate: float, **params: object) -> None:
        super().__init__(sample_rate, **params)
        self.rate_hz = float(params["rate_hz"])  # type: ignore[arg-type]
        self.shape = str(params["shape"])
        self.phase = float(params["phase_deg"]) / 360.0  # type: ignore[arg-type]
        self.spread = float(params["spread_deg"]) / 360.0  # type: ignore[arg-type]
        self.mix = float(params["mix"])  # type: ignore[arg-type]

    def lfo_rows(self, x: Tensor, start: int, voices: int = 1) -> np.ndarray:
        """LFO for every row of x.reshape(-1, time): (rows, voices, time)."""
        channels, n = x.shape[-2], x.shape[-1]
        offsets = np.array(
            [
                self.phase + c * self.spread + v / voices
                for c in range(channels)
                for v in range(voices)
            ]
        )
        values = lfo(start, n, self.rate_hz, self.sample_rate, offsets, self.shape)
        values = values.reshape(channels, voices, n)
        rows = math.prod(x.shape[:-1])
        return np.ascontiguousarray(
            np.broadcast_to(values, (rows // channels, channels, voices, n))
        )

    @staticmethod
    def rows(x: Tensor) -> np.ndarray:
        return x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float64).numpy()

    def blend(self, x: Tensor, wet: np.ndarray) -> Tensor:
        wet_t = torch.from_numpy(wet).to(device=x.device, dtype=x.dtype).reshape(x.shape)
        return (1.0 - self.mix) * x + self.mix * wet_t


class Tremolo(_Modulated):
    """Tremolo (`tremolo`): y = x ((1 - mix) + mix g), g = 1 - depth (1 - lfo) / 2.

    With the sine LFO this is SoX `tremolo rate_hz 100*depth`.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "tremolo"

    def __init__(
        self,
        sample_rate: float,
        rate_hz: float = 5.0,
        depth: float = 0.5,
        mix: float = 1.0,
        shape: str = "sine",
        phase_deg: float = 0.0,
        spread_deg: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            rate_hz=rate_hz,
            depth=depth,
            mix=mix,
            shape=shape,
            phase_deg=phase_deg,
            spread_deg=spread_deg,
        )
        self.depth = depth

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return 0

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        start = state or 0
        channels, n = x.shape[-2], x.shape[-1]
        offsets = self.phase + self.spread * np.arange(channels)
        gain = (
            1.0
            - self.depth
            * (1.0 - lfo(start, n, self.rate_hz, self.sample_rate, offsets, self.shape))
            / 2
        )
        gain = (1.0 - self.mix) + self.mix * gain
        return x * torch.from_numpy(gain).to(device=x.device, dtype=x.dtype), start + n


class _DelayModulated(_Modulated):
    """Chorus and flanger: voices read a delay line at delay_ms * (1 + depth * lfo) samples
    (at least 1) by linear interpolation; their mean is the wet signal and, times feedback,
    goes back into the line."""

    def __init__(self, sample_rate: float, voices: int = 1, **params: object) -> None:
        super().__init__(sample_rate, **params)
        self.voices = voices
        self.depth = float(params["depth"])  # type: ignore[arg-type]
        self.delay = float(params["delay_ms"]) * sample_rate / 1000.0  # type: ignore[arg-type]
        self.feedback = float(params["feedback"])  # type: ignore[arg-type]
        self.history = max_delay_samples(float(params["delay_ms"]), self.depth, sample_rate)  # type: ignore[arg-type]

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        rows = math.prod(x.shape[:-1])
        return {"index": 0, "line": np.zeros((rows, self.history))}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        n = x.shape[-1]
        if n == 0:
            return x.clone(), state
        values = self.lfo_rows(x, state["index"], self.voices)
        delays = np.maximum(self.delay * (1.0 + self.depth * values), 1.0)
        delays = delays.reshape(-1, self.voices, n)
        wet, line = modulated_delay(self.rows(x), delays, state["line"], self.feedback)
        return self.blend(x, wet), {"index": state["index"] + n, "line": line}


class Chorus(_DelayModulated):
    """Chorus (`chorus`): `voices` voices with LFO phases spread evenly over a cycle.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "chorus"

    def __init__(
        self,
        sample_rate: float,
        rate_hz: float = 1.0,
        depth: float = 0.25,
        mix: float = 0.5,
        delay_ms: float = 7.0,
        feedback: float = 0.0,
        voices: int = 1,
        shape: str = "sine",
        phase_deg: float = 0.0,
        spread_deg: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            voices=voices,
            rate_hz=rate_hz,
            depth=depth,
            mix=mix,
            delay_ms=delay_ms,
            feedback=feedback,
            shape=shape,
            phase_deg=phase_deg,
            spread_deg=spread_deg,
        )
        self.params["voices"] = voices


class Flanger(_DelayModulated):
    """Flanger (`flanger`): one voice, short delay, feedback.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "flanger"

    def __init__(
        self,
        sample_rate: float,
        rate_hz: float = 0.5,
        depth: float = 0.9,
        mix: float = 0.5,
        delay_ms: float = 2.0,
        feedback: float = 0.5,
        shape: str = "sine",
        phase_deg: float = 0.0,
        spread_deg: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            voices=1,
            rate_hz=rate_hz,
            depth=depth,
            mix=mix,
            delay_ms=delay_ms,
            feedback=feedback,
            shape=shape,
            phase_deg=phase_deg,
            spread_deg=spread_deg,
        )


class Phaser(_Modulated):
    """Phaser (`phaser`): `stages` first-order all-passes (a + z^-1) / (1 + a z^-1) whose
    -90 degree frequency is centre_hz * 2^(depth * octaves * lfo); the cascade's previous output
    times feedback is added to its input; y = (1 - mix) x + mix cascade.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "phaser"

    def __init__(
        self,
        sample_rate: float,
        rate_hz: float = 1.0,
        depth: float = 0.5,
        mix: float = 0.5,
        centre_hz: float = 1300.0,
        octaves: float = 2.0,
        stages: int = 4,
        feedback: float = 0.0,
        shape: str = "sine",
        phase_deg: float = 0.0,
        spread_deg: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            rate_hz=rate_hz,
            depth=depth,
            mix=mix,
            centre_hz=centre_hz,
            octaves=octaves,
            stages=stages,
            feedback=feedback,
            shape=shape,
            phase_deg=phase_deg,
            spread_deg=spread_deg,
        )
        self.depth, self.centre_hz, self.octaves = depth, centre_hz, octaves
        self.stages, self.feedback = stages, feedback

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        rows = math.prod(x.shape[:-1])
        return {"index": 0, "memory": np.zeros((rows, self.stages + 1))}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        n = x.shape[-1]
        if n == 0:
            return x.clone(), state
        values = self.lfo_rows(x, state["index"]).reshape(-1, n)
        freq = self.centre_hz * np.exp2(self.depth * self.octaves * values)
        coef = allpass_coefficient(freq, self.sample_rate)
        wet, memory = allpass_cascade(self.rows(x), coef, state["memory"], self.feedback)
        return self.blend(x, wet), {"index": state["index"] + n, "memory": memory}
