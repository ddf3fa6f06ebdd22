"""TPDF dither when writing integer PCM: noise statistics, determinism, chunk independence,
bit-exact round trip of unprocessed PCM, and `dither="none"` giving plain rounding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy import stats

from audiofx_cli import process_file
from audiofx_cli.errors import UsageError
from audiofx_cli.io.audio import AtomicAudioWriter, quantize, tpdf_noise
from tests.conftest import file_hash, unit_noise, write_audio

LSB16 = 2.0**-15


def test_tpdf_noise_is_triangular_two_lsb_wide():
    noise = tpdf_noise(np.random.default_rng(1), (200_000,))
    assert noise.min() > -1 and noise.max() < 1
    assert abs(noise.mean()) < 0.005
    assert noise.var() == pytest.approx(1 / 6, rel=0.02)  # triangular on (-1, 1)
    # Kolmogorov-Smirnov against scipy's triangular distribution (loc -1, scale 2, mode mid)
    assert stats.kstest(noise, "triang", args=(0.5, -1, 2)).pvalue > 0.01
    assert stats.kstest(noise, "uniform", args=(-1, 2)).pvalue < 1e-6  # and not rectangular


@pytest.mark.parametrize("fraction", [0.0001, 0.25, 0.5, 0.77])
def test_dithered_error_is_independent_of_the_signal(fraction):
    """TPDF's point: for any constant input between two codes, the total error (rounding plus
    dither) has mean 0 and variance 1/4 LSB^2 (1/12 + 1/6). Plain rounding has a fixed error."""
    x = np.full((100_000, 1), (1000 + fraction) * LSB16)
    q, clipped = quantize(x, 16, "tpdf", np.random.default_rng(2))
    error = q.astype(np.float64) - (1000 + fraction)
    assert clipped == 0
    assert abs(error.mean()) < 0.01
    assert error.var() == pytest.approx(0.25, rel=0.03)
    plain, _ = quantize(x, 16)
    assert np.all(plain == round(1000 + fraction))


def test_samples_on_the_grid_are_not_dithered():
    x = np.array([[0.0], [LSB16 * 7], [-0.5], [LSB16 * 7.5]])
    q, _ = quantize(x, 16, "tpdf", np.random.default_rng(0))
    assert list(q[:3, 0]) == [0, 7, -16384]


def test_clip_count_ignores_dither():
    x = np.array([[1.0], [32766.9 * LSB16], [-1.2], [0.3]])
    for seed in range(20):
        q, clipped = quantize(x, 16, "tpdf", np.random.default_rng(seed))
        assert clipped == 2 and q.max() <= 32767 and q.min() >= -32768


def write(path, data, chunk, dither="tpdf", seed=None, subtype="PCM_16"):
    rng = None if seed is None else np.random.default_rng(seed)
    with AtomicAudioWriter(path, 48000, 2, "WAV", subtype, dither=dither, rng=rng) as writer:
        for start in range(0, data.shape[0], chunk):
            writer.write(data[start : start + chunk])
    return sf.read(path, dtype="int16")[0]


def test_writer_is_deterministic_and_chunk_independent(tmp_path):
    data = 0.3 * unit_noise(2, 20_000, seed=3).T
    a = write(tmp_path / "a.wav", data, 20_000)
    b = write(tmp_path / "b.wav", data, 777)
    c = write(tmp_path / "c.wav", data, 1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    other = write(tmp_path / "d.wav", data, 20_000, seed=123)
    assert np.count_nonzero(other != a) > 1000  # another seed, other noise
    plain = write(tmp_path / "e.wav", data, 4096, dither="none")
    np.testing.assert_array_equal(plain, np.clip(np.rint(data * 32768), -32768, 32767))
    assert np.abs(a.astype(int) - plain).max() == 1  # dither moves a sample by at most 1 LSB


def test_unprocessed_pcm_round_trips_bit_for_bit(tmp_path):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, 30_000, seed=4), 44100)
    out = tmp_path / "out.wav"
    process_file(src, out, [{"gain": {"gain_db": 0}}], device="cpu", chunk_seconds=0.1)
    assert sf.read(out, dtype="int16")[0].tobytes() == sf.read(src, dtype="int16")[0].tobytes()
    out24 = tmp_path / "out24.flac"  # 16 -> 24 bit: still on the grid, no dither
    process_file(src, out24, [{"gain": {"gain_db": 0}}], device="cpu")
    np.testing.assert_array_equal(sf.read(out24)[0], sf.read(src)[0])


def test_process_file_dither_modes(tmp_path):
    data = 0.5 * unit_noise(1, 20_000, seed=5)
    src = write_audio(tmp_path / "in.wav", data, 16000, "FLOAT")
    chain = [{"gain": {"gain_db": -3}}]
    plain, dithered = tmp_path / "plain.wav", tmp_path / "dithered.wav"
    process_file(src, plain, chain, device="cpu", subtype="PCM_16", dither="none")
    process_file(src, dithered, chain, device="cpu", subtype="PCM_16")
    process_file(src, tmp_path / "again.wav", chain, device="cpu", subtype="PCM_16")
    assert file_hash(tmp_path / "again.wav") == file_hash(dithered)  # deterministic
    decoded = sf.read(src, dtype="float64")[0]
    scaled = decoded * 10 ** (-3 / 20) * 32768
    got_plain = sf.read(plain, dtype="int16")[0].astype(float)
    got_dither = sf.read(dithered, dtype="int16")[0].astype(float)
    assert np.abs(got_plain - scaled).max() <= 0.5 + 1e-3  # round to nearest (float32 chain)
    error = got_dither - scaled
    assert np.abs(error).max() < 1.5 + 1e-3
    assert abs(error.mean()) < 0.02 and error.var() == pytest.approx(0.25, rel=0.05)
    with pytest.raises(UsageError, match="unknown dither 'rpdf'"):
        process_file(src, tmp_path / "x.wav", chain, device="cpu", dither="rpdf")
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_compiled_conversion_equals_numpy_bit_for_bit(dtype, bits, monkeypatch):
    """`quantize` runs one compiled pass (audiofx_cli.io.pcm) when it can; its integers and
    clip counts equal the numpy formulation's exactly, from the same dither draws: on-grid
    samples, clipping both ways, -0.0, both dithers, both input dtypes, every container."""
    from audiofx_cli.io import pcm

    rng = np.random.default_rng(bits)
    x = (rng.standard_normal((20_000, 3)) * 0.4).astype(dtype)
    x[:200] = np.round(x[:200] * 2.0 ** (bits - 1)) / 2.0 ** (bits - 1)  # on the output grid
    x[200:210], x[210:220], x[220:230] = 1.5, -1.5, -0.0
    assert pcm.quantize_compiled(x, bits, None) is not None  # the compiled path is exercised
    for dither in ("none", "tpdf"):
        got, clipped = quantize(x, bits, dither, np.random.default_rng(7))
        with monkeypatch.context() as patch:
            patch.setattr(pcm, "quantize_compiled", lambda *args: None)
            want, want_clipped = quantize(x, bits, dither, np.random.default_rng(7))
        assert got.dtype == want.dtype == (np.int16 if bits <= 16 else np.int32)
        assert np.array_equal(got, want) and clipped == want_clipped >= 20 * 3
