"""Modulation filterbank stages (AMT): `modulation_filterbank` and `king2019_modulation`.

Shapes: the input's second-to-last axis is the auditory-channel axis (the gammatone bands, or
the audio channels when no gammatone precedes); a modulation axis is inserted before time:
(..., C, T) -> (..., C, M, T) and (..., C, B, T) -> (..., C, B, M, T).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.axes import FeatureAxes, chain_axes
from audiofx_cli.dsp import modfilter as dsp
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt
from audiofx_cli.errors import ParamError, UsageError
from audiofx_cli.stages.auditory import WholeSignalStage
from audiofx_cli.stages.base import Stage, State


class ModulationFilterbank(Stage):
    """AMT modfilterbank (`modulation_filterbank`): per auditory channel a 2.5 Hz low-pass and
    band-pass filters up to min(0.25 fc, max_mfc_hz) (or max_mfc_hz), ragged across channels.

    Output slots beyond a channel's filter count are 0; `feature_axes` gives the counts and the
    NaN-padded mfc_hz table. With a gammatone stage before it the centre frequencies come from
    that stage; otherwise from `fc_hz` (one per audio channel, or one for all), and without
    either AMT's choice for an empty fc: fs / 2 (every filter up to max_mfc_hz).

    Example:
        >>> stage = ModulationFilterbank(16000, preset="dau1997")
        >>> stage(torch.randn(1, 1600)).shape
        torch.Size([1, 12, 1600])
    """

    stage_name = "modulation_filterbank"
    float64_buffers = ("fc_hz", "mfc_hz")

    def __init__(
        self,
        sample_rate: float,
        preset: str = "jepsen2008",
        q: float = 2.0,
        max_mfc_hz: float = 1000.0,
        use_upper_limit: bool | None = None,
        lp150: bool | None = None,
        att_factor: float | None = None,
        filter_type: str = "efilt",
        fc_hz: list[float] | None = None,
    ) -> None:
        super().__init__(
            sample_rate,
            preset=preset,
            q=q,
            max_mfc_hz=max_mfc_hz,
            use_upper_limit=use_upper_limit,
            lp150=lp150,
            att_factor=att_factor,
            filter_type=filter_type,
            fc_hz=fc_hz,
        )
        up, pre, att = dsp.MODFB_PRESETS[preset]
        self.options = {
            "q": q,
            "max_mfc_hz": max_mfc_hz,
            "use_upper_limit": up if use_upper_limit is None else use_upper_limit,
            "lp150": pre if lp150 is None else lp150,
            "att_factor": att if att_factor is None else att_factor,
            "filter_type": filter_type,
        }
        self.fc_from_chain = False
        self._design(fc_hz if fc_hz is not None else [sample_rate / 2])

    def _design(self, fc_hz: Any) -> None:
        try:
            self.design = dsp.modfilterbank_design(fc_hz, self.sample_rate, **self.options)
        except ValueError as exc:
            raise ParamError("max_mfc_hz", str(exc)) from None
        self.register_buffer("fc_hz", torch.from_numpy(self.design.fc_hz), persistent=False)
        self.register_buffer("mfc_hz", torch.from_numpy(self.design.mfc_hz), persistent=False)

    def connect(self, previous: list[Any]) -> None:
        """Take the auditory centre frequencies from a gammatone stage earlier in the chain."""
        axes = chain_axes(previous, getattr(previous[0], "sample_rate", None) if previous else None)
        if "fc_hz" not in axes.names:
            return
        if self.params["fc_hz"] is not None:
            raise ParamError(
                "fc_hz", "the centre frequencies come from the gammatone stage before; remove fc_hz"
            )
        self.fc_from_chain = True
        self._design(axes.coords["fc_hz"])

    def _check_channels(self, x: Tensor) -> None:
        n_fc = self.design.fc_hz.size
        if x.dim() < 2 or (n_fc > 1 and x.shape[-2] != n_fc):
            got = tuple(x.shape)
            raise UsageError(
                f"modulation_filterbank: key 'fc_hz' has {n_fc} centre frequencies but the "
                f"input {got} has {x.shape[-2] if x.dim() > 1 else 0} channels on axis -2"
            )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        self._check_channels(x)
        return dsp.modfilterbank_zeros_state(self.design, math.prod(x.shape[:-1]))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        state = self.init_state(x) if state is None else state.copy()
        return dsp.modfilterbank_filter(x, self.design, state), state

    def feature_axes(self, axes: FeatureAxes) -> FeatureAxes:
        over = "fc_hz" if "fc_hz" in axes.names else "channel"
        out = axes.insert(
            "mfc_hz",
            self.design.mfc_hz,
            ragged="mfc_hz",
            ragged_over=over,
            counts=self.design.counts,
        )
        if over == "channel":
            out.coords["fc_hz"] = self.design.fc_hz
        return out


class King2019Modulation(Stage):
    """AMT king2019_modfilterbank (`king2019_modulation`): 4th-order Butterworth band-passes,
    above `phase_cut_hz` the Hilbert envelope scaled to the band's RMS.

    hilbert_method 'fft' is AMT's whole-signal transform: the stage holds its input until the
    stream ends (memory grows with length) and equals AMT for any chunking. 'fir' streams with
    bounded memory: a linear-phase FIR Hilbert transformer (latency compensated: the output
    stays aligned and of equal length) and the RMS from a first pass over the stream.

    Shape:
        (..., C, T) -> (..., C, M, T).
    """

    stage_name = "king2019_modulation"
    float64_buffers = ("mfc_hz", "sos", "hilbert_taps")

    def __init__(
        self,
        sample_rate: float,
        mflow_hz: float = 2.0,
        mfhigh_hz: float = 150.0,
        q: float = 1.0,
        n_mod: int | None = None,
        lp150: bool = False,
        phase_insensitive: str = "hilbert",
        hilbert_method: str = "fft",
        hilbert_ms: float = 2000.0,
        phase_cut_hz: float = 10.0,
    ) -> None:
        super().__init__(
            sample_rate,
            mflow_hz=mflow_hz,
            mfhigh_hz=mfhigh_hz,
            q=q,
            n_mod=n_mod,
            lp150=lp150,
            phase_insensitive=phase_insensitive,
            hilbert_method=hilbert_method,
            hilbert_ms=hilbert_ms,
            phase_cut_hz=phase_cut_hz,
        )
        mfc = dsp.king2019_mfc(mflow_hz, mfhigh_hz, q, n_mod)
        self.sos_np = dsp.king2019_sos(mfc, sample_rate, q)
        self.pre = dsp.first_order_lowpass(150.0, sample_rate) if lp150 else np.zeros(3)
        self.high = np.flatnonzero(mfc > phase_cut_hz) if phase_insensitive == "hilbert" else []
        self.method = hilbert_method if len(self.high) else "none"
        taps = None
        if self.method == "fir":
            half = max(1, int(round(hilbert_ms / 1000 * sample_rate / 2)))
            taps = torch.from_numpy(dsp.hilbert_fir(2 * half + 1))
            self.latency = half
            section = np.array([[self.pre[0], self.pre[1], 0.0, 1.0, -self.pre[2], 0.0]])
            self.pre_sos = torch.from_numpy(section) if lp150 else None
        self.register_buffer("mfc_hz", torch.from_numpy(mfc), persistent=False)
        self.register_buffer("sos", torch.from_numpy(self.sos_np), persistent=False)
        self.register_buffer("hilbert_taps", taps, persistent=False)
        self.scale: Tensor | None = None

    @property
    def needs_analysis(self) -> bool:  # type: ignore[override]
        return self.method == "fir"

    def feature_axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.insert("mfc_hz", self.mfc_hz.cpu().numpy())  # a buffer: maybe on CUDA

    # ------------------------------------------------------------ fft / none
    def _bank(self, x: Tensor, state: np.ndarray | None = None) -> Tensor:
        if state is None:
            state = dsp.sos_bank_zeros_state(self.sos_np, math.prod(x.shape[:-1]))
        return dsp.sos_bank_filter(x, self.sos_np, self.pre, state)

    def whole(self, x: Tensor) -> Tensor:
        """AMT on the whole signal, a group of rows at a time (bounded intermediates)."""
        lead, n = x.shape[:-1], x.shape[-1]
        n_mod = self.sos_np.shape[0]
        flat = x.reshape(math.prod(lead), n)
        out = x.new_empty((flat.shape[0], n_mod, n))
        step = max(1, (1 << 25) // max(1, n_mod * n))
        for start in range(0, flat.shape[0], step):
            y = self._bank(flat[start : start + step].to(torch.float64))
            out[start : start + step] = y.to(x.dtype)
            for j in self.high if n else []:
                band = y[:, j]
                envelope = dsp.rms_match(dsp.hilbert_envelope(band), band)
                out[start : start + step, j] = envelope.to(x.dtype)
        return out.reshape(*lead, n_mod, n)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        rows = math.prod(x.shape[:-1])
        if self.method == "fft":
            return {"chunks": []}
        if self.method == "none":
            return dsp.sos_bank_zeros_state(self.sos_np, rows)
        x64 = x.to(torch.float64)
        zeros = x64.new_zeros((*x.shape[:-1], self.latency))
        return {
            "pre": None if self.pre_sos is None else sos_zeros_state(self.pre_sos, x64),
            "delay": zeros,
            "fir": x64.new_zeros((*x.shape[:-1], self.hilbert_taps.shape[0] - 1)),
            "bank": dsp.sos_bank_zeros_state(self.sos_np, rows),
            "quad": dsp.sos_bank_zeros_state(self.sos_np[self.high], rows),
            "drop": self.latency,
        }

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.method == "fft":
            return WholeSignalStage.step(self, x, state)  # type: ignore[arg-type]
        if state is None:
            state = self.init_state(x)
        if self.method == "none":
            state = state.copy()
            return self._bank(x, state), state
        if self.scale is None:
            raise RuntimeError("king2019_modulation (fir): run the analysis pass first")
        y, env, state = self._fir(x, state)
        scale = self.scale.reshape(*env.shape[:-1], 1).to(env.device)
        high = torch.as_tensor(self.high, dtype=torch.long, device=y.device)
        y = y.index_copy(-2, high, env * scale)
        return y.to(x.dtype), state

    def flush(self, state: State) -> Tensor | None:
        if self.method == "fft":
            return WholeSignalStage.flush(self, state)  # type: ignore[arg-type]
        if self.method == "none" or state is None:
            return None
        zeros = state["delay"].new_zeros((*state["delay"].shape[:-1], self.latency))
        return self.step(zeros, state)[0]

    # ------------------------------------------------------------ fir
    def _fir(self, x: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        """Aligned band outputs y (..., M, T) and envelopes of the high bands (unscaled)."""
        x64 = x.to(torch.float64)
        new: dict[str, Any] = {}
        pre = None
        if self.pre_sos is not None:
            x64, pre = sosfilt(self.pre_sos, x64, state["pre"])
        joined = torch.cat([state["delay"], x64], dim=-1)
        delayed, new["delay"] = joined[..., : x64.shape[-1]], joined[..., x64.shape[-1] :]
        quad_in, new["fir"] = dsp.fft_fir(self.hilbert_taps, x64, state["fir"])
        bank, quad = state["bank"].copy(), state["quad"].copy()
        zero_pre = np.zeros(3)
        y = dsp.sos_bank_filter(delayed, self.sos_np, zero_pre, bank)
        q = dsp.sos_bank_filter(quad_in, self.sos_np[self.high], zero_pre, quad)
        high = torch.as_tensor(self.high, dtype=torch.long, device=y.device)
        env = torch.sqrt(y.index_select(-2, high) ** 2 + q**2)
        drop = min(state["drop"], y.shape[-1])
        new.update(pre=pre, bank=bank, quad=quad, drop=state["drop"] - drop)
        return y[..., drop:], env[..., drop:], new

    def init_analysis(self, x: Tensor, total_frames: int | None = None) -> Any:
        return {"state": self.init_state(x), "num": 0.0, "den": 0.0}

    def analyze(self, x: Tensor, analysis: Any) -> Any:
        y, env, state = self._fir(x, analysis["state"])
        band = y.index_select(-2, torch.as_tensor(self.high, dtype=torch.long, device=y.device))
        return {
            "state": state,
            "num": analysis["num"] + (band**2).sum(-1),
            "den": analysis["den"] + (env**2).sum(-1),
        }

    def finish_analysis(self, analysis: Any) -> None:
        state = analysis["state"]
        zeros = state["delay"].new_zeros((*state["delay"].shape[:-1], self.latency))
        analysis = self.analyze(zeros, analysis)
        num = torch.as_tensor(analysis["num"], dtype=torch.float64)
        den = torch.as_tensor(analysis["den"], dtype=torch.float64)
        self.scale = torch.where(den > 0, torch.sqrt(num / torch.where(den > 0, den, 1.0)), 0.0)
