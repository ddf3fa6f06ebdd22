"""Speed of the time-based effects against pedalboard, same process, same signal, same run.

    flock /tmp/audiofx-bench.lock python scripts/measure_time_effects.py
    python scripts/measure_time_effects.py --duration 600 --repeat 1   # per-sample cost
    python scripts/measure_time_effects.py --only reverb chorus --threads 1

Signal: `--channels` x `--duration` s of 44.1 kHz float32 unit-variance noise (times 0.25),
processed whole (`stage(x)`, zero state, as `pedalboard.Plugin.process(x, rate)` with its
default reset). Each figure is the median of `--repeat` timed runs after one warm-up run
(kernels compiled and cached). ratio = pedalboard time / audiofx time: above 1 audiofx is
faster. Settings are matched per stage (see CASES); stages pedalboard lacks print audiofx
alone. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiofx_cli import load_chain

RATE = 44100
IR_SECONDS = 1.0


@dataclass(frozen=True)
class Case:
    label: str
    stage: object  # the chain spec entry
    pedalboard: Callable[[str], Callable[[np.ndarray], np.ndarray]] | None  # ir path -> run


def _plugin(factory: Callable[[object], object]) -> Callable[[str], Callable]:
    """A pedalboard plugin run as `plugin(x, RATE)` (reset between calls)."""

    def make(ir_path: str) -> Callable[[np.ndarray], np.ndarray]:
        import pedalboard

        plugin = factory(pedalboard)
        return lambda x: plugin(x, RATE)  # type: ignore[operator]

    return make


def _convolution(ir_path: str) -> Callable[[np.ndarray], np.ndarray]:
    import pedalboard

    plugin = pedalboard.Convolution(ir_path, mix=1.0)
    return lambda x: plugin(x, RATE)


def _resampler(quality: str) -> Callable[[str], Callable]:
    def make(ir_path: str) -> Callable[[np.ndarray], np.ndarray]:
        import pedalboard
        from pedalboard.io import StreamResampler

        wanted = getattr(pedalboard.Resample.Quality, quality)

        def run(x: np.ndarray) -> np.ndarray:
            resampler = StreamResampler(RATE, 48000, x.shape[0], wanted)
            return np.concatenate([resampler.process(x), resampler.process(None)], axis=-1)

        return run

    return make


CASES = [
    Case("reverb (defaults)", "reverb", _plugin(lambda pb: pb.Reverb())),
    Case("chorus (defaults)", "chorus", _plugin(lambda pb: pb.Chorus())),
    Case(
        "flanger (defaults; pb Chorus 2 ms, depth 0.9, fb 0.5, 0.5 Hz)",
        "flanger",
        _plugin(
            lambda pb: pb.Chorus(rate_hz=0.5, depth=0.9, centre_delay_ms=2.0, feedback=0.5, mix=0.5)
        ),
    ),
    Case("phaser (defaults)", "phaser", _plugin(lambda pb: pb.Phaser())),
    Case("tremolo (defaults)", "tremolo", None),
    Case(
        "delay (120 ms, fb 0.4)",
        {"delay": {"time_ms": 120, "feedback": 0.4}},
        _plugin(lambda pb: pb.Delay(delay_seconds=0.12, feedback=0.4, mix=0.5)),
    ),
    Case(
        "delay (1 ms, fb 0.5)",
        {"delay": {"time_ms": 1, "feedback": 0.5}},
        _plugin(lambda pb: pb.Delay(delay_seconds=0.001, feedback=0.5, mix=0.5)),
    ),
    Case(
        "echo (100/250/400 ms)",
        {"echo": {"delays_ms": [100, 250, 400], "decays": [0.5, 0.3, 0.2]}},
        None,
    ),
    Case(
        "distortion (drive 25 dB)",
        "distortion",
        _plugin(lambda pb: pb.Distortion(drive_db=25.0)),
    ),
    Case("bitcrush (8 bits)", "bitcrush", _plugin(lambda pb: pb.Bitcrush(bit_depth=8))),
    Case("bitcrush (8 bits, downsample 4)", {"bitcrush": {"downsample": 4}}, None),
    Case(
        "resample 44.1k->48k low (pb WindowedSinc32)",
        {"resample": {"rate_hz": 48000, "quality": "low"}},
        _resampler("WindowedSinc32"),
    ),
    Case(
        "resample 44.1k->48k high (pb WindowedSinc256)",
        {"resample": {"rate_hz": 48000, "quality": "high"}},
        _resampler("WindowedSinc256"),
    ),
    Case("convolve (1 s IR)", "convolve", _convolution),
]


def median_time(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up: compile, cache, allocate
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def audiofx_run(stage: object, ir_path: str, x: torch.Tensor) -> Callable[[], object]:
    if stage == "convolve":
        stage = {"convolve": {"ir": ir_path}}
    chain = load_chain([stage], RATE)

    def run() -> object:
        with torch.inference_mode():
            return chain(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="stage names to run")
    parser.add_argument("--no-pedalboard", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (kernels spread rows on them)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = int(args.duration * RATE)
    rng = np.random.default_rng(0)
    xn = (0.25 * rng.standard_normal((args.channels, frames))).astype(np.float32)
    x = torch.from_numpy(xn)
    samples = args.channels * frames
    print(f"{args.channels} ch x {args.duration:g} s, 44.1 kHz float32 noise, whole signal, ")
    print(f"median of {args.repeat}; torch threads {torch.get_num_threads()}; ")
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start\n")
    print("| stage | audiofx s | audiofx M samples/s | pedalboard s | ratio (pb / audiofx) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        ir_path = str(Path(tmp) / "ir.wav")
        taps = int(IR_SECONDS * RATE)
        ir = np.random.default_rng(1).standard_normal(taps) * np.exp(-np.arange(taps) / 8000)
        sf.write(ir_path, (ir / np.abs(ir).max()).astype(np.float32), RATE, subtype="FLOAT")
        for case in CASES:
            name = case.stage if isinstance(case.stage, str) else next(iter(case.stage))
            if args.only and name not in args.only:
                continue
            ours = median_time(audiofx_run(case.stage, ir_path, x), args.repeat)
            theirs = None
            if case.pedalboard is not None and not args.no_pedalboard:
                run = case.pedalboard(ir_path)
                theirs = median_time(lambda run=run: run(xn), args.repeat)
            pb_text = f"{theirs:.3f}" if theirs is not None else "-"
            ratio = f"{theirs / ours:.2f}" if theirs is not None else "-"
            print(
                f"| {case.label} | {ours:.3f} | {samples / ours / 1e6:.0f} | {pb_text} | {ratio} |",
                flush=True,
            )
    print(f"\nload {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
