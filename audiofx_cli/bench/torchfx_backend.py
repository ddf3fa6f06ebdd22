"""The optional torchfx backend (torchfx 0.8.0 API; torchfx is not an audiofx dependency).

The suite's filters become torchfx modules with every parameter spelled out (so torchfx's
defaults play no part): `HiButterworth` / `LoButterworth(cutoff, order=..., fs=...)`,
`HiChebyshev1` / `LoChebyshev1(cutoff, order=..., ripple=..., fs=...)`,
`DesignableFIR(cutoff=..., num_taps=..., fs=..., window='hamming')`. Coefficients are computed in
`prepare`. A run pipes a `Wave` through them and reads `.ys`: torchfx 0.8.0 evaluates a pipe
lazily, so the pipe alone does no filtering, and `.ys` is where its fused SOS kernel runs.
(Materialising resets each filter, and 0.8.0 then recomputes its coefficients: microseconds,
inside the timed region because torchfx gives no way around it.)

When `import torchfx` fails, or its filters fail on a short probe signal (its PyPI CPU extension
does not load against torch 2.14), the backend is skipped with a note.
"""

from __future__ import annotations

from typing import Any

from audiofx_cli.bench.base import Backend, Case, Prepared, TorchRun
from audiofx_cli.bench.suites import FilterSpec


def _module(tfx: Any, f: FilterSpec, rate: int) -> Any:
    flt = tfx.filter
    if f.is_fir:
        return flt.DesignableFIR(cutoff=f.cutoff_hz, num_taps=f.taps, fs=rate, window="hamming")
    low = f.btype == "lowpass"
    if f.family == "chebyshev1":
        cls = flt.LoChebyshev1 if low else flt.HiChebyshev1
        return cls(f.cutoff_hz, order=f.order, ripple=f.ripple_db, fs=rate)
    cls = flt.LoButterworth if low else flt.HiButterworth
    return cls(f.cutoff_hz, order=f.order, fs=rate)


class TorchfxBackend(Backend):
    name = "torchfx"
    uses_device = True
    optional = True
    copies = 3.0
    summary = "torchfx: Wave(x) | filters ... then .ys (its fused kernel), float32"

    def unavailable(self) -> str | None:
        try:
            import torchfx  # noqa: F401
        except Exception as exc:  # not installed, or broken against this torch
            return f"not importable ({type(exc).__name__}: {exc}); pip install torchfx to compare"
        return None

    def prepare(self, case: Case) -> Prepared:
        return _TorchfxRun(case)


class _TorchfxRun(TorchRun):
    def __init__(self, case: Case) -> None:
        import torch
        import torchfx

        super().__init__(case.device)
        self.tfx = torchfx
        self.rate = case.rate_hz
        self.filters = [_module(torchfx, f, case.rate_hz) for f in case.suite.filters]
        for module in self.filters:
            module.to(case.device)
            if hasattr(module, "compute_coefficients"):
                module.compute_coefficients()
        self.x = torch.from_numpy(case.x).to(case.device)
        probe = self._filter(self.x[..., : min(self.x.shape[-1], 64)])  # fails early if broken
        if tuple(probe.shape) != tuple(self.x[..., :64].shape):
            raise RuntimeError(f"output shape {tuple(probe.shape)} differs from the input's")

    def _filter(self, x: Any) -> Any:
        import torch

        with torch.no_grad():
            wave = self.tfx.Wave(x, self.rate, device=self.device)
            for module in self.filters:
                wave = wave | module
            y = wave.ys if hasattr(wave, "ys") else wave
            return torch.as_tensor(y)

    def run(self) -> Any:
        return self._filter(self.x)
