"""Delay stages: `delay` (feedback delay line) and `echo` (multi-tap, SoX semantics).

Both keep the delay line in the state and, with `tail_s` > 0, play it out in `flush`
(`TailStage`): the output is then input length + round(tail_s * rate) samples long. They run
compiled kernels on the CPU (a float64 ring updated in place), or torch functions when autograd
tracks the input (state: the line as a tensor); a stream keeps the kind its state started with.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import Tensor

from audiofx_cli.dsp.delays import delay_rows, echo_rows, feedback_delay, multi_tap
from audiofx_cli.dsp.modulation import ring_size
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.rows import kernel_rows, like, needs_grad


def ms_to_frames(ms: float, sample_rate: float) -> int:
    return max(1, int(round(ms * sample_rate / 1000.0)))


class TailStage(Stage):
    """A stage whose response outlasts its input: `flush` feeds `tail` zero samples through
    `step` when the stream held any audio (an empty stream stays empty).

    Subclasses keep a dict state with a boolean "seen" and set `self.tail` in __init__.
    """

    tail: int = 0

    def output_frames(self, frames: int | None) -> int | None:
        if not frames:
            return frames
        return frames + self.tail

    def mark_seen(self, state: dict[str, Any], x: Tensor) -> dict[str, Any]:
        return {**state, "seen": state["seen"] or x.shape[-1] > 0}

    def flush(self, state: State) -> Tensor | None:
        if state is None or not self.tail or not state["seen"]:
            return None
        template = state["template"]
        zeros = template.new_zeros((*template.shape[:-1], self.tail))
        return self.step(zeros, state)[0]


class Delay(TailStage):
    """Feedback delay (`delay`): y = (1 - mix) x + mix d, with d[n] = x[n - D] + feedback d[n - D].

    The impulse response is (1 - mix) at 0 and mix * feedback^(k-1) at k * D, k >= 1.

    Shape:
        (..., channels, time) -> (..., channels, time + tail).
    """

    stage_name = "delay"

    def __init__(
        self,
        sample_rate: float,
        time_ms: float = 500.0,
        feedback: float = 0.0,
        mix: float = 0.5,
        tail_s: float = 0.0,
    ) -> None:
        super().__init__(sample_rate, time_ms=time_ms, feedback=feedback, mix=mix, tail_s=tail_s)
        self.delay = ms_to_frames(time_ms, sample_rate)
        self.feedback, self.mix = feedback, mix
        self.tail = int(round(tail_s * sample_rate))

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        base = {"seen": False, "template": x[..., :0]}
        if needs_grad(x):
            return {**base, "history": x.new_zeros((*x.shape[:-1], self.delay))}
        return {**base, "ring": np.zeros((math.prod(x.shape[:-1]), self.delay)), "pos": 0}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One chunk; a kernel state's ring is updated in place (and returned)."""
        if state is None:
            state = self.init_state(x)
        if "history" in state:
            delayed, history = feedback_delay(x, state["history"], self.feedback)
            y = (1.0 - self.mix) * x + self.mix * delayed
            return y, self.mark_seen({**state, "history": history}, x)
        rows, out = kernel_rows(x)
        args = (state["ring"], state["pos"], self.feedback, self.mix)
        pos = delay_rows(rows.numpy(), out.numpy(), *args)
        return like(out, x), self.mark_seen({**state, "pos": pos}, x)


class Echo(TailStage):
    """Multi-tap echo (`echo`), as SoX `echo gain_in gain_out delay decay ...`:
    y[n] = gain_out * (gain_in * x[n] + sum_j decays[j] * x[n - D_j]).

    Shape:
        (..., channels, time) -> (..., channels, time + tail).
    """

    stage_name = "echo"

    def __init__(
        self,
        sample_rate: float,
        delays_ms: list[float],
        decays: list[float],
        gain_in: float = 1.0,
        gain_out: float = 1.0,
        tail_s: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            delays_ms=delays_ms,
            decays=decays,
            gain_in=gain_in,
            gain_out=gain_out,
            tail_s=tail_s,
        )
        if len(delays_ms) != len(decays):
            raise ValueError("echo needs one decay per delay")
        self.delays = [ms_to_frames(ms, sample_rate) for ms in delays_ms]
        self.gains = [gain_out * d for d in decays]
        self.direct = gain_out * gain_in
        self.tail = int(round(tail_s * sample_rate))

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        base = {"seen": False, "template": x[..., :0]}
        if needs_grad(x):
            return {**base, "history": x.new_zeros((*x.shape[:-1], max(self.delays)))}
        rows = math.prod(x.shape[:-1])
        return {**base, "ring": np.zeros((rows, ring_size(max(self.delays)))), "index": 0}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One chunk; a kernel state's ring is updated in place (and returned)."""
        if state is None:
            state = self.init_state(x)
        if "history" in state:
            taps, history = multi_tap(x, state["history"], self.delays, self.gains)
            y = self.direct * x + taps
            return y, self.mark_seen({**state, "history": history}, x)
        rows, out = kernel_rows(x)
        args = (state["index"], self.delays, self.gains, self.direct)
        echo_rows(rows.numpy(), out.numpy(), state["ring"], *args)
        return like(out, x), self.mark_seen({**state, "index": state["index"] + x.shape[-1]}, x)
