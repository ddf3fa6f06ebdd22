"""Modulation stages: tremolo, chorus, flanger, phaser (torch-free definitions).

Every LFO is computed from the absolute sample index, so it continues exactly across chunks.
LFO value +1 at phase 0 (sine: cos; triangle: 4|c - 1/2| - 1 for the phase c in cycles);
`phase_deg` shifts the start, `spread_deg` adds that much phase per channel (stereo width).
"""

from __future__ import annotations

import math
from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError

_IMPL = "audiofx_cli.stages.modulation"


def _rate(default: float) -> Param:
    return Param(
        "rate_hz",
        "float",
        "LFO frequency",
        default=default,
        unit="Hz",
        low=0,
        high=100,
        low_open=True,
    )


def _depth(default: float, doc: str) -> Param:
    return Param("depth", "float", doc, default=default, low=0, high=1)


def _mix(default: float) -> Param:
    return Param(
        "mix", "float", "wet share: y = (1 - mix) x + mix wet", default=default, low=0, high=1
    )


def _feedback(default: float) -> Param:
    return Param(
        "feedback",
        "float",
        "wet signal fed back into the input",
        default=default,
        low=-0.95,
        high=0.95,
    )


def _lfo_params() -> list[Param]:
    return [
        Param("shape", "choice", "LFO waveform", default="sine", choices=("sine", "triangle")),
        Param(
            "phase_deg",
            "float",
            "LFO phase at the first sample",
            default=0.0,
            unit="deg",
            low=-360,
            high=360,
        ),
        Param(
            "spread_deg",
            "float",
            "LFO phase added per channel",
            default=0.0,
            unit="deg",
            low=-360,
            high=360,
        ),
    ]


def _delay_ms(default: float, high: float) -> Param:
    return Param(
        "delay_ms",
        "float",
        "centre delay; the delay is delay_ms * (1 + depth * lfo), never below one sample",
        default=default,
        unit="ms",
        low=0,
        high=high,
        low_open=True,
    )


def _check_phaser(params: dict[str, Any], sample_rate: float | None) -> None:
    top = params["centre_hz"] * 2.0 ** (params["depth"] * params["octaves"])
    if sample_rate is not None and top >= sample_rate / 2:
        raise ParamError(
            "octaves",
            f"the sweep reaches {top:.6g} Hz (centre_hz * 2^(depth * octaves)), "
            f"above Nyquist ({sample_rate / 2:g} Hz at {sample_rate:g} Hz)",
        )
    if not math.isfinite(top):
        raise ParamError("octaves", "sweep range overflows")


DEFS = [
    StageDef(
        "tremolo",
        "amplitude modulation: gain 1 - depth (1 - lfo) / 2 (SoX tremolo with depth/100)",
        [
            _rate(5.0),
            _depth(0.5, "modulation depth: the gain swings between 1 - depth and 1"),
            _mix(1.0),
            *_lfo_params(),
        ],
        f"{_IMPL}:Tremolo",
        "modulation",
        "- tremolo: {rate_hz: 5, depth: 0.5}",
    ),
    StageDef(
        "chorus",
        "chorus: voices reading a delay line at delay_ms * (1 + depth * lfo), mixed with the dry",
        [
            _rate(1.0),
            _depth(0.25, "delay swing as a fraction of delay_ms"),
            _mix(0.5),
            _delay_ms(7.0, 100.0),
            _feedback(0.0),
            Param(
                "voices",
                "int",
                "number of voices, LFO phases spread evenly",
                default=1,
                low=1,
                high=8,
            ),
            *_lfo_params(),
        ],
        f"{_IMPL}:Chorus",
        "modulation",
        "- chorus: {rate_hz: 1.5, depth: 0.3, delay_ms: 7, voices: 3, feedback: 0.2}",
    ),
    StageDef(
        "flanger",
        "flanger: short modulated delay with feedback, mixed with the dry",
        [
            _rate(0.5),
            _depth(0.9, "delay swing as a fraction of delay_ms"),
            _mix(0.5),
            _delay_ms(2.0, 30.0),
            _feedback(0.5),
            *_lfo_params(),
        ],
        f"{_IMPL}:Flanger",
        "modulation",
        "- flanger: {rate_hz: 2, depth: 0.9, delay_ms: 2, feedback: 0.7}",
    ),
    StageDef(
        "phaser",
        "phaser: first-order all-pass cascade swept around centre_hz, mixed with the dry",
        [
            _rate(1.0),
            _depth(0.5, "sweep: the all-pass frequency is centre_hz * 2^(depth * octaves * lfo)"),
            _mix(0.5),
            Param(
                "centre_hz",
                "float",
                "centre of the sweep (-90 degrees per stage there)",
                default=1300.0,
                unit="Hz",
                low=1,
                below_nyquist=True,
            ),
            Param(
                "octaves",
                "float",
                "sweep half-range at depth 1",
                default=2.0,
                unit="oct",
                low=0,
                high=10,
            ),
            Param("stages", "int", "number of first-order all-passes", default=4, low=1, high=32),
            _feedback(0.0),
            *_lfo_params(),
        ],
        f"{_IMPL}:Phaser",
        "modulation",
        "- phaser: {rate_hz: 3, depth: 0.8, stages: 6, feedback: 0.5}",
        _check_phaser,
    ),
]
