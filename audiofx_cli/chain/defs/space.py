"""Space stages: algorithmic reverb (`reverb`, Freeverb) and convolution (`convolve`).

Tails: by default the output has the input's length; `tail_s` renders the reverberation that
many seconds past the end of the input (from `flush`). Torch-free: only the IR file's header is
looked at here (soundfile), the samples are read by the stage.
"""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.defs.delays import check_tail, tail_param
from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.io.chain_files import check_ir_resampling, ir_info

_IMPL = "audiofx_cli.stages.space"


def _check_convolve(params: dict[str, Any], sample_rate: float | None) -> None:
    """The IR file's header: a regular file within the limits of `io.chain_files`, and (rate
    known) a resampling whose filter and output fit them."""
    if sample_rate is None:
        ir_info(params["ir"])
    else:
        check_ir_resampling(params["ir"], sample_rate)
    check_tail(params, sample_rate)


def _level(name: str, default: float, doc: str) -> Param:
    return Param(name, "float", doc, default=default, low=0, high=1)


DEFS = [
    StageDef(
        "reverb",
        "algorithmic reverb (Freeverb: 8 combs + 4 all-passes per channel, stereo spread)",
        [
            _level("room_size", 0.5, "decay time: comb feedback 0.7 + 0.28 room_size"),
            _level("damping", 0.5, "high-frequency damping in the combs"),
            _level("wet", 0.33, "reverberated level (Freeverb scale: x 3)"),
            _level("dry", 0.4, "direct level (Freeverb scale: x 2)"),
            _level("width", 1.0, "stereo width of the wet signal (0 mono, 1 full)"),
            tail_param(),
        ],
        f"{_IMPL}:Reverb",
        "space",
        "- reverb: {room_size: 0.7, damping: 0.3, wet: 0.4, dry: 0.5, tail_s: 0.01}",
        check_tail,
    ),
    StageDef(
        "convolve",
        "convolution with an impulse response file (FFT overlap-save, streaming)",
        [
            Param("ir", "path", "impulse response audio file (relative to the chain file)"),
            Param("wet", "float", "gain of the convolved signal", default=1.0, low=0, high=10),
            Param("dry", "float", "gain of the direct signal", default=0.0, low=0, high=10),
            Param(
                "normalize",
                "choice",
                "scale the IR: peak (max |h| = 1), energy (sum h^2 = 1), none",
                default="none",
                choices=("none", "peak", "energy"),
            ),
            tail_param(),
        ],
        f"{_IMPL}:Convolve",
        "space",
        "- convolve: {ir: room.wav, wet: 0.5, dry: 0.5}",
        _check_convolve,
    ),
]
