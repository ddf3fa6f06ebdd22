"""A chain as SoX effects, where SoX computes the same filters (for the loop suite's SoX row).

Only exact equivalents are mapped: the RBJ biquads SoX implements (`equalizer`, `bass`,
`treble`, `bandreject`, `allpass`, `lowpass -2`, `highpass -2`; tests/test_rbj.py checks them
against SoX to 1e-5), gain, and Butterworth high- and low-passes of even order, which are a
cascade of RBJ biquads at the same corner with Q_k = 1 / (2 cos((2k - 1) pi / (2 n))), the
bilinear transform of the analog prototype's pole pairs (scipy designs them the same way).
Anything else (odd orders, dc_remove's one-pole high-pass, FIRs, dynamics) has no exact SoX
twin, and `sox_effects` says which stage stops the mapping.

Example:
    >>> sox_effects([("highpass", {"cutoff_hz": 80.0, "order": 4, "type": "butterworth"})])
    ['highpass', '-2', '80', '0.541196q', 'highpass', '-2', '80', '1.30656q']
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class NoSoxEquivalent(ValueError):
    """A stage SoX cannot compute exactly; the message names it."""


def butterworth_qs(order: int) -> list[float]:
    """The Q of each biquad of an even-order Butterworth filter, lowest first."""
    return [
        1.0 / (2.0 * math.cos((2 * k - 1) * math.pi / (2 * order)))
        for k in range(1, order // 2 + 1)
    ]


def _stage_effects(name: str, params: dict[str, Any]) -> list[str]:
    q = f"{params.get('q', 0.7071):g}q"
    if name == "gain":
        return ["gain", f"{params['gain_db']:g}"]
    if name == "peaking":
        return ["equalizer", f"{params['freq_hz']:g}", q, f"{params['gain_db']:g}"]
    if name in ("lowshelf", "highshelf"):
        effect = "bass" if name == "lowshelf" else "treble"
        return [effect, f"{params['gain_db']:g}", f"{params['freq_hz']:g}", q]
    if name in ("notch", "allpass"):
        return ["bandreject" if name == "notch" else "allpass", f"{params['freq_hz']:g}", q]
    if name in ("biquad_lowpass", "biquad_highpass"):
        return [name.removeprefix("biquad_"), "-2", f"{params['freq_hz']:g}", q]
    if name in ("lowpass", "highpass") and params.get("type") == "butterworth":
        order = int(params["order"])
        if order % 2 == 0:
            effects = []
            for section_q in butterworth_qs(order):
                effects += [name, "-2", f"{params['cutoff_hz']:g}", f"{section_q:g}q"]
            return effects
    raise NoSoxEquivalent(f"stage '{name}' ({params}) has no exact SoX equivalent")


def sox_effects(stages: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """SoX effect arguments computing the same chain.

    Raises:
        NoSoxEquivalent: for the first stage SoX cannot compute exactly.
    """
    effects: list[str] = []
    for name, params in stages:
        effects += _stage_effects(name, params)
    return effects
