"""Static input/output level curves of dynamics stages (steady-state, after attack/release).

Computed from the stage parameters by the textbook formulas the dynamics stages document:

- compressor, soft knee of width W dB around threshold T, ratio R, make-up gain M
  (Giannoulis, Massberg & Reiss, JAES 2012):
  y = x                                   when 2 (x - T) < -W
  y = x + (1/R - 1) (x - T + W/2)^2 / (2W) when |2 (x - T)| <= W
  y = T + (x - T) / R                     when 2 (x - T) > W;  then y + M.
- limiter with ceiling C: y = min(x, C).
- gate with threshold T and range G (maximum attenuation): y = x above T; below T the level is
  lowered by G (y = x - G), or, when the gate declares a `ratio`, expanded downwards
  (y = T + (x - T) * ratio, never below x - G).

Torch-free; a stage whose parameters are not all there is simply not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LEVELS_DB = np.linspace(-90.0, 6.0, 481)


@dataclass
class StaticCurve:
    """Output level (dB) against input level (dB) for a dynamics stage."""

    name: str
    label: str
    input_db: np.ndarray
    output_db: np.ndarray


def compressor_curve(
    x_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float = 0.0, makeup_db: float = 0
) -> np.ndarray:
    """Static compressor curve (soft knee of width `knee_db`, see the module docstring)."""
    x = np.asarray(x_db, dtype=np.float64)
    over = x - threshold_db
    y = np.where(over > 0, threshold_db + over / ratio, x)
    if knee_db > 0:
        inside = np.abs(2 * over) <= knee_db
        knee = x + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db)
        y = np.where(inside, knee, np.where(2 * over < -knee_db, x, y))
    return y + makeup_db


def limiter_curve(x_db: np.ndarray, ceiling_db: float) -> np.ndarray:
    """Ideal limiter: nothing above the ceiling."""
    return np.minimum(np.asarray(x_db, dtype=np.float64), ceiling_db)


def gate_curve(
    x_db: np.ndarray, threshold_db: float, range_db: float, ratio: float | None = None
) -> np.ndarray:
    """Gate / downward expander below the threshold, attenuation limited to `range_db`."""
    x = np.asarray(x_db, dtype=np.float64)
    floor = x - abs(range_db)
    if ratio is None:
        below = floor
    else:
        below = np.maximum(threshold_db + (x - threshold_db) * ratio, floor)
    return np.where(x >= threshold_db, x, below)


def _number(params: dict[str, Any], key: str) -> float | None:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def static_curve(
    name: str, params: dict[str, Any], label: str, levels_db: np.ndarray = LEVELS_DB
) -> StaticCurve | None:
    """The static curve of a `compressor`, `limiter` or `gate` stage, else None."""
    y = None
    if name == "compressor":
        threshold, ratio = _number(params, "threshold_db"), _number(params, "ratio")
        if threshold is not None and ratio:
            y = compressor_curve(
                levels_db,
                threshold,
                ratio,
                _number(params, "knee_db") or 0.0,
                _number(params, "makeup_db") or 0.0,
            )
    elif name == "limiter":
        ceiling = _number(params, "ceiling_db")
        if ceiling is not None:
            y = limiter_curve(levels_db, ceiling)
    elif name == "gate":
        threshold, depth = _number(params, "threshold_db"), _number(params, "range_db")
        if threshold is not None and depth is not None:
            y = gate_curve(levels_db, threshold, depth, _number(params, "ratio"))
    if y is None:
        return None
    return StaticCurve(name, label, np.asarray(levels_db, dtype=np.float64), y)
