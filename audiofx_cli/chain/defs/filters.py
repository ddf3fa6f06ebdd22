"""IIR filter stages: scipy designs (always second-order sections) and RBJ cookbook biquads."""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.errors import ParamError

IIR_TYPES = ("butterworth", "chebyshev1", "chebyshev2", "elliptic", "bessel", "linkwitz_riley")
MAX_ORDER = 32

_IMPL = "audiofx_cli.stages.filters"


MIN_Q = 1e-3  # below it sin(w0) / (2 q) overflows toward a pole on the unit circle
MIN_RIPPLE_DB = 1e-6  # below it 10^(dB/10) - 1 loses its digits and the design divides by 0


def _type_params(order_doc: str) -> list[Param]:
    return [
        Param("order", "int", order_doc, default=2, low=1, high=MAX_ORDER),
        Param("type", "choice", "filter family", default="butterworth", choices=IIR_TYPES),
        Param(
            "ripple_db",
            "float",
            "pass-band ripple (chebyshev1, elliptic)",
            default=1.0,
            unit="dB",
            low=MIN_RIPPLE_DB,
            high=20,
        ),
        Param(
            "attenuation_db",
            "float",
            "stop-band attenuation (chebyshev2, elliptic)",
            default=40.0,
            unit="dB",
            low=MIN_RIPPLE_DB,
            high=200,
        ),
    ]


def _check_order(params: dict[str, Any], sample_rate: float | None) -> None:
    if params["type"] == "linkwitz_riley" and params["order"] % 2:
        raise ParamError("order", f"linkwitz_riley needs an even order, got {params['order']}")
    ripple, attenuation = params["ripple_db"], params["attenuation_db"]
    if params["type"] == "elliptic" and not attenuation > ripple:
        raise ParamError(
            "attenuation_db",
            f"elliptic needs attenuation_db above ripple_db ({ripple:g} dB), got {attenuation:g}",
        )


def _check_band(params: dict[str, Any], sample_rate: float | None) -> None:
    _check_order(params, sample_rate)
    if not params["low_hz"] < params["high_hz"]:
        raise ParamError(
            "high_hz", f"must be above low_hz ({params['low_hz']:g} Hz), got {params['high_hz']:g}"
        )


def _cutoff(doc: str = "cut-off frequency (-3 dB for butterworth)") -> Param:
    return Param("cutoff_hz", "float", doc, unit="Hz", low=0, low_open=True, below_nyquist=True)


def _freq(doc: str) -> Param:
    return Param("freq_hz", "float", doc, unit="Hz", low=0, low_open=True, below_nyquist=True)


def _q(default: Any = None, doc: str = "quality factor") -> Param:
    kwargs = {} if default is None else {"default": default}
    return Param("q", "float", doc, low=MIN_Q, high=1000, **kwargs)


_GAIN = Param(
    "gain_db", "float", "gain at freq_hz (shelf: the plateau)", unit="dB", low=-60, high=60
)
_BAND_ORDER = "scipy's N: the band filter has 2N poles"


def _band_params() -> list[Param]:
    edge = {"unit": "Hz", "low": 0, "low_open": True, "below_nyquist": True}
    return [
        Param("low_hz", "float", "lower band edge", **edge),
        Param("high_hz", "float", "upper band edge", **edge),
        *_type_params(_BAND_ORDER),
    ]


def _check_stable(poles: Any, key: str) -> None:
    import numpy as np

    radius = float(np.max(np.abs(poles))) if len(poles) else 0.0
    if radius >= 1.0:
        raise ParamError(
            key, f"filter is unstable: a pole has magnitude {radius:.6g} (must be < 1)"
        )


def _check_sos(params: dict[str, Any], sample_rate: float | None) -> None:
    import numpy as np

    sos = np.asarray(params["sections"], dtype=float)
    if np.any(sos[:, 3] == 0):
        raise ParamError("sections", "a0 must not be 0 in any section")
    poles = np.concatenate([np.roots(row[3:]) for row in sos])
    _check_stable(poles, "sections")


def _check_ba(params: dict[str, Any], sample_rate: float | None) -> None:
    import numpy as np

    a = np.asarray(params["a"], dtype=float)
    if a[0] == 0:
        raise ParamError("a", "a[0] must not be 0")
    _check_stable(np.roots(a), "a")


DEFS = [
    StageDef(
        "lowpass",
        "low-pass IIR filter (butterworth, chebyshev, elliptic, bessel, linkwitz-riley)",
        [_cutoff(), *_type_params("filter order (number of poles)")],
        f"{_IMPL}:LowPass",
        "filter",
        "- lowpass: {cutoff_hz: 8000, order: 4}",
        _check_order,
        learnable=("cutoff_hz",),
    ),
    StageDef(
        "highpass",
        "high-pass IIR filter (butterworth, chebyshev, elliptic, bessel, linkwitz-riley)",
        [_cutoff(), *_type_params("filter order (number of poles)")],
        f"{_IMPL}:HighPass",
        "filter",
        "- highpass: {cutoff_hz: 80, order: 2}",
        _check_order,
        learnable=("cutoff_hz",),
    ),
    StageDef(
        "bandpass",
        "band-pass IIR filter between low_hz and high_hz",
        _band_params(),
        f"{_IMPL}:BandPass",
        "filter",
        "- bandpass: {low_hz: 300, high_hz: 3400, order: 4}",
        _check_band,
        learnable=("low_hz", "high_hz"),
    ),
    StageDef(
        "bandstop",
        "band-stop (band-reject) IIR filter between low_hz and high_hz",
        _band_params(),
        f"{_IMPL}:BandStop",
        "filter",
        "- bandstop: {low_hz: 45, high_hz: 55, order: 2}",
        _check_band,
        learnable=("low_hz", "high_hz"),
    ),
    StageDef(
        "peaking",
        "peaking EQ biquad (RBJ cookbook): boost or cut around freq_hz",
        [_freq("centre frequency"), _GAIN, _q(1.0, "quality factor (bandwidth = freq_hz / q)")],
        f"{_IMPL}:Peaking",
        "filter",
        "- peaking: {freq_hz: 3000, gain_db: 3, q: 1.0}",
        learnable=("freq_hz", "gain_db", "q"),
    ),
    StageDef(
        "lowshelf",
        "low-shelf biquad (RBJ cookbook): gain below freq_hz",
        [_freq("shelf midpoint (gain_db / 2 here)"), _GAIN, _q(0.7071, "shelf slope quality")],
        f"{_IMPL}:LowShelf",
        "filter",
        "- lowshelf: {freq_hz: 120, gain_db: -3}",
        learnable=("freq_hz", "gain_db", "q"),
    ),
    StageDef(
        "highshelf",
        "high-shelf biquad (RBJ cookbook): gain above freq_hz",
        [_freq("shelf midpoint (gain_db / 2 here)"), _GAIN, _q(0.7071, "shelf slope quality")],
        f"{_IMPL}:HighShelf",
        "filter",
        "- highshelf: {freq_hz: 6000, gain_db: 2}",
        learnable=("freq_hz", "gain_db", "q"),
    ),
    StageDef(
        "notch",
        "notch biquad (RBJ cookbook): removes freq_hz",
        [_freq("frequency removed"), _q(10.0, "quality factor (bandwidth = freq_hz / q)")],
        f"{_IMPL}:Notch",
        "filter",
        "- notch: {freq_hz: 50, q: 10}",
        learnable=("freq_hz", "q"),
    ),
    StageDef(
        "allpass",
        "all-pass biquad (RBJ cookbook): phase shift of -180 degrees at freq_hz",
        [_freq("frequency of -180 degrees phase"), _q(0.7071)],
        f"{_IMPL}:AllPass",
        "filter",
        "- allpass: {freq_hz: 1000, q: 0.7071}",
        learnable=("freq_hz", "q"),
    ),
    StageDef(
        "biquad_lowpass",
        "two-pole low-pass biquad (RBJ cookbook; SoX 'lowpass -2')",
        [_freq("cut-off frequency"), _q(0.7071, "resonance (gain at freq_hz is q)")],
        f"{_IMPL}:BiquadLowPass",
        "filter",
        "- biquad_lowpass: {freq_hz: 5000, q: 0.7071}",
        learnable=("freq_hz", "q"),
    ),
    StageDef(
        "biquad_highpass",
        "two-pole high-pass biquad (RBJ cookbook; SoX 'highpass -2')",
        [_freq("cut-off frequency"), _q(0.7071, "resonance (gain at freq_hz is q)")],
        f"{_IMPL}:BiquadHighPass",
        "filter",
        "- biquad_highpass: {freq_hz: 100, q: 0.7071}",
        learnable=("freq_hz", "q"),
    ),
    StageDef(
        "sos",
        "IIR filter given as second-order sections [b0, b1, b2, a0, a1, a2]",
        [Param("sections", "sections", "the sections, applied in order")],
        f"{_IMPL}:SOSStage",
        "filter",
        "- sos: {sections: [[0.2, 0.4, 0.2, 1, -0.37, 0.2]]}",
        _check_sos,
        learnable=("sections",),
    ),
    StageDef(
        "ba",
        "IIR filter given as b and a polynomials (converted to second-order sections)",
        [
            Param("b", "floats", "numerator coefficients"),
            Param("a", "floats", "denominator coefficients (a[0] != 0)"),
        ],
        f"{_IMPL}:BAStage",
        "filter",
        "- ba: {b: [0.5, 0.5], a: [1.0]}",
        _check_ba,
        learnable=("b", "a"),
    ),
]
