"""The effects suite's table: every non-linear or time-varying stage, with the pedalboard, SoX
and torchfx settings that match it (None where the other tool has no such effect).

One entry per measured row. Settings are chosen to do the same job at the same size: the same
parameter where both tools have it (pedalboard's Reverb, Chorus, Phaser, Delay, Distortion,
Bitcrush are parameter for parameter the audiofx stages'; SoX's `echo` is audiofx's `echo`),
else the closest configuration, with what differs in `match`. A stage added to the registry
joins the suite by adding an entry here; entries whose stage the registry lacks are skipped
with a note (so this table can name stages before they exist).

No torch, pedalboard or torchfx here: `pedalboard` and `torchfx` entries are functions of the
imported module and the context, called only when that backend runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EffectContext:
    """What settings may depend on: the signal's rate and channels, the impulse response file
    written for `convolve` (and SoX's text copy of its taps)."""

    rate_hz: int
    channels: int
    ir_path: Path
    ir_taps_path: Path


Factory = Callable[[Any, EffectContext], Any]  # (imported module, context) -> plugin / module


@dataclass(frozen=True)
class EffectCase:
    """One row group of the suite.

    Attributes:
        label: the row's name (the stage name, or stage-variant).
        stage: the registry name of the audiofx stage.
        params: its parameters (a function of the context where they depend on it).
        pedalboard: builds the matched pedalboard plugin from `pedalboard`, or None.
        sox: the SoX effect arguments (a function of the context), or None.
        torchfx: builds the matched torchfx module from `torchfx`, or None.
        match: how the other tools' settings correspond (the table's notes).
    """

    label: str
    stage: str
    params: dict[str, Any] | Callable[[EffectContext], dict[str, Any]]
    pedalboard: Factory | None = None
    sox: Callable[[EffectContext], list[str]] | None = None
    torchfx: Factory | None = None
    match: str = ""
    sox_match: str = field(default="")

    def stage_params(self, ctx: EffectContext) -> dict[str, Any]:
        return self.params(ctx) if callable(self.params) else dict(self.params)


def _sox(*args: object) -> Callable[[EffectContext], list[str]]:
    return lambda ctx: [str(a) for a in args]


EFFECTS: tuple[EffectCase, ...] = (
    EffectCase(
        "compressor",
        "compressor",
        {"threshold_db": -18, "ratio": 4, "attack_ms": 5, "release_ms": 80, "link": False},
        lambda pb, ctx: pb.Compressor(threshold_db=-18, ratio=4, attack_ms=5, release_ms=80),
        _sox("compand", "0.005,0.08", "-90,-90,-18,-18,0,-13.5"),
        lambda fx, ctx: fx.effect.Compressor(
            threshold=-18.0, ratio=4.0, attack=0.005, release=0.08, knee=0.0, fs=ctx.rate_hz
        ),  # fmt: skip
        "peak detector, each channel on its own (link: false) as JUCE's compressor in "
        "pedalboard; pedalboard and torchfx smooth the detected level, audiofx the gain "
        "reduction (Giannoulis et al.'s smooth decoupled detector)",
        "compand with the curve -90,-90,-18,-18,0,-13.5 (ratio 4 above -18 dB), attack 5 ms, "
        "decay 80 ms",
    ),
    EffectCase(
        "limiter",
        "limiter",
        {"ceiling_db": -3, "release_ms": 50, "lookahead_ms": 5},
        lambda pb, ctx: pb.Limiter(threshold_db=-3, release_ms=50),
        _sox("compand", "0,0.05", "-90,-90,-3,-3,0,-3"),
        lambda fx, ctx: fx.effect.Limiter(
            threshold=-3.0, lookahead=0.005, release=0.05, fs=ctx.rate_hz
        ),  # fmt: skip
        "pedalboard's Limiter (JUCE) has no look-ahead (two compressors and a clipper); "
        "audiofx and torchfx look 5 ms ahead",
        "compand flat above -3 dB, instant attack, 50 ms decay (no look-ahead, not a brick wall)",
    ),
    EffectCase(
        "gate",
        "gate",
        {
            "threshold_db": -40,
            "ratio": 10,
            "range_db": 80,
            "attack_ms": 1,
            "hold_ms": 0,
            "release_ms": 100,
            "detector": "rms",
            "link": False,
        },  # fmt: skip
        lambda pb, ctx: pb.NoiseGate(threshold_db=-40, ratio=10, attack_ms=1, release_ms=100),
        _sox("compand", "0.001,0.1", "-60,-240,-40,-40"),
        lambda fx, ctx: fx.effect.Gate(
            threshold=-40.0, attack=0.001, release=0.1, floor=-80.0, knee=0.0, fs=ctx.rate_hz
        ),  # fmt: skip
        "a downward expander, ratio 10 below -40 dB, rms detector, each channel on its own, no "
        "hold (JUCE's NoiseGate in pedalboard); torchfx's Gate has an infinite ratio",
        "compand expanding 10:1 below -40 dB (points -60,-240,-40,-40), attack 1 ms, decay 100 ms",
    ),
    EffectCase(
        "normalize-peak",
        "normalize",
        {"mode": "peak", "target_db": -1},
        None,
        _sox("gain", "-n", "-1"),
        match="two passes: measure the peak, then one gain",
        sox_match="gain -n -1 (SoX keeps the audio in a temporary file between its passes)",
    ),
    EffectCase(
        "normalize-lufs",
        "normalize",
        {"mode": "lufs", "target_db": -23, "true_peak_limit_db": -1},
        match="two passes: integrated loudness (BS.1770-4) and true peak, then one gain; "
        "neither SoX nor pedalboard measures loudness",
    ),
    EffectCase(
        "fade",
        "fade",
        {"in_s": 1.0, "out_s": 1.0, "shape": "linear"},
        None,
        _sox("fade", "t", "1", "0", "1"),
        sox_match="fade t 1 0 1: linear, 1 s in, 1 s out ending at the end",
    ),
    EffectCase(
        "reverb",
        "reverb",
        {"room_size": 0.5, "damping": 0.5, "wet": 0.33, "dry": 0.4, "width": 1.0},
        lambda pb, ctx: pb.Reverb(
            room_size=0.5, damping=0.5, wet_level=0.33, dry_level=0.4, width=1.0
        ),  # fmt: skip
        _sox("reverb", "50", "50", "100", "100", "0", "0"),
        lambda fx, ctx: fx.effect.Reverb(room_size=0.5, damping=0.5, mix=0.33, fs=ctx.rate_hz),
        "Freeverb in all three (pedalboard's is JUCE's, parameter for parameter)",
        "reverb 50 50 100 100 0 0 (also Freeverb-based)",
    ),
    EffectCase(
        "chorus",
        "chorus",
        {"rate_hz": 1.0, "depth": 0.25, "mix": 0.5, "delay_ms": 7.0, "feedback": 0.0},
        lambda pb, ctx: pb.Chorus(
            rate_hz=1.0, depth=0.25, centre_delay_ms=7.0, feedback=0.0, mix=0.5
        ),  # fmt: skip
        _sox("chorus", "0.7", "0.9", "20", "0.5", "1", "1.75", "-s"),
        match="pedalboard's Chorus (JUCE), parameter for parameter",
        sox_match="chorus 0.7 0.9 20 0.5 1 1.75 -s: one voice, 1 Hz, 1.75 ms deep, at 20 ms "
        "(SoX's shortest chorus delay)",
    ),
    EffectCase(
        "flanger",
        "flanger",
        {"rate_hz": 0.5, "depth": 0.9, "mix": 0.5, "delay_ms": 2.0, "feedback": 0.5},
        lambda pb, ctx: pb.Chorus(
            rate_hz=0.5, depth=0.9, centre_delay_ms=2.0, feedback=0.5, mix=0.5
        ),  # fmt: skip
        _sox("flanger", "0", "2", "50", "50", "0.5", "sine", "0", "lin"),
        match="pedalboard has no flanger: its Chorus at a 2 ms centre delay with feedback",
        sox_match="flanger 0 2 50 50 0.5 sine 0 lin",
    ),
    EffectCase(
        "phaser",
        "phaser",
        {"rate_hz": 1.0, "depth": 0.5, "mix": 0.5, "centre_hz": 1300.0, "stages": 6},
        lambda pb, ctx: pb.Phaser(
            rate_hz=1.0, depth=0.5, centre_frequency_hz=1300.0, feedback=0.0, mix=0.5
        ),  # fmt: skip
        _sox("phaser", "0.8", "0.74", "3", "0.4", "1", "-s"),
        match="pedalboard's Phaser (JUCE: 6 all-pass stages), parameter for parameter",
        sox_match="phaser 0.8 0.74 3 0.4 1 -s (SoX's phaser is a modulated delay, not an "
        "all-pass cascade)",
    ),
    EffectCase(
        "tremolo",
        "tremolo",
        {"rate_hz": 5.0, "depth": 0.5},
        None,
        _sox("tremolo", "5", "50"),
        sox_match="tremolo 5 50",
    ),
    EffectCase(
        "delay",
        "delay",
        {"time_ms": 120.0, "feedback": 0.4, "mix": 0.5},
        lambda pb, ctx: pb.Delay(delay_seconds=0.12, feedback=0.4, mix=0.5),
        match="pedalboard's Delay, parameter for parameter; SoX has no feedback delay",
    ),
    EffectCase(
        "echo",
        "echo",
        {"delays_ms": [120.0, 250.0], "decays": [0.4, 0.2], "gain_in": 0.8, "gain_out": 0.9},
        None,
        _sox("echo", "0.8", "0.9", "120", "0.4", "250", "0.2"),
        sox_match="echo 0.8 0.9 120 0.4 250 0.2 (audiofx's echo is SoX's)",
    ),
    EffectCase(
        "distortion",
        "distortion",
        {"drive_db": 25.0},
        lambda pb, ctx: pb.Distortion(drive_db=25.0),
        _sox("overdrive", "25", "0"),
        match="pedalboard's Distortion: the same tanh curve",
        sox_match="overdrive 25 0 (another curve)",
    ),
    EffectCase(
        "bitcrush",
        "bitcrush",
        {"bits": 8},
        lambda pb, ctx: pb.Bitcrush(bit_depth=8),
        match="pedalboard's Bitcrush at 8 bits",
    ),
    EffectCase(
        "resample",
        "resample",
        lambda ctx: {"rate_hz": 48000 if ctx.rate_hz != 48000 else 44100, "quality": "high"},
        lambda pb, ctx: _StreamResample(pb, ctx),
        lambda ctx: ["rate", "-h", "48000" if ctx.rate_hz != 48000 else "44100"],
        match="to 48 kHz (44.1 kHz from 48 kHz); pedalboard.io.StreamResampler (windowed "
        "sinc, 32 zeros), flushed",
        sox_match="rate -h",
    ),
    EffectCase(
        "convolve",
        "convolve",
        lambda ctx: {"ir": str(ctx.ir_path), "wet": 1.0, "dry": 0.0},
        lambda pb, ctx: pb.Convolution(str(ctx.ir_path), mix=1.0),
        lambda ctx: ["fir", str(ctx.ir_taps_path)],
        match="a 0.5 s mono impulse response (seeded exponentially decaying noise) on every "
        "channel; pedalboard's Convolution (JUCE, partitioned FFT)",
        sox_match="fir with the same taps (SoX's FFT convolution)",
    ),
)


class _StreamResample:
    """pedalboard.io.StreamResampler as a plugin-like callable: a fresh resampler per call
    (state reset), the input resampled and the internal buffer flushed."""

    def __init__(self, pb: Any, ctx: EffectContext) -> None:
        from pedalboard.io import StreamResampler

        self.make = lambda: StreamResampler(
            ctx.rate_hz, 48000 if ctx.rate_hz != 48000 else 44100, ctx.channels
        )

    def __call__(self, x: Any, rate_hz: float) -> Any:
        import numpy as np

        resampler = self.make()
        return np.concatenate([resampler.process(x), resampler.process(None)], axis=-1)
