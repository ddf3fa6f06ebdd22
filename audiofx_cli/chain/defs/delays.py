"""Delay stages: a feedback delay (`delay`) and a multi-tap echo (`echo`, SoX semantics).

Tails: by default the output has the input's length (like SoX without `pad`); `tail_s` renders
that many seconds more after the input ends (the delay line played out), from `flush`, in one
block: at most `chain.params.MAX_GENERATED_FRAMES` frames.
"""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef, check_generated_frames
from audiofx_cli.errors import ParamError

_IMPL = "audiofx_cli.stages.delays"
MAX_DELAY_MS = 10_000.0
MAX_TAIL_S = 600.0


def tail_param() -> Param:
    return Param(
        "tail_s",
        "float",
        "seconds rendered after the input ends (0: output length = input length)",
        default=0.0,
        unit="s",
        low=0,
        high=MAX_TAIL_S,
    )


def check_tail(params: dict[str, Any], sample_rate: float | None) -> None:
    """The tail is made in one block at the end: its size is bounded (see
    `check_generated_frames`)."""
    check_generated_frames("tail_s", params["tail_s"], sample_rate, "a tail")


def check_delay_ms(key: str, ms: float, sample_rate: float | None) -> None:
    """A delay must be at least one sample once the rate is known."""
    if sample_rate is not None and round(ms * sample_rate / 1000.0) < 1:
        raise ParamError(
            key,
            f"{ms:g} ms is less than one sample at {sample_rate:g} Hz "
            f"(at least {1000.0 / sample_rate:.4g} ms)",
        )


def _check_delay(params: dict[str, Any], sample_rate: float | None) -> None:
    check_delay_ms("time_ms", params["time_ms"], sample_rate)
    check_tail(params, sample_rate)


def _check_echo(params: dict[str, Any], sample_rate: float | None) -> None:
    delays, decays = params["delays_ms"], params["decays"]
    if len(delays) != len(decays):
        raise ParamError(
            "decays", f"needs one decay per delay ({len(delays)} delays), got {len(decays)}"
        )
    for ms in delays:
        check_delay_ms("delays_ms", ms, sample_rate)
    check_tail(params, sample_rate)


DEFS = [
    StageDef(
        "delay",
        "feedback delay: y = (1 - mix) x + mix d, d[n] = x[n-D] + feedback d[n-D]",
        [
            Param(
                "time_ms",
                "float",
                "delay time D (rounded to a sample)",
                default=500.0,
                unit="ms",
                low=0,
                high=MAX_DELAY_MS,
                low_open=True,
            ),
            Param(
                "feedback",
                "float",
                "gain of each repeat relative to the previous one",
                default=0.0,
                low=-0.99,
                high=0.99,
            ),
            Param(
                "mix", "float", "wet share: 0 dry only, 1 delayed only", default=0.5, low=0, high=1
            ),
            tail_param(),
        ],
        f"{_IMPL}:Delay",
        "delays",
        "- delay: {time_ms: 3, feedback: 0.6, mix: 0.5, tail_s: 0.004}",
        _check_delay,
    ),
    StageDef(
        "echo",
        "multi-tap echo (SoX echo): y = gain_out (gain_in x[n] + sum decay_j x[n - delay_j])",
        [
            Param(
                "delays_ms",
                "floats",
                "delay of each tap (rounded to a sample)",
                unit="ms",
                low=0,
                high=MAX_DELAY_MS,
                low_open=True,
            ),
            Param("decays", "floats", "gain of each tap (one per delay)", low=0, high=1),
            Param("gain_in", "float", "gain of the direct signal", default=1.0, low=0, high=1),
            Param("gain_out", "float", "gain applied to the sum", default=1.0, low=0, high=10),
            tail_param(),
        ],
        f"{_IMPL}:Echo",
        "delays",
        "- echo: {delays_ms: [2, 5], decays: [0.5, 0.25], gain_in: 0.8, gain_out: 0.9}",
        _check_echo,
    ),
]
