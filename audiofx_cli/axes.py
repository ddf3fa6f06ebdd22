"""Axis metadata of stage outputs: names, coordinates, frame rate, ragged counts.

A chain's output is (..., *axes) where the leading dims are batch dims (none in a file run) and
`axes.names` names the rest, e.g. ('channel', 'fc_hz', 'mfc_hz', 'time_s'). Feature stages
declare `feature_axes(axes) -> axes` (what their output looks like given their input's axes);
`chain_axes` folds that over a chain. Audio is ('channel', 'time_s') at the sample rate.

Ragged axes (the modulation filterbank's filters per auditory channel) are stored padded:
`coords[ragged]` is 2-D (n_entries, max_count) with NaN padding, `counts[i]` is the number of
valid entries for index i of the axis named `ragged_over`; padded data values are 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TIME = "time_s"


@dataclass(frozen=True)
class FeatureAxes:
    """Names and coordinates of the trailing axes of a stage's output.

    Args:
        names: axis names, the last one always 'time_s'.
        coords: coordinate arrays by name: 1-D for a plain axis (fc_hz (B,), freq_hz (F,)),
            2-D NaN-padded for the ragged axis; may hold extra per-entry coordinates
            (fc_hz of each audio channel when the modulation filterbank is fed directly).
        frame_rate: rate of the time axis in Hz (sample rate, or sample_rate / hop).
        time_offset_s: time of frame 0 (frame centres: 0 for centred STFT frames).
        sample_rate: audio rate at the chain's input.
        ragged: name of the ragged axis, or None.
        ragged_over: name of the axis `counts` runs along.
        counts: valid entries of the ragged axis for each index of `ragged_over`.
    """

    names: tuple[str, ...]
    frame_rate: float
    sample_rate: float
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    time_offset_s: float = 0.0
    ragged: str | None = None
    ragged_over: str | None = None
    counts: np.ndarray | None = None

    @classmethod
    def audio(cls, sample_rate: float) -> FeatureAxes:
        return cls(("channel", TIME), float(sample_rate), float(sample_rate))

    @property
    def is_audio(self) -> bool:
        return self.names == ("channel", TIME)

    def replace(self, **changes: Any) -> FeatureAxes:
        return dataclasses.replace(self, **changes)

    def insert(self, name: str, coords: np.ndarray | None, **changes: Any) -> FeatureAxes:
        """A new axis just before time, with its coordinates."""
        new_coords = dict(self.coords)
        if coords is not None:
            new_coords[name] = np.asarray(coords)
        names = (*self.names[:-1], name, TIME)
        return dataclasses.replace(self, names=names, coords=new_coords, **changes)

    def swap(self, old: str, name: str, coords: np.ndarray | None, **changes: Any) -> FeatureAxes:
        """Replace axis `old` by `name` (e.g. freq_hz -> mel_hz)."""
        new_coords = {k: v for k, v in self.coords.items() if k != old}
        if coords is not None:
            new_coords[name] = np.asarray(coords)
        names = tuple(name if n == old else n for n in self.names)
        return dataclasses.replace(self, names=names, coords=new_coords, **changes)

    def time_s(self, n_frames: int) -> np.ndarray:
        """Time of each frame in seconds."""
        return self.time_offset_s + np.arange(n_frames, dtype=np.float64) / self.frame_rate

    def mask(self) -> np.ndarray | None:
        """(n, max_count) boolean mask of the valid entries of the ragged axis."""
        if self.ragged is None or self.counts is None:
            return None
        width = self.coords[self.ragged].shape[-1]
        return np.arange(width)[None, :] < np.asarray(self.counts)[:, None]

    def for_channels(self, channels: int) -> FeatureAxes:
        """Fill the 'channel' coordinate and broadcast per-channel entries given once."""
        coords = dict(self.coords)
        coords["channel"] = np.arange(channels)
        counts = self.counts
        if self.ragged_over == "channel" and self.ragged is not None:
            if counts is not None and counts.size == 1 and channels > 1:
                counts = np.repeat(counts, channels)
            ragged = coords[self.ragged]
            if ragged.ndim == 2 and ragged.shape[0] == 1 and channels > 1:
                coords[self.ragged] = np.repeat(ragged, channels, axis=0)
            if "fc_hz" in coords and coords["fc_hz"].size == 1 and channels > 1:
                coords["fc_hz"] = np.repeat(coords["fc_hz"], channels)
        return dataclasses.replace(self, coords=coords, counts=counts)


def chain_axes(stages: Iterable[Any], sample_rate: float | None = None) -> FeatureAxes:
    """Fold `feature_axes` over stages; stages without it keep the axes (rate updated).

    Args:
        stages: modules in order (a Chain or a list).
        sample_rate: audio rate at the input (default: the first stage's `sample_rate`).
    """
    stages = list(stages)
    if sample_rate is None:
        sample_rate = float(getattr(stages[0], "sample_rate", 0.0) or 0.0) if stages else 0.0
    axes = FeatureAxes.audio(sample_rate)
    for stage in stages:
        describe = getattr(stage, "feature_axes", None)
        if describe is not None:
            axes = describe(axes)
        else:
            rate = getattr(stage, "output_rate", None)
            if rate is not None and rate != axes.frame_rate and axes.is_audio:
                axes = axes.replace(frame_rate=float(rate))
    return axes
