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
RAY_STOP_TIMEOUT_S = 30.0  # how long Ctrl-C waits for cancelled Ray tasks to clean up
FINALIZER_RETRY_S = 0.005  # a stop that arrived inside a __del__ is raised again this much later
Worker = Callable[..., "FileResult"]  # (task, spec, options) -> result; run_task by default


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


@dataclass
class _WorkerState:
    """A pool worker's stop flag: set by Ctrl-C (SIGINT to the terminal's process group) or
    by the SIGTERM the parent sends on an interrupt."""

    stopping: bool = False
    busy: bool = False  # a task is running (else a signal must not interrupt the pool's loop)
    pending: bool = False  # the stop arrived inside a finalizer: raised again shortly after


_worker = _WorkerState()


def _stop_worker(signum: int, frame: object) -> None:
    """Abort the file in progress (its temporary output is removed on the way out) and start no
    other: the executor's loop takes the KeyboardInterrupt as the task's outcome and would
    otherwise go on with the tasks already queued to this worker. An idle worker only notes it
    (an exception there would break the executor's loop, not stop a task)."""
    first = not _worker.stopping
    _worker.stopping = True
    if first and _worker.busy:  # once: a second signal must not break the clean-up
        _interrupt(frame)


def _in_finalizer(frame: Any) -> bool:
    """Whether a `__del__` is on the stack: an exception raised there is printed as
    "Exception ignored in ..." and lost, so the task would not stop."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _interrupt(frame: Any) -> None:
    """Raise KeyboardInterrupt in the task, or, inside a finalizer, a moment later (SIGALRM)."""
    if _in_finalizer(frame):
        _worker.pending = True
        signal.setitimer(signal.ITIMER_REAL, FINALIZER_RETRY_S)
        return
    _worker.pending = False
    raise KeyboardInterrupt


def _retry_stop(signum: int, frame: object) -> None:
    if _worker.pending and _worker.busy:
        _interrupt(frame)


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

    if _worker.stopping:  # a pool worker told to stop: queued tasks never start
        raise KeyboardInterrupt
    result = FileResult(str(task.input), str(task.output), "ok")
    start = time.perf_counter()
    _worker.busy = True
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
        _worker.busy = False
        result.processing_s = time.perf_counter() - start
    return result


def _init_worker(threads: int) -> None:
    """Pool worker: share the cores fairly; SIGINT and SIGTERM stop it cleanly."""
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGTERM, _stop_worker)
    signal.signal(signal.SIGINT, _stop_worker)
    signal.signal(signal.SIGALRM, _retry_stop)


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _finished_ok(future: Future) -> bool:
    """Whether a pool task ran to its end and returned a result (ok, failed or skipped)."""
    return future.done() and not future.cancelled() and future.exception() is None


def _run_local(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    jobs: int,
    on_result: Callable[[FileResult], None],
    worker: Worker = run_task,
) -> None:
    if jobs == 1:
        for task in tasks:
            on_result(worker(task, spec, options))
        return
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads_per_job(jobs),),
    )
    futures: dict[Future, Task] = {}
    reported: set[Future] = set()
    try:
        futures = {pool.submit(worker, task, spec, options): task for task in tasks}
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
                reported.add(future)
                on_result(result)
    except KeyboardInterrupt:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # workers abort the file in progress and start no other
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:  # files committed while the interrupt arrived: in the report
            if future not in reported and _finished_ok(future):
                on_result(future.result())
        raise
    pool.shutdown(wait=True)


def _run_ray(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    on_result: Callable[[FileResult], None],
    worker: Worker = run_task,
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
    remote = ray.remote(num_cpus=1)(worker)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue = list(tasks)
    running: dict[Any, Task] = {}  # at most one task per CPU: Ctrl-C has none queued to cancel
    try:
        while queue or running:
            while queue and len(running) < slots:
                task = queue.pop(0)
                running[remote.remote(task, spec, options)] = task
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                on_result(_ray_result(ray, ref, running.pop(ref)))
    except KeyboardInterrupt:
        _stop_ray_tasks(ray, running, on_result)
        raise


def _ray_result(ray: Any, ref: Any, task: Task) -> FileResult:
    try:
        return ray.get(ref)
    except Exception as exc:  # the Ray task or its worker failed
        return FileResult(
            str(task.input),
            str(task.output),
            "failed",
            error=f"ray task failed: {type(exc).__name__}: {exc}",
        )


def _stop_ray_tasks(
    ray: Any, running: dict[Any, Task], on_result: Callable[[FileResult], None]
) -> None:
    """On Ctrl-C: report what has finished, cancel the rest (a running task gets a
    KeyboardInterrupt and removes its temporary output), wait for the cancellations, and report
    the files that were finished all the same. Without this, tasks go on writing outputs after
    the driver has gone, or die with the local cluster mid-file. Finished tasks are never
    cancelled: Ray 2.60 can abort the driver when a cancel races a task's completion
    ("Tried to complete task that was not pending")."""
    if not running:
        return
    refs = list(running)
    finished, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0)
    for ref in unfinished:
        ray.cancel(ref)
    stopped = []
    if unfinished:
        stopped, _ = ray.wait(unfinished, num_returns=len(unfinished), timeout=RAY_STOP_TIMEOUT_S)
    for ref in [*finished, *stopped]:
        result = _ray_result(ray, ref, running[ref])
        if result.error is None or not result.error.startswith("ray task failed"):
            on_result(result)


def run_batch(
    tasks: list[Task],
    spec: ChainSpec,
    options: BatchOptions,
    *,
    jobs: int = 1,
    executor: str = "local",
    on_result: Callable[[FileResult], None] = lambda result: None,
    worker: Worker = run_task,
) -> list[FileResult]:
    """Run every task; results come back in completion order through on_result and, sorted
    like the tasks, as the return value. `worker(task, spec, options)` processes one task
    (default `run_task`; `batch.shards.shard_task` for dataset shards)."""
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{executor}' (use {' or '.join(EXECUTORS)})")
    results: list[FileResult] = []

    def collect(result: FileResult) -> None:
        results.append(result)
        on_result(result)

    if executor == "ray":
        _run_ray(tasks, spec, options, collect, worker)
    else:
        _run_local(tasks, spec, options, jobs, collect, worker)
    order = {str(task.input): i for i, task in enumerate(tasks)}
    return sorted(results, key=lambda r: order.get(r.input, len(order)))
