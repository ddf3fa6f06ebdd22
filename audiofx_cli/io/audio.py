"""Audio files through libsndfile (soundfile): block reading, format choice, atomic writing.

Integer PCM is quantised here, not by libsndfile: samples are scaled by 2^(bits-1), rounded,
clipped to the format's range and counted, so float -> PCM -> float round-trips exactly and
clipping is reported instead of wrapping around. Writers add TPDF dither by default (seeded, so
output is deterministic) to samples that are not already on the output grid; see `quantize`.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audiofx_cli.errors import AudioFormatError, AudioReadError, AudioWriteError
from audiofx_cli.io import pcm
from audiofx_cli.io.chain_files import file_kind
from audiofx_cli.io.temp import temp_beside

EXTENSION_FORMATS = {
    ".wav": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".mp3": "MP3",
    ".aif": "AIFF",
    ".aiff": "AIFF",
    ".w64": "W64",
    ".rf64": "RF64",
    ".caf": "CAF",
}
INT_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
LOSSY_SUBTYPES = {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"}
SUBTYPE_CHOICES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
_CODEC_DEFAULTS = {"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}
DITHER_MODES = ("tpdf", "none")
DITHER_SEED = 0  # default seed of the dither generator: the same input gives the same file


@dataclass(frozen=True)
class AudioInfo:
    """What libsndfile says about a file."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    prefix = "Error opening "
    if text.startswith(prefix) and ": " in text:  # soundfile repeats the path; keep the reason
        text = text.split(": ", 1)[1]
    return text or type(exc).__name__


def open_regular_fd(path: str | Path) -> int:
    """A read-only descriptor of `path` if it is a regular file (checked before opening, since
    opening a FIFO waits for a writer, and again with fstat on the descriptor).

    Raises:
        AudioReadError: missing, unreadable, or a folder, FIFO, device or socket.
    """
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISREG(mode):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return fd
            os.close(fd)
    except OSError as exc:
        raise AudioReadError(f"{path}: cannot read audio: {exc.strerror or exc}") from None
    hint = "; pipe a stream through '-' instead" if stat.S_ISFIFO(mode) else ""
    raise AudioReadError(f"{path}: is {file_kind(mode)}, not a regular audio file{hint}")


class AudioReader:
    """Open an audio file for block reading (format detected from the header, not the name).

    Only regular files are opened (see `open_regular_fd`): a FIFO, a device such as /dev/zero
    or a folder is refused with one line before libsndfile reads anything.

    Raises:
        AudioReadError: the file cannot be opened or decoded.
    """

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = str(path)
        self.name = name or self.path  # in messages and `info.path` (a URL read from a copy)
        self._fd = open_regular_fd(self.path)
        try:
            self._file = sf.SoundFile(self._fd, "r", closefd=False)
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
            os.close(self._fd)
            raise AudioReadError(f"{self.name}: cannot read audio: {_reason(exc)}") from None
        f = self._file
        self.info = AudioInfo(self.name, f.samplerate, f.channels, f.frames, f.format, f.subtype)

    def blocks(self, frames: int, dtype: str = "float32") -> Iterator[np.ndarray]:
        """Yield (frames, channels) arrays until the end of the file."""
        while True:
            try:
                block = self._file.read(frames, dtype=dtype, always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioReadError(f"{self.name}: read failed: {_reason(exc)}") from None
            if block.shape[0] == 0:
                return
            yield block

    def length_verified(self) -> bool:
        """Whether the last frame the header promises can be read (a damaged header can claim
        any length); leaves the file at its first frame.

        Raises:
            AudioReadError: the file cannot be rewound.
        """
        frames = self.info.frames
        try:
            ok = frames <= 0 or (
                self._file.seek(frames - 1) == frames - 1 and len(self._file.read(1)) == 1
            )
        except (sf.LibsndfileError, RuntimeError):
            ok = False
        self.rewind()
        return ok

    def rewind(self) -> None:
        """Back to the first frame (for a second pass over the file)."""
        try:
            self._file.seek(0)
        except (sf.LibsndfileError, RuntimeError) as exc:  # e.g. a truncated FLAC
            raise AudioReadError(f"{self.name}: read failed: {_reason(exc)}") from None

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            os.close(self._fd)

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def output_format(
    path: str | Path, input_subtype: str | None, subtype: str | None
) -> tuple[str, str]:
    """(format, subtype) for an output path: format from the extension, subtype as asked, else
    the input's when the format can hold it, else the format's sensible default.

    Raises:
        AudioFormatError: unknown extension, format not available, or subtype not writable.
    """
    ext = Path(path).suffix.lower()
    fmt = EXTENSION_FORMATS.get(ext)
    if fmt is None:
        known = ", ".join(sorted({e.lstrip(".") for e in EXTENSION_FORMATS}))
        raise AudioFormatError(
            f"{path}: unknown output extension '{ext or '(none)'}'; use one of {known}"
        )
    if fmt not in sf.available_formats():
        raise AudioFormatError(
            f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}"
        )
    if subtype is not None:
        subtype = subtype.upper()
        if not sf.check_format(fmt, subtype):
            allowed = ", ".join(s for s in SUBTYPE_CHOICES if sf.check_format(fmt, s)) or (
                "its codec only"
            )
            raise AudioFormatError(
                f"{path}: {fmt} cannot hold subtype {subtype} (allowed: {allowed})"
            )
        return fmt, subtype
    if fmt in _CODEC_DEFAULTS:
        return fmt, _CODEC_DEFAULTS[fmt]
    if (
        input_subtype
        and input_subtype not in LOSSY_SUBTYPES
        and sf.check_format(fmt, input_subtype)
    ):
        return fmt, input_subtype
    if fmt == "FLAC":
        bits = INT_BITS.get(input_subtype or "", 32)
        return fmt, "PCM_16" if bits <= 16 else "PCM_24"
    return fmt, "PCM_16" if sf.check_format(fmt, "PCM_16") else sf.default_subtype(fmt)


SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}
SAMPLE_BYTES["DOUBLE"] = 8
FORMAT_MAX_BYTES = {"WAV": 0xFFFF_FFFF, "AIFF": 0xFFFF_FFFF}  # 32-bit chunk sizes
FORMAT_MAX_FRAMES = {"FLAC": (1 << 36) - 1}  # STREAMINFO's 36-bit sample count


def _gib(nbytes: float) -> str:
    return f"{nbytes / (1 << 30):,.2f} GiB"


def check_output_size(path: Path, fmt: str, subtype: str, frames: int, channels: int) -> None:
    """Refuse, before anything is written, an output that its format cannot hold (WAV and AIFF
    stop at 4 GiB, FLAC at 2^36 frames) or, for uncompressed subtypes, that needs more than the
    free space of its folder.

    Raises:
        AudioFormatError: over the format's limit (exit 2; the message names the size and a
            format that holds it).
        AudioWriteError: not enough free space.
    """
    width = SAMPLE_BYTES.get(subtype)
    max_frames = FORMAT_MAX_FRAMES.get(fmt)
    if max_frames is not None and frames > max_frames:
        raise AudioFormatError(
            f"{path}: the output would be {frames:,} frames; {fmt} holds at most {max_frames:,}"
        )
    if width is None:  # compressed: its size is not known in advance
        return
    nbytes = frames * channels * width
    limit = FORMAT_MAX_BYTES.get(fmt)
    if limit is not None and nbytes > limit:
        raise AudioFormatError(
            f"{path}: the output would be {frames:,} frames x {channels} ch of {subtype} = "
            f"{_gib(nbytes)}; {fmt} holds at most {_gib(limit)} (write .rf64, .w64 or .flac)"
        )
    try:
        free = shutil.disk_usage(path.parent or ".").free
    except OSError:
        return
    if nbytes > free:
        raise AudioWriteError(
            f"{path}: the output would be {_gib(nbytes)} and its folder has {_gib(free)} free"
        )


def tpdf_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Triangular dither in LSB: the difference of two independent uniform [0, 1) draws, so
    triangular on (-1, 1), mean 0, variance 1/6. Draws 2 values per sample in C order, so the
    noise of consecutive blocks equals the noise of their concatenation."""
    u = rng.random((*shape, 2))
    return u[..., 0] - u[..., 1]


def quantize(
    block: np.ndarray,
    bits: int,
    dither: str = "none",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, int]:
    """Float samples -> integers as libsndfile expects them (int16 container up to 16 bits,
    left-justified int32 above). Returns (ints, number of clipped samples).

    dither 'tpdf' adds `tpdf_noise` (2 LSB wide) before rounding to every sample that is not
    already exactly on the output grid; samples on the grid (an unprocessed PCM input, digital
    silence) are written unchanged. The clipped count is that of the signal itself (rounded
    without dither); dither that would step past full scale is clamped and not counted.
    """
    if dither not in DITHER_MODES:
        raise ValueError(f"unknown dither '{dither}' (use {' | '.join(DITHER_MODES)})")
    if block.size and block.flags.c_contiguous:  # one compiled pass when llvmlite works here
        noise = None
        if dither == "tpdf":
            gen = rng if rng is not None else np.random.default_rng(DITHER_SEED)
            noise = gen.random((*block.shape, 2))  # the draws tpdf_noise makes, in its order
        done = pcm.quantize_compiled(block, bits, noise)
        if done is not None:
            return done
        if noise is not None:  # numpy below, from the same draws
            return _quantize_numpy(block, bits, noise[..., 0] - noise[..., 1])
    return _quantize_numpy(
        block,
        bits,
        None
        if dither == "none"
        else tpdf_noise(
            rng if rng is not None else np.random.default_rng(DITHER_SEED), block.shape
        ),
    )


def _quantize_numpy(
    block: np.ndarray, bits: int, noise: np.ndarray | None
) -> tuple[np.ndarray, int]:
    scale = float(1 << (bits - 1))
    scaled = np.asarray(block, dtype=np.float64) * scale
    q = np.rint(scaled)
    lo, hi = -scale, scale - 1
    clipped = int(np.count_nonzero((q < lo) | (q > hi)))
    if noise is not None:
        q = np.where(q == scaled, q, np.rint(scaled + noise))
    np.clip(q, lo, hi, out=q)
    if bits <= 16:
        return (q * (1 << (16 - bits))).astype(np.int16), clipped
    return (q * (1 << (32 - bits))).astype(np.int32), clipped


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicAudioWriter:
    """Write audio to a temporary file beside `path`; rename it into place on `commit`.

    An error, Ctrl-C or `abort` removes the temporary file: no partial output is ever left.
    Without `overwrite`, an existing target is never replaced (checked again at commit).
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int,
        channels: int,
        format: str,
        subtype: str,
        overwrite: bool = False,
        dither: str = "tpdf",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.path = Path(path)
        if dither not in DITHER_MODES:
            raise ValueError(f"unknown dither '{dither}' (use {' | '.join(DITHER_MODES)})")
        self.dither = dither
        self.rng = rng if rng is not None else np.random.default_rng(DITHER_SEED)
        self.format, self.subtype = format, subtype
        self.overwrite = overwrite
        self.bits = INT_BITS.get(subtype)
        self.clipped = 0
        self.peak = 0.0
        self.frames = 0
        fd, self.tmp = temp_beside(self.path)
        os.close(fd)
        try:
            self._file = sf.SoundFile(
                str(self.tmp), "w", int(sample_rate), channels, subtype, format=format
            )
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise AudioWriteError(
                f"{self.path}: cannot write {format}/{subtype}: {_reason(exc)}"
            ) from None
        except BaseException:  # Ctrl-C while opening: no writer exists yet to abort later
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, block: np.ndarray) -> None:
        """Append (frames, channels) float samples."""
        if block.shape[0] == 0:
            return
        block = np.ascontiguousarray(block)
        self.peak = max(self.peak, float(block.max()), -float(block.min()))
        if self.bits is not None:
            data, clipped = quantize(block, self.bits, self.dither, self.rng)
            self.clipped += clipped
        elif self.subtype in ("FLOAT", "DOUBLE"):
            data = block
        else:  # codecs (vorbis, mp3, ulaw, ...) take floats in [-1, 1]
            self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
            data = np.clip(block, -1.0, 1.0)
        try:
            self._file.write(data)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioWriteError(f"{self.path}: write failed: {_reason(exc)}") from None
        self.frames += block.shape[0]

    def commit(self) -> None:
        try:
            self._file.close()
            with open(self.tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(self.tmp, 0o666 & ~_umask())
            if self.overwrite:
                os.replace(self.tmp, self.path)
            else:
                try:
                    os.link(self.tmp, self.path)  # atomic, fails if the target appeared
                except FileExistsError:
                    raise AudioWriteError(
                        f"{self.path}: appeared while processing; not overwritten (use --overwrite)"
                    ) from None
                except OSError:  # no hard links here: re-check, then rename
                    if self.path.exists():
                        raise AudioWriteError(f"{self.path}: exists; not overwritten") from None
                    os.replace(self.tmp, self.path)
                self.tmp.unlink(missing_ok=True)
        except OSError as exc:
            self.abort()
            raise AudioWriteError(
                f"{self.path}: cannot finish writing: {exc.strerror or exc}"
            ) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        try:
            if not self._file.closed:
                self._file.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicAudioWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
