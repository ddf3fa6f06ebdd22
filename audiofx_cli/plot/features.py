"""Feature files (.npz) as pictures: the first channel's features with their own axes.

The layout written by `audiofx process ... -o feats.npz` (docs/features.md) is read tolerantly:
`data` is (channel, ..., time); each axis is named by a `dims` entry when the file has one, else
by matching the lengths of the axis arrays it holds (`fc_hz`, `mfc_hz`, `freq_hz`, `mel_hz`,
`mfcc`, ... and `time_s` or `frame_rate` for time). Padded ragged axes (`mask` or `counts`)
are left blank.

- (bands, time) features (spectrogram, mel, MFCC, gammatone envelopes): one image, bands on a
  log axis when they are log-spaced frequencies.
- (fc, mfc, time) modulation features: the time-averaged level per (fc, mfc) as an image, and
  one fc x time image per modulation filter (up to 12) on a shared colour scale.
Non-negative data is shown in dB (10 log10 for power, when the parameters say power 2; else
20 log10); data that is already in dB or signed (MFCC) is shown as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiofx_cli.errors import AudioReadError, UsageError
from audiofx_cli.plot.style import hz_formatter, new_figure

AXIS_PRIORITY = ("fc_hz", "freq_hz", "mel_hz", "mfc_hz", "mel", "mfcc", "band", "coefficient")
AXIS_LABELS = {
    "fc_hz": "auditory centre frequency (Hz)",
    "freq_hz": "frequency (Hz)",
    "mel_hz": "mel band centre (Hz)",
    "mfc_hz": "modulation frequency (Hz)",
    "mel": "mel band",
    "mfcc": "MFCC coefficient",
}
MAX_MOD_PANELS = 12
MAX_COLUMNS = 1600  # time columns drawn for (bands, time); longer files are reduced in blocks
MAX_PANEL_COLUMNS = 400  # the same for the small per-modulation-filter panels


@dataclass
class Axis:
    name: str
    values: np.ndarray

    @property
    def label(self) -> str:
        return AXIS_LABELS.get(self.name, self.name.replace("_", " "))

    @property
    def is_hz(self) -> bool:
        return self.name.endswith("_hz")


@dataclass
class FeatureFile:
    """The first channel of a feature file with its axes (time last)."""

    path: str
    data: np.ndarray
    axes: list[Axis]
    time_s: np.ndarray
    valid: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)
    units: str = "value"
    channels: int = 1
    block: int = 1  # frames per drawn column (1: every frame)
    frames: int = 0  # frames in the file


def _text(value: np.ndarray | None) -> str | None:
    if value is None:
        return None
    item = value.item() if value.shape == () else value
    return item.decode() if isinstance(item, bytes) else str(item)


def _json(value: np.ndarray | None) -> Any:
    text = _text(value)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dims(store: dict[str, np.ndarray]) -> list[str] | None:
    for key in ("dims", "axes", "dim_names"):
        if key in store:
            value = store[key]
            if value.dtype.kind in "US":
                names = [str(v) for v in np.atleast_1d(value)]
                if len(names) == 1 and names[0].startswith("["):
                    names = json.loads(names[0])
                return names
            parsed = _json(value)
            if isinstance(parsed, list):
                return [str(n) for n in parsed]
    return None


def _axis_for(length: int, store: dict[str, np.ndarray], used: set[str]) -> Axis:
    candidates = [
        k
        for k, v in store.items()
        if k not in used and v.dtype.kind in "fiu" and v.ndim in (1, 2) and v.shape[-1] == length
    ]
    for name in AXIS_PRIORITY:
        if name in candidates:
            return Axis(name, _axis_values(store[name]))
    generic = [
        k for k in candidates if k not in ("data", "counts", "mask", "time_s", "channel", "frames")
    ]
    generic = [k for k in generic if store[k].ndim == 1]
    if generic:
        return Axis(generic[0], store[generic[0]].astype(np.float64))
    return Axis("index", np.arange(length, dtype=np.float64))


def _axis_values(value: np.ndarray, first_row: bool = False) -> np.ndarray:
    """1-D axis values; a padded 2-D table (per auditory channel) gives its fullest row, or
    its first row when it runs over audio channels (the first channel is drawn)."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 2:
        filled = np.sum(np.isfinite(value), axis=1)
        value = value[0] if first_row else value[int(np.argmax(filled))]
    return value


def load_feature_file(path: str | Path, max_columns: int | None = None) -> FeatureFile:
    """Read an audiofx .npz feature file: first channel, axes, time, validity mask.

    More than `max_columns` frames (default MAX_COLUMNS for (bands, time) features,
    MAX_PANEL_COLUMNS for modulation features, which keep the audio rate) are reduced to at most
    that many blocks of equal length: RMS per block for amplitude or signed data, mean for power
    or dB data.

    Raises:
        AudioReadError (exit 1): unreadable file or no `data` array.
        UsageError (exit 2): data without a time axis to draw.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            store = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise AudioReadError(f"{path}: cannot read feature file: {exc}") from None
    if "data" not in store:
        raise AudioReadError(f"{path}: no 'data' array (keys: {', '.join(sorted(store))})")
    data = store.pop("data")
    if data.ndim < 2:
        raise UsageError(f"{path}: 'data' has shape {data.shape}; nothing to draw over time")
    dims = _dims(store)
    if dims is not None and len(dims) != data.ndim:
        dims = None
    has_channel = data.ndim >= 3 or (dims is not None and dims[0] in ("channel", "channels"))
    channels = data.shape[0] if has_channel else 1
    first = data[0] if has_channel else data
    over_channel = _text(store.get("ragged_over")) == "channel"
    valid = _validity(store, first.shape, has_channel, over_channel)
    names = (dims[1:] if has_channel else dims) if dims is not None else None
    used = {"time_s"}
    axes = []
    for i, length in enumerate(first.shape[:-1]):
        name = names[i] if names else None
        if name and name in store:
            axes.append(Axis(name, _axis_values(store[name], first_row=over_channel)))
        else:
            axes.append(_axis_for(length, store, used))
        used.add(axes[-1].name)
    frames = first.shape[-1]
    if "time_s" in store and store["time_s"].size == frames:
        time_s = np.asarray(store["time_s"], dtype=np.float64)
    elif "frame_rate" in store:
        time_s = np.arange(frames) / float(store["frame_rate"])
    else:
        time_s = np.arange(frames, dtype=np.float64)
    meta = {k: _json(store[k]) for k in store if store[k].dtype.kind in "US" and store[k].size == 1}
    for key in ("sample_rate", "frame_rate"):
        if key in store and store[key].size == 1:
            meta[key] = float(store[key])
    units = _units(first, meta)
    if max_columns is None:
        max_columns = MAX_COLUMNS if first.ndim == 2 else MAX_PANEL_COLUMNS
    block = max(1, -(-frames // max_columns))
    pooled = first
    if block > 1:
        pooled, time_s = _pool(first, time_s, block, rms=units in ("amplitude", "value"))
        units = "amplitude" if units == "value" else units
    pooled = np.asarray(pooled, dtype=np.float64)
    if valid is not None:
        pooled = np.where(valid[..., :1], pooled, np.nan)
    return FeatureFile(str(path), pooled, axes, time_s, valid, meta, units, channels, block, frames)


def _pool(
    data: np.ndarray, time_s: np.ndarray, block: int, rms: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce time by `block` frames per column, a few columns at a time (bounded memory)."""
    frames = data.shape[-1]
    columns = -(-frames // block)
    out = np.empty((*data.shape[:-1], columns))
    step = max(1, (1 << 22) // max(1, int(np.prod(data.shape[:-1])) * block))
    for c0 in range(0, columns, step):
        c1 = min(columns, c0 + step)
        chunk = np.asarray(data[..., c0 * block : c1 * block], dtype=np.float64)
        full = (chunk.shape[-1] // block) * block
        parts = []
        if full:
            shaped = chunk[..., :full].reshape(*chunk.shape[:-1], -1, block)
            parts.append(np.sqrt(np.mean(shaped**2, -1)) if rms else np.mean(shaped, -1))
        if chunk.shape[-1] > full:
            tail = chunk[..., full:]
            parts.append(
                np.sqrt(np.mean(tail**2, -1, keepdims=True))
                if rms
                else np.mean(tail, -1, keepdims=True)
            )
        out[..., c0:c1] = np.concatenate(parts, axis=-1)
    starts = np.arange(columns) * block
    centres = (time_s[starts] + time_s[np.minimum(starts + block, frames) - 1]) / 2
    return out, centres


def _validity(
    store: dict[str, np.ndarray], shape: tuple[int, ...], has_channel: bool, over_channel: bool
) -> np.ndarray | None:
    """Boolean array broadcastable to `shape` (time axis of length 1): valid entries."""
    if "mask" in store:
        mask = np.asarray(store["mask"], dtype=bool)
        if over_channel or (has_channel and mask.ndim == len(shape)):
            mask = mask[0]
        while mask.ndim < len(shape):
            mask = mask[..., None]
        if mask.ndim == len(shape) and mask.shape[:-1] == shape[:-1]:
            return mask[..., :1]
        return None
    if "counts" in store and len(shape) == 3:
        counts = np.asarray(store["counts"]).reshape(-1)
        if counts.size == shape[0]:
            return (np.arange(shape[1])[None, :] < counts[:, None])[..., None]
    return None


def _last_stage(meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    chain = meta.get("chain")
    stages = chain.get("stages") if isinstance(chain, dict) else None
    if isinstance(stages, list) and stages and isinstance(stages[-1], dict):
        ((name, params),) = stages[-1].items()
        return str(name), params if isinstance(params, dict) else {}
    return "", {}


def chain_label(meta: dict[str, Any]) -> str:
    """The chain's name, else its stage names joined by ' > ' ('' when the file has neither)."""
    chain = meta.get("chain") or meta.get("chain_spec")
    if not isinstance(chain, dict):
        return ""
    if chain.get("name"):
        return f"'{chain['name']}'"
    stages = chain.get("stages") if isinstance(chain.get("stages"), list) else []
    names = [next(iter(s)) for s in stages if isinstance(s, dict) and s]
    return " > ".join(str(n) for n in names)


def _units(data: np.ndarray, meta: dict[str, Any]) -> str:
    """'db' (already dB), 'power', 'amplitude' or 'value' (signed: shown as it is), from the
    chain's last stage when the file names it, else from the data and a `power` parameter."""
    name, params = _last_stage(meta)
    if name == "db":
        return "db"
    if name == "mfcc":
        return "value"
    sample = np.asarray(data[..., : min(data.shape[-1], 1 << 16)])
    if sample.size and float(np.nanmin(sample)) < 0:
        return "value"
    power = params.get("power")
    if power is None and not name:
        text = json.dumps(meta, default=str)
        power = 2.0 if ('"power": 2' in text) else None
    return "power" if power == 2 else "amplitude"


def display_values(feats: FeatureFile, db_range: float) -> tuple[np.ndarray, str, float, float]:
    """(values, colour-bar label, vmin, vmax) for drawing."""
    data = feats.data
    if feats.units in ("power", "amplitude"):
        factor = 10.0 if feats.units == "power" else 20.0
        with np.errstate(divide="ignore", invalid="ignore"):
            data = factor * np.log10(np.maximum(data, 1e-30))
        top = float(np.nanmax(data)) if np.isfinite(data).any() else 0.0
        return data, f"level (dB, {feats.units})", top - db_range, top
    finite = data[np.isfinite(data)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    label = "level (dB)" if feats.units == "db" else "value"
    return data, label, float(low), float(max(high, low + 1e-12))


def default_size(feats: FeatureFile) -> tuple[int, int]:
    return (1200, 560) if feats.data.ndim == 2 else (1200, 900)


def _band_axis(
    ax: Any, axis: Axis, which: str = "y", small: bool = False
) -> tuple[np.ndarray, bool]:
    """Cell edges for an axis, and whether it is drawn log-spaced."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    values = axis.values
    positive = values.size > 1 and bool(np.all(values > 0))
    log = axis.is_hz and positive and values[-1] / values[0] > 8
    if log:
        mids = np.sqrt(values[1:] * values[:-1])
        edges = np.concatenate([[values[0] ** 2 / mids[0]], mids, [values[-1] ** 2 / mids[-1]]])
        getattr(ax, f"set_{which}scale")("log")
        scale_axis = getattr(ax, f"{which}axis")
        scale_axis.set_major_formatter(FuncFormatter(hz_formatter))
        if small:  # few ticks: layout of many small log axes is otherwise slow
            scale_axis.set_major_locator(LogLocator(base=10, numticks=4))
            scale_axis.set_minor_locator(NullLocator())
    elif values.size > 1:
        mids = 0.5 * (values[1:] + values[:-1])
        edges = np.concatenate([[2 * values[0] - mids[0]], mids, [2 * values[-1] - mids[-1]]])
    else:
        edges = np.array([values[0] - 0.5, values[0] + 0.5])
    getattr(ax, f"set_{which}label")(axis.label)
    return edges, log


def _time_edges(t: np.ndarray) -> np.ndarray:
    if t.size < 2:
        return np.array([0.0, 1.0]) if t.size == 0 else np.array([t[0], t[0] + 1.0])
    step = np.diff(t)
    return np.concatenate([[t[0] - step[0] / 2], t[:-1] + step / 2, [t[-1] + step[-1] / 2]])


def draw_features(feats: FeatureFile, size_px: tuple[int, int], dpi: float, db_range: float):
    """A figure of the first channel's features (see the module docstring)."""
    fig = new_figure(size_px, dpi)
    values, label, vmin, vmax = display_values(feats, db_range)
    name = Path(feats.path).name
    rate = feats.meta.get("sample_rate")
    source = feats.meta.get("source")
    parts = [name + (f" (from {Path(source).name})" if isinstance(source, str) and source else "")]
    parts.append(f"channel 1 of {feats.channels}")
    chain = chain_label(feats.meta)
    if chain:
        parts.append(f"chain: {chain}")
    if rate:
        parts.append(f"{rate:g} Hz audio")
    shape = " x ".join(f"{a.name} {a.values.size}" for a in feats.axes)
    title = ", ".join(parts) + f"\n{shape} x time {feats.frames}"
    if feats.block > 1:
        how = "RMS" if feats.units == "amplitude" else "mean"
        title += f", drawn as the {how} of blocks of {feats.block} frames"
    fig.suptitle(title, fontsize=12)
    t_edges = _time_edges(feats.time_s)
    kwargs = {"cmap": "magma" if feats.units != "value" else "viridis", "vmin": vmin, "vmax": vmax}
    if values.ndim == 2:
        ax = fig.add_subplot(1, 1, 1)
        y_edges, _ = _band_axis(ax, feats.axes[0])
        mesh = ax.pcolormesh(t_edges, y_edges, values, rasterized=True, **kwargs)
        ax.set_xlabel("time (s)")
        ax.grid(False)
        fig.colorbar(mesh, ax=ax, label=label)
        return fig
    if values.ndim != 3:
        raise UsageError(f"{name}: cannot draw features with {values.ndim - 1} non-time axes")
    fc_axis, mfc_axis = feats.axes
    n_mod = values.shape[1]
    picks = list(range(n_mod))
    if n_mod > MAX_MOD_PANELS:
        picks = sorted({round(i * (n_mod - 1) / (MAX_MOD_PANELS - 1)) for i in range(12)})
    cols = 4
    rows = 1 + (len(picks) + cols - 1) // cols
    grid = fig.add_gridspec(rows, cols, height_ratios=[1.6] + [1.0] * (rows - 1))
    summary = fig.add_subplot(grid[0, :])
    level, summary_label = time_summary(feats)
    top = float(np.nanmax(level)) if np.isfinite(level).any() else 0.0
    low = top - db_range if feats.units != "value" or summary_label.endswith("(dB)") else None
    mod_edges = np.arange(n_mod + 1) - 0.5
    y_edges, _ = _band_axis(summary, fc_axis)
    mesh = summary.pcolormesh(
        mod_edges, y_edges, level, rasterized=True, cmap="magma", vmin=low, vmax=top
    )
    summary.set_xticks(np.arange(n_mod))
    summary.set_xticklabels([f"{v:.3g}" for v in mfc_axis.values[:n_mod]], rotation=45)
    summary.set_xlabel(f"{mfc_axis.label}, filter centre")
    summary.set_title("level over the whole file per auditory and modulation filter", loc="left")
    summary.grid(False)
    fig.colorbar(mesh, ax=summary, label=summary_label)
    mesh = None
    for k, j in enumerate(picks):
        ax = fig.add_subplot(grid[1 + k // cols, k % cols])
        y_edges, _ = _band_axis(ax, fc_axis, small=True)
        mesh = ax.pcolormesh(t_edges, y_edges, values[:, j, :], rasterized=True, **kwargs)
        ax.set_title(f"modulation filter {mfc_axis.values[j]:.3g} Hz", fontsize=10)
        ax.grid(False)
        ax.set_ylabel("fc (Hz)" if k % cols == 0 else "")
        ax.set_xlabel("time (s)" if k >= len(picks) - cols else "")
    if mesh is not None:
        fig.colorbar(mesh, ax=fig.axes[-len(picks) :], label=label, shrink=0.9)
    return fig


def time_summary(feats: FeatureFile) -> tuple[np.ndarray, str]:
    """Level over time per (band, modulation filter): RMS in dB, or the mean of dB values.
    Padded entries stay NaN."""
    data = feats.data
    valid = np.isfinite(data)
    count = valid.sum(axis=-1)
    filled = np.where(valid, data, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if feats.units == "db":
            return np.where(count > 0, filled.sum(axis=-1) / count, np.nan), "mean level (dB)"
        power = filled**2 if feats.units != "power" else np.abs(filled)
        mean = np.where(count > 0, power.sum(axis=-1) / np.maximum(count, 1), np.nan)
        level = 10 * np.log10(np.maximum(mean, 1e-30))
    return np.where(count > 0, level, np.nan), "RMS over time (dB)"
