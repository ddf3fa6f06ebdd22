"""`audiofx bench --suite grad`: forward + backward through a learnable 6-section cascade.

The workload: a 6-section EQ (high-pass, low shelf, three peaking EQs, high shelf; every
frequency, gain and q learnable) on Gaussian noise, the loss a fixed random projection of the
output. Every backend runs the same differentiable designs (`dsp.design_torch`) and differs
only in the filter engine:

- audiofx: `load_chain(..., learnable=True)`: the adjoint engine (`dsp.iir_adjoint`).
- torchaudio: `torchaudio.functional.lfilter` per section (its own autograd rule).
- philtorch: `philtorch.lti.lfilter` per section, where philtorch is installed.

Gradients of the parameters and the input are compared with audiofx's (max relative
difference), so a speed figure never hides a wrong gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHAIN: list[dict[str, Any]] = [
    {"highpass": {"cutoff_hz": 60, "order": 2}},
    {"lowshelf": {"freq_hz": 150, "gain_db": -3, "q": 0.7}},
    {"peaking": {"freq_hz": 400, "gain_db": 2, "q": 1.0}},
    {"peaking": {"freq_hz": 2000, "gain_db": -4, "q": 2.0}},
    {"peaking": {"freq_hz": 5000, "gain_db": 3, "q": 1.4}},
    {"highshelf": {"freq_hz": 9000, "gain_db": 2, "q": 0.7}},
]
BACKENDS = ("audiofx", "torchaudio", "philtorch")


@dataclass
class GradRow:
    """One backend's best forward and backward times and its gradients' agreement."""

    backend: str
    device: str
    dtype: str
    channels: int
    duration_s: float
    forward_s: float = float("nan")
    backward_s: float = float("nan")
    grad_error: float = float("nan")  # max relative difference from audiofx's gradients
    note: str = ""

    @property
    def total_s(self) -> float:
        return self.forward_s + self.backward_s


def _external(backend: str) -> Callable[..., Any] | None:
    """lfilter(x, a, b) of a backend (autograd through it), or None when not installed."""
    try:
        if backend == "torchaudio":
            from torchaudio.functional import lfilter

            return lambda x, a, b: lfilter(x, a, b, clamp=False, batching=False)
        from philtorch.lti import lfilter as phil  # type: ignore[import-not-found]

        return lambda x, a, b: phil(b, a, x)
    except ImportError:
        return None


def _run_once(backend: str, chain: Any, x: Any, weight: Any) -> tuple[float, float, list[Any]]:
    import torch

    params = list(chain.parameters())
    for p in [*params, x]:
        p.grad = None
    start = time.perf_counter()
    if backend == "audiofx":
        y = chain(x)
    else:
        lfilter = _external(backend)
        assert lfilter is not None
        y = x
        for stage in chain:
            for row in stage.coefficients():
                y = lfilter(y, row[3:].to(x.dtype), row[:3].to(x.dtype))
    loss = (y * weight).sum()
    middle = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    grads = [p.grad.detach().clone() for p in params] + [x.grad.detach().clone()]
    del y, loss
    torch.cuda.synchronize() if x.is_cuda else None
    return middle - start, end - middle, grads


def run_grad_bench(
    channels: int = 8,
    duration_s: float = 10.0,
    rate_hz: int = 44100,
    repeat: int = 3,
    device: str = "cpu",
    dtype: str = "float64",
    backends: tuple[str, ...] = BACKENDS,
    seed: int = 0,
) -> list[GradRow]:
    """Time forward and backward of the learnable cascade on every backend (best of
    `repeat`), audiofx first: the others' gradients are compared with its."""
    import torch

    from audiofx_cli.api import load_chain

    torch_dtype = getattr(torch, dtype)
    frames = int(round(duration_s * rate_hz))
    gen = torch.Generator().manual_seed(seed)
    signal = torch.randn((channels, frames), generator=gen, dtype=torch_dtype)
    weight = torch.randn((channels, frames), generator=gen, dtype=torch_dtype).to(device)
    rows: list[GradRow] = []
    reference: list[Any] | None = None
    for backend in ("audiofx", *[b for b in backends if b != "audiofx"]):
        row = GradRow(backend, device, dtype, channels, duration_s)
        rows.append(row)
        if backend != "audiofx" and _external(backend) is None:
            row.note = "not installed"
            continue
        chain = load_chain(CHAIN, rate_hz, device=device, dtype=torch_dtype, learnable=True)
        x = signal.to(device).requires_grad_()
        try:
            warm = x[:, :1000].detach().requires_grad_()
            _run_once(backend, chain, warm, weight[:, :1000])  # compile / load kernels first
            times = [_run_once(backend, chain, x, weight) for _ in range(repeat)]
        except Exception as exc:  # an external backend failing is a row, not a crash
            row.note = f"failed: {type(exc).__name__}: {exc}"[:120]
            continue
        row.forward_s = min(t[0] for t in times)
        row.backward_s = min(t[1] for t in times)
        grads = times[-1][2]
        if reference is None:
            reference = grads
            row.grad_error = 0.0
        else:
            row.grad_error = max(
                float((g - r).abs().max() / r.abs().max().clamp_min(1e-300))
                for g, r in zip(grads, reference, strict=True)
            )
        if not torch.isfinite(torch.stack([g.abs().max() for g in grads])).all():
            row.note = "non-finite gradients"
    return rows


def render(rows: list[GradRow], console: Any) -> None:
    """A table: best times, audiofx's speed-up over each backend, gradient agreement."""
    from rich.table import Table

    base = rows[0]
    title = (
        f"grad: learnable 6-section EQ, {base.channels} ch x {base.duration_s:g} s, "
        f"{base.device}, {base.dtype}"
    )
    table = Table(title=title)
    for name in ("backend", "forward s", "backward s", "total s", "audiofx is", "grad diff"):
        table.add_column(name, justify="left" if name == "backend" else "right")
    table.add_column("note")
    for row in rows:
        done = row.total_s == row.total_s
        speed = f"{row.total_s / base.total_s:.1f}x faster" if done and row is not base else ""
        table.add_row(
            row.backend,
            f"{row.forward_s:.3f}" if done else "-",
            f"{row.backward_s:.3f}" if done else "-",
            f"{row.total_s:.3f}" if done else "-",
            speed,
            f"{row.grad_error:.1e}" if done else "-",
            row.note,
        )
    console.print(table)
