"""Channel and length stages: mono, channels, channel_count, pan, invert, trim, pad
(torch-free definitions).

Channel indices are 0-based (SoX `remix` counts from 1). Stages that change the channel count
check it against the input when the stream starts (the count is not known at parse time).
"""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef, check_generated_frames
from audiofx_cli.errors import ParamError

_IMPL = "audiofx_cli.stages.channels"
MAX_CHANNELS = 1024


def _check_map(params: dict[str, Any], sample_rate: float | None) -> None:
    for value in params["map"]:
        if not float(value).is_integer():
            raise ParamError("map", f"channel indices must be integers, got {value:g}")


def _check_trim(params: dict[str, Any], sample_rate: float | None) -> None:
    end = params["end_s"]
    if end is not None and not end > params["start_s"]:
        raise ParamError("end_s", f"must be after start_s ({params['start_s']:g} s), got {end:g} s")


def _check_pad(params: dict[str, Any], sample_rate: float | None) -> None:
    """Each silence is made in one block: bounded by `check_generated_frames`."""
    for key in ("start_s", "end_s"):
        check_generated_frames(key, params[key], sample_rate, "silence")


def _seconds(name: str, doc: str, default: Any = 0.0) -> Param:
    return Param(name, "float", doc, default=default, unit="s", low=0, high=86400.0 * 7)


DEFS = [
    StageDef(
        "mono",
        "downmix to one channel: mean of the channels (SoX 'channels 1'), or their sum",
        [
            Param(
                "mode",
                "choice",
                "mean keeps the level of identical channels; sum adds them",
                default="mean",
                choices=("mean", "sum"),
            )
        ],
        f"{_IMPL}:Mono",
        "channels",
        "- mono",
    ),
    StageDef(
        "channels",
        "select, reorder or duplicate channels by 0-based index (map: [1, 0] swaps a pair)",
        [
            Param(
                "map",
                "floats",
                "input channel index for each output channel (0-based)",
                low=0,
                high=MAX_CHANNELS - 1,
            )
        ],
        f"{_IMPL}:ChannelMap",
        "channels",
        "- channels: {map: [1, 0]}",
        _check_map,
    ),
    StageDef(
        "channel_count",
        "make the channel count N (SoX's -c N, audiofx's -C N): mono is copied to every "
        "channel, N channels pass unchanged, one output channel is the mean",
        [
            Param(
                "count",
                "int",
                "channels of the output",
                low=1,
                high=MAX_CHANNELS,
            )
        ],
        f"{_IMPL}:ChannelCount",
        "channels",
        "- channel_count: {count: 2}",
    ),
    StageDef(
        "pan",
        "constant-power pan (sin/cos law): mono -> stereo; stereo is balanced (unity at 0)",
        [
            Param(
                "position",
                "float",
                "-1 full left, 0 centre, 1 full right",
                default=0.0,
                low=-1,
                high=1,
            )
        ],
        f"{_IMPL}:Pan",
        "channels",
        "- pan: {position: 0.5}",
    ),
    StageDef(
        "invert",
        "polarity inversion (multiply by -1; SoX 'vol -1')",
        [],
        f"{_IMPL}:Invert",
        "channels",
        "- invert",
    ),
    StageDef(
        "trim",
        "keep [start_s, end_s) of the stream (end_s null: to the end)",
        [
            _seconds("start_s", "first kept instant (rounded to a sample)"),
            _seconds("end_s", "end of the kept part (excluded); null keeps to the end", None),
        ],
        f"{_IMPL}:Trim",
        "channels",
        "- trim: {start_s: 0.01, end_s: 0.05}",
        _check_trim,
    ),
    StageDef(
        "pad",
        "add silence before the start and after the end (the end silence is emitted at flush)",
        [
            _seconds("start_s", "silence before the audio (rounded to a sample)"),
            _seconds("end_s", "silence after the audio (rounded to a sample)"),
        ],
        f"{_IMPL}:Pad",
        "channels",
        "- pad: {start_s: 0.01, end_s: 0.02}",
        _check_pad,
    ),
]
