"""`FusedLTI`: a run of linear time-invariant stages as one operator (built by chain fusion).

Holds the parts of `audiofx_cli.dsp.lti.combine` (at most an FIR and an SOS cascade between
delay-compensated FIRs) as float64 buffers and streams them like the stages it replaces:
same output, same latency handling, same state semantics, one filter call per part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from audiofx_cli.dsp.fir import fir_filter, fir_zeros_history
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt
from audiofx_cli.dsp.lti import FIRPart, Part, SOSPart
from audiofx_cli.stages.base import Chain, Stage, State


def stage_operator(module: nn.Module) -> list[Part] | None:
    """Parts of a stage or a chain of stages, or None when any of it is not LTI."""
    if isinstance(module, Chain):
        parts: list[Part] = []
        for stage in module:
            op = stage_operator(stage)
            if op is None:
                return None
            parts += op
        return parts
    if isinstance(module, Stage) and not module.needs_analysis:
        return module.linear_operator()
    return None


class FusedLTI(Stage):
    """Consecutive LTI stages fused into FIR / SOS parts (see `audiofx_cli.chain.fuse`).

    Args:
        sample_rate: in Hz.
        parts: the combined parts, applied in order.
        sources: short descriptions of the fused stages (for repr).

    Shape:
        (..., channels, time) -> same.
    """

    def __init__(self, sample_rate: float, parts: Sequence[Part], sources: Sequence[str]) -> None:
        super().__init__(sample_rate)
        self.sources = list(sources)
        self.latencies: list[int] = []
        names = []
        for i, part in enumerate(parts):
            if isinstance(part, FIRPart):
                name, value, latency = f"taps{i}", part.taps, part.latency
            else:
                name, value, latency = f"sos{i}", part.sos, 0
            self.register_buffer(
                name, torch.as_tensor(np.array(value), dtype=torch.float64), persistent=False
            )
            names.append(name)
            self.latencies.append(latency)
        self.part_names = names
        self.float64_buffers = tuple(names)  # type: ignore[misc]

    def _parts(self) -> list[tuple[str, Tensor, int]]:
        return [
            (name, getattr(self, name), lat)
            for name, lat in zip(self.part_names, self.latencies, strict=True)
        ]

    def linear_operator(self) -> list[Part] | None:
        out: list[Part] = []
        for name, buf, lat in self._parts():
            values = buf.detach().cpu().numpy().copy()
            out.append(FIRPart(values, lat) if name.startswith("taps") else SOSPart(values))
        return out

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        states = []
        for name, buf, lat in self._parts():
            if name.startswith("taps"):
                states.append({"history": fir_zeros_history(buf, x), "drop": lat})
            else:
                states.append(sos_zeros_state(buf, x))
        return states

    def _step_part(self, k: int, x: Tensor, state: State) -> tuple[Tensor, State]:
        name, buf, _ = self._parts()[k]
        if name.startswith("sos"):
            return sosfilt(buf, x, state)
        y, history = fir_filter(buf, x, state["history"])
        drop = min(state["drop"], y.shape[-1])
        return y[..., drop:], {"history": history, "drop": state["drop"] - drop}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        new = []
        for k, s in enumerate(state):
            x, s = self._step_part(k, x, s)
            new.append(s)
        return x, new

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if state is None or x.shape != out.shape:
            return self.step(x, state)
        last = len(self.part_names) - 1
        new = []
        for k in range(last):
            x, s = self._step_part(k, x, state[k])
            new.append(s)
        name, buf, _ = self._parts()[last]
        if name.startswith("sos") and x.shape == out.shape:
            _, s = sosfilt(buf, x, state[last], out=out)
            return None, [*new, s]
        if name.startswith("taps") and x.shape == out.shape and not state[last]["drop"]:
            _, history = fir_filter(buf, x, state[last]["history"], out=out)
            return None, [*new, {"history": history, "drop": 0}]
        y, s = self._step_part(last, x, state[last])  # latency held back, or a shorter input
        return y, [*new, s]

    def flush(self, state: State) -> Tensor | None:
        if state is None:
            return None
        outputs = []
        for k, lat in enumerate(self.latencies):
            if not lat:
                continue
            history = state[k]["history"]
            tail, state[k] = self._step_part(
                k, history.new_zeros((*history.shape[:-1], lat)), state[k]
            )
            for j in range(k + 1, len(self.latencies)):
                tail, state[j] = self._step_part(j, tail, state[j])
            outputs.append(tail)
        return torch.cat(outputs, dim=-1) if outputs else None

    def forward(self, x: Tensor) -> Tensor:
        if len(self.latencies) == 1 and self.part_names[0].startswith("sos"):
            return sosfilt(getattr(self, self.part_names[0]), x)[0]  # keeps autograd simple
        return super().forward(x)

    def extra_repr(self) -> str:
        parts = " -> ".join(p.describe() for p in self.linear_operator() or [])
        return f"{' + '.join(self.sources)} => {parts or 'identity'}"
