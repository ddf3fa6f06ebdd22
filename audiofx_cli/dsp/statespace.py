"""State-space form of a second-order-section cascade (numpy, float64).

The state vector is scipy's `zi` for `sosfilt` flattened section by section, (z0, z1) of
section 0, then section 1, ...: so a state computed here means exactly what the recursive
engines carry, and the engines can be mixed chunk by chunk.

    z[n+1] = A z[n] + B x[n],    y[n] = C z[n] + D x[n]

Used by the time-parallel engines: the zero-input-response fix-up of time segments on the CPU
and the block state-space scan (`audiofx_cli.dsp.scan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class StateSpace:
    """(A, B, C, D) of a cascade; n = 2 * n_sections states."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: float

    @property
    def order(self) -> int:
        return self.A.shape[0]


def sos_state_space(sos: np.ndarray) -> StateSpace:
    """State-space matrices of a direct-form-II-transposed section cascade (a0 == 1).

    Example:
        >>> from scipy.signal import butter, sosfilt
        >>> sos = butter(4, 0.2, output="sos")
        >>> ss = sos_state_space(sos)
        >>> x = np.random.default_rng(0).standard_normal(50)
        >>> z, y = np.zeros(4), []
        >>> for v in x:
        ...     y.append(ss.C @ z + ss.D * v)
        ...     z = ss.A @ z + ss.B * v
        >>> bool(np.allclose(y, sosfilt(sos, x)))
        True
    """
    sos = np.asarray(sos, dtype=np.float64)
    n = 2 * sos.shape[0]
    A, B = np.zeros((n, n)), np.zeros(n)
    cu, du = np.zeros(n), 1.0  # the current section's input as (row over state, gain on x)
    for s, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        i = 2 * s
        cy = b0 * cu
        cy[i] += 1.0
        dy = b0 * du
        A[i] = b1 * cu - a1 * cy
        A[i, i + 1] += 1.0
        B[i] = b1 * du - a1 * dy
        A[i + 1] = b2 * cu - a2 * cy
        B[i + 1] = b2 * du - a2 * dy
        cu, du = cy, dy
    return StateSpace(A, B, cu, float(du))


@lru_cache(maxsize=64)
def _cached(sos_bytes: bytes, n_sections: int) -> StateSpace:
    return sos_state_space(np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6))


def state_space(sos: np.ndarray) -> StateSpace:
    """`sos_state_space`, cached by the coefficients' value."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    return _cached(sos.tobytes(), sos.shape[0])


@lru_cache(maxsize=256)
def _power(sos_bytes: bytes, n_sections: int, k: int) -> np.ndarray:
    return np.linalg.matrix_power(_cached(sos_bytes, n_sections).A, k)


def state_power(sos: np.ndarray, k: int) -> np.ndarray:
    """A**k (cached), the map from a state to the state k zero-input samples later."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    return _power(sos.tobytes(), sos.shape[0], int(k))


@lru_cache(maxsize=64)
def _decay(sos_bytes: bytes, n_sections: int, tolerance: float, limit: int) -> int | None:
    A = _cached(sos_bytes, n_sections).A
    step = 256
    P = np.linalg.matrix_power(A, step)
    M = np.eye(A.shape[0])
    peak = 1.0
    for k in range(step, limit + step, step):
        M = P @ M
        norm = float(np.linalg.norm(M, 2))
        peak = max(peak, norm)
        if norm * peak <= tolerance:
            return k
    return None


def decay_length(sos: np.ndarray, tolerance: float = 1e-17, limit: int = 1 << 22) -> int | None:
    """Samples after which any initial state has died out: ||A**k|| * growth <= tolerance.

    Returns None when that takes more than `limit` samples (poles extremely close to |z| = 1).
    """
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    return _decay(sos.tobytes(), sos.shape[0], tolerance, limit)
