"""Feature arrays in Python: compute them, read feature files back, stack them for training.

    >>> from audiofx_cli import features
    >>> x, meta = features.compute("speech.wav", "mel-64")              # doctest: +SKIP
    >>> x.shape, meta.axes                                              # doctest: +SKIP
    (torch.Size([1, 64, 451]), ['channel', 'mel_hz', 'time_s'])
    >>> batch, lengths, meta = features.stack(["a.npz", "b.npz"])       # doctest: +SKIP
    >>> for key, x, meta in features.iter_shards("feats/shard-*.tar"):  # doctest: +SKIP
    ...     pass

Tensors are plain torch tensors (exchangeable zero-copy through DLPack). The metadata object
holds the axis names and coordinates, rates, the ragged-axis counts and mask, the chain and
its parameters, and the source name; `docs/features.md` describes the file layout.
"""

from __future__ import annotations

import glob
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.errors import UsageError


@dataclass
class FeatureMeta:
    """Axes and provenance of a feature tensor (channel, ..., time), no leading batch dims.

    Attributes:
        axes: axis names, e.g. ['channel', 'fc_hz', 'mfc_hz', 'time_s'].
        coords: coordinate arrays by name (channel, fc_hz, mfc_hz, freq_hz, time_s, ...).
        sample_rate: audio rate of the input (Hz).
        frame_rate: rate of the time axis (Hz).
        time_offset_s: time of frame 0.
        counts, mask: valid entries of the ragged axis (None when nothing is ragged).
        ragged, ragged_over: the ragged axis and the axis its counts run along.
        chain: the chain's stages with their full parameters.
        source: input file name ('' for tensors).
        version: audiofx version that wrote it.
    """

    axes: list[str]
    coords: dict[str, np.ndarray]
    sample_rate: float
    frame_rate: float
    time_offset_s: float = 0.0
    counts: np.ndarray | None = None
    mask: np.ndarray | None = None
    ragged: str | None = None
    ragged_over: str | None = None
    chain: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    version: str = ""

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> FeatureMeta:
        axes = [str(a) for a in meta["axes"]]
        fixed = {
            "axes", "sample_rate", "frame_rate", "time_offset_s", "counts", "mask", "ragged",
            "ragged_over", "chain", "source", "audiofx_version", "data_dtype", "data_note",
        }  # fmt: skip
        coords = {k: np.asarray(v) for k, v in meta.items() if k not in fixed}
        chain = meta.get("chain", "{}")
        return cls(
            axes=axes,
            coords=coords,
            sample_rate=float(meta["sample_rate"]),
            frame_rate=float(meta["frame_rate"]),
            time_offset_s=float(meta.get("time_offset_s", 0.0)),
            counts=None if meta.get("counts") is None else np.asarray(meta["counts"]),
            mask=None if meta.get("mask") is None else np.asarray(meta["mask"]),
            ragged=meta.get("ragged") or None,
            ragged_over=meta.get("ragged_over") or None,
            chain=json.loads(chain) if isinstance(chain, str) else dict(chain),
            source=str(meta.get("source", "")),
            version=str(meta.get("audiofx_version", "")),
        )


def _meta_from_chain(chain: Any, spec: dict[str, Any], y: Tensor, source: str) -> FeatureMeta:
    from audiofx_cli.axes import FeatureAxes, chain_axes
    from audiofx_cli.io.features import metadata

    axes = chain_axes(chain, chain.sample_rate).replace(frame_rate=float(chain.output_rate))
    if y.dim() < len(axes.names):
        names = tuple(f"dim{i}" for i in range(y.dim() - 1)) + ("time_s",)
        axes = FeatureAxes(names, axes.frame_rate, axes.sample_rate)
    channels = y.shape[-len(axes.names)]
    return FeatureMeta.from_dict(metadata(axes.for_channels(channels), y.shape[-1], spec, source))


def compute(
    wave_or_path: Tensor | np.ndarray | str | Path,
    chain: Any,
    sample_rate: float | None = None,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, FeatureMeta]:
    """Run a chain over a waveform or an audio file and return its output with axes.

    Args:
        wave_or_path: (..., channels, time) tensor or array, or an audio file path.
        chain: chain file, preset name ('mel-64', 'modulation-dau1997', ...), ChainSpec or
            list of stages in YAML form.
        sample_rate: of the waveform (Hz); taken from the file for a path.
        device: where to compute ('cpu', 'cuda', 'auto').
        dtype: processing dtype (designed coefficients stay float64).

    Returns:
        (features, meta): the chain's output (..., channels, ..., time) and its `FeatureMeta`.

    Raises:
        UsageError: missing sample rate, unreadable file, invalid chain.
    """
    from audiofx_cli.api import as_spec, load_chain
    from audiofx_cli.device import resolve_device

    source = ""
    if isinstance(wave_or_path, str | Path):
        import soundfile as sf

        path = Path(wave_or_path)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        data, file_rate = sf.read(str(path), dtype="float64", always_2d=True)
        wave = torch.from_numpy(np.ascontiguousarray(data.T))
        sample_rate, source = float(file_rate), str(wave_or_path)
    else:
        wave = torch.as_tensor(wave_or_path)
        if sample_rate is None:
            raise UsageError("compute(): give sample_rate for a waveform")
    if wave.dim() < 2:
        wave = wave.unsqueeze(0)
    target = resolve_device(device)
    spec = as_spec(chain)
    built = load_chain(spec, float(sample_rate), device=target, dtype=dtype)
    with torch.no_grad():
        y = built(wave.to(device=target, dtype=dtype))
    return y, _meta_from_chain(built, spec.to_dict(), y, source)


def load(path: str | Path) -> tuple[Tensor, FeatureMeta]:
    """Read a feature file (.npz or .pt) written by `audiofx process ... -o x.npz`.

    Returns:
        (data, meta): data (channel, ..., time) as a torch tensor (zero-copy from the file's
        array; stored time-major, so it may be non-contiguous), and its `FeatureMeta`.
    """
    from audiofx_cli.io.features import read_feature_file

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such feature file")
    data, meta = read_feature_file(path)
    tensor = data if isinstance(data, Tensor) else torch.from_numpy(data)
    return tensor, FeatureMeta.from_dict(meta)


def _same_layout(a: FeatureMeta, b: FeatureMeta, a_shape: tuple, b_shape: tuple) -> str | None:
    if a.axes != b.axes:
        return f"axes {a.axes} != {b.axes}"
    if a_shape[:-1] != b_shape[:-1]:
        return f"shape {a_shape[:-1]} != {b_shape[:-1]} (all but time)"
    for name, values in a.coords.items():
        if name == "time_s" or name not in b.coords:
            continue
        if values.shape != b.coords[name].shape or not np.allclose(
            values, b.coords[name], equal_nan=True
        ):
            return f"coordinates '{name}' differ"
    if a.frame_rate != b.frame_rate:
        return f"frame rate {a.frame_rate} != {b.frame_rate}"
    return None


def _tar_paths(shards: str | Path | list[str | Path]) -> list[Path]:
    if isinstance(shards, list):
        return [Path(p) for p in shards]
    if glob.has_magic(str(shards)):
        found = sorted(Path(p) for p in glob.glob(str(shards)))
        if not found:
            raise UsageError(f"{shards}: no shards match")
        return found
    return [Path(shards)]


def _sample(members: dict[str, bytes], tar: Path, key: str) -> tuple[Tensor, FeatureMeta]:
    """One shard sample (KEY.npz / .pt / .flac and KEY.json) as (data, meta)."""
    from audiofx_cli.io.features import read_feature_file

    sidecar = json.loads(members.get("json", b"{}"))
    for ext in ("npz", "pt"):
        if ext in members:
            data, meta = read_feature_file(io.BytesIO(members[ext]), f".{ext}")
            tensor = data if isinstance(data, Tensor) else torch.from_numpy(data)
            return tensor, FeatureMeta.from_dict(meta)
    if "flac" in members:
        import soundfile as sf

        wave, rate = sf.read(io.BytesIO(members["flac"]), dtype="float32", always_2d=True)
        channels = wave.shape[1]
        meta = FeatureMeta(
            axes=["channel", "time_s"],
            coords={"channel": np.arange(channels), "time_s": np.arange(len(wave)) / rate},
            sample_rate=float(rate),
            frame_rate=float(rate),
            chain=sidecar.get("chain", {}),
            source=str(sidecar.get("source", "")),
        )
        return torch.from_numpy(np.ascontiguousarray(wave.T)), meta
    raise UsageError(f"{tar}: sample '{key}' has no .npz, .pt or .flac member")


def iter_shards(
    shards: str | Path | list[str | Path],
) -> Iterator[tuple[str, Tensor, FeatureMeta]]:
    """(key, data, meta) for every sample of the tar shards `audiofx process --out-shards`
    wrote, shard by shard in name order, samples in the order they were written.

    Args:
        shards: a shard, a list of shards, or a glob ('feats/shard-*.tar').

    Raises:
        UsageError: no such shard, or a member that is not a sample of audiofx.
    """
    for path in _tar_paths(shards):
        if not path.is_file():
            raise UsageError(f"{path}: no such shard")
        members: dict[str, dict[str, bytes]] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, _, name = member.name.rpartition("/")
                stem, _, ext = name.partition(".")
                key = f"{folder}/{stem}" if folder else stem
                handle = tar.extractfile(member)
                assert handle is not None
                members.setdefault(key, {})[ext] = handle.read()
                if "json" in members[key] and len(members[key]) == 2:
                    yield key, *_sample(members.pop(key), path, key)
        for key, rest in members.items():
            yield key, *_sample(rest, path, key)


def _items(paths: list[str | Path]) -> Iterator[tuple[str, Tensor, FeatureMeta]]:
    """(name, data, meta) of feature files and of every sample of .tar shards."""
    for path in paths:
        if str(path).endswith(".tar"):
            for key, data, meta in iter_shards(path):
                yield f"{path}:{key}", data, meta
        else:
            yield str(path), *load(path)


def stack(paths: list[str | Path], pad: bool = True) -> tuple[Tensor, Tensor, FeatureMeta]:
    """Load feature files of the same layout into one (batch, channel, ..., time) tensor.

    Args:
        paths: feature files (same chain and channel count; lengths may differ), or .tar
            shards of `--out-shards` (every sample in them, in order).
        pad: zero-pad every item to the longest time axis; False requires equal lengths.

    Returns:
        (batch, lengths, meta): lengths (batch,) int64 frames per item; meta of the first file
        with time_s covering the longest item.

    Raises:
        UsageError: no paths, different layouts, or unequal lengths with pad=False.
    """
    if not paths:
        raise UsageError("stack(): no feature files given")
    items = list(_items(paths))
    if not items:
        raise UsageError("stack(): the shards hold no samples")
    first_name, first, meta = items[0]
    for name, data, other in items[1:]:
        problem = _same_layout(meta, other, tuple(first.shape), tuple(data.shape))
        if problem:
            raise UsageError(f"{name}: not stackable with {first_name}: {problem}")
    lengths = torch.tensor([d.shape[-1] for _, d, _ in items], dtype=torch.int64)
    longest = int(lengths.max())
    if not pad and bool((lengths != longest).any()):
        raise UsageError(f"stack(pad=False): lengths differ: {lengths.tolist()} frames")
    batch = first.new_zeros((len(items), *first.shape[:-1], longest))
    for i, (_, data, _) in enumerate(items):
        batch[i, ..., : data.shape[-1]] = data
    coords = dict(meta.coords)
    coords["time_s"] = meta.time_offset_s + np.arange(longest) / meta.frame_rate
    return batch, lengths, replace(meta, coords=coords)
