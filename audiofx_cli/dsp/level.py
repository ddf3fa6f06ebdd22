"""Level functions: fade curves, soft clipping, bit crushing (pure tensor functions).

Fade curves map u in [0, 1] (0: start of a fade-in / end of a fade-out, 1: full level) to a gain:

    linear       f(u) = u
    exponential  f(u) = 10 ** (-5 (1 - u))        linear in dB, -100 dB to 0 dB (ffmpeg 'exp')
    logarithmic  f(u) = max(0, 1 + log10(u) / 5)  the inverse of 'exponential' (ffmpeg 'log')
    cosine       f(u) = (1 - cos(pi u)) / 2       raised cosine, an S-curve (ffmpeg 'hsin')
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiofx_cli.dsp.level_targets import FADE_SHAPES

EXP_FADE_RANGE_DB = 100.0


def fade_curve(u: Tensor, shape: str) -> Tensor:
    """Gain of a fade at positions u (clamped to [0, 1]); see the module docstring.

    Example:
        >>> fade_curve(torch.tensor([0.0, 0.5, 1.0]), "cosine")
        tensor([0.0000, 0.5000, 1.0000])
    """
    u = u.clamp(0.0, 1.0)
    if shape == "linear":
        return u
    if shape == "exponential":
        return torch.pow(10.0, -EXP_FADE_RANGE_DB / 20.0 * (1.0 - u))
    if shape == "logarithmic":
        return (1.0 + torch.log10(u) * (20.0 / EXP_FADE_RANGE_DB)).clamp(min=0.0)
    if shape == "cosine":
        return 0.5 * (1.0 - torch.cos(math.pi * u))
    raise ValueError(f"unknown fade shape '{shape}' (use {' | '.join(FADE_SHAPES)})")


def fade_segments(
    start: int, frames: int, fade_in: int, fade_out: int, total: int | None, shape: str
) -> list[tuple[int, Tensor]]:
    """The fading parts of samples start .. start + frames - 1 of a stream of `total`
    samples: (offset in the chunk, float64 gains) for the fade-in and the fade-out where the
    chunk has them (none between the fades; overlapping fades multiply).

    Fade-in: g[n] = f(n / fade_in) for n < fade_in. Fade-out, its mirror image:
    g[n] = f((total - 1 - n) / fade_out) for the last fade_out samples (the last sample is
    f(0)).

    Example:
        >>> [(at, g.tolist()) for at, g in fade_segments(0, 4, 2, 0, None, "linear")]
        [(0, [0.0, 0.5])]
    """
    parts = []
    if fade_in > 0 and start < fade_in:  # samples start .. fade_in - 1 of the stream
        n = torch.arange(start, start + min(frames, fade_in - start), dtype=torch.float64)
        parts.append((0, fade_curve(n / fade_in, shape)))
    if fade_out > 0 and total is not None and start + frames > total - fade_out:
        first = max(0, total - fade_out - start)  # chunk offset where the fade-out begins
        back = (total - 1) - torch.arange(start + first, start + frames, dtype=torch.float64)
        parts.append((first, fade_curve(back / fade_out, shape)))
    return parts


def soft_clip(x: Tensor, drive_db: float, mix: float = 1.0, output_db: float = 0.0) -> Tensor:
    """tanh soft clipper: y = g_out ((1 - mix) x + mix tanh(g_drive x)).

    Example:
        >>> soft_clip(torch.tensor([0.0, 10.0]), drive_db=0.0)
        tensor([0., 1.])
    """
    drive = 10.0 ** (drive_db / 20.0)
    out = 10.0 ** (output_db / 20.0)
    wet = torch.tanh(x * drive)
    if mix != 1.0:
        wet = mix * wet + (1.0 - mix) * x
    return wet * out if out != 1.0 else wet


def quantize_midtread(x: Tensor, bits: int) -> Tensor:
    """Uniform mid-tread quantiser with 2**bits levels over [-1, 1): step 2 ** (1 - bits),
    y = step * floor(x / step + 1/2). Zero is a level; nothing is clipped.

    Example:
        >>> quantize_midtread(torch.tensor([0.1, 0.3, -0.7]), bits=2)
        tensor([ 0.0000,  0.5000, -0.5000])
    """
    step = 2.0 ** (1 - bits)
    return torch.floor(x / step + 0.5) * step
