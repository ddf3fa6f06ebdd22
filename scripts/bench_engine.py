"""Engine micro-benchmark: audiofx IIR/FIR engines against scipy in the same run (ratios).

    python scripts/bench_engine.py --suite iir --channels 8 --duration 60 --repeat 5

Prints median seconds, M samples/s, speed-up against scipy.signal.lfilter one filter at a time
(and sosfilt of the fused cascade / oaconvolve of the fused FIR), and the error relative to the
float64 scipy reference. Records `uptime` load: timings on a shared machine are noisy.
`audiofx bench` is the full instrument; this script isolates the filter engines.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from scipy import signal

RATE = 44100


def suite_filters(suite: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(b, a, sos) per filter, as the bench suites define them (torchfx's benchmark)."""
    out = []
    if suite == "iir":
        specs = [("butter", 1000, "highpass"), ("butter", 5000, "lowpass"),
                 ("cheby1", 1500, "highpass"), ("cheby1", 1800, "lowpass")]  # fmt: skip
        order, ripple = 2, 0.1
    elif suite == "api":
        specs = [("cheby1", f, "highpass") for f in (20, 60, 65)]
        specs += [("butter", f, "lowpass") for f in (5000, 4900, 4850)]
        order, ripple = None, 0.1
    else:
        taps = [(101, 1000), (102, 5000), (103, 1500), (104, 1800), (105, 1850)]
        for n, f in taps:
            h = signal.firwin(n, f, fs=RATE)
            out.append((h, np.array([1.0]), np.empty((0, 6))))
        return out
    for family, f, btype in specs:
        n = order or (4 if family == "cheby1" else 5)
        if family == "butter":
            ba, sos = (
                signal.butter(n, f, btype, fs=RATE),
                signal.butter(n, f, btype, fs=RATE, output="sos"),
            )
        else:
            ba = signal.cheby1(n, ripple, f, btype, fs=RATE)
            sos = signal.cheby1(n, ripple, f, btype, fs=RATE, output="sos")
        out.append((ba[0], ba[1], sos))
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="iir", choices=["iir", "api", "fir"])
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--scan", action="store_true", help="also time the scan engine on CPU")
    args = parser.parse_args()

    from audiofx_cli.bench.base import stream_chain
    from audiofx_cli.dsp.fir import fir_filter
    from audiofx_cli.dsp.iir import sosfilt

    rng = np.random.default_rng(0)
    frames = int(args.duration * RATE)
    x = rng.standard_normal((args.channels, frames)).astype(np.float32)
    x /= np.abs(x).max(axis=1, keepdims=True)
    filters = suite_filters(args.suite)
    x64 = x.astype(np.float64)
    ref = x64
    for b, a, _ in filters:
        ref = signal.lfilter(b, a, ref, axis=-1) if args.suite == "fir" else ref
    if args.suite != "fir":
        ref = signal.sosfilt(np.vstack([f[2] for f in filters]), x64, axis=-1)
    rows = []

    def add(name: str, fn) -> None:
        seconds, y = timed(fn, args.repeat)
        y = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
        err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
        rows.append((name, seconds, err))

    def lfilter_each():
        y = x
        for b, a, _ in filters:
            y = signal.lfilter(b, a, y, axis=-1).astype(np.float32)
        return y

    add("scipy lfilter per filter", lfilter_each)
    xt = torch.from_numpy(x)
    if args.suite == "fir":
        fused = np.array([1.0])
        for b, _, _ in filters:
            fused = np.convolve(fused, b)
        f32 = fused.astype(np.float32)[None]
        add("scipy oaconvolve fused", lambda: signal.oaconvolve(x, f32, axes=-1)[:, :frames])
        taps = torch.from_numpy(fused)
        add("audiofx fir_filter fused", lambda: fir_filter(taps, xt)[0])
    else:
        sos = np.vstack([f[2] for f in filters])
        add("scipy sosfilt fused", lambda: signal.sosfilt(sos, x, axis=-1))
        st = torch.from_numpy(sos)
        for engine in ("lanes", "scan") if args.scan else ("lanes",):
            add(f"audiofx sosfilt {engine}", lambda e=engine: sosfilt(st, xt, engine=e)[0])
    from audiofx_cli import load_chain

    stages = []
    for b, _a, sos in filters:
        if args.suite == "fir":
            stages.append({"fir_taps": {"taps": b.tolist()}})
        else:
            stages.append({"sos": {"sections": sos.tolist()}})
    chain = load_chain(stages, RATE)
    chunk = int(args.chunk_seconds * RATE)
    out = torch.zeros_like(xt)  # a sink that reuses its memory, as a file writer does

    def stream_into() -> torch.Tensor:
        state, pos = chain.init_state(xt[..., :0], frames), 0
        for start in range(0, frames, chunk):
            y, state = chain.step(xt[..., start : start + chunk], state)
            out[..., pos : pos + y.shape[-1]] = y
            pos += y.shape[-1]
        tail = chain.flush(state)
        if tail is not None:
            out[..., pos : pos + tail.shape[-1]] = tail
        return out

    add(f"audiofx chain, {args.chunk_seconds:g} s chunks", stream_into)
    name = "audiofx chain via bench stream_chain"
    add(name, lambda: stream_chain(chain, xt, chunk))  # its fresh output buffer: page faults

    base = rows[0][1]
    load = os.getloadavg()[0]
    samples = x.size
    threads = torch.get_num_threads()
    print(f"suite {args.suite}, {args.channels} ch x {args.duration:g} s, float32, "
          f"{os.cpu_count()} CPUs, torch threads {threads}, load {load:.2f}")  # fmt: skip
    print(f"{'backend':34s} {'median s':>9s} {'M samples/s':>12s} {'x lfilter':>10s} rel err")
    for name, seconds, err in rows:
        rate = samples / seconds / 1e6
        print(f"{name:34s} {seconds:9.4f} {rate:12.1f} {base / seconds:10.1f} {err:9.1e}")


if __name__ == "__main__":
    main()
