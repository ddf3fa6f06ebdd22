"""Regenerate examples/speech.wav: espeak-ng speech plus 50 Hz hum, rumble and a DC offset.

The recording is synthesised here (espeak-ng, no human voice), so it is free of any licence
(CC0). Needs `apt-get install espeak-ng`. Run: python scripts/make_example.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

TEXT = "Filters, effects and features, streamed in chunks, by audiofx."
OUT = Path(__file__).resolve().parent.parent / "examples" / "speech.wav"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), TEXT], check=True)
        speech, rate = sf.read(raw, dtype="float64")
    rng = np.random.default_rng(2026)
    t = np.arange(speech.size) / rate
    hum = 0.02 * np.sin(2 * np.pi * 50 * t) + 0.008 * np.sin(2 * np.pi * 150 * t)
    rumble = signal.sosfilt(signal.butter(2, 25, fs=rate, output="sos"), rng.normal(0, 0.3, t.size))
    noisy = 0.7 * speech / np.max(np.abs(speech)) + hum + rumble + 0.01
    OUT.parent.mkdir(exist_ok=True)
    sf.write(OUT, noisy, rate, subtype="PCM_16")
    print(f"wrote {OUT}: {t[-1]:.2f} s at {rate} Hz, peak {np.max(np.abs(noisy)):.3f}")


if __name__ == "__main__":
    main()
