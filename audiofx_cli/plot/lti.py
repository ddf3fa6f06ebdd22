"""Linear time-invariant elements read from built stages: exact responses from coefficients.

Each element evaluates its complex response H(e^jw) together with the derivative dH/dw, so
group delay (-Im(H'/H)) is exact for cascades, parallel sums and delay-compensated FIRs alike,
and `apply` filters a signal on a time grid (used for impulse responses with pre-ringing).
Evaluation is plain numpy/scipy in float64 from the stages' designed coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

_CHUNK = 1024  # taps per block when evaluating long FIRs (bounds a (freqs, chunk) matrix)


def _poly_response(
    coeffs: np.ndarray, w: np.ndarray, shift: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """P(w) = sum_k c_k exp(-j w (k - shift)) and dP/dw, for any length, in blocks."""
    h = np.zeros(w.shape, dtype=np.complex128)
    dh = np.zeros(w.shape, dtype=np.complex128)
    for start in range(0, coeffs.size, _CHUNK):
        c = coeffs[start : start + _CHUNK]
        k = np.arange(start, start + c.size, dtype=np.float64) - shift
        e = np.exp(-1j * np.outer(w, k))
        h += e @ c
        dh += e @ (-1j * k * c)
    return h, dh


class Element:
    """A linear time-invariant piece of a chain at one sample rate."""

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, dH/dw) at normalised angular frequencies w (radians per sample)."""
        raise NotImplementedError

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Filter a 1-D float64 signal; latency compensation shifts the output left."""
        raise NotImplementedError

    @property
    def latency(self) -> int:
        """Samples this element moves its output earlier (FIR delay compensation)."""
        return 0

    def decay_samples(self) -> int:
        """Samples after which the impulse response has decayed below about -100 dB."""
        return 1


@dataclass
class Gain(Element):
    gain: float

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.full(w.shape, self.gain, dtype=np.complex128), np.zeros(w.shape, np.complex128)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.gain * x


@dataclass
class SOS(Element):
    """A cascade of second-order sections [b0, b1, b2, a0, a1, a2]."""

    sos: np.ndarray

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z1 = np.exp(-1j * w)
        z2 = z1 * z1
        h = np.ones(w.shape, dtype=np.complex128)
        dh = np.zeros(w.shape, dtype=np.complex128)
        for b0, b1, b2, a0, a1, a2 in self.sos:
            num = b0 + b1 * z1 + b2 * z2
            den = a0 + a1 * z1 + a2 * z2
            dnum = -1j * b1 * z1 - 2j * b2 * z2
            dden = -1j * a1 * z1 - 2j * a2 * z2
            hs = num / den
            dhs = (dnum * den - num * dden) / (den * den)
            dh = dh * hs + h * dhs
            h = h * hs
        return h, dh

    def apply(self, x: np.ndarray) -> np.ndarray:
        return signal.sosfilt(self.sos, x)

    def decay_samples(self) -> int:
        radius = 0.0
        for row in self.sos:
            roots = np.roots(row[3:])
            if roots.size:
                radius = max(radius, float(np.max(np.abs(roots))))
        if radius <= 0.0:
            return 3
        if radius >= 1.0:
            return 1 << 20
        # poles of multiplicity m decay like n^(m-1) r^n: leave room for the polynomial factor
        return int(math.ceil(math.log(1e-5) / math.log(radius))) * 2 + 3


@dataclass
class FIR(Element):
    """Taps; with `shift` samples of delay compensation (output moved earlier)."""

    taps: np.ndarray
    shift: int = 0

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _poly_response(self.taps, w, self.shift)

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = signal.oaconvolve(x, self.taps)[: x.size]
        if self.shift:
            y = np.concatenate([y[self.shift :], np.zeros(min(self.shift, x.size))])
        return y

    @property
    def latency(self) -> int:
        return self.shift

    def decay_samples(self) -> int:
        return int(self.taps.size)


@dataclass
class FeedbackDelay(Element):
    """y = (1 - mix) x + mix d, d[n] = x[n - D] + feedback d[n - D] (the `delay` stage):
    H = (1 - mix) + mix z^-D / (1 - feedback z^-D)."""

    delay: int
    feedback: float
    mix: float

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(-1j * w * self.delay)
        den = 1.0 - self.feedback * e
        h = (1.0 - self.mix) + self.mix * e / den
        dh = self.mix * (-1j * self.delay * e) / (den * den)
        return h, dh

    def apply(self, x: np.ndarray) -> np.ndarray:
        d = np.zeros_like(x)
        step = self.delay
        for start in range(step, x.size, step):  # one block of D samples per echo
            stop = min(start + step, x.size)
            d[start:stop] = (
                x[start - step : stop - step] + self.feedback * d[start - step : stop - step]
            )
        return (1.0 - self.mix) * x + self.mix * d

    def decay_samples(self) -> int:
        fb = abs(self.feedback)
        if fb == 0:
            repeats = 1
        elif fb < 1:
            repeats = math.ceil(math.log(1e-5) / math.log(fb)) + 1
        else:
            repeats = 64
        return self.delay * repeats + 1


@dataclass
class Cascade(Element):
    parts: list[Element]

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.ones(w.shape, dtype=np.complex128)
        dh = np.zeros(w.shape, dtype=np.complex128)
        for part in self.parts:
            hp, dhp = part.response(w)
            dh = dh * hp + h * dhp
            h = h * hp
        return h, dh

    def apply(self, x: np.ndarray) -> np.ndarray:
        for part in self.parts:
            x = part.apply(x)
        return x

    @property
    def latency(self) -> int:
        return sum(p.latency for p in self.parts)

    def decay_samples(self) -> int:
        return sum(p.decay_samples() for p in self.parts) if self.parts else 1


@dataclass
class Sum(Element):
    """Parallel branches on the same input, weighted and summed."""

    parts: list[Element]
    weights: list[float]

    def response(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.zeros(w.shape, dtype=np.complex128)
        dh = np.zeros(w.shape, dtype=np.complex128)
        for weight, part in zip(self.weights, self.parts, strict=True):
            hp, dhp = part.response(w)
            h = h + weight * hp
            dh = dh + weight * dhp
        return h, dh

    def apply(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        for weight, part in zip(self.weights, self.parts, strict=True):
            out += weight * part.apply(x)
        return out

    @property
    def latency(self) -> int:
        return max((p.latency for p in self.parts), default=0)

    def decay_samples(self) -> int:
        return max((p.decay_samples() for p in self.parts), default=1)


def group_delay_samples(h: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """-d(phase)/dw = -Im(H'/H) in samples; NaN where |H| is (numerically) zero."""
    tiny = np.abs(h) <= 1e-12 * max(float(np.max(np.abs(h), initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = -np.imag(dh / h)
    tau[tiny] = np.nan
    return tau


def unwrap_phase(h: np.ndarray, tau: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Unwrapped phase (radians) on any frequency grid, even a sparse log-spaced one.

    Between neighbouring points the phase step is taken as the wrapped step plus the multiple of
    2 pi closest to -tau * dw (the step the exact group delay predicts), so a long delay does not
    fool the unwrapping where plain `np.unwrap` would need a grid far denser than the plot's.
    A sign change of the response (a zero on the unit circle, as in an FIR's stop band) is a
    step of about pi either way; it is always taken downwards (-pi), so the phases of a cascade's
    parts add up to the phase of the whole.
    """
    phase = np.angle(h)
    if h.size < 2:
        return phase
    raw = np.angle(h[1:] / np.where(h[:-1] == 0, 1, h[:-1]))
    mid_tau = 0.5 * (tau[1:] + tau[:-1])
    expected = np.where(np.isfinite(mid_tau), -mid_tau * np.diff(w), raw)
    ratio = (expected - raw) / (2 * np.pi)
    turns = np.round(ratio)
    tie = np.abs(ratio - turns) > 0.4  # a jump of about pi: take it downwards
    turns = np.where(tie, np.floor(ratio), turns)
    return phase[0] + np.concatenate([[0.0], np.cumsum(raw + 2 * np.pi * turns)])
