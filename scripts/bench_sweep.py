"""Run the full published benchmark sweep and write the CSV and plots to a folder.

    python scripts/bench_sweep.py                    # -> bench-results/ (git-ignored)
    python scripts/bench_sweep.py /tmp/sweep --backends audiofx,scipy,scipy-sos --repeat 3

The grid (torchfx's published benchmark, extended to 12 channels):

- iir: channels 1, 2, 4, 8, 12 x durations 1, 5, 180, 300, 600 s
- fir: channels 1, 2, 4, 8, 12 x durations 5, 60, 180, 300, 600 s
- api: 8 channels x 120 s

Writes `bench.csv` (every row, rewritten after each suite so a long sweep keeps what it has),
`<suite>.png` throughput plots (when matplotlib is installed) and prints the table. With every
backend this takes hours on a small machine: torchaudio's per-sample recursion alone needs
about 80 s per 12 ch x 600 s run; leave it out with --backends to get a sweep in minutes.
Never commit the results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiofx_cli.bench import report
from audiofx_cli.bench.live import LogLines
from audiofx_cli.bench.runner import BenchOptions, BenchResult, check_memory, run_bench
from audiofx_cli.errors import AudiofxError

GRID: dict[str, tuple[list[int], list[float]]] = {
    "iir": ([1, 2, 4, 8, 12], [1, 5, 180, 300, 600]),
    "fir": ([1, 2, 4, 8, 12], [5, 60, 180, 300, 600]),
    "api": ([8], [120]),
}


def _numbers(text: str, kind: type) -> list:
    return [kind(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="bench-results", help="output folder")
    parser.add_argument("--backends", default=None, help="comma list (default: all available)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | comma list")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--suites", default="iir,fir,api", help="which grids to run")
    parser.add_argument("--channels", default=None, help="override every grid's channels")
    parser.add_argument("--durations", default=None, help="override every grid's durations")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    machine: dict = {}
    try:
        for suite in args.suites.split(","):
            channels, durations = GRID[suite]
            options = BenchOptions(
                suites=[suite],
                channels=_numbers(args.channels, int) if args.channels else channels,
                durations_s=_numbers(args.durations, float) if args.durations else durations,
                backends=args.backends.split(",") if args.backends else None,
                devices=args.device.split(","),
                repeat=args.repeat,
                warmup=args.warmup,
            )
            check_memory(options)
            result = run_bench(options, LogLines(sys.stderr))  # a line per measurement
            rows += result.rows
            notes += [n for n in result.notes if n not in notes]
            machine = result.machine
            report.write_csv(BenchResult(rows, notes, machine), out / "bench.csv")
            try:
                from audiofx_cli.bench.plot import plot

                plot(result.rows, out / f"{suite}.png", title=f"audiofx bench: {suite} suite")
            except AudiofxError as exc:
                print(f"bench_sweep: {exc}", file=sys.stderr)
    except (AudiofxError, KeyError) as exc:
        print(f"bench_sweep: error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    report.render(BenchResult(rows, notes, machine), Console())  # no time budget: in full
    print(f"wrote {out / 'bench.csv'} and plots in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
