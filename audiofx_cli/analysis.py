"""File analysis for `audiofx info`: levels, loudness and sanity counts, streamed in blocks.

Torch-free (numpy, scipy, soundfile). Memory: one block plus the loudness meter's one float
per 100 ms (see `audiofx_cli.dsp.loudness`).

Definitions (all over every channel and sample unless said otherwise):
- peak_dbfs: 20 log10 max |x| (sample peak); true_peak_dbtp: BS.1770-4 Annex 2 true peak.
- rms_dbfs: 20 log10 sqrt(mean x^2) (a full-scale sine reads -3.01 dBFS, like SoX `stats`).
- lufs: integrated loudness, ITU-R BS.1770-4 / EBU R128 (gated).
- dc_offset: mean of each channel.
- clipped_samples: samples at or beyond full scale (SoX-style): for integer PCM the largest
  or smallest code, otherwise |x| >= 1.
- nonfinite_samples: NaN or Inf samples (float files); they count as 0 in every measurement.
Levels of silence are -inf (null in JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.dsp.loudness import LoudnessMeter, TruePeakMeter
from audiofx_cli.errors import AudioReadError
from audiofx_cli.io.audio import INT_BITS, AudioReader
from audiofx_cli.io.urls import URLPath, fetched, location

BLOCK_FRAMES = 1 << 16


@dataclass
class FileAnalysis:
    """What `analyze_file` measured in one file."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    peak_dbfs: float
    true_peak_dbtp: float
    rms_dbfs: float
    lufs: float
    dc_offset: list[float]
    clipped_samples: int
    nonfinite_samples: int

    def as_json(self) -> dict[str, Any]:
        """A dict for JSON: -inf / NaN levels become None (null)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def analyze_file(path: str | Path, block_frames: int = BLOCK_FRAMES) -> FileAnalysis:
    """Measure an audio file in one streaming pass.

    Raises:
        AudioReadError: the file is missing, not audio, or cannot be decoded.

    Example:
        >>> stats = analyze_file("examples/speech.wav")       # doctest: +SKIP
        >>> round(stats.lufs, 1), stats.clipped_samples      # doctest: +SKIP
        (-22.4, 0)
    """
    loc = location(path)
    if isinstance(loc, URLPath):
        with fetched(loc) as local:
            return _analyze(local, str(loc), block_frames)
    if not loc.exists():
        raise AudioReadError(f"{loc}: no such file")
    if loc.is_dir():
        raise AudioReadError(f"{loc}: is a folder, not an audio file")
    return _analyze(loc, str(loc), block_frames)


def _analyze(path: Path, name: str, block_frames: int) -> FileAnalysis:
    """`analyze_file` on a local file; `name` is what the user named (a path or a URL)."""
    with AudioReader(path, name=name) as reader:
        info = reader.info
        channels = info.channels
        bits = INT_BITS.get(info.subtype)
        full_scale = (1.0 - 2.0 ** (1 - bits)) if bits else 1.0  # largest positive code
        loudness = LoudnessMeter(info.sample_rate, channels)
        true_peak = TruePeakMeter(channels)
        peak, sum_squares, frames = 0.0, 0.0, 0
        sums = np.zeros(channels)
        clipped = nonfinite = 0
        for block in reader.blocks(block_frames, "float64"):
            finite = np.isfinite(block)
            if not finite.all():
                nonfinite += int(np.count_nonzero(~finite))
                block = np.where(finite, block, 0.0)
            peak = max(peak, float(np.abs(block).max()))
            sum_squares += float(np.square(block).sum())
            sums += block.sum(axis=0)
            frames += block.shape[0]
            clipped += int(np.count_nonzero((block >= full_scale) | (block <= -1.0)))
            planar = np.ascontiguousarray(block.T)[None]
            loudness.update(planar)
            true_peak.update(planar)
    samples = frames * channels
    return FileAnalysis(
        path=name,
        format=info.format,
        subtype=info.subtype,
        sample_rate=info.sample_rate,
        channels=channels,
        frames=frames,
        duration_s=frames / info.sample_rate if info.sample_rate else 0.0,
        peak_dbfs=_db(peak),
        true_peak_dbtp=_db(float(true_peak.peak()[0])),
        rms_dbfs=_db(math.sqrt(sum_squares / samples)) if samples else -math.inf,
        lufs=loudness.integrated()[0],
        dc_offset=[float(s / frames) if frames else 0.0 for s in sums],
        clipped_samples=clipped,
        nonfinite_samples=nonfinite,
    )
