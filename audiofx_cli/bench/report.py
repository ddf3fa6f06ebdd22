"""Benchmark output: a rich table (with notes and machine line) and a CSV, one row per
(suite, backend, device, channels, duration).

Example:
    >>> CSV_COLUMNS[:4]
    ['suite', 'backend', 'device', 'device_name']
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from audiofx_cli.bench.runner import BenchResult, Row

CSV_COLUMNS = [f.name for f in fields(Row)]
_PLAIN: dict[str, Any] = {"highlight": False, "markup": False, "soft_wrap": True}


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, spec)


def machine_line(result: BenchResult) -> str:
    m = result.machine
    gpu = f", GPU {m['cuda']}" if m.get("cuda") else ""
    return (
        f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, torch {m['torch_version']} "
        f"({m['threads']} threads){gpu}, audiofx {m['audiofx_version']}, "
        f"load average {m['load_1m']:.2f} at start"
    )


def render(result: BenchResult, console: Any) -> None:
    """Print the table, then the notes (designs, references, skipped backends), then the
    machine."""
    from rich.table import Table

    table = Table(title="audiofx bench", header_style="bold", pad_edge=False)
    for name in ("suite", "backend", "device", "ch", "sec", "median s", "min s", "max s"):
        table.add_column(
            name, justify="left" if name in ("suite", "backend", "device") else "right"
        )
    for name in ("M smp/s", "x scipy", "rel err", "peak MB", "check"):
        table.add_column(name, justify="left" if name == "check" else "right")
    for row in result.rows:
        style = "bold red" if row.flag in ("WRONG", "FAILED") else None
        speedup = _fmt(row.speedup_vs_scipy, ".2f")
        table.add_row(
            row.suite,
            row.backend,
            row.device,
            str(row.channels),
            f"{row.duration_s:g}",
            _fmt(row.median_s, ".3g"),
            _fmt(row.min_s, ".3g"),
            _fmt(row.max_s, ".3g"),
            _fmt(row.msamples_per_s, ".3g"),
            f"{speedup}x" if speedup else "",
            _fmt(row.rel_error, ".1e"),
            _fmt(row.peak_mem_mb, ".0f"),
            row.flag,
            style=style,
        )
    console.print(table)
    for row in result.rows:
        if row.note:
            where = (
                f"{row.suite} {row.backend} {row.device} {row.channels} ch x {row.duration_s:g} s"
            )
            console.print(
                f"  {row.flag or 'note'}: {where}: {row.note}", highlight=False, markup=False
            )
    for note in result.notes:
        console.print(f"  note: {note}", **_PLAIN)
    console.print(f"  {machine_line(result)}", **_PLAIN)


def write_csv(result: BenchResult, path: str | Path) -> Path:
    """Write every row with every column of `Row` (CSV_COLUMNS); floats in full precision."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in result.rows:
            values = asdict(row)
            writer.writerow({k: ("" if v is None else v) for k, v in values.items()})
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))
