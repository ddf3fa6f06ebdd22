"""Auditory front-end stages (AMT): `gammatone`, `ihc_envelope`, `adaptation`.

Shapes: `gammatone` maps (..., channels, time) to (..., channels, bands, time); the other two
keep the shape. Coefficients are designed in float64 (`dsp.auditory`) and registered as float64
buffers; the recursions run in compiled kernels with float64 state, on the CPU (tensors on
another device are moved for the filtering and the result moved back).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import signal
from torch import Tensor

from audiofx_cli.axes import FeatureAxes
from audiofx_cli.dsp import auditory as dsp
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt
from audiofx_cli.dsp.modfilter import hilbert_envelope
from audiofx_cli.errors import ParamError
from audiofx_cli.stages.base import Stage, State


def _rows(x: Tensor) -> int:
    return math.prod(x.shape[:-1])


class WholeSignalStage(Stage):
    """A stage whose output at any time depends on the whole signal (AMT's FFT Hilbert
    transforms). Streaming holds the input until the end of the stream and computes the output
    in `flush`, so chunked output equals whole-signal output exactly; memory grows with the
    stream's length (the held input)."""

    def whole(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"chunks": []}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        chunks = [] if state is None else state["chunks"]
        return self.whole(x[..., :0]), {"chunks": [*chunks, x] if x.shape[-1] else chunks}

    def flush(self, state: State) -> Tensor | None:
        if state is None or not state["chunks"]:
            return None
        return self.whole(torch.cat(state["chunks"], dim=-1))


class Gammatone(Stage):
    """AMT auditoryfilterbank: ERB-spaced gammatone filters (`gammatone`).

    Shape:
        (..., channels, time) -> (..., channels, bands, time); band centre frequencies in the
        `fc_hz` buffer and in `feature_axes`.

    Example:
        >>> stage = Gammatone(16000, flow_hz=80, fhigh_hz=8000)
        >>> stage(torch.randn(2, 1600)).shape
        torch.Size([2, 31, 1600])
    """

    stage_name = "gammatone"
    float64_buffers = ("fc_hz", "pole_re", "pole_im", "stage_gain")

    def __init__(
        self,
        sample_rate: float,
        flow_hz: float = 80.0,
        fhigh_hz: float = 8000.0,
        base_hz: float | None = None,
        density: float = 1.0,
        order: int = 4,
        output: str = "real",
    ) -> None:
        super().__init__(
            sample_rate,
            flow_hz=flow_hz,
            fhigh_hz=fhigh_hz,
            base_hz=base_hz,
            density=density,
            order=order,
            output=output,
        )
        fc = dsp.erb_space(flow_hz, fhigh_hz, 1.0 / density, base_hz)
        if fc.max() >= sample_rate / 2:
            raise ParamError("fhigh_hz", f"centre frequency {fc.max():.2f} Hz is not below Nyquist")
        design = dsp.gammatone_design(fc, sample_rate, order)
        self.design = design
        self.envelope = output == "envelope"
        for name, value in (
            ("fc_hz", fc),
            ("pole_re", design.pole.real),
            ("pole_im", design.pole.imag),
            ("stage_gain", design.stage_gain),
        ):
            self.register_buffer(name, torch.from_numpy(np.array(value)), persistent=False)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return dsp.gammatone_zeros_state(self.design, _rows(x))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        state = self.init_state(x) if state is None else state.copy()
        return dsp.gammatone_filter(x, self.design, state, self.envelope), state

    def feature_axes(self, axes: FeatureAxes) -> FeatureAxes:
        return axes.insert("fc_hz", self.design.fc_hz)


class IHCEnvelope(Stage):
    """AMT ihcenvelope (`ihc_envelope`): half-wave rectification then Butterworth low-pass
    ('dau1996': one 1st-order 1 kHz; 'breebaart2001': five 1st-order 2 kHz), or 'hilbert'.

    Shape:
        (..., time) -> same.
    """

    stage_name = "ihc_envelope"
    float64_buffers = ("sos",)

    def __init__(self, sample_rate: float, method: str = "dau1996") -> None:
        super().__init__(sample_rate, method=method)
        self.method = method
        cutoff, passes = {"dau1996": (1000.0, 1), "breebaart2001": (2000.0, 5)}.get(
            method, (0.0, 0)
        )
        sos = None
        if passes:
            if cutoff >= sample_rate / 2:
                raise ParamError("method", f"{method} needs a sample rate above {2 * cutoff:g} Hz")
            section = signal.butter(1, cutoff, fs=sample_rate, output="sos")
            sos = torch.from_numpy(np.repeat(section, passes, axis=0))
        self.register_buffer("sos", sos, persistent=False)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        if self.method == "hilbert":
            return {"chunks": []}
        return sos_zeros_state(self.sos, x)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.method == "hilbert":
            return WholeSignalStage.step(self, x, state)  # type: ignore[arg-type]
        if state is None:
            state = self.init_state(x)
        return sosfilt(self.sos, x.clamp(min=0), state)

    def flush(self, state: State) -> Tensor | None:
        if self.method == "hilbert":
            return WholeSignalStage.flush(self, state)  # type: ignore[arg-type]
        return None

    def whole(self, x: Tensor) -> Tensor:
        return hilbert_envelope(x)


class Adaptation(Stage):
    """AMT adaptloop (`adaptation`): nonlinear adaptation loops, output in model units.

    Shape:
        (..., time) -> same.
    """

    stage_name = "adaptation"
    float64_buffers = ("tau",)

    def __init__(
        self,
        sample_rate: float,
        preset: str = "dau1997",
        limit: float | None = None,
        tau_s: list[float] | None = None,
        min_spl_db: float = 0.0,
        dboffset_db: float = 100.0,
    ) -> None:
        super().__init__(
            sample_rate,
            preset=preset,
            limit=limit,
            tau_s=tau_s,
            min_spl_db=min_spl_db,
            dboffset_db=dboffset_db,
        )
        preset_tau, preset_limit = dsp.ADAPT_PRESETS[preset]
        tau = tuple(tau_s) if tau_s is not None else preset_tau
        self.design = dsp.adapt_design(
            sample_rate,
            tau,
            preset_limit if limit is None else limit,
            min_spl_db,
            dboffset_db,
        )
        self.register_buffer("tau", torch.tensor(tau, dtype=torch.float64), persistent=False)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return dsp.adapt_zeros_state(self.design, _rows(x))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        state = self.init_state(x) if state is None else state.copy()
        return dsp.adapt_filter(x, self.design, state), state
