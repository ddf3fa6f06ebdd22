"""Exact gradients of a section cascade for its input, its coefficients and its initial state.

Adjoint method. One section (a0 = 1, DF2T state zi = (z0, z1)) is, with x and y zero before
n = 0, the all-pole filter 1/A of u = B x + e, where e injects the state: e[0] = z0,
e[1] = z1. With g = dL/dy, the adjoint of the all-pole part is the same recursion run
backwards in time:

    gu[n] = g[n] - a1 gu[n+1] - a2 gu[n+2]                      (time-reversed filtering)
    dL/db_k = sum_n gu[n] x[n-k]      dL/da_k = -sum_n gu[n] y[n-k]
    dL/dx[n] = b0 gu[n] + b1 gu[n+1] + b2 gu[n+2]               dL/dzi = (gu[0], gu[1])

A gradient for the final state zf = (gz0, gz1) enters as gu[N] = gz0, gu[N+1] = gz1 (the
continuation of the recursion past the last sample) plus zf's direct dependence on the last
two samples. The cascade's backward pass walks the sections from last to first, feeding each
section's dL/dx to the one before; the forward pass keeps every section's output (float64,
(n_sections + 1) x the signal) for the sums.

Engines: on CPU both passes are compiled loops (numba) over rows spread on threads, four rows
interleaved (each row's recursion is a latency-bound chain of multiply-adds: four independent
chains overlap, 1.9x per sample measured), the forward one call for all sections, the backward
one pass per section over reversed time with every sum accumulated on the way. On other
devices (or with engine 'scan' / 'scipy') the forward pass runs section by section on
`dsp.iir`'s engines and the backward pass is the same arithmetic in torch ops, its reversed
all-pole filter on the scan engine. Everything is float64; gradients
come back in the dtypes of the inputs. Once differentiable (no double backward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit
from torch import Tensor
from torch.autograd.function import once_differentiable

from audiofx_cli import memory
from audiofx_cli.dsp.prefilter import run_rows

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _finish(g, x, y, c, gu1, gu2, gz, acc, gzi):  # pragma: no cover - compiled
    """One row's section: the first two samples (x, y zero before them), the final state's
    direct terms, and dL/dzi; the loop over samples 2..N-1 has left gu[2], gu[3] in gu1, gu2."""
    n = g.shape[0]
    b0, b1, b2, a1, a2 = c[0], c[1], c[2], c[3], c[4]
    if n >= 1:  # zf's direct dependence on the last two samples
        acc[1] += gz[0] * x[n - 1]
        acc[2] += gz[1] * x[n - 1]
        acc[3] += gz[0] * y[n - 1]
        acc[4] += gz[1] * y[n - 1]
    if n >= 2:
        acc[2] += gz[0] * x[n - 2]
        acc[4] += gz[0] * y[n - 2]
    for t in range(min(n - 1, 1), -1, -1):
        gu = g[t] - a1 * gu1 - a2 * gu2
        acc[0] += gu * x[t]
        if t == 1:
            acc[1] += gu * x[0]
            acc[3] += gu * y[0]
        g[t] = b0 * gu + b1 * gu1 + b2 * gu2
        gu2 = gu1
        gu1 = gu
    gzi[0] = gu1
    gzi[1] = gu2


@njit(**_JIT)
def _cascade_adjoint(sig, coef, gz, gx, acc, gzi, r0, r1):  # pragma: no cover - compiled
    """Backward pass of the cascade for rows [r0, r1), section by section from the last.

    sig: (S + 1, rows, N) section inputs and the output; coef: (S, 5) b0, b1, b2, a1, a2;
    gz: (S, rows, 2) dL/dzf; gx: (rows, N) dL/dy on entry, dL/dx on return (updated in place,
    one section at a time); acc: (rows, S, 5) per-row sums for b0, b1, b2, -a1, -a2; gzi:
    (S, rows, 2) dL/dzi. Rows go 4 at a time through one loop: each row's recursion is a
    chain of dependent multiply-adds (latency-bound), 4 independent chains overlap.
    """
    n = gx.shape[1]
    r = r0
    while r + 4 <= r1:
        for s in range(coef.shape[0] - 1, -1, -1):
            b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
            g0, x0, y0 = gx[r + 0], sig[s, r + 0], sig[s + 1, r + 0]
            p0, q0 = gz[s, r + 0, 0], gz[s, r + 0, 1]
            sb0_0 = sb1_0 = sb2_0 = sa1_0 = sa2_0 = 0.0
            g1, x1, y1 = gx[r + 1], sig[s, r + 1], sig[s + 1, r + 1]
            p1, q1 = gz[s, r + 1, 0], gz[s, r + 1, 1]
            sb0_1 = sb1_1 = sb2_1 = sa1_1 = sa2_1 = 0.0
            g2, x2, y2 = gx[r + 2], sig[s, r + 2], sig[s + 1, r + 2]
            p2, q2 = gz[s, r + 2, 0], gz[s, r + 2, 1]
            sb0_2 = sb1_2 = sb2_2 = sa1_2 = sa2_2 = 0.0
            g3, x3, y3 = gx[r + 3], sig[s, r + 3], sig[s + 1, r + 3]
            p3, q3 = gz[s, r + 3, 0], gz[s, r + 3, 1]
            sb0_3 = sb1_3 = sb2_3 = sa1_3 = sa2_3 = 0.0
            for t in range(n - 1, 1, -1):
                u0 = g0[t] - a1 * p0 - a2 * q0
                sb0_0 += u0 * x0[t]
                sb1_0 += u0 * x0[t - 1]
                sb2_0 += u0 * x0[t - 2]
                sa1_0 += u0 * y0[t - 1]
                sa2_0 += u0 * y0[t - 2]
                g0[t] = b0 * u0 + b1 * p0 + b2 * q0
                q0 = p0
                p0 = u0
                u1 = g1[t] - a1 * p1 - a2 * q1
                sb0_1 += u1 * x1[t]
                sb1_1 += u1 * x1[t - 1]
                sb2_1 += u1 * x1[t - 2]
                sa1_1 += u1 * y1[t - 1]
                sa2_1 += u1 * y1[t - 2]
                g1[t] = b0 * u1 + b1 * p1 + b2 * q1
                q1 = p1
                p1 = u1
                u2 = g2[t] - a1 * p2 - a2 * q2
                sb0_2 += u2 * x2[t]
                sb1_2 += u2 * x2[t - 1]
                sb2_2 += u2 * x2[t - 2]
                sa1_2 += u2 * y2[t - 1]
                sa2_2 += u2 * y2[t - 2]
                g2[t] = b0 * u2 + b1 * p2 + b2 * q2
                q2 = p2
                p2 = u2
                u3 = g3[t] - a1 * p3 - a2 * q3
                sb0_3 += u3 * x3[t]
                sb1_3 += u3 * x3[t - 1]
                sb2_3 += u3 * x3[t - 2]
                sa1_3 += u3 * y3[t - 1]
                sa2_3 += u3 * y3[t - 2]
                g3[t] = b0 * u3 + b1 * p3 + b2 * q3
                q3 = p3
                p3 = u3
            _finish(g0, x0, y0, coef[s], p0, q0, gz[s, r + 0], acc[r + 0, s], gzi[s, r + 0])
            acc[r + 0, s, 0] += sb0_0
            acc[r + 0, s, 1] += sb1_0
            acc[r + 0, s, 2] += sb2_0
            acc[r + 0, s, 3] += sa1_0
            acc[r + 0, s, 4] += sa2_0
            _finish(g1, x1, y1, coef[s], p1, q1, gz[s, r + 1], acc[r + 1, s], gzi[s, r + 1])
            acc[r + 1, s, 0] += sb0_1
            acc[r + 1, s, 1] += sb1_1
            acc[r + 1, s, 2] += sb2_1
            acc[r + 1, s, 3] += sa1_1
            acc[r + 1, s, 4] += sa2_1
            _finish(g2, x2, y2, coef[s], p2, q2, gz[s, r + 2], acc[r + 2, s], gzi[s, r + 2])
            acc[r + 2, s, 0] += sb0_2
            acc[r + 2, s, 1] += sb1_2
            acc[r + 2, s, 2] += sb2_2
            acc[r + 2, s, 3] += sa1_2
            acc[r + 2, s, 4] += sa2_2
            _finish(g3, x3, y3, coef[s], p3, q3, gz[s, r + 3], acc[r + 3, s], gzi[s, r + 3])
            acc[r + 3, s, 0] += sb0_3
            acc[r + 3, s, 1] += sb1_3
            acc[r + 3, s, 2] += sb2_3
            acc[r + 3, s, 3] += sa1_3
            acc[r + 3, s, 4] += sa2_3
        r += 4
    for row in range(r, r1):  # the rows left over
        for s in range(coef.shape[0] - 1, -1, -1):
            b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
            g, x, y = gx[row], sig[s, row], sig[s + 1, row]
            p, q = gz[s, row, 0], gz[s, row, 1]
            sb0 = sb1 = sb2 = sa1 = sa2 = 0.0
            for t in range(n - 1, 1, -1):
                u = g[t] - a1 * p - a2 * q
                sb0 += u * x[t]
                sb1 += u * x[t - 1]
                sb2 += u * x[t - 2]
                sa1 += u * y[t - 1]
                sa2 += u * y[t - 2]
                g[t] = b0 * u + b1 * p + b2 * q
                q = p
                p = u
            _finish(g, x, y, coef[s], p, q, gz[s, row], acc[row, s], gzi[s, row])
            acc[row, s, 0] += sb0
            acc[row, s, 1] += sb1
            acc[row, s, 2] += sb2
            acc[row, s, 3] += sa1
            acc[row, s, 4] += sa2


@njit(**_JIT)
def _cascade_forward(sig, coef, zi, zf, r0, r1):  # pragma: no cover - compiled
    """Forward pass for rows [r0, r1): sig[s + 1] = section s of sig[s] (DF2T, state zi in,
    zf out; coef rows b0, b1, b2, a1, a2), 4 rows interleaved as in `_cascade_adjoint`.
    One call for the whole cascade (the lanes engine would take a call per section, each with
    its own dispatch to threads: slower for the short signals of training steps)."""
    n = sig.shape[2]
    r = r0
    while r + 4 <= r1:
        for s in range(coef.shape[0]):
            b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
            x0, y0 = sig[s, r + 0], sig[s + 1, r + 0]
            p0, q0 = zi[s, r + 0, 0], zi[s, r + 0, 1]
            x1, y1 = sig[s, r + 1], sig[s + 1, r + 1]
            p1, q1 = zi[s, r + 1, 0], zi[s, r + 1, 1]
            x2, y2 = sig[s, r + 2], sig[s + 1, r + 2]
            p2, q2 = zi[s, r + 2, 0], zi[s, r + 2, 1]
            x3, y3 = sig[s, r + 3], sig[s + 1, r + 3]
            p3, q3 = zi[s, r + 3, 0], zi[s, r + 3, 1]
            for t in range(n):
                v0 = b0 * x0[t] + p0
                p0 = b1 * x0[t] - a1 * v0 + q0
                q0 = b2 * x0[t] - a2 * v0
                y0[t] = v0
                v1 = b0 * x1[t] + p1
                p1 = b1 * x1[t] - a1 * v1 + q1
                q1 = b2 * x1[t] - a2 * v1
                y1[t] = v1
                v2 = b0 * x2[t] + p2
                p2 = b1 * x2[t] - a1 * v2 + q2
                q2 = b2 * x2[t] - a2 * v2
                y2[t] = v2
                v3 = b0 * x3[t] + p3
                p3 = b1 * x3[t] - a1 * v3 + q3
                q3 = b2 * x3[t] - a2 * v3
                y3[t] = v3
            zf[s, r + 0, 0], zf[s, r + 0, 1] = p0, q0
            zf[s, r + 1, 0], zf[s, r + 1, 1] = p1, q1
            zf[s, r + 2, 0], zf[s, r + 2, 1] = p2, q2
            zf[s, r + 3, 0], zf[s, r + 3, 1] = p3, q3
        r += 4
    for row in range(r, r1):  # the rows left over
        for s in range(coef.shape[0]):
            b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
            x, y = sig[s, row], sig[s + 1, row]
            p, q = zi[s, row, 0], zi[s, row, 1]
            for t in range(n):
                v = b0 * x[t] + p
                p = b1 * x[t] - a1 * v + q
                q = b2 * x[t] - a2 * v
                y[t] = v
            zf[s, row, 0], zf[s, row, 1] = p, q


def _forward_cpu(sig: Tensor, sos64: Tensor, zi: Tensor | None) -> Tensor:
    n_sec, rows, n = sig.shape[0] - 1, sig.shape[1], sig.shape[2]
    coef = np.ascontiguousarray(sos64[:, [0, 1, 2, 4, 5]].numpy())
    state = np.zeros((n_sec, rows, 2)) if zi is None else np.ascontiguousarray(zi.numpy())
    zf = np.empty((n_sec, rows, 2))
    run_rows(_cascade_forward, rows, sig.numpy(), coef, state, zf, cost=rows * n * n_sec)
    return torch.from_numpy(zf)


def _backward_cpu(
    sig: Tensor, g: Tensor, coef: np.ndarray, gz: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    n_sec, rows, n = sig.shape[0] - 1, g.shape[0], g.shape[1]
    gx = memory.empty_array((rows, n), np.float64)  # dL/dy, turned into dL/dx in place
    np.copyto(gx, g.detach().numpy())
    acc = np.zeros((rows, n_sec, 5))
    gzi = np.empty((n_sec, rows, 2))
    args = (sig.numpy(), coef, gz.numpy(), gx, acc, gzi)
    run_rows(_cascade_adjoint, rows, *args, cost=rows * n * n_sec)
    return torch.from_numpy(gx), torch.from_numpy(acc.sum(0)), torch.from_numpy(gzi)


def _lag(a: Tensor, b: Tensor, k: int) -> Tensor:
    """sum over rows and n of a[n] b[n - k] (b zero before its start)."""
    n = a.shape[-1]
    return (a[:, k:] * b[:, : n - k]).sum() if k < n else a.new_zeros(())


def _backward_torch(
    sig: Tensor, g: Tensor, coef: np.ndarray, gz: Tensor, engine: str
) -> tuple[Tensor, Tensor, Tensor]:
    """The same arithmetic in torch ops (any device): the reversed all-pole filter runs on the
    engines of `dsp.iir`, the sums are reductions; the final-state gradient extends the
    signals by two samples (gu[N], gu[N + 1] as in the module docstring)."""
    from audiofx_cli.dsp.iir import _run

    n_sec, rows, n = sig.shape[0] - 1, g.shape[0], g.shape[1]
    acc = torch.zeros((n_sec, 5), dtype=torch.float64, device=g.device)
    gzi = torch.empty((n_sec, rows, 2), dtype=torch.float64, device=g.device)
    pad = g.new_zeros((rows, 2))
    for s in range(n_sec - 1, -1, -1):
        b0, b1, b2, a1, a2 = (float(c) for c in coef[s])
        z0, z1 = gz[s, :, 0:1], gz[s, :, 1:2]
        x_in, y_out = sig[s], sig[s + 1]
        ext_g = torch.cat([g, z0 + a1 * z1, z1], 1)
        allpole = torch.tensor([[1.0, 0.0, 0.0, 1.0, a1, a2]], dtype=torch.float64)
        gu = _run(allpole.to(g.device), ext_g.flip(-1).contiguous(), None, engine)[0].flip(-1)
        gu[:, n] = z0[:, 0]  # the continuation (exact, not re-derived through the recursion)
        gu[:, n + 1] = z1[:, 0]
        ext_x = torch.cat([x_in, pad], 1)
        ext_y = torch.cat([y_out, pad], 1)
        acc[s, 0] = _lag(gu, ext_x, 0)
        acc[s, 1] = _lag(gu, ext_x, 1)
        acc[s, 2] = _lag(gu, ext_x, 2)
        acc[s, 3] = _lag(gu, ext_y, 1)  # ext_y[N] = 0: zf1's explicit a1 term cancels it
        acc[s, 4] = _lag(gu, ext_y, 2)
        gzi[s] = gu[:, :2]
        g = b0 * gu[:, :n] + b1 * gu[:, 1 : n + 1] + b2 * gu[:, 2 : n + 2]
    return g, acc, gzi


class SOSAdjoint(torch.autograd.Function):
    """y, zf = cascade(x; sos, zi) with gradients for x, sos and zi (see the module docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, sos: Tensor, zi: Tensor | None, engine: str):  # type: ignore[override]
        from audiofx_cli.dsp.iir import _run

        ctx.set_materialize_grads(False)
        n_sec, lead, n = sos.shape[0], x.shape[:-1], x.shape[-1]
        sos64 = sos.detach().to(device=x.device, dtype=torch.float64)
        rows = x.detach().reshape(math.prod(lead), n)
        sig = memory.empty((n_sec + 1, rows.shape[0], n), torch.float64, x.device)  # huge pages,
        # recycled: first writes to fresh pages from the engine's threads cost more than the
        # filtering (see audiofx_cli.memory)
        zi_rows = None
        if zi is not None:
            zi_rows = zi.detach().to(device=x.device, dtype=torch.float64).reshape(n_sec, -1, 2)
        if x.device.type == "cpu" and engine in ("auto", "lanes") and x.dtype in _NUMPY:
            np.copyto(sig[0].numpy(), rows.numpy())  # numpy: one thread, no pool to wake
            zf = _forward_cpu(sig, sos64, zi_rows)
            y = torch.from_numpy(sig[n_sec].numpy().astype(_NUMPY[x.dtype]))  # a copy
        else:
            sig[0] = rows
            zfs = []
            for s in range(n_sec):
                state = None if zi_rows is None else zi_rows[s : s + 1]
                _, zf_s = _run(sos64[s : s + 1], sig[s], state, engine, out=sig[s + 1])
                zfs.append(zf_s)
            zf = None if zi_rows is None else torch.cat(zfs)
            y = sig[n_sec].to(x.dtype, copy=True)
        ctx.save_for_backward(sos64, sig)
        ctx.engine, ctx.x_dtype, ctx.lead, ctx.has_zi = engine, x.dtype, lead, zi is not None
        y = y.reshape(*lead, n)  # a copy, not a view of sig: y may outlive the graph or be
        # changed in place without touching what backward reads
        if zi is None:
            return y, None
        return y, zf.reshape(n_sec, *lead, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor | None, grad_zf: Tensor | None):  # type: ignore[override]
        sos64, sig = ctx.saved_tensors
        n_sec, rows, n = sig.shape[0] - 1, sig.shape[1], sig.shape[2]
        g = sig.new_zeros((rows, n)) if grad_y is None else grad_y.reshape(rows, n)
        gz = sig.new_zeros((n_sec, rows, 2))
        if grad_zf is not None:
            gz = grad_zf.to(torch.float64).reshape(n_sec, rows, 2).contiguous()
        coef = sos64[:, [0, 1, 2, 4, 5]].cpu().numpy()
        if sig.device.type == "cpu" and ctx.x_dtype in _NUMPY:
            gx, acc, gzi = _backward_cpu(sig, g, np.ascontiguousarray(coef), gz)
            gx = torch.from_numpy(gx.numpy().astype(_NUMPY[ctx.x_dtype], copy=False))
        else:
            g = g.to(torch.float64).contiguous()
            gx, acc, gzi = _backward_torch(sig, g, coef, gz, ctx.engine)
        grad_sos = torch.zeros_like(sos64)
        grad_sos[:, :3] = acc[:, :3]
        grad_sos[:, 4:] = -acc[:, 3:]
        grad_x = gx.reshape(*ctx.lead, n).to(ctx.x_dtype)
        grad_zi = gzi.reshape(n_sec, *ctx.lead, 2) if ctx.has_zi else None
        return grad_x, grad_sos, grad_zi, None


def sosfilt_adjoint(
    sos: Tensor, x: Tensor, zi: Tensor | None = None, engine: str = "auto"
) -> tuple[Tensor, Tensor | None]:
    """`dsp.iir.sosfilt` with gradients for `sos` and `zi` as well as `x` (a0 == 1 assumed;
    `sosfilt` divides by a0 first, differentiably)."""
    return SOSAdjoint.apply(x, sos, zi, engine)
