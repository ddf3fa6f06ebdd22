"""Benchmark suites: the filters each suite runs, designed in float64 with scipy.signal.

The `api`, `iir` and `fir` suites reproduce torchfx's published benchmarks (44.1 kHz Gaussian
noise). Where that benchmark left a parameter to torchfx 0.8.0's constructor defaults, the
default is written out here: `HiChebyshev1(cutoff)` is order 4 with 0.1 dB ripple and
`LoButterworth(cutoff)` is order 5, so the api chain has 3 x 2 + 3 x 3 = 15 sections.
Every backend runs exactly these filters, so every figure compares the same arithmetic.

No torch here; scipy is imported when a filter is designed.

Example:
    >>> [f.describe() for f in SUITES["iir"].filters][:2]
    ['HP Butterworth 1000 Hz order 2', 'LP Butterworth 5000 Hz order 2']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_RATE_HZ = 44100
KINDS = ("iir", "fir", "chain", "file", "loop", "effects")


@dataclass(frozen=True)
class FilterSpec:
    """One filter of a suite.

    Args:
        btype: 'lowpass' | 'highpass'.
        cutoff_hz: corner frequency (IIR) or firwin cutoff (FIR).
        family: 'butterworth' | 'chebyshev1' | 'fir' (firwin, hamming window).
        order: IIR order (number of poles).
        ripple_db: pass-band ripple for chebyshev1.
        taps: FIR length.
    """

    btype: str
    cutoff_hz: float
    family: str = "butterworth"
    order: int = 2
    ripple_db: float = 0.0
    taps: int = 0

    @property
    def is_fir(self) -> bool:
        return self.family == "fir"

    def describe(self) -> str:
        """One line naming every design parameter, e.g. 'HP Chebyshev I 20 Hz order 4 ...'."""
        side = "LP" if self.btype == "lowpass" else "HP"
        if self.is_fir:
            return f"{side} FIR firwin {self.cutoff_hz:g} Hz {self.taps} taps (hamming)"
        if self.family == "chebyshev1":
            return (
                f"{side} Chebyshev I {self.cutoff_hz:g} Hz order {self.order} "
                f"ripple {self.ripple_db:g} dB"
            )
        return f"{side} Butterworth {self.cutoff_hz:g} Hz order {self.order}"

    def stage(self) -> dict[str, Any]:
        """The same filter as an audiofx chain stage (YAML form)."""
        if self.is_fir:
            return {
                "fir": {
                    "pass": self.btype,
                    "cutoff_hz": self.cutoff_hz,
                    "taps": self.taps,
                    "window": "hamming",
                    "compensate_delay": False,  # causal, as lfilter(taps, 1, x)
                }
            }
        params: dict[str, Any] = {
            "cutoff_hz": self.cutoff_hz,
            "order": self.order,
            "type": self.family,
        }
        if self.family == "chebyshev1":
            params["ripple_db"] = self.ripple_db
        return {self.btype: params}

    def sos(self, rate_hz: float) -> Any:
        """(n_sections, 6) float64 second-order sections, designed directly with scipy."""
        return self._design(rate_hz, "sos")

    def ba(self, rate_hz: float) -> tuple[Any, Any]:
        """(b, a) float64 polynomials (FIR: taps and [1.0])."""
        import numpy as np

        if self.is_fir:
            return self.fir_taps(rate_hz), np.array([1.0])
        return self._design(rate_hz, "ba")

    def fir_taps(self, rate_hz: float) -> Any:
        from scipy import signal

        return signal.firwin(self.taps, self.cutoff_hz, pass_zero=self.btype, fs=float(rate_hz))

    def _design(self, rate_hz: float, output: str) -> Any:
        from scipy import signal

        if self.is_fir:
            raise ValueError("an FIR filter has no second-order sections")
        fs = float(rate_hz)
        if self.family == "chebyshev1":
            return signal.cheby1(
                self.order, self.ripple_db, self.cutoff_hz, self.btype, fs=fs, output=output
            )
        return signal.butter(self.order, self.cutoff_hz, self.btype, fs=fs, output=output)


@dataclass(frozen=True)
class Suite:
    """A named workload: its filters (or a chain file), default sizes and what it shows."""

    name: str
    kind: str
    description: str
    filters: tuple[FilterSpec, ...] = ()
    channels: tuple[int, ...] = (8,)
    durations_s: tuple[float, ...] = (60.0,)
    notes: tuple[str, ...] = field(default_factory=tuple)
    rate_hz: int = DEFAULT_RATE_HZ  # when --rate is not given

    def describe_filters(self) -> str:
        return "; ".join(f.describe() for f in self.filters)

    def stages(self) -> list[dict[str, Any]]:
        return [f.stage() for f in self.filters]

    def fused_sos(self, rate_hz: float) -> Any:
        """All filters as one cascade of sections (float64)."""
        import numpy as np

        return np.concatenate([f.sos(rate_hz) for f in self.filters])

    def fused_fir(self, rate_hz: float) -> Any:
        """All FIR filters convolved into one (float64): 101..105 taps give 511."""
        import numpy as np

        taps = np.array([1.0])
        for f in self.filters:
            taps = np.convolve(taps, f.fir_taps(rate_hz))
        return taps


def _hp_cheby(cutoff: float, order: int, ripple: float) -> FilterSpec:
    return FilterSpec("highpass", cutoff, "chebyshev1", order, ripple)


def _lp_cheby(cutoff: float, order: int, ripple: float) -> FilterSpec:
    return FilterSpec("lowpass", cutoff, "chebyshev1", order, ripple)


def _fir(taps: int, cutoff: float) -> FilterSpec:
    return FilterSpec("lowpass", cutoff, "fir", taps=taps)


IIR_FILTERS = (
    FilterSpec("highpass", 1000, "butterworth", 2),
    FilterSpec("lowpass", 5000, "butterworth", 2),
    _hp_cheby(1500, 2, 0.1),
    _lp_cheby(1800, 2, 0.1),
)

SUITES: dict[str, Suite] = {
    "api": Suite(
        "api",
        "iir",
        "torchfx's API benchmark chain: 3 Chebyshev I high-passes + 3 Butterworth low-passes",
        (
            _hp_cheby(20, 4, 0.1),
            _hp_cheby(60, 4, 0.1),
            _hp_cheby(65, 4, 0.1),
            FilterSpec("lowpass", 5000, "butterworth", 5),
            FilterSpec("lowpass", 4900, "butterworth", 5),
            FilterSpec("lowpass", 4850, "butterworth", 5),
        ),
        channels=(8,),
        durations_s=(120.0,),
        notes=(
            "api: orders and ripple are torchfx 0.8.0's constructor defaults "
            "(HiChebyshev1: order 4, ripple 0.1 dB; LoButterworth: order 5): 15 sections",
        ),
    ),
    "iir": Suite(
        "iir",
        "iir",
        "torchfx's IIR benchmark chain: 4 order-2 Butterworth / Chebyshev I filters",
        IIR_FILTERS,
        notes=(
            "iir: Chebyshev I ripple 0.1 dB (torchfx's default, which its benchmark used; its "
            "scipy baseline designed 0.5 dB); every backend here runs the same 0.1 dB design",
        ),
    ),
    "fir": Suite(
        "fir",
        "fir",
        "torchfx's FIR benchmark chain: 5 firwin low-passes of 101-105 taps (hamming)",
        (_fir(101, 1000), _fir(102, 5000), _fir(103, 1500), _fir(104, 1800), _fir(105, 1850)),
        notes=("fir: causal filters (no delay compensation), as lfilter(taps, 1, x)",),
    ),
    "chain": Suite(
        "chain",
        "chain",
        "a chain file (--chain), audiofx only; error vs audiofx in float64",
        channels=(2,),
        durations_s=(60.0,),
    ),
    "file": Suite(
        "file",
        "file",
        "the whole `process` path on a float WAV: decode + encode alone vs decode + chain + "
        "encode (the iir chain, or --chain)",
        IIR_FILTERS,
        channels=(8,),
        durations_s=(60.0,),
    ),
    "loop": Suite(
        "loop",
        "loop",
        "a shell loop of `audiofx process` over --files short files: in-process, with a warm "
        "server, and SoX with the same filters (bench/loop.py)",
        channels=(1,),
        durations_s=(1.4,),
        rate_hz=48000,
    ),
    "effects": Suite(
        "effects",
        "effects",
        "every non-linear stage beside pedalboard, SoX and torchfx (audiofx_cli.bench.effects)",
        channels=(2,),
        durations_s=(60.0,),
    ),
}
DEFAULT_SUITES = ("iir", "fir", "api")
