"""Benchmark output, one row per (suite, backend, device, channels, duration): a rich table for
a terminal, the same table as plain aligned text for a file or a pipe (never cut to a width),
CSV, JSON, one line per finished measurement, and a summary of audiofx against each peer.

Example:
    >>> CSV_COLUMNS[:4]
    ['suite', 'backend', 'device', 'device_name']
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TextIO

from audiofx_cli.bench.rows import BenchResult, Row

CSV_COLUMNS = [f.name for f in fields(Row)]
HEADERS = (
    "suite", "backend", "device", "ch", "sec", "runs", "slice s", "median s", "min s", "max s",
    "M smp/s", "x scipy", "rel err", "peak MB", "check",
)  # fmt: skip
_LEFT = {"suite", "backend", "device", "check"}
_PLAIN: dict[str, Any] = {"highlight": False, "markup": False, "soft_wrap": True}
SLICE_MARK = "*"


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, spec)


def _error(row: Row) -> str:
    if row.rel_error is None:
        return ""
    return "NaN" if math.isnan(row.rel_error) else f"{row.rel_error:.1e}"


def cells(row: Row) -> list[str]:
    """The table's cells of one row (HEADERS order); a row measured on a slice has its
    throughput marked with SLICE_MARK."""
    speedup = _fmt(row.speedup_vs_scipy, ".2f")
    mark = SLICE_MARK if row.sliced else ""
    return [
        row.suite,
        row.backend,
        row.device,
        str(row.channels),
        f"{row.duration_s:g}",
        str(row.repeats_done) if row.repeats_done else "",
        f"{row.slice_s:g}" if row.sliced else "",
        _fmt(row.median_s, ".3g"),
        _fmt(row.min_s, ".3g"),
        _fmt(row.max_s, ".3g"),
        _fmt(row.msamples_per_s, ".3g") + mark if math.isfinite(row.msamples_per_s) else "",
        f"{speedup}x" if speedup else "",
        _error(row),
        _fmt(row.peak_mem_mb, ".0f"),
        row.flag,
    ]


def plain_table(rows: list[Row]) -> str:
    """The table as aligned plain text, every cell in full (for logs, files and pipes)."""
    grid = [list(HEADERS), *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADERS))]
    lines = []
    for line in grid:
        parts = [
            cell.ljust(w) if name in _LEFT else cell.rjust(w)
            for cell, w, name in zip(line, widths, HEADERS, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rich_table(rows: list[Row]) -> Any:
    """The table for a terminal: cells wrap on a narrow one instead of being cut."""
    from rich.table import Table

    table = Table(title="audiofx bench", header_style="bold", pad_edge=False)
    for name in HEADERS:
        table.add_column(name, justify="left" if name in _LEFT else "right", overflow="fold")
    for row in rows:
        style = "bold red" if row.flag in ("WRONG", "FAILED") else None
        table.add_row(*cells(row), style=style)
    return table


def machine_line(result: BenchResult) -> str:
    m = result.machine
    gpu = f", GPU {m['cuda']}" if m.get("cuda") else ""
    return (
        f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, torch {m['torch_version']} "
        f"({m['threads']} threads){gpu}, audiofx {m['audiofx_version']}, "
        f"load average {m['load_1m']:.2f} at start"
    )


def _where(row: Row) -> str:
    return f"{row.suite} {row.channels} ch x {row.duration_s:g} s"


def _runs(row: Row, budget_sep: str = " (", end: str = ")") -> str:
    """'5 runs', or '3 runs on the first 120 s (time budget)'."""
    text = f"{row.repeats_done} run{'s' if row.repeats_done != 1 else ''}"
    if row.sliced:
        text += f" on the first {row.slice_s:g} s"
    return f"{text}{budget_sep}{row.budget}{end}" if row.budget else text


def note_lines(result: BenchResult) -> list[str]:
    """Notes under the table: rows' notes and budgets, the slice mark, designs, machine."""
    lines = []
    for row in result.rows:
        if row.note:
            flag = row.flag or "note"
            lines.append(f"{flag}: {_where(row)} {row.backend} {row.device}: {row.note}")
        if row.budget:
            lines.append(f"budget: {_where(row)} {row.backend} {row.device}: {_runs(row)}")
    if any(r.sliced for r in result.rows):
        lines.append(
            f"{SLICE_MARK}: measured on the first 'slice s' seconds of the same signal: median, "
            "min and max are for the slice; throughput, speed-up and median_full_s (CSV) are "
            "per sample, comparable with the full rows"
        )
    lines += [f"note: {note}" for note in result.notes]
    lines.append(machine_line(result))
    return lines


def row_line(row: Row) -> str:
    """One line for a finished measurement (suite, backend, shape, median, speed-up, error)."""
    parts = [f"{_where(row)} {row.backend} {row.device}:"]
    if math.isfinite(row.median_s):
        parts.append(f"median {row.median_s:.3g} s, {_runs(row)},")
        parts.append(f"{row.msamples_per_s:.3g} M samples/s")
    if row.speedup_vs_scipy is not None:
        parts[-1] += ","
        parts.append(f"{row.speedup_vs_scipy:.2f}x scipy")
    if row.rel_error is not None:
        parts[-1] += ","
        parts.append(f"error {_error(row)}")
    if row.flag:
        parts.append(row.flag)
    if row.note and row.flag != "ok":
        parts.append(f"({row.note})")
    return " ".join(parts)


def summary_lines(result: BenchResult) -> list[str]:
    """Per configuration, audiofx against each peer: how many times faster per sample (a
    peer's seconds per sample over audiofx's), and each one's error. Pasteable as it is."""
    lines = [
        "summary: audiofx against each peer in this run (x = peer's time per sample / "
        "audiofx's; error = max |y - ref| / max |ref| against the float64 reference)"
    ]
    groups: dict[tuple[str, int, float], list[Row]] = {}
    for row in result.rows:
        groups.setdefault((row.suite, row.channels, row.duration_s), []).append(row)
    for group in groups.values():
        ours = [r for r in group if r.backend == "audiofx" and math.isfinite(r.msamples_per_s)]
        for mine in ours:
            lines.append(
                f"  {_where(mine)}: audiofx {mine.device} {mine.msamples_per_s:.4g} M samples/s,"
                f" error {_error(mine) or '-'} {mine.flag}".rstrip()
            )
            peers = [r for r in group if r is not mine and r.backend != "audiofx"]
            width = max((len(f"{p.backend} {p.device}") for p in peers), default=0)
            for peer in peers:
                lines.append("    " + _peer_line(mine, peer, width))
        if not ours:
            lines.append(f"  {_where(group[0])}: no audiofx row")
    return lines


def _peer_line(mine: Row, peer: Row, width: int) -> str:
    name = f"{peer.backend} {peer.device}".ljust(width)
    if not math.isfinite(peer.msamples_per_s) or peer.msamples_per_s <= 0:
        return f"{name}  {peer.flag or 'no result'}: {peer.note}".rstrip(": ")
    ratio = mine.msamples_per_s / peer.msamples_per_s
    text = f"{name}  {ratio:>7.3g}x  error {_error(peer) or '-':>7}"
    if peer.flag not in ("ok", ""):
        text += f"  {peer.flag}"
    if peer.sliced or peer.budget:
        text += f"  ({_runs(peer, '; ', '')})"
    return text


def footer_line(result: BenchResult) -> str:
    """Wall time against the time budget, the command's peak RSS against the memory budget."""
    minutes, seconds = divmod(result.elapsed_s, 60)
    budget = f" (time budget {result.budget_s:g} s)" if result.budget_s is not None else ""
    return (
        f"done in {int(minutes)} min {seconds:04.1f} s{budget}; peak RSS of the whole command "
        f"{result.peak_rss_bytes / 1e9:.2f} GB (memory budget "
        f"{result.memory_budget_bytes / 1e9:.1f} GB)"
    )


def render(result: BenchResult, console: Any) -> None:
    """The table on a rich console, then notes, summary and footer. A console narrower than
    the table gets the plain table (the terminal wraps its lines; no cell is squeezed)."""
    plain = plain_table(result.rows)
    table_width = max(len(line) for line in plain.splitlines()) + 3 * len(HEADERS)
    if console.width >= table_width:
        console.print(rich_table(result.rows))
    else:
        console.print(plain, **_PLAIN)
    for line in [*note_lines(result), "", *summary_lines(result), footer_line(result)]:
        console.print(f"  {line}" if line else "", **_PLAIN)


def render_plain(result: BenchResult, out: TextIO) -> None:
    """The same as `render` as plain text: aligned columns at full width, nothing cut."""
    out.write("audiofx bench\n" + plain_table(result.rows) + "\n")
    for line in [*note_lines(result), "", *summary_lines(result), footer_line(result)]:
        out.write(f"  {line}\n" if line else "\n")


def write_csv_to(result: BenchResult, handle: TextIO) -> None:
    """Every row with every column of `Row` (CSV_COLUMNS); floats in full precision."""
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})


def write_csv(result: BenchResult, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as handle:
        write_csv_to(result, handle)
    return path


def csv_text(result: BenchResult) -> str:
    handle = io.StringIO()
    write_csv_to(result, handle)
    return handle.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity
    return value


def json_text(result: BenchResult) -> str:
    """Rows (NaN as null), notes, summary, machine, wall time and peak RSS as one JSON object."""
    data = {
        "rows": [{k: _json_value(v) for k, v in asdict(r).items()} for r in result.rows],
        "notes": result.notes,
        "summary": summary_lines(result),
        "machine": result.machine,
        "elapsed_s": result.elapsed_s,
        "peak_rss_bytes": result.peak_rss_bytes,
        "budget_s": result.budget_s,
        "memory_budget_bytes": result.memory_budget_bytes,
    }
    return json.dumps(data, indent=2)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))
