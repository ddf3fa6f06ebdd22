"""Sample-rate conversion (`resample`): later stages are built and checked at the new rate, and
the output file is written at it (torch-free definition)."""

from __future__ import annotations

import math
from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError

QUALITY_NAMES = ("low", "medium", "high", "very_high")
MAX_PHASES = 4096


def _check_resample(params: dict[str, Any], sample_rate: float | None) -> None:
    if sample_rate is None:
        return
    if not float(sample_rate).is_integer():
        raise ParamError("rate_hz", f"needs an integer input rate, got {sample_rate:g} Hz")
    rate_in, rate_out = int(sample_rate), params["rate_hz"]
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    if max(up, down) > MAX_PHASES:
        raise ParamError(
            "rate_hz",
            f"{rate_in} Hz -> {rate_out} Hz is the ratio {up}/{down}; at most {MAX_PHASES} "
            "in lowest terms (resample through a rate with a simpler ratio)",
        )


DEFS = [
    StageDef(
        "resample",
        "polyphase windowed-sinc resampler (aligned, exact length ceil(n * new / old))",
        [
            Param("rate_hz", "int", "output sample rate", unit="Hz", low=1000, high=1_536_000),
            Param(
                "quality",
                "choice",
                "filter: passband edge / stopband (low 80%/60 dB, medium 86%/80 dB, "
                "high 91%/100 dB, very_high 95%/130 dB)",
                default="high",
                choices=QUALITY_NAMES,
            ),
        ],
        "audiofx_cli.stages.rate:Resample",
        "rate",
        "- resample: {rate_hz: 16000, quality: high}",
        _check_resample,
        output_rate=lambda params, rate: float(params["rate_hz"]),
    ),
]
