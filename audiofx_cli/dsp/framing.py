"""Where the outputs of `frames` and `decimate` sit on their input's time axis (torch-free).

Both stages turn a signal at `rate` into one at a lower rate; output k sits at input time
k / output_rate (the input's time origin kept), and a stream of n input samples gives
ceil(n * output_rate / rate) outputs: one per output time inside the signal.

- `frames`: the hop is `hop_ms` in input samples, an exact fraction P / Q (22050 Hz and 10 ms:
  441 / 2), so the frame rate is exactly 1000 / hop_ms Hz whatever the input rate. Frame k is
  centred on input sample round(k P / Q): its window of W samples starts (W - 1) // 2 before,
  so its centre is within one input sample of k / frame_rate (exactly on it for odd W and an
  integer hop).
- `decimate`: the rate ratio L / M = output_rate / rate in lowest terms.

This module is pure arithmetic: `chain.defs` (which must not import torch) and the stages both
use it, so the rates the registry announces are the rates the stages produce.
"""

from __future__ import annotations

import math
from fractions import Fraction

from audiofx_cli.errors import ParamError

MAX_PHASES = 4096  # denominators of hop and rate ratios (phases of a polyphase kernel)
STATS = ("rms", "mean", "mean_abs", "max")
WINDOWS = ("rectangular", "hann", "hamming", "blackman", "triangle")


def _exact(value: float) -> Fraction:
    """A decimal parameter as the fraction its text means (0.1 -> 1/10, not the binary float)."""
    return Fraction(repr(float(value)))


def hop_samples(hop_ms: float, rate: float) -> Fraction:
    """The hop in input samples as a fraction P / Q (Q <= MAX_PHASES).

    Example:
        >>> hop_samples(10, 22050), hop_samples(10, 16000)
        (Fraction(441, 2), Fraction(160, 1))
    """
    return (_exact(hop_ms) * Fraction(rate) / 1000).limit_denominator(MAX_PHASES)


def window_samples(window_ms: float, rate: float) -> int:
    """The window length in input samples, rounded half up (25 ms at 22050 Hz: 551)."""
    return int(math.floor(float(_exact(window_ms) * Fraction(rate) / 1000) + 0.5))


def frame_rate(hop_ms: float, rate: float) -> float:
    """Frames per second of `frames` at input rate `rate`."""
    return float(Fraction(rate) / hop_samples(hop_ms, rate))


def decimation_ratio(rate: float, rate_hz: float | None, factor: int | None) -> Fraction:
    """output rate / input rate as a fraction L / M (L <= M, denominators <= MAX_PHASES).

    Raises:
        ValueError: a ratio above 1 or one with too many phases (message names the key).
    """
    if factor is not None:
        return Fraction(1, int(factor))
    assert rate_hz is not None
    ratio = _exact(rate_hz) / Fraction(rate)
    if ratio > 1:
        raise ValueError(f"must not exceed the input rate ({rate:g} Hz), got {rate_hz:g} Hz")
    limited = ratio.limit_denominator(MAX_PHASES)
    if limited != ratio or limited.numerator > MAX_PHASES:
        raise ValueError(
            f"{rate:g} Hz -> {rate_hz:g} Hz is the ratio {ratio}; at most {MAX_PHASES} "
            "in lowest terms (choose a rate with a simpler ratio, or give factor)"
        )
    return limited


def output_count(frames: int, ratio: Fraction) -> int:
    """ceil(frames * ratio): outputs whose time lies inside a stream of `frames` samples.

    Example:
        >>> output_count(1000, Fraction(2, 441)), output_count(0, Fraction(1, 160))
        (5, 0)
    """
    return -(-frames * ratio.numerator // ratio.denominator)


def frames_ratio(hop_ms: float, rate: float) -> Fraction:
    """Frames per input sample (1 / hop) for `output_count`."""
    return 1 / hop_samples(hop_ms, rate)


def check_frames(
    hop_ms: float, window_ms: float, stat: str, window: str, rate: float | None
) -> None:
    """Raise ParamError for frames that cannot be (rate None: the rate-free checks only)."""
    if stat == "max" and window != "rectangular":
        raise ParamError("window", "stat max is the plain maximum over the window: use rectangular")
    if rate is None:
        return
    at = f"at the input rate {rate:g} Hz"
    hop = hop_samples(hop_ms, rate)
    if hop < 1:
        raise ParamError(
            "hop_ms", f"is {float(hop):.3g} samples {at}: at least one (>= {1000 / rate:.3g} ms)"
        )
    if window_samples(window_ms, rate) < 1:
        raise ParamError("window_ms", f"is under one sample {at} (>= {500 / rate:.3g} ms)")


def check_decimate(rate_hz: float | None, factor: int | None, rate: float | None) -> None:
    """Raise ParamError unless exactly one of rate_hz / factor is given and, with the input
    rate known, rate_hz gives a ratio `decimation_ratio` accepts."""
    if (rate_hz is None) == (factor is None):
        raise ParamError("rate_hz", "give rate_hz or factor (one of them)")
    if rate is not None and rate_hz is not None:
        try:
            decimation_ratio(rate, rate_hz, None)
        except ValueError as exc:
            raise ParamError("rate_hz", str(exc)) from None
