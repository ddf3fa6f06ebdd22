"""Device and precision resolution: 'auto' | 'cpu' | 'cuda' | 'cuda:N', float32 | float64."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from audiofx_cli.errors import DeviceError, UsageError

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
PRECISIONS = ("float32", "float64")


def check_device_name(name: str) -> str:
    """Syntax check only (no torch import)."""
    if not DEVICE_PATTERN.match(name):
        raise DeviceError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)")
    return name


def resolve_device(name: str = "auto") -> torch.device:
    """The torch.device for a name; 'auto' picks CUDA when available.

    Raises:
        DeviceError: CUDA asked for but not available, or index out of range.
    """
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device '{name}' asked for, but CUDA is not available on this machine "
            "(use --device cpu or auto)"
        )
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device '{name}' does not exist: {count} CUDA device(s) here")
    return device


def resolve_dtype(precision: str = "float32") -> torch.dtype:
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}' (use float32 or float64)")
    return torch.float32 if precision == "float32" else torch.float64
