"""The data behind `audiofx plot FILE`: waveform envelope and log-frequency spectrogram.

Files are read in blocks and reduced on the fly, so memory does not grow with the file length:
the waveform keeps a min/max pair per display column (at most `MAX_WAVE_COLUMNS` per channel;
a short file keeps its samples), and the spectrogram averages the power of consecutive STFT
frames into at most `MAX_SPEC_COLUMNS` columns of `N_LOG_BANDS` log-spaced bands. A
full-scale sine reads 0 dB on the spectrogram (dBFS). Several channels: the spectrogram shows
their mean power. With a chain, the file is also streamed through `load_chain` for its own
rate (the same engine as `audiofx process`, nothing written) into a second picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.errors import ProcessingError, UsageError
from audiofx_cli.io.audio import AudioReader

MAX_WAVE_COLUMNS = 4000
MAX_SPEC_COLUMNS = 1600
N_LOG_BANDS = 256
BLOCK_SAMPLES = 1 << 20  # samples (all channels) read at a time: ~4 MB of float32
FRAME_BATCH = 128  # STFT frames transformed at once


@dataclass
class Picture:
    """Display-ready arrays for one signal.

    Attributes:
        wave_t_s: (columns,) time of each waveform column.
        wave_min, wave_max: (channels, columns) extremes per column (equal for exact samples).
        spec_t_edges_s: (spec_columns + 1,) column edges in seconds.
        spec_f_edges_hz: (bands + 1,) log-spaced band edges in Hz.
        spec_db: (bands, spec_columns) mean power in dBFS (full-scale sine = 0 dB).
    """

    label: str
    sample_rate: float
    channels: int
    frames: int
    wave_t_s: np.ndarray
    wave_min: np.ndarray
    wave_max: np.ndarray
    spec_t_edges_s: np.ndarray
    spec_f_edges_hz: np.ndarray
    spec_db: np.ndarray
    n_fft: int
    hop: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def peak(self) -> float:
        return float(
            max(np.max(np.abs(self.wave_min), initial=0.0), np.max(self.wave_max, initial=0))
        )


def stft_size(sample_rate: float) -> int:
    """FFT length of about 43 ms (a power of two): 1024 at 22.05 kHz, 2048 at 48 kHz."""
    return int(2 ** max(6, round(math.log2(sample_rate * 0.043))))


def default_f_low(sample_rate: float) -> float:
    """Lowest spectrogram frequency: two FFT bins (below that the Hann window's main lobe mixes
    in DC), so 43 Hz at 22.05 kHz and 47 Hz at 48 kHz."""
    return 2 * sample_rate / stft_size(sample_rate)


def log_band_matrix(sample_rate: float, n_fft: int, edges_hz: np.ndarray) -> np.ndarray:
    """(bands, n_fft//2+1) weights: each band is the mean of the FFT bins whose centres fall in
    it, or, for bands narrower than a bin, linear interpolation at the band's centre."""
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    matrix = np.zeros((edges_hz.size - 1, bins_hz.size))
    for i, (low, high) in enumerate(zip(edges_hz[:-1], edges_hz[1:], strict=True)):
        inside = np.flatnonzero((bins_hz >= low) & (bins_hz < high))
        if inside.size:
            matrix[i, inside] = 1.0 / inside.size
            continue
        centre = math.sqrt(low * high)
        k = min(int(np.searchsorted(bins_hz, centre)), bins_hz.size - 1)
        frac = (centre - bins_hz[k - 1]) / (bins_hz[k] - bins_hz[k - 1])
        matrix[i, k - 1] = 1.0 - frac
        matrix[i, k] = frac
    return matrix


class WaveAccumulator:
    """Min/max per column of `per_column` samples, block by block."""

    def __init__(self, channels: int, per_column: int) -> None:
        self.per_column = per_column
        self.carry = np.zeros((channels, 0))
        self.mins: list[np.ndarray] = []
        self.maxs: list[np.ndarray] = []

    def feed(self, x: np.ndarray) -> None:
        x = np.concatenate([self.carry, x], axis=-1) if self.carry.shape[-1] else x
        n = x.shape[-1] // self.per_column * self.per_column
        if n:
            cols = x[:, :n].reshape(x.shape[0], -1, self.per_column)
            self.mins.append(cols.min(axis=-1))
            self.maxs.append(cols.max(axis=-1))
        self.carry = x[:, n:]

    def finish(self, sample_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.carry.shape[-1]:
            self.mins.append(self.carry.min(axis=-1, keepdims=True))
            self.maxs.append(self.carry.max(axis=-1, keepdims=True))
        channels = self.carry.shape[0]
        mins = np.concatenate(self.mins, axis=-1) if self.mins else np.zeros((channels, 0))
        maxs = np.concatenate(self.maxs, axis=-1) if self.maxs else np.zeros((channels, 0))
        t = (np.arange(mins.shape[-1]) + 0.5 * (self.per_column > 1)) * self.per_column
        return t / sample_rate, mins, maxs


class SpectrogramAccumulator:
    """Centred STFT (Hann window, hop n_fft/4), power averaged over channels, mapped to log
    bands, and averaged over `frames_per_column` frames per column, block by block."""

    def __init__(self, sample_rate: float, frames_per_column: int, edges_hz: np.ndarray) -> None:
        self.n_fft = stft_size(sample_rate)
        self.hop = self.n_fft // 4
        self.window = np.hanning(self.n_fft + 1)[:-1]
        self.scale = (2.0 / self.window.sum()) ** 2  # full-scale sine -> power 1
        self.bands = log_band_matrix(sample_rate, self.n_fft, edges_hz)
        self.per_column = frames_per_column
        self.carry: np.ndarray | None = None
        self.pending = np.zeros((edges_hz.size - 1, 0))
        self.columns: list[np.ndarray] = []
        self.frames_done = 0

    def feed(self, x: np.ndarray) -> None:
        if self.carry is None:
            self.carry = np.zeros((x.shape[0], self.n_fft // 2))  # centred first frame
        buf = np.concatenate([self.carry, x], axis=-1)
        count = 0 if buf.shape[-1] < self.n_fft else 1 + (buf.shape[-1] - self.n_fft) // self.hop
        if count:
            frames = np.lib.stride_tricks.sliding_window_view(buf, self.n_fft, axis=-1)
            frames = frames[:, : count * self.hop : self.hop]
            for start in range(0, count, FRAME_BATCH):  # bounds the FFT temporaries
                batch = frames[:, start : start + FRAME_BATCH] * self.window
                power = np.mean(np.abs(np.fft.rfft(batch, axis=-1)) ** 2, axis=0)
                self._pool(self.bands @ power.T * self.scale)
        self.carry = buf[:, count * self.hop :]

    def _pool(self, bands: np.ndarray) -> None:
        data = np.concatenate([self.pending, bands], axis=-1)
        n = data.shape[-1] // self.per_column * self.per_column
        if n:
            cols = data[:, :n].reshape(data.shape[0], -1, self.per_column).mean(axis=-1)
            self.columns.append(cols)
        self.pending = data[:, n:]

    def finish(self, frames_total: int) -> np.ndarray:
        """Flush (frames centred up to the last sample) and return (bands, columns) power."""
        if self.carry is not None:
            wanted = frames_total // self.hop + 1
            produced = self.produced()
            if wanted > produced:
                self.feed(np.zeros((self.carry.shape[0], self.n_fft // 2)))
                extra = self.produced() - wanted
                if extra > 0:  # frames centred beyond the end
                    self.pending = self.pending[:, : max(self.pending.shape[-1] - extra, 0)]
        if self.pending.shape[-1]:
            self.columns.append(self.pending.mean(axis=-1, keepdims=True))
            self.pending = self.pending[:, :0]
        if not self.columns:
            return np.zeros((self.bands.shape[0], 0))
        return np.concatenate(self.columns, axis=-1)

    def produced(self) -> int:
        return sum(c.shape[-1] for c in self.columns) * self.per_column + self.pending.shape[-1]


class PictureBuilder:
    """Feeds (channels, n) blocks into both accumulators; `finish` gives a Picture."""

    def __init__(
        self,
        label: str,
        sample_rate: float,
        channels: int,
        expected_frames: int,
        f_low_hz: float | None = None,
    ) -> None:
        self.label, self.sample_rate, self.channels = label, float(sample_rate), channels
        self.frames = 0
        per_wave = max(1, math.ceil(expected_frames / MAX_WAVE_COLUMNS))
        if expected_frames <= 2 * MAX_WAVE_COLUMNS:
            per_wave = 1
        self.wave = WaveAccumulator(channels, per_wave)
        n_fft = stft_size(sample_rate)
        n_frames = expected_frames // (n_fft // 4) + 1
        low = default_f_low(sample_rate) if f_low_hz is None else f_low_hz
        self.edges_hz = np.geomspace(low, sample_rate / 2, N_LOG_BANDS + 1)
        per_spec = max(1, math.ceil(n_frames / MAX_SPEC_COLUMNS))
        self.spec = SpectrogramAccumulator(sample_rate, per_spec, self.edges_hz)

    def feed(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            bad = int(np.argmin(finite.all(axis=0)))
            raise ProcessingError(
                f"NaN or Inf samples (first at frame {self.frames + bad}); nothing to draw"
            )
        self.frames += x.shape[-1]
        self.wave.feed(x)
        self.spec.feed(x)

    def finish(self) -> Picture:
        t, mins, maxs = self.wave.finish(self.sample_rate)
        power = self.spec.finish(self.frames)
        hop, per = self.spec.hop, self.spec.per_column
        edges = (np.arange(power.shape[-1] + 1) * per - 0.5) * hop / self.sample_rate
        edges = np.clip(edges, 0.0, max(self.frames / self.sample_rate, 1e-9))
        return Picture(
            self.label,
            self.sample_rate,
            self.channels,
            self.frames,
            t,
            mins,
            maxs,
            edges,
            self.edges_hz,
            10 * np.log10(np.maximum(power, 1e-20)),
            self.spec.n_fft,
            hop,
        )


def _blocks(reader: AudioReader) -> Iterator[np.ndarray]:
    frames = max(4096, BLOCK_SAMPLES // max(reader.info.channels, 1))
    return reader.blocks(frames, "float32")


def file_pictures(
    path: str | Path, chain: Any = None, f_low_hz: float | None = None
) -> tuple[Picture, Picture | None]:
    """Pictures of an audio file and, with `chain`, of the file processed by it.

    Args:
        path: audio file (any libsndfile format).
        chain: None, or a path / preset name / ChainSpec / list of stages (see `load_chain`).
        f_low_hz: lowest spectrogram frequency (default: two FFT bins, `default_f_low`).

    Returns:
        (original, processed or None).

    Raises:
        AudioReadError, ChainSpecError, UsageError, ProcessingError.
    """
    path = Path(path)
    with AudioReader(path) as reader:
        info = reader.info
        original = PictureBuilder(
            "original", info.sample_rate, info.channels, info.frames, f_low_hz
        )
        try:
            for block in _blocks(reader):
                original.feed(block.T)
        except ProcessingError as exc:
            raise ProcessingError(f"{path}: {exc}") from None
        processed = None
        if chain is not None:
            processed = _processed_picture(reader, chain, f_low_hz)
    return original.finish(), processed


def _processed_picture(reader: AudioReader, chain: Any, f_low_hz: float | None) -> Picture:
    import torch

    from audiofx_cli.api import as_spec
    from audiofx_cli.axes import chain_axes
    from audiofx_cli.chain.build import build_chain
    from audiofx_cli.chain.spec import check_rate
    from audiofx_cli.errors import ChainSpecError
    from audiofx_cli.io.sinks import ChunkSink
    from audiofx_cli.stages.base import Stage
    from audiofx_cli.stream import run_chain

    info = reader.info
    spec = as_spec(chain)
    try:
        check_rate(spec, info.sample_rate)
    except ChainSpecError as exc:
        raise exc.in_context(f"{info.path} ({info.sample_rate} Hz)") from None
    built = build_chain(spec, info.sample_rate)
    name = spec.name or (spec.source or "chain").removeprefix("preset:")
    axes = chain_axes(built, info.sample_rate)
    if not axes.is_audio:
        raise UsageError(
            f"chain '{name}' outputs features ({', '.join(axes.names)}), not audio: write them "
            f"with `audiofx process {Path(info.path).name} --chain {name} -o feats.npz`, then "
            "`audiofx plot feats.npz`"
        )
    expected: int | None = info.frames
    for stage in built:
        if isinstance(stage, Stage):
            expected = stage.output_frames(expected)

    class _Sink(ChunkSink):
        builder: PictureBuilder | None = None

        def open(self, template: torch.Tensor, sample_rate: float) -> None:
            frames = expected if expected is not None else info.frames
            self.builder = PictureBuilder(
                f"after '{name}'", sample_rate, template.shape[0], frames, f_low_hz
            )

        def write(self, y: torch.Tensor) -> None:
            assert self.builder is not None
            self.builder.feed(y.detach().to("cpu", torch.float64).numpy())

    def source() -> Iterator[np.ndarray]:
        reader.rewind()
        return _blocks(reader)

    sink = _Sink()
    run_chain(
        built,
        source,
        sink,
        channels=info.channels,
        total_frames=info.frames,
        device=torch.device("cpu"),
        dtype=torch.float32,
        name=info.path,
    )
    assert sink.builder is not None
    return sink.builder.finish()
