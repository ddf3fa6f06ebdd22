"""The chunked engine: blocks from a source -> stateful chain -> a sink, in bounded memory.

Only one chunk (plus each stage's small state) is alive at a time. Stages that need the whole
signal first (`needs_analysis = True`, e.g. loudness normalisation) get an analysis pass over
the stream before the processing pass: the engine runs the stages before them over the source,
hands every output chunk to `stage.analyze`, then calls `stage.finish_analysis`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.axes import chain_axes
from audiofx_cli.dsp import layout
from audiofx_cli.errors import ProcessingError, UsageError
from audiofx_cli.io.sinks import Sink
from audiofx_cli.stages.base import Chain, Stage

BlockSource = Callable[[], Iterator[np.ndarray]]  # opens a fresh pass: (frames, channels) blocks


@dataclass
class StreamStats:
    frames_in: int = 0
    frames_out: int = 0
    output_channels: int = 0
    output_rate: float = 0.0
    seconds: float = 0.0
    sanitize: bool = False
    sanitized: int = 0  # non-finite input samples replaced (sanitize mode)


_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _to_tensor(
    block: np.ndarray,
    device: torch.device,
    dtype: torch.dtype,
    name: str,
    frame_offset: int,
    stats: StreamStats | None = None,
) -> Tensor:
    """A (frames, channels) block as a (channels, frames) tensor. Non-finite samples are an
    error, or, with `stats.sanitize`, replaced (NaN -> 0, +-Inf -> +-1) and counted."""
    finite = np.isfinite(block)
    if not finite.all():
        if stats is None or not stats.sanitize:
            bad = int(np.argmax(~finite.all(axis=1)))
            raise ProcessingError(
                f"{name}: input holds NaN or Inf samples (first at frame {frame_offset + bad}); "
                "use --sanitize to replace them"
            )
        stats.sanitized += int(finite.size - np.count_nonzero(finite))
        block = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
    if device.type == "cpu" and _TORCH_DTYPES.get(block.dtype) == dtype:
        return torch.from_numpy(layout.to_rows(block))  # compiled copy, 4-6x numpy's here
    return torch.from_numpy(block).to(device=device, dtype=dtype).T.contiguous()


def _check_output(y: Tensor, name: str, frames_out: int) -> None:
    if not y.numel():
        return
    if y.device.type == "cpu":  # numpy's check is about 10x faster than torch's here; min and
        a = y.detach().numpy()  # max carry NaN and Inf through and need no temporary array
        finite = bool(np.isfinite(a.min()) and np.isfinite(a.max()))
    else:
        finite = bool(torch.isfinite(y).all())
    if not finite:
        raise ProcessingError(
            f"{name}: the chain produced NaN or Inf samples (near output "
            f"frame {frames_out}); nothing was written"
        )


def run_analysis(
    chain: Chain,
    chunks: Callable[[], Iterable[Tensor]],
    template: Tensor,
    total_frames: int | None = None,
) -> None:
    """Analysis passes for the stages of `chain` that need the whole signal first.

    For each such stage, in order, the stages before it are streamed over a fresh pass of
    `chunks()` and their output fed to the stage's `analyze`; then `finish_analysis` fixes what
    the processing pass will use. A stage inside `parallel` branches cannot need analysis.
    """
    stages = list(chain)
    for k, stage in enumerate(stages):
        if not getattr(stage, "needs_analysis", False):
            continue
        prefix = Chain(*stages[:k])
        state = prefix.init_state(template, total_frames)
        head, state = prefix.step(template[..., :0], state)
        frames = total_frames
        for earlier in stages[:k]:
            if isinstance(earlier, Stage):
                frames = earlier.output_frames(frames)
        analysis = stage.init_analysis(head, frames)
        for x in chunks():
            y, state = prefix.step(x, state)
            analysis = stage.analyze(y, analysis)
        tail = prefix.flush(state)
        if tail is not None:
            analysis = stage.analyze(tail, analysis)
        stage.finish_analysis(analysis)


def run_chain(
    chain: Chain,
    source: BlockSource,
    sink: Sink,
    *,
    channels: int,
    total_frames: int | None,
    device: torch.device,
    dtype: torch.dtype,
    name: str = "<stream>",
    sanitize: bool = False,
) -> StreamStats:
    """Stream every block of `source` through `chain` into `sink`.

    Raises:
        ProcessingError: NaN/Inf in the input (unless `sanitize`) or produced by the chain.
    """
    start = time.perf_counter()
    stats = StreamStats(sanitize=sanitize)
    template = torch.zeros((channels, 0), device=device, dtype=dtype)
    chain = chain.to(device)
    with torch.no_grad():

        def tensors() -> Iterator[Tensor]:
            offset = 0
            scratch = StreamStats(sanitize=sanitize)  # counts belong to the processing pass
            for block in source():
                yield _to_tensor(block, device, dtype, name, offset, scratch)
                offset += block.shape[0]

        run_analysis(chain, tensors, template, total_frames)
        state = chain.init_state(template, total_frames)
        head, state = chain.step(template, state)
        if sink.accepts_features:  # feature files record the chain's axes and the source
            sink.describe(chain_axes(chain, chain.sample_rate), name)
        elif head.dim() != 2:
            raise UsageError(
                f"{name}: the chain outputs features of shape {tuple(head.shape)}, not "
                "audio; write them to a feature file (-o out.npz or out.pt)"
            )
        stats.output_channels = head.shape[0]
        stats.output_rate = float(chain.output_rate or 0.0)
        sink.open(head, stats.output_rate)
        for block in source():
            x = _to_tensor(block, device, dtype, name, stats.frames_in, stats)
            stats.frames_in += block.shape[0]
            y, state = chain.step(x, state)
            _check_output(y, name, stats.frames_out)
            sink.write(y)
            stats.frames_out += y.shape[-1]
        tail = chain.flush(state)
        if tail is not None:
            _check_output(tail, name, stats.frames_out)
            sink.write(tail)
            stats.frames_out += tail.shape[-1]
    stats.seconds = time.perf_counter() - start
    return stats


def run_tensor(
    chain: Chain, x: Tensor, chunk_frames: int = 0, dtype: torch.dtype | None = None
) -> Tensor:
    """Run `chain` over an in-memory (..., frames) signal with `init_state` / `step` / `flush`,
    `chunk_frames` at a time (0: one step), exactly as `process` streams a file.

    The output is allocated once (on the CPU from `audiofx_cli.memory`: huge pages, recycled
    across calls) and stages that can write straight into it do (`Stage.step_into`), so a
    fused IIR chain reads the input and writes the output once, with no temporaries.

    Args:
        chain: an audiofx `Chain` (analysis passes are not run: see `run_analysis`).
        x: input; each chunk is cast to `dtype` (default: x's) before the chain.
        chunk_frames: chunk length in frames.
        dtype: processing dtype; the output has x's dtype.

    Example:
        >>> from audiofx_cli.api import load_chain
        >>> chain = load_chain([{"lowpass": {"cutoff_hz": 1000}}], 16000)
        >>> x = torch.randn(2, 16000)
        >>> torch.allclose(run_tensor(chain, x, 1000), chain(x), atol=1e-6)
        True
    """
    from audiofx_cli import memory

    frames = x.shape[-1]
    step = chunk_frames if chunk_frames > 0 else max(frames, 1)
    work = dtype or x.dtype
    out: Tensor | None = None
    pos = 0
    extra: list[Tensor] = []

    def put(y: Tensor) -> None:
        nonlocal out, pos
        y = y.to(x.dtype)
        if out is None:
            out = memory.empty((*y.shape[:-1], frames), x.dtype, y.device)
        n = y.shape[-1]
        if pos + n <= frames and not extra:
            out[..., pos : pos + n] = y
            pos += n
        else:
            extra.append(y)

    with torch.no_grad():
        state = chain.init_state(x[..., :0].to(work), frames)
        head, state = chain.step(x[..., :0].to(work), state)  # the output's leading shape
        put(head)
        for start in range(0, frames, step):
            chunk = x[..., start : start + step].to(work)
            n = chunk.shape[-1]
            if out is not None and not extra and pos + n <= frames and work == x.dtype:
                y, state = chain.step_into(chunk, state, out[..., pos : pos + n])
                if y is None:
                    pos += n
                    continue
            else:
                y, state = chain.step(chunk, state)
            put(y)
        tail = chain.flush(state)
        if tail is not None:
            put(tail)
    if out is None:
        return x[..., :0].clone()
    if extra or pos != frames:
        return torch.cat([out[..., :pos], *extra], dim=-1)
    return out
