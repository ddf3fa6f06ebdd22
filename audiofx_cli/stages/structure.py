"""Structural stages: `parallel` branches summed, and allow-listed torch modules (`module`)."""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
from torch import Tensor, nn

from audiofx_cli.dsp.lti import parallel
from audiofx_cli.errors import ParamError, short_text
from audiofx_cli.stages.base import Chain, Stage, State
from audiofx_cli.stages.fused import stage_operator

_ALLOWED_PACKAGES = {"torch.nn": "torch.nn", "torchaudio.transforms": "torchaudio.transforms"}


class Parallel(Stage):
    """Runs each branch (a Chain) on the same input and sums the weighted outputs.

    Branches may have different latencies; outputs are buffered so the sum is always of
    aligned samples.
    """

    stage_name = "parallel"

    def __init__(
        self, sample_rate: float, branches: list[Chain], weights: list[float] | None = None
    ) -> None:
        super().__init__(sample_rate, weights=weights)
        self.branches = nn.ModuleList(branches)
        self.weights = list(weights) if weights is not None else [1.0] * len(branches)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {
            "branches": [b.init_state(x, total_frames) for b in self.branches],
            "pending": [None] * len(self.branches),
        }

    def linear_operator(self) -> list[Any] | None:
        branches = [stage_operator(branch) for branch in self.branches]
        if any(b is None for b in branches):
            return None
        return parallel(branches, self.weights)  # type: ignore[arg-type]

    def _sum(self, pending: list[Tensor], n: int) -> Tensor:
        out = pending[0][..., :n] * self.weights[0]
        for w, p in zip(self.weights[1:], pending[1:], strict=True):
            out = out + p[..., :n] * w
        return out

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        branch_states, pending = [], []
        for branch, s, held in zip(self.branches, state["branches"], state["pending"], strict=True):
            y, s = branch.step(x, s)
            branch_states.append(s)
            pending.append(y if held is None else torch.cat([held, y], dim=-1))
        n = min(p.shape[-1] for p in pending)
        out = self._sum(pending, n)
        return out, {"branches": branch_states, "pending": [p[..., n:] for p in pending]}

    def flush(self, state: State) -> Tensor | None:
        if state is None:
            return None
        pending = []
        for branch, s, held in zip(self.branches, state["branches"], state["pending"], strict=True):
            tail = branch.flush(s)
            parts = [t for t in (held, tail) if t is not None]
            pending.append(torch.cat(parts, dim=-1) if parts else None)
        if any(p is None for p in pending):
            return None
        n = min(p.shape[-1] for p in pending)
        return self._sum(pending, n) if n else None


MAX_MODULE_PARAMETERS = 1 << 22  # parameters and buffers of a `module` stage (16 MiB float32)
PROBE_SHAPE = (1, 2, 509)  # the test signal of the memoryless check


def _integers(value: Any) -> list[int]:
    """Every integer in a constructor argument (nested lists and mappings included)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in _integers(item)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in _integers(item)]
    return []


def check_module_size(cls: type[nn.Module], name: str, args: dict[str, Any]) -> None:
    """Refuse constructor arguments that would allocate more than `MAX_MODULE_PARAMETERS`
    parameters and buffers, or a test output much larger than the test input, before anything
    is allocated: the product of the integer arguments is a bound on sizes (Linear: in x out,
    Conv1d: in x out x kernel); then the module is built and run on the `meta` device (shapes
    only, no memory) and its parameters and buffers counted.

    Raises:
        ParamError: with the count and the cap.
    """
    product = math.prod(max(abs(n), 1) for n in _integers(args))
    if product > MAX_MODULE_PARAMETERS:
        raise ParamError(
            "args",
            f"{name}(**{short_text(args)}): its integer arguments multiply to {product:,}, over "
            f"the {MAX_MODULE_PARAMETERS:,} parameters a module stage may have",
        )
    try:
        with torch.device("meta"):
            module = cls(**args)
    except Exception:  # not buildable on meta: the integer bound above is the guard
        return
    count = sum(t.numel() for t in (*module.parameters(), *module.buffers()))
    if count > MAX_MODULE_PARAMETERS:
        raise ParamError(
            "args",
            f"{name}(**{short_text(args)}) has {count:,} parameters and buffers "
            f"({4 * count / (1 << 20):,.0f} MiB as float32); at most {MAX_MODULE_PARAMETERS:,}",
        )
    try:
        with torch.device("meta"):
            probe = module(torch.empty(PROBE_SHAPE))
    except Exception:  # the memoryless check runs it for real and reports why
        return
    numel = probe.numel() if isinstance(probe, Tensor) else 0
    if numel > 16 * math.prod(PROBE_SHAPE):
        raise ParamError(
            "name",
            f"{name} turns a {PROBE_SHAPE} test signal into {tuple(probe.shape)}: not a "
            "memoryless, sample-wise module",
        )


def resolve_module_class(name: str) -> type[nn.Module]:
    """torch.nn.X or torchaudio.transforms.X, nothing else.

    Raises:
        ParamError: for any other name, or a name that is not an nn.Module class.
    """
    package, _, attr = name.rpartition(".")
    if package not in _ALLOWED_PACKAGES or not attr.isidentifier() or attr.startswith("_"):
        raise ParamError(
            "name", f"'{name}' is not allowed: only torch.nn.X or torchaudio.transforms.X"
        )
    module = importlib.import_module(_ALLOWED_PACKAGES[package])
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ParamError("name", f"'{name}' is not an nn.Module class in {package}")
    return cls


class TorchModule(Stage):
    """An allow-listed torch module applied chunk by chunk (`module`).

    Only memoryless (sample-wise) modules stream exactly; that is checked when the stage is
    built by comparing whole and chunked output on a test signal.
    """

    stage_name = "module"

    def __init__(self, sample_rate: float, name: str, args: dict[str, Any] | None = None) -> None:
        args = dict(args or {})
        super().__init__(sample_rate, name=name, args=args)
        cls = resolve_module_class(name)
        check_module_size(cls, name, args)
        try:
            self.module = cls(**args).eval()
        except Exception as exc:  # any constructor error is a spec error for the user
            raise ParamError(
                "args", f"{name}(**{short_text(args)}) failed: {short_text(str(exc), 200)}"
            ) from None
        self._check_memoryless()

    def _check_memoryless(self) -> None:
        name = self.params["name"]
        probe = torch.randn(PROBE_SHAPE, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                whole = self.module(probe)
                parts = torch.cat(
                    [self.module(probe[..., :200]), self.module(probe[..., 200:])], -1
                )
        except Exception as exc:
            raise ParamError(
                "name", f"{name} fails on a {PROBE_SHAPE} test signal: {short_text(str(exc), 200)}"
            ) from None
        if (
            not isinstance(whole, Tensor)
            or whole.shape[-1] != probe.shape[-1]
            or whole.shape != parts.shape
            or not torch.allclose(whole, parts, rtol=1e-5, atol=1e-6)
        ):
            raise ParamError(
                "name",
                f"{name} is not memoryless (its output over chunks differs from its output over "
                "the whole signal), so it cannot stream; use a sample-wise module such as "
                "torch.nn.Tanh or torchaudio.transforms.Vol",
            )

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self.module(x), None
