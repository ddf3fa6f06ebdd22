"""Filter design in float64 with scipy.signal: IIR as second-order sections, RBJ biquads, firwin.

Every function returns numpy float64 arrays; the stages store them as buffers. IIR designs are
always second-order sections (never high-order b/a polynomials), normalised so a0 == 1.

Importing scipy.signal takes 0.9-1.4 s here, a quarter of what `audiofx process` costs per file
in a shell loop. So it is imported only when a design is computed, and scipy's designs
(`iir_sos`, `ba_to_sos`, `fir_taps`) are kept on disk beside the compiled kernels, keyed by
their arguments and the scipy and audiofx versions: the second file processed with a chain
loads them (RBJ biquads need no scipy at all). `AUDIOFX_CACHE_DIR` moves the cache; without a
writable folder every process designs afresh.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

_CACHE_VERSION = 2  # bump when a cached design function changes what it returns


def _signal() -> Any:
    from scipy import signal

    return signal


def _cached(name: str, args: tuple[Any, ...], design: Callable[[], np.ndarray]) -> np.ndarray:
    """`design()`, or its result from the disk cache (only successful designs are stored, so
    invalid arguments still raise scipy's error)."""
    import scipy

    from audiofx_cli._version import __version__
    from audiofx_cli.dsp.jit import cache_dir

    folder = cache_dir()
    key = repr((name, args, scipy.__version__, __version__, _CACHE_VERSION))
    path = None
    if folder is not None:
        path = folder.parent / "designs" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # absent (or damaged): design it again
            pass
    result = np.ascontiguousarray(design(), dtype=np.float64)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, result, allow_pickle=False)
            tmp.replace(path)
        except OSError:
            pass
    return result


Cutoff = float | tuple[float, float] | list[float]


def iir_sos(
    btype: str,
    cutoff_hz: Cutoff,
    sample_rate: float,
    order: int = 2,
    type: str = "butterworth",
    ripple_db: float = 1.0,
    attenuation_db: float = 40.0,
) -> np.ndarray:
    """Design an IIR filter as second-order sections.

    Args:
        btype: 'lowpass' | 'highpass' | 'bandpass' | 'bandstop'.
        cutoff_hz: corner frequency, or (low, high) for band types.
        sample_rate: in Hz.
        order: scipy's N (band types then have 2N poles); linkwitz_riley needs an even order
            and is the square of a Butterworth filter of order N/2 (-6 dB at the corner).
        type: butterworth | chebyshev1 | chebyshev2 | elliptic | bessel | linkwitz_riley.
        ripple_db: pass-band ripple (chebyshev1, elliptic).
        attenuation_db: stop-band attenuation (chebyshev2, elliptic).

    Returns:
        (n_sections, 6) float64 array [b0, b1, b2, 1, a1, a2] per row.

    Example:
        >>> iir_sos("lowpass", 1000, 48000, order=4).shape
        (2, 6)
    """
    wn = list(cutoff_hz) if isinstance(cutoff_hz, (list, tuple)) else float(cutoff_hz)
    fs = float(sample_rate)
    if type not in IIR_TYPES:
        raise ValueError(f"unknown IIR type {type!r}")
    if type == "linkwitz_riley" and order % 2:
        raise ValueError(f"linkwitz_riley needs an even order, got {order}")
    args = (btype, wn, fs, int(order), type, float(ripple_db), float(attenuation_db))
    return _cached(
        "iir_sos",
        args,
        lambda: _iir_sos(btype, wn, fs, order, type, ripple_db, attenuation_db),
    )


IIR_TYPES = ("butterworth", "chebyshev1", "chebyshev2", "elliptic", "bessel", "linkwitz_riley")


def _iir_sos(
    btype: str,
    wn: float | list[float],
    fs: float,
    order: int,
    type: str,
    ripple_db: float,
    attenuation_db: float,
) -> np.ndarray:
    signal = _signal()
    with np.errstate(all="ignore"):  # degenerate specifications: NaN, refused below
        if type == "butterworth":
            sos = signal.butter(order, wn, btype, fs=fs, output="sos")
        elif type == "chebyshev1":
            sos = signal.cheby1(order, ripple_db, wn, btype, fs=fs, output="sos")
        elif type == "chebyshev2":
            sos = signal.cheby2(order, attenuation_db, wn, btype, fs=fs, output="sos")
        elif type == "elliptic":
            sos = signal.ellip(order, ripple_db, attenuation_db, wn, btype, fs=fs, output="sos")
        elif type == "bessel":
            sos = signal.bessel(order, wn, btype, fs=fs, output="sos")
        else:  # linkwitz_riley (checked by iir_sos)
            half = signal.butter(order // 2, wn, btype, fs=fs, output="sos")
            sos = np.concatenate([half, half])
    if not np.all(np.isfinite(sos)):  # scipy returns NaN where the specification is degenerate
        raise ValueError(f"cannot design a {type} filter of order {order} with these parameters")
    return np.ascontiguousarray(sos, dtype=np.float64)


def rbj_biquad(
    kind: str, freq_hz: float, sample_rate: float, q: float = 0.7071, gain_db: float = 0.0
) -> np.ndarray:
    """One RBJ Audio EQ Cookbook biquad as a (1, 6) section normalised to a0 = 1.

    Args:
        kind: lowpass | highpass | peaking | lowshelf | highshelf | notch | allpass.
        freq_hz: f0 (centre, corner or shelf midpoint).
        sample_rate: in Hz.
        q: quality factor (for shelves the cookbook's Q form of the slope).
        gain_db: peak or shelf gain (peaking, lowshelf, highshelf).

    Example:
        >>> sos = rbj_biquad("peaking", 1000, 48000, q=1, gain_db=6)
        >>> float(np.round(20 * np.log10(abs(sos_response(sos, [1000], 48000)[0])), 6))
        6.0
    """
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2.0 * q)
    if kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "notch":
        b = [1.0, -2 * cw, 1.0]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "allpass":
        b = [1 - alpha, -2 * cw, 1 + alpha]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "peaking":
        b = [1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin]
    elif kind in ("lowshelf", "highshelf"):
        s = 2.0 * math.sqrt(a_lin) * alpha
        ap, am = a_lin + 1, a_lin - 1
        if kind == "lowshelf":
            b = [a_lin * (ap - am * cw + s), 2 * a_lin * (am - ap * cw), a_lin * (ap - am * cw - s)]
            a = [ap + am * cw + s, -2 * (am + ap * cw), ap + am * cw - s]
        else:
            b = [
                a_lin * (ap + am * cw + s),
                -2 * a_lin * (am + ap * cw),
                a_lin * (ap + am * cw - s),
            ]
            a = [ap - am * cw + s, 2 * (am - ap * cw), ap - am * cw - s]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    a0 = a[0]
    return np.array([[b[0] / a0, b[1] / a0, b[2] / a0, 1.0, a[1] / a0, a[2] / a0]])


def normalize_sos(sections: np.ndarray | list[list[float]]) -> np.ndarray:
    """Scale each section so a0 == 1."""
    sos = np.array(sections, dtype=np.float64, ndmin=2)
    if sos.shape[1] != 6:
        raise ValueError(f"sections must have 6 columns, got shape {sos.shape}")
    return sos / sos[:, 3:4]


BA_ZERO = 1e-14  # leading numerator coefficients this small (after a[0] = 1) count as 0


def _delay_sections(delay: int) -> list[list[float]]:
    """z^-delay as second-order sections."""
    sections = [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]] * (delay // 2)
    return sections + ([[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]] if delay % 2 else [])


def ba_to_sos(b: list[float], a: list[float]) -> np.ndarray:
    """Convert (b, a) polynomials in z^-1 (as `scipy.signal.lfilter` takes them) to second-order
    sections (through zeros and poles).

    Leading numerator coefficients of at most `BA_ZERO` (a[0] scaled to 1) are a delay and
    become delay sections: left to `tf2sos`, they would be dropped and the delay lost.
    """
    b_arr = np.asarray(b, dtype=np.float64)
    a_arr = np.asarray(a, dtype=np.float64)
    args = (tuple(b_arr.tolist()), tuple(a_arr.tolist()))

    def design() -> np.ndarray:
        num, den = b_arr / a_arr[0], a_arr / a_arr[0]
        small = np.abs(num) <= BA_ZERO
        if small.all():  # y = 0
            return np.array([[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
        delay = int(np.argmin(small))
        num = num[delay:]
        n = max(num.size, den.size)  # one length: the same polynomials in z
        sos = _signal().tf2sos(np.pad(num, (0, n - num.size)), np.pad(den, (0, n - den.size)))
        return normalize_sos([*_delay_sections(delay), *sos.tolist()])

    return _cached("ba_to_sos", args, design)


def fir_taps(
    pass_type: str,
    cutoff_hz: Cutoff,
    sample_rate: float,
    taps: int = 101,
    window: str = "hamming",
    kaiser_beta: float = 8.6,
) -> np.ndarray:
    """Design a linear-phase FIR filter with scipy.signal.firwin (float64 taps).

    Example:
        >>> fir_taps("lowpass", 1000, 44100, taps=101).shape
        (101,)
    """
    win: str | tuple[str, float] = ("kaiser", kaiser_beta) if window == "kaiser" else window
    cutoff = list(cutoff_hz) if isinstance(cutoff_hz, (list, tuple)) else float(cutoff_hz)
    fs = float(sample_rate)
    return _cached(
        "fir_taps",
        (pass_type, cutoff, fs, int(taps), win),
        lambda: _signal().firwin(taps, cutoff, window=win, pass_zero=pass_type, fs=fs),
    )


def window(spec: str | tuple[str, float], taps: int) -> np.ndarray:
    """The window firwin applies: scipy.signal.get_window(spec, taps, fftbins=False)."""
    return np.asarray(_signal().get_window(spec, taps, fftbins=False), dtype=np.float64)


def sos_response(sos: np.ndarray, freqs_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """Complex frequency response of a section cascade at the given frequencies."""
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    return _signal().freqz_sos(sos, worN=freqs, fs=sample_rate)[1]
