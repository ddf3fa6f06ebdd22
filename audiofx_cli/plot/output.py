"""Figure output: format from the extension, never overwrite without asking, atomic writes.

The same rules as `audiofx process`: the figure goes to a temporary file beside the target and
is renamed into place only when complete, an existing file is replaced only with `overwrite`,
and an input is never an output. Torch-free; matplotlib is only touched through the figure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from audiofx_cli.errors import AudioWriteError, OutputExistsError, UsageError

FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def figure_format(path: str | Path) -> str:
    """'png' | 'svg' | 'pdf' from the extension.

    Raises:
        UsageError (exit 2): any other extension.
    """
    ext = Path(path).suffix.lower()
    fmt = FIGURE_FORMATS.get(ext)
    if fmt is None:
        known = ", ".join(e.lstrip(".") for e in FIGURE_FORMATS)
        raise UsageError(
            f"{path}: unknown figure extension '{ext or '(none)'}'; use one of {known}"
        )
    return fmt


def check_figure_output(path: Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> str:
    """Check an output path before any work; returns its format.

    Raises:
        UsageError, OutputExistsError (exit 2).
    """
    fmt = figure_format(path)
    for source in inputs:
        if source.exists() and path.exists() and os.path.samefile(source, path):
            raise OutputExistsError(f"{path}: output is an input file; refusing to overwrite it")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not an output file")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists (use --overwrite to replace it)")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{path}: output folder {parent} does not exist")
    return fmt


def save_figure(fig: Any, path: Path, dpi: float, overwrite: bool) -> None:
    """Write a matplotlib figure atomically (temp file beside the target, then rename).

    The saved image is exactly the figure's size (no tight bounding box), so a PNG is
    ``figsize * dpi`` pixels.

    Raises:
        AudioWriteError (exit 1): the file could not be written; nothing is left behind.
        OutputExistsError (exit 2): the target appeared meanwhile and overwrite is off.
    """
    fmt = figure_format(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".audiofx-tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, fails if the target appeared meanwhile
            except FileExistsError:
                raise OutputExistsError(f"{path}: appeared meanwhile; not overwritten") from None
            except OSError:
                if path.exists():
                    raise OutputExistsError(f"{path}: exists; not overwritten") from None
                os.replace(tmp, path)
    except OSError as exc:
        raise AudioWriteError(f"{path}: cannot write figure: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _metadata(fmt: str) -> dict[str, Any]:
    from audiofx_cli._version import __version__

    software = f"audiofx {__version__}"
    if fmt == "png":
        return {"Software": software}
    if fmt == "svg":
        return {"Creator": software, "Date": None}
    return {"Creator": software}
