"""Compiled (frames, channels) <-> (channels, frames) copies (audiofx_cli.dsp.layout) equal
numpy's transposes exactly, for every channel count (compiled up to MAX_CHANNELS, numpy above),
both dtypes, empty blocks and non-contiguous inputs (numpy fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from audiofx_cli.dsp import layout


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8, 13, layout.MAX_CHANNELS + 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copies_equal_numpy_transposes(channels, dtype):
    rng = np.random.default_rng(channels)
    for frames in (0, 1, 7, 44101):
        block = rng.standard_normal((frames, channels)).astype(dtype)
        rows = layout.to_rows(block)
        assert rows.dtype == dtype and rows.flags.c_contiguous
        assert np.array_equal(rows, block.T)
        back = layout.to_frames(rows)
        assert back.dtype == dtype and back.flags.c_contiguous
        assert np.array_equal(back, block)


def test_non_contiguous_inputs_are_copied_right():
    block = np.random.default_rng(1).standard_normal((1000, 16)).astype(np.float32)[::2, ::2]
    assert np.array_equal(layout.to_rows(block), block.T)
    rows = np.random.default_rng(2).standard_normal((8, 2000)).astype(np.float32)[:, ::3]
    assert np.array_equal(layout.to_frames(rows), rows.T)
