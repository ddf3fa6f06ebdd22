"""Modulation effects: LFOs from the absolute sample index, tremolo, a modulated fractional
delay (chorus, flanger) and a modulated first-order all-pass cascade (phaser).

The LFO value at input sample n is a function of n only, so it continues exactly across chunks.
The effects run in compiled kernels (`audiofx_cli.dsp.modulation_kernels`, numba, imported on
first use) over rows of float32 or float64 samples, writing into an output array, with
float64 state that they update in place; rows are spread over threads when worth it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lfo:
    """An LFO: +1 at phase 0, phase c = frac(n rate_hz / sample_rate + offset) at sample n.

    `offsets` holds one phase offset (in cycles) per LFO; row r of a signal uses
    offsets[r % len(offsets)] (a (channels, voices) array for chorus voices)."""

    rate_hz: float
    sample_rate: float
    offsets: np.ndarray
    shape: str = "sine"  # 'sine' (cos(2 pi c)) or 'triangle' (4 |c - 1/2| - 1)

    @property
    def increment(self) -> float:
        return self.rate_hz / self.sample_rate

    @property
    def triangle(self) -> bool:
        return self.shape == "triangle"


def lfo(
    start: int,
    frames: int,
    rate_hz: float,
    sample_rate: float,
    offsets: np.ndarray,
    shape: str = "sine",
) -> np.ndarray:
    """LFO values in [-1, 1] for samples start .. start + frames - 1, +1 at phase 0 (numpy,
    libm cos; the kernels compute the same values with a polynomial, within 4.4e-16).

    Args:
        start: absolute index of the first sample in the stream.
        frames: number of samples.
        rate_hz: LFO frequency.
        sample_rate: in Hz.
        offsets: (k,) phase offsets in cycles (channel spread, voice spacing, start phase).
        shape: 'sine' (cos(2 pi c)) or 'triangle' (4 |c - 1/2| - 1), c the phase in cycles.

    Returns:
        (k, frames) float64.

    Example:
        >>> lfo(0, 4, 1.0, 4.0, np.zeros(1), "triangle")
        array([[ 1.,  0., -1.,  0.]])
    """
    index = np.arange(start, start + frames, dtype=np.int64).astype(np.float64)
    cycles = index * (rate_hz / sample_rate) + np.asarray(offsets, dtype=np.float64)[:, None]
    cycles -= np.floor(cycles)
    if shape == "triangle":
        return 4.0 * np.abs(cycles - 0.5) - 1.0
    return np.cos(2.0 * np.pi * cycles)


def _run(kernel_name: str, x: np.ndarray, *args: object, cost: int) -> None:
    from audiofx_cli.dsp import modulation_kernels, prefilter

    kernel = getattr(modulation_kernels, kernel_name)
    prefilter.run_rows(kernel, x.shape[0], *args, cost=cost)


def tremolo(x: np.ndarray, y: np.ndarray, start: int, osc: Lfo, depth: float, mix: float) -> None:
    """y = x ((1 - mix) + mix g), g = 1 - depth (1 - lfo) / 2.

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        start: stream index of x's first sample.
    """
    args = (start, osc.increment, osc.offsets, osc.triangle, depth, mix)
    _run("tremolo_rows", x, x, y, *args, cost=x.size)


def modulated_delay(
    x: np.ndarray,
    y: np.ndarray,
    ring: np.ndarray,
    start: int,
    osc: Lfo,
    delay: tuple[float, float],
    feedback: float,
    mix: float,
) -> None:
    """Fractional delay line read by several voices, with feedback of their mean:

    w[n] = x[n] + feedback * wet[n];  wet[n] = mean over voices v of w(n - d_v[n]), read by
    linear interpolation; d_v[n] = max(centre (1 + depth lfo_v[n]), 1) samples;
    y[n] = (1 - mix) x[n] + mix wet[n].

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        ring: (rows, R) float64, w[n] at ring[n mod R], R a power of two > the longest delay
            (`ring_size`); zeros for a fresh stream. Updated in place.
        start: stream index of x's first sample.
        osc: the voices' LFOs, offsets (channels, voices).
        delay: (centre in samples, depth).
    """
    centre, depth = delay
    args = (ring, start, osc.increment, osc.offsets, osc.triangle, centre, depth)
    voices = osc.offsets.shape[-1]
    _run("chorus_rows", x, x, y, *args, feedback, mix, cost=x.size * voices)


def allpass_cascade(
    x: np.ndarray,
    y: np.ndarray,
    memory: np.ndarray,
    start: int,
    osc: Lfo,
    sweep: tuple[float, float],
    feedback: float,
    mix: float,
) -> None:
    """Cascade of first-order all-passes H(z) = (a + z^-1) / (1 + a z^-1) whose coefficient
    a[n] puts -90 degrees at f[n] = centre_hz 2^(span lfo[n]) (a = (t - 1) / (t + 1),
    t = tan(pi f / rate)); the cascade's previous output times feedback is added to its
    input; y = (1 - mix) x + mix cascade.

    Args:
        x, y: (rows, time) input and output (same dtype, float32 or float64).
        memory: (rows, stages + 1) float64: the previous input of each stage, then the
            previous output of the last stage (zeros for a fresh stream). Updated in place.
        start: stream index of x's first sample.
        osc: one LFO per channel.
        sweep: (centre_hz / sample_rate, span = depth * octaves).
    """
    centre, span = sweep
    args = (memory, start, osc.increment, osc.offsets, osc.triangle, span, math.pi * centre)
    stages = memory.shape[1] - 1
    _run("phaser_rows", x, x, y, *args, feedback, mix, cost=x.size * (stages + 8))


def max_delay_samples(delay_ms: float, depth: float, sample_rate: float) -> int:
    """Longest delay (plus margin) of a line read at delay_ms * (1 + depth * lfo)."""
    return int(math.ceil(delay_ms * (1.0 + depth) * sample_rate / 1000.0)) + 2


def ring_size(longest: int) -> int:
    """Rows of a delay ring for delays up to `longest` samples: a power of two above it."""
    return 1 << int(longest).bit_length()
