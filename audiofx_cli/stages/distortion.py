"""Distortion stages: `distortion` (tanh soft clip) and `bitcrush` (quantiser, sample-and-hold)."""

from __future__ import annotations

import torch
from torch import Tensor

from audiofx_cli.dsp.level import quantize_midtread, soft_clip
from audiofx_cli.stages.base import Stage, State


class Distortion(Stage):
    """tanh soft clipper (`distortion`): y = g_out ((1 - mix) x + mix tanh(g_drive x)),
    g = 10^(dB / 20). Memoryless, differentiable.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "distortion"

    def __init__(
        self, sample_rate: float, drive_db: float = 25.0, mix: float = 1.0, output_db: float = 0.0
    ) -> None:
        super().__init__(sample_rate, drive_db=drive_db, mix=mix, output_db=output_db)
        self.drive_db, self.mix, self.output_db = drive_db, mix, output_db

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return soft_clip(x, self.drive_db, self.mix, self.output_db), state


class Bitcrush(Stage):
    """Bit crusher (`bitcrush`): sample-and-hold every `downsample` samples (the held value is
    the first sample of each group, counted from the start of the stream), then a uniform
    mid-tread quantiser with step 2^(1 - bits): y = step * floor(x / step + 1/2).

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "bitcrush"

    def __init__(self, sample_rate: float, bits: int = 8, downsample: int = 1) -> None:
        super().__init__(sample_rate, bits=bits, downsample=downsample)
        self.bits, self.downsample = bits, downsample

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"phase": 0, "held": x.new_zeros(x.shape[:-1])}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.downsample == 1:
            return quantize_midtread(x, self.bits), state
        if state is None:
            state = self.init_state(x)
        frames, phase = x.shape[-1], state["phase"]
        positions = torch.arange(phase, phase + frames, device=x.device)
        starts = positions - positions % self.downsample - phase  # group start, chunk-relative
        held = x[..., starts.clamp(min=0)]
        held = torch.where(starts >= 0, held, state["held"].unsqueeze(-1))
        new_held = held[..., -1] if frames else state["held"]
        new_state = {"phase": (phase + frames) % self.downsample, "held": new_held}
        return quantize_midtread(held, self.bits), new_state
