"""Shared look of audiofx figures: sizes in pixels, legible fonts, light grids, Hz tick labels."""

from __future__ import annotations

from typing import Any

from audiofx_cli.errors import UsageError

DPI = 100.0
RC = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",
}
TOTAL_COLOR = "black"


def parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """'1200x800' -> (1200, 800) pixels; None -> default.

    Raises:
        UsageError: not WIDTHxHEIGHT with both between 200 and 10000.
    """
    if text is None:
        return default
    parts = text.lower().replace(" ", "").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"--size must be WIDTHxHEIGHT in pixels (e.g. 1200x800), got '{text}'"
        ) from None
    for value in (width, height):
        if not 200 <= value <= 10000:
            raise UsageError(f"--size: each side must be 200 .. 10000 pixels, got '{text}'")
    return width, height


def new_figure(size_px: tuple[int, int], dpi: float = DPI) -> Any:
    """A figure of exactly `size_px` pixels at `dpi` with constrained layout.

    Draw and save inside ``matplotlib.rc_context(RC)`` so the audiofx style applies to every artist.
    """
    from matplotlib.figure import Figure

    # a bare Figure (not pyplot's): nothing is kept in a global figure list
    return Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi, layout="constrained")


def hz_formatter(value: float, _pos: Any = None) -> str:
    """Tick label for a frequency axis: 20, 100, 1k, 10k."""
    if value >= 1000:
        k = value / 1000
        return f"{k:g}k"
    return f"{value:g}"


def log_freq_axis(ax: Any, low: float, high: float) -> None:
    """Log frequency axis from low to high Hz with 1k/10k style labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(hz_formatter))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    ax.set_xlabel("frequency (Hz)")
