"""IIR filtering of second-order-section cascades with explicit state (zi in, zf out).

The recursion runs in float64 whatever the signal dtype (coefficients near z = 1 need it), on
the CPU through scipy.signal.sosfilt (direct form II transposed, as scipy's zi). The output has
the input's dtype and device. Gradients flow to the input: the adjoint of a causal LTI filter is
the same filter run backwards in time.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import signal
from torch import Tensor


def sos_zeros_state(sos: Tensor, x: Tensor) -> Tensor:
    """Zero state for `sosfilt`: shape (n_sections, *x.shape[:-1], 2), float64, on x's device."""
    return torch.zeros((sos.shape[0], *x.shape[:-1], 2), dtype=torch.float64, device=x.device)


def _sosfilt_numpy(
    sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if zi is None:
        return signal.sosfilt(sos, flat, axis=-1).reshape(x.shape), None
    y, zf = signal.sosfilt(sos, flat, axis=-1, zi=zi.reshape(sos.shape[0], -1, 2))
    return y.reshape(x.shape), zf.reshape(sos.shape[0], *lead, 2)


def _run(sos: Tensor, x: Tensor, zi: Tensor | None) -> tuple[Tensor, Tensor | None]:
    if x.numel() == 0:
        return x.clone(), zi
    sos_np = sos.detach().to("cpu", torch.float64).numpy()
    x_np = x.detach().to("cpu", torch.float64).numpy()
    zi_np = None if zi is None else zi.detach().to("cpu", torch.float64).numpy()
    y_np, zf_np = _sosfilt_numpy(sos_np, x_np, zi_np)
    y = torch.from_numpy(y_np).to(device=x.device, dtype=x.dtype)
    zf = None if zf_np is None else torch.from_numpy(zf_np).to(device=x.device)
    return y, zf


class _SOSFilt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sos: Tensor, zi: Tensor | None):  # type: ignore[override]
        y, zf = _run(sos, x, zi)
        ctx.save_for_backward(sos)
        ctx.mark_non_differentiable(zf) if zf is not None else None
        return y, zf

    @staticmethod
    def backward(ctx, grad_y: Tensor, grad_zf: Tensor | None):  # type: ignore[override]
        (sos,) = ctx.saved_tensors
        grad_x, _ = _run(sos, grad_y.flip(-1), None)
        return grad_x.flip(-1), None, None


def sosfilt(sos: Tensor, x: Tensor, zi: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Filter `x` along its last axis with a cascade of second-order sections.

    Args:
        sos: (n_sections, 6) rows [b0, b1, b2, a0, a1, a2], a0 == 1 (float64 recommended).
        x: (..., time) signal, any float dtype and device.
        zi: state from `sos_zeros_state` or a previous call; None means zero state and no
            final state is returned.

    Returns:
        (y, zf): y has x's shape, dtype and device; zf is the state after the last sample
        (float64), None when zi was None.

    Example:
        >>> from scipy.signal import butter
        >>> sos = torch.from_numpy(butter(2, 0.1, output="sos"))
        >>> x = torch.randn(2, 1000)
        >>> y1, z = sosfilt(sos, x[:, :300], sos_zeros_state(sos, x))
        >>> y2, _ = sosfilt(sos, x[:, 300:], z)
        >>> torch.allclose(torch.cat([y1, y2], -1), sosfilt(sos, x)[0], atol=1e-6)
        True
    """
    if x.requires_grad and torch.is_grad_enabled():
        return _SOSFilt.apply(x, sos, zi)
    return _run(sos, x, zi)
