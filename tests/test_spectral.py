"""Spectral stages against librosa (float64 filterbanks) and torchaudio, and frame-exact
streaming: chunk boundaries anywhere relative to frames, reflect padding at both ends."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
import torchaudio

from audiofx_cli import load_chain
from audiofx_cli.errors import ProcessingError
from tests.conftest import unit_noise
from tests.test_stage_contract import chunked

SR = 22050


def run(stages, x, rate=SR):
    chain = load_chain(stages, rate, dtype=torch.float64)
    return chain(torch.from_numpy(x)).numpy()


def rel_err(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize(
    "opts",
    [
        {"n_fft": 512, "hop": 128},
        {"n_fft": 512, "hop": 160, "win_length": 400, "window": "hamming", "pad_mode": "reflect"},
        {"n_fft": 256, "hop": 100, "center": False},
        {"n_fft": 1024, "hop": 512, "power": 1.0, "window": "blackman"},
    ],
)
def test_spectrogram_matches_librosa(opts):
    x = unit_noise(2, 9000, seed=1)
    y = run([{"spectrogram": opts}], x)
    window = {"rectangular": "boxcar"}.get(opts.get("window", "hann"), opts.get("window", "hann"))
    stft = librosa.stft(
        x,
        n_fft=opts["n_fft"],
        hop_length=opts["hop"],
        win_length=opts.get("win_length"),
        window=window,
        center=opts.get("center", True),
        pad_mode=opts.get("pad_mode", "constant"),
    )
    ref = np.abs(stft) ** opts.get("power", 2.0)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < 1e-12


@pytest.mark.parametrize(
    "mel_scale,norm", [("slaney", "slaney"), ("htk", "none"), ("htk", "slaney")]
)
def test_mel_matches_librosa(mel_scale, norm):
    x = unit_noise(1, 8000, seed=2)
    opts = {"n_fft": 512, "hop": 128, "n_mels": 40, "f_min_hz": 50.0, "f_max_hz": 8000.0}
    y = run([{"mel": {**opts, "mel_scale": mel_scale, "norm": norm}}], x)
    basis = librosa.filters.mel(
        sr=SR, n_fft=512, n_mels=40, fmin=50.0, fmax=8000.0, htk=mel_scale == "htk",
        norm="slaney" if norm == "slaney" else None, dtype=np.float64,
    )  # fmt: skip
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=128, pad_mode="constant")) ** 2
    assert rel_err(y, basis @ power) < 1e-12
    # librosa's own float32 melspectrogram agrees to float32 precision
    ref32 = librosa.feature.melspectrogram(
        y=x, sr=SR, n_fft=512, hop_length=128, n_mels=40, fmin=50.0, fmax=8000.0,
        htk=mel_scale == "htk", norm="slaney" if norm == "slaney" else None,
    )  # fmt: skip
    assert rel_err(y, ref32) < 1e-6


def test_mel_filterbank_matches_torchaudio():
    chain = load_chain(
        [{"mel": {"n_fft": 1024, "n_mels": 64, "mel_scale": "htk", "norm": "none"}}], 16000
    )
    ours = chain[0].mel_fb.numpy()
    ref = torchaudio.functional.melscale_fbanks(513, 0.0, 8000.0, 64, 16000, None, "htk").numpy()
    np.testing.assert_allclose(ours.T, ref, atol=2e-5)  # torchaudio designs in float32


def test_mfcc_matches_librosa():
    x = unit_noise(1, 12000, seed=3)
    y = run([{"mfcc": {"n_mfcc": 13, "n_fft": 512, "hop": 128, "n_mels": 40}}], x)
    basis = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40, dtype=np.float64)
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=128, pad_mode="constant")) ** 2
    ref = librosa.feature.mfcc(S=librosa.power_to_db(basis @ power), n_mfcc=13)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < 1e-10


def test_mfcc_top_db_floor_is_active_and_streams():
    """A quiet half makes the 80 dB floor bite; chunked (two passes) equals whole."""
    x = unit_noise(1, 12000, seed=4)
    x[:, 6000:] *= 1e-6
    chain = load_chain(
        [{"mfcc": {"n_mfcc": 13, "n_fft": 512, "hop": 128, "n_mels": 40}}], SR, dtype=torch.float64
    )
    whole = chain(torch.from_numpy(x))
    basis = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40, dtype=np.float64)
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=128, pad_mode="constant")) ** 2
    ref = librosa.feature.mfcc(S=librosa.power_to_db(basis @ power, top_db=80.0), n_mfcc=13)
    assert rel_err(whole.numpy(), ref) < 1e-10
    got = chunked(chain, torch.from_numpy(x), [1000, 3, 5000, 5997])
    np.testing.assert_allclose(got.numpy(), whole.numpy(), atol=1e-9)


@pytest.mark.parametrize("kind", ["power", "amplitude"])
def test_db_matches_librosa(kind):
    x = np.abs(unit_noise(2, 3000, seed=5)) ** 2
    x[0, 1000:] = 1e-12
    y = run([{"db": {"kind": kind, "top_db": 60.0}}], x)
    ref = (librosa.power_to_db if kind == "power" else librosa.amplitude_to_db)(x, top_db=60.0)
    np.testing.assert_allclose(y, ref, atol=1e-9)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("center", [True, False])
def test_stft_frames_across_chunk_boundaries(pad_mode, center):
    n_fft, hop = 256, 96
    x = torch.from_numpy(unit_noise(2, 3001, seed=6))
    chain = load_chain(
        [{"spectrogram": {"n_fft": n_fft, "hop": hop, "pad_mode": pad_mode, "center": center}}],
        SR,
        dtype=torch.float64,
    )
    whole = chain(x)
    assert whole.shape[-1] == chain[0].output_frames(3001)
    for sizes in (
        [1] * 300 + [2701],
        [95, 1, 96, 97, 2712],
        [128, 127, 129, 2617],
        [0, 3001],
        [3000, 1],
    ):
        got = chunked(chain, x, sizes)
        assert got.shape == whole.shape
        assert float((got - whole).abs().max()) == 0.0


def test_frame_rate_and_times():
    chain = load_chain([{"mel": {"n_fft": 512, "hop": 160, "n_mels": 32}}], 16000)
    assert chain.output_rate == pytest.approx(100.0)
    from audiofx_cli.axes import chain_axes

    axes = chain_axes(chain)
    assert axes.names == ("channel", "mel_hz", "time_s")
    np.testing.assert_allclose(axes.time_s(3), [0.0, 0.01, 0.02])


def test_reflect_padding_needs_enough_samples():
    chain = load_chain([{"spectrogram": {"n_fft": 512, "pad_mode": "reflect"}}], SR)
    with pytest.raises(ProcessingError, match="reflect"):
        chain(torch.zeros(1, 100))
    assert chain(torch.zeros(1, 0)).shape == (1, 257, 0)
