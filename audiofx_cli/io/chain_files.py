"""Files a chain names (FIR taps, impulse responses, the chain file itself), read with bounds.

Used by the chain's validation (`chain.defs`) and by the stages that need the data (`stages.fir`,
`stages.space`). Every problem is a `ParamError` on the key that named the file, so the chain
builder reports it at the stage's YAML line.

A named file must be a regular file (a FIFO would block, `/dev/zero` never ends) no larger than
a cap derived from the parameter's limit, checked on the open descriptor before any data is
read; reading stops one byte past the cap, so a file that grows meanwhile is refused too:

- taps: at most `MAX_TAPS`; a .npy file at most 8 bytes a tap plus its header, a text file at
  most `TAP_TEXT_BYTES` a tap.
- impulse responses: at most `MAX_IR_SECONDS` and `MAX_IR_SAMPLES` samples (all channels), at
  the file's rate and after resampling to the signal's, whose ratio (in lowest terms) is at most
  `MAX_IR_RATIO`; the file at most 8 bytes a sample plus `HEADER_BYTES`.
- all the files one chain names: at most `MAX_CHAIN_FILE_SAMPLES` numbers in all (a chain of
  1000 stages naming one big file would otherwise build 1000 copies of it).
"""

from __future__ import annotations

import functools
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

from audiofx_cli.errors import ParamError

MAX_TAPS = 1_000_001
TAP_TEXT_BYTES = 40  # "-1.2345678901234567e-308, " and room for spaces
HEADER_BYTES = 16 << 20  # headers and metadata chunks (.npy header, WAV LIST, FLAC pictures)
MAX_IR_SECONDS = 60.0
MAX_IR_SAMPLES = 1 << 25  # frames x channels: 60 s of 8 channels at 48 kHz is 23 M
MAX_IR_RATIO = 1 << 16  # max(up, down) of the IR's resampling ratio in lowest terms
MAX_CHAIN_FILE_SAMPLES = MAX_IR_SAMPLES  # taps and IR samples of all the files of one chain
MAX_TAPS_NPY_BYTES = HEADER_BYTES + 8 * MAX_TAPS
MAX_TAPS_TEXT_BYTES = TAP_TEXT_BYTES * MAX_TAPS
MAX_IR_BYTES = HEADER_BYTES + 8 * MAX_IR_SAMPLES

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """'a FIFO (named pipe)', 'a character device', ... for a stat mode that is not a regular
    file ('a special file' when unknown)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def _size_text(nbytes: int) -> str:
    if nbytes < 1 << 20:
        return f"{nbytes:,} bytes"
    return f"{nbytes / (1 << 20):,.1f} MiB"


def open_regular(path: str | Path, max_bytes: int, key: str | None, what: str) -> IO[bytes]:
    """Open `path` for reading if it is a regular file of at most `max_bytes` (checked with
    fstat on the open descriptor: the file checked is the file read).

    Raises:
        ParamError: missing, unreadable, not a regular file, or too large.
    """
    try:
        mode = os.stat(path).st_mode  # stat first: opening a FIFO would wait for a writer
        if not stat.S_ISREG(mode):
            raise ParamError(key, f"{what} {path} is {file_kind(mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ParamError(key, f"{what} not found: {path}") from None
    except OSError as exc:
        raise ParamError(key, f"cannot read {what} {path}: {exc.strerror or exc}") from None
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = f"is {file_kind(info.st_mode)}, not a regular file"
    elif info.st_size > max_bytes:
        problem = f"is {_size_text(info.st_size)}; at most {_size_text(max_bytes)}"
    if problem:
        handle.close()
        raise ParamError(key, f"{what} {path} {problem}")
    return handle


def read_bytes(path: str | Path, max_bytes: int, key: str | None, what: str) -> bytes:
    """The content of a regular file of at most `max_bytes` (see `open_regular`); a file that
    grows past the cap while it is read is refused."""
    with open_regular(path, max_bytes, key, what) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise ParamError(key, f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ParamError(key, f"{what} {path} grew past {_size_text(max_bytes)} while read")
    return data


def read_text_file(path: str | Path, max_bytes: int, what: str, key: str | None = None) -> str:
    """A UTF-8 text file of at most `max_bytes` (see `read_bytes`)."""
    data = read_bytes(path, max_bytes, key, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamError(key, f"{what} {path} is not UTF-8 text ({exc.reason})") from None


def _npy_taps(path: Path) -> Any:
    import numpy as np

    with open_regular(path, MAX_TAPS_NPY_BYTES, "file", "taps file") as handle:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(handle)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version} is not supported (1.0, 2.0)")
            read_header = (
                fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            )
            shape, _, dtype = read_header(handle)
        except (ValueError, SyntaxError, EOFError) as exc:
            raise ParamError("file", f"cannot read taps from {path}: {exc}") from None
        if dtype.kind not in "fiu" or math.prod(shape) > MAX_TAPS:
            raise ParamError(
                "file",
                f"{path} holds {dtype} values of shape {shape}; taps must be at most "
                f"{MAX_TAPS:,} real numbers",
            )
        handle.seek(0)
        try:
            return np.lib.format.read_array(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ParamError("file", f"cannot read taps from {path}: {exc}") from None


def read_taps_file(path: str | Path) -> Any:
    """Read FIR taps from .npy (1-D) or a text file of numbers (whitespace/comma separated).

    Raises:
        ParamError: the file is missing, not a regular file, too large, unreadable, not 1-D,
            empty, longer than MAX_TAPS or has non-finite values.
    """
    import numpy as np

    path = Path(path)
    if path.suffix.lower() == ".npy":
        taps = _npy_taps(path)
    else:
        text = read_text_file(path, MAX_TAPS_TEXT_BYTES, "taps file", key="file")
        words = text.replace(",", " ").split()
        if len(words) > MAX_TAPS:
            raise ParamError("file", f"{path} holds {len(words):,} taps; at most {MAX_TAPS:,}")
        try:
            taps = np.array(words, dtype=np.float64)
        except ValueError as exc:
            raise ParamError("file", f"cannot read taps from {path}: {exc}") from None
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 1 or taps.size == 0:
        raise ParamError("file", f"{path} must hold a non-empty 1-D array, got shape {taps.shape}")
    if not np.all(np.isfinite(taps)):
        raise ParamError("file", f"{path} holds NaN or Inf values")
    return taps


def file_samples(path: str | Path, key: str) -> int:
    """Numbers in a file a chain names: taps (`key` 'file') or IR frames x channels ('ir').
    Cached by the file's identity (inode, size, mtime), so a chain naming one file many times
    reads it once.

    Raises:
        ParamError: as `read_taps_file` / `ir_info`.
    """
    try:
        info = os.stat(path)
        identity = (info.st_ino, info.st_size, info.st_mtime_ns)
    except OSError:
        identity = (-1, -1, -1)  # missing: the reader gives the reason
    return _count(str(path), key, identity)


@functools.lru_cache(maxsize=64)
def _count(path: str, key: str, identity: tuple[int, int, int]) -> int:
    if key == "file":
        return len(read_taps_file(path))
    frames, channels, _ = ir_info(path)
    return frames * channels


def _ir_limits(path: Path, frames: int, channels: int, rate: int) -> None:
    if rate < 1 or channels < 1:
        raise ParamError("ir", f"impulse response {path} has {channels} channels at {rate} Hz")
    if frames > MAX_IR_SECONDS * rate:
        raise ParamError(
            "ir",
            f"impulse response {path} is {frames / rate:.1f} s long (at most {MAX_IR_SECONDS:g} s)",
        )
    if frames * channels > MAX_IR_SAMPLES:
        raise ParamError(
            "ir",
            f"impulse response {path} has {frames:,} frames x {channels} channels; at most "
            f"{MAX_IR_SAMPLES:,} samples ({8 * MAX_IR_SAMPLES >> 20} MiB as float64)",
        )


def ir_info(path: str | Path) -> tuple[int, int, int]:
    """(frames, channels, rate) of an impulse response file, from its header; checks that it
    is a regular file within the limits without reading its samples.

    Raises:
        ParamError: missing, special, too large, unreadable, or over a limit.
    """
    import soundfile as sf

    path = Path(path)
    with open_regular(path, MAX_IR_BYTES, "ir", "impulse response file") as handle:
        try:
            with sf.SoundFile(handle) as audio:
                frames, channels, rate = audio.frames, audio.channels, audio.samplerate
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
            raise ParamError("ir", f"cannot read impulse response {path}: {exc}") from None
    _ir_limits(path, frames, channels, rate)
    return frames, channels, rate


def check_ir_resampling(path: str | Path, sample_rate: float) -> None:
    """Refuse an impulse response whose resampling to `sample_rate` needs more memory than the
    limits allow (ratio or resampled length; the sizes are in the message).

    Raises:
        ParamError: on key 'ir'.
    """
    frames, channels, ir_rate = ir_info(path)
    if ir_rate == sample_rate:
        return
    if not float(sample_rate).is_integer():
        raise ParamError("ir", f"resampling the IR needs an integer rate, got {sample_rate:g} Hz")
    rate = int(sample_rate)
    g = math.gcd(rate, ir_rate)
    up, down = rate // g, ir_rate // g
    if max(up, down) > MAX_IR_RATIO:
        raise ParamError(
            "ir",
            f"resampling the IR {path} from {ir_rate} Hz to {rate} Hz is the ratio {up}/{down}; "
            f"at most {MAX_IR_RATIO} in lowest terms (a {20 * max(up, down) + 1:,}-tap filter)",
        )
    resampled = math.ceil(frames * up / down)
    if resampled * channels > MAX_IR_SAMPLES:
        raise ParamError(
            "ir",
            f"the IR {path} resampled to {rate} Hz has {resampled:,} frames x {channels} "
            f"channels; at most {MAX_IR_SAMPLES:,} samples",
        )


def read_ir(path: str | Path) -> tuple[Any, int]:
    """Read an impulse response: ((channels, taps) float64 array, sample rate).

    Raises:
        ParamError: missing, special or unreadable file, empty, over a limit, or non-finite
            values.
    """
    import numpy as np
    import soundfile as sf

    path = Path(path)
    with open_regular(path, MAX_IR_BYTES, "ir", "impulse response file") as handle:
        try:
            with sf.SoundFile(handle) as audio:
                _ir_limits(path, audio.frames, audio.channels, audio.samplerate)
                rate = audio.samplerate
                limit = min(int(MAX_IR_SECONDS * rate), MAX_IR_SAMPLES // audio.channels)
                data = audio.read(limit + 1, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
            raise ParamError("ir", f"cannot read impulse response {path}: {exc}") from None
    if data.shape[0] == 0:
        raise ParamError("ir", f"impulse response {path} is empty")
    _ir_limits(path, data.shape[0], data.shape[1], rate)
    if not np.all(np.isfinite(data)):
        raise ParamError("ir", f"impulse response {path} holds NaN or Inf values")
    return data.T.copy(), int(rate)
