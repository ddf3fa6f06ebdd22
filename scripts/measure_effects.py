"""Measure the figures quoted in docs/effects.md: resampler quality, reverb decay and silence
timing, and throughput of the time / space / modulation / channel / rate stages.

    python scripts/measure_effects.py            # everything (about a minute on 2 cores)
    python scripts/measure_effects.py resample   # one section: resample | reverb | speed
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.dsp.resample import QUALITIES

PAIRS = [(44100, 48000), (48000, 16000), (16000, 44100)]


def snr_db(got: np.ndarray, ref: np.ndarray) -> float:
    m = ref.shape[-1]
    inner = slice(m // 10, m - m // 10)
    err = got[..., inner] - ref[..., inner]
    return 10 * math.log10(np.sum(ref[..., inner] ** 2) / np.sum(err**2))


def resample(x: np.ndarray, src: int, dst: int, quality: str) -> np.ndarray:
    chain = load_chain(
        [{"resample": {"rate_hz": dst, "quality": quality}}], src, dtype=torch.float64
    )
    return chain(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def prototype_response(up: int, down: int, quality: str) -> tuple[float, float]:
    """(stopband attenuation dB, passband ripple dB) of the continuous kernel sampled at up*fs."""
    q = QUALITIES[quality]
    scale = min(1.0, up / down)
    cutoff = (q.passband + 1) / 4 * scale
    half = q.zero_crossings / scale
    tau = np.arange(-math.ceil(half * up), math.ceil(half * up) + 1) / up
    u = np.clip(tau / half, -1, 1)
    window = np.i0(q.beta * np.sqrt(1 - u * u)) / np.i0(q.beta)
    window[np.abs(tau) > half] = 0
    h = 2 * cutoff * np.sinc(2 * cutoff * tau) * window
    freqs = np.linspace(0, 0.5 * up, 100001)
    response = np.abs(signal.freqz(h, 1, worN=freqs, fs=up)[1])
    response /= response[0]
    nyq = 0.5 * scale
    stop = 20 * math.log10(np.max(response[freqs >= nyq]))
    ripple = 20 * math.log10(1 + np.max(np.abs(response[freqs <= q.passband * nyq] - 1)))
    return stop, ripple


def section_resample() -> None:
    print("## resample quality (44.1k->48k kernel; SNR over 3 pairs, worst case)")
    print(
        "quality | passband | zero crossings | beta | stopband dB | ripple dB | SNR sines | "
        "SNR resample_poly kaiser10 | SNR resample_poly default"
    )
    for name, q in QUALITIES.items():
        stop, ripple = prototype_response(160, 147, name)
        sines, poly10, poly5 = [], [], []
        for src, dst in PAIRS:
            edge = q.passband * min(src, dst) / 2
            freqs = [0.02 * edge, 0.3 * edge, 0.71 * edge, 0.97 * edge]
            t = np.arange(src // 2) / src
            x = sum(0.2 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs))[None]
            y = resample(x, src, dst, name)
            to = np.arange(y.shape[-1]) / dst
            ideal = sum(0.2 * np.sin(2 * np.pi * f * to + i) for i, f in enumerate(freqs))[None]
            sines.append(snr_db(y, ideal))
            g = math.gcd(src, dst)
            noise = np.random.default_rng(1).standard_normal((1, src))
            sos = signal.ellip(12, 0.01, 140, 0.3 * min(src, dst), fs=src, output="sos")
            noise = signal.sosfiltfilt(sos, noise, axis=-1)
            y = resample(noise, src, dst, name)
            ref10 = signal.resample_poly(
                noise, dst // g, src // g, axis=-1, window=("kaiser", 10.0)
            )
            ref5 = signal.resample_poly(noise, dst // g, src // g, axis=-1)
            poly10.append(snr_db(y, ref10))
            poly5.append(snr_db(y, ref5))
        print(
            f"{name} | {q.passband:.2f} | {q.zero_crossings} | {q.beta:.2f} | {stop:.1f} | "
            f"{ripple:.2g} | {min(sines):.1f} | {min(poly10):.1f} | {min(poly5):.1f}"
        )


def section_reverb() -> None:
    rate = 44100
    print("## reverb T20-based RT60 (damping 0.5, 44.1 kHz)")
    for room in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        x = np.zeros((1, 8 * rate))
        x[0, 0] = 1.0
        params = {"room_size": room, "damping": 0.5, "wet": 1.0, "dry": 0.0}
        h = load_chain([{"reverb": params}], rate, dtype=torch.float64)(torch.from_numpy(x))[0]
        edc = np.cumsum(h.numpy()[::-1] ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
        sel = (edc_db <= -5) & (edc_db >= -25)
        slope = np.polyfit(np.arange(h.shape[0])[sel] / rate, edc_db[sel], 1)[0]
        print(f"room_size {room:.2f}: RT60 {-60 / slope:.2f} s")
    chain = load_chain([{"reverb": {"room_size": 0.9}}], rate)
    noise = torch.randn(2, 30 * rate) * 0.1
    silence = torch.zeros(2, 30 * rate)
    for label, first, second in (("noise", noise, noise), ("noise then silence", noise, silence)):
        stage = chain[0]
        state = stage.init_state(first)
        _, state = stage.step(first, state)
        start = time.perf_counter()
        _, state = stage.step(second, state)
        seconds = time.perf_counter() - start
        print(f"reverb, 30 s stereo of {label}: second 30 s took {seconds:.2f} s")


def section_speed() -> None:
    rate, seconds = 44100, 60
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, rate * seconds))).float()
    with tempfile.TemporaryDirectory() as tmp:
        ir_path = Path(tmp) / "ir.wav"
        ir = np.random.default_rng(1).standard_normal(2 * rate) * np.exp(
            -np.arange(2 * rate) / 20000
        )
        sf.write(ir_path, ir / np.abs(ir).max(), rate, subtype="FLOAT")
        stages = [
            {"delay": {"time_ms": 350, "feedback": 0.5}},
            {"delay": {"time_ms": 1, "feedback": 0.5}},
            {"echo": {"delays_ms": [100, 250, 400], "decays": [0.5, 0.3, 0.2]}},
            "reverb",
            {"convolve": {"ir": str(ir_path)}},
            "chorus",
            {"chorus": {"voices": 4}},
            "flanger",
            "phaser",
            "tremolo",
            "mono",
            "pan",
            {"resample": {"rate_hz": 48000}},
            {"resample": {"rate_hz": 16000}},
            {"resample": {"rate_hz": 48000, "quality": "very_high"}},
        ]
        print(f"## throughput: {seconds} s stereo 44.1 kHz float32, 10 s chunks, x real time")
        for stage in stages:
            chain = load_chain([stage], rate)
            chain(x[..., :4410])  # compile kernels, warm up
            start = time.perf_counter()
            state = chain.init_state(x, x.shape[-1])
            for chunk in x.split(rate * 10, dim=-1):
                _, state = chain.step(chunk, state)
            chain.flush(state)
            took = time.perf_counter() - start
            print(f"{stage}: {seconds / took:.0f}x real time ({took:.2f} s)")
        xs = x.double().numpy()
        start = time.perf_counter()
        signal.oaconvolve(xs, ir[None, :], axes=-1)
        print(
            f"scipy.signal.oaconvolve, same IR (2 s), whole signal: "
            f"{seconds / (time.perf_counter() - start):.0f}x real time"
        )
        start = time.perf_counter()
        signal.resample_poly(xs, 160, 147, axis=-1)
        print(
            f"scipy.signal.resample_poly 44.1k->48k (default filter): "
            f"{seconds / (time.perf_counter() - start):.0f}x real time"
        )


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["resample", "reverb", "speed"]
    for name in wanted:
        {"resample": section_resample, "reverb": section_reverb, "speed": section_speed}[name]()
