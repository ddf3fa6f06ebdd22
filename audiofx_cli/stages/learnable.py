"""Learnable design parameters: a stage's YAML keys as `nn.Parameter`s kept inside their ranges.

    stage.learn({"gain_db": Bounds(-60, 60), "freq_hz": Bounds(4.8, 23976, log=True)})
    dict(stage.named_parameters())   # {'gain_db': ..., 'freq_hz': ...}: coordinates, see below
    stage.value("freq_hz")           # the frequency in Hz, a differentiable float64 tensor

Each learnt key is a parameter named by the key that holds an unconstrained coordinate u; the
value in the key's unit is a squashing map of it, so no optimiser step can leave the range:

    linear keys (gain_db):    value = low + (high - low) * s(u)
    log keys (Hz, q):         value = exp(ln low + (ln high - ln low) * s(u))
    s(u) = e + (1 - 2e) sigmoid(u), e = 1e-6 (sigmoid rounds to exactly 0 or 1 past |u| = 37:
           e keeps the ends open, so a band's edges never meet)

A bound may be another key's value (a band's high_hz lies in (low_hz, high)), and an ordered
list (a firwin band's [low, high]) maps element by element, each above the one before.
Coefficient keys (`taps`, `b`, the numerators of `sections`) are their own coordinates;
denominators use `dsp.design_torch.stable_sections`. Stages design their coefficients from
`values()` on every call, in float64 on the CPU: coordinates stay float64 CPU tensors through
`.to(device, dtype)`, as designed buffers stay float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from audiofx_cli.dsp.design_torch import as_f64
from audiofx_cli.errors import ParamError

EDGE = 1e-6  # the squashing map's margin inside each end (see the module docstring)


@dataclass(frozen=True)
class Bounds:
    """The open range a learnt value stays in.

    Args:
        low, high: numbers, or names of keys of the same stage whose values bound it.
        log: map in log space (frequencies, q) rather than linearly (gains in dB).
        unit: for messages.
    """

    low: float | str
    high: float | str
    log: bool = False
    unit: str = ""

    def _ends(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        return (torch.log(low), torch.log(high)) if self.log else (low, high)

    def value(self, u: Tensor, low: Tensor, high: Tensor) -> Tensor:
        """The value for coordinate(s) u; a list (1-D u) is ordered, each above the last."""
        if u.dim() == 0:
            lo, hi = self._ends(low, high)
            v = lo + (hi - lo) * (EDGE + (1 - 2 * EDGE) * torch.sigmoid(u))
            return torch.exp(v) if self.log else v
        out = []
        for item in u.unbind():
            out.append(self.value(item, low, high))
            low = out[-1]
        return torch.stack(out)

    def coordinate(self, value: Any, low: Tensor, high: Tensor, key: str) -> Tensor:
        """The coordinate of `value` (inverse of `value`); ParamError when it is outside."""
        values = as_f64(value)
        if values.dim() == 0:
            self.check(float(values.detach()), float(low.detach()), float(high.detach()), key)
            lo, hi = self._ends(low, high)
            v = torch.log(values) if self.log else values
            t = ((v - lo) / (hi - lo) - EDGE) / (1 - 2 * EDGE)
            return torch.log(t) - torch.log1p(-t)
        coords = []
        for item in values.unbind():
            coords.append(self.coordinate(item, low, high, key))
            low = item
        return torch.stack(coords)

    def check(self, value: float, low: float, high: float, key: str) -> None:
        span = high - low if not self.log else math.log(high / low)
        inner = (low + EDGE * span, high - EDGE * span)
        if self.log:
            inner = (low * math.exp(EDGE * span), high * math.exp(-EDGE * span))
        if not inner[0] < value < inner[1]:
            unit = f" {self.unit}" if self.unit else ""
            raise ParamError(
                key,
                f"cannot learn {key} = {value:g}{unit}: learnt values stay inside "
                f"({low:.6g}, {high:.6g}){unit}",
            )


class Learnable:
    """Mixin for stages whose design parameters can be learnt (see the module docstring).

    Subclasses list `learnable_keys` and design from `values()`; coefficient keys override
    `coordinate_of` / `value_of`.
    """

    learnable_keys: tuple[str, ...] = ()
    learned: dict[str, Bounds | None]

    def learn(self, bounds: Mapping[str, Bounds | None]) -> None:
        """Make `bounds`' keys parameters (None: a coefficient key, no range).

        Raises:
            ParamError: a key the stage cannot learn, or a value outside its range.
        """
        stage: Any = self
        for key in bounds:
            if key not in self.learnable_keys:
                supported = ", ".join(self.learnable_keys) or "nothing"
                raise ParamError(key, f"'{stage.stage_name}' can learn {supported}, not {key}")
        self.learned = {}
        for key, bound in bounds.items():
            coordinate = self.coordinate_of(key, stage.params[key], bound)
            if key in stage._buffers:  # a coefficient buffer becomes the parameter
                del stage._buffers[key]
            stage.register_parameter(key, nn.Parameter(coordinate.detach().clone()))
            self.learned[key] = bound

    @property
    def learning(self) -> bool:
        return bool(getattr(self, "learned", None))

    def coordinate_of(self, key: str, value: Any, bound: Bounds | None) -> Tensor:
        if bound is None:
            return as_f64(value)
        return bound.coordinate(value, *self._range(bound), key)

    def value_of(self, key: str, coordinate: Tensor, bound: Bounds | None) -> Tensor:
        if bound is None:
            return coordinate
        return bound.value(coordinate, *self._range(bound))

    def _range(self, bound: Bounds) -> tuple[Tensor, Tensor]:
        return self._end(bound.low), self._end(bound.high)

    def _end(self, end: float | str) -> Tensor:
        return as_f64(self.value(end) if isinstance(end, str) else end)

    def value(self, key: str) -> Any:
        """The current value of `key` in its unit: a float64 tensor when learnt."""
        learned = getattr(self, "learned", {})
        if key in learned:
            return self.value_of(key, getattr(self, key), learned[key])
        return self.params[key]  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        """Every parameter's current value (learnt ones as tensors)."""
        return {key: self.value(key) for key in self.params}  # type: ignore[attr-defined]

    def learned_values(self) -> dict[str, Any]:
        """The learnt keys' values as plain numbers or lists (for a chain file)."""
        with torch.no_grad():
            return {key: _plain(self.value(key)) for key in getattr(self, "learned", {})}

    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        stage: Any = self
        keep = [(key, stage._parameters[key]) for key in getattr(self, "learned", {})]
        keep = [(key, p, p.data, p.grad) for key, p in keep]
        result = super()._apply(fn, recurse)  # type: ignore[misc]
        for key, param, data, grad in keep:  # coordinates stay float64 on the CPU, where the
            param.data, param.grad = data, grad  # designs run (a few scalars)
            stage._parameters[key] = param
        return result


def _plain(value: Any) -> Any:
    """Numbers for a chain file, at 12 significant digits (the coordinate round trip leaves
    1e-15 noise on values that did not move: 80 stays 80)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if not math.isfinite(value):
        raise ValueError(f"a learnt value is not finite: {value}")
    return float(f"{value:.12g}")
