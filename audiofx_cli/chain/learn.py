"""Which design parameters learn: the per-stage `learn:` key and `load_chain(learnable=...)`.

    - peaking: {freq_hz: 1000, gain_db: 0, q: 1.4, learn: [freq_hz, gain_db]}   # YAML
    load_chain(spec, 48000, learnable=True)                     # every learnable key
    load_chain(spec, 48000, learnable=["1.gain_db", "0.cutoff_hz"])

A stage's learnable keys are its definition's `learnable` (IIR cut-offs and band edges only
for Butterworth and Linkwitz-Riley types). Ranges: each key learns inside its declared range
(`bounds`), log-mapped for frequencies and q. Torch-free, except `bounds` (called when a chain
is built).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from audiofx_cli.chain.registry import registry
from audiofx_cli.errors import UsageError

LEARN_KEY = "learn"
BUTTERWORTH_TYPES = ("butterworth", "linkwitz_riley")
FREQ_FLOOR = 1e-5  # lowest learnt frequency, as a fraction of the sample rate (0.48 Hz at 48k)
NYQUIST_MARGIN = 1e-4  # learnt frequencies stay below (1 - this) x Nyquist
Q_FLOOR = 1e-2  # lowest learnt q (a chain file may declare down to filters.MIN_Q)


def supported_text() -> str:
    """'gain (gain_db), peaking (freq_hz, gain_db, q), ...': every stage that can learn."""
    return ", ".join(
        f"{name} ({', '.join(d.learnable)})" for name, d in registry().items() if d.learnable
    )


def learnable_keys(stage: Any) -> tuple[str, ...]:
    """The keys `stage` (a StageSpec) can learn with its parameters (an IIR filter only with a
    Butterworth or Linkwitz-Riley type)."""
    keys = stage.definition.learnable
    if keys and "type" in stage.params and stage.params["type"] not in BUTTERWORTH_TYPES:
        return ()
    if stage.name == "ba" and len(stage.params["a"]) == 1:  # an FIR: a is only a scale
        return ("b",)
    return tuple(keys)


def _refusal(stage: Any, key: str | None) -> str:
    keys = stage.definition.learnable
    if keys and "type" in stage.params and stage.params["type"] not in BUTTERWORTH_TYPES:
        return (
            f"type {stage.params['type']} cannot learn: {stage.name} learns "
            f"{', '.join(keys)} with type {' or '.join(BUTTERWORTH_TYPES)}"
        )
    if stage.name == "ba" and key == "a":
        return "this ba filter is an FIR (a has one coefficient): it learns b"
    if keys:
        return f"'{stage.name}' learns {', '.join(keys)}, not {key}"
    return f"'{stage.name}' has no learnable parameters; stages that learn: {supported_text()}"


def parse_learn(value: Any, stage: Any) -> tuple[str, ...]:
    """The `learn:` value of a stage (a list of keys, or true for all of them).

    Raises:
        ChainSpecError: at the `learn` key, naming what the stage can learn.
    """
    if value is True:
        keys = learnable_keys(stage)
        if not keys:
            raise stage.error(LEARN_KEY, _refusal(stage, None))
        return keys
    if value is False or value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise stage.error(LEARN_KEY, "expected a list of keys (learn: [gain_db, q]) or true")
    for key in value:
        if key not in learnable_keys(stage):
            raise stage.error(LEARN_KEY, _refusal(stage, key))
    return tuple(dict.fromkeys(value))


def select(spec: Any, learnable: bool | Sequence[str] | None) -> Any:
    """A copy of `spec` (a ChainSpec) with each stage's `learn` set.

    Args:
        learnable: None: the chain file's `learn:` keys; False: nothing learns; True: every
            learnable key of every stage (stages that cannot learn are left as they are);
            ["1.gain_db", "0.cutoff_hz"]: those (stage index in the chain, key), added to
            the file's.

    Raises:
        UsageError: a malformed or unknown selection, naming what the stage can learn.
    """
    spec = copy.copy(spec)
    spec.stages = [copy.copy(stage) for stage in spec.stages]
    if learnable is None:
        return spec
    for stage in spec.stages:
        if learnable is False:
            stage.learn = ()
        elif learnable is True:
            stage.learn = learnable_keys(stage)
    if isinstance(learnable, bool):
        return spec
    if isinstance(learnable, str):
        raise UsageError(f"learnable: give a list of 'index.key' names, got {learnable!r}")
    for name in learnable:
        index, _, key = str(name).partition(".")
        if not index.isdigit() or not key:
            raise UsageError(f"learnable: '{name}' is not 'index.key' (e.g. '1.gain_db')")
        if int(index) >= len(spec.stages):
            raise UsageError(f"learnable: '{name}': the chain has {len(spec.stages)} stages")
        stage = spec.stages[int(index)]
        if key not in learnable_keys(stage):
            raise UsageError(f"learnable: '{name}': {_refusal(stage, key)}")
        stage.learn = tuple(dict.fromkeys([*stage.learn, key]))
    return spec


def bounds(stage: Any, sample_rate: float) -> dict[str, Any]:
    """The range each of `stage.learn`'s keys learns in (`stages.learnable.Bounds`), None for
    coefficient keys. Imports torch."""
    from audiofx_cli.stages.learnable import Bounds

    rate = float(sample_rate)
    out: dict[str, Any] = {}
    for key in sorted(stage.learn, key=stage.definition.learnable.index):
        param = stage.definition.param(key)
        if param is None or param.kind not in ("float", "float_or_pair"):
            out[key] = None
            continue
        log = param.below_nyquist or key == "q"
        low, high = param.low, param.high
        if param.below_nyquist:
            low, high = max(low, FREQ_FLOOR * rate), rate / 2 * (1 - NYQUIST_MARGIN)
        elif key == "q":
            low = max(low or 0.0, Q_FLOOR)
        assert low is not None and high is not None  # every learnable key declares its range
        out[key] = Bounds(low, high, log, param.unit)
    if "low_hz" in out and "high_hz" not in out:  # a band's edges stay in order
        out["low_hz"] = _with(out["low_hz"], high="high_hz")
    if "high_hz" in out:
        out["high_hz"] = _with(out["high_hz"], low="low_hz")
    return out


def _with(bound: Any, **ends: Any) -> Any:
    import dataclasses

    return dataclasses.replace(bound, **ends)


def check_nested(stage: Any) -> None:
    """Stages inside `parallel` / `mix` branches do not learn (names are top-level indices)."""
    for branch in stage.params.get("branches") or []:
        for inner in branch:
            if getattr(inner, "learn", ()):
                raise inner.error(LEARN_KEY, "only top-level stages learn (this one is a branch's)")
            check_nested(inner)
