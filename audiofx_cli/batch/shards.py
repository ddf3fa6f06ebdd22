"""A batch written as dataset shards (`--out-shards PATTERN --shard-size SIZE`).

Each input becomes one sample: KEY.npz (features) or KEY.flac (audio) plus KEY.json with its
axes, rates and chain. Workers (local processes or Ray tasks) process into a temporary folder
of their own and send the member bytes back with their result, so nothing needs a shared
file system; the driver appends them to the current shard (`io.shards.ShardWriter`). The key
is the input's path relative to its folder or glob base, without its extension, with dots
made underscores (WebDataset splits a member name at its first dot). Torch-free here; the
worker imports the engine.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.batch.inputs import InputFile
from audiofx_cli.batch.plan import Task
from audiofx_cli.batch.runner import BatchOptions, FileResult, run_batch, run_task
from audiofx_cli.chain.spec import ChainSpec
from audiofx_cli.errors import UsageError
from audiofx_cli.io.shards import ShardWriter


@dataclass(frozen=True)
class ShardTask(Task):
    """One input of a sharded batch; `output` is the member name KEY.EXT."""

    key: str = ""


@dataclass
class ShardResult(FileResult):
    """A FileResult with the sample's key, the shard it went into, and (between the worker
    and the driver only) the member bytes."""

    key: str = ""
    shard: str | None = None
    payload: dict[str, bytes] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out.pop("payload", None)
        return out


def sample_key(item: InputFile) -> str:
    """'sub/take.1.wav' -> 'sub/take_1'."""
    relative = item.relative.with_suffix("") if item.relative.suffix else item.relative
    return relative.as_posix().replace(".", "_")


def plan_shards(items: list[InputFile], ext: str) -> list[ShardTask]:
    """A task per input with its key.

    Raises:
        UsageError: two inputs with the same key.
    """
    seen: dict[str, Path] = {}
    tasks = []
    for item in items:
        key = sample_key(item)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {item.path} would both be sample '{key}' in the shards; "
                "rename one or process them in separate runs"
            )
        seen[key] = item.path
        tasks.append(ShardTask(item.path, Path(f"{key}.{ext}"), key))
    return tasks


def _plain(value: Any) -> Any:
    """numpy values as JSON: arrays to lists, NaN to null."""
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return array.tolist()
    if array.dtype.kind == "f":
        return np.where(np.isnan(array), None, array).tolist()
    return array.tolist()


def feature_sidecar(path: Path) -> dict[str, Any]:
    """KEY.json of a feature file: axes, coordinates (not time_s: time_offset_s + k /
    frame_rate), counts, rates, dtype, shape, chain, source."""
    with np.load(path, allow_pickle=False) as npz:
        with npz.zip.open("data.npy") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0
            if major != 1:
                read = np.lib.format.read_array_header_2_0
            shape, _, _ = read(handle)
        meta = {name: npz[name] for name in npz.files if name not in ("data", "time_s", "mask")}
    out: dict[str, Any] = {"shape": list(shape)}
    for name, value in meta.items():
        out[name] = json.loads(str(value)) if name == "chain" else _plain(value)
    return out


def audio_sidecar(path: Path) -> dict[str, Any]:
    import soundfile as sf

    info = sf.info(str(path))
    return {
        "sample_rate": info.samplerate,
        "channels": info.channels,
        "frames": info.frames,
        "format": info.format,
        "subtype": info.subtype,
    }


def shard_task(task: ShardTask, spec: ChainSpec, options: BatchOptions) -> ShardResult:
    """Process one input into a temporary folder and return its members with the result."""
    ext = task.output.suffix.lstrip(".")
    with tempfile.TemporaryDirectory(prefix="audiofx-shard-") as folder:
        out = Path(folder) / f"sample.{ext}"
        plain = run_task(Task(task.input, out), spec, options)
        result = ShardResult(**{**vars(plain), "output": str(task.output)}, key=task.key)
        if plain.status != "ok":
            return result
        sidecar = feature_sidecar(out) if ext in ("npz", "pt") else audio_sidecar(out)
        sidecar = {"key": task.key, "source": str(task.input), **sidecar}
        sidecar.setdefault("chain", spec.to_dict())
        result.payload = {ext: out.read_bytes(), "json": json.dumps(sidecar).encode()}
    return result


def run_shards(
    tasks: list[ShardTask],
    spec: ChainSpec,
    options: BatchOptions,
    writer: ShardWriter,
    *,
    jobs: int = 1,
    executor: str = "local",
    on_result: Callable[[FileResult], None] = lambda result: None,
) -> list[FileResult]:
    """Run the tasks and write their samples into shards as they come back.

    Results whose shard is lost (an error or Ctrl-C before it was closed) become failed.
    """
    done: list[ShardResult] = []

    def collect(result: FileResult) -> None:
        if isinstance(result, ShardResult):
            if result.payload is not None:
                result.shard = writer.add(result.key, result.payload)
                result.payload = None
            done.append(result)
        on_result(result)

    try:
        results = run_batch(
            tasks, spec, options, jobs=jobs, executor=executor, on_result=collect,
            worker=shard_task,
        )  # fmt: skip
        writer.close()
    except BaseException:
        lost = set(writer.abort())
        for result in done:
            if result.key in lost:
                result.status, result.shard = "failed", None
                result.error = "its shard was not finished (interrupted or failed); not written"
        raise
    return results


def shard_index(writer: ShardWriter) -> dict[str, Any]:
    """The report's index of shards: file, number of samples, bytes, keys in order."""
    return {
        "shards": [
            {"path": s.path, "samples": len(s.keys), "bytes": s.bytes, "keys": s.keys}
            for s in writer.shards
        ]
    }
