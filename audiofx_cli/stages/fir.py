"""FIR stages: firwin designs (`fir`) and given taps (`fir_taps`), optionally delay-compensated.

Learnable (see `audiofx_cli.stages.learnable`): the firwin cut-off(s) and given taps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import design, design_torch
from audiofx_cli.dsp.fir import fir_filter, fir_zeros_history
from audiofx_cli.io.chain_files import read_taps_file
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.learnable import Bounds, Learnable


class FIRFilter(Learnable, Stage):
    """Causal FIR filter with history across chunks; with `compensate_delay` the (taps-1)/2
    samples of linear-phase delay are removed and the tail flushed, so the output is aligned
    with the input and of equal length.

    Shape:
        (..., channels, time) -> same.
    """

    float64_buffers = ("taps",)

    def __init__(
        self, sample_rate: float, coefficients: np.ndarray, compensate: bool, **params: Any
    ) -> None:
        super().__init__(sample_rate, **params)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if compensate and coefficients.size % 2 == 0:
            raise ValueError("compensate_delay needs an odd number of taps")
        self.register_buffer("taps", torch.from_numpy(coefficients.copy()), persistent=False)
        self.latency = (coefficients.size - 1) // 2 if compensate else 0

    def coefficients(self) -> Tensor:
        """The taps: the designed buffer, or designed now from the learnt values."""
        return self.design(self.values()) if self.learning else self.taps

    def design(self, values: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"history": fir_zeros_history(self.taps, x), "drop": self.latency}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        y, history = fir_filter(self.coefficients(), x, state["history"])
        drop = min(state["drop"], y.shape[-1])
        return y[..., drop:], {"history": history, "drop": state["drop"] - drop}

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if state is None:
            state = self.init_state(x)
        if state["drop"] or x.shape != out.shape or self.learning:  # step and copy
            return self.step(x, state)
        _, history = fir_filter(self.taps, x, state["history"], out=out)
        return None, {"history": history, "drop": 0}

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart

        taps = self.coefficients().detach().cpu().numpy().copy()
        return [FIRPart(taps, self.latency)]

    def flush(self, state: State) -> Tensor | None:
        if not self.latency or state is None:
            return None
        history = state["history"]
        zeros = history.new_zeros((*history.shape[:-1], self.latency))
        return self.step(zeros, state)[0]


class FIRDesigned(FIRFilter):
    """Windowed-sinc FIR designed with scipy.signal.firwin (`fir`)."""

    stage_name = "fir"
    learnable_keys = ("cutoff_hz",)
    extra_defaults = {"pass": "lowpass"}  # 'pass' is a Python keyword: taken through **kwargs

    def __init__(
        self,
        sample_rate: float,
        cutoff_hz: float | list[float],
        taps: int = 101,
        window: str = "hamming",
        kaiser_beta: float = 8.6,
        compensate_delay: bool = True,
        **kwargs: Any,
    ) -> None:
        pass_type = kwargs.pop("pass", self.extra_defaults["pass"])
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        coefficients = design.fir_taps(pass_type, cutoff_hz, sample_rate, taps, window, kaiser_beta)
        super().__init__(
            sample_rate,
            coefficients,
            compensate_delay,
            **{"pass": pass_type},
            cutoff_hz=cutoff_hz,
            taps=taps,
            window=window,
            kaiser_beta=kaiser_beta,
            compensate_delay=compensate_delay,
        )

    def learn(self, bounds: Any) -> None:
        window = self.params["window"]
        spec = ("kaiser", self.params["kaiser_beta"]) if window == "kaiser" else window
        taps = self.taps.shape[-1]
        self.window = torch.from_numpy(design.window(spec, taps))
        super().learn(bounds)

    def design(self, values: dict[str, Any]) -> Tensor:
        cutoff = values["cutoff_hz"]
        if isinstance(cutoff, Tensor) and cutoff.dim() == 1:
            cutoff = list(cutoff.unbind())
        return design_torch.firwin(
            self.taps.shape[-1], cutoff, self.sample_rate, values["pass"], self.window
        )


class FIRTaps(FIRFilter):
    """FIR with given taps, inline or from a .npy / text file (`fir_taps`)."""

    stage_name = "fir_taps"
    learnable_keys = ("taps",)

    def __init__(
        self,
        sample_rate: float,
        taps: list[float] | None = None,
        file: str | None = None,
        compensate_delay: bool = False,
    ) -> None:
        if (taps is None) == (file is None):
            raise ValueError("give exactly one of taps or file")
        coefficients = (
            np.asarray(taps, dtype=np.float64)
            if taps is not None
            else read_taps_file(
                file  # type: ignore[arg-type]
            )
        )
        super().__init__(
            sample_rate,
            coefficients,
            compensate_delay,
            taps=taps,
            file=file,
            compensate_delay=compensate_delay,
        )

    def coordinate_of(self, key: str, value: Any, bound: Bounds | None) -> Tensor:
        return self.taps.detach().clone()  # inline or read from `file`: the taps as they are

    def design(self, values: dict[str, Any]) -> Tensor:
        return values["taps"]

    def learned_values(self) -> dict[str, Any]:
        return {**super().learned_values(), "file": None}  # written inline
