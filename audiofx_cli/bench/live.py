"""Progress of a bench run while it runs, from the runner's events (`BenchEvent`).

- `LogLines`: one plain line per finished or skipped measurement and for the plan, stamped
  with the time since the start: for logs, pipes, CI and job schedulers.
- `ProgressBar`: a rich bar on a terminal with what runs now, the time spent and an ETA from
  the calibrated plan; the same lines are printed above it.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from audiofx_cli.bench.report import row_line
from audiofx_cli.bench.rows import BenchEvent


def clock(seconds: float) -> str:
    """'m:ss' (or 'h:mm:ss')."""
    minutes, secs = divmod(int(max(seconds, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def event_line(event: BenchEvent) -> str:
    """The line an event is worth in a log ('' for a step of a measurement)."""
    text = row_line(event.row) if event.row is not None else event.line
    return f"[{clock(event.elapsed_s):>5}] {text}" if text else ""


class LogLines:
    """Plain lines on a stream, flushed as they come."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: BenchEvent) -> None:
        line = event_line(event)
        if line:
            self.out.write(line + "\n")
            self.out.flush()


class ProgressBar:
    """A rich progress bar (use as a context manager) fed by the runner's events."""

    def __init__(self, console: Any) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("calibrating", total=None, eta_at=None)

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: BenchEvent) -> None:
        line = event_line(event)
        if line:
            self.progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
        if event.remaining_s is None:
            self.progress.update(self.task, description=event.text)
            return
        self.progress.update(
            self.task,
            description=event.text,
            completed=event.elapsed_s,
            total=event.elapsed_s + event.remaining_s,
            eta_at=time.monotonic() + event.remaining_s,
        )


class _EtaColumn(ProgressColumn):
    """'ETA m:ss' counted down from the last estimate ('-:--' before calibration)."""

    def render(self, task: Any) -> Text:
        eta_at = task.fields.get("eta_at")
        if eta_at is None:
            return Text("ETA -:--")
        return Text(f"ETA {clock(eta_at - time.monotonic())}")
