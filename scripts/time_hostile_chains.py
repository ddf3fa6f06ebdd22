"""Time `audiofx validate` on hostile chain files of up to 1 MiB (the figures in
docs/reliability.md).

    python scripts/time_hostile_chains.py            # best of 3 per file
    python scripts/time_hostile_chains.py --repeat 5

Each file is parsed in this process (`load_spec`, what `audiofx validate` does without
--sample-rate) and the result printed: 'valid' or the first 70 characters of the one-line error.
The machine's load average is printed: the box may be shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from audiofx_cli.chain.spec import MAX_CHAIN_BYTES, load_spec
from audiofx_cli.errors import AudiofxError


def bomb(levels: int) -> str:
    gain = "[{gain: {gain_db: 0}}]"
    text = f"stages:\n  - parallel:\n      branches: &l0 [{gain}, {gain}]\n"
    for k in range(1, levels):
        inner = f"[{{parallel: {{branches: *l{k - 1}}}}}]"
        text += f"  - parallel:\n      branches: &l{k} [{inner}, {inner}]\n"
    return text


def cases() -> dict[str, str]:
    mib = MAX_CHAIN_BYTES
    fill = "stages:\n  - fir_taps: {taps: ["
    return {
        "nested-alias bomb, 30 levels (2^30 stages)": bomb(30),
        "alias fan-out: 60 x a 1000-item list": "x: &x ["
        + ",".join(["1"] * 1000)
        + "]\nstages: ["
        + ",".join(["*x"] * 60)
        + "]\n",
        "10,000 nested brackets": "stages: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "40,000 inline taps (allowed)": fill + ",".join(["1e-3"] * 40_000) + "]}\n",
        "1 MiB of inline taps": fill + ",".join(["1"] * ((mib - 40) // 2)) + "]}\n",
        "1 MiB of stages": "stages:\n" + "  - gain: {gain_db: 1}\n" * ((mib - 10) // 24),
        "1 MiB stage name": "stages:\n  - '" + "x" * (mib - 20) + "'\n",
        "1 MiB comment": "# " + "x" * (mib - 30) + "\nstages: [invert]\n",
        "1 MiB of module args": "stages:\n  - module: {name: torch.nn.Tanh, args: {"
        + ", ".join(f"a{i}: 1" for i in range(mib // 9))[: mib - 80]
        + "}}\n",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        for label, text in cases().items():
            path = Path(folder) / "chain.yaml"
            path.write_text(text)
            best, outcome = float("inf"), ""
            for _ in range(args.repeat):
                start = time.perf_counter()
                try:
                    load_spec(path)
                    outcome = "valid"
                except AudiofxError as exc:
                    outcome = str(exc).split(": ", 1)[1][:70]
                best = min(best, time.perf_counter() - start)
            size = len(text.encode())
            print(f"| {label} | {size:,} | {1000 * best:.0f} ms | {outcome} |")


if __name__ == "__main__":
    main()
