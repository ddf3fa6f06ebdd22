"""Compiled passes of the loudness and level measurements: K-weighted segment energies, true
peak, sample peak and sum of squares (LLVM IR built with `audiofx_cli.dsp.ir_loops`).

Each reads one row (a channel) of a chunk as it is (float32 or float64), computes in float64
and keeps only per-row state and a few sums: no signal-sized temporaries, so `normalize`'s
analysis pass and `audiofx info` cost the same per sample on a 10 s chunk or a whole file.
The Python functions take (batch, channels, frames) C-contiguous arrays.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from audiofx_cli.dsp.ir_loops import ELEMENT, I64, PTR, Kernel

BLOCK = 512  # frames per true-peak pass (its work arrays stay in L1)
LANES = 16  # interleaved partial maxima and sums of `peak_and_energy`


def _rows(x: np.ndarray) -> list[int]:
    """The address of every row of a C-contiguous (batch, channels, frames) array."""
    assert x.flags.c_contiguous, "the measurement kernels read C-contiguous rows"
    step = x.shape[-1] * x.itemsize
    return [x.ctypes.data + r * step for r in range(x.shape[0] * x.shape[1])]


# ------------------------------------------------------------------------------ K-weighting
PAIR = 2  # rows per K-weighting call: two independent recursions overlap in the processor


@cache
def _kweighting(dtype: str) -> Any:
    """kw(x0, x1, frames, sos, zi0, zi1, cuts, n_cuts, out0, out1): rows x0 and x1 each through
    the two sections (direct form II transposed, as scipy's sosfilt; sos rows b0 b1 b2 a0 a1
    a2; zi 2 x (z1, z2), updated) and the squared output summed per segment: out[j] = sum
    over [cuts[j - 1], cuts[j]) for j = 0 .. n_cuts (cuts[-1] read as 0; cuts[n_cuts] is the
    end of the row). Two rows per call: each row's recursion is a chain of dependent
    multiply-adds (about 8 cycles a sample), and two chains side by side take about as long
    as one (1.7x the throughput on stereo, measured)."""
    names = [("x0", PTR), ("x1", PTR), ("frames", I64), ("sos", PTR), ("zi0", PTR),
             ("zi1", PTR), ("cuts", PTR), ("n_cuts", I64), ("out0", PTR),
             ("out1", PTR)]  # fmt: skip
    k = Kernel("kweighting", names)
    ty = ELEMENT[dtype]
    coef = [[k.load("sos", k.i64(6 * s + j)) for j in (0, 1, 2, 4, 5)] for s in range(2)]
    rows = [(f"x{r}", f"zi{r}", f"out{r}") for r in range(PAIR)]
    z = [[k.var(k.load(zi, k.i64(j))) for j in range(4)] for _, zi, _ in rows]
    start = k.var(k.i64(0), I64)
    with k.loop(k.add(k.arg("n_cuts"), k.i64(1))) as j:
        stop = k.load("cuts", j, I64)
        totals = [k.var(k.f64(0.0)) for _ in rows]
        with k.loop(stop, start=start.get()) as t:
            for (x, _, _), state, total in zip(rows, z, totals, strict=True):
                v = k.load(x, t, ty)
                for s in range(2):
                    b0, b1, b2, a1, a2 = coef[s]
                    p, q = state[2 * s], state[2 * s + 1]
                    u = k.mad(b0, v, p.get())
                    p.set(k.fadd(k.fsub(k.fmul(b1, v), k.fmul(a1, u)), q.get()))
                    q.set(k.fsub(k.fmul(b2, v), k.fmul(a2, u)))
                    v = u
                total.set(k.mad(v, v, total.get()))
        for (_, _, out), total in zip(rows, totals, strict=True):
            k.store(total.get(), out, j)
        start.set(stop)
    for (_, zi, _), state in zip(rows, z, strict=True):
        for j in range(4):
            k.store(state[j].get(), zi, k.i64(j))
    return k.compile()


def kweighted_segments(
    x: np.ndarray, sos: np.ndarray, zi: np.ndarray, cuts: np.ndarray, out: np.ndarray
) -> None:
    """K-weight every row of x (state zi (rows, 2, 2), updated) and sum the squared output
    into segments: out[b, c, j] = sum over [cuts[j - 1], cuts[j]) of the chunk (cuts[-1] read
    as 0, the last bin runs to the chunk's end). cuts: ascending within [0, frames]; out:
    C-contiguous (batch, channels, len(cuts) + 1)."""
    x = np.ascontiguousarray(x)
    kernel = _kweighting(x.dtype.name)
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    ends = np.append(np.asarray(cuts, dtype=np.int64), x.shape[-1])
    bins = out.reshape(-1, out.shape[-1])  # a view: out is C-contiguous
    rows = _rows(x)
    spare_state, spare_out = np.zeros((2, 2)), np.empty(out.shape[-1])
    for r in range(0, len(rows), PAIR):
        # an odd last row runs beside a copy of itself whose results are dropped
        other = r + 1 if r + 1 < len(rows) else None
        kernel(rows[r], rows[other if other is not None else r], x.shape[-1], sos.ctypes.data,
               zi[r].ctypes.data, (zi[other] if other is not None else spare_state).ctypes.data,
               ends.ctypes.data, ends.size - 1, bins[r].ctypes.data,
               (bins[other] if other is not None else spare_out).ctypes.data)  # fmt: skip


# ------------------------------------------------------------------------------ true peak
@cache
def _true_peak(dtype: str, n_phases: int, taps: int) -> Any:
    """tp(x, frames, phases, history, peak): peak[0] raised to the largest |x| and |phase
    output| of one row; history (taps - 1 doubles, the last inputs) updated. The tap loops
    have a constant length (unrolled), the loop over a block's samples vectorises, and the
    maxima are kept per sample position (element-wise) and reduced once at the end: a running
    scalar maximum would be a dependency chain through every sample."""
    k = Kernel("true_peak", [("x", PTR), ("frames", I64), ("phases", PTR), ("history", PTR),
                             ("peak", PTR)])  # fmt: skip
    ty = ELEMENT[dtype]
    keep = taps - 1
    h = [[k.load("phases", k.i64(p * taps + j)) for j in range(taps)] for p in range(n_phases)]
    buf, top = k.array(keep + BLOCK), k.array(BLOCK)
    with k.loop(k.i64(keep)) as i:
        k.store(k.load("history", i), buf, i)
    with k.loop(k.i64(BLOCK)) as i:
        k.store(k.f64(0.0), top, i)
    frames = k.arg("frames")
    with k.loop(frames, step=BLOCK) as t0:
        n = k.imin(k.i64(BLOCK), k.sub(frames, t0))
        with k.loop(n) as i:
            v = k.load("x", k.add(t0, i), ty)
            k.store(v, buf, k.add(i, k.i64(keep)))
            k.store(k.fmax(k.load(top, i), k.fabs(v)), top, i)
        with k.loop(n) as i:
            window = [k.load(buf, k.add(i, k.i64(keep - j))) for j in range(taps)]
            best = k.load(top, i)
            for p in range(n_phases):
                acc = k.f64(0.0)
                for j in range(taps):
                    acc = k.mad(h[p][j], window[j], acc)
                best = k.fmax(best, k.fabs(acc))
            k.store(best, top, i)
        with k.loop(k.i64(keep)) as i:
            k.store(k.load(buf, k.add(n, i)), buf, i)
    with k.loop(k.i64(keep)) as i:
        k.store(k.load(buf, i), "history", i)
    peak = k.var(k.load("peak", k.i64(0)))
    with k.loop(k.i64(BLOCK)) as i:
        peak.set(k.fmax(peak.get(), k.load(top, i)))
    k.store(peak.get(), "peak", k.i64(0))
    return k.compile()


def true_peak(x: np.ndarray, phases: np.ndarray, history: np.ndarray, peaks: np.ndarray) -> None:
    """Raise peaks[b] to the largest |x| and |interpolated sample| of batch item b: each
    phase's FIR (phases (n_phases, taps)) over [history | x] per row; history (batch,
    channels, taps - 1) float64 holds the last inputs and is updated."""
    n_phases, taps = phases.shape
    x = np.ascontiguousarray(x)
    kernel = _true_peak(x.dtype.name, n_phases, taps)
    phases = np.ascontiguousarray(phases, dtype=np.float64)
    rows = history.reshape(-1, taps - 1)
    peak = np.zeros(1)
    channels = x.shape[1]
    for r, at in enumerate(_rows(x)):
        peak[0] = peaks[r // channels]
        kernel(at, x.shape[-1], phases.ctypes.data, rows[r].ctypes.data, peak.ctypes.data)
        peaks[r // channels] = peak[0]


# ------------------------------------------------------------------------------ peak, energy
@cache
def _peak_and_energy(dtype: str) -> Any:
    """pe(x, frames, out): out[0] raised to max |x|, out[1] += sum x^2 over one row, in LANES
    interleaved partial results so that the loop vectorises."""
    k = Kernel("peak_and_energy", [("x", PTR), ("frames", I64), ("out", PTR)])
    ty = ELEMENT[dtype]
    top, energy = k.array(LANES), k.array(LANES)
    with k.loop(k.i64(LANES)) as j:
        k.store(k.f64(0.0), top, j)
        k.store(k.f64(0.0), energy, j)
    frames = k.arg("frames")
    whole = k.sub(frames, k.b.srem(frames, k.i64(LANES)))
    with k.loop(whole, step=LANES) as t:
        for j in range(LANES):
            v = k.load("x", k.add(t, k.i64(j)), ty)
            jj = k.i64(j)
            k.store(k.fmax(k.load(top, jj), k.fabs(v)), top, jj)
            k.store(k.mad(v, v, k.load(energy, jj)), energy, jj)
    with k.loop(frames, start=whole) as t:
        v = k.load("x", t, ty)
        k.store(k.fmax(k.load(top, k.i64(0)), k.fabs(v)), top, k.i64(0))
        k.store(k.mad(v, v, k.load(energy, k.i64(0))), energy, k.i64(0))
    peak, total = k.var(k.load("out", k.i64(0))), k.var(k.f64(0.0))
    with k.loop(k.i64(LANES)) as j:
        peak.set(k.fmax(peak.get(), k.load(top, j)))
        total.set(k.fadd(total.get(), k.load(energy, j)))
    k.store(peak.get(), "out", k.i64(0))
    k.store(k.fadd(k.load("out", k.i64(1)), total.get()), "out", k.i64(1))
    return k.compile()


def peak_and_energy(x: np.ndarray, peaks: np.ndarray, sums: np.ndarray) -> None:
    """Raise peaks[b] to max |x| and add sum x^2 to sums[b], per batch item."""
    x = np.ascontiguousarray(x)
    kernel = _peak_and_energy(x.dtype.name)
    out = np.zeros(2)
    channels = x.shape[1]
    for r, at in enumerate(_rows(x)):
        b = r // channels
        out[:] = peaks[b], sums[b]
        kernel(at, x.shape[-1], out.ctypes.data)
        peaks[b], sums[b] = out
