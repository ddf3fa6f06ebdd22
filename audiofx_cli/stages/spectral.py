"""Spectral feature stages: `spectrogram`, `mel`, `mfcc`, `db`.

STFT stages stream with frame state: the stage keeps the samples of the frames not yet
complete (plus the start padding, and the last n_fft // 2 + 1 samples for reflect padding at
the end, which `flush` appends), so the frames over any chunking are the frames of the whole
signal. Output (..., channels, bins, frames); the output rate is the frame rate
sample_rate / hop and frame t is centred at t * hop / sample_rate (center=True).
Computation is float64 on the input's device; the output has the input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.axes import FeatureAxes, chain_axes
from audiofx_cli.dsp import spectral as dsp
from audiofx_cli.errors import ParamError, ProcessingError
from audiofx_cli.stages.base import Stage, State


class _TopDb:
    """Mixin: a floor at (max - top_db) over each item's (channel, feature, time) values,
    with the maximum from an analysis pass (exact in streaming)."""

    top_db: float | None
    n_axes: int
    peak_db: Tensor | None = None

    @property
    def needs_analysis(self) -> bool:
        return self.top_db is not None

    def _db(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def init_analysis(self, x: Tensor, total_frames: int | None = None) -> Any:
        return {"peak": None, "state": self.init_state(x, total_frames)}  # type: ignore[attr-defined]

    def analyze(self, x: Tensor, analysis: Any) -> Any:
        y, state = self._features(x, analysis["state"])  # type: ignore[attr-defined]
        return {"peak": self._peak(y, analysis["peak"]), "state": state}

    def finish_analysis(self, analysis: Any) -> None:
        tail = self._flush_features(analysis["state"])  # type: ignore[attr-defined]
        peak = analysis["peak"] if tail is None else self._peak(tail, analysis["peak"])
        self.peak_db = peak

    def _peak(self, y: Tensor, peak: Tensor | None) -> Tensor | None:
        if y.shape[-1] == 0:
            return peak
        dims = tuple(range(y.dim() - self.n_axes, y.dim()))
        now = y.amax(dim=dims) if dims else y
        return now if peak is None else torch.maximum(peak, now)

    def _floor(self, db: Tensor) -> Tensor:
        if self.top_db is None or db.shape[-1] == 0:
            return db
        if self.peak_db is None:
            raise RuntimeError(f"{self.stage_name}: run the analysis pass first (top_db)")  # type: ignore[attr-defined]
        peak = self.peak_db.to(db).reshape(*self.peak_db.shape, *([1] * self.n_axes))
        return torch.maximum(db, peak - self.top_db)


class Spectrogram(Stage):
    """STFT magnitude^power (`spectrogram`), streamed frame-exactly.

    Shape:
        (..., channels, time) -> (..., channels, n_fft // 2 + 1, frames).

    Example:
        >>> stage = Spectrogram(16000, n_fft=512, hop=160)
        >>> stage(torch.randn(1, 16000)).shape
        torch.Size([1, 257, 101])
    """

    stage_name = "spectrogram"
    float64_buffers = ("window",)

    def __init__(
        self,
        sample_rate: float,
        n_fft: int = 512,
        hop: int | None = None,
        win_length: int | None = None,
        window: str = "hann",
        power: float = 2.0,
        center: bool = True,
        pad_mode: str = "constant",
        **params: Any,
    ) -> None:
        win = win_length or n_fft
        super().__init__(
            sample_rate,
            n_fft=n_fft,
            hop=hop,
            win_length=win_length,
            window=window,
            power=power,
            center=center,
            pad_mode=pad_mode,
            **params,
        )
        self.n_fft, self.hop = n_fft, hop or max(1, win // 4)
        self.power, self.center, self.pad_mode = power, center, pad_mode
        self.pad = n_fft // 2 if center else 0
        self.register_buffer(
            "window", torch.from_numpy(dsp.window(window, win, n_fft)), persistent=False
        )

    @property
    def output_rate(self) -> float:
        return self.sample_rate / self.hop

    def output_frames(self, frames: int | None) -> int | None:
        if frames is None:
            return None
        length = frames + 2 * self.pad if frames else 0
        return 0 if length < self.n_fft else (length - self.n_fft) // self.hop + 1

    def feature_axes(self, axes: FeatureAxes) -> FeatureAxes:
        offset = 0.0 if self.center else (self.n_fft / 2) / self.sample_rate
        return self._axes(axes).replace(
            frame_rate=self.output_rate, time_offset_s=axes.time_offset_s + offset
        )

    def _axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.insert("freq_hz", np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate))

    # ------------------------------------------------------------------ streaming frames
    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        lead = x.shape[:-1]
        buf = x.new_zeros((*lead, self.pad if self.pad_mode == "constant" else 0))
        return {
            "buf": buf.to(torch.float64),
            "started": self.pad_mode == "constant" or not self.center,
            "tail": x.new_zeros((*lead, 0), dtype=torch.float64),
            "total": 0,
            "dtype": x.dtype,
        }

    def _frames(self, state: State, more: Tensor) -> tuple[Tensor, State]:
        buf = torch.cat([state["buf"], more], dim=-1) if more.shape[-1] else state["buf"]
        skip = state.get("skip", 0)  # samples before the next frame not yet received
        if skip:
            dropped = min(skip, buf.shape[-1])
            buf, skip = buf[..., dropped:], skip - dropped
        spec = dsp.stft_power(buf, self.n_fft, self.hop, self.window, self.power)
        used = spec.shape[-1] * self.hop  # the next frame starts here (hop > n_fft: ahead)
        skip += max(used - buf.shape[-1], 0)
        return spec, {**state, "buf": buf[..., used:], "skip": skip}

    def _features(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        x64 = x.to(torch.float64)
        keep = self.pad + 1
        tail = torch.cat([state["tail"], x64], dim=-1)[..., -keep:]
        state = {**state, "tail": tail, "total": state["total"] + x.shape[-1]}
        if not state["started"]:
            head = torch.cat([state["buf"], x64], dim=-1)
            if head.shape[-1] <= self.pad:
                return self._frames({**state, "buf": head}, x64[..., :0])[0], {**state, "buf": head}
            prefix = head[..., 1 : self.pad + 1].flip(-1)
            state = {**state, "buf": torch.cat([prefix, head], dim=-1), "started": True}
            return self._frames(state, x64[..., :0])
        return self._frames(state, x64)

    def _flush_features(self, state: State) -> Tensor | None:
        if state is None or state["total"] == 0 or not self.center:
            return None
        if not state["started"]:
            raise ProcessingError(
                f"{self.stage_name}: pad_mode reflect needs more than n_fft // 2 = {self.pad} "
                f"samples, got {state['total']} (use pad_mode: constant)"
            )
        buf = state["buf"]
        if self.pad_mode == "constant":
            end = buf.new_zeros((*buf.shape[:-1], self.pad))
        else:
            end = state["tail"][..., :-1].flip(-1)[..., : self.pad]
        spec, _ = self._frames(state, end)
        return spec

    def _post(self, spec: Tensor) -> Tensor:
        return spec

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        spec, state = self._features(x, state)
        return self._finish(spec, x), state

    def flush(self, state: State) -> Tensor | None:
        spec = self._flush_features(state)
        if spec is None or spec.shape[-1] == 0:
            return None
        return self._post(spec).to(state["dtype"])

    def _finish(self, spec: Tensor, like: Tensor) -> Tensor:
        return self._post(spec).to(like.dtype)


class MelSpectrogram(Spectrogram):
    """Mel spectrogram (`mel`): the spectrogram through a librosa-style mel filterbank.

    Shape:
        (..., channels, time) -> (..., channels, n_mels, frames).
    """

    stage_name = "mel"
    float64_buffers = ("window", "mel_fb")

    def __init__(
        self,
        sample_rate: float,
        n_mels: int = 128,
        f_min_hz: float = 0.0,
        f_max_hz: float | None = None,
        norm: str = "slaney",
        mel_scale: str = "slaney",
        **stft: Any,
    ) -> None:
        super().__init__(
            sample_rate,
            **stft,
            n_mels=n_mels,
            f_min_hz=f_min_hz,
            f_max_hz=f_max_hz,
            norm=norm,
            mel_scale=mel_scale,
        )
        fb, centres = dsp.mel_filterbank(
            sample_rate, self.n_fft, n_mels, f_min_hz, f_max_hz, norm, mel_scale
        )
        self.mel_centres = centres
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)

    def _axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.insert("mel_hz", self.mel_centres)

    def _mel(self, spec: Tensor) -> Tensor:
        return torch.matmul(self.mel_fb.to(spec), spec)

    def _post(self, spec: Tensor) -> Tensor:
        return self._mel(spec)


class MFCC(_TopDb, MelSpectrogram):
    """MFCC (`mfcc`): DCT-II of the mel power spectrogram in dB (librosa.feature.mfcc).

    Shape:
        (..., channels, time) -> (..., channels, n_mfcc, frames).
    """

    stage_name = "mfcc"
    float64_buffers = ("window", "mel_fb", "dct")

    def __init__(
        self,
        sample_rate: float,
        n_mfcc: int = 20,
        dct_norm: str = "ortho",
        top_db: float | None = 80.0,
        **mel: Any,
    ) -> None:
        super().__init__(sample_rate, **mel)
        self.params.update(n_mfcc=n_mfcc, dct_norm=dct_norm, top_db=top_db)
        n_mels = self.mel_fb.shape[0]
        if n_mfcc > n_mels:
            raise ParamError("n_mfcc", f"must be <= n_mels ({n_mels}), got {n_mfcc}")
        self.top_db, self.n_axes = top_db, 3
        self.register_buffer(
            "dct", torch.from_numpy(dsp.dct_matrix(n_mfcc, n_mels, dct_norm)), persistent=False
        )

    def _axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.insert("mfcc", np.arange(self.dct.shape[0]))

    def _features(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        spec, state = super()._features(x, state)
        return dsp.power_to_db(self._mel(spec), 10.0, 1e-10, 1.0), state

    def _flush_features(self, state: State) -> Tensor | None:
        spec = super()._flush_features(state)
        return None if spec is None else dsp.power_to_db(self._mel(spec), 10.0, 1e-10, 1.0)

    def _post(self, db: Tensor) -> Tensor:
        return torch.matmul(self.dct.to(db), self._floor(db))


class Decibels(_TopDb, Stage):
    """Amplitude or power to dB (`db`), librosa power_to_db / amplitude_to_db.

    The top_db floor uses the maximum over each item's whole signal (an analysis pass).

    Shape:
        any (..., time) -> same.
    """

    stage_name = "db"

    def __init__(
        self,
        sample_rate: float,
        kind: str = "power",
        ref: float = 1.0,
        amin: float | None = None,
        top_db: float | None = 80.0,
    ) -> None:
        super().__init__(sample_rate, kind=kind, ref=ref, amin=amin, top_db=top_db)
        self.multiplier = 10.0 if kind == "power" else 20.0
        self.amin = amin if amin is not None else (1e-10 if kind == "power" else 1e-5)
        self.kind, self.ref, self.top_db, self.n_axes = kind, ref, top_db, 2

    def connect(self, previous: list[Any]) -> None:
        """Reduce the top_db maximum over the previous stage's (channel, ..., time) axes."""
        if previous:
            self.n_axes = len(chain_axes(previous).names)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return None

    def _features(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        s = x.to(torch.float64)
        s = s.abs() if self.kind == "amplitude" else s
        return dsp.power_to_db(s, self.multiplier, self.amin, self.ref), None

    def _flush_features(self, state: State) -> Tensor | None:
        return None

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        db, _ = self._features(x, state)
        return self._floor(db).to(x.dtype), None
