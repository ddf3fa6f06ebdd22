"""IIR filter stages: scipy designs and RBJ biquads, all run as float64 second-order sections."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import design
from audiofx_cli.dsp.fir import fir_filter
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt
from audiofx_cli.stages.base import Stage, State


class SOSFilter(Stage):
    """A cascade of second-order sections with state carried across chunks.

    Args:
        sample_rate: in Hz.
        sos: (n_sections, 6) float64 sections, a0 == 1.

    Shape:
        (..., channels, time) -> same.
    """

    float64_buffers = ("sos",)

    def __init__(self, sample_rate: float, sos: np.ndarray | Tensor, **params: Any) -> None:
        super().__init__(sample_rate, **params)
        self.register_buffer(
            "sos", torch.as_tensor(np.asarray(sos), dtype=torch.float64), persistent=False
        )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return sos_zeros_state(self.sos, x)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        return sosfilt(self.sos, x, state)

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if x.shape != out.shape:
            return self.step(x, state)
        _, state = sosfilt(self.sos, x, self.init_state(x) if state is None else state, out=out)
        return None, state

    def forward(self, x: Tensor) -> Tensor:
        return sosfilt(self.sos, x)[0]

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import SOSPart

        return [SOSPart(self.sos.detach().cpu().numpy().copy())]


class LowPass(SOSFilter):
    """Low-pass IIR filter (`lowpass`)."""

    stage_name = "lowpass"
    btype = "lowpass"

    def __init__(
        self,
        sample_rate: float,
        cutoff_hz: float,
        order: int = 2,
        type: str = "butterworth",
        ripple_db: float = 1.0,
        attenuation_db: float = 40.0,
    ) -> None:
        sos = design.iir_sos(
            self.btype, cutoff_hz, sample_rate, order, type, ripple_db, attenuation_db
        )
        super().__init__(
            sample_rate,
            sos,
            cutoff_hz=cutoff_hz,
            order=order,
            type=type,
            ripple_db=ripple_db,
            attenuation_db=attenuation_db,
        )


class HighPass(LowPass):
    """High-pass IIR filter (`highpass`)."""

    stage_name = "highpass"
    btype = "highpass"


class BandPass(SOSFilter):
    """Band-pass IIR filter (`bandpass`): `order` is scipy's N, 2N poles."""

    stage_name = "bandpass"
    btype = "bandpass"

    def __init__(
        self,
        sample_rate: float,
        low_hz: float,
        high_hz: float,
        order: int = 2,
        type: str = "butterworth",
        ripple_db: float = 1.0,
        attenuation_db: float = 40.0,
    ) -> None:
        sos = design.iir_sos(
            self.btype, (low_hz, high_hz), sample_rate, order, type, ripple_db, attenuation_db
        )
        super().__init__(
            sample_rate,
            sos,
            low_hz=low_hz,
            high_hz=high_hz,
            order=order,
            type=type,
            ripple_db=ripple_db,
            attenuation_db=attenuation_db,
        )


class BandStop(BandPass):
    """Band-stop IIR filter (`bandstop`)."""

    stage_name = "bandstop"
    btype = "bandstop"


class Peaking(SOSFilter):
    """RBJ peaking EQ (`peaking`)."""

    stage_name = "peaking"

    def __init__(self, sample_rate: float, freq_hz: float, gain_db: float, q: float = 1.0) -> None:
        sos = design.rbj_biquad("peaking", freq_hz, sample_rate, q=q, gain_db=gain_db)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, gain_db=gain_db, q=q)


class LowShelf(SOSFilter):
    """RBJ low shelf (`lowshelf`)."""

    stage_name = "lowshelf"
    kind = "lowshelf"

    def __init__(
        self, sample_rate: float, freq_hz: float, gain_db: float, q: float = 0.7071
    ) -> None:
        sos = design.rbj_biquad(self.kind, freq_hz, sample_rate, q=q, gain_db=gain_db)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, gain_db=gain_db, q=q)


class HighShelf(LowShelf):
    """RBJ high shelf (`highshelf`)."""

    stage_name = "highshelf"
    kind = "highshelf"


class Notch(SOSFilter):
    """RBJ notch (`notch`)."""

    stage_name = "notch"
    kind = "notch"

    def __init__(self, sample_rate: float, freq_hz: float, q: float = 10.0) -> None:
        sos = design.rbj_biquad(self.kind, freq_hz, sample_rate, q=q)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, q=q)


class _Biquad(SOSFilter):
    kind = ""

    def __init__(self, sample_rate: float, freq_hz: float, q: float = 0.7071) -> None:
        sos = design.rbj_biquad(self.kind, freq_hz, sample_rate, q=q)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, q=q)


class AllPass(_Biquad):
    """RBJ all-pass (`allpass`)."""

    stage_name = "allpass"
    kind = "allpass"


class BiquadLowPass(_Biquad):
    """RBJ two-pole low-pass (`biquad_lowpass`)."""

    stage_name = "biquad_lowpass"
    kind = "lowpass"


class BiquadHighPass(_Biquad):
    """RBJ two-pole high-pass (`biquad_highpass`)."""

    stage_name = "biquad_highpass"
    kind = "highpass"


class SOSStage(SOSFilter):
    """User-given second-order sections (`sos`), each normalised to a0 = 1."""

    stage_name = "sos"

    def __init__(self, sample_rate: float, sections: list[list[float]]) -> None:
        super().__init__(sample_rate, design.normalize_sos(sections), sections=sections)


class BAStage(Stage):
    """User-given (b, a) (`ba`): converted to sections; with a single `a` it is an FIR."""

    stage_name = "ba"
    float64_buffers = ("sos", "taps")

    def __init__(self, sample_rate: float, b: list[float], a: list[float]) -> None:
        super().__init__(sample_rate, b=b, a=a)
        fir = len(a) == 1
        taps = torch.tensor(b, dtype=torch.float64) / a[0] if fir else None
        sos = None if fir else torch.from_numpy(design.ba_to_sos(b, a))
        self.register_buffer("taps", taps, persistent=False)
        self.register_buffer("sos", sos, persistent=False)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.sos is not None:
            return sosfilt(self.sos, x, sos_zeros_state(self.sos, x) if state is None else state)
        return fir_filter(self.taps, x, state)

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart, SOSPart

        if self.sos is not None:
            return [SOSPart(self.sos.detach().cpu().numpy().copy())]
        return [FIRPart(self.taps.detach().cpu().numpy().copy(), 0)]
