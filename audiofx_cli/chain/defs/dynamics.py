"""Dynamics stages: compressor, look-ahead limiter, noise gate / downward expander."""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError

DETECTORS = ("peak", "rms")
_IMPL = "audiofx_cli.stages.dynamics"


def _time(name: str, doc: str, default: float, high: float = 10000.0) -> Param:
    return Param(name, "float", doc, default=default, unit="ms", low=0, high=high)


def _link() -> Param:
    return Param(
        "link",
        "bool",
        "one gain for all channels (level: max |x| over channels, or the mean of their mean "
        "squares for rms); false: each channel on its own",
        default=True,
    )


def _rms_ms() -> Param:
    return Param(
        "rms_ms",
        "float",
        "averaging time constant of the rms detector",
        default=10.0,
        unit="ms",
        low=0.01,
        high=10000,
    )


def _check_limiter(params: dict[str, Any], sample_rate: float | None) -> None:
    if sample_rate is not None and params["lookahead_ms"] * sample_rate / 1000 > 2**20:
        raise ParamError("lookahead_ms", "look-ahead is longer than 2^20 samples")


DEFS = [
    StageDef(
        "compressor",
        "feed-forward compressor with soft knee (Giannoulis/Massberg/Reiss 2012)",
        [
            Param(
                "threshold_db",
                "float",
                "level above which the gain is reduced",
                default=-20.0,
                unit="dBFS",
                low=-120,
                high=20,
            ),
            Param(
                "ratio",
                "float",
                "input dB per output dB above the threshold",
                default=4.0,
                low=1,
                high=1000,
            ),
            _time("attack_ms", "time for the gain reduction to reach 63 % of a rise", 5.0),
            _time("release_ms", "decay time constant of the gain reduction after a fall", 100.0),
            Param(
                "knee_db",
                "float",
                "width of the quadratic soft knee centred on the threshold (0: hard knee)",
                default=0.0,
                unit="dB",
                low=0,
                high=60,
            ),
            Param(
                "makeup_db",
                "float",
                "gain added after compression",
                default=0.0,
                unit="dB",
                low=-60,
                high=60,
            ),
            Param(
                "detector",
                "choice",
                "level detector: peak (|x| per sample) or rms (mean square over rms_ms)",
                default="peak",
                choices=DETECTORS,
            ),
            _rms_ms(),
            _link(),
        ],
        f"{_IMPL}:Compressor",
        "dynamics",
        "- compressor: {threshold_db: -18, ratio: 4, attack_ms: 5, release_ms: 50, knee_db: 6}",
    ),
    StageDef(
        "limiter",
        "look-ahead brick-wall limiter: no output sample exceeds the ceiling; output aligned",
        [
            Param(
                "ceiling_db",
                "float",
                "maximum output sample level",
                default=-1.0,
                unit="dBFS",
                low=-60,
                high=0,
            ),
            _time("release_ms", "time constant of the gain recovery", 50.0),
            _time(
                "lookahead_ms",
                "look-ahead: the gain ramps down over this time before a peak "
                "(0: instantaneous, like a clipper)",
                5.0,
                high=100.0,
            ),
            _link(),
        ],
        f"{_IMPL}:Limiter",
        "dynamics",
        "- limiter: {ceiling_db: -6, release_ms: 20, lookahead_ms: 2}",
        _check_limiter,
    ),
    StageDef(
        "gate",
        "noise gate / downward expander with hold",
        [
            Param(
                "threshold_db",
                "float",
                "the gate opens when the detector level reaches this",
                default=-50.0,
                unit="dBFS",
                low=-200,
                high=0,
            ),
            Param(
                "range_db",
                "float",
                "attenuation when closed (80: the gate lowers by 80 dB)",
                default=80.0,
                unit="dB",
                low=0,
                high=200,
            ),
            Param(
                "ratio",
                "float",
                "none: gate (closed = -range_db); a number: downward expander, the gain falls "
                "(ratio - 1) dB per dB below the threshold, at most range_db",
                default=None,
                low=1,
                high=1000,
            ),
            _time("attack_ms", "opening time constant", 1.0),
            _time("hold_ms", "stays open this long after the level falls below threshold", 20.0),
            _time("release_ms", "closing time constant", 100.0),
            Param(
                "detector",
                "choice",
                "level detector: rms (mean square over rms_ms) or peak (|x| per sample)",
                default="rms",
                choices=DETECTORS,
            ),
            _rms_ms(),
            _link(),
        ],
        f"{_IMPL}:Gate",
        "dynamics",
        "- gate: {threshold_db: -10, range_db: 40, attack_ms: 0.5, hold_ms: 1, release_ms: 5, "
        "detector: peak}",
    ),
]
