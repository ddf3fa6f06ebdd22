"""Level stages: gain and DC removal (both can learn: gain_db, cutoff_hz)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from audiofx_cli.dsp import design
from audiofx_cli.dsp.design_torch import db_to_gain
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.filters import SOSFilter, butterworth
from audiofx_cli.stages.learnable import Learnable


class Gain(Learnable, Stage):
    """Constant gain in dB (`gain`).

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "gain"
    learnable_keys = ("gain_db",)

    def __init__(self, sample_rate: float, gain_db: float) -> None:
        super().__init__(sample_rate, gain_db=gain_db)
        self.linear_gain = 10.0 ** (gain_db / 20.0)

    def gain(self) -> Any:
        """The linear gain: a float, or a float64 tensor when gain_db is learnt."""
        return db_to_gain(self.value("gain_db")) if self.learning else self.linear_gain

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        gain = self.gain()
        if isinstance(gain, Tensor):
            gain = gain.to(x.dtype)  # a 0-dim CPU tensor: fine with x on any device
        return x * gain, None

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart

        gain = self.gain()
        return [FIRPart(np.array([float(gain.detach() if isinstance(gain, Tensor) else gain)]), 0)]


class DCRemove(SOSFilter):
    """DC removal (`dc_remove`): Butterworth high-pass at a few Hz, state carried on."""

    stage_name = "dc_remove"
    learnable_keys = ("cutoff_hz",)

    def __init__(self, sample_rate: float, cutoff_hz: float = 5.0, order: int = 1) -> None:
        sos = design.iir_sos("highpass", cutoff_hz, sample_rate, order)
        super().__init__(sample_rate, sos, cutoff_hz=cutoff_hz, order=order)

    def design(self, values: dict[str, Any]) -> Tensor:
        return butterworth(
            "highpass", values["cutoff_hz"], self.sample_rate, values["order"], "butterworth"
        )
