"""Sinks: where the engine (`audiofx_cli.stream`) puts processed chunks.

`Sink` is the protocol; `AudioSink` writes an audio file atomically (behind the engine, one
block in flight), `io.features.FeatureSink` a feature array with its axes. `make_sink` picks
one by the output's extension; `check_output` validates an output path's extension, subtype
and dither before any input is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch import Tensor

from audiofx_cli.axes import FeatureAxes
from audiofx_cli.dsp import layout
from audiofx_cli.errors import UsageError
from audiofx_cli.io.audio import (
    DITHER_MODES,
    AtomicAudioWriter,
    check_output_size,
    output_format,
)
from audiofx_cli.io.behind import WriteBehind
from audiofx_cli.io.features import FEATURE_SUFFIXES, FeatureSink, feature_dtype


class Sink(Protocol):
    """Where the engine puts processed chunks.

    `accepts_features` says whether outputs with more than (channels, time) dimensions can be
    written; for such sinks the engine calls `describe` with the chain's output axes and the
    input's name. Then `open` with an empty output template and the output rate, then `write`
    per chunk.
    """

    accepts_features: bool

    def describe(self, axes: FeatureAxes, source: str) -> None: ...

    def open(self, template: Tensor, sample_rate: float) -> None: ...

    def write(self, y: Tensor) -> None: ...


class ChunkSink:
    """Base of in-memory sinks (plots, tests): audio only, nothing to describe."""

    accepts_features = False

    def describe(self, axes: FeatureAxes, source: str) -> None:
        """Audio sinks record no axes."""

    def open(self, template: Tensor, sample_rate: float) -> None:
        raise NotImplementedError

    def write(self, y: Tensor) -> None:
        raise NotImplementedError


class FileSink(Sink, Protocol):
    """A sink that writes a file atomically: the caller commits it after the last chunk, or
    aborts it (no partial output). `peak` / `clipped` are the written samples' figures."""

    def commit(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def peak(self) -> float: ...

    @property
    def clipped(self) -> int: ...


class AudioSink:
    """Writes audio atomically: the engine's Sink plus `commit` / `abort` (opened once the
    output's channel count and rate are known).

    Writes happen behind the engine (write-behind): each block is encoded and written by one
    background thread while the engine computes the next (libsndfile and numpy release the
    GIL), with at most one block in flight, so memory stays bounded. An error in the writer
    is raised at the next `write` or at `commit`; `abort` waits for the writer, then removes
    the temporary file.
    """

    accepts_features = False

    def __init__(
        self,
        path: Path,
        fmt: str,
        subtype: str,
        overwrite: bool,
        dither: str = "tpdf",
        expected_frames: int | None = None,
    ) -> None:
        self.path, self.fmt, self.subtype, self.overwrite = path, fmt, subtype, overwrite
        self.dither = dither  # for integer PCM: 'tpdf' | 'none' (see io.audio.quantize)
        self.expected_frames = expected_frames  # checked against the format's size limit
        self.writer: AtomicAudioWriter | None = None
        self._behind: WriteBehind | None = None

    def describe(self, axes: FeatureAxes, source: str) -> None:
        """Audio files carry no axes: nothing to record."""

    def open(self, template: Tensor, sample_rate: float) -> None:
        if not float(sample_rate).is_integer():
            raise UsageError(f"{self.path}: output rate {sample_rate} Hz is not an integer")
        if self.expected_frames is not None:
            check_output_size(
                self.path, self.fmt, self.subtype, self.expected_frames, template.shape[0]
            )
        self.writer = AtomicAudioWriter(
            self.path,
            int(sample_rate),
            template.shape[0],
            self.fmt,
            self.subtype,
            overwrite=self.overwrite,
            dither=self.dither,
        )
        self._behind = WriteBehind("writer")

    def write(self, y: Tensor) -> None:
        assert self.writer is not None and self._behind is not None
        rows = y.detach().to("cpu").numpy()  # the writer holds it: no buffer is reused
        self._behind.submit(self._write_rows, rows)

    def _write_rows(self, rows: np.ndarray) -> None:
        """In the writer thread: (channels, frames) to the file's (frames, channels), written."""
        assert self.writer is not None
        self.writer.write(layout.to_frames(rows))

    def commit(self) -> None:
        assert self.writer is not None
        if self._behind is not None:
            self._behind.close()
        self.writer.commit()

    def abort(self) -> None:
        try:
            if self._behind is not None:
                self._behind.close(errors=False)  # already failing: the first error counts
        finally:  # whatever happens above, the temporary file goes
            if self.writer is not None:
                self.writer.abort()

    @property
    def peak(self) -> float:
        return self.writer.peak if self.writer else 0.0

    @property
    def clipped(self) -> int:
        return self.writer.clipped if self.writer else 0


def check_output(output_path: Path, subtype: str | None, dither: str = "tpdf") -> None:
    """Validate what can be known of an output before any input is read: its extension,
    the asked subtype and the dither mode.

    Raises:
        AudioFormatError: unknown extension or impossible subtype (exit 2).
        UsageError: unknown dither mode (exit 2).
    """
    if dither not in DITHER_MODES:
        raise UsageError(f"unknown dither '{dither}' (use {' | '.join(DITHER_MODES)})")
    if output_path.suffix.lower() in FEATURE_SUFFIXES:
        feature_dtype(subtype)
    else:
        output_format(output_path, None, subtype)


def make_sink(
    output_path: Path,
    input_subtype: str | None,
    subtype: str | None,
    overwrite: bool,
    dither: str = "tpdf",
    chain_spec: dict[str, Any] | None = None,
    expected_frames: int | None = None,
) -> tuple[FileSink, str, str]:
    """The sink for an output path, chosen by extension. Returns (sink, format, subtype).

    `chain_spec` (a `ChainSpec.to_dict()`) is stored in feature files beside the data.
    `expected_frames` (the output's length, when known) lets an audio sink refuse an output
    its format cannot hold before writing anything (`io.audio.check_output_size`).

    Raises:
        AudioFormatError: unknown extension or impossible subtype (exit 2).
        UsageError: unknown dither mode (exit 2).
    """
    check_output(output_path, subtype, dither)
    if output_path.suffix.lower() in FEATURE_SUFFIXES:
        dtype = feature_dtype(subtype)
        sink = FeatureSink(output_path, overwrite, dtype, chain_spec)
        return sink, output_path.suffix.lower()[1:], dtype
    fmt, out_subtype = output_format(output_path, input_subtype, subtype)
    sink = AudioSink(output_path, fmt, out_subtype, overwrite, dither, expected_frames)
    return sink, fmt, out_subtype
