"""Signals as the compiled kernels take them: contiguous CPU rows (time last) of float32 or
float64, an output array like them, and the way back to the input's shape, device and dtype.

The time-based effects (delay, echo, reverb, chorus, flanger, phaser, tremolo, bitcrush) run
their kernels on these rows; `needs_grad` tells a stage when autograd tracks the input, so it
keeps a differentiable torch path instead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiofx_cli import memory

KERNEL_DTYPES = (torch.float32, torch.float64)  # read and written by the kernels directly


def needs_grad(x: Tensor) -> bool:
    """True when autograd would track a computation on x."""
    return torch.is_grad_enabled() and x.requires_grad


def kernel_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """x as (rows, time) contiguous CPU rows in float32 / float64 (other dtypes: float64),
    and an uninitialised output of the same shape and dtype.

    The output comes from `audiofx_cli.memory.empty_array` (numpy, huge pages, recycled):
    writing a fresh 21 MB output costs about half the page faults' time of a torch
    allocation (median 5.6 against 9.9 ms for 2 x 60 s float32, measured), a recycled one
    none."""
    dtype = x.dtype if x.dtype in KERNEL_DTYPES else torch.float64
    rows = x.detach().reshape(math.prod(x.shape[:-1]), x.shape[-1]).to("cpu", dtype)
    rows = rows.contiguous()
    return rows, memory.empty(tuple(rows.shape), dtype)


def like(y: Tensor, x: Tensor) -> Tensor:
    """Kernel output rows back to x's shape (same time length), device and dtype."""
    return y.reshape(x.shape).to(device=x.device, dtype=x.dtype)
