"""audiofx_cli.memory: big CPU buffers are recycled only once nothing refers to them."""

from __future__ import annotations

import numpy as np
import torch

from audiofx_cli import memory

BIG = (4, 1 << 18)  # 4 MiB of float32: pooled


def test_a_free_buffer_is_handed_out_again():
    memory.release()
    a = memory.empty_array(BIG, np.float32)
    address = a.ctypes.data
    del a
    b = memory.empty_array(BIG, np.float32)
    assert b.ctypes.data == address and b.shape == BIG and b.flags.c_contiguous


def test_a_buffer_in_use_is_never_shared():
    """Views, slices and torch tensors of a pooled buffer all keep it out of the pool."""
    memory.release()
    a = memory.empty_array(BIG, np.float32)
    holders = [a[1:, 10:], torch.from_numpy(a), a.T]
    address = a.ctypes.data
    del a
    while holders:
        c = memory.empty_array(BIG, np.float32)
        assert c.ctypes.data != address, type(holders[0])
        del c
        holders.pop(0)  # drop one holder at a time: in use until the last one goes
    d = memory.empty_array(BIG, np.float32)
    assert d.ctypes.data == address  # every holder gone: recycled


def test_writes_through_one_buffer_do_not_reach_another():
    memory.release()
    a = memory.empty_array(BIG, np.float32)
    a[:] = 1.0
    b = memory.empty_array(BIG, np.float32)
    b[:] = 2.0
    assert float(a.min()) == 1.0 and float(a.max()) == 1.0


def test_small_buffers_dtypes_devices_and_release():
    small = memory.empty_array((10,), np.float64)
    assert small.shape == (10,) and small.dtype == np.float64
    t = memory.empty((2, 1 << 20), torch.float64)
    assert t.dtype == torch.float64 and t.shape == (2, 1 << 20)
    assert memory.empty((3,), torch.int64).dtype == torch.int64  # not pooled: plain torch
    address = t.data_ptr()
    del t
    memory.release()
    u = memory.empty((2, 1 << 20), torch.float64)
    assert u.shape == (2, 1 << 20)  # a fresh buffer (the pool was emptied)
    del u, address


def test_the_pool_keeps_a_bounded_number_of_buffers():
    memory.release()
    held = [memory.empty_array((k + 1, 1 << 20), np.float32) for k in range(12)]
    assert len(memory._pool) <= memory.POOL_MAX_BUFFERS
    del held
