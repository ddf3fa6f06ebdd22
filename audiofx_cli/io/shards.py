"""Dataset shards: WebDataset-style tar files of members KEY.EXT, each shard written atomically.

`ShardWriter` appends samples (the members of one key: KEY.npz + KEY.json, or KEY.flac +
KEY.json) to the current tar file, a temporary file beside the target; when the next sample
would make the file (tar records of 10240 bytes) larger than `max_bytes` the shard is closed
(fsync, renamed into place) and the next one begun. A sample larger than `max_bytes` gets a
shard of its own. An error or Ctrl-C removes the shard being written; shards already closed
stay whole. Torch-free.

Shard names come from a printf pattern with one integer field (`feats/shard-%06d.tar`): the
j-th shard of a run is `pattern % (first + j * step)`, so machines of a `--shard K/N` split
(first K - 1, step N) write disjoint names without talking to each other.

Example:
    >>> import tarfile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> writer = ShardWriter(os.path.join(folder, "s-%03d.tar"), max_bytes=10_000)
    >>> os.path.basename(writer.add("a", {"txt": b"hello"}))
    's-000.tar'
    >>> writer.close()
    >>> with tarfile.open(writer.written[0]) as tar:
    ...     tar.getnames()
    ['a.txt']
"""

from __future__ import annotations

import glob
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from audiofx_cli.errors import AudioWriteError, UsageError
from audiofx_cli.io.temp import temp_beside

_FIELD = re.compile(r"%0?\d*d")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
_BLOCK = tarfile.BLOCKSIZE  # 512: a member is a header block plus its data in whole blocks


def parse_size(text: str) -> int:
    """'1GB' (10^9), '512MiB' (2^29), '1000000' -> bytes.

    Raises:
        UsageError: not a positive size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise UsageError(
            f"--shard-size must be a size like 1GB, 500MB, 256MiB or a byte count, got '{text}'"
        )
    return max(1, int(float(match.group(1)) * _UNITS[unit]))


def check_pattern(pattern: str) -> None:
    """Raises UsageError unless the pattern has exactly one integer field and ends in .tar."""
    if len(_FIELD.findall(pattern)) != 1 or pattern.count("%") != 1:
        raise UsageError(
            f"--out-shards needs one integer field like %06d in the name, got '{pattern}'"
        )
    if not pattern.endswith(".tar"):
        raise UsageError(f"--out-shards names tar files (NAME.tar), got '{pattern}'")


def existing_shards(pattern: str) -> list[str]:
    """Files that already match the pattern (any number in the field)."""
    return sorted(glob.glob(glob.escape(pattern).replace(_FIELD.search(pattern)[0], "*")))  # type: ignore[index]


def _on_disk(n_bytes: int) -> int:
    """A tar file's size: its blocks rounded up to whole 10240-byte records."""
    return -(-n_bytes // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def member_size(n_bytes: int) -> int:
    """Bytes a member takes in a tar file: its header block and its data padded to blocks."""
    return _BLOCK + -(-n_bytes // _BLOCK) * _BLOCK


@dataclass
class ShardInfo:
    """One shard of the run: its file, its keys and its size."""

    path: str
    keys: list[str] = field(default_factory=list)
    bytes: int = 0


class ShardWriter:
    """Writes samples into size-limited tar shards (see the module docstring).

    Args:
        pattern: printf pattern of the shard names, one integer field.
        max_bytes: a shard is closed before it would grow beyond this.
        overwrite: replace existing shard files (else an existing name is an error).
        first, step: shard j is numbered first + j * step.
    """

    def __init__(
        self, pattern: str, max_bytes: int, overwrite: bool = False, first: int = 0, step: int = 1
    ) -> None:
        check_pattern(pattern)
        self.pattern, self.max_bytes, self.overwrite = pattern, max_bytes, overwrite
        self.first, self.step = first, step
        self.shards: list[ShardInfo] = []  # closed and placed
        self.current: ShardInfo | None = None
        self._tar: tarfile.TarFile | None = None
        self._file: BinaryIO | None = None
        self._tmp: Path | None = None

    @property
    def written(self) -> list[str]:
        return [s.path for s in self.shards]

    def add(self, key: str, members: dict[str, bytes]) -> str:
        """Append one sample (members by extension, e.g. {'npz': ..., 'json': ...}); returns
        the path of the shard it went into."""
        size = sum(member_size(len(data)) for data in members.values())
        if self.current is not None and _on_disk(self.current.bytes + size) > self.max_bytes:
            self.close()
        if self.current is None:
            self._open()
        assert self._tar is not None and self.current is not None
        now = time.time()
        try:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime, info.mode = len(data), now, 0o644
                self._tar.addfile(info, _Reader(data))
        except OSError as exc:
            self.abort()
            raise AudioWriteError(
                f"{self.current_path}: write failed: {exc.strerror or exc}"
            ) from None
        self.current.keys.append(key)
        self.current.bytes += size
        return self.current.path

    @property
    def current_path(self) -> str:
        return self.current.path if self.current is not None else ""

    def _open(self) -> None:
        path = Path(self.pattern % (self.first + len(self.shards) * self.step))
        if path.exists() and not self.overwrite:
            raise AudioWriteError(f"{path}: exists (use --overwrite to replace it)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temp_beside(path)
        except OSError as exc:
            raise AudioWriteError(f"{path}: cannot create: {exc.strerror or exc}") from None
        self._tmp, self._file = Path(tmp), os.fdopen(fd, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self.current = ShardInfo(str(path), bytes=2 * _BLOCK)  # the end-of-archive blocks

    def close(self) -> None:
        """Finish the shard being written (if any): end of archive, fsync, rename."""
        if self.current is None:
            return
        assert self._tar is not None and self._file is not None and self._tmp is not None
        target = Path(self.current.path)
        try:
            self._tar.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(self._tmp, 0o666 & ~mask)
            if not self.overwrite and target.exists():
                raise AudioWriteError(f"{target}: appeared meanwhile; not overwritten")
            os.replace(self._tmp, target)
        except OSError as exc:
            self.abort()
            raise AudioWriteError(f"{target}: cannot finish: {exc.strerror or exc}") from None
        except BaseException:
            self.abort()
            raise
        self.current.bytes = target.stat().st_size
        self.shards.append(self.current)
        self.current, self._tar, self._file, self._tmp = None, None, None, None

    def abort(self) -> list[str]:
        """Drop the shard being written (its temporary file); returns the keys it held."""
        keys = self.current.keys if self.current is not None else []
        for closer in (self._tar, self._file):
            try:
                if closer is not None:
                    closer.close()
            except (OSError, ValueError, tarfile.TarError):
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self.current, self._tar, self._file, self._tmp = None, None, None, None
        return keys


class _Reader:
    """A file-like view of bytes for `TarFile.addfile` (no copy into a BytesIO)."""

    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(len(self._view), self._pos + size)
        chunk = self._view[self._pos : end].tobytes()
        self._pos = end
        return chunk
