"""File pictures: spectrogram levels against theory and scipy's STFT, chunk independence,
bounded size for long files, and the processed picture against the chain run in memory.

Tolerances: levels within 0.01 dB; STFT power within 1e-9 relative; block-size independence
within 1e-12; processed waveform within 1e-5 of `load_chain(...)(x)` in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.plot.audio import (
    MAX_SPEC_COLUMNS,
    MAX_WAVE_COLUMNS,
    PictureBuilder,
    SpectrogramAccumulator,
    file_pictures,
    log_band_matrix,
    stft_size,
)
from tests.conftest import write_audio

RATE = 48000


def test_full_scale_sine_reads_0_dbfs():
    n_fft = stft_size(RATE)
    assert n_fft == 2048
    f0 = 43 * RATE / n_fft  # on a bin centre: no scalloping loss
    t = np.arange(RATE) / RATE
    x = np.sin(2 * np.pi * f0 * t)[None]
    acc = SpectrogramAccumulator(RATE, 1, np.array([f0 - 1.0, f0 + 1.0]))  # one band: that bin
    acc.feed(x)
    power = acc.finish(x.shape[-1])
    middle = 10 * np.log10(power[0, 8:-8])  # frames away from the zero-padded edges
    np.testing.assert_allclose(middle, 0.0, atol=0.01)
    half = SpectrogramAccumulator(RATE, 1, np.array([f0 - 1.0, f0 + 1.0]))
    half.feed(0.5 * x)
    assert 10 * np.log10(half.finish(RATE)[0, 20]) == pytest.approx(-6.0206, abs=0.01)


def test_stft_power_matches_scipy_centred_stft():
    x = np.random.default_rng(1).standard_normal((1, 20000))
    edges = np.geomspace(50.0, RATE / 2, 65)
    acc = SpectrogramAccumulator(RATE, 1, edges)
    acc.feed(x)
    power = acc.finish(x.shape[-1])
    n_fft = acc.n_fft
    _, _, z = signal.stft(
        x[0],
        fs=RATE,
        window="hann",
        nperseg=n_fft,
        noverlap=n_fft - n_fft // 4,
        boundary="zeros",
        padded=False,
        scaling="spectrum",  # divides by sum(window)
    )
    frames = 20000 // (n_fft // 4) + 1
    ref = log_band_matrix(RATE, n_fft, edges) @ (4 * np.abs(z[:, :frames]) ** 2)
    assert power.shape == ref.shape
    np.testing.assert_allclose(power, ref, rtol=1e-9, atol=1e-20)


def test_log_bands_are_weighted_means():
    matrix = log_band_matrix(22050, 1024, np.geomspace(43.0, 11025.0, 257))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(matrix >= 0)


@pytest.mark.parametrize("block", [1000, 4097, 65536])
def test_pictures_do_not_depend_on_block_size(block):
    x = np.random.default_rng(2).standard_normal((2, 60000)) * 0.3
    whole = PictureBuilder("x", 16000, 2, x.shape[-1])
    whole.feed(x)
    parts = PictureBuilder("x", 16000, 2, x.shape[-1])
    for start in range(0, x.shape[-1], block):
        parts.feed(x[:, start : start + block])
    a, b = whole.finish(), parts.finish()
    np.testing.assert_allclose(a.spec_db, b.spec_db, atol=1e-12)
    np.testing.assert_array_equal(a.wave_min, b.wave_min)
    np.testing.assert_array_equal(a.wave_max, b.wave_max)
    # min/max envelope equals the reference reduction of the whole signal
    per = 60000 // a.wave_min.shape[-1] if a.wave_min.shape[-1] < 60000 else 1
    cols = x[:, : a.wave_min.shape[-1] * per].reshape(2, -1, per)
    np.testing.assert_array_equal(a.wave_min[:, : cols.shape[1]], cols.min(-1))
    np.testing.assert_array_equal(a.wave_max[:, : cols.shape[1]], cols.max(-1))


def test_long_file_is_reduced_to_bounded_columns(tmp_path):
    frames = 16000 * 240  # 4 minutes at 16 kHz
    rng = np.random.default_rng(3)
    path = write_audio(tmp_path / "long.wav", 0.1 * rng.standard_normal((1, frames)), 16000)
    pic, processed = file_pictures(path)
    assert processed is None
    assert pic.frames == frames and pic.duration_s == pytest.approx(240.0)
    assert 0.9 * MAX_WAVE_COLUMNS <= pic.wave_min.shape[-1] <= MAX_WAVE_COLUMNS
    assert 0.9 * MAX_SPEC_COLUMNS <= pic.spec_db.shape[-1] <= MAX_SPEC_COLUMNS
    assert pic.spec_t_edges_s[-1] == pytest.approx(240.0)
    assert np.all(np.diff(pic.spec_t_edges_s) > 0)


def test_processed_picture_equals_the_chain_run_in_memory(tmp_path):
    rng = np.random.default_rng(4)
    x = 0.5 * rng.standard_normal((2, 6000))
    path = write_audio(tmp_path / "in.wav", x, 16000, subtype="FLOAT")
    original, processed = file_pictures(path, "vocal")
    assert processed is not None and processed.label == "after 'vocal'"
    y = load_chain("vocal", 16000)(torch.from_numpy(x.astype(np.float32))).double().numpy()
    # short file: the waveform keeps every sample
    np.testing.assert_allclose(processed.wave_min, y, atol=1e-5)
    np.testing.assert_allclose(original.wave_min, x.astype(np.float32), atol=0)
    assert processed.spec_db.shape == original.spec_db.shape
    # the vocal chain's high-pass takes the lowest band down, the -3 dB gain the rest
    assert np.mean(processed.spec_db[0]) < np.mean(original.spec_db[0]) - 3
