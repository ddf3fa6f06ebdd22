"""Time the auditory feature chains (the issue's speed targets) against scipy in the same run.

    python scripts/bench_auditory.py            # all workloads, best of 3
    python scripts/bench_auditory.py --repeat 5 --threads 2

Workloads (float32 processing, streamed in 10 s chunks as `audiofx process` does):
- Dau 1997 chain: gammatone 31 bands 80-8000 Hz, ihc_envelope, modulation_filterbank
  (dau1997: 12 filters per band; jepsen2008: 4-12), 16 kHz, 60 s mono; with and without
  adaptation loops.
- King 2019 preset (gammatone 31 bands, envelope, 3 Hz high-pass, king2019_modulation with the
  whole-signal Hilbert envelope), 48 kHz stereo, 10 s.
- modulation_filterbank alone on (2, 31, 16000) envelopes (batch 2, 31 channels, 1 s at
  16 kHz), AMT's filters up to 150 Hz (8 per channel, torch-amt's setting) and jepsen2008.
- Pooling to 100 frames/s: the Dau 1997 chain with adaptation and jepsen2008 (the
  `modulation-frames` preset's stages), 60 s mono 16 kHz, without and with `frames` (RMS,
  25 ms every 10 ms; rectangular and Hann windows), and `frames` alone on the chain's
  audio-rate output (the same 10 s chunks); the King 2019 preset with and without
  `decimate` to 100 Hz. The ratio column is the pooling's share of the chain's time.
The scipy reference runs the same filters one at a time with scipy.signal.lfilter (complex
coefficients for efilt) in float64. Numba kernels are compiled (or loaded from the cache)
by a warm-up call first. The machine's load average is printed: the box may be shared.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.dsp.modfilter import modfilterbank_mfc


def stream(chain, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """What the engine does: analysis passes, then chunked step / flush."""
    from audiofx_cli.stream import run_analysis

    parts = list(x.split(chunk, dim=-1))
    run_analysis(chain, lambda: parts, x[..., :0], x.shape[-1])
    state = chain.init_state(x, x.shape[-1])
    outs = []
    for part in parts:
        y, state = chain.step(part, state)
        outs.append(y.shape[-1])
    tail = chain.flush(state)
    return tail


def best(fn, repeat: int) -> tuple[float, float]:
    """(wall, cpu) seconds of the fastest of `repeat` runs; cpu counts all of this process's
    threads, so on a shared box it shows the work done even when the wall clock waits."""
    runs = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu))
    return min(runs)


def scipy_modfilterbank(env: np.ndarray, fs: float, fc: np.ndarray, upper: bool, top: float):
    """AMT modfilterbank with scipy.signal.lfilter, one filter at a time (float64)."""
    b_lp, a_lp = signal.butter(2, 2.5 / (fs / 2))
    for row in range(env.shape[0]):
        x = env[row]
        for ch in range(env.shape[1]):
            umf = min(0.25 * fc[ch], top) if upper else top
            signal.lfilter(b_lp, a_lp, x[ch])
            for mfc in modfilterbank_mfc(umf)[1:]:
                w0 = 2 * np.pi * mfc / fs
                e0 = np.exp(-(2 * np.pi * 5 / fs if mfc < 10 else w0 / 2) / 2)
                y = 2 * signal.lfilter([1 - e0], [1, -e0 * np.exp(1j * w0)], x[ch])
                _ = y.real if mfc <= 10 else np.abs(y)


def pooling_rows(x60, x10, fs: int, fs48: int, repeat: int) -> list:
    """Frames and decimation: the chains with and without them, and frames alone on the
    audio-rate chunks; rows (name, (wall, cpu), reference or None: for the rows named
    'share', the chain's cpu s, printed with the pooling's cpu as a percentage of it)."""
    stages = [
        {"gammatone": {"flow_hz": 80, "fhigh_hz": 8000, "base_hz": 1000}},
        {"ihc_envelope": {}},
        {"adaptation": {}},
        {"modulation_filterbank": {"preset": "jepsen2008"}},
    ]
    base = load_chain(stages, fs)
    stream(base, x60[..., : fs // 10], 10 * fs)
    plain = best(lambda: stream(base, x60, 10 * fs), repeat)
    rows = [("modulation-frames stages without frames: 60 s mono 16 kHz", plain, None)]
    chunk = base(x60[..., : 10 * fs])  # one audio-rate chunk of the chain's output
    for window in ("rectangular", "hann"):
        frames = {"frames": {"hop_ms": 10, "window_ms": 25, "stat": "rms", "window": window}}
        pooled = load_chain([*stages, frames], fs)
        stream(pooled, x60[..., : fs // 10], 10 * fs)
        both = best(lambda pooled=pooled: stream(pooled, x60, 10 * fs), repeat)
        stage = pooled[-1]

        def alone(stage=stage) -> None:
            state = stage.init_state(chunk)
            for _ in range(6):  # 60 s in 10 s chunks
                stage.step(chunk, state)

        alone()
        rows.append((f"  with frames ({window}), 100 frames/s", both, None))
        rows.append((f"  frames ({window}) alone on the 6 chunks: share", best(alone, repeat),
                     plain[1]))  # fmt: skip
    king = load_chain("king2019", fs48)
    king_frames = load_chain("king2019-frames", fs48)
    for label, chain in (
        ("King 2019 preset", king),
        ("king2019-frames (decimate 100 Hz)", king_frames),
    ):
        stream(chain, x10[..., : fs48 // 10], 10 * fs48)
        timing = best(lambda c=chain: stream(c, x10, 10 * fs48), repeat)
        rows.append((f"{label}: 10 s stereo 48 kHz", timing, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch / kernel threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load {os.getloadavg()}")
    rng = np.random.default_rng(0)
    rows = []

    fs = 16000
    x60 = torch.from_numpy(rng.standard_normal((1, 60 * fs)) * 0.1).float()
    front = [{"gammatone": {"flow_hz": 80, "fhigh_hz": 8000}}, {"ihc_envelope": {}}]
    for label, extra in (
        ("dau1997 mfb", [{"modulation_filterbank": {"preset": "dau1997"}}]),
        ("jepsen2008 mfb", [{"modulation_filterbank": {"preset": "jepsen2008"}}]),
        (
            "adaptation + jepsen2008 mfb",
            [{"adaptation": {}}, {"modulation_filterbank": {"preset": "jepsen2008"}}],
        ),
    ):
        chain = load_chain(front + extra, fs)
        stream(chain, x60[..., : fs // 10], 10 * fs)  # warm-up (compile or load kernels)
        seconds = best(lambda chain=chain: stream(chain, x60, 10 * fs), args.repeat)
        rows.append((f"Dau 1997 chain, {label}: 31 bands, 60 s mono 16 kHz", seconds, None))

    fs48 = 48000
    x10 = torch.from_numpy(rng.standard_normal((2, 10 * fs48)) * 0.1).float()
    king = load_chain("king2019", fs48)
    stream(king, x10[..., : fs48 // 10], 10 * fs48)
    seconds = best(lambda: stream(king, x10, 10 * fs48), args.repeat)
    rows.append(("King 2019 preset: 31 bands, 10 s stereo 48 kHz", seconds, None))

    rows += pooling_rows(x60, x10, fs, fs48, args.repeat)

    env = np.abs(rng.standard_normal((2, 31, fs))) * 0.1
    fc = load_chain([{"gammatone": {"flow_hz": 80, "fhigh_hz": 8000}}], fs)[0].fc_hz.numpy()
    for label, opts, upper, top in (
        ("mfc <= 150 Hz (8 filters/channel)", {"preset": "dau1997", "max_mfc_hz": 150}, False, 150),
        (
            "jepsen2008 (4-12 filters/channel)",
            {"preset": "jepsen2008", "fc_hz": fc.tolist()},
            True,
            1000,
        ),
    ):
        chain = load_chain([{"modulation_filterbank": opts}], fs)
        x = torch.from_numpy(env).float()
        chain(x[..., :100])
        ours = best(lambda chain=chain, x=x: chain(x), args.repeat)
        ref = best(lambda upper=upper, top=top: scipy_modfilterbank(env, fs, fc, upper, top), 1)[0]
        rows.append((f"modulation_filterbank alone, {label}, (2, 31, 16000)", ours, ref))

    width = max(len(r[0]) for r in rows)
    print(f"{'workload':<{width}}  {'wall s':>7}  {'cpu s':>7}  {'scipy s':>8}  {'ratio':>6}")
    for name, (wall, cpu), ref in rows:
        if "share" in name:  # ref: the chain's cpu s; the ratio: this cpu / that (percent)
            ref_text = f"{ref:8.3f}  {100 * cpu / ref:5.1f}%"
        else:
            ref_text = f"{ref:8.3f}  {ref / wall:5.1f}x" if ref else f"{'-':>8}  {'-':>6}"
        print(f"{name:<{width}}  {wall:7.3f}  {cpu:7.3f}  {ref_text}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
