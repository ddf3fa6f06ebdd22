"""Python API: `load_chain`, `save_chain` and `process_file`. The CLI is a thin layer over these."""

from __future__ import annotations

import glob
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiofx_cli.chain import learn as learning
from audiofx_cli.chain.build import build_chain
from audiofx_cli.chain.spec import ChainSpec, check_rate, load_spec, spec_from_stages
from audiofx_cli.device import resolve_device, resolve_dtype
from audiofx_cli.errors import ChainSpecError, OutputExistsError, ProcessingError, UsageError
from audiofx_cli.io.audio import AudioReader
from audiofx_cli.io.sinks import FileSink, check_output, make_sink
from audiofx_cli.io.urls import (
    Location,
    URLPath,
    check_writable,
    exists,
    fetched,
    location,
    object_info,
    upload,
)
from audiofx_cli.stages.base import Chain, Stage
from audiofx_cli.stream import StreamStats, run_chain

DEFAULT_CHUNK_SECONDS = 10.0
ChainLike = str | Path | ChainSpec | list[Any]


def as_spec(chain: ChainLike) -> ChainSpec:
    """A ChainSpec from a path, a preset name, a ChainSpec or a list of stages in YAML form."""
    if isinstance(chain, ChainSpec):
        return chain
    if isinstance(chain, list):
        return spec_from_stages(chain)
    return load_spec(chain)


def load_chain(
    chain: ChainLike,
    sample_rate: float,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    fuse: bool = True,
    learnable: bool | Sequence[str] | None = None,
) -> Chain:
    """Build a chain for a sample rate: an `nn.Sequential` usable in plain PyTorch code.

    Args:
        chain: path to a YAML file, a preset name ('vocal'), a ChainSpec, or a list of stages
            as in YAML (``[{"highpass": {"cutoff_hz": 80}}, "dc_remove"]``).
        sample_rate: of the audio it will process, in Hz.
        device: where the coefficients live ('cpu', 'cuda', 'auto', or a torch.device).
        dtype: processing dtype of parameters (designed coefficients stay float64).
        fuse: fuse runs of linear time-invariant stages into one operator (same output,
            faster); False keeps one module per stage.
        learnable: which design parameters become `nn.Parameter`s (docs/learnable.md): None
            (default) the chain file's `learn:` keys; True every key that can learn; a list
            such as ``["1.gain_db", "0.cutoff_hz"]`` (stage index, key) adds those; False
            none. Parameters are named by stage index and key (``chain[1].gain_db``); a chain
            that learns is not fused, so ``chain[i]`` is stage i of the file.

    Returns:
        `Chain`: ``chain(x)`` filters a whole (..., channels, time) tensor; ``init_state`` /
        ``step`` / ``flush`` stream it chunk by chunk with identical results.

    Raises:
        ChainSpecError, UsageError: invalid chain (message names file:line, stage and key).

    Example:
        >>> import torch, audiofx_cli
        >>> chain = audiofx_cli.load_chain([{"highpass": {"cutoff_hz": 80}}], 48000)
        >>> chain(torch.randn(2, 48000)).shape
        torch.Size([2, 48000])
    """
    spec = learning.select(as_spec(chain), learnable)
    built = build_chain(spec, sample_rate, fuse=fuse, learn=learnable is not False)
    target = resolve_device(device) if isinstance(device, str) else device
    return built.to(device=target, dtype=dtype)


def save_chain(chain: Chain, path: str | Path, overwrite: bool = False) -> Path:
    """Write a chain built by `load_chain` as a chain file, with the learnt values in place of
    the ones it was built from (and its `learn:` keys kept, so it can go on learning).
    `audiofx process in.wav -c PATH` then applies it.

    Raises:
        UsageError: the chain was not built by `load_chain`, or `path` exists (without
            `overwrite`) or its folder does not.

    Example:
        >>> chain = load_chain([{"gain": {"gain_db": 0}}], 48000, learnable=True)
        >>> save_chain(chain, "fitted.yaml")  # doctest: +SKIP
    """
    import yaml

    specs = getattr(chain, "stage_specs", None)
    if specs is None:
        raise UsageError("save_chain: the chain was not built by load_chain")
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: exists (save_chain(..., overwrite=True) replaces it)")
    if not target.parent.is_dir():
        raise UsageError(f"{target}: folder {target.parent} does not exist")
    stages = []
    learning_chain = len(specs) == len(chain) and any(s.learn for s in specs)
    for i, stage in enumerate(specs):
        entry = stage.to_dict()
        module = chain[i] if learning_chain else None
        if module is not None and hasattr(module, "learned_values"):
            entry[stage.name].update(module.learned_values())
        stages.append(entry)
    text = yaml.safe_dump({"stages": stages}, sort_keys=False, default_flow_style=None)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


@dataclass
class ProcessReport:
    """What `process_file` did, for summaries and JSON reports."""

    input: str
    output: str
    sample_rate: int
    output_rate: float
    channels: int
    output_channels: int
    frames: int
    output_frames: int
    duration_s: float
    format: str
    subtype: str
    peak: float
    clipped_samples: int
    seconds: float
    device: str
    sanitized_samples: int = 0

    @property
    def peak_dbfs(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf

    @property
    def realtime_factor(self) -> float:
        return self.duration_s / self.seconds if self.seconds > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "peak_dbfs": self.peak_dbfs}


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _check_unchanged(
    path: Path, before: tuple[int, int, int], frames: int, read: int, name: str
) -> None:
    """The input must be the same file, unmodified, and fully read; else discard the output.
    `name` is the input as the user gave it (messages)."""
    try:
        after = _identity(path)
    except OSError:
        raise ProcessingError(
            f"{name}: input vanished while it was processed; output discarded"
        ) from None
    if after != before:
        raise ProcessingError(f"{name}: input changed while it was processed; output discarded")
    if frames >= 0 and read != frames:
        raise ProcessingError(
            f"{name}: read {read} of {frames} frames (truncated or changing file); output discarded"
        )


def check_output_path(input_path: Location, output_path: Location, overwrite: bool) -> None:
    """Refuse output == input (always), an existing output (unless overwrite), a missing folder,
    an output on a read-only URL scheme.

    Raises:
        OutputExistsError, UsageError
    """
    if isinstance(output_path, URLPath):
        check_writable(output_path)
        if str(input_path) == str(output_path):
            raise OutputExistsError(f"{output_path}: output is the input object")
        if not overwrite and exists(output_path):
            raise OutputExistsError(f"{output_path}: exists (use --overwrite to replace it)")
        return
    if isinstance(input_path, URLPath):
        input_path = Path(os.devnull)  # never the same file as a local output
    if output_path.exists():
        if input_path.exists() and os.path.samefile(input_path, output_path):
            raise OutputExistsError(
                f"{output_path}: output is the input file; refusing to overwrite an input"
            )
        if output_path.is_dir():
            raise UsageError(f"{output_path}: is a folder, not an output file")
        if not overwrite:
            raise OutputExistsError(f"{output_path}: exists (use --overwrite to replace it)")
    elif input_path.resolve() == output_path.resolve():
        raise OutputExistsError(f"{output_path}: output is the input file")
    parent = output_path.parent
    if not parent.is_dir():
        raise UsageError(f"{output_path}: output folder {parent} does not exist")


def process_file(
    input: str | Path,
    output: str | Path,
    chain: ChainLike,
    *,
    device: str = "auto",
    precision: str = "float32",
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    subtype: str | None = None,
    overwrite: bool = False,
    sanitize: bool = False,
    dither: str = "tpdf",
    fuse: bool = True,
) -> ProcessReport:
    """Run a chain over an audio file in chunks and write the result atomically.

    Args:
        input: audio file libsndfile can read (format from its header).
        output: file to write; format from the extension (wav, flac, ogg, mp3, aiff, ...).
        chain: path, preset name, ChainSpec or list of stages (see `load_chain`).
        device: 'auto' | 'cpu' | 'cuda' | 'cuda:N'.
        precision: 'float32' | 'float64' processing.
        chunk_seconds: chunk length; memory use is bounded by it, not by the file length.
        subtype: output subtype (PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE); default: the input's.
        overwrite: replace an existing output.
        sanitize: replace NaN / Inf input samples (by 0 / +-1) instead of failing; the count
            is in the report.
        dither: 'tpdf' (default) or 'none': TPDF dither when writing integer PCM (seeded:
            deterministic); samples already on the output grid are written unchanged.
        fuse: fuse runs of linear time-invariant stages (default; `--no-fuse` disables).

    Returns:
        ProcessReport with frames, peak, clipped samples (integer PCM) and timing.

    Raises:
        UsageError (exit 2): bad chain, device, output path or format; nothing is written.
        AudiofxError (exit 1): the input cannot be read or processing failed; no partial
            output is left behind.

    Example:
        >>> report = process_file("speech.wav", "out.wav", "vocal")  # doctest: +SKIP
        >>> report.clipped_samples                                   # doctest: +SKIP
        0
    """
    input_loc, output_loc = location(input), location(output)
    spec = as_spec(chain)
    torch_device = resolve_device(device)
    dtype = resolve_dtype(precision)
    _check_request(input_loc, output_loc, chunk_seconds, subtype, overwrite, dither)
    name = str(input_loc)
    with ExitStack() as stack:
        input_path = _local_input(stack, input_loc)
        output_path = _local_output(stack, output_loc)
        before = _identity(input_path)
        with AudioReader(input_path, name=name) as reader:
            info = reader.info
            try:
                check_rate(spec, info.sample_rate)
            except ChainSpecError as exc:
                raise exc.in_context(f"{name} ({info.sample_rate} Hz)") from None
            built = build_chain(spec, info.sample_rate, fuse=fuse).to(dtype=dtype)
            inexact = info.subtype.startswith("MPEG_")  # mp3 lengths are estimates
            known = not inexact and reader.length_verified()  # the header's length is true
            sink, fmt, out_subtype = make_sink(
                output_path,
                info.subtype,
                subtype,
                overwrite,
                dither,
                spec.to_dict(),
                expected_frames=output_frames(built, info.frames) if known else None,
            )
            temps_before = _temporary_files(output_path)
            try:
                stats = _stream_file(
                    reader, built, sink, chunk_seconds, torch_device, dtype, sanitize
                )
                _check_unchanged(
                    input_path, before, -1 if inexact else info.frames, stats.frames_in, name
                )
                sink.commit()
            except ChainSpecError as exc:  # found while running: name the file too
                _abort(sink, output_path, temps_before)
                raise exc.in_context(
                    f"{name} ({info.channels} ch, {info.sample_rate} Hz)"
                ) from None
            except BaseException:
                _abort(sink, output_path, temps_before)
                raise
        if isinstance(output_loc, URLPath):
            upload(output_path, output_loc, overwrite)
    return ProcessReport(
        input=name,
        output=str(output_loc),
        sample_rate=info.sample_rate,
        output_rate=stats.output_rate,
        channels=info.channels,
        output_channels=stats.output_channels,
        frames=stats.frames_in,
        output_frames=stats.frames_out,
        duration_s=info.duration_s,
        format=fmt,
        subtype=out_subtype,
        peak=sink.peak,
        clipped_samples=sink.clipped,
        seconds=stats.seconds,
        device=str(torch_device),
        sanitized_samples=stats.sanitized,
    )


def _temporary_files(output: Path) -> set[Path]:
    """The sinks' temporary files for `output`: `.NAME.XXXXXXXX.audiofx-tmp` (or `...tmp.raw`)."""
    return set(output.parent.glob(f".{glob.escape(output.name)}.*.audiofx-tmp*"))


def _abort(sink: FileSink, output: Path, temps_before: set[Path]) -> None:
    """Abort the sink, then remove any temporary file for `output` made since `temps_before`:
    a Ctrl-C landing between the creation of a temporary file and the sink holding its name
    (inside `tempfile.mkstemp`, or while libsndfile opens it) leaves one the sink cannot see."""
    try:
        sink.abort()
    finally:
        for path in _temporary_files(output) - temps_before:
            path.unlink(missing_ok=True)


def _local_input(stack: ExitStack, loc: Location) -> Path:
    """The file to read: a local path as it is, a URL's object copied to a spooled local file
    (removed when `stack` closes)."""
    return loc if isinstance(loc, Path) else stack.enter_context(fetched(loc))


def _local_output(stack: ExitStack, loc: Location) -> Path:
    """Where the sink writes: a local path as it is, for a URL a staging file (its name, so the
    format follows the extension) uploaded once complete, removed when `stack` closes."""
    if isinstance(loc, Path):
        return loc
    staging = stack.enter_context(tempfile.TemporaryDirectory(prefix="audiofx-upload-"))
    return Path(staging) / loc.name


def output_frames(chain: Chain, frames: int | None) -> int | None:
    """The length of `chain`'s output for an input of `frames` (None when unknown)."""
    for stage in chain:
        if frames is None:
            return None
        if isinstance(stage, Stage):
            frames = stage.output_frames(frames)
    return frames


def _check_request(
    input_path: Location,
    output_path: Location,
    chunk_seconds: float,
    subtype: str | None,
    overwrite: bool,
    dither: str,
) -> None:
    """Everything that can be refused before the input is opened (exit 2, nothing touched).

    Raises:
        UsageError: bad chunk length, missing input or a folder, bad output extension,
            subtype, dither or path.
    """
    if chunk_seconds <= 0 or not math.isfinite(chunk_seconds):
        raise UsageError(f"chunk length must be > 0 seconds, got {chunk_seconds}")
    if isinstance(input_path, URLPath):
        info = object_info(input_path)
        if info is None:
            raise UsageError(f"{input_path}: no such object")
        if info.get("type") == "directory":
            raise UsageError(f"{input_path}: is a folder (prefix); give an object")
    elif not input_path.exists():
        raise UsageError(f"{input_path}: no such file")
    elif input_path.is_dir():
        raise UsageError(f"{input_path}: is a folder (give an audio file)")
    check_output(
        Path(output_path.name) if isinstance(output_path, URLPath) else output_path, subtype, dither
    )
    check_output_path(input_path, output_path, overwrite)


def _stream_file(
    reader: AudioReader,
    chain: Chain,
    sink: FileSink,
    chunk_seconds: float,
    device: torch.device,
    dtype: torch.dtype,
    sanitize: bool,
) -> StreamStats:
    """Run `chain` over the open file in chunks of `chunk_seconds` into `sink`."""
    info = reader.info
    chunk_frames = max(1, int(round(chunk_seconds * info.sample_rate)))
    read_dtype = "float64" if dtype == torch.float64 else "float32"

    def source() -> Iterator[np.ndarray]:  # each call is one pass over the file
        reader.rewind()
        return reader.blocks(chunk_frames, read_dtype)

    return run_chain(
        chain,
        source,
        sink,
        channels=info.channels,
        total_frames=info.frames,
        device=device,
        dtype=dtype,
        name=reader.name,
        sanitize=sanitize,
    )
