"""Outputs of the dynamics and level stages against another checkout of audiofx (the size of a
change), on the same program material, float32 and float64, streamed in 10 s chunks.

    git archive 0d56327 audiofx_cli | tar -x -C /tmp/old     # the code before issue 16
    python scripts/compare_dynamics_outputs.py /tmp/old

Prints the largest difference of every stage's output (absolute, and relative to its peak)
and, for normalize, the difference of the gain it chose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

rate = 44100
rng = np.random.default_rng(5)
t = np.arange(rate * 20) / rate
env = 10 ** (-60 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 4.0)) / 20)
x = rng.standard_normal((2, t.size)) * env
x /= np.abs(x).max()
x *= 1.5  # some over full scale
CH = {
    "compressor": [
        {
            "compressor": {
                "threshold_db": -24,
                "ratio": 4,
                "attack_ms": 5,
                "release_ms": 80,
                "knee_db": 6,
            }
        }
    ],
    "compressor-rms-unlinked": [
        {"compressor": {"threshold_db": -30, "ratio": 3, "detector": "rms", "link": False}}
    ],
    "gate": [{"gate": {"threshold_db": -40}}],
    "expander": [{"gate": {"threshold_db": -40, "ratio": 3, "range_db": 40, "detector": "peak"}}],
    "limiter": [{"limiter": {"ceiling_db": -3, "release_ms": 50, "lookahead_ms": 5}}],
    "normalize-lufs-tp": [
        {"normalize": {"mode": "lufs", "target_db": -16, "true_peak_limit_db": -1}}
    ],
    "fade": [{"fade": {"in_s": 1, "out_s": 1, "shape": "cosine"}}],
}


def run(root):
    for m in [k for k in sys.modules if k.startswith("audiofx_cli")]:
        del sys.modules[m]
    sys.path.insert(0, root)
    from audiofx_cli.api import load_chain
    from audiofx_cli.stream import run_analysis, run_tensor

    out = {}
    for name, spec in CH.items():
        for dtype in (torch.float32, torch.float64):
            ch = load_chain(spec, rate, dtype=dtype)
            xt = torch.from_numpy(x).to(dtype)
            chunks = [xt[..., i : i + 441000] for i in range(0, xt.shape[-1], 441000)]
            with torch.no_grad():
                run_analysis(ch, lambda chunks=chunks: chunks, xt[..., :0], xt.shape[-1])
                out[name, str(dtype)] = run_tensor(ch, xt, 441000).double().numpy()
                if name.startswith("normalize"):
                    out[name + " gain_db", str(dtype)] = ch[0].gain_db.copy()
    sys.path.pop(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the other checkout (holding audiofx_cli/)")
    args = parser.parse_args()
    old = run(str(args.old))
    new = run(str(Path(__file__).resolve().parent.parent))
    report(old, new)


def report(old: dict, new: dict) -> None:
    for key in old:
        a, b = old[key], new[key]
        if key[0].endswith("gain_db"):
            gap = abs(a - b).max()
            print(f"{key[0]:28s} {key[1]:14s} gain {b[0]:.9f} dB, difference {gap:.2e} dB")
            continue
        diff = np.abs(a - b).max()
        share = diff / np.abs(a).max()
        print(f"{key[0]:28s} {key[1]:14s} max |new - old| {diff:.2e} ({share:.2e} of the peak)")


if __name__ == "__main__":
    main()
