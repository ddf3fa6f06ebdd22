"""Feature files: `.npz` (numpy) or `.pt` (torch) holding a feature array with its axes.

`FeatureSink` is the engine's sink for chains that end in a feature stage. It streams every
chunk (bounded memory: one chunk at a time) into a temporary file beside the target: the
`.npz` archive itself, whose header gets the final length on `commit` (`io.npz_stream`), or
for `.pt` a raw file that `commit` turns into the torch file. Then the temporary file is
renamed into place (atomic; an existing output is replaced only with overwrite). `data` is
stored time-major (numpy Fortran order), which is what lets chunks along the time axis be
appended without knowing the final length; `np.load` and `torch.load` return it with its
logical shape (channel, ..., time).

`data` is float32 (default), float64 (`--subtype DOUBLE`), float16 (`HALF`) or bfloat16
(`BFLOAT16`): `.pt` holds bfloat16 natively; numpy has no bfloat16, so `.npz` stores its bits
as uint16 (float32 bits = uint32(data) << 16) and says so in `data_dtype` and `data_note`.

Keys (see docs/features.md): data, data_dtype, axes, one coordinate array per axis (channel, fc_hz,
mfc_hz, freq_hz, mel_hz, mfcc, time_s), counts / mask / ragged / ragged_over for ragged axes,
sample_rate, frame_rate, time_offset_s, chain (JSON), source, audiofx_version.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.axes import FeatureAxes
from audiofx_cli.errors import AudioFormatError, AudioWriteError, ProcessingError, UsageError
from audiofx_cli.io.behind import WriteBehind
from audiofx_cli.io.npz_stream import NpzStream
from audiofx_cli.io.temp import TEMP_SUFFIX, temp_beside

FEATURE_SUFFIXES = (".npz", ".pt")
_DTYPES = {
    None: "float32",
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "HALF": "float16",
    "BFLOAT16": "bfloat16",
}
# how each dtype is stored: numpy has no bfloat16, its bits go in uint16
_STORAGE = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
            "bfloat16": np.uint16}  # fmt: skip
_TORCH = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16}  # fmt: skip
BFLOAT16_NOTE = "bfloat16 stored as its bits in uint16: float32 bits = uint32(data) << 16"
FLOAT16_MAX = 65504.0
_TILE_BYTES = 4 << 20  # `write` transposes and writes this much at a time


def _json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray | Tensor):
            return np.asarray(obj).tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        return str(obj)

    return json.dumps(value, default=default)


def metadata(
    axes: FeatureAxes,
    n_frames: int,
    chain_spec: dict[str, Any] | None,
    source: str | None,
    data_dtype: str = "float32",
) -> dict[str, Any]:
    """Everything stored beside `data`: its dtype, axis names and coordinates, rates, the
    chain spec (a `ChainSpec.to_dict()`, stored as JSON), source."""
    from audiofx_cli._version import __version__

    meta: dict[str, Any] = {"data_dtype": data_dtype, "axes": list(axes.names)}
    for name, values in axes.coords.items():
        meta[name] = np.asarray(values)
    meta["time_s"] = axes.time_s(n_frames)
    if axes.ragged is not None and axes.counts is not None:
        meta["counts"] = np.asarray(axes.counts, dtype=np.int64)
        meta["mask"] = axes.mask()
        meta["ragged"] = axes.ragged
        meta["ragged_over"] = axes.ragged_over
    meta.update(
        sample_rate=float(axes.sample_rate),
        frame_rate=float(axes.frame_rate),
        time_offset_s=float(axes.time_offset_s),
        chain=_json(chain_spec) if chain_spec is not None else "{}",
        source=source or "",
        audiofx_version=__version__,
    )
    return meta


def feature_dtype(subtype: str | None) -> str:
    """float32 (default, FLOAT), float64 (DOUBLE), float16 (HALF) or bfloat16 (BFLOAT16) for
    `--subtype`.

    Raises:
        AudioFormatError: any other subtype.
    """
    key = subtype.upper() if subtype else None
    if key not in _DTYPES:
        raise AudioFormatError(
            "feature files hold float32 (--subtype FLOAT, default), float64 (DOUBLE), "
            f"float16 (HALF) or bfloat16 (BFLOAT16) data, got --subtype {subtype}"
        )
    return _DTYPES[key]


def encode(y: Tensor, dtype: str) -> np.ndarray:
    """A CPU block in the stored form of `dtype` (rounded to nearest, ties to even)."""
    y = y.detach().to("cpu")
    if dtype == "bfloat16":
        return y.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    if y.dtype in (torch.float32, torch.float64) and dtype != "float64":
        with np.errstate(over="ignore"):  # an overflow to inf is refused by the writer
            return y.numpy().astype(_STORAGE[dtype], copy=False)  # numpy's: no thread wake-up
    return y.to(_TORCH[dtype]).numpy()


def decode(data: np.ndarray, dtype: str) -> np.ndarray | Tensor:
    """A stored array back in its dtype (bfloat16 bits as a torch tensor, zero-copy)."""
    if dtype == "bfloat16":
        return torch.from_numpy(data.view(np.int16)).view(torch.bfloat16)
    return data


def block_peak(block: np.ndarray, dtype: str) -> float:
    """max |value| of a stored block (inf when a value overflowed the dtype)."""
    if not block.size:
        return 0.0
    if dtype == "bfloat16":
        values = decode(block, dtype)
        return float(torch.maximum(values.max(), -values.min()))
    return max(float(block.max()), -float(block.min()))


class FeatureSink:
    """Engine sink writing a feature file (.npz or .pt) atomically, in bounded memory.

    Args:
        path: target file; the format comes from its suffix.
        overwrite: replace an existing target.
        dtype: 'float32', 'float64', 'float16' or 'bfloat16' for `data`.
        chain_spec: the chain as `ChainSpec.to_dict()`, stored beside the data (None: '{}').
    """

    accepts_features = True

    def __init__(
        self,
        path: str | Path,
        overwrite: bool = False,
        dtype: str = "float32",
        chain_spec: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FEATURE_SUFFIXES:
            raise UsageError(f"{self.path}: feature files end in .npz or .pt")
        self.format = suffix[1:]
        self.overwrite = overwrite
        self.data_dtype = dtype
        self.dtype = np.dtype(_STORAGE[dtype])  # what the file holds
        self.chain_spec = chain_spec
        self.source: str | None = None
        self.axes: FeatureAxes | None = None
        self.tmp: Path | None = None  # the temporary file being written (removed on abort)
        self._file: Any = None
        self._tile: np.ndarray | None = None  # reused (frames, values) buffer of `write`
        self._behind: WriteBehind | None = None
        self.shape: tuple[int, ...] = ()
        self.frames = 0
        self.peak = 0.0
        self.clipped = 0

    def describe(self, axes: FeatureAxes, source: str) -> None:
        """Called by the engine before `open`: the chain's output axes and the input's name."""
        self.axes, self.source = axes, source

    def open(self, template: Tensor, sample_rate: float) -> None:
        axes = self.axes if self.axes is not None else FeatureAxes.audio(sample_rate)
        axes = axes.replace(frame_rate=float(sample_rate))
        if len(axes.names) != template.dim():
            names = tuple(f"dim{i}" for i in range(template.dim() - 1)) + ("time_s",)
            axes = FeatureAxes(names, float(sample_rate), axes.sample_rate)
        self.axes = axes.for_channels(template.shape[0])
        self.shape = tuple(template.shape[:-1])
        suffix = TEMP_SUFFIX if self.format == "npz" else TEMP_SUFFIX + ".raw"
        fd, self.tmp = temp_beside(self.path, suffix)
        if self.format == "npz":  # written in place: the archive is the temporary file
            os.close(fd)
            self._file = NpzStream(self.tmp, self.dtype, self.shape)
        else:
            self._file = os.fdopen(fd, "wb")
        self._behind = WriteBehind("features")

    def write(self, y: Tensor) -> None:
        if y.shape[-1] == 0:
            return
        block = encode(y, self.data_dtype)
        assert self._behind is not None
        self._behind.submit(self._write_block, block)  # written while the next is computed
        self.frames += y.shape[-1]

    def _write_block(self, block: np.ndarray) -> None:
        """In the writer thread: the block's peak, then its frames."""
        self.peak = max(self.peak, block_peak(block, self.data_dtype))
        if not math.isfinite(self.peak):  # the input was finite: the cast overflowed
            raise ProcessingError(
                f"{self.path}: a value beyond +-{FLOAT16_MAX:g}, the largest {self.data_dtype}; "
                "write --subtype BFLOAT16 (float32's range) or FLOAT, or scale the features "
                "(e.g. a db stage)"
            )
        try:
            self._write_frames(block)
        except OSError as exc:
            raise AudioWriteError(f"{self.path}: write failed: {exc.strerror or exc}") from None

    def _write_frames(self, block: np.ndarray) -> None:
        """Append `block` (..., frames) frame-major (Fortran order of the whole array), a few
        MB at a time through one reused buffer: a transposed copy of a whole block into fresh
        memory, then `tobytes`, cost seconds per minute of modulation features (1.4 GB)."""
        lead, frames = block.shape[:-1], block.shape[-1]
        per_frame = max(1, math.prod(lead))
        step = max(1, _TILE_BYTES // (per_frame * block.itemsize))
        tile = self._tile
        if tile is None or tile.shape != (step, per_frame) or tile.dtype != block.dtype:
            tile = self._tile = np.empty((step, per_frame), dtype=block.dtype)
        for start in range(0, frames, step):
            n = min(step, frames - start)
            np.copyto(tile[:n].reshape(n, *reversed(lead)), block[..., start : start + n].T)
            self._file.write(memoryview(tile[:n]).cast("B"))

    def commit(self) -> None:
        assert self.axes is not None and self.tmp is not None
        final: Path | None = None
        try:
            if self._behind is not None:
                self._behind.close()  # the last block written (or its error raised)
            meta = metadata(self.axes, self.frames, self.chain_spec, self.source, self.data_dtype)
            if self.data_dtype == "bfloat16" and self.format == "npz":
                meta["data_note"] = BFLOAT16_NOTE
            if isinstance(self._file, NpzStream):
                self._file.finish(self.frames, meta)
                final, self.tmp = self.tmp, None
            else:
                self._file.close()
                fd, final = temp_beside(self.path)
                os.close(fd)
                shape = (*self.shape, self.frames)
                _write_pt(final, self.tmp, shape, self.dtype, self.data_dtype, meta)
                self.tmp.unlink(missing_ok=True)
            _place(final, self.path, self.overwrite)
        except OSError as exc:
            if final is not None:
                final.unlink(missing_ok=True)
            self.abort()
            raise AudioWriteError(
                f"{self.path}: cannot finish writing: {exc.strerror or exc}"
            ) from None
        except BaseException:
            if final is not None:
                final.unlink(missing_ok=True)
            self.abort()
            raise

    def abort(self) -> None:
        if self._behind is not None:
            self._behind.close(errors=False)  # already failing: the first error counts
        if isinstance(self._file, NpzStream):
            self._file.abort()
        elif self._file is not None and not self._file.closed:
            self._file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def _write_pt(
    target: Path,
    raw: Path,
    shape: tuple[int, ...],
    storage: np.dtype,
    dtype: str,
    meta: dict[str, Any],
) -> None:
    count = int(np.prod(shape))
    if count:
        mapped = np.memmap(raw, dtype=storage, mode="c", shape=tuple(reversed(shape)))
        data = torch.as_tensor(decode(mapped, dtype))
        data = data.permute(*reversed(range(len(shape))))
    else:
        data = torch.zeros(shape, dtype=_TORCH[dtype])
    payload: dict[str, Any] = {"data": data}
    for name, value in meta.items():
        if isinstance(value, np.ndarray):
            payload[name] = torch.from_numpy(np.ascontiguousarray(value))
        else:
            payload[name] = value
    torch.save(payload, target)
    del data


def _place(tmp: Path, path: Path, overwrite: bool) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, fails if the target appeared meanwhile
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise AudioWriteError(
            f"{path}: appeared while processing; not overwritten (use --overwrite)"
        ) from None
    except OSError:
        if path.exists():
            tmp.unlink(missing_ok=True)
            raise AudioWriteError(f"{path}: exists; not overwritten") from None
        os.replace(tmp, path)
    tmp.unlink(missing_ok=True)


def read_feature_file(
    path: str | Path | BinaryIO, suffix: str | None = None
) -> tuple[np.ndarray | Tensor, dict[str, Any]]:
    """(data, metadata) from a .npz or .pt file written by `FeatureSink` or `save`, or from
    an open binary file (a shard member) whose format `suffix` ('.npz', '.pt') names."""
    if suffix is None:
        suffix = Path(path).suffix  # type: ignore[arg-type]
    source = str(path) if isinstance(path, str | Path) else path
    if suffix.lower() == ".pt":
        payload = torch.load(source, map_location="cpu", weights_only=True)
        data = payload.pop("data")
        meta = {k: (v.numpy() if isinstance(v, Tensor) else v) for k, v in payload.items()}
        return data, meta
    with np.load(source, allow_pickle=False) as npz:
        meta = {}
        for name in npz.files:
            if name == "data":
                continue
            value = npz[name]
            meta[name] = value.item() if value.ndim == 0 else value
        data = npz["data"]
    meta["axes"] = [str(a) for a in meta["axes"]]
    return decode(data, str(meta.get("data_dtype", data.dtype))), meta
