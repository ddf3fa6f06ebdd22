"""FIR filtering with history carried across chunks (the streaming form of lfilter(taps, 1, x)).

Short filters (up to 32 taps) are a weighted sum of shifted views of the signal; longer ones
use FFT overlap-save (direct convolution for chunks shorter than 4x the taps): the signal is
cut into frames of n_fft samples overlapping by n_taps - 1, each multiplied by the taps'
spectrum (real FFTs, spectrum cached per taps tensor, n_fft, dtype and device) and the valid
part kept. Frames are processed in cache-sized groups, so memory stays a few times the chunk
whatever its length. The FFTs are torch.fft's on every device (MKL on x86 CPUs: measured 2-3x
faster than scipy.fft's pocketfft on the fir suite's batched frames, at every chunk length
from 0.05 s to 10 s). Exact up to float rounding, and the same result for any chunking.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from audiofx_cli import memory

SHIFT_MAX_TAPS = 32  # up to this many taps: a weighted sum of shifted views (no kernel setup)
FFT_MIN_TAPS = 33  # above SHIFT_MAX_TAPS, for chunks of 4x the taps or more: FFT overlap-save
SMALL_WORK = 1 << 16  # below this many multiply-adds per row, a matmul over a strided view
CPU_FRAME_SAMPLES = 1 << 17  # output samples per row per group of FFT frames: cache-sized
FRAME_SAMPLES = 1 << 20  # the same on other devices (GPUs want big batches)


def fir_zeros_history(taps: Tensor, x: Tensor) -> Tensor:
    """Zero history for `fir_filter`: (*x.shape[:-1], n_taps - 1) in x's dtype and device."""
    return x.new_zeros((*x.shape[:-1], taps.shape[-1] - 1))


def fft_size(n_taps: int) -> int:
    """Power-of-two FFT size for this many taps: about 8x the taps, within [1024, 2**18] and
    at least twice the taps. (Measured on the 511-tap fir suite, 8 ch, torch.fft / MKL:
    2048-4096 points ran 1.2-1.5x faster than 8192-32768: smaller frames stay in cache.)"""
    return max(
        1024, min(1 << 18, 1 << (8 * n_taps - 1).bit_length()), 1 << (2 * n_taps - 1).bit_length()
    )


def _shifted_sum(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    """y[i] = sum_k taps[k] xx[i + H - k]: one multiply-add pass per tap."""
    hold = taps.shape[-1] - 1
    on_cpu = taps.device.type == "cpu"
    y = xx[..., hold : hold + n_out] * (float(taps[0]) if on_cpu else taps[0])
    for k in range(1, hold + 1):
        view = xx[..., hold - k : hold - k + n_out]
        if on_cpu:
            y.add_(view, alpha=float(taps[k]))
        else:
            y = y + view * taps[k]
    return y


def conv1d(x: Tensor, weight: Tensor, stride: int = 1) -> Tensor:
    """`F.conv1d` at the input's precision on every device. cuDNN runs float32 convolutions in
    TF32 by default on Ampere and later GPUs (a 10-bit mantissa: about 1e-3 relative error),
    so on CUDA float32 is convolved in float64 and rounded back."""
    if x.is_cuda and x.dtype == torch.float32:
        return F.conv1d(x.double(), weight.double(), stride=stride).float()
    return F.conv1d(x, weight, stride=stride)


def _direct(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    if n_out * taps.shape[-1] <= SMALL_WORK:  # conv1d's fixed cost dominates short chunks
        return xx.unfold(-1, taps.shape[-1], 1) @ taps.flip(-1)
    lead = xx.shape[:-1]
    flat = xx.reshape(-1, 1, xx.shape[-1])
    kernel = taps.flip(-1).reshape(1, 1, -1)
    return conv1d(flat, kernel).reshape(*lead, n_out)


def taps_spectrum(taps: Tensor, n_fft: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """rfft of the taps at n_fft points in `dtype`'s precision (cached per taps tensor)."""
    key = (n_fft, dtype, str(device), taps._version)
    cached = getattr(taps, "_audiofx_spectrum", None)  # lives and dies with the taps tensor
    if cached is not None and cached[0] == key:
        return cached[1]
    spectrum = torch.fft.rfft(taps.to(device=device, dtype=dtype), n_fft)
    try:
        taps._audiofx_spectrum = (key, spectrum)  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return spectrum


def _overlap_save(
    taps: Tensor, xx: Tensor, n_out: int, offset: int = 0, out_rows: Tensor | None = None
) -> Tensor:
    """y[i] = sum_k taps[k] xx[offset + i + H - k] for i < n_out, H = n_taps - 1, by FFT
    frames (samples past the end of xx count as zeros). With `out_rows` ((rows, n_out)
    view), the result is written there and returned as rows."""
    n_taps = taps.shape[-1]
    hold = n_taps - 1
    n_fft = fft_size(n_taps)
    step = n_fft - hold
    spectrum = taps_spectrum(taps, n_fft, xx.dtype, xx.device)
    lead = xx.shape[:-1]
    rows = xx.reshape(-1, xx.shape[-1])
    out = rows.new_empty((rows.shape[0], n_out)) if out_rows is None else out_rows
    group = CPU_FRAME_SAMPLES if xx.device.type == "cpu" else FRAME_SAMPLES
    per_group = max(1, group // step)
    for start in range(0, n_out, per_group * step):
        count = min(per_group * step, n_out - start)
        frames = math.ceil(count / step)
        need = (frames - 1) * step + n_fft
        piece = rows[:, offset + start : offset + start + need]
        if piece.shape[-1] < need:
            piece = F.pad(piece, (0, need - piece.shape[-1]))
        blocks = piece.unfold(-1, n_fft, step)  # (rows, frames, n_fft), a view
        full = torch.fft.irfft(torch.fft.rfft(blocks, n_fft) * spectrum, n_fft)
        out[:, start : start + count] = full[..., hold:].reshape(rows.shape[0], -1)[:, :count]
    return out if out_rows is not None else out.reshape(*lead, n_out)


def _learnt(taps: Tensor, xx: Tensor, n_out: int) -> Tensor:
    """y[i] = sum_k taps[k] xx[i + H - k] in plain differentiable ops, for taps that need
    gradients (learnt FIRs): direct for short filters, else one FFT convolution per row (no
    cached spectrum: the taps change at every step)."""
    taps = taps.to(dtype=xx.dtype, device=xx.device)
    hold = taps.shape[-1] - 1
    if taps.shape[-1] <= SHIFT_MAX_TAPS or n_out * taps.shape[-1] <= SMALL_WORK:
        return _direct(taps, xx, n_out)
    n_fft = 1 << (xx.shape[-1] + hold - 1).bit_length()
    full = torch.fft.irfft(torch.fft.rfft(xx, n_fft) * torch.fft.rfft(taps, n_fft), n_fft)
    return full[..., hold : hold + n_out]


def _rows_view(out: Tensor | None, x: Tensor) -> Tensor | None:
    """`out` as (rows, frames) to write the FFT path's output into, or None (a copy, another
    device or dtype, or memory shared with x, which is read after outputs are written)."""
    if out is None or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
        return None
    if out.requires_grad or out.data_ptr() == x.data_ptr():
        return None
    return memory.rows_view(out)


def fir_filter(
    taps: Tensor, x: Tensor, history: Tensor | None = None, out: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Causal FIR filter y[n] = sum_k taps[k] x[n-k], with the past carried in `history`.

    Args:
        taps: (n_taps,) impulse response (cast to x's dtype).
        x: (..., time).
        history: the last n_taps - 1 input samples before x, (..., n_taps - 1); None is zeros.
        out: a tensor of x's shape (not sharing x's memory) to write y into; the FFT path
            writes it directly, the others copy. Not for inputs that need gradients.

    Returns:
        (y, new_history) with y of x's shape (y is `out` when given).

    Example:
        >>> taps = torch.tensor([0.25, 0.5, 0.25])
        >>> fir_filter(taps, torch.tensor([1.0, 0.0, 0.0, 0.0]))[0]
        tensor([0.2500, 0.5000, 0.2500, 0.0000])
    """
    grad = (x.requires_grad or taps.requires_grad) and torch.is_grad_enabled()
    if out is not None and grad:
        raise ValueError("fir_filter: out= is not supported for inputs that need gradients")
    y, history = _fir(taps, x, history, out)
    if out is not None and y is not out:
        out.copy_(y)
        y = out
    return y, history


def _fir(
    taps: Tensor, x: Tensor, history: Tensor | None, out: Tensor | None
) -> tuple[Tensor, Tensor]:
    if history is None:
        history = fir_zeros_history(taps, x)
    n_out, hold = x.shape[-1], history.shape[-1]
    if n_out == 0:
        return x, history
    if taps.requires_grad and torch.is_grad_enabled():
        y = _learnt(taps, torch.cat([history, x], dim=-1), n_out)
    elif taps.shape[-1] >= FFT_MIN_TAPS and n_out >= 4 * taps.shape[-1]:
        # no copy of the chunk: the first n_fft - hold outputs see the history, the rest x
        head = min(n_out, fft_size(taps.shape[-1]) - hold)
        lead = x.shape[:-1]
        if x.requires_grad and torch.is_grad_enabled():  # autograd: no writes into views
            first = _overlap_save(taps, torch.cat([history, x[..., :head]], dim=-1), head)
            rest = _overlap_save(taps, x, n_out - head, offset=head - hold)
            y = torch.cat([first, rest], dim=-1)
        else:
            rows = _rows_view(out, x)
            direct = rows is not None
            if rows is None:
                rows = memory.empty((math.prod(lead), n_out), x.dtype, x.device)
            _overlap_save(taps, torch.cat([history, x[..., :head]], -1), head, 0, rows[:, :head])
            _overlap_save(taps, x, n_out - head, head - hold, rows[:, head:])
            y = out if direct else rows.reshape(*lead, n_out)
    else:
        xx = torch.cat([history, x], dim=-1)
        if taps.shape[-1] <= SHIFT_MAX_TAPS:
            y = _shifted_sum(taps.to(dtype=x.dtype, device=x.device), xx, n_out)
        elif taps.shape[-1] >= FFT_MIN_TAPS and n_out >= taps.shape[-1]:
            y = _overlap_save(taps, xx, n_out)
        else:
            y = _direct(taps.to(dtype=x.dtype, device=x.device), xx, n_out)
    if n_out >= hold:
        new_history = x[..., n_out - hold :]
    else:
        new_history = torch.cat([history[..., n_out:], x], dim=-1)
    return y, new_history
