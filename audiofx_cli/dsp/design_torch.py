"""Differentiable filter designs in torch, equal to `dsp.design` (scipy.signal, RBJ) in float64.

Learnable stages design their coefficients here on every forward pass, so gradients reach the
design parameters (frequencies, gains, q, firwin cutoffs). Every function takes floats or
tensors and returns float64 tensors; the arithmetic follows scipy's step for step (Butterworth:
buttap, lp2lp/lp2hp/lp2bp/lp2bs_zpk, bilinear_zpk, zpk2sos; FIR: firwin), so results agree
with scipy to rounding (tests: 1e-9). Discrete choices (which poles and zeros share a section,
the order of sections) are taken from the current values exactly as scipy takes them; they are
piecewise constant, so gradients are those of the design with that structure.

Raw coefficients stay stable through `stable_sections`: a section's denominator 1 + a1 z^-1 +
a2 z^-2 has its poles inside the unit circle exactly when (a1, a2) lies in the open triangle
|a2| < 1, |a1| < 1 + a2, and a2 = r tanh(v2), a1 = (1 + a2) r tanh(v1) maps the plane onto
(a margin r = 1 - 1e-6 inside) it: tanh rounds to exactly 1 past |v| = 19, the margin keeps
the poles strictly inside even then.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

Number = float | Tensor
F64 = torch.float64
C128 = torch.complex128


def as_f64(value: Number | list[float]) -> Tensor:
    """A float64 tensor (the same tensor, graph kept, when it already is one)."""
    if isinstance(value, Tensor):
        return value.to(F64)
    return torch.as_tensor(value, dtype=F64)


def db_to_gain(gain_db: Number) -> Tensor:
    """10 ** (gain_db / 20)."""
    return torch.pow(10.0, as_f64(gain_db) / 20.0)


# ----------------------------------------------------------------------------- RBJ biquads
RBJ_KINDS = ("lowpass", "highpass", "notch", "allpass", "peaking", "lowshelf", "highshelf")


def rbj_biquad(
    kind: str, freq_hz: Number, sample_rate: float, q: Number = 0.7071, gain_db: Number = 0.0
) -> Tensor:
    """`dsp.design.rbj_biquad` in torch: one (1, 6) section, a0 = 1.

    Example:
        >>> from audiofx_cli.dsp import design
        >>> ref = design.rbj_biquad("peaking", 1000, 48000, q=1.4, gain_db=6)
        >>> bool(np.allclose(rbj_biquad("peaking", 1000.0, 48000, 1.4, 6.0).numpy(), ref))
        True
    """
    a_lin = torch.pow(10.0, as_f64(gain_db) / 40.0)
    w0 = 2.0 * math.pi * as_f64(freq_hz) / sample_rate
    cw, sw = torch.cos(w0), torch.sin(w0)
    alpha = sw / (2.0 * as_f64(q))
    one = torch.ones((), dtype=F64)
    if kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "notch":
        b = [one, -2 * cw, one]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "allpass":
        b = [1 - alpha, -2 * cw, 1 + alpha]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "peaking":
        b = [1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin]
    elif kind in ("lowshelf", "highshelf"):
        s = 2.0 * torch.sqrt(a_lin) * alpha
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
    row = [b[0] / a0, b[1] / a0, b[2] / a0, one, a[1] / a0, a[2] / a0]
    return torch.stack(row).reshape(1, 6)


# ----------------------------------------------------------------------------- Butterworth
def butter_sos(
    btype: str, cutoff_hz: Number | list[Number], sample_rate: float, order: int
) -> Tensor:
    """scipy.signal.butter(order, cutoff_hz, btype, fs=sample_rate, output='sos') in torch.

    Args:
        btype: lowpass | highpass | bandpass | bandstop.
        cutoff_hz: corner, or (low, high) for band types (floats or tensors).
        sample_rate: in Hz.
        order: scipy's N.

    Example:
        >>> from scipy.signal import butter
        >>> ref = butter(3, [300, 3000], "bandpass", fs=16000, output="sos")
        >>> bool(np.allclose(butter_sos("bandpass", [300.0, 3000.0], 16000, 3).numpy(), ref))
        True
    """
    edges = [cutoff_hz] if not isinstance(cutoff_hz, (list, tuple)) else list(cutoff_hz)
    warped = [4.0 * torch.tan(math.pi * (as_f64(f) / (sample_rate / 2)) / 2.0) for f in edges]
    m = np.arange(-order + 1, order, 2, dtype=np.float64)
    proto = torch.from_numpy(-np.exp(1j * np.pi * m / (2 * order)))  # buttap's poles
    z = torch.zeros(0, dtype=C128)
    if btype == "lowpass":
        p, k = proto * warped[0], warped[0] ** order
    elif btype == "highpass":
        p = warped[0] / proto
        z = torch.zeros(order, dtype=C128)
        k = _real(1.0 / _prod(-proto))
    elif btype in ("bandpass", "bandstop"):
        bw, wo = warped[1] - warped[0], torch.sqrt(warped[0] * warped[1])
        if btype == "bandpass":
            base = proto * bw / 2
            z, k = torch.zeros(order, dtype=C128), bw**order
        else:
            base = (bw / 2) / proto
            centre = 1j * wo
            z = torch.cat([centre.expand(order), -centre.expand(order)])
            k = _real(1.0 / _prod(-proto))
        root = torch.sqrt(base**2 - wo**2)
        p = torch.cat([base + root, base - root])
    else:
        raise ValueError(f"unknown band type {btype!r}")
    z_d = torch.cat([(4.0 + z) / (4.0 - z), -torch.ones(p.shape[0] - z.shape[0], dtype=C128)])
    p_d = (4.0 + p) / (4.0 - p)
    k_d = k * _real(_prod(4.0 - z) / _prod(4.0 - p))
    return zpk2sos(z_d, p_d, k_d, _scipy_zpk(btype, edges, sample_rate, order))


def _scipy_zpk(
    btype: str, edges: list[Number], sample_rate: float, order: int
) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import butter

    wn = [float(as_f64(f).detach()) for f in edges]
    z, p, _ = butter(order, wn[0] if len(wn) == 1 else wn, btype, fs=sample_rate, output="zpk")
    return np.asarray(z, dtype=complex), np.asarray(p, dtype=complex)


def _prod(values: Tensor) -> Tensor:
    out = torch.ones((), dtype=C128)
    for v in values:
        out = out * v
    return out


def _real(value: Tensor) -> Tensor:
    return value.real if value.is_complex() else value


# ----------------------------------------------------------------------------- zpk2sos
_TOL = 100 * np.finfo(np.float64).eps


def _cplxreal(z: Tensor, zn: np.ndarray) -> tuple[Tensor, Tensor, np.ndarray]:
    """scipy's _cplxreal on values `z` whose numpy mirror `zn` takes the decisions: one of
    each conjugate pair (positive imaginary part, the pair averaged), then the real values, in
    scipy's order, as complex; and the same from the mirror."""
    if zn.size == 0:
        return z, zn
    order = np.lexsort((abs(zn.imag), zn.real))
    z, zn = z[torch.from_numpy(order)], zn[order]
    real = abs(zn.imag) <= _TOL * abs(zn)
    zr, zrn = z[torch.from_numpy(real)].real.to(C128), zn[real].real.astype(complex)
    if real.all():
        return zr, zrn
    rest, rn = z[torch.from_numpy(~real)], zn[~real]
    pos, neg = rn.imag > 0, rn.imag < 0
    zp, zm = rest[torch.from_numpy(pos)], rest[torch.from_numpy(neg)]
    zpn, zmn = rn[pos], rn[neg]
    if len(zpn) != len(zmn):
        raise ValueError("complex value with no matching conjugate")
    same = (np.diff(zpn.real) <= _TOL * abs(zpn[:-1])).astype(int)
    diffs = np.diff(np.concatenate(([0], same, [0])))
    perm_p, perm_m = np.arange(len(zpn)), np.arange(len(zmn))
    for start, stop in zip(np.nonzero(diffs > 0)[0], np.nonzero(diffs < 0)[0] + 1, strict=True):
        perm_p[start:stop] = start + np.lexsort([abs(zpn[start:stop].imag)])
        perm_m[start:stop] = start + np.lexsort([abs(zmn[start:stop].imag)])
    zp, zm = zp[torch.from_numpy(perm_p)], zm[torch.from_numpy(perm_m)]
    zpn, zmn = zpn[perm_p], zmn[perm_m]
    return torch.cat([(zp + zm.conj()) / 2, zr]), np.concatenate([(zpn + zmn.conj()) / 2, zrn])


def _mirror(values: Tensor, reference: np.ndarray | None) -> np.ndarray:
    """The numpy values that take zpk2sos's decisions: scipy's own (`reference`, matched to
    `values` one to one by nearness, so ties fall as they fall in scipy), else `values`."""
    own = values.detach().cpu().numpy().astype(complex)
    if reference is None or len(reference) != len(own):
        return own
    left = list(range(len(reference)))
    out = np.empty_like(own)
    for i, v in enumerate(own):
        j = left[int(np.argmin(np.abs(reference[left] - v)))]
        out[i] = reference[j]
        left.remove(j)
    return out


class _Pool:
    """Poles or zeros still to be placed: torch values and their numpy mirror for choices."""

    def __init__(self, values: Tensor, mirror: np.ndarray) -> None:
        self.items = list(values.unbind()) if values.numel() else []
        self.np = mirror.copy()

    def __len__(self) -> int:
        return len(self.items)

    def take(self, i: int) -> tuple[Tensor, complex]:
        value, mirror = self.items.pop(int(i)), complex(self.np[i])
        self.np = np.delete(self.np, i)
        return value, mirror

    def real_count(self) -> int:
        return int(np.isreal(self.np).sum())

    def nearest(self, to: complex, which: str) -> int:
        order = np.argsort(np.abs(self.np - to))
        if which == "any":
            return int(order[0])
        mask = np.isreal(self.np[order])
        if which == "complex":
            mask = ~mask
        return int(order[np.nonzero(mask)[0][0]])


def _poly(roots: list[Tensor]) -> list[Tensor]:
    if not roots:
        return [torch.ones((), dtype=F64)]
    if len(roots) == 1:
        return [torch.ones((), dtype=F64), -roots[0].real]
    r1, r2 = roots
    return [torch.ones((), dtype=F64), -(r1 + r2).real, (r1 * r2).real]


def _single(zeros: list[Tensor], poles: list[Tensor]) -> Tensor:
    zero = torch.zeros((), dtype=F64)
    b, a = _poly(zeros), _poly(poles)
    return torch.stack([zero] * (3 - len(b)) + b + [zero] * (3 - len(a)) + a)


def zpk2sos(
    z: Tensor,
    p: Tensor,
    k: Tensor,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> Tensor:
    """scipy.signal.zpk2sos(z, p, k) (digital, pairing 'nearest') in torch.

    Args:
        z, p: complex128 zeros and poles (conjugate pairs complete); k: real gain.
        reference: scipy's (z, p) for the same design: where poles tie (a band centred on
            fs / 4 has mirror-image poles), rounding decides scipy's order, so its values
            take the decisions here too.

    Returns:
        (n_sections, 6) float64, the gain in the first section, the poles nearest the unit
        circle last.
    """
    zero = torch.zeros(1, dtype=C128)
    zn, pn = (
        _mirror(v, None if reference is None else r)
        for v, r in zip((z, p), reference or (None, None), strict=True)
    )
    if z.numel() == p.numel() == 0:
        return torch.stack([as_f64(k), *torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0], dtype=F64)])[None]
    p_pad, z_pad = max(z.numel() - p.numel(), 0), max(p.numel() - z.numel(), 0)
    p, pn = torch.cat([p, zero.expand(p_pad)]), np.concatenate([pn, np.zeros(p_pad)])
    z, zn = torch.cat([z, zero.expand(z_pad)]), np.concatenate([zn, np.zeros(z_pad)])
    n_sections = (max(p.numel(), z.numel()) + 1) // 2
    if p.numel() % 2 == 1:
        p, z = torch.cat([p, zero]), torch.cat([z, zero])
        pn, zn = np.append(pn, 0.0), np.append(zn, 0.0)
    zs = _Pool(*_cplxreal(z, zn))
    ps = _Pool(*_cplxreal(p, pn))
    sections: list[Tensor] = [torch.empty(0)] * n_sections
    for si in range(n_sections - 1, -1, -1):
        p1, p1n = ps.take(int(np.argmin(np.abs(1 - np.abs(ps.np)))))
        if np.isreal(p1n) and ps.real_count() == 0:  # the last real pole
            z1, _ = zs.take(zs.nearest(p1n, "real"))
            sections[si] = _single([z1, zero[0]], [p1, zero[0]])
        elif (
            len(ps) + 1 == len(zs)
            and not np.isreal(p1n)
            and ps.real_count() == 1
            and zs.real_count() == 1
        ):  # one real pole and zero left: this pair must take a complex zero
            z1, _ = zs.take(zs.nearest(p1n, "complex"))
            sections[si] = _single([z1, z1.conj()], [p1, p1.conj()])
        else:
            if np.isreal(p1n):
                reals = np.flatnonzero(np.isreal(ps.np))
                p2, _ = ps.take(int(reals[np.argmin(np.abs(1 - np.abs(ps.np[reals])))]))
            else:
                p2 = p1.conj()
            if not len(zs):
                sections[si] = _single([], [p1, p2])
                continue
            z1, z1n = zs.take(zs.nearest(p1n, "any"))
            if not np.isreal(z1n):
                sections[si] = _single([z1, z1.conj()], [p1, p2])
            elif len(zs):
                z2, _ = zs.take(zs.nearest(p1n, "real"))
                sections[si] = _single([z1, z2], [p1, p2])
            else:
                sections[si] = _single([z1], [p1, p2])
    first = torch.cat([sections[0][:3] * as_f64(k), sections[0][3:]])
    return torch.stack([first, *sections[1:]])


# ----------------------------------------------------------------------------- FIR
def firwin(
    numtaps: int,
    cutoff_hz: Number | list[Number],
    sample_rate: float,
    pass_type: str,
    window: Tensor,
) -> Tensor:
    """scipy.signal.firwin(numtaps, cutoff_hz, window=..., pass_zero=pass_type, fs=...) in
    torch, with the window given as values (`scipy.signal.get_window(w, numtaps,
    fftbins=False)`: it does not depend on the cutoff).

    Example:
        >>> from scipy.signal import firwin as ref, get_window
        >>> win = torch.from_numpy(get_window("hamming", 31, fftbins=False))
        >>> taps = firwin(31, 1000.0, 16000, "lowpass", win)
        >>> bool(np.allclose(taps.numpy(), ref(31, 1000, fs=16000)))
        True
    """
    edges = [cutoff_hz] if not isinstance(cutoff_hz, (list, tuple)) else list(cutoff_hz)
    nyq = sample_rate / 2
    pass_zero = pass_type in ("lowpass", "bandstop")
    pass_nyquist = (len(edges) % 2 == 0) == pass_zero
    bands = [as_f64(f) / nyq for f in edges]
    if pass_zero:
        bands = [torch.zeros((), dtype=F64), *bands]
    if pass_nyquist:
        bands = [*bands, torch.ones((), dtype=F64)]
    m = torch.arange(numtaps, dtype=F64) - 0.5 * (numtaps - 1)
    h = torch.zeros(numtaps, dtype=F64)
    for left, right in zip(bands[0::2], bands[1::2], strict=True):
        h = h + right * _sinc(right * m) - left * _sinc(left * m)
    h = h * window.to(F64)
    if pass_zero:
        scale = torch.zeros((), dtype=F64)
    elif len(bands) == 2 and pass_nyquist:
        scale = torch.ones((), dtype=F64)
    else:
        scale = 0.5 * (bands[0] + bands[1])
    return h / torch.sum(h * torch.cos(math.pi * m * scale))


def _sinc(x: Tensor) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0, twice differentiable there too (torch.sinc's second
    derivative at 0 is NaN)."""
    zero = x == 0
    safe = torch.where(zero, torch.ones_like(x), x)
    return torch.where(zero, torch.ones_like(x), torch.sin(math.pi * safe) / (math.pi * safe))


# ----------------------------------------------------------------------------- raw sections
STABLE_MARGIN = 1 - 1e-6


def stable_sections(numerators: Tensor, coords: Tensor) -> Tensor:
    """(n, 6) sections from numerators (n, 3) and denominator coordinates (n, 2): any real
    coordinates give poles strictly inside the unit circle (see the module docstring)."""
    a2 = STABLE_MARGIN * torch.tanh(coords[:, 1])
    a1 = (1 + a2) * STABLE_MARGIN * torch.tanh(coords[:, 0])
    ones = torch.ones_like(a1)
    return torch.cat([numerators, torch.stack([ones, a1, a2], 1)], 1)


def section_coords(sos: np.ndarray) -> np.ndarray:
    """Inverse of `stable_sections` for the denominators of stable sections (a0 = 1): (n, 2).

    Raises:
        ValueError: a section too close to instability (inside the margin) to be learnt.
    """
    a1, a2 = sos[:, 4], sos[:, 5]
    with np.errstate(all="ignore"):
        coords = np.stack(
            [np.arctanh(a1 / (1 + a2) / STABLE_MARGIN), np.arctanh(a2 / STABLE_MARGIN)], 1
        )
    if not np.all(np.isfinite(coords)):
        raise ValueError("a section's poles are within 1e-6 of the unit circle: too close to learn")
    return coords


def poly_product(rows: Tensor) -> Tensor:
    """The product of the polynomials in z^-1 given by the rows of (n, m) coefficients,
    prod_i (rows[i, 0] + rows[i, 1] z^-1 + ...): n * (m - 1) + 1 coefficients."""
    out = rows[0]
    for row in rows[1:]:
        out = torch.nn.functional.conv1d(
            torch.nn.functional.pad(out, (row.numel() - 1, row.numel() - 1))[None, None],
            row.flip(0)[None, None],
        )[0, 0]
    return out
