"""The stage contract: every stage is an nn.Module that can also stream with explicit state.

    y = stage(x)                          # whole signal, zero initial state
    state = stage.init_state(x[..., :0])  # or None: step() initialises on first use
    y1, state = stage.step(x1, state)     # chunk by chunk, any chunk sizes
    y2, state = stage.step(x2, state)
    tail = stage.flush(state)             # what latency held back (None when nothing)

Invariant (tested for every registered stage): cat(y1, y2, ..., tail) == stage(cat(x1, x2, ...)).
Stages that need the whole signal first (`needs_analysis`) get an analysis pass before
streaming: see `audiofx_cli.stream.run_analysis`.
Signals are (..., channels, time). A stage with latency (a linear-phase FIR with delay
compensation) holds back its first samples and returns them in `flush`, so its output is
aligned with the input and has the same length.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from audiofx_cli.errors import ChainSpecError

State = Any


class Origin(Protocol):
    """Where a stage was declared (a chain spec's `StageSpec`): locates errors found while
    running at the stage's YAML line."""

    def error(self, key: str | None, message: str) -> ChainSpecError: ...


@cache
def constructor_defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of a stage class's constructor and of the constructors it passes
    `**kwargs` on to (its bases'), the nearest first: its parameters' defaults, which the
    registry test keeps equal to the YAML definitions."""
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and issubclass(klass, Stage):
            for name, param in inspect.signature(klass.__init__).parameters.items():
                if param.default is not inspect.Parameter.empty:
                    defaults[name] = param.default
    return defaults


class Stage(nn.Module):
    """Base class of audiofx stages.

    Subclasses implement `step` (and `init_state` / `flush` when they keep state or latency).
    Buffers named in `float64_buffers` stay float64 through `.to(dtype)`: designed coefficients
    keep their precision whatever the processing dtype.
    """

    stage_name: ClassVar[str] = ""
    float64_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, sample_rate: float, **params: Any) -> None:
        super().__init__()
        self.sample_rate = float(sample_rate)
        self.params = params

    # ----------------------------------------------------------------- streaming contract
    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        """Fresh state for a stream whose chunks look like `x` (only shape/dtype/device used).

        `total_frames` is the stream's length at this stage's input when known.
        """
        return None

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Process one chunk. `state` None means a fresh stream."""
        raise NotImplementedError

    def flush(self, state: State) -> Tensor | None:
        """End of stream: samples still held back (latency), or None."""
        return None

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        """`step`, writing the chunk's output into `out` (x's shape) where the stage can do so
        without a temporary: returns (None, state) then, else what `step` returns (the caller
        copies). Stages override it when they can; this default just steps."""
        return self.step(x, state)

    # ----------------------------------------------------------------- set by the chain builder
    origin: Origin | None = None  # where the stage was declared (None: built directly)
    extra_defaults: ClassVar[dict[str, Any]] = {}  # defaults of keys taken through **kwargs

    def set_origin(self, origin: Origin) -> None:
        """Called by the chain builder: errors found while running name the YAML line."""
        self.origin = origin

    def connect(self, previous: list[nn.Module]) -> None:
        """Called by the chain builder after construction with the modules before this one in
        the chain; feature stages read their axes here (e.g. the centre frequencies of an
        earlier gammatone stage). Raises ParamError like the constructor. Default: nothing."""

    def spec_error(self, key: str | None, message: str) -> ChainSpecError:
        """An error found while running (e.g. a channel the input lacks), located at the
        stage's YAML line when the stage was built from a chain spec."""
        if self.origin is not None:
            return self.origin.error(key, message)
        return ChainSpecError(message, stage=f"stage '{self.stage_name}'", key=key)

    @property
    def output_rate(self) -> float:
        """Sample rate of the output (differs from `sample_rate` only for resampling stages)."""
        return self.sample_rate

    def output_frames(self, frames: int | None) -> int | None:
        """Output length for an input of `frames` samples (None when unknown)."""
        return frames

    def linear_operator(self) -> list[Any] | None:
        """This stage as linear time-invariant parts for chain fusion, or None.

        None (the default) means "not LTI, or not declared": the stage is never fused. LTI
        stages return a list of `audiofx_cli.dsp.lti` parts (FIRPart / SOSPart) with the
        same streaming meaning as the stage, latency included.
        """
        return None

    def forward(self, x: Tensor) -> Tensor:
        if self.needs_analysis:
            self.finish_analysis(self.analyze(x, self.init_analysis(x[..., :0], x.shape[-1])))
        state = self.init_state(x, x.shape[-1])
        y, state = self.step(x, state)
        tail = self.flush(state)
        return y if tail is None else torch.cat([y, tail], dim=-1)

    # ----------------------------------------------------------------- analysis pass
    # Stages that need the whole signal before processing (peak / loudness normalisation) set
    # needs_analysis = True. The engine (stream.run_analysis) then streams the signal as seen at
    # the stage's input through init_analysis / analyze / finish_analysis before processing;
    # finish_analysis stores what `step` needs (e.g. the gain) on the stage.
    needs_analysis: ClassVar[bool] = False

    def init_analysis(self, x: Tensor, total_frames: int | None = None) -> Any:
        raise NotImplementedError

    def analyze(self, x: Tensor, analysis: Any) -> Any:
        raise NotImplementedError

    def finish_analysis(self, analysis: Any) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------------- plumbing
    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        keep = {
            name: self._buffers[name]
            for name in self.float64_buffers
            if self._buffers.get(name) is not None
        }
        result = super()._apply(fn, recurse)
        for name, original in keep.items():
            moved = self._buffers[name]
            self._buffers[name] = original.to(device=moved.device, dtype=torch.float64)
        return result

    def extra_repr(self) -> str:
        """The parameters that differ from their defaults (julius's `simple_repr`)."""
        defaults = {**constructor_defaults(type(self)), **self.extra_defaults}
        shown = []
        for key, value in self.params.items():
            if key in defaults and _same(defaults[key], value):
                continue
            shown.append(f"{key}={value!r}")
        return ", ".join(shown)


def _same(default: Any, value: Any) -> bool:
    """A value equal to its default (None stands for an empty container default)."""
    if default is None and value in ({}, []):
        return True
    try:
        return bool(default == value)
    except (TypeError, ValueError, RuntimeError):  # arrays and tensors: always shown
        return False


def step_module(module: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
    """`step` for any module: Stages stream with state, plain modules are applied per chunk."""
    if isinstance(module, (Stage, Chain)):
        return module.step(x, state)
    return module(x), None


def flush_module(module: nn.Module, state: State) -> Tensor | None:
    if isinstance(module, (Stage, Chain)):
        return module.flush(state)
    return None


class Chain(nn.Sequential):
    """An nn.Sequential of stages that also streams: `init_state` / `step` / `flush`.

    `forward(x)` processes a whole signal; `step` over chunks then `flush` gives the same.
    """

    def __init__(self, *stages: nn.Module, sample_rate: float | None = None) -> None:
        super().__init__(*stages)
        self.sample_rate = sample_rate

    @property
    def output_rate(self) -> float | None:
        rate = self.sample_rate
        for stage in self:
            rate = getattr(stage, "output_rate", rate)
        return rate

    def init_state(self, x: Tensor, total_frames: int | None = None) -> list[State]:
        """States for every stage; `x` is a template chunk (its time length is ignored)."""
        states: list[State] = []
        x = x[..., :0]
        for stage in self:
            state = stage.init_state(x, total_frames) if isinstance(stage, (Stage, Chain)) else None
            x, state = step_module(stage, x, state)
            states.append(state)
            if isinstance(stage, Stage):
                total_frames = stage.output_frames(total_frames)
        return states

    def step(self, x: Tensor, state: list[State] | None) -> tuple[Tensor, list[State]]:
        if state is None:
            state = self.init_state(x)
        new_state = []
        for stage, s in zip(self, state, strict=True):
            x, s = step_module(stage, x, s)
            new_state.append(s)
        return x, new_state

    def step_into(
        self, x: Tensor, state: list[State], out: Tensor
    ) -> tuple[Tensor | None, list[State]]:
        """`step` with the last stage writing into `out` when it can (see `Stage.step_into`):
        (None, state) when the output went into `out`, else (y, state)."""
        stages = list(self)
        if not stages or not isinstance(stages[-1], (Stage, Chain)):
            return self.step(x, state)
        new_state = []
        for stage, s in zip(stages[:-1], state[:-1], strict=True):
            x, s = step_module(stage, x, s)
            new_state.append(s)
        y, s = stages[-1].step_into(x, state[-1], out)
        new_state.append(s)
        return y, new_state

    def flush(self, state: list[State]) -> Tensor | None:
        """Flush each stage in turn and push its tail through the stages after it."""
        outputs: list[Tensor] = []
        stages = list(self)
        for i, stage in enumerate(stages):
            tail = flush_module(stage, state[i])
            if tail is None:
                continue
            for j in range(i + 1, len(stages)):
                tail, state[j] = step_module(stages[j], tail, state[j])
            outputs.append(tail)
        if not outputs:
            return None
        return torch.cat(outputs, dim=-1)

    # forward: nn.Sequential's, stage by stage; each Stage.forward handles its own latency and
    # analysis, so the result equals init_state / step / flush (after stream.run_analysis).
