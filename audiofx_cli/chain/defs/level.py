"""Level stages: normalize (peak / RMS / EBU R128 loudness, two passes) and fade."""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.dsp.level_targets import FADE_SHAPES, NORMALIZE_MODES
from audiofx_cli.errors import ParamError


def _check_normalize(params: dict[str, Any], sample_rate: float | None) -> None:
    target = params.get("target_db")
    if params["mode"] == "lufs" and target is not None and target < -70:
        raise ParamError("target_db", f"a loudness target must be >= -70 LUFS, got {target:g}")


def _check_fade(params: dict[str, Any], sample_rate: float | None) -> None:
    if params["in_s"] == 0 and params["out_s"] == 0:
        raise ParamError("in_s", "give in_s or out_s (both are 0: the fade would do nothing)")


DEFS = [
    StageDef(
        "normalize",
        "two-pass normalisation to a peak, RMS or integrated loudness (EBU R128) target",
        [
            Param(
                "mode",
                "choice",
                "what is measured: sample peak, RMS of all samples, integrated loudness "
                "(ITU-R BS.1770-4)",
                default="peak",
                choices=NORMALIZE_MODES,
            ),
            Param(
                "target_db",
                "float",
                "target level (dBFS for peak/rms, LUFS for lufs); none: the mode's default "
                "(peak -1, rms -20, lufs -23)",
                default=None,
                unit="dB",
                low=-200,
                high=0,
            ),
            Param(
                "true_peak_limit_db",
                "float",
                "lower the gain so the true peak (4x oversampled, BS.1770 Annex 2) stays at or "
                "below this (none: no limit)",
                default=None,
                unit="dBTP",
                low=-200,
                high=0,
            ),
        ],
        "audiofx_cli.stages.level:Normalize",
        "level",
        "- normalize: {mode: lufs, target_db: -23, true_peak_limit_db: -1}",
        _check_normalize,
    ),
    StageDef(
        "fade",
        "fade in at the start and/or out at the end (linear, exponential, logarithmic, cosine)",
        [
            Param("in_s", "float", "fade-in length", default=0.0, unit="s", low=0, high=86400),
            Param(
                "out_s",
                "float",
                "fade-out length, ending on the last sample (needs the stream's length)",
                default=0.0,
                unit="s",
                low=0,
                high=86400,
            ),
            Param(
                "shape",
                "choice",
                "curve: linear u; exponential 10^(-5(1-u)) (-100 dB to 0, linear in dB); "
                "logarithmic 1 + log10(u)/5 (its inverse); cosine (1 - cos(pi u))/2",
                default="linear",
                choices=FADE_SHAPES,
            ),
        ],
        "audiofx_cli.stages.level:Fade",
        "level",
        "- fade: {in_s: 0.01, out_s: 0.02, shape: cosine}",
        _check_fade,
    ),
]
