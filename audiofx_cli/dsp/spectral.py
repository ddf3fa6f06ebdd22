"""Spectral features in float64: windows, framed STFT, mel filterbanks, DCT, decibels.

Conventions follow librosa (and torchaudio where both agree): periodic windows centred in
n_fft, frames of n_fft samples every hop samples, `center` padding of n_fft // 2 on both sides,
rfft bins 0 .. n_fft / 2, mel filterbanks as librosa.filters.mel (Slaney or HTK mel scale,
Slaney area normalisation or none), DCT-II with 'ortho' normalisation as scipy.fft.dct,
power_to_db: 10 log10(max(amin, S)) - 10 log10(max(amin, ref)), then the top_db floor.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import fft as sp_fft
from scipy import signal
from torch import Tensor


def window(name: str, win_length: int, n_fft: int) -> np.ndarray:
    """Periodic window of `win_length`, zero-padded to n_fft with the window centred."""
    kind = {"rectangular": "boxcar"}.get(name, name)
    w = signal.get_window(kind, win_length, fftbins=True).astype(np.float64)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def stft_power(frames_input: Tensor, n_fft: int, hop: int, win: Tensor, power: float) -> Tensor:
    """|STFT|^power of (..., L) without padding: frames k cover [k hop, k hop + n_fft).

    Returns (..., n_fft // 2 + 1, n_frames), float64; n_frames = 0 when L < n_fft.
    """
    lead = frames_input.shape[:-1]
    length = frames_input.shape[-1]
    n_bins = n_fft // 2 + 1
    n_frames = 0 if length < n_fft else (length - n_fft) // hop + 1
    if n_frames == 0:
        return frames_input.new_zeros((*lead, n_bins, 0), dtype=torch.float64)
    flat = frames_input.to(torch.float64).reshape(-1, length)
    frames = flat.unfold(-1, n_fft, hop)  # (rows, n_frames, n_fft)
    spectrum = torch.fft.rfft(frames * win.to(flat), dim=-1).abs()
    if power != 1.0:
        spectrum = spectrum**power
    return spectrum.transpose(-1, -2).reshape(*lead, n_bins, n_frames)


def hz_to_mel(freq_hz: np.ndarray, htk: bool = False) -> np.ndarray:
    """librosa.hz_to_mel: HTK 2595 log10(1 + f / 700), or Slaney (linear to 1 kHz, then log)."""
    f = np.asarray(freq_hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, mels)


def mel_to_hz(mels: np.ndarray, htk: bool = False) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    f_min_hz: float = 0.0,
    f_max_hz: float | None = None,
    norm: str = "slaney",
    mel_scale: str = "slaney",
) -> tuple[np.ndarray, np.ndarray]:
    """Triangular mel filters (n_mels, n_fft // 2 + 1) and their centre frequencies (Hz).

    Same construction as librosa.filters.mel (and torchaudio melscale_fbanks with the same
    options), computed in float64.
    """
    f_max = sample_rate / 2 if f_max_hz is None else f_max_hz
    htk = mel_scale == "htk"
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(f_min_hz, htk), hz_to_mel(f_max, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights, mel_f[1:-1]


def dct_matrix(n_out: int, n_in: int, norm: str = "ortho") -> np.ndarray:
    """(n_out, n_in) DCT-II matrix: y = D @ x equals scipy.fft.dct(x, type=2, norm)[:n_out]."""
    return sp_fft.dct(np.eye(n_in), type=2, norm=None if norm == "none" else norm, axis=0)[:n_out]


def power_to_db(s: Tensor, multiplier: float, amin: float, ref: float) -> Tensor:
    """multiplier log10(max(amin, s)) - multiplier log10(max(amin, ref)) (no top_db floor)."""
    return multiplier * torch.log10(s.clamp(min=amin)) - multiplier * float(
        np.log10(max(amin, ref))
    )
