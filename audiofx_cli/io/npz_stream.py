"""An `.npz` written once, while its `data` array grows along its last axis.

A streamed feature array's length is known only at the end, and the `.npy` header in front of
the data holds the shape. Writing the data to a scratch file and copying it into the archive at
the end writes everything twice (a minute of modulation features is 1.4 GB: about 3 s more on
the machine of docs/performance.md). Here the archive member `data.npy` is written in place
(stored, zip64) behind a header of fixed size whose shape says 0 frames; `finish` then writes
the real header over it (same size, padded with spaces as the format allows) and corrects the
member's CRC-32 without reading the data again: CRC-32 is affine, so replacing the first
bytes changes the CRC by the CRC of the difference shifted over the rest
(`crc32_shift`, zlib's crc32_combine method).

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "f.npz")
    >>> out = NpzStream(path, np.dtype("float32"), (2,))
    >>> out.write(np.arange(6, dtype=np.float32))  # frame-major: 3 frames of 2 values
    >>> out.finish(3, {"rate": 100.0})
    >>> np.load(path)["data"].tolist()
    [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

_POLY = 0xEDB88320  # CRC-32 (reflected), as zlib and zip use
_MAX_FRAMES_DIGITS = 20  # the header leaves room for any 64-bit frame count


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_shift(crc: int, n_bytes: int) -> int:
    """The CRC-32 register after `n_bytes` zero bytes, without its init and final xor: with
    it, crc32(A + B) == crc32_shift(crc32(A), len(B)) ^ crc32(B) (zlib's crc32_combine)."""
    odd = [_POLY] + [1 << n for n in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four
    while n_bytes:
        even = _gf2_square(odd)  # one zero byte, then 2, 4, ... bytes
        if n_bytes & 1:
            crc = _gf2_times(even, crc)
        n_bytes >>= 1
        if not n_bytes:
            break
        odd = _gf2_square(even)
        if n_bytes & 1:
            crc = _gf2_times(odd, crc)
        n_bytes >>= 1
    return crc


def npy_header(dtype: np.dtype, shape: tuple[int, ...], size: int = 0) -> bytes:
    """A version 2.0 `.npy` header for a Fortran-order array, padded to `size` bytes (0: the
    smallest multiple of 64 that fits any frame count)."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': True, 'shape': {tuple(shape)!r}, }}"
    if not size:
        widest = len(text) + _MAX_FRAMES_DIGITS
        size = -(-(12 + widest + 1) // 64) * 64
    body = text.ljust(size - 12 - 1) + "\n"
    if len(body) + 12 != size:
        raise ValueError(f"npy header for shape {shape} does not fit in {size} bytes")
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body)) + body.encode("latin1")


class NpzStream:
    """`data` (lead_shape..., frames) of `dtype`, appended frame by frame (see module doc).

    Args:
        path: the archive to create (a temporary name: the caller renames it into place).
        dtype: element type of `data`.
        lead_shape: the shape of one frame (every axis but the last).
    """

    def __init__(self, path: str | Path, dtype: np.dtype, lead_shape: tuple[int, ...]) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.lead_shape = tuple(lead_shape)
        self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._member: Any = self._zip.open("data.npy", "w", force_zip64=True)
        self._header = npy_header(self.dtype, (*self.lead_shape, 0))
        self._member.write(self._header)

    def write(self, frames: Any) -> None:
        """Append whole frames, as bytes or a C-contiguous array in frame-major order."""
        self._member.write(memoryview(frames).cast("B"))

    def finish(self, n_frames: int, arrays: dict[str, Any]) -> None:
        """Put the final shape into `data`'s header, add the other arrays, close and fsync."""
        self._member.close()
        info = self._zip.getinfo("data.npy")
        header = npy_header(self.dtype, (*self.lead_shape, n_frames), len(self._header))
        data_bytes = info.file_size - len(header)
        if data_bytes != n_frames * self.dtype.itemsize * int(np.prod(self.lead_shape)):
            raise ValueError(f"{self.path}: {data_bytes} data bytes for {n_frames} frames")
        changed = zlib.crc32(header) ^ zlib.crc32(self._header)
        info.CRC = info.CRC ^ crc32_shift(changed, data_bytes)
        handle = self._zip.fp
        assert handle is not None
        local = info.FileHeader(True)  # zip64, as the member was opened
        handle.seek(info.header_offset)
        handle.write(local)
        handle.write(header)  # the member's data starts right after its local header
        for name, value in arrays.items():
            array = np.asarray(value) if not isinstance(value, list) else np.array(value)
            with self._zip.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
        self._zip.close()  # seeks back to the end itself before the central directory
        with open(self.path, "rb+") as done:
            os.fsync(done.fileno())

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        for closer in (self._member.close, self._zip.close):
            try:
                closer()
            except (OSError, ValueError):
                pass
