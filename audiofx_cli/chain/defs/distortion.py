"""Distortion stages: tanh soft clipping and bit crushing."""

from __future__ import annotations

from audiofx_cli.chain.params import Param, StageDef

DEFS = [
    StageDef(
        "distortion",
        "tanh soft clipper: y = tanh(drive x), with dry/wet mix and output gain",
        [
            Param(
                "drive_db",
                "float",
                "gain before the tanh curve",
                default=25.0,
                unit="dB",
                low=-60,
                high=80,
            ),
            Param(
                "mix", "float", "wet share (0: dry, 1: fully clipped)", default=1.0, low=0, high=1
            ),
            Param(
                "output_db",
                "float",
                "gain after the curve",
                default=0.0,
                unit="dB",
                low=-60,
                high=60,
            ),
        ],
        "audiofx_cli.stages.distortion:Distortion",
        "distortion",
        "- distortion: {drive_db: 12, mix: 0.8, output_db: -3}",
    ),
    StageDef(
        "bitcrush",
        "bit-depth reduction (uniform mid-tread quantiser) and optional sample-and-hold",
        [
            Param(
                "bits", "int", "bit depth: 2^bits levels over [-1, 1)", default=8, low=1, high=32
            ),
            Param(
                "downsample",
                "int",
                "hold each sample for this many samples (1: no rate reduction)",
                default=1,
                low=1,
                high=4096,
            ),
        ],
        "audiofx_cli.stages.distortion:Bitcrush",
        "distortion",
        "- bitcrush: {bits: 6, downsample: 3}",
    ),
]
