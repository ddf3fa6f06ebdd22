"""FIR stages: firwin designs and user-given taps (inline or from a .npy / text file)."""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError
from audiofx_cli.io.chain_files import MAX_TAPS, file_samples

FIR_PASSES = ("lowpass", "highpass", "bandpass", "bandstop")
FIR_WINDOWS = (
    "hamming",
    "hann",
    "blackman",
    "blackmanharris",
    "nuttall",
    "kaiser",
    "boxcar",
    "triang",
    "bartlett",
    "flattop",
    "parzen",
    "bohman",
    "barthann",
    "cosine",
    "lanczos",
)

_IMPL = "audiofx_cli.stages.fir"


def _check_fir(params: dict[str, Any], sample_rate: float | None) -> None:
    kind, cutoff, taps = params["pass"], params["cutoff_hz"], params["taps"]
    if kind in ("bandpass", "bandstop") and not isinstance(cutoff, list):
        raise ParamError("cutoff_hz", f"pass {kind} needs [low_hz, high_hz], got {cutoff:g}")
    if kind in ("lowpass", "highpass") and isinstance(cutoff, list):
        raise ParamError("cutoff_hz", f"pass {kind} needs one frequency, got a pair {cutoff}")
    if kind in ("highpass", "bandstop") and taps % 2 == 0:
        raise ParamError(
            "taps", f"pass {kind} needs an odd number of taps (gain at Nyquist), got {taps}"
        )
    if params["compensate_delay"] and taps % 2 == 0:
        raise ParamError(
            "taps",
            f"compensate_delay needs odd taps (even taps delay by a half sample), got {taps}",
        )


def _check_fir_taps(params: dict[str, Any], sample_rate: float | None) -> None:
    if (params["taps"] is None) == (params["file"] is None):
        raise ParamError(None, "give exactly one of 'taps' (inline list) or 'file'")
    n = len(params["taps"]) if params["taps"] is not None else file_samples(params["file"], "file")
    if params["compensate_delay"] and n % 2 == 0:
        raise ParamError(
            "compensate_delay",
            f"needs an odd number of taps (even taps delay by a half sample), got {n}",
        )


_COMPENSATE_DOC = (
    "remove the (taps-1)/2 samples of linear-phase delay (output aligned, same length)"
)

DEFS = [
    StageDef(
        "fir",
        "linear-phase FIR filter designed with scipy.signal.firwin",
        [
            Param("pass", "choice", "filter type", default="lowpass", choices=FIR_PASSES),
            Param(
                "cutoff_hz",
                "float_or_pair",
                "cut-off, or [low, high] for band types",
                unit="Hz",
                low=0,
                low_open=True,
                below_nyquist=True,
            ),
            Param(
                "taps",
                "int",
                "number of taps (odd for highpass and bandstop)",
                default=101,
                low=1,
                high=MAX_TAPS,
            ),
            Param("window", "choice", "design window", default="hamming", choices=FIR_WINDOWS),
            Param("kaiser_beta", "float", "beta of the kaiser window", default=8.6, low=0, high=50),
            Param("compensate_delay", "bool", _COMPENSATE_DOC, default=True),
        ],
        f"{_IMPL}:FIRDesigned",
        "fir",
        "- fir: {pass: lowpass, cutoff_hz: 1000, taps: 101}",
        _check_fir,
        learnable=("cutoff_hz",),
    ),
    StageDef(
        "fir_taps",
        "FIR filter with given taps (inline list or a .npy / text file)",
        [
            Param("taps", "floats", "the impulse response, inline", default=None),
            Param(
                "file",
                "path",
                ".npy or text file of taps (relative to the chain file)",
                default=None,
            ),
            Param("compensate_delay", "bool", _COMPENSATE_DOC, default=False),
        ],
        f"{_IMPL}:FIRTaps",
        "fir",
        "- fir_taps: {taps: [0.25, 0.5, 0.25]}",
        _check_fir_taps,
        learnable=("taps",),
    ),
]
