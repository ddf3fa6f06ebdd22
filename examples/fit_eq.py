"""Learn an EQ that gives one recording another's tone, and write it as a chain file.

    python examples/fit_eq.py SOURCE.wav TARGET.wav -o fitted_eq.yaml
    audiofx process SOURCE.wav -c fitted_eq.yaml -o matched.wav

The EQ (a high-pass, a low shelf, three peaking filters and a high shelf, every frequency, gain
and q learnable) is fitted by Adam so that the source's long-term spectrum, after the EQ,
matches the target's: the loss compares average log power spectra (STFT frames), so the two
recordings need not be aligned or even the same words. The
gradients are exact (audiofx's adjoint IIR engine), the filters stay stable and below Nyquist
whatever the optimiser does (docs/learnable.md).

Without TARGET, the target is SOURCE through a hidden EQ (a demonstration that the fit finds
it): `python examples/fit_eq.py examples/speech.wav` runs in a few seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf
import torch

import audiofx_cli

START = [  # the EQ to learn, flat at the start
    {"highpass": {"cutoff_hz": 40, "order": 2, "learn": ["cutoff_hz"]}},
    {"lowshelf": {"freq_hz": 200, "gain_db": 0, "q": 0.7, "learn": True}},
    {"peaking": {"freq_hz": 500, "gain_db": 0, "q": 1.0, "learn": True}},
    {"peaking": {"freq_hz": 1500, "gain_db": 0, "q": 1.0, "learn": True}},
    {"peaking": {"freq_hz": 4000, "gain_db": 0, "q": 1.0, "learn": True}},
    {"highshelf": {"freq_hz": 6000, "gain_db": 0, "q": 0.7, "learn": True}},
]
HIDDEN = [  # the demonstration's target tone
    {"highpass": {"cutoff_hz": 120, "order": 2}},
    {"peaking": {"freq_hz": 2500, "gain_db": 6, "q": 1.2}},
    {"highshelf": {"freq_hz": 7000, "gain_db": -6}},
]


def read_mono(path: Path) -> tuple[torch.Tensor, int]:
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    return torch.from_numpy(data.mean(axis=1))[None], rate


def log_spectrum(x: torch.Tensor, n_fft: int = 1024) -> torch.Tensor:
    """Average log power spectrum over STFT frames (dB), frames overlapping by half."""
    window = torch.hann_window(n_fft, dtype=x.dtype)
    spec = torch.stft(x, n_fft, n_fft // 2, window=window, return_complex=True)
    return 10 * torch.log10(spec.abs().square().mean(dim=-1) + 1e-10)


def fit(source: torch.Tensor, target: torch.Tensor, rate: int, steps: int) -> torch.nn.Module:
    eq = audiofx_cli.load_chain(START, rate, dtype=torch.float64)  # learns the `learn:` keys
    want = log_spectrum(target)
    opt = torch.optim.Adam(eq.parameters(), lr=0.08)
    for step in range(steps):
        loss = (log_spectrum(eq(source)) - want).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  spectral error {loss.item() ** 0.5:6.2f} dB rms")
    return eq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path, nargs="?", help="default: source through an EQ")
    parser.add_argument("-o", "--output", type=Path, default=Path("fitted_eq.yaml"))
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    source, rate = read_mono(args.source)
    if args.target is None:
        with torch.no_grad():
            target = audiofx_cli.load_chain(HIDDEN, rate, dtype=torch.float64)(source)
    else:
        target, target_rate = read_mono(args.target)
        if target_rate != rate:
            raise SystemExit(f"{args.target}: {target_rate} Hz, the source has {rate} Hz")
    eq = fit(source, target, rate, args.steps)
    audiofx_cli.save_chain(eq, args.output, overwrite=True)
    print(f"wrote {args.output}: audiofx process {args.source} -c {args.output} -o matched.wav")


if __name__ == "__main__":
    main()
