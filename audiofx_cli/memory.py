"""Large CPU buffers that are cheap to write: huge pages and a small recycling pool.

On Linux the first write to freshly allocated memory takes a page fault per 4 KiB page, and on
virtual machines these faults can cost as much as the filtering itself (measured on the 2-core
KVM machine of docs/performance.md: an 80 MB output written for the first time from two threads
took 100-245 ms, refilling it 6-9 ms). Two remedies, both here:

- numpy asks the kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on large
  allocations, one fault per 2 MiB; torch's CPU allocator does not. So big CPU outputs are
  allocated by numpy and shared with torch (`torch.from_numpy`, no copy).
- Freed big buffers go back to the operating system, and the next run faults them in again.
  `empty_array` keeps a few recently used big buffers and hands one out again once nothing
  refers to it any more (no array, view or tensor: every numpy view and every
  `torch.from_numpy` tensor keeps a reference to the buffer that owns the memory, so a buffer
  whose only reference is the pool's is free). This is what torch's CUDA caching allocator
  does for GPU memory. `release()` empties the pool.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import torch
from torch import Tensor

POOL_MIN_BYTES = 4 << 20  # smaller buffers are cheap to fault in: not pooled
POOL_MAX_BUFFERS = 8  # the least recently used buffer beyond this many is let go

_lock = threading.Lock()
_pool: list[np.ndarray] = []  # most recently used last


def _free_count() -> int:
    """The reference count `sys.getrefcount(_pool[i])` reports for a buffer only the pool holds
    (measured, since interpreters differ in how many temporary references the call adds)."""
    probe = [np.empty(1)]
    return sys.getrefcount(probe[0])


_FREE = _free_count()
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def empty_array(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array; big ones come from the recycling pool.

    Example:
        >>> a = empty_array((8, 1 << 20), np.float32)
        >>> address = a.ctypes.data
        >>> del a
        >>> empty_array((8, 1 << 20), np.float32).ctypes.data == address
        True
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    with _lock:
        for i in range(len(_pool)):
            if _pool[i].nbytes == nbytes and sys.getrefcount(_pool[i]) <= _FREE:
                buf = _pool.pop(i)
                _pool.append(buf)
                return buf.view(dtype).reshape(shape)
        buf = np.empty(nbytes, dtype=np.uint8)
        _pool.append(buf)
        if len(_pool) > POOL_MAX_BUFFERS:
            for i in range(len(_pool) - 1):
                if sys.getrefcount(_pool[i]) <= _FREE:
                    del _pool[i]
                    break
            else:
                del _pool[0]  # in use: its holders keep it alive, the pool just forgets it
    return buf.view(dtype).reshape(shape)


def empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """An uninitialised tensor; on the CPU from `empty_array` (huge pages, recycled).

    Example:
        >>> y = empty((2, 44100), torch.float32)
        >>> y.shape, y.dtype, y.is_contiguous()
        (torch.Size([2, 44100]), torch.float32, True)
    """
    device = torch.device(device)
    np_dtype = _NUMPY.get(dtype)
    if device.type != "cpu" or np_dtype is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.from_numpy(empty_array(tuple(shape), np_dtype))


def rows_view(out: Tensor) -> Tensor | None:
    """`out` (..., frames) as a (rows, frames) view with unit time stride, sharing its memory,
    or None when that would need a copy (a kernel writing into a copy would lose its output).

    Example:
        >>> big = torch.zeros(2, 3, 100)
        >>> rows_view(big[..., 10:50]).shape, rows_view(big.transpose(0, 1)) is None
        (torch.Size([6, 40]), True)
    """
    if out.stride(-1) != 1:
        return None
    rows = out.reshape(-1, out.shape[-1])
    return rows if rows.data_ptr() == out.data_ptr() and rows.stride(-1) == 1 else None


def release() -> None:
    """Forget every pooled buffer (those still in use live on with their holders)."""
    with _lock:
        _pool.clear()
