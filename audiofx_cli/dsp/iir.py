"""IIR filtering of second-order-section cascades with explicit state (zi in, zf out).

Engines (`sosfilt(..., engine=)`), all exact to float64 rounding and all carrying scipy's `zi`
state (direct form II transposed per section), so they can be mixed chunk by chunk:

- "lanes" (CPU default): compiled SIMD kernel, channels and time segments as vector lanes,
  all sections in registers, lane groups on all cores (`audiofx_cli.dsp.iir_cpu`).
- "scan" (default on any non-CPU device): block state-space with an associative scan in torch
  ops, parallel over time and channels (`audiofx_cli.dsp.scan`).
- "scipy": scipy.signal.sosfilt, the fallback when no kernel can be compiled here.

The recursion runs in float64 whatever the signal dtype (coefficients near z = 1 need it). The
output has the input's dtype and device. Gradients flow to the input: the adjoint of a causal
LTI filter is the same filter run backwards in time. When the sections or the initial state need
gradients too, `audiofx_cli.dsp.iir_adjoint` runs the cascade section by section and gives
exact gradients for all three (the adjoint method; its backward pass is again time-reversed
filtering).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from audiofx_cli import memory

ENGINES = ("auto", "lanes", "scan", "scipy")


def sos_zeros_state(sos: Tensor, x: Tensor) -> Tensor:
    """Zero state for `sosfilt`: shape (n_sections, *x.shape[:-1], 2), float64, on x's device."""
    return torch.zeros((sos.shape[0], *x.shape[:-1], 2), dtype=torch.float64, device=x.device)


def _sosfilt_numpy(
    sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    from scipy import signal  # imported here: it costs about a second (see dsp.design)

    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if zi is None:
        return signal.sosfilt(sos, flat, axis=-1).reshape(x.shape), None
    y, zf = signal.sosfilt(sos, flat, axis=-1, zi=zi.reshape(sos.shape[0], -1, 2))
    return y.reshape(x.shape), zf.reshape(sos.shape[0], *lead, 2)


def choose_engine(x: Tensor, engine: str = "auto") -> str:
    """The engine `sosfilt` uses for `x` ('auto': lanes on CPU when compiled kernels work here,
    scan on other devices; AUDIOFX_IIR_ENGINE overrides 'auto')."""
    if engine == "auto":
        engine = os.environ.get("AUDIOFX_IIR_ENGINE", "auto")
    if engine not in ENGINES:
        raise ValueError(f"unknown IIR engine {engine!r} (use one of {', '.join(ENGINES)})")
    if engine != "auto":
        return engine
    if x.device.type != "cpu":
        return "scan"
    from audiofx_cli.dsp import iir_kernels

    return "lanes" if iir_kernels.available() else "scipy"


def _writable_rows(out: Tensor | None, x: Tensor) -> np.ndarray | None:
    """`out` as a (rows, frames) numpy view the kernel can write, or None."""
    if out is None or out.shape != x.shape or out.device.type != "cpu" or out.requires_grad:
        return None
    if out.dtype not in (torch.float32, torch.float64):
        return None
    rows = memory.rows_view(out)
    return None if rows is None else rows.detach().numpy()


def _run_lanes(
    sos: Tensor, x: Tensor, zi: Tensor | None, out: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    from audiofx_cli.dsp.iir_cpu import sosfilt_lanes

    lead, frames = x.shape[:-1], x.shape[-1]
    work = x.detach()
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    rows = work.reshape(-1, frames)
    if rows.stride(-1) != 1:
        rows = rows.contiguous()  # the kernel reads each row through its own pointer: any row
    rows = rows.numpy()  # stride works, so a chunk sliced from a longer signal is not copied
    sos_np = sos.detach().to("cpu", torch.float64).numpy()
    zi_np = (
        None if zi is None else zi.detach().to("cpu", torch.float64).reshape(sos.shape[0], -1, 2)
    )
    target = _writable_rows(out, x)
    y, zf = sosfilt_lanes(
        sos_np,
        rows,
        None if zi_np is None else zi_np.numpy(),
        y=target,
        threads=torch.get_num_threads(),
    )
    if target is not None:
        return out, None if zi is None else torch.from_numpy(zf).reshape(sos.shape[0], *lead, 2)
    y_t = torch.from_numpy(y).reshape(x.shape).to(dtype=x.dtype)
    zf_t = None if zi is None else torch.from_numpy(zf).reshape(sos.shape[0], *lead, 2)
    return y_t, zf_t


def _run(
    sos: Tensor, x: Tensor, zi: Tensor | None, engine: str = "auto", out: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    y, zf = _compute(sos, x, zi, engine, out)
    if out is not None and y is not out:
        out.copy_(y)
        y = out
    return y, zf


def _compute(
    sos: Tensor, x: Tensor, zi: Tensor | None, engine: str, out: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    if x.numel() == 0:
        return x.clone(), zi
    engine = choose_engine(x, engine)
    if engine == "scan":
        from audiofx_cli.dsp.scan import sosfilt_scan

        y, zf = sosfilt_scan(sos.detach(), x.detach(), None if zi is None else zi.detach())
        return y, None if zi is None else zf
    if engine == "lanes" and x.device.type == "cpu":
        return _run_lanes(sos, x, zi, out)
    sos_np = sos.detach().to("cpu", torch.float64).numpy()
    x_np = x.detach().to("cpu", torch.float64).numpy()
    zi_np = None if zi is None else zi.detach().to("cpu", torch.float64).numpy()
    y_np, zf_np = _sosfilt_numpy(sos_np, x_np, zi_np)
    y = torch.from_numpy(y_np).to(device=x.device, dtype=x.dtype)
    zf = None if zf_np is None else torch.from_numpy(zf_np).to(device=x.device)
    return y, zf


def _needs_grad(*tensors: Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


class _SOSFilt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sos: Tensor, zi: Tensor | None, engine: str):  # type: ignore[override]
        y, zf = _run(sos, x, zi, engine)
        ctx.engine = engine
        ctx.save_for_backward(sos)
        ctx.mark_non_differentiable(zf) if zf is not None else None
        return y, zf

    @staticmethod
    def backward(ctx, grad_y: Tensor, grad_zf: Tensor | None):  # type: ignore[override]
        (sos,) = ctx.saved_tensors
        grad_x, _ = _run(sos, grad_y.flip(-1).contiguous(), None, ctx.engine)
        return grad_x.flip(-1), None, None, None


def sosfilt(
    sos: Tensor,
    x: Tensor,
    zi: Tensor | None = None,
    engine: str = "auto",
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Filter `x` along its last axis with a cascade of second-order sections.

    Args:
        sos: (n_sections, 6) rows [b0, b1, b2, a0, a1, a2], a0 == 1 (float64 recommended).
        x: (..., time) signal, any float dtype and device.
        zi: state from `sos_zeros_state` or a previous call; None means zero state and no
            final state is returned.
            Gradients flow to x, and to sos and zi when they require them (then a0 is divided
            out differentiably and zf carries gradients too).
        engine: 'auto', 'lanes', 'scan' or 'scipy' (see the module docstring).
        out: a tensor of x's shape to write y into (the CPU kernel writes it directly, other
            engines copy); it may be x itself. Not for inputs that need gradients.

    Returns:
        (y, zf): y has x's shape, dtype and device (it is `out` when given); zf is the state
        after the last sample (float64), None when zi was None.

    Example:
        >>> from scipy.signal import butter
        >>> sos = torch.from_numpy(butter(2, 0.1, output="sos"))
        >>> x = torch.randn(2, 1000)
        >>> y1, z = sosfilt(sos, x[:, :300], sos_zeros_state(sos, x))
        >>> y2, _ = sosfilt(sos, x[:, 300:], z)
        >>> torch.allclose(torch.cat([y1, y2], -1), sosfilt(sos, x)[0], atol=1e-6)
        True
    """
    if torch.is_grad_enabled() and _needs_grad(sos, x, zi):
        if out is not None:
            raise ValueError("sosfilt: out= is not supported for inputs that need gradients")
        if sos.requires_grad or (zi is not None and zi.requires_grad):
            from audiofx_cli.dsp.iir_adjoint import sosfilt_adjoint

            return sosfilt_adjoint(sos / sos[:, 3:4], x, zi, engine)
        return _SOSFilt.apply(x, sos, zi, engine)
    return _run(sos, x, zi, engine, out)
