"""Compiled kernels (numba) of the modulation effects: tremolo, the modulated delay line of
chorus and flanger, and the modulated all-pass cascade of the phaser.

Every kernel walks its rows in blocks of `BLOCK` samples: first the block's LFO values (and
what they drive: gains, delays, all-pass coefficients) in a loop without recursion, which LLVM
vectorises, then the per-sample recursion, reading the input and writing the output in the
signal's dtype (float32 or float64; arithmetic and state in float64). Memory per call is a few
blocks whatever the signal's length. Rows [r0, r1) so `prefilter.run_rows` can spread rows
over threads (`nogil`).

Transcendentals are polynomials, so the block loops vectorise (no libm calls):
- the LFO: sin(2 pi z) on |z| <= 1/4 as z P(z^2), P of degree 7 (a least-squares fit on
  Chebyshev nodes in 50-digit arithmetic); max error 4.4e-16 against numpy's sin over 400k
  points (`tests/test_modulation.py` checks 1e-15);
- the phaser: 2^r on |r| <= 1/2 by a degree-11 polynomial (max relative error 2.2e-16 against
  numpy's exp2), times 2^k from a table; tan(phi) on |phi| <= pi/4 as a ratio of two of the
  sine polynomials (a = tan(theta - pi/4) equals (tan theta - 1) / (tan theta + 1)).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

BLOCK = 256  # samples per block (the LFO buffers)
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
# sin(2 pi z) = z * sum_k SIN_COEFS[k] z^(2k) for |z| <= 1/4
SIN_COEFS = (
    6.283185307179586,
    -41.34170224039848,
    81.60524927560557,
    -76.70585969091816,
    42.058689979888925,
    -15.094506225693788,
    3.817362216946137,
    -0.6924758328832487,
)
# 2^r = sum_k EXP2_COEFS[k] r^k for |r| <= 1/2
EXP2_COEFS = (
    1.0,
    0.6931471805599453,
    0.24022650695910155,
    0.055504108664819855,
    0.009618129107588424,
    0.0013333558146805672,
    0.0001540353046241424,
    1.5252733475459238e-05,
    1.3215433135594994e-06,
    1.0178203873796574e-07,
    7.074098251730484e-09,
    4.4344267758808197e-10,
)
POW2_RANGE = 32  # 2^k = (1 << (k + 32)) * 2^-32, exact for k in [-32, 30] (phaser: |k| <= 10)
POW2 = np.array([2.0**-POW2_RANGE])


@njit(inline="always")
def sin_turns(z):  # type: ignore[no-untyped-def]
    """sin(2 pi z) for |z| <= 1/4 (module docstring)."""
    z2 = z * z
    p = SIN_COEFS[7]
    p = p * z2 + SIN_COEFS[6]
    p = p * z2 + SIN_COEFS[5]
    p = p * z2 + SIN_COEFS[4]
    p = p * z2 + SIN_COEFS[3]
    p = p * z2 + SIN_COEFS[2]
    p = p * z2 + SIN_COEFS[1]
    p = p * z2 + SIN_COEFS[0]
    return z * p


@njit(inline="always")
def exp2_poly(r):  # type: ignore[no-untyped-def]
    """2^r for |r| <= 1/2."""
    p = EXP2_COEFS[11]
    for k in range(10, -1, -1):
        p = p * r + EXP2_COEFS[k]
    return p


@njit(**_JIT)
def lfo_block(out, start, count, inc, offset, triangle):  # type: ignore[no-untyped-def]
    """out[j] = LFO at stream sample start + j, j < count: phase c = frac(n inc + offset);
    sine cos(2 pi c) (as sin(2 pi (|c - 1/2| - 1/4))), triangle 4 |c - 1/2| - 1."""
    for j in range(count):
        c = float(start + j) * inc + offset
        c -= np.floor(c)
        u = abs(c - 0.5)
        if triangle:
            out[j] = 4.0 * u - 1.0
        else:
            out[j] = sin_turns(u - 0.25)


@njit(**_JIT)
def lfo_blocks(out, start, count, inc, offsets, triangle):  # type: ignore[no-untyped-def]
    """out[q, j] = `lfo_block` of offsets.flat[q] (one row per LFO)."""
    flat = offsets.reshape(-1)
    for q in range(flat.shape[0]):
        lfo_block(out[q], start, count, inc, flat[q], triangle)


@njit(**_JIT)
def tremolo_rows(x, y, start, inc, offsets, triangle, depth, mix, r0, r1):  # type: ignore[no-untyped-def]
    """y = x ((1 - mix) + mix (1 - depth (1 - lfo) / 2)); row r uses offsets[r % len]."""
    n = x.shape[1]
    gains = np.empty((offsets.shape[0], BLOCK))
    for b in range(0, n, BLOCK):
        m = min(BLOCK, n - b)
        lfo_blocks(gains, start + b, m, inc, offsets, triangle)
        for q in range(gains.shape[0]):
            for j in range(m):
                gains[q, j] = (1.0 - mix) + mix * (1.0 - depth * (1.0 - gains[q, j]) / 2)
        for r in range(r0, r1):
            gain = gains[r % gains.shape[0]]
            xr, yr = x[r, b : b + m], y[r, b : b + m]  # 1-d views: these loops vectorise
            for j in range(m):
                yr[j] = xr[j] * gain[j]


@njit(**_JIT)
def chorus_rows(  # type: ignore[no-untyped-def]
    x, y, ring, start, inc, offsets, triangle, centre, depth, feedback, mix, r0, r1
):
    """Modulated delay line (`dsp.modulation.modulated_delay` documents the maths).

    ring: (rows, R) float64, R a power of two > the longest delay: w[i] at ring[i mod R].
    offsets: (channels, voices) LFO phase offsets; row r uses offsets[r % channels].

    A block is cut into sub-blocks no longer than its shortest delay minus one sample, so
    every read in a sub-block (both interpolation taps) lies before it: the reads of a
    sub-block run as one loop (gathers, vectorised), then its writes and outputs."""
    n = x.shape[1]
    channels, voices = offsets.shape
    mask = np.uint64(ring.shape[1] - 1)
    delays = np.empty((channels * voices, BLOCK))  # the LFOs, then ceil(delay)
    fracs = np.empty((channels * voices, BLOCK))  # ceil(delay) - delay
    wet = np.empty(BLOCK)
    for b in range(0, n, BLOCK):
        m = min(BLOCK, n - b)
        lfo_blocks(delays, start + b, m, inc, offsets, triangle)
        shortest = np.inf
        for q in range(delays.shape[0]):
            dq, fq = delays[q], fracs[q]
            for j in range(m):
                d = max(centre * (1.0 + depth * dq[j]), 1.0)
                shortest = min(shortest, d)
                whole = np.ceil(d)
                fq[j] = whole - d  # the read position i - d is i - whole + frac
                dq[j] = whole
        step = max(1, np.int64(np.ceil(shortest)) - 1)
        for r in range(r0, r1):
            line = ring[r]
            first = (r % channels) * voices
            xr, yr = x[r, b : b + m], y[r, b : b + m]
            for s in range(0, m, step):
                e = min(m, s + step)
                for v in range(voices):
                    dv, fv = delays[first + v], fracs[first + v]
                    for j in range(s, e):
                        k = np.uint64(start + b + j - np.int64(dv[j]))  # mod 2^64, then R
                        lo = line[k & mask]
                        hi = line[(k + np.uint64(1)) & mask]
                        frac = fv[j]
                        value = lo + frac * (hi - lo) if frac > 0.0 else lo
                        wet[j] = value if v == 0 else wet[j] + value
                for j in range(s, e):
                    total = wet[j] / voices if voices > 1 else wet[j]
                    xv = xr[j]
                    line[np.uint64(start + b + j) & mask] = xv + feedback * total
                    yr[j] = (1.0 - mix) * xv + mix * total


@njit(**_JIT)
def phaser_coefficients(out, count, span, theta):  # type: ignore[no-untyped-def]
    """out[j] (an LFO value on entry) -> the all-pass coefficient a = tan(phi - pi/4),
    phi = theta 2^(span lfo): -90 degrees at theta 2^(span lfo) radians per sample."""
    quarter = math.pi / 4.0
    for j in range(count):
        e = span * out[j]
        k = np.floor(e + 0.5)
        scale = float(np.int64(1) << (np.int64(k) + POW2_RANGE)) * POW2[0]  # 2^k, exact
        u = (theta * exp2_poly(e - k) * scale - quarter) / (2.0 * math.pi)
        out[j] = sin_turns(u) / sin_turns(0.25 - abs(u))


@njit(**_JIT)
def phaser_rows(  # type: ignore[no-untyped-def]
    x, y, memory, start, inc, offsets, triangle, span, theta, feedback, mix, r0, r1
):
    """All-pass cascade with per-sample coefficients (`dsp.modulation.allpass_cascade`
    documents the maths and `memory`); row r uses offsets[r % len]."""
    n = x.shape[1]
    stages = memory.shape[1] - 1
    coefs = np.empty((offsets.shape[0], BLOCK))
    for b in range(0, n, BLOCK):
        m = min(BLOCK, n - b)
        lfo_blocks(coefs, start + b, m, inc, offsets, triangle)
        for q in range(coefs.shape[0]):
            phaser_coefficients(coefs[q], m, span, theta)
        for r in range(r0, r1):
            z = memory[r]
            coef = coefs[r % coefs.shape[0]]
            xr, yr = x[r, b : b + m], y[r, b : b + m]
            for j in range(m):
                a = coef[j]
                xv = xr[j]
                value = xv
                if feedback != 0.0:  # (unswitched: without feedback no loop through stages)
                    value += feedback * z[stages]
                for k in range(stages):
                    out = a * value + z[k] - a * z[k + 1]
                    z[k] = value
                    value = out
                z[stages] = value
                yr[j] = (1.0 - mix) * xv + mix * value
