"""Sample-rate conversion stage (`resample`): polyphase windowed sinc with state.

Output is aligned with the input (the kernel is centred, no delay) and the stream yields exactly
ceil(n * rate_hz / sample_rate) samples for n input samples: the outputs whose kernels reach past
the end are computed in `flush`, with zeros after the last input sample.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiofx_cli import memory
from audiofx_cli.dsp.resample import (
    MAX_KERNEL,
    QUALITIES,
    design_kernel,
    polyphase,
    ratio,
    zeros_buffer,
)
from audiofx_cli.errors import ParamError
from audiofx_cli.stages.base import Stage, State


class Resample(Stage):
    """Resample to `rate_hz` (`resample`); later stages run at the new rate.

    Shape:
        (..., channels, time) -> (..., channels, ceil(time * rate_hz / sample_rate)).
    """

    stage_name = "resample"
    float64_buffers = ("kernel",)

    def __init__(self, sample_rate: float, rate_hz: int, quality: str = "high") -> None:
        super().__init__(sample_rate, rate_hz=rate_hz, quality=quality)
        if not float(sample_rate).is_integer():
            raise ParamError("rate_hz", f"needs an integer input rate, got {sample_rate:g} Hz")
        self.new_rate = int(rate_hz)
        self.up, self.down = ratio(int(sample_rate), self.new_rate)
        self.identity = self.up == self.down
        kernel, self.pad = design_kernel(self.up, self.down, QUALITIES[quality])
        if kernel.size > MAX_KERNEL:
            raise ParamError("rate_hz", f"ratio {self.up}/{self.down} needs too large a kernel")
        self.register_buffer(
            "kernel", torch.from_numpy(kernel) if not self.identity else None, persistent=False
        )

    @property
    def output_rate(self) -> float:
        return float(self.new_rate)

    def output_frames(self, frames: int | None) -> int | None:
        if frames is None:
            return None
        return -(-frames * self.up // self.down)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"buffer": zeros_buffer(x, self.pad), "frames_in": 0, "frames_out": 0}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.identity:
            return x, state
        if state is None:
            state = self.init_state(x)
        y, buffer = polyphase(state["buffer"], x, self.kernel, self.down)
        return y, {
            "buffer": buffer,
            "frames_in": state["frames_in"] + x.shape[-1],
            "frames_out": state["frames_out"] + y.shape[-1],
        }

    def forward(self, x: Tensor) -> Tensor:
        """The whole signal, written once into an output of its final length."""
        if self.identity:
            return x
        n = x.shape[-1]
        out = memory.empty((*x.shape[:-1], self.output_frames(n)), x.dtype, x.device)
        buffer = self.init_state(x, n)["buffer"]
        y, buffer = polyphase(buffer, x, self.kernel, self.down, out=out)
        tail = self.flush({"buffer": buffer, "frames_in": n, "frames_out": y.shape[-1]})
        if tail is not None:
            out[..., y.shape[-1] :] = tail
        return out

    def flush(self, state: State) -> Tensor | None:
        if self.identity or state is None:
            return None
        total = self.output_frames(state["frames_in"])
        missing = total - state["frames_out"]
        if missing <= 0:
            return None
        groups = math.ceil(missing / self.up)
        need = (groups - 1) * self.down + self.kernel.shape[1]
        buffer = state["buffer"]
        zeros = buffer.new_zeros((*buffer.shape[:-1], max(0, need - buffer.shape[-1])))
        y, _ = polyphase(buffer, zeros, self.kernel, self.down)
        return y[..., :missing]
