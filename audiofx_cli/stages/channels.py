"""Channel and length stages: mono, channels, channel_count, pan, invert, trim, pad.

Signals are (..., channels, time); these stages change the channel axis (mono, channels, pan)
or the length (trim, pad: see `output_frames`). An empty stream stays empty: `pad` adds its
silence only around audio that exists.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiofx_cli.stages.base import Stage, State


def _frames(seconds: float, sample_rate: float) -> int:
    return int(round(seconds * sample_rate))


class Mono(Stage):
    """Downmix to one channel (`mono`): the mean of the channels, or their sum.

    Shape:
        (..., channels, time) -> (..., 1, time).
    """

    stage_name = "mono"

    def __init__(self, sample_rate: float, mode: str = "mean") -> None:
        super().__init__(sample_rate, mode=mode)
        self.mode = mode

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.mode == "sum":
            return x.sum(dim=-2, keepdim=True), None
        return x.mean(dim=-2, keepdim=True), None


class ChannelMap(Stage):
    """Select, reorder or duplicate channels (`channels`): output c is input channel map[c].

    Shape:
        (..., channels, time) -> (..., len(map), time).

    Raises:
        ChainSpecError: an index is not a channel of the input (checked on the first chunk).
    """

    stage_name = "channels"

    def __init__(self, sample_rate: float, map: list[float]) -> None:
        super().__init__(sample_rate, map=map)
        self.index = [int(i) for i in map]

    def _check(self, channels: int) -> None:
        bad = [i for i in self.index if i >= channels]
        if bad:
            raise self.spec_error(
                "map",
                f"channel index {bad[0]} does not exist in a {channels}-channel input "
                f"(allowed 0..{channels - 1})",
            )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        self._check(x.shape[-2])
        return None

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        self._check(x.shape[-2])
        index = torch.tensor(self.index, device=x.device)
        return x.index_select(-2, index), None


class ChannelCount(Stage):
    """Make the channel count `count` (`channel_count`, what `-C N` appends): an input with that
    many channels passes unchanged, a mono input is copied to every channel, and `count` 1 is
    the mean of the channels. Other counts need an explicit map (`channels`, `pan`, `mono`).

    Shape:
        (..., channels, time) -> (..., count, time).

    Raises:
        ChainSpecError: the input's channels cannot become `count` (checked on the first chunk).
    """

    stage_name = "channel_count"

    def __init__(self, sample_rate: float, count: int) -> None:
        super().__init__(sample_rate, count=count)
        self.count = int(count)

    def _check(self, channels: int) -> None:
        if channels not in (1, self.count) and self.count != 1:
            raise self.spec_error(
                "count",
                f"cannot make {self.count} channels from {channels} (mono and "
                f"{self.count}-channel inputs only); use channels: {{map: [...]}}, mono or pan",
            )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        self._check(x.shape[-2])
        return None

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        channels = x.shape[-2]
        self._check(channels)
        if channels == self.count:
            return x, None
        if self.count == 1:
            return x.mean(dim=-2, keepdim=True), None
        return x.expand(*x.shape[:-2], self.count, x.shape[-1]).contiguous(), None


class Pan(Stage):
    """Constant-power pan (`pan`), angle theta = (position + 1) * pi / 4.

    Mono input becomes stereo: left = cos(theta) x, right = sin(theta) x (-3 dB each at the
    centre). Stereo input is balanced with the same law scaled by sqrt(2): unity on both sides
    at the centre, the kept side +3 dB at the extremes, total power constant.

    Shape:
        (..., 1 or 2, time) -> (..., 2, time).
    """

    stage_name = "pan"

    def __init__(self, sample_rate: float, position: float = 0.0) -> None:
        super().__init__(sample_rate, position=position)
        theta = (position + 1.0) * math.pi / 4.0
        self.gains = (math.cos(theta), math.sin(theta))

    def _check(self, channels: int) -> None:
        if channels not in (1, 2):
            raise self.spec_error(None, f"needs a mono or stereo input, got {channels} channels")

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        self._check(x.shape[-2])
        return None

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        self._check(x.shape[-2])
        left, right = self.gains
        if x.shape[-2] == 1:
            return torch.cat([x * left, x * right], dim=-2), None
        scale = math.sqrt(2.0)
        return torch.cat(
            [x[..., :1, :] * (left * scale), x[..., 1:, :] * (right * scale)], -2
        ), None


class Invert(Stage):
    """Polarity inversion (`invert`): y = -x.

    Shape:
        (..., channels, time) -> same.
    """

    stage_name = "invert"

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return -x, None


class Trim(Stage):
    """Keep the input samples with index in [start, end) (`trim`), start = round(start_s * rate).

    Needs no total length: the state counts the input position. `end_s` null keeps to the end.

    Shape:
        (..., channels, time) -> (..., channels, kept part of time).
    """

    stage_name = "trim"

    def __init__(
        self, sample_rate: float, start_s: float = 0.0, end_s: float | None = None
    ) -> None:
        super().__init__(sample_rate, start_s=start_s, end_s=end_s)
        self.start = _frames(start_s, sample_rate)
        self.end = None if end_s is None else max(self.start, _frames(end_s, sample_rate))

    def output_frames(self, frames: int | None) -> int | None:
        if frames is None:
            return None
        end = frames if self.end is None else min(frames, self.end)
        return max(0, end - self.start)

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return 0

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        position = 0 if state is None else state
        n = x.shape[-1]
        lo = min(max(self.start - position, 0), n)
        hi = n if self.end is None else min(max(self.end - position, 0), n)
        return x[..., lo : max(lo, hi)], position + n


class Pad(Stage):
    """Silence before and after the audio (`pad`): the start silence comes with the first
    non-empty chunk, the end silence from `flush`. An empty stream stays empty.

    Shape:
        (..., channels, time) -> (..., channels, start + time + end).
    """

    stage_name = "pad"

    def __init__(self, sample_rate: float, start_s: float = 0.0, end_s: float = 0.0) -> None:
        super().__init__(sample_rate, start_s=start_s, end_s=end_s)
        self.start = _frames(start_s, sample_rate)
        self.end = _frames(end_s, sample_rate)

    def output_frames(self, frames: int | None) -> int | None:
        if not frames:
            return frames
        return frames + self.start + self.end

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        return {"started": False, "template": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        if state["started"] or x.shape[-1] == 0:
            return x, state
        zeros = x.new_zeros((*x.shape[:-1], self.start))
        return torch.cat([zeros, x], dim=-1), {"started": True, "template": x[..., :0]}

    def flush(self, state: State) -> Tensor | None:
        if state is None or not state["started"] or not self.end:
            return None
        template = state["template"]
        return template.new_zeros((*template.shape[:-1], self.end))
