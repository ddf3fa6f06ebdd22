"""Level stages: `normalize` (two passes: analysis, then a constant gain) and `fade`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp.level import fade_segments
from audiofx_cli.dsp.level_targets import DEFAULT_TARGETS_DB
from audiofx_cli.dsp.loudness import LoudnessMeter, TruePeakMeter
from audiofx_cli.dsp.loudness_kernels import peak_and_energy
from audiofx_cli.errors import UsageError
from audiofx_cli.stages.base import Stage, State

SILENCE_DB = -200.0  # a level measured below this is silence: normalize leaves it (no gain)


def _db(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def _as_batches(x: Tensor) -> np.ndarray:
    """(..., channels, time) tensor -> (batch, channels, time) numpy on the CPU, float32 or
    float64 as the chunk is (a view when it is already on the CPU and contiguous): the
    measurement kernels read it in place and compute in float64."""
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float64)
    batch = math.prod(x.shape[:-2])
    return x.reshape(batch, *x.shape[-2:]).to("cpu").contiguous().numpy()


@dataclass
class NormalizeAnalysis:
    """Running measurements of one stream (one value per batch item)."""

    lead_shape: tuple[int, ...]
    peak: np.ndarray
    sum_squares: np.ndarray
    samples: int
    loudness: LoudnessMeter | None
    true_peak: TruePeakMeter | None


class Normalize(Stage):
    """Normalise to a peak, RMS or integrated-loudness target (`normalize`).

    The analysis pass measures the stream at the stage's input (sample peak; RMS over all
    channels and samples; integrated loudness per ITU-R BS.1770-4 with gating) and, with
    `true_peak_limit_db`, the true peak. Processing applies one constant gain:
    gain_db = target_db - measured, lowered to true_peak_limit_db - true_peak_db when the
    true peak would exceed the limit. Silence, or loudness that no block passes the gates of
    (-inf), gets no gain change (0 dB; the true-peak limit still applies).
    Leading batch dimensions are measured and normalised independently.

    Attributes set by the analysis: `measured_db`, `true_peak_db`, `gain_db` (numpy arrays,
    one value per batch item).

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "normalize"
    needs_analysis = True

    def __init__(
        self,
        sample_rate: float,
        mode: str = "peak",
        target_db: float | None = None,
        true_peak_limit_db: float | None = None,
    ) -> None:
        super().__init__(
            sample_rate, mode=mode, target_db=target_db, true_peak_limit_db=true_peak_limit_db
        )
        if mode not in DEFAULT_TARGETS_DB:
            raise ValueError(f"unknown mode '{mode}'")
        self.mode = mode
        self.target_db = DEFAULT_TARGETS_DB[mode] if target_db is None else float(target_db)
        self.true_peak_limit_db = true_peak_limit_db
        self.measured_db: np.ndarray | None = None
        self.true_peak_db: np.ndarray | None = None
        self.gain_db: np.ndarray | None = None
        self._lead_shape: tuple[int, ...] | None = None

    # ----------------------------------------------------------------- analysis pass
    def init_analysis(self, x: Tensor, total_frames: int | None = None) -> NormalizeAnalysis:
        lead = tuple(x.shape[:-2])
        channels = x.shape[-2]
        batch = int(np.prod(lead)) if lead else 1
        return NormalizeAnalysis(
            lead_shape=lead,
            peak=np.zeros(batch),
            sum_squares=np.zeros(batch),
            samples=0,
            loudness=(
                LoudnessMeter(self.sample_rate, channels, batch) if self.mode == "lufs" else None
            ),
            true_peak=(
                TruePeakMeter(channels, batch) if self.true_peak_limit_db is not None else None
            ),
        )

    def analyze(self, x: Tensor, analysis: NormalizeAnalysis) -> NormalizeAnalysis:
        if x.shape[-1] == 0:
            return analysis
        block = _as_batches(x)
        if self.mode in ("peak", "rms"):
            peak_and_energy(block, analysis.peak, analysis.sum_squares)
            analysis.samples += block.shape[-2] * block.shape[-1]
        else:
            assert analysis.loudness is not None
            analysis.loudness.update(block)
        if analysis.true_peak is not None:
            analysis.true_peak.update(block)
        return analysis

    def finish_analysis(self, analysis: NormalizeAnalysis) -> None:
        if self.mode == "peak":
            measured = [_db(p) for p in analysis.peak]
        elif self.mode == "rms":
            samples = max(analysis.samples, 1)
            measured = [_db(math.sqrt(s / samples)) for s in analysis.sum_squares]
        else:
            assert analysis.loudness is not None
            measured = analysis.loudness.integrated()
        gains = [self.target_db - m if m > SILENCE_DB else 0.0 for m in measured]
        if analysis.true_peak is not None:
            assert self.true_peak_limit_db is not None
            peaks = [_db(p) for p in analysis.true_peak.peak()]
            gains = [
                min(g, self.true_peak_limit_db - p) if math.isfinite(p) else g
                for g, p in zip(gains, peaks, strict=True)
            ]
            self.true_peak_db = np.array(peaks)
        self.measured_db = np.array(measured)
        self.gain_db = np.array(gains)
        self._lead_shape = analysis.lead_shape

    # ----------------------------------------------------------------- processing
    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.gain_db is None or self._lead_shape is None:
            raise RuntimeError(
                "normalize needs its analysis pass first (audiofx_cli.stream.run_analysis)"
            )
        gain = torch.from_numpy(10.0 ** (self.gain_db / 20.0))
        gain = gain.to(device=x.device, dtype=x.dtype).reshape(*self._lead_shape, 1, 1)
        return x * gain, state


class Fade(Stage):
    """Fade in over the first `in_s` seconds and out over the last `out_s` (`fade`).

    Curves are defined in `audiofx_cli.dsp.level`. The fade-out needs the stream's length: the
    engine passes it to `init_state(x, total_frames)`; `forward` takes it from x.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "fade"

    def __init__(
        self, sample_rate: float, in_s: float = 0.0, out_s: float = 0.0, shape: str = "linear"
    ) -> None:
        super().__init__(sample_rate, in_s=in_s, out_s=out_s, shape=shape)
        self.fade_in = int(round(in_s * self.sample_rate))
        self.fade_out = int(round(out_s * self.sample_rate))
        self.shape = shape

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        if self.fade_out > 0 and total_frames is None:
            raise UsageError(
                "fade: out_s needs the stream's length, which is unknown here (a stream of "
                "unknown length); use in_s only, or process a file"
            )
        return {"position": 0, "total": total_frames}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        frames = x.shape[-1]
        position: int = state["position"]
        total = state["total"]
        new_state: dict[str, Any] = {"position": position + frames, "total": total}
        fading_out = self.fade_out > 0 and position + frames > total - self.fade_out
        if position >= self.fade_in and not fading_out:
            return x, new_state  # between the fades: unchanged
        y = x.clone()  # then only the fading samples are multiplied, in place
        for at, gain in fade_segments(
            position, frames, self.fade_in, self.fade_out, total, self.shape
        ):
            part = y[..., at : at + gain.shape[0]]
            part.mul_(gain.to(device=x.device, dtype=x.dtype))
        return y, new_state
