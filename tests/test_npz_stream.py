"""`.npz` archives written in place (`audiofx_cli.io.npz_stream`): the CRC-32 correction
against zlib, archives that zipfile verifies and numpy reads back exactly, and the guards.

References: zlib.crc32 of the concatenated bytes; zipfile.ZipFile.testzip (recomputes every
member's CRC from the bytes on disk); np.load.
"""

from __future__ import annotations

import zipfile
import zlib

import numpy as np
import pytest

from audiofx_cli.io.npz_stream import NpzStream, crc32_shift, npy_header


@pytest.mark.parametrize("len_a,len_b", [(0, 0), (1, 0), (0, 1), (7, 5), (64, 1000), (3, 1 << 20)])
def test_crc32_shift_combines_like_zlib(len_a, len_b):
    rng = np.random.default_rng(len_a + len_b)
    a, b = rng.bytes(len_a), rng.bytes(len_b)
    assert crc32_shift(zlib.crc32(a), len(b)) ^ zlib.crc32(b) == zlib.crc32(a + b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead", [(), (3,), (2, 5, 4)])
def test_round_trip_in_pieces_verifies_and_loads(tmp_path, dtype, lead):
    rng = np.random.default_rng(len(lead))
    x = rng.standard_normal((*lead, 1234)).astype(dtype)
    path = tmp_path / "f.npz"
    out = NpzStream(path, np.dtype(dtype), lead)
    for start in (0, 1, 100, 101, 1000):  # pieces of uneven length, frame-major
        stop = {0: 1, 1: 100, 100: 101, 101: 1000, 1000: 1234}[start]
        out.write(np.ascontiguousarray(x[..., start:stop].T))
    out.finish(1234, {"rate": 16000.0, "axes": ["a", "b"]})
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every CRC matches the bytes on disk
    loaded = np.load(path)
    np.testing.assert_array_equal(loaded["data"], x)
    assert loaded["rate"] == 16000.0 and loaded["axes"].tolist() == ["a", "b"]


def test_zero_frames_and_a_huge_frame_count_fit_the_same_header():
    small = npy_header(np.dtype(np.float32), (30, 12, 0))
    big = npy_header(np.dtype(np.float32), (30, 12, 10**19), len(small))
    assert len(small) == len(big) and len(small) % 64 == 0


def test_finish_refuses_a_frame_count_that_does_not_match_the_bytes(tmp_path):
    out = NpzStream(tmp_path / "f.npz", np.dtype(np.float32), (2,))
    out.write(np.zeros(6, dtype=np.float32))
    with pytest.raises(ValueError, match="data bytes"):
        out.finish(4, {})
    out.abort()
