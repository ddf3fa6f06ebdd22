"""Parameter declarations for stages: type, default, unit, allowed range, meaning.

Torch-free on purpose: `audiofx stages` and `audiofx validate` use only this and the registry.
A `Param` coerces a YAML value or raises `ParamError` with a message that states what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from audiofx_cli.errors import ParamError, short_text

REQUIRED: Any = object()  # sentinel: the key must be given


def _fmt(value: float) -> str:
    """Short number formatting for messages: 80, 0.7071, 1e-05."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 1e15
    ):
        return str(int(value))
    return f"{value:.6g}"


def describe_value(value: Any) -> str:
    """repr-like description of a YAML value with its type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (boolean)"
    if isinstance(value, str):
        return f"'{short_text(value)}' (string)"
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"{short_text(str(value), 20)}"
    if isinstance(value, (int, float)):
        return _fmt(value)
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_a_number(value: Any, key: str) -> ParamError:
    """'expected a number' with what to write instead."""
    if isinstance(value, str) and _looks_numeric(value):
        hint = "; write numbers without quotes"
    else:
        hint = "; write e.g. 80, -3.5, 1e-3 or 2.4e4"
    return ParamError(key, f"expected a number, got {describe_value(value)}{hint}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _not_a_number(value, key)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise ParamError(key, f"must be a finite number, got {describe_value(value)}")
    return number


@dataclass(frozen=True)
class Param:
    """One stage parameter as it appears in YAML, in `audiofx stages NAME` and in errors.

    Args:
        name: YAML key, with its unit in the name (`cutoff_hz`, `gain_db`, `time_ms`).
        kind: float | int | bool | choice | str | path | floats | float_or_pair | sections
            | branches | mapping. A 'path' is resolved relative to the chain file's folder.
        doc: one-line meaning.
        default: value used when the key is absent; `REQUIRED` when it must be given.
        unit: unit shown in help and errors ('Hz', 'dB', ...).
        low, high: numeric bounds (for lists: bounds of each element).
        low_open, high_open: whether the bound itself is excluded.
        below_nyquist: the value (each value) must be strictly below sample_rate / 2; checked
            once the sample rate is known.
        choices: allowed strings for kind 'choice'.
        length: allowed list lengths for list kinds (None: any non-empty length).
    """

    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    unit: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    below_nyquist: bool = False
    choices: tuple[str, ...] = ()
    length: tuple[int, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    # ------------------------------------------------------------------ describing
    def type_text(self) -> str:
        return {
            "float": "number",
            "int": "integer",
            "bool": "boolean",
            "choice": "choice",
            "str": "string",
            "floats": "list of numbers",
            "float_or_pair": "number or [low, high]",
            "sections": "list of [b0, b1, b2, a0, a1, a2]",
            "branches": "list of stage lists",
            "mapping": "mapping",
            "path": "file path",
        }[self.kind]

    def range_text(self) -> str:
        """Allowed values in words: '(0, Nyquist) Hz', '1 .. 32', 'a | b | c'."""
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "bool":
            return "true | false"
        if self.low is None and self.high is None and not self.below_nyquist:
            return ""
        lo = "-inf" if self.low is None else _fmt(self.low)
        if self.below_nyquist:
            hi = "Nyquist" if self.high is None else f"min({_fmt(self.high)}, Nyquist)"
            hi_open = True
        else:
            hi = "inf" if self.high is None else _fmt(self.high)
            hi_open = self.high_open or self.high is None
        lo_open = self.low_open or self.low is None
        if self.kind == "int" and not lo_open and not hi_open:
            text = f"{lo} .. {hi}"
        else:
            text = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        return f"{text} {self.unit}".rstrip()

    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.default is None:
            return "none"
        if isinstance(self.default, (bool, int, float)):
            return _fmt(self.default)
        if isinstance(self.default, list):
            return "[" + ", ".join(_fmt(v) for v in self.default) + "]" if self.default else "[]"
        return str(self.default)

    # ------------------------------------------------------------------ checking
    def _check_range(self, value: float, key: str) -> None:
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            rel = ">" if self.low_open else ">="
            raise ParamError(key, f"must be {rel} {_fmt(self.low)}{unit}, got {_fmt(value)}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            rel = "<" if self.high_open else "<="
            raise ParamError(key, f"must be {rel} {_fmt(self.high)}{unit}, got {_fmt(value)}")

    def coerce(self, value: Any) -> Any:
        """Return the value converted to its Python type, or raise ParamError."""
        key = self.name
        if value is None and self.default is None:
            return None
        kind = self.kind
        if kind == "float":
            number = _number(value, key)
            self._check_range(number, key)
            return number
        if kind == "int":
            number = _number(value, key)
            if not number.is_integer():
                raise ParamError(key, f"expected an integer, got {describe_value(value)}")
            self._check_range(number, key)
            return int(number)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(key, f"expected true or false, got {describe_value(value)}")
            return value
        if kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                allowed = " | ".join(self.choices)
                raise ParamError(key, f"must be one of {allowed}, got {describe_value(value)}")
            return value
        if kind in ("str", "path"):
            if not isinstance(value, str) or not value:
                raise ParamError(key, f"expected a non-empty string, got {describe_value(value)}")
            return value
        if kind == "floats":
            return self._coerce_list(value, key)
        if kind == "float_or_pair":
            if isinstance(value, list):
                pair = self._coerce_list(value, key, lengths=(2,))
                if not pair[0] < pair[1]:
                    raise ParamError(key, f"[low, high] must have low < high, got {pair}")
                return pair
            number = _number(value, key)
            self._check_range(number, key)
            return number
        if kind == "sections":
            if not isinstance(value, list) or not value:
                raise ParamError(key, f"expected a list of sections, got {describe_value(value)}")
            rows = []
            for i, row in enumerate(value):
                if not isinstance(row, list) or len(row) != 6:
                    raise ParamError(
                        key,
                        f"section {i} must be [b0, b1, b2, a0, a1, a2], got {describe_value(row)}",
                    )
                rows.append([_number(v, key) for v in row])
            return rows
        if kind == "mapping":
            if not isinstance(value, dict):
                raise ParamError(key, f"expected a mapping, got {describe_value(value)}")
            return dict(value)
        if kind == "branches":
            return value  # parsed into stage specs by chain.spec
        raise AssertionError(f"unknown param kind {kind}")

    def _coerce_list(
        self, value: Any, key: str, lengths: tuple[int, ...] | None = None
    ) -> list[float]:
        lengths = lengths or self.length
        if not isinstance(value, list) or not value:
            raise ParamError(
                key, f"expected a non-empty list of numbers, got {describe_value(value)}"
            )
        if lengths is not None and len(value) not in lengths:
            want = " or ".join(str(n) for n in lengths)
            raise ParamError(key, f"expected a list of {want} numbers, got {len(value)}")
        numbers = [_number(v, key) for v in value]
        for number in numbers:
            self._check_range(number, key)
        return numbers

    def check_nyquist(self, value: Any, sample_rate: float) -> None:
        """Raise ParamError when a frequency is not strictly below Nyquist."""
        if not self.below_nyquist or value is None:
            return
        nyquist = sample_rate / 2
        for v in value if isinstance(value, list) else [value]:
            if v >= nyquist:
                raise ParamError(
                    self.name,
                    f"must be below Nyquist ({_fmt(nyquist)} Hz at {_fmt(sample_rate)} Hz), "
                    f"got {_fmt(v)} Hz",
                )


MAX_GENERATED_FRAMES = 1 << 27  # frames a stage may make at once per channel (pads, tails)


def check_generated_frames(key: str, seconds: float, sample_rate: float | None, what: str) -> None:
    """Refuse `seconds` of `what` (silence or a tail a stage makes in one block) that come to
    more than `MAX_GENERATED_FRAMES` frames at `sample_rate` (512 MiB per channel as float32:
    46 min at 48 kHz, 11 min at 192 kHz). Nothing is checked while the rate is unknown.

    Raises:
        ParamError: with the frames and the memory they would take.
    """
    if sample_rate is None:
        return
    frames = round(seconds * sample_rate)
    if frames > MAX_GENERATED_FRAMES:
        raise ParamError(
            key,
            f"{what} of {_fmt(seconds)} s is {frames:,} frames at {_fmt(sample_rate)} Hz "
            f"({frames * 4 / (1 << 30):,.1f} GiB per channel as float32, made at once); at most "
            f"{MAX_GENERATED_FRAMES:,} frames ({MAX_GENERATED_FRAMES / sample_rate:,.0f} s here)",
        )


Check = Callable[[dict[str, Any], float | None], None]


def _no_check(params: dict[str, Any], sample_rate: float | None) -> None:
    return None


@dataclass(frozen=True)
class StageDef:
    """A stage as the registry knows it, without importing torch.

    Args:
        name: YAML name.
        summary: one line for `audiofx stages`.
        params: declared parameters, in display order.
        impl: 'module:Class' of the nn.Module; called as Class(sample_rate=..., **params).
        family: grouping for listings (filter, fir, level, structure, ...).
        check: cross-parameter and rate-dependent validation; raises ParamError. Gets
            sample_rate None when it is not known yet.
        example: one YAML line.
        output_rate: sample rate after the stage, given params and input rate.
        learnable: keys that `learn:` / `load_chain(learnable=...)` can make parameters
            (`audiofx_cli.chain.learn`).
    """

    name: str
    summary: str
    params: Sequence[Param]
    impl: str
    family: str
    example: str
    check: Check = _no_check
    output_rate: Callable[[dict[str, Any], float], float] = field(default=lambda params, rate: rate)
    learnable: tuple[str, ...] = ()

    def param(self, key: str) -> Param | None:
        for p in self.params:
            if p.name == key:
                return p
        return None
