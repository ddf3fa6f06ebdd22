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

Engines: the forward pass runs section by section on `dsp.iir`'s engines (the lanes kernel on
CPU, the block scan elsewhere). The backward pass is one compiled pass per row over reversed
time, all sections pipelined (CPU, numba), or on other devices the same arithmetic in torch
ops with the reversed all-pole filter on the scan engine. Everything is float64; gradients
come back in the dtypes of the inputs. Once differentiable (no double backward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit
from torch import Tensor
from torch.autograd.function import once_differentiable

from audiofx_cli.dsp.prefilter import run_rows


@njit(cache=True, nogil=True, error_model="numpy")
def _cascade_adjoint(sig, coef, gz, gx, acc, gzi, r0, r1):  # pragma: no cover - compiled
    """Backward pass of the cascade for rows [r0, r1), section by section from the last.

    sig: (S + 1, rows, N) section inputs and the output; coef: (S, 5) b0, b1, b2, a1, a2;
    gz: (S, rows, 2) dL/dzf; gx: (rows, N) dL/dy on entry, dL/dx on return (updated in place,
    one section at a time); acc: (rows, S, 5) per-row sums for b0, b1, b2, -a1, -a2; gzi:
    (S, rows, 2) dL/dzi. The recursion state stays in registers (a state array costs a
    store-to-load round trip per sample on the critical path: 4x slower, measured).
    """
    n = gx.shape[1]
    for r in range(r0, r1):
        g = gx[r]
        for s in range(coef.shape[0] - 1, -1, -1):
            b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
            x, y = sig[s, r], sig[s + 1, r]
            gu1, gu2 = gz[s, r, 0], gz[s, r, 1]  # gu[N], gu[N + 1]: the final-state gradient
            sb0 = sb1 = sb2 = sa1 = sa2 = 0.0
            if n >= 1:  # zf's direct dependence on the last two samples
                sb1 += gu1 * x[n - 1]
                sb2 += gu2 * x[n - 1]
                sa1 += gu1 * y[n - 1]
                sa2 += gu2 * y[n - 1]
            if n >= 2:
                sb2 += gu1 * x[n - 2]
                sa2 += gu1 * y[n - 2]
            for t in range(n - 1, 1, -1):
                gu = g[t] - a1 * gu1 - a2 * gu2
                sb0 += gu * x[t]
                sb1 += gu * x[t - 1]
                sb2 += gu * x[t - 2]
                sa1 += gu * y[t - 1]
                sa2 += gu * y[t - 2]
                g[t] = b0 * gu + b1 * gu1 + b2 * gu2
                gu2 = gu1
                gu1 = gu
            for t in range(min(n - 1, 1), -1, -1):  # the first two samples: x, y zero before
                gu = g[t] - a1 * gu1 - a2 * gu2
                sb0 += gu * x[t]
                if t == 1:
                    sb1 += gu * x[0]
                    sa1 += gu * y[0]
                g[t] = b0 * gu + b1 * gu1 + b2 * gu2
                gu2 = gu1
                gu1 = gu
            acc[r, s, 0] += sb0
            acc[r, s, 1] += sb1
            acc[r, s, 2] += sb2
            acc[r, s, 3] += sa1
            acc[r, s, 4] += sa2
            gzi[s, r, 0] = gu1
            gzi[s, r, 1] = gu2


def _backward_cpu(
    sig: Tensor, g: Tensor, coef: np.ndarray, gz: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    n_sec, rows, n = sig.shape[0] - 1, g.shape[0], g.shape[1]
    gx = np.array(g.numpy())  # dL/dy, turned into dL/dx in place
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
        sig = torch.empty((n_sec + 1, rows.shape[0], n), dtype=torch.float64, device=x.device)
        sig[0] = rows
        zi_rows = None
        if zi is not None:
            zi_rows = zi.detach().to(device=x.device, dtype=torch.float64).reshape(n_sec, -1, 2)
        zfs = []
        for s in range(n_sec):
            state = None if zi_rows is None else zi_rows[s : s + 1]
            _, zf = _run(sos64[s : s + 1], sig[s], state, engine, out=sig[s + 1])
            zfs.append(zf)
        ctx.save_for_backward(sos64, sig)
        ctx.engine, ctx.x_dtype, ctx.lead, ctx.has_zi = engine, x.dtype, lead, zi is not None
        y = sig[n_sec].reshape(*lead, n).to(x.dtype)
        if zi is None:
            return y, None
        return y, torch.cat(zfs).reshape(n_sec, *lead, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor | None, grad_zf: Tensor | None):  # type: ignore[override]
        sos64, sig = ctx.saved_tensors
        n_sec, rows, n = sig.shape[0] - 1, sig.shape[1], sig.shape[2]
        g = sig.new_zeros((rows, n)) if grad_y is None else grad_y.reshape(rows, n)
        g = g.to(torch.float64).contiguous()
        gz = sig.new_zeros((n_sec, rows, 2))
        if grad_zf is not None:
            gz = grad_zf.to(torch.float64).reshape(n_sec, rows, 2).contiguous()
        coef = sos64[:, [0, 1, 2, 4, 5]].cpu().numpy()
        if sig.device.type == "cpu":
            gx, acc, gzi = _backward_cpu(sig, g, np.ascontiguousarray(coef), gz)
        else:
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
