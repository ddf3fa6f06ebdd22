"""FIR stages: firwin designs (`fir`) and given taps (`fir_taps`), optionally delay-compensated."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiofx_cli.dsp import design
from audiofx_cli.dsp.fir import fir_filter, fir_zeros_history
from audiofx_cli.io.chain_files import read_taps_file
from audiofx_cli.stages.base import Stage, State


class FIRFilter(Stage):
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

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"history": fir_zeros_history(self.taps, x), "drop": self.latency}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        y, history = fir_filter(self.taps, x, state["history"])
        drop = min(state["drop"], y.shape[-1])
        return y[..., drop:], {"history": history, "drop": state["drop"] - drop}

    def step_into(self, x: Tensor, state: State, out: Tensor) -> tuple[Tensor | None, State]:
        if state is None:
            state = self.init_state(x)
        if state["drop"] or x.shape != out.shape:  # latency still held back: step and copy
            return self.step(x, state)
        _, history = fir_filter(self.taps, x, state["history"], out=out)
        return None, {"history": history, "drop": 0}

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart

        return [FIRPart(self.taps.detach().cpu().numpy().copy(), self.latency)]

    def flush(self, state: State) -> Tensor | None:
        if not self.latency or state is None:
            return None
        history = state["history"]
        zeros = history.new_zeros((*history.shape[:-1], self.latency))
        return self.step(zeros, state)[0]


class FIRDesigned(FIRFilter):
    """Windowed-sinc FIR designed with scipy.signal.firwin (`fir`)."""

    stage_name = "fir"
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


class FIRTaps(FIRFilter):
    """FIR with given taps, inline or from a .npy / text file (`fir_taps`)."""

    stage_name = "fir_taps"

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
