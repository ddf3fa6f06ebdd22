"""Delay stages: `delay` (feedback delay line) and `echo` (multi-tap, SoX semantics).

Both keep the delay line in the state and, with `tail_s` > 0, play it out in `flush`
(`TailStage`): the output is then input length + round(tail_s * rate) samples long.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from audiofx_cli.dsp.delays import feedback_delay, multi_tap
from audiofx_cli.stages.base import Stage, State


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
        history = x.new_zeros((*x.shape[:-1], self.delay))
        return {"history": history, "seen": False, "template": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        delayed, history = feedback_delay(x, state["history"], self.feedback)
        y = (1.0 - self.mix) * x + self.mix * delayed
        return y, self.mark_seen({**state, "history": history}, x)


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
        history = x.new_zeros((*x.shape[:-1], max(self.delays)))
        return {"history": history, "seen": False, "template": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        taps, history = multi_tap(x, state["history"], self.delays, self.gains)
        y = self.direct * x + taps
        return y, self.mark_seen({**state, "history": history}, x)
