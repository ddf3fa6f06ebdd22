"""Rich rendering for batches: a progress bar on stderr and a summary table at the end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from audiofx_cli.batch.report import BatchSummary
from audiofx_cli.batch.runner import FileResult


class _SpeedColumn(ProgressColumn):
    """Audio processed so far and speed in x real time."""

    def render(self, task: Task) -> Text:
        audio_s = float(task.fields.get("audio_s", 0.0))
        audio_h = audio_s / 3600
        elapsed = task.elapsed or 0.0
        speed = audio_s / elapsed if elapsed > 0 else 0.0
        return Text(f"{audio_h:.3f} h audio, {speed:.0f}x real time")


class BatchProgress:
    """Files done / total, audio hours processed, speed and ETA (ETA by audio duration, or by
    files where durations are not known beforehand: objects in a store)."""

    def __init__(self, total_files: int, total_audio_s: float, quiet: bool) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.total_files = total_files
        self.done = 0
        self.audio_s = 0.0
        self.by_audio = total_audio_s > 0  # else the bar counts files
        self.progress = Progress(
            TextColumn("{task.fields[files]}"),
            BarColumn(),
            _SpeedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self.task = self.progress.add_task(
            "batch",
            total=total_audio_s if self.by_audio else max(total_files, 1),
            files=self._files_text(),
            audio_s=0.0,
        )

    def _files_text(self) -> str:
        return f"{self.done}/{self.total_files} files"

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, result: FileResult, audio_s: float) -> None:
        self.done += 1
        self.audio_s += audio_s
        self.progress.update(
            self.task,
            advance=audio_s if self.by_audio else 1,
            files=self._files_text(),
            audio_s=self.audio_s,
        )


def print_summary(summary: BatchSummary, quiet: bool) -> None:
    """A summary table, then every failure with its reason (stderr)."""
    console = Console(stderr=True, soft_wrap=True)
    failed = [r for r in summary.results if r.status == "failed"]
    if not quiet:
        table = Table(title="audiofx batch")
        for column in ("files", "ok", "skipped", "failed", "audio", "wall time", "speed"):
            table.add_column(column, justify="right")
        table.add_row(
            str(summary.total),
            str(summary.count("ok")),
            str(summary.count("skipped")),
            str(summary.count("failed")),
            f"{summary.audio_s / 3600:.3f} h",
            f"{summary.wall_s:.1f} s",
            f"{summary.realtime_factor:.0f}x",
        )
        console.print(table)
        clipped = [r for r in summary.results if r.clipped_samples]
        if clipped:
            console.print(f"{len(clipped)} file(s) clipped; see the JSON report for counts")
    for result in failed:
        console.print(f"audiofx: error: {result.error}", markup=False, highlight=False)
