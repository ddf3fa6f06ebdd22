"""The compiled measurement passes against scipy in float64: K-weighting then squared sums per
segment (sosfilt + reduceat), the Annex 2 interpolation (lfilter per phase), chunk by chunk
with the state carried."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from audiofx_cli.dsp import loudness_kernels as kernels
from audiofx_cli.dsp.loudness import TRUE_PEAK_PHASES, k_weighting_sos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kweighted_segments_equal_sosfilt_and_reduceat(dtype):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 3, 5000)).astype(dtype)
    sos = k_weighting_sos(44100)
    zi = np.zeros((6, 2, 2))
    y = signal.sosfilt(sos, x.astype(np.float64), axis=-1)
    pieces = ((0, 1000, [10, 400, 400, 999]), (1000, 1000, []), (1000, 5000, [4000]))
    for start, stop, cuts in pieces:
        cuts = np.array(cuts, dtype=np.int64)
        out = np.empty((2, 3, len(cuts) + 1))
        kernels.kweighted_segments(x[..., start:stop], sos, zi, cuts, out)
        edges = np.concatenate([[0], cuts, [stop - start]])
        power = y[..., start:stop] ** 2
        expected = np.stack(
            [power[..., a:b].sum(-1) for a, b in zip(edges[:-1], edges[1:], strict=True)], -1
        )
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 600, 4000])
def test_true_peak_equals_polyphase_lfilter(chunk):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 2, 4000)).astype(np.float32)
    x[1, 0, 1234] = 1.5  # a peak in the second item only
    taps = TRUE_PEAK_PHASES.shape[1]
    history, peaks = np.zeros((2, 2, taps - 1)), np.zeros(2)
    for start in range(0, x.shape[-1], chunk):
        kernels.true_peak(np.ascontiguousarray(x[..., start : start + chunk]),
                          TRUE_PEAK_PHASES, history, peaks)  # fmt: skip
    xd = x.astype(np.float64)
    expected = np.abs(xd).max(axis=(-2, -1))
    for phase in TRUE_PEAK_PHASES:
        y = signal.lfilter(phase, [1.0], xd, axis=-1)
        expected = np.maximum(expected, np.abs(y).max(axis=(-2, -1)))
    np.testing.assert_allclose(peaks, expected, rtol=1e-13)
    np.testing.assert_array_equal(history, xd[..., -(taps - 1) :])
