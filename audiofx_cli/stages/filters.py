"""IIR filter stages: scipy designs and RBJ biquads, all run as float64 second-order sections.

Learnable (see `audiofx_cli.stages.learnable`): the RBJ biquads' freq_hz / gain_db / q,
Butterworth and Linkwitz-Riley cut-offs and band edges, and raw `sections` / `b` / `a`; those
stages then design their sections in torch (`dsp.design_torch`) on every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import design, design_torch
from audiofx_cli.dsp.fir import fir_filter, fir_zeros_history
from audiofx_cli.dsp.iir import sos_zeros_state, sosfilt
from audiofx_cli.errors import ParamError
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.learnable import Bounds, Learnable

BUTTERWORTH_TYPES = ("butterworth", "linkwitz_riley")  # the IIR types whose edges can learn


class SOSFilter(Learnable, Stage):
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

    def coefficients(self) -> Tensor:
        """The sections: the designed buffer, or designed now from the learnt values."""
        return self.design(self.values()) if self.learning else self.sos

    def design(self, values: dict[str, Any]) -> Tensor:
        """(n_sections, 6) float64 sections from parameter values (tensors where learnt)."""
        raise NotImplementedError

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return sos_zeros_state(self.sos, x)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        return sosfilt(self.coefficients(), x, state)

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if x.shape != out.shape or self.learning:
            return self.step(x, state)
        _, state = sosfilt(self.sos, x, self.init_state(x) if state is None else state, out=out)
        return None, state

    def forward(self, x: Tensor) -> Tensor:
        return sosfilt(self.coefficients(), x)[0]

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import SOSPart

        return [SOSPart(self.coefficients().detach().cpu().numpy().copy())]


def butterworth(btype: str, edges: Any, sample_rate: float, order: int, type: str) -> Tensor:
    """Butterworth (or Linkwitz-Riley: a Butterworth of half the order, twice) in torch."""
    if type == "linkwitz_riley":
        half = design_torch.butter_sos(btype, edges, sample_rate, order // 2)
        return torch.cat([half, half])
    return design_torch.butter_sos(btype, edges, sample_rate, order)


class _Butterworth(SOSFilter):
    """Scipy-designed IIR filters; the Butterworth and Linkwitz-Riley ones can learn."""

    btype = ""

    def learn(self, bounds: Any) -> None:
        if self.params["type"] not in BUTTERWORTH_TYPES:
            raise ParamError(
                "type",
                f"learning needs type {' or '.join(BUTTERWORTH_TYPES)}, got {self.params['type']}",
            )
        super().learn(bounds)


class LowPass(_Butterworth):
    """Low-pass IIR filter (`lowpass`)."""

    stage_name = "lowpass"
    btype = "lowpass"
    learnable_keys = ("cutoff_hz",)

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

    def design(self, values: dict[str, Any]) -> Tensor:
        return butterworth(
            self.btype, values["cutoff_hz"], self.sample_rate, values["order"], values["type"]
        )


class HighPass(LowPass):
    """High-pass IIR filter (`highpass`)."""

    stage_name = "highpass"
    btype = "highpass"


class BandPass(_Butterworth):
    """Band-pass IIR filter (`bandpass`): `order` is scipy's N, 2N poles."""

    stage_name = "bandpass"
    btype = "bandpass"
    learnable_keys = ("low_hz", "high_hz")

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

    def design(self, values: dict[str, Any]) -> Tensor:
        edges = [values["low_hz"], values["high_hz"]]
        return butterworth(self.btype, edges, self.sample_rate, values["order"], values["type"])


class BandStop(BandPass):
    """Band-stop IIR filter (`bandstop`)."""

    stage_name = "bandstop"
    btype = "bandstop"


class _RBJ(SOSFilter):
    """RBJ cookbook biquads: freq_hz, q (and gain_db where the kind has one) can learn."""

    kind = ""
    learnable_keys = ("freq_hz", "q")

    def design(self, values: dict[str, Any]) -> Tensor:
        gain_db = values.get("gain_db", 0.0)
        q = values["q"]
        return design_torch.rbj_biquad(self.kind, values["freq_hz"], self.sample_rate, q, gain_db)


class Peaking(_RBJ):
    """RBJ peaking EQ (`peaking`)."""

    stage_name = "peaking"
    kind = "peaking"
    learnable_keys = ("freq_hz", "gain_db", "q")

    def __init__(self, sample_rate: float, freq_hz: float, gain_db: float, q: float = 1.0) -> None:
        sos = design.rbj_biquad("peaking", freq_hz, sample_rate, q=q, gain_db=gain_db)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, gain_db=gain_db, q=q)


class LowShelf(_RBJ):
    """RBJ low shelf (`lowshelf`)."""

    stage_name = "lowshelf"
    kind = "lowshelf"
    learnable_keys = ("freq_hz", "gain_db", "q")

    def __init__(
        self, sample_rate: float, freq_hz: float, gain_db: float, q: float = 0.7071
    ) -> None:
        sos = design.rbj_biquad(self.kind, freq_hz, sample_rate, q=q, gain_db=gain_db)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, gain_db=gain_db, q=q)


class HighShelf(LowShelf):
    """RBJ high shelf (`highshelf`)."""

    stage_name = "highshelf"
    kind = "highshelf"


class Notch(_RBJ):
    """RBJ notch (`notch`)."""

    stage_name = "notch"
    kind = "notch"

    def __init__(self, sample_rate: float, freq_hz: float, q: float = 10.0) -> None:
        sos = design.rbj_biquad(self.kind, freq_hz, sample_rate, q=q)
        super().__init__(sample_rate, sos, freq_hz=freq_hz, q=q)


class _Biquad(_RBJ):
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
    learnable_keys = ("sections",)

    def __init__(self, sample_rate: float, sections: list[list[float]]) -> None:
        super().__init__(sample_rate, design.normalize_sos(sections), sections=sections)

    def coordinate_of(self, key: str, value: Any, bound: Bounds | None) -> Tensor:
        """Learnt sections: (n, 5) rows of b0, b1, b2 (as they are, a0 = 1) and the two
        stable-denominator coordinates of `dsp.design_torch.stable_sections`."""
        sos = self.sos.detach().cpu().numpy()
        return torch.from_numpy(np.concatenate([sos[:, :3], design_torch.section_coords(sos)], 1))

    def value_of(self, key: str, coordinate: Tensor, bound: Bounds | None) -> Tensor:
        return design_torch.stable_sections(coordinate[:, :3], coordinate[:, 3:])

    def design(self, values: dict[str, Any]) -> Tensor:
        return values["sections"]


class BAStage(Learnable, Stage):
    """User-given (b, a) (`ba`): converted to sections; with a single `a` it is an FIR.

    Learning `b` and/or `a` runs it as the FIR b / a0 followed by all-pole sections of a / a0
    (the same filter): `b` is learnt as it is, `a` through the stable coordinates of its
    second-order factors (`dsp.design_torch.stable_sections`), so it stays stable; the learnt
    a is their product (an odd order gains a last coefficient once its first-order factor
    learns a second pole).
    """

    stage_name = "ba"
    float64_buffers = ("sos", "taps", "poles")
    learnable_keys = ("b", "a")

    def __init__(self, sample_rate: float, b: list[float], a: list[float]) -> None:
        super().__init__(sample_rate, b=b, a=a)
        fir = len(a) == 1
        taps = torch.tensor(b, dtype=torch.float64) / a[0] if fir else None
        sos = None if fir else torch.from_numpy(design.ba_to_sos(b, a))
        self.register_buffer("taps", taps, persistent=False)
        self.register_buffer("sos", sos, persistent=False)
        self.register_buffer("poles", None, persistent=False)

    def learn(self, bounds: Any) -> None:
        a = self.params["a"]
        if "a" in bounds and len(a) == 1:
            raise ParamError("a", "this ba filter is an FIR (a has one coefficient): learn b")
        if len(a) > 1:  # the all-pole factors of a / a0 (numerators [1, 0, 0])
            poles = design.ba_to_sos([1.0], a)
            poles[:, :3] = [1.0, 0.0, 0.0]
            self.register_buffer("poles", torch.from_numpy(poles), persistent=False)
        super().learn(bounds)

    def coordinate_of(self, key: str, value: Any, bound: Bounds | None) -> Tensor:
        if key == "b":
            return torch.tensor(value, dtype=torch.float64) / self.params["a"][0]
        return torch.from_numpy(design_torch.section_coords(self.poles.cpu().numpy()))

    def value_of(self, key: str, coordinate: Tensor, bound: Bounds | None) -> Tensor:
        if key == "b":
            return coordinate
        a = design_torch.poly_product(self._poles()[:, 3:])
        keep = len(self.params["a"])  # an odd order's last factor adds an exact 0 until learnt
        return a[:keep] if bool(torch.all(a[keep:] == 0)) else a

    def _poles(self) -> Tensor:
        if "a" not in self.learned:
            return self.poles
        coords = self.a
        ones = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).expand(coords.shape[0], 3)
        return design_torch.stable_sections(ones, coords)

    def _numerator(self) -> Tensor:
        if "b" in self.learned:
            return self.b
        return torch.tensor(self.params["b"], dtype=torch.float64) / self.params["a"][0]

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        if not self.learning:
            return None
        zi = None if self.poles is None else sos_zeros_state(self.poles, x)
        return {"history": fir_zeros_history(self._numerator(), x), "zi": zi}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.learning:
            return self._step_learning(x, self.init_state(x) if state is None else state)
        if self.sos is not None:
            return sosfilt(self.sos, x, sos_zeros_state(self.sos, x) if state is None else state)
        return fir_filter(self.taps, x, state)

    def _step_learning(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor, State]:
        poles = self._poles()
        y, history = fir_filter(self._numerator(), x, state["history"])
        zi = state["zi"]
        if poles is not None:
            y, zi = sosfilt(poles, y, zi)
        return y, {"history": history, "zi": zi}

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart, SOSPart

        if self.learning:
            with torch.no_grad():
                parts: list[Any] = [FIRPart(self._numerator().cpu().numpy().copy(), 0)]
                if self.poles is not None:
                    parts.append(SOSPart(self._poles().cpu().numpy().copy()))
                return parts
        if self.sos is not None:
            return [SOSPart(self.sos.detach().cpu().numpy().copy())]
        return [FIRPart(self.taps.detach().cpu().numpy().copy(), 0)]
