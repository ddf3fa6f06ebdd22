"""A chain as a batch function for Ray Data and Hugging Face `datasets`.

    import ray, audiofx_cli.ray_data as afx
    ds = ray.data.from_items([{"path": p} for p in paths])        # local paths or URLs
    ds = ds.map_batches(afx.Processor, fn_constructor_kwargs={"chain": "mel-64"}, concurrency=4)

    ds = datasets.Dataset.from_dict({"path": paths})
    ds = ds.map(afx.Processor("vocal"), batched=True, batch_size=8)

`Processor` is a callable class: Ray constructs it once per worker, and it builds the chain
once per sample rate, on the worker's device ('auto': CUDA when the worker has a GPU). Each call
maps a batch (a dict of columns) to the same rows with the chain's output added:

- input rows: `path` (a local path or a URL such as s3://bucket/a.flac, read as `audiofx
  process` reads it), or `audio` (a (channels, time) or (time,) array) with `sample_rate`, or
  `audio` as Hugging Face's decoded Audio dict (`{"array", "sampling_rate"}`);
- output columns: `audio` (float32 (channels, time)) and `sample_rate` for audio chains, or
  `features` (float32 (channel, ..., time)) and `axes` (JSON: names, frame rate, coordinates)
  for feature chains; the input's other columns are kept, `path` included.

The output equals `audiofx_cli.process_file` on the same input before quantisation to the file's
subtype (the engine is the same: chunks of `chunk_seconds`, exact streaming). A row that cannot
be read or processed raises the error with the row's path: Ray retries or fails the batch as it
is configured to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from audiofx_cli.api import DEFAULT_CHUNK_SECONDS, as_spec, load_chain
from audiofx_cli.axes import FeatureAxes, chain_axes
from audiofx_cli.device import resolve_device, resolve_dtype
from audiofx_cli.io.urls import URLPath, fetched, location

__all__ = ["Processor", "axes_json"]


class Processor:
    """Map batches of `{"path"}` or `{"audio", "sample_rate"}` rows through a chain.

    Args:
        chain: chain file, preset name, URL of a chain file, ChainSpec or stage list.
        device: 'auto' | 'cpu' | 'cuda' | 'cuda:N' (resolved on the worker).
        precision: 'float32' | 'float64' processing.
        chunk_seconds: streaming chunk (memory per row is bounded by it plus the row itself).
    """

    def __init__(
        self,
        chain: Any,
        *,
        device: str = "auto",
        precision: str = "float32",
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    ) -> None:
        self.spec = as_spec(chain)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision)
        self.chunk_seconds = float(chunk_seconds)
        self._chains: dict[float, Any] = {}

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        columns = {name: list(values) for name, values in batch.items()}
        n_rows = len(next(iter(columns.values()), []))
        outputs = [self.process_row({k: v[i] for k, v in columns.items()}) for i in range(n_rows)]
        for name in ("audio", "features", "axes", "sample_rate"):
            if any(name in out for out in outputs):
                columns[name] = [out.get(name) for out in outputs]
        return columns

    def process_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One row: {'audio' | 'features', 'sample_rate' | 'axes'}."""
        wave, rate, name = _read_row(row)
        chain = self._chain(rate)
        import torch

        from audiofx_cli.stream import run_analysis, run_tensor

        x = torch.as_tensor(wave, dtype=self.dtype, device=self.device)
        chunk = max(1, int(round(self.chunk_seconds * rate)))
        try:
            with torch.no_grad():
                run_analysis(chain, lambda: x.split(chunk, dim=-1), x[..., :0], x.shape[-1])
                y = run_tensor(chain, x, chunk)
        except Exception as exc:
            raise type(exc)(f"{name}: {exc}") from exc
        data = y.detach().to("cpu", torch.float32).numpy()
        axes = chain_axes(chain, rate)
        if axes.is_audio:
            return {"audio": data, "sample_rate": float(chain.output_rate or rate)}
        axes = axes.replace(frame_rate=float(chain.output_rate or rate))
        axes = axes.for_channels(data.shape[-len(axes.names)])
        return {"features": data, "axes": axes_json(axes, data.shape[-1])}

    def _chain(self, rate: float) -> Any:
        if rate not in self._chains:
            self._chains[rate] = load_chain(self.spec, rate, device=self.device, dtype=self.dtype)
        return self._chains[rate]


def _read_row(row: Mapping[str, Any]) -> tuple[np.ndarray, float, str]:
    """(wave (channels, time) float64, sample rate, name for errors) of a row."""
    if row.get("path") is not None and row.get("audio") is None:
        return _read_path(str(row["path"]))
    audio = row.get("audio")
    if isinstance(audio, Mapping):  # Hugging Face Audio: {"array", "sampling_rate", "path"}
        wave, rate = audio.get("array"), audio.get("sampling_rate")
        name = str(audio.get("path") or row.get("path") or "<audio>")
    else:
        wave, rate, name = audio, row.get("sample_rate"), str(row.get("path") or "<audio>")
    if wave is None or rate is None:
        raise ValueError(
            "a row needs 'path', or 'audio' with 'sample_rate' (or an Audio dict with "
            f"'array' and 'sampling_rate'); got columns {sorted(row)}"
        )
    array = np.asarray(wave, dtype=np.float64)
    return (array[None] if array.ndim == 1 else array), float(rate), name


def _read_path(path: str) -> tuple[np.ndarray, float, str]:
    import soundfile as sf

    loc = location(path)
    if isinstance(loc, URLPath):
        with fetched(loc) as local:
            data, rate = sf.read(str(local), dtype="float64", always_2d=True)
    else:
        data, rate = sf.read(str(loc), dtype="float64", always_2d=True)
    return np.ascontiguousarray(data.T), float(rate), path


def axes_json(axes: FeatureAxes, frames: int) -> str:
    """Axis names, rates and coordinates of a feature output as JSON (`time_s` for `frames`)."""
    coords: dict[str, Any] = {k: np.asarray(v).tolist() for k, v in axes.coords.items()}
    coords["time_s"] = np.asarray(axes.time_s(frames)).tolist()
    out: dict[str, Any] = {
        "names": list(axes.names),
        "frame_rate": axes.frame_rate,
        "time_offset_s": axes.time_offset_s,
        "sample_rate": axes.sample_rate,
        "coords": coords,
    }
    if axes.ragged is not None:
        out.update(ragged=axes.ragged, ragged_over=axes.ragged_over)
        out["counts"] = None if axes.counts is None else np.asarray(axes.counts).tolist()
    return json.dumps(out, allow_nan=True)
