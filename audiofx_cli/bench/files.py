"""The `file` suite: where the time of `audiofx process` goes (decode + encode vs the DSP).

The test signal is written once as a 32-bit float WAV in a temporary folder (so decoding is
exact and the output can be checked against the float64 reference). Two rows are measured:

- ``io-only``: read the file in blocks with soundfile and write every block to a float WAV,
  no DSP: the floor any `process` run pays.
- ``audiofx``: `audiofx_cli.api.process_file` (read, chain, write atomically), the whole
  `process` path with the same block size (``--chunk-seconds``).

The file was just written, so it is read from the page cache: these are warm-cache figures
(a cold disk adds its own read time to both rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.bench.base import Backend, Case, Prepared, TorchRun


def write_float_wav(x: np.ndarray, rate_hz: int, path: Path, block_frames: int) -> Path:
    """Write (channels, frames) float32 `x` as a FLOAT WAV (RF64 when over 4 GB), in blocks."""
    import soundfile as sf

    channels, frames = x.shape
    fmt = "RF64" if x.nbytes + 1024 > 0xFFFF_FFFF else "WAV"
    step = max(block_frames, 1)
    with sf.SoundFile(path, "w", rate_hz, channels, "FLOAT", format=fmt) as out:
        for start in range(0, frames, step):
            out.write(np.ascontiguousarray(x[:, start : start + step].T))
    return path


def read_blocks(path: Path, block_frames: int) -> Any:
    """Yield (channels, frames) float32 blocks of an audio file."""
    import soundfile as sf

    with sf.SoundFile(path) as src:
        while True:
            block = src.read(max(block_frames, 1), dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                return
            yield block.T


def _paths(case: Case, name: str) -> tuple[Path, Path]:
    if case.input_path is None or case.workdir is None:
        raise ValueError("the file suite needs case.input_path and case.workdir")
    return case.input_path, case.workdir / f"out-{name}{case.input_path.suffix}"


class IOOnlyBackend(Backend):
    name = "io-only"
    kinds = ("file",)
    copies = 0.2
    summary = "io-only: soundfile block read + float WAV write of the same file, no DSP"

    def prepare(self, case: Case) -> Prepared:
        return _IOOnlyRun(case)


class _IOOnlyRun(Prepared):
    def __init__(self, case: Case) -> None:
        import soundfile as sf

        self.src, self.dst = _paths(case, "io")
        self.block = case.chunk_frames or case.x.shape[-1]
        info = sf.info(str(self.src))
        self.rate, self.channels, self.format = info.samplerate, info.channels, info.format

    def run(self) -> Any:
        import soundfile as sf

        with sf.SoundFile(
            self.dst, "w", self.rate, self.channels, "FLOAT", format=self.format
        ) as out:
            for block in read_blocks(self.src, self.block):
                out.write(np.ascontiguousarray(block.T))
        return self.dst


class ProcessRun(TorchRun):
    """`process_file` on the generated file, overwriting its own output each run."""

    def __init__(self, case: Case) -> None:
        from audiofx_cli.api import as_spec

        super().__init__(case.device)
        self.src, self.dst = _paths(case, "audiofx")
        self.chain = as_spec(case.chain if case.chain is not None else case.suite.stages())
        self.chunk_seconds = (case.chunk_frames or case.x.shape[-1]) / case.rate_hz

    def run(self) -> Any:
        from audiofx_cli.api import process_file

        process_file(
            self.src,
            self.dst,
            self.chain,
            device=self.device,
            chunk_seconds=max(self.chunk_seconds, 1e-3),
            overwrite=True,
        )
        return self.dst
