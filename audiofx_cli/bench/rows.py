"""What a bench run gives: a `Row` per measurement, the `BenchResult`, the `BenchEvent`s it
reports while it runs, and the speed-ups against each configuration's baseline.

Speed-ups are per sample (this row's throughput over the baseline's), so a row measured on a
slice of the signal compares with rows measured in full.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BASELINE = "scipy"
FILE_BASELINE = "io-only"


@dataclass
class Row:
    """One line of the table and of the CSV."""

    suite: str
    backend: str
    device: str
    device_name: str
    channels: int
    duration_s: float
    sample_rate: int
    samples: int  # channels x frames each timed run filtered (the slice's when sliced)
    repeat: int  # timed runs asked for
    warmup: int  # warm-up runs asked for
    repeats_done: int = 0
    warmups_done: int = 0
    slice_s: float = math.nan  # seconds of the signal each run filtered (duration_s in full)
    median_s: float = math.nan
    min_s: float = math.nan
    max_s: float = math.nan
    median_full_s: float = math.nan  # median_s scaled to the whole duration
    msamples_per_s: float = math.nan
    speedup_vs_scipy: float | None = None
    rel_error: float | None = None
    flag: str = ""
    budget: str = ""  # '' or what cut this row: 'time budget', 'memory budget'
    planned_s: float = math.nan  # wall seconds the budget planned for it (calibrated)
    spent_s: float = math.nan  # wall seconds it took: prepare, runs, check
    peak_mem_mb: float = math.nan
    mem_method: str = ""
    signal_mb: float = 0.0
    cpu_model: str = ""
    threads: int = 0
    torch_version: str = ""
    audiofx_version: str = ""
    load_1m: float = 0.0
    note: str = ""

    @property
    def sliced(self) -> bool:
        return self.slice_s < self.duration_s


@dataclass
class BenchResult:
    rows: list[Row]
    notes: list[str]
    machine: dict[str, Any]
    elapsed_s: float = 0.0
    peak_rss_bytes: int = 0
    budget_s: float | None = None
    memory_budget_bytes: int = 0


@dataclass(frozen=True)
class BenchEvent:
    """What the runner reports: `text` says what runs now (for a progress bar); `row` is set
    when a measurement finished, `line` when something is worth a line of its own (the plan,
    a skipped measurement)."""

    text: str
    elapsed_s: float
    remaining_s: float | None = None  # estimate; None before calibration
    row: Row | None = None
    line: str = ""


Listener = Callable[[BenchEvent], None]


def same_config(a: Row, b: Row) -> bool:
    return (a.suite, a.channels, a.duration_s) == (b.suite, b.channels, b.duration_s)


def is_baseline(row: Row) -> bool:
    return row.backend in (BASELINE, FILE_BASELINE) and math.isfinite(row.msamples_per_s)


def speedup(row: Row, base: Row) -> None:
    """speedup_vs_scipy per sample; for the file suite, the io-only share in `note`."""
    if not math.isfinite(row.msamples_per_s) or row.median_s <= 0:
        return
    if base.backend == BASELINE:
        row.speedup_vs_scipy = row.msamples_per_s / base.msamples_per_s
    elif row.backend != FILE_BASELINE and "x io-only" not in row.note:
        share = 100 * base.median_s / row.median_s
        row.note = (row.note + "; " if row.note else "") + (
            f"{row.median_s / base.median_s:.2f}x io-only (decode + encode {share:.0f}% of it)"
        )


def speedups(rows: list[Row]) -> None:
    """Speed-ups of every row against its configuration's baseline, from the same run."""
    for row in rows:
        base = next((r for r in rows if same_config(r, row) and is_baseline(r)), None)
        if base is not None:
            speedup(row, base)
