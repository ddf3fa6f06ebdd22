"""Linear time-invariant operators as parts, and their exact fusion (numpy, torch-free).

A stage that is LTI describes itself (`Stage.linear_operator()`) as a list of parts applied in
order, each with the streaming meaning the stages have:

- `FIRPart(taps, latency)`: causal FIR; with latency L > 0 its first L outputs are dropped and
  L zeros are pushed through it at the end of the stream (a delay-compensated FIR stage).
- `SOSPart(sos)`: a second-order-section cascade from zero state.

`combine` merges a list of parts into as few as possible, exactly (in exact arithmetic) equal
to running them one after the other over any finite stream:

- causal parts (every SOS, every FIR with latency 0) commute and compose: between two
  compensated FIRs they become one FIR (the taps convolved) followed by one SOS cascade;
- a 1-tap causal FIR (a gain) commutes with everything, so all gains fold into one part;
- a compensated FIR is a barrier: the unfused chain drops its first L outputs before the next
  stage sees them and feeds the stage before it zeros at the end, so merging it with a filter
  before or after would change the first and last samples. It stays a part of its own.

`parallel` sums branches exactly when each branch reduces to one FIR (latencies aligned like
the `parallel` stage aligns its branches); branches holding IIR parts are left unfused (a sum of
cascades is not a cascade, and a common-denominator form would be ill-conditioned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class FIRPart:
    """Causal FIR with taps (float64); `latency` samples of delay compensation."""

    taps: np.ndarray
    latency: int = 0

    def describe(self) -> str:
        lat = f", latency {self.latency}" if self.latency else ""
        return f"fir[{self.taps.size} taps{lat}]"


@dataclass(frozen=True, eq=False)
class SOSPart:
    """Second-order sections (n_sections, 6), a0 == 1, float64."""

    sos: np.ndarray

    def describe(self) -> str:
        n = self.sos.shape[0]
        return f"sos[{n} section{'s' if n != 1 else ''}]"


Part = FIRPart | SOSPart


def _is_gain(part: Part) -> bool:
    return isinstance(part, FIRPart) and part.latency == 0 and part.taps.size == 1


def _segment(fir: np.ndarray | None, sos: list[np.ndarray]) -> list[Part]:
    out: list[Part] = []
    if fir is not None:
        out.append(FIRPart(fir, 0))
    if sos:
        out.append(SOSPart(np.concatenate(sos, axis=0)))
    return out


def combine(parts: Sequence[Part]) -> list[Part]:
    """Merge parts exactly (see the module docstring). An empty result is the identity.

    Example:
        >>> a = SOSPart(np.array([[1.0, 0.5, 0.0, 1.0, -0.5, 0.0]]))
        >>> [p.describe() for p in combine([a, FIRPart(np.array([2.0])), a])]
        ['sos[2 sections]']
    """
    gain = 1.0
    out: list[Part] = []
    fir: np.ndarray | None = None
    sos: list[np.ndarray] = []
    for part in parts:
        if _is_gain(part):
            gain *= float(part.taps[0])  # type: ignore[union-attr]
        elif isinstance(part, SOSPart):
            sos.append(np.asarray(part.sos, dtype=np.float64))
        elif part.latency == 0:
            taps = np.asarray(part.taps, dtype=np.float64)
            fir = taps if fir is None else np.convolve(fir, taps)
        else:
            out += _segment(fir, sos)
            fir, sos = None, []
            out.append(FIRPart(np.asarray(part.taps, dtype=np.float64), part.latency))
    out += _segment(fir, sos)
    if gain != 1.0:
        out = _fold_gain(out, gain)
    return out


def _fold_gain(parts: list[Part], gain: float) -> list[Part]:
    for i, part in enumerate(parts):
        if isinstance(part, FIRPart):
            parts[i] = FIRPart(part.taps * gain, part.latency)
            return parts
    for i, part in enumerate(parts):
        if isinstance(part, SOSPart):
            sos = part.sos.copy()
            sos[0, :3] *= gain
            parts[i] = SOSPart(sos)
            return parts
    return [FIRPart(np.array([gain]), 0)]


def parallel(branches: Sequence[Sequence[Part]], weights: Sequence[float]) -> list[Part] | None:
    """Weighted sum of branches as one FIR part, or None when a branch holds IIR parts.

    Branch outputs are aligned as the `parallel` stage aligns them: each branch's compensated
    output, so a branch with latency L_i enters the sum delayed by (max L - L_i).
    """
    firs: list[FIRPart] = []
    for branch in branches:
        merged = combine(branch)
        if not merged:
            merged = [FIRPart(np.array([1.0]), 0)]
        if len(merged) != 1 or not isinstance(merged[0], FIRPart):
            return None
        firs.append(merged[0])
    latency = max(p.latency for p in firs)
    length = max(latency - p.latency + p.taps.size for p in firs)
    taps = np.zeros(length)
    for part, weight in zip(firs, weights, strict=True):
        shift = latency - part.latency
        taps[shift : shift + part.taps.size] += weight * part.taps
    return [FIRPart(taps, latency)]
