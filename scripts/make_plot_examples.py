"""Regenerate the example figures in docs/img (docs/plots.md) with `audiofx plot`.

Both come from shipped material: the `vocal` preset's response, and examples/speech.wav before
and after the `cleanup` preset (hum, rumble and DC removed). The PNGs are
re-encoded with a 100-colour palette (Pillow, installed with matplotlib) to stay under 150 KB.
Run from anywhere: python scripts/make_plot_examples.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
FIGURES = {
    "vocal_response.png": [
        "vocal", "--sample-rate", "48000", "--show", "magnitude,phase,group-delay",
        "--size", "1100x960",
    ],
    "speech_cleanup.png": [
        str(ROOT / "examples" / "speech.wav"), "--chain", "cleanup", "--db-range", "60",
        "--size", "900x720",
    ],
}  # fmt: skip
COLOURS = 100
MAX_BYTES = 150_000


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in FIGURES.items():
            raw = Path(tmp) / name
            cmd = [sys.executable, "-m", "audiofx_cli", "plot", *args, "-o", str(raw), "-q"]
            subprocess.run(cmd, check=True)
            image = Image.open(raw).convert("RGB")
            palette = image.quantize(COLOURS, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            palette.save(IMG / name, optimize=True)
            size = (IMG / name).stat().st_size
            print(f"{IMG / name}: {image.size[0]}x{image.size[1]} px, {size / 1000:.0f} KB")
            if size > MAX_BYTES:
                raise SystemExit(f"{name} is {size} bytes, over {MAX_BYTES}")


if __name__ == "__main__":
    main()
