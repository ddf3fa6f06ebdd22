"""Running a batch: one file per task, serially, in a process pool, or as Ray tasks.

Each task rebuilds its chain from the validated spec (modules are never pickled), writes its
output atomically, and comes back as a `FileResult`; a failing file never stops the batch.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Any

from audiofx_cli.batch.inputs import TEMP_SUFFIX
from audiofx_cli.batch.plan import Task
from audiofx_cli.chain.spec import ChainSpec
from audiofx_cli.errors import AudiofxError, UsageError
from audiofx_cli.io.urls import Location, URLPath, abort_stale_uploads, exists

EXECUTORS = ("local", "ray")


@dataclass
class FileResult:
    """One line of the batch report."""

    input: str
    output: str
    status: str  # ok | failed | skipped
    duration_s: float = 0.0
    processing_s: float = 0.0
    peak_dbfs: float | None = None
    clipped_samples: int = 0
    sanitized_samples: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["peak_dbfs"] is not None and not math.isfinite(out["peak_dbfs"]):
            out["peak_dbfs"] = None  # silence: JSON has no -inf
        return out


@dataclass
class BatchOptions:
    """What every task needs besides its paths (picklable, sent to workers)."""

    process_kwargs: dict[str, Any] = field(default_factory=dict)
    skip_existing: bool = False


def _remove_stale_temps(output: Location) -> None:
    """Temporary files (or, in an object store, unfinished multipart uploads) a killed run left
    for this output (resume only)."""
    if isinstance(output, URLPath):
        abort_stale_uploads([output])
        return
    for stale in output.parent.glob(f".{output.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _prepare_folder(output: Location) -> None:
    """Create a local output's folder (object stores have none to create)."""
    if isinstance(output, URLPath):
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudiofxError(
            f"{output.parent}: cannot create output folder: {exc.strerror or exc}"
        ) from None


def run_task(task: Task, spec: ChainSpec, options: BatchOptions) -> FileResult:
    """Process one file; every error becomes a failed FileResult (KeyboardInterrupt excepted)."""
    from audiofx_cli.api import process_file  # torch, in the worker

    result = FileResult(str(task.input), str(task.output), "ok")
    start = time.perf_counter()
    try:
        if options.skip_existing and exists(task.output):
            result.status, result.error = "skipped", "output exists"
            return result
        _prepare_folder(task.output)
        if options.skip_existing or isinstance(task.output, URLPath):  # an object's unfinished
            _remove_stale_temps(task.output)  # uploads are stale (or a retried Ray task's own)
        report = process_file(task.input, task.output, spec, **options.process_kwargs)
        result.duration_s = report.duration_s
        result.peak_dbfs = report.peak_dbfs
        result.clipped_samples = report.clipped_samples
        result.sanitized_samples = getattr(report, "sanitized_samples", 0)
    except AudiofxError as exc:
        result.status, result.error = "failed", str(exc)
    except Exception as exc:  # a bug must not stop the batch either
        result.status, result.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        result.processing_s = time.perf_counter() - start
    return result


def _init_worker(threads: int) -> None:
    """Pool worker: share the cores fairly; SIGTERM cleans up like Ctrl-C."""
    import torch

    torch.set_num_threads(threads)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_local(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    jobs: int,
    on_result: Callable[[FileResult], None],
) -> None:
    if jobs == 1:
        for task in tasks:
            on_result(run_task(task, spec, options))
        return
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads_per_job(jobs),),
    )
    futures: dict[Future, Task] = {}
    try:
        futures = {pool.submit(run_task, task, spec, options): task for task in tasks}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except Exception as exc:  # the worker process died
                    task = futures[future]
                    result = FileResult(
                        str(task.input),
                        str(task.output),
                        "failed",
                        error=f"worker failed: {type(exc).__name__}: {exc}",
                    )
                on_result(result)
    except KeyboardInterrupt:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # workers abort their temporary files
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_ray(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    on_result: Callable[[FileResult], None],
) -> None:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'audiofx-cli[ray]'") from None
    address = os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    remote = ray.remote(num_cpus=1)(run_task)
    refs = {remote.remote(task, spec, options): task for task in tasks}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                result = ray.get(ref)
            except Exception as exc:  # the Ray task or its worker failed
                task = refs[ref]
                result = FileResult(
                    str(task.input),
                    str(task.output),
                    "failed",
                    error=f"ray task failed: {type(exc).__name__}: {exc}",
                )
            on_result(result)


def run_batch(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    *,
    jobs: int = 1,
    executor: str = "local",
    on_result: Callable[[FileResult], None] = lambda result: None,
) -> list[FileResult]:
    """Run every task; results come back in completion order through on_result and, sorted
    like the tasks, as the return value."""
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{executor}' (use {' or '.join(EXECUTORS)})")
    results: list[FileResult] = []

    def collect(result: FileResult) -> None:
        results.append(result)
        on_result(result)

    if executor == "ray":
        _run_ray(tasks, spec, options, collect)
    else:
        _run_local(tasks, spec, options, jobs, collect)
    order = {str(task.input): i for i, task in enumerate(tasks)}
    return sorted(results, key=lambda r: order.get(r.input, len(order)))
