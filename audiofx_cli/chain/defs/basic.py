"""Basic level stages: gain and DC removal."""

from __future__ import annotations

from audiofx_cli.chain.params import Param, StageDef

DEFS = [
    StageDef(
        "gain",
        "constant gain",
        [Param("gain_db", "float", "gain (negative attenuates)", unit="dB", low=-200, high=200)],
        "audiofx_cli.stages.basic:Gain",
        "level",
        "- gain: {gain_db: -3}",
        learnable=("gain_db",),
    ),
    StageDef(
        "dc_remove",
        "removes DC offset with a low-cut Butterworth high-pass (state carries on)",
        [
            Param(
                "cutoff_hz",
                "float",
                "high-pass corner",
                default=5.0,
                unit="Hz",
                low=0,
                low_open=True,
                below_nyquist=True,
            ),
            Param("order", "int", "high-pass order", default=1, low=1, high=4),
        ],
        "audiofx_cli.stages.basic:DCRemove",
        "level",
        "- dc_remove",
        learnable=("cutoff_hz",),
    ),
]
