"""Level stages: gain and DC removal."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from audiofx_cli.dsp import design
from audiofx_cli.stages.base import Stage, State
from audiofx_cli.stages.filters import SOSFilter


class Gain(Stage):
    """Constant gain in dB (`gain`).

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "gain"

    def __init__(self, sample_rate: float, gain_db: float) -> None:
        super().__init__(sample_rate, gain_db=gain_db)
        self.linear_gain = 10.0 ** (gain_db / 20.0)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return x * self.linear_gain, None

    def linear_operator(self) -> list[Any] | None:
        from audiofx_cli.dsp.lti import FIRPart

        return [FIRPart(np.array([self.linear_gain]), 0)]


class DCRemove(SOSFilter):
    """DC removal (`dc_remove`): Butterworth high-pass at a few Hz, state carried on."""

    stage_name = "dc_remove"

    def __init__(self, sample_rate: float, cutoff_hz: float = 5.0, order: int = 1) -> None:
        sos = design.iir_sos("highpass", cutoff_hz, sample_rate, order)
        super().__init__(sample_rate, sos, cutoff_hz=cutoff_hz, order=order)
