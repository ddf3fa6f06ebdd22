"""Drawing file pictures: waveform over log-frequency spectrogram, processed version below.

Original and processed share the time axis, the waveform amplitude scale, the frequency range
and the colour scale, so what the chain changed is what differs between the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiofx_cli.plot.audio import Picture
from audiofx_cli.plot.style import hz_formatter, new_figure

DB_RANGE = 90.0
COLORMAP = "magma"


def default_size(n_pictures: int) -> tuple[int, int]:
    return 1200, 80 + 420 * n_pictures


def _waveform(ax: Any, pic: Picture, limit: float) -> None:
    from matplotlib import colormaps

    colors = colormaps["tab10"].colors
    for ch in range(pic.channels):
        color = colors[ch % len(colors)]
        label = f"ch {ch + 1}" if pic.channels > 1 else None
        if np.array_equal(pic.wave_min[ch], pic.wave_max[ch]):
            ax.plot(pic.wave_t_s, pic.wave_min[ch], lw=0.7, color=color, label=label)
        else:
            ax.fill_between(
                pic.wave_t_s,
                pic.wave_min[ch],
                pic.wave_max[ch],
                color=color,
                alpha=0.75 if pic.channels == 1 else 0.5,
                lw=0,
                label=label,
            )
    ax.set_ylim(-limit, limit)
    ax.set_ylabel("amplitude\n(full scale = 1)")
    if limit >= 1.0:
        for level in (-1.0, 1.0):
            ax.axhline(level, color="0.4", lw=0.8, ls=":")
    if pic.channels > 1:
        ax.legend(loc="upper right", ncols=min(pic.channels, 8), frameon=False)
    peak_db = 20 * np.log10(pic.peak) if pic.peak > 0 else -np.inf
    ax.set_title(
        f"{pic.label}: {pic.sample_rate:g} Hz, {pic.channels} ch, {pic.duration_s:.2f} s, "
        f"peak {peak_db:.1f} dBFS",
        loc="left",
    )


def _spectrogram(ax: Any, cax: Any, pic: Picture, vmin: float, vmax: float, f_max: float) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    mesh = ax.pcolormesh(
        pic.spec_t_edges_s,
        pic.spec_f_edges_hz,
        pic.spec_db,
        cmap=COLORMAP,
        vmin=vmin,
        vmax=vmax,
        shading="flat",
        rasterized=True,
    )
    ax.set_yscale("log")
    ax.set_ylim(pic.spec_f_edges_hz[0], f_max)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(hz_formatter))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    ax.set_ylabel("frequency (Hz)")
    ax.grid(False)
    channels = f", mean of {pic.channels} channels" if pic.channels > 1 else ""
    ax.set_title(f"spectrogram (Hann, {pic.n_fft}-point FFT, hop {pic.hop}{channels})", loc="left")
    bar = ax.figure.colorbar(mesh, cax=cax)
    bar.set_label("level (dBFS)")


def draw_pictures(
    title: str,
    pictures: list[Picture],
    size_px: tuple[int, int],
    dpi: float,
    db_range: float = DB_RANGE,
) -> Any:
    """Waveform and spectrogram rows for each picture, on shared scales."""
    fig = new_figure(size_px, dpi)
    rows = []
    for _ in pictures:
        rows += [1.0, 2.2]
    grid = fig.add_gridspec(len(rows), 2, height_ratios=rows, width_ratios=[1.0, 0.018])
    limit = max(max(p.peak for p in pictures) * 1.08, 1e-3)
    finite = [p.spec_db[np.isfinite(p.spec_db)] for p in pictures if p.spec_db.size]
    vmax = float(np.ceil(max((float(np.max(f)) for f in finite if f.size), default=0.0) / 5) * 5)
    vmin = vmax - db_range
    f_max = max(p.sample_rate / 2 for p in pictures)
    duration = max(p.duration_s for p in pictures)
    first_ax = None
    for i, pic in enumerate(pictures):
        wave_ax = fig.add_subplot(grid[2 * i, 0], sharex=first_ax)
        first_ax = first_ax or wave_ax
        spec_ax = fig.add_subplot(grid[2 * i + 1, 0], sharex=first_ax)
        fig.add_subplot(grid[2 * i, 1]).set_axis_off()
        _waveform(wave_ax, pic, limit)
        _spectrogram(spec_ax, fig.add_subplot(grid[2 * i + 1, 1]), pic, vmin, vmax, f_max)
        wave_ax.tick_params(labelbottom=False)
        if i < len(pictures) - 1:
            spec_ax.tick_params(labelbottom=False)
        else:
            spec_ax.set_xlabel("time (s)")
    if first_ax is not None:
        first_ax.set_xlim(0.0, max(duration, 1e-6))
    fig.suptitle(title, fontsize=13)
    return fig
