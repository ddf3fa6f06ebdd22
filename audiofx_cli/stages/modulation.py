"""Modulation stages: `tremolo`, `chorus`, `flanger`, `phaser`.

The state keeps the absolute index of the next input sample (the LFO is a function of it) and,
for the delay and all-pass effects, the delay ring / all-pass memories (float64, updated in
place). Output has the input's shape; leading batch dims share the channel LFOs. The effects
run in compiled kernels on the CPU (`audiofx_cli.dsp.modulation`); where autograd needs it, the
dry part of the mix (and tremolo's gain) stays in torch so gradients reach the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp.modulation import (
    Lfo,
    allpass_cascade,
    lfo,
    max_delay_samples,
    modulated_delay,
    ring_size,
    tremolo,
)
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.rows import kernel_rows, like, needs_grad


class _Modulated(Stage):
    """Shared LFO plumbing: per-channel phase offsets and rows <-> (..., channels, time)."""

    def __init__(self, sample_rate: float, **params: object) -> None:
        super().__init__(sample_rate, **params)
        self.rate_hz = float(params["rate_hz"])  # type: ignore[arg-type]
        self.shape = str(params["shape"])
        self.phase = float(params["phase_deg"]) / 360.0  # type: ignore[arg-type]
        self.spread = float(params["spread_deg"]) / 360.0  # type: ignore[arg-type]
        self.mix = float(params["mix"])  # type: ignore[arg-type]

    def oscillator(self, channels: int, voices: int = 0) -> Lfo:
        """The LFOs of `channels` channels: offsets (channels,), or (channels, voices) with
        `voices` voices per channel spread evenly over a cycle."""
        offsets = np.array(
            [
                [self.phase + c * self.spread + v / max(voices, 1) for v in range(max(voices, 1))]
                for c in range(channels)
            ]
        )
        return Lfo(self.rate_hz, self.sample_rate, offsets if voices else offsets[:, 0], self.shape)

    def run(self, x: Tensor, effect, mix: float) -> Tensor:  # type: ignore[no-untyped-def]
        """`effect(rows, out, mix)` on x's rows; with autograd the wet part comes from the
        kernel (mix 1) and the dry part from torch."""
        rows, out = kernel_rows(x)
        grad = needs_grad(x)
        effect(rows.numpy(), out.numpy(), 1.0 if grad else mix)
        y = like(out, x)
        return (1.0 - mix) * x + mix * y if grad else y


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
        osc = self.oscillator(channels)
        if not needs_grad(x):
            rows, out = kernel_rows(x)
            tremolo(rows.numpy(), out.numpy(), start, osc, self.depth, self.mix)
            return like(out, x), start + n
        values = lfo(start, n, self.rate_hz, self.sample_rate, osc.offsets, self.shape)
        gain = (1.0 - self.mix) + self.mix * (1.0 - self.depth * (1.0 - values) / 2)
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
        return {"index": 0, "ring": np.zeros((rows, ring_size(self.history)))}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One chunk; the ring in `state` is updated in place (and returned)."""
        if state is None:
            state = self.init_state(x)
        n = x.shape[-1]
        if n == 0:
            return x.clone(), state
        osc = self.oscillator(x.shape[-2], self.voices)
        delay = (self.delay, self.depth)

        def effect(rows: np.ndarray, out: np.ndarray, mix: float) -> None:
            args = (state["ring"], state["index"], osc, delay, self.feedback, mix)
            modulated_delay(rows, out, *args)

        y = self.run(x, effect, self.mix)
        return y, {"index": state["index"] + n, "ring": state["ring"]}


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
        """One chunk; the memories in `state` are updated in place (and returned)."""
        if state is None:
            state = self.init_state(x)
        n = x.shape[-1]
        if n == 0:
            return x.clone(), state
        osc = self.oscillator(x.shape[-2])
        sweep = (self.centre_hz / self.sample_rate, self.depth * self.octaves)

        def effect(rows: np.ndarray, out: np.ndarray, mix: float) -> None:
            args = (state["memory"], state["index"], osc, sweep, self.feedback, mix)
            allpass_cascade(rows, out, *args)

        y = self.run(x, effect, self.mix)
        return y, {"index": state["index"] + n, "memory": state["memory"]}
