"""Drawing a `ChainResponse`: magnitude, phase, group delay, impulse and static-curve panels.

Each stage's own curve is a thin coloured line, the whole chain's a bold black one; stages that
are not linear filters are named in the legend as not shown (dynamics get the static panel).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiofx_cli.errors import UsageError
from audiofx_cli.plot import lti
from audiofx_cli.plot.response import ChainResponse, StageResponse
from audiofx_cli.plot.style import TOTAL_COLOR, log_freq_axis, new_figure

PANELS = ("magnitude", "phase", "group-delay", "impulse", "static")
DEFAULT_PANELS = ("magnitude", "phase")
PANEL_HEIGHT_PX = 300
LEGEND_WIDTH = 42  # characters per legend line
MASK_DB = 40.0  # phase and group delay are not drawn where a curve is this far below its peak


def parse_panels(text: str | None, has_static: bool) -> tuple[str, ...]:
    """'magnitude,phase' -> ('magnitude', 'phase'); None -> the defaults (plus 'static' when
    the chain has dynamics stages).

    Raises:
        UsageError: an unknown panel name (with a suggestion).
    """
    if text is None:
        return DEFAULT_PANELS + (("static",) if has_static else ())
    import difflib

    panels: list[str] = []
    for name in (p.strip().lower() for p in text.split(",")):
        if not name:
            continue
        name = {"group_delay": "group-delay", "groupdelay": "group-delay"}.get(name, name)
        if name not in PANELS:
            close = difflib.get_close_matches(name, PANELS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"--show: unknown panel '{name}'{hint}; use {', '.join(PANELS)}")
        if name not in panels:
            panels.append(name)
    if not panels:
        raise UsageError(f"--show: name at least one panel of {', '.join(PANELS)}")
    return tuple(panels)


def default_size(panels: tuple[str, ...]) -> tuple[int, int]:
    return 1200, 110 + PANEL_HEIGHT_PX * len(panels)


def _wrap(text: str, width: int = LEGEND_WIDTH) -> str:
    """Legend text wrapped so the legend does not squeeze the axes."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, subsequent_indent="   ")) or text


def _stage_phase_deg(resp: ChainResponse, stage: StageResponse) -> np.ndarray:
    w = 2 * np.pi * resp.freqs_hz / resp.sample_rate
    assert stage.h is not None and stage.group_delay_s is not None
    return np.degrees(lti.unwrap_phase(stage.h, stage.group_delay_s * resp.sample_rate, w))


def _audible(values: np.ndarray, h: np.ndarray) -> np.ndarray:
    """`values` with NaN where |h| is more than MASK_DB below its peak (phase and delay are
    meaningless, and wildly varying, in a stop band)."""
    db = 20 * np.log10(np.maximum(np.abs(h), 1e-300))
    return np.where(db >= np.max(db) - MASK_DB, values, np.nan)


def _robust_limits(values: list[np.ndarray], pad: float = 0.08) -> tuple[float, float] | None:
    data = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if data.size == 0:
        return None
    low, high = np.percentile(data, [0.5, 99.5])
    span = max(high - low, 1e-9 + 0.05 * max(abs(high), abs(low)), 1e-6)
    return low - pad * span, high + pad * span


def _magnitude(ax: Any, resp: ChainResponse, colors: list[Any]) -> None:
    shown = [s for s in resp.stages if s.shown]
    curves = [s.db for s in shown] + [resp.total_db]
    top = max(float(np.max(c)) for c in curves)
    bottom = min(float(np.min(c)) for c in curves)
    top = 6 * np.ceil((top + 1.5) / 6)
    bottom = max(6 * np.floor((bottom - 1.5) / 6), top - 96)
    bottom = min(bottom, top - 12)
    for stage in shown:
        color = colors[stage.index - 1]
        ax.plot(resp.freqs_hz, stage.db, lw=1.0, color=color, alpha=0.85, label=_wrap(stage.label))
    ax.plot(resp.freqs_hz, resp.total_db, lw=2.4, color=TOTAL_COLOR, label="total")
    for stage in resp.not_shown:
        ax.plot([], [], " ", label=_wrap(f"{stage.label}: not shown ({stage.reason})"))
    ax.set_ylim(bottom, top)
    ax.set_ylabel("magnitude (dB)")
    ax.set_title("magnitude")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)


def _phase(ax: Any, resp: ChainResponse, colors: list[Any]) -> None:
    shown = [s for s in resp.stages if s.shown]
    for stage in shown:
        color = colors[stage.index - 1]
        assert stage.h is not None
        phase = _audible(_stage_phase_deg(resp, stage), stage.h)
        ax.plot(resp.freqs_hz, phase, lw=1.0, color=color, alpha=0.85)
    ax.plot(resp.freqs_hz, _audible(resp.phase_deg, resp.total), lw=2.4, color=TOTAL_COLOR)
    ax.set_ylabel("phase (degrees)")
    ax.set_title(f"phase (unwrapped; not drawn more than {MASK_DB:g} dB below the peak)")


def _group_delay(ax: Any, resp: ChainResponse, colors: list[Any]) -> None:
    shown = [s for s in resp.stages if s.shown]
    curves = []
    for stage in shown:
        color = colors[stage.index - 1]
        assert stage.group_delay_s is not None and stage.h is not None
        delay = _audible(1e3 * stage.group_delay_s, stage.h)
        ax.plot(resp.freqs_hz, delay, lw=1.0, color=color, alpha=0.85)
        curves.append(delay)
    total = _audible(resp.group_delay_ms, resp.total)
    ax.plot(resp.freqs_hz, total, lw=2.4, color=TOTAL_COLOR)
    limits = _robust_limits([*curves, total])
    if limits is not None:
        ax.set_ylim(*limits)
    ax.set_ylabel("group delay (ms)")
    note = " (as processed: FIR delay compensation applied)" if resp.compensated_samples else ""
    ax.set_title(f"group delay{note}")


def _impulse(ax: Any, resp: ChainResponse) -> None:
    h, t = resp.impulse, resp.impulse_t_s * 1e3
    peak = float(np.max(np.abs(h))) if h.size else 0.0
    if peak > 0:
        significant = np.flatnonzero(np.abs(h) > 1e-3 * peak)
        first, last = int(significant[0]), int(significant[-1])
        margin = max(2, (last - first) // 20)
        first, last = max(first - margin, 0), min(last + margin, h.size - 1)
        first = min(first, int(np.searchsorted(t, 0.0)))  # always show the impulse instant
        h, t = h[first : last + 1], t[first : last + 1]
    style = {"marker": "o", "ms": 3} if h.size <= 120 else {}
    ax.plot(t, h, lw=1.4, color=TOTAL_COLOR, **style)
    ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("time (ms, 0 = input impulse)")
    ax.set_ylabel("amplitude")
    ax.set_title("impulse response of the linear stages")


def _static(ax: Any, resp: ChainResponse, colors: list[Any]) -> None:
    levels = np.array([-90.0, 6.0])
    ax.plot(levels, levels, color="0.6", lw=0.8, ls="--", label="unity (no processing)")
    for stage in resp.stages:
        curve = stage.static
        if curve is not None:
            color = colors[stage.index - 1]
            ax.plot(curve.input_db, curve.output_db, lw=2.0, color=color, label=_wrap(curve.label))
    ax.set_xlim(-90, 6)
    ax.set_ylim(-96, 12)
    ax.set_xlabel("input level (dBFS)")
    ax.set_ylabel("output level (dBFS)")
    ax.set_title("static level curves (steady state)")
    if not resp.static_curves:
        ax.text(0.5, 0.5, "no compressor, limiter or gate", transform=ax.transAxes, ha="center")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)


def draw_response(
    resp: ChainResponse, panels: tuple[str, ...], size_px: tuple[int, int], dpi: float
) -> Any:
    """A figure of `resp` with the named panels stacked top to bottom."""
    from matplotlib import colormaps

    fig = new_figure(size_px, dpi)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    palette = colormaps["tab10"].colors
    colors = [palette[i % len(palette)] for i in range(len(resp.stages))]
    frequency_axes = []
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "magnitude":
            _magnitude(ax, resp, colors)
        elif panel == "phase":
            _phase(ax, resp, colors)
        elif panel == "group-delay":
            _group_delay(ax, resp, colors)
        elif panel == "impulse":
            _impulse(ax, resp)
        elif panel == "static":
            _static(ax, resp, colors)
        if panel in ("magnitude", "phase", "group-delay"):
            log_freq_axis(ax, float(resp.freqs_hz[0]), float(resp.freqs_hz[-1]))
            frequency_axes.append(ax)
    for ax in frequency_axes[:-1]:
        ax.set_xlabel("")
    n_linear = sum(s.shown for s in resp.stages)
    fig.suptitle(
        f"{resp.title}: response at {resp.sample_rate:g} Hz "
        f"({n_linear} of {len(resp.stages)} stages linear; bold: all linear stages together)",
        fontsize=13,
    )
    return fig
