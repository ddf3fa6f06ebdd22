"""Throughput plots of a benchmark (matplotlib, the optional ``plot`` extra).

One row of panels per suite: million samples per second against duration (at the largest
channel count measured) and against channels (at the longest duration), one line per backend
and device. Backends flagged WRONG are drawn dashed with "(wrong)" in the legend.

Example:
    >>> require_matplotlib()  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from audiofx_cli.errors import UsageError

INSTALL_HINT = (
    "--plot needs matplotlib, which is not installed: pip install 'audiofx-cli[plot]' "
    "(or pip install matplotlib)"
)


def require_matplotlib() -> None:
    """Raises UsageError (exit 2) with the install hint when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def _series(rows: list[Any], suite: str, axis: str) -> dict[str, list[tuple[float, float, bool]]]:
    mine = [r for r in rows if r.suite == suite and math.isfinite(r.msamples_per_s)]
    if not mine:
        return {}
    fixed = "channels" if axis == "duration_s" else "duration_s"
    keep = max(getattr(r, fixed) for r in mine)
    lines: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for r in mine:
        if getattr(r, fixed) == keep:
            key = r.backend if r.device == "cpu" else f"{r.backend} ({r.device})"
            lines[key].append((getattr(r, axis), r.msamples_per_s, r.flag == "WRONG"))
    return {k: sorted(v) for k, v in lines.items()}


def plot(rows: list[Any], path: str | Path, title: str = "audiofx bench") -> Path:
    """Write a PNG of throughput per backend; returns its path."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(r.suite for r in rows))
    fig, axes = plt.subplots(
        max(len(suites), 1), 2, figsize=(11, 3.6 * max(len(suites), 1)), squeeze=False
    )
    for i, suite in enumerate(suites):
        for j, axis in enumerate(("duration_s", "channels")):
            ax = axes[i][j]
            series = _series(rows, suite, axis)
            for name, points in sorted(series.items()):
                xs = [p[0] for p in points]
                ys = [p[1] for p in points]
                wrong = any(p[2] for p in points)
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    linestyle="--" if wrong else "-",
                    label=name + (" (wrong)" if wrong else ""),
                )
            fixed = [r for r in rows if r.suite == suite]
            if axis == "duration_s":
                ax.set_xscale("log")
                ch = max((r.channels for r in fixed), default=0)
                ax.set_xlabel(f"duration (s), {ch} channels")
            else:
                dur = max((r.duration_s for r in fixed), default=0)
                ax.set_xlabel(f"channels, {dur:g} s")
                ax.set_xticks(sorted({r.channels for r in fixed}))
            ax.set_yscale("log")
            ax.set_ylabel("M samples / s")
            ax.set_title(suite)
            ax.grid(True, which="both", alpha=0.3)
            if series:
                ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
