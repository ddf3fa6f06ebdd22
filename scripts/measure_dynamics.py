"""Accuracy and speed numbers for docs/dynamics.md (level, loudness, dynamics, dither).

    python scripts/measure_dynamics.py          # needs the dev extra (pyloudnorm)

Prints markdown tables: integrated loudness against pyloudnorm and EBU Tech 3341 cases, the
compressor's static-curve and time-constant errors, the limiter's highest output sample, TPDF
dither statistics, and each stage's speed on 60 s of 48 kHz stereo noise (machine-dependent).
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pyloudnorm
import soundfile as sf
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.dsp.loudness import integrated_loudness, true_peak
from audiofx_cli.io.audio import quantize
from audiofx_cli.stages.dynamics import Compressor, Limiter

RATE = 48000


def tones(rate: int, seconds: float, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros((channels, t.size))
    for c in range(channels):
        for start in np.arange(0, seconds, 0.5):
            f0 = rng.choice([110, 147, 196, 220, 262, 330, 392])
            env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(2, 6)), 0.0)
            for h in range(1, 8):
                out[c] += env * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h**1.3
    return 0.3 * out / np.abs(out).max()


def loudness_table() -> None:
    speech, rate = sf.read("examples/speech.wav", dtype="float64", always_2d=True)
    rng = np.random.default_rng(7)
    cases = {
        "speech.wav, 22.05 kHz mono": (speech.T, rate),
        "noise, 48 kHz stereo": (0.05 * rng.standard_normal((2, 4 * RATE)), RATE),
        "tones, 44.1 kHz stereo": (tones(44100, 5, 2, 1), 44100),
        "tones, 32 kHz stereo": (tones(32000, 4, 2, 3), 32000),
        "tones, 11.025 kHz mono": (tones(11025, 4, 1, 9), 11025),
        "tones, 96 kHz 5 ch": (tones(96000, 3, 5, 4), 96000),
    }
    print("| signal | audiofx LUFS | pyloudnorm (exact K filters) | same at 48 kHz | default |")
    print("|---|---|---|---|---|")
    for name, (x, r) in cases.items():
        ours = integrated_loudness(x, r)
        exact = pyloudnorm.Meter(r, filter_class="DeMan").integrated_loudness(x.T)
        ratio = Fraction(48000, r)
        at48 = signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        resampled = pyloudnorm.Meter(48000, filter_class="DeMan").integrated_loudness(at48.T)
        default = pyloudnorm.Meter(r).integrated_loudness(x.T)
        print(f"| {name} | {ours:.3f} | {exact:.3f} | {resampled:.3f} | {default:.3f} |")
    print()
    t = np.arange(20 * RATE) / RATE

    def sine(level: float, seconds: float) -> np.ndarray:
        return 10 ** (level / 20) * np.sin(2 * np.pi * 1000 * t[: int(seconds * RATE)])

    tech = {
        "1: -23 dBFS 20 s": [(-23, 20)],
        "2: -33 dBFS 20 s": [(-33, 20)],
        "3: -36/-23/-36": [(-36, 10), (-23, 20), (-23, 20), (-23, 20), (-36, 10)],
        "4: -72/-36/-23/-36/-72": [(-72, 10), (-36, 10), (-23, 20), (-36, 10), (-72, 10)],
        "5: -26/-20/-26": [(-26, 20), (-20, 20.1), (-26, 20)],
    }
    print("| EBU Tech 3341 case (stereo 1 kHz) | expected | audiofx |")
    print("|---|---|---|")
    for name, parts in tech.items():
        tone = np.concatenate([sine(level, s) for level, s in parts])
        got = integrated_loudness(np.stack([tone, tone]), RATE)
        want = -33.0 if name.startswith("2") else -23.0
        print(f"| {name} | {want:.1f} | {got:.3f} |")
    five = np.stack([sine(level, 20) for level in (-28, -28, -24, -30, -30)])
    print(f"| 6: 5.0 channels | -23.0 | {integrated_loudness(five, RATE):.3f} |")
    x = np.sin(2 * np.pi * np.arange(4800) / 4 + np.pi / 4)
    print(f"\ntrue peak of an fs/4 sine at 45 degrees (samples at -3.01 dBFS): "
          f"{20 * np.log10(true_peak(x[None])):+.3f} dBTP (exact: 0)")  # fmt: skip


def compressor_table() -> None:
    t = np.arange(RATE) / RATE
    worst = {}
    for detector in ("peak", "rms"):
        for knee in (0.0, 12.0):
            errors = []
            for level in np.arange(-50.0, 5.1, 2.5):
                amp = 10 ** (level / 20) * (math.sqrt(2) if detector == "rms" else 1)
                stage = Compressor(RATE, -20, 4, 5, 100, knee, 0, detector)
                y = stage(torch.from_numpy(amp * np.sin(2 * np.pi * 1000 * t))[None])
                y = y.numpy()[0, -RATE // 5 :]
                out = (
                    20 * np.log10(np.abs(y).max())
                    if detector == "peak"
                    else 10 * np.log10(np.mean(y**2))
                )
                over = level + 20
                if knee and abs(over) <= knee / 2:
                    want = level + (0.25 - 1) * (over + knee / 2) ** 2 / (2 * knee)
                else:
                    want = -20 + over / 4 if over > 0 else level
                errors.append(abs(out - want))
            worst[(detector, knee)] = max(errors)
    print("\n| compressor static curve (1 kHz sines, -50..+5 dB, T -20, R 4) | max error dB |")
    print("|---|---|")
    for (detector, knee), err in worst.items():
        print(f"| detector {detector}, knee {knee:g} dB | {err:.3f} |")
    x = np.full(RATE, 10 ** (-40 / 20))
    x[RATE // 4 : RATE // 2] = 10 ** (-10 / 20)
    for attack, release in ((1, 50), (10, 80)):
        red, _ = Compressor(RATE, -30, 4, attack, release).gain_reduction_db(
            torch.from_numpy(x)[None], None
        )
        red = red[0]
        a = (np.argmax(red[RATE // 4 :] >= 15 * (1 - 1 / math.e)) + 1) / RATE * 1000
        r = (np.argmax(red[RATE // 2 :] <= 15 / math.e) + 1) / RATE * 1000
        print(f"| attack {attack} ms / release {release} ms: measured 63 % rise {a:.2f} ms, "
              f"1/e decay {r:.2f} ms |  |")  # fmt: skip


def limiter_line() -> None:
    speech, _ = sf.read("examples/speech.wav", dtype="float64")
    programs = {
        "noise +20 dB": np.random.default_rng(3).standard_normal((2, 3 * RATE)) * 3,
        "speech +20 dB": 10 * np.stack([speech, speech]) / np.abs(speech).max(),
    }
    print("\n| limiter (ceiling -1 dBFS = 0.891251, look-ahead 5 ms) | max output | length |")
    print("|---|---|---|")
    for name, x in programs.items():
        y = Limiter(RATE, -1.0, 50, 5)(torch.from_numpy(x).float())
        print(f"| {name} | {float(y.abs().max()):.6f} | {y.shape[-1]} of {x.shape[-1]} |")


def dither_line() -> None:
    x = np.full((200_000, 1), 1000.37 / 32768)
    q, _ = quantize(x, 16, "tpdf", np.random.default_rng(0))
    err = q.astype(float) - 1000.37
    print(f"\nTPDF dither, constant input 1000.37 LSB: error mean {err.mean():+.4f} LSB, "
          f"variance {err.var():.4f} LSB^2 (theory 0.25)")  # fmt: skip


def speed_table() -> None:
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 60 * RATE)) * 0.3).float()
    stages = {
        "normalize lufs": {"normalize": {"mode": "lufs"}},
        "normalize peak, true_peak_limit_db": {
            "normalize": {"mode": "peak", "true_peak_limit_db": -1}
        },
        "fade 1 s in / out": {"fade": {"in_s": 1, "out_s": 1}},
        "compressor (peak)": "compressor",
        "compressor (rms)": {"compressor": {"detector": "rms"}},
        "limiter (5 ms look-ahead)": "limiter",
        "gate": "gate",
        "distortion": "distortion",
        "bitcrush (downsample 3)": {"bitcrush": {"downsample": 3}},
    }
    print("\n| stage | 60 s of 48 kHz stereo | x real time |")
    print("|---|---|---|")
    for name, stage in stages.items():
        chain = load_chain([stage], RATE)
        chain(x[:, :1000])  # numba compile / warm-up
        start = time.perf_counter()
        chain(x)
        seconds = time.perf_counter() - start
        print(f"| {name} | {seconds:.2f} s | {60 / seconds:.0f} |")


if __name__ == "__main__":
    loudness_table()
    compressor_table()
    limiter_line()
    dither_line()
    speed_table()
