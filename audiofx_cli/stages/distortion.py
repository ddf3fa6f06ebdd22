"""Distortion stages: `distortion` (tanh soft clip, torch) and `bitcrush` (quantiser,
sample-and-hold: a compiled kernel, or torch when autograd tracks the input)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp.crush import bitcrush_rows
from audiofx_cli.dsp.level import quantize_midtread, soft_clip
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.rows import kernel_rows, like, needs_grad


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
        if needs_grad(x):
            return {"phase": 0, "held": x.new_zeros(x.shape[:-1])}
        return {"phase": 0, "held_rows": np.zeros(math.prod(x.shape[:-1]))}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One chunk; a kernel state's held values are updated in place."""
        if state is None:
            state = self.init_state(x)
        if "held_rows" in state:
            rows, out = kernel_rows(x)
            args = (state["held_rows"], state["phase"], self.downsample, self.bits)
            phase = bitcrush_rows(rows.numpy(), out.numpy(), *args)
            return like(out, x), {**state, "phase": phase}
        if self.downsample == 1:
            return quantize_midtread(x, self.bits), state
        frames, phase = x.shape[-1], state["phase"]
        positions = torch.arange(phase, phase + frames, device=x.device)
        starts = positions - positions % self.downsample - phase  # group start, chunk-relative
        held = x[..., starts.clamp(min=0)]
        held = torch.where(starts >= 0, held, state["held"].unsqueeze(-1))
        new_held = held[..., -1] if frames else state["held"]
        new_state = {"phase": (phase + frames) % self.downsample, "held": new_held}
        return quantize_midtread(held, self.bits), new_state
