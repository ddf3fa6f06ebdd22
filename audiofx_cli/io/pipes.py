"""`-` as input or output: stdin is spooled to a temporary file, stdout gets the finished file.

Spooling keeps memory bounded (disk holds the stream), lets two-pass stages re-read the input,
and means a failed run writes nothing at all to stdout (a consumer sees an empty stream and the
exit code), never half a file.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from audiofx_cli.errors import AudioReadError, AudioWriteError

COPY_BLOCK = 1 << 20


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """What arrives on `stream`, one read at a time (`read1`), so that Python runs between
    reads and Ctrl-C stops a run waiting on a stalled pipe. A plain `read(n)` (as in
    `shutil.copyfileobj`) loops in C until n bytes have come: a SIGINT landing between two of
    its reads was only noticed once the writer sent more than a megabyte or closed the pipe."""
    read = getattr(stream, "read1", stream.read)
    while chunk := read(COPY_BLOCK):
        yield chunk


@contextmanager
def spooled_stdin(stream: BinaryIO | None = None) -> Iterator[Path]:
    """Copy stdin to a temporary file (deleted afterwards) and yield its path."""
    source = stream if stream is not None else sys.stdin.buffer
    with tempfile.TemporaryDirectory(prefix="audiofx-stdin-") as folder:
        path = Path(folder) / "stdin"
        try:
            with open(path, "wb") as spool:
                for chunk in _chunks(source):
                    spool.write(chunk)
        except OSError as exc:
            raise AudioReadError(f"-: cannot read stdin: {exc.strerror or exc}") from None
        if path.stat().st_size == 0:
            raise AudioReadError("-: stdin is empty (no audio was piped in)")
        yield path


@contextmanager
def stdout_target(file_type: str) -> Iterator[Path]:
    """Yield a temporary output path with the right extension; on success copy it to stdout."""
    with tempfile.TemporaryDirectory(prefix="audiofx-stdout-") as folder:
        path = Path(folder) / f"stdout.{file_type.lower().lstrip('.')}"
        yield path
        sink = sys.stdout.buffer
        try:
            with open(path, "rb") as result:
                shutil.copyfileobj(result, sink, COPY_BLOCK)
            sink.flush()
        except BrokenPipeError:
            raise AudioWriteError("-: the reader of stdout went away") from None
        except OSError as exc:
            raise AudioWriteError(f"-: cannot write stdout: {exc.strerror or exc}") from None
