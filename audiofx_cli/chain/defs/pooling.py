"""Rate-reducing stages for features and audio: `frames` (window statistics every hop) and
`decimate` (anti-aliased). They follow any feature stage (or audio) and keep its axes; the
output rate is what later stages and the feature file see (torch-free definition)."""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.dsp import framing

_IMPL = "audiofx_cli.stages.pooling"


def _check_frames(params: dict[str, Any], sample_rate: float | None) -> None:
    framing.check_frames(
        params["hop_ms"], params["window_ms"], params["stat"], params["window"], sample_rate
    )


def _check_decimate(params: dict[str, Any], sample_rate: float | None) -> None:
    framing.check_decimate(params["rate_hz"], params["factor"], sample_rate)


def _decimated_rate(params: dict[str, Any], rate: float) -> float:
    return float(rate * framing.decimation_ratio(rate, params["rate_hz"], params["factor"]))


DEFS = [
    StageDef(
        "frames",
        "frame statistics (rms, mean, mean |x|, max) over windows every hop_ms, for features "
        "at a frame rate (frame rate exactly 1000 / hop_ms)",
        [
            Param(
                "hop_ms",
                "float",
                "frame step; frame k is centred on k * hop_ms",
                default=10.0,
                unit="ms",
                low=0,
                low_open=True,
            ),
            Param(
                "window_ms",
                "float",
                "window length (rounded to whole input samples)",
                default=25.0,
                unit="ms",
                low=0,
                low_open=True,
            ),
            Param(
                "stat",
                "choice",
                "statistic over each window (frames at the ends: over "
                "their samples inside the signal)",
                default="rms",
                choices=framing.STATS,
            ),
            Param(
                "window",
                "choice",
                "weights of the weighted statistics (symmetric); max takes rectangular",
                default="rectangular",
                choices=framing.WINDOWS,
            ),
        ],  # fmt: skip
        f"{_IMPL}:Frames",
        "pooling",
        "- frames: {hop_ms: 10, window_ms: 25, stat: rms}",
        _check_frames,
        lambda params, rate: framing.frame_rate(params["hop_ms"], rate),
    ),
    StageDef(
        "decimate",
        "anti-aliased decimation to rate_hz (or by factor): linear-phase low-pass per row, "
        "aligned, for features or audio",
        [
            Param(
                "rate_hz",
                "float",
                "output rate (give this or factor)",
                default=None,
                unit="Hz",
                low=0,
                low_open=True,
            ),
            Param(
                "factor",
                "int",
                "integer decimation factor (give this or rate_hz)",
                default=None,
                low=1,
                high=framing.MAX_PHASES,
            ),
            Param(
                "passband",
                "float",
                "flat pass-band edge, fraction of the output Nyquist",
                default=0.8,
                low=0.1,
                high=0.99,
            ),
            Param(
                "stopband_db",
                "float",
                "attenuation from the output Nyquist up",
                default=80.0,
                unit="dB",
                low=20,
                high=160,
            ),
        ],  # fmt: skip
        f"{_IMPL}:Decimate",
        "pooling",
        "- decimate: {rate_hz: 200}",
        _check_decimate,
        _decimated_rate,
    ),
]
