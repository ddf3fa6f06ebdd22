"""Spectral feature stages: STFT spectrogram, mel spectrogram, MFCC, and dB conversion.

Defaults follow librosa (0.10+): centred frames with zero padding, periodic Hann window,
hop = win_length // 4, Slaney mel scale with Slaney area normalisation, DCT-II 'ortho',
power_to_db with amin 1e-10 and top_db 80. The output time axis is frames: the stage's output
rate is the frame rate, sample_rate / hop.
"""

from __future__ import annotations

from typing import Any

from audiofx_cli.chain.params import Param, StageDef, _fmt
from audiofx_cli.errors import ParamError

_IMPL = "audiofx_cli.stages.spectral"
WINDOWS = ("hann", "hamming", "blackman", "rectangular")


def _stft_params() -> list[Param]:
    return [
        Param(
            "n_fft",
            "int",
            "FFT size (frequency bins: n_fft / 2 + 1)",
            default=512,
            low=2,
            high=1 << 20,
        ),  # fmt: skip
        Param(
            "hop",
            "int",
            "frame step (default win_length // 4)",
            default=None,
            unit="samples",
            low=1,
            high=1 << 20,
        ),  # fmt: skip
        Param(
            "win_length",
            "int",
            "window length, centred in n_fft (default n_fft)",
            default=None,
            unit="samples",
            low=1,
            high=1 << 20,
        ),  # fmt: skip
        Param(
            "window",
            "choice",
            "window (periodic, as librosa and torch)",
            default="hann",
            choices=WINDOWS,
        ),  # fmt: skip
        Param(
            "power",
            "float",
            "exponent of the magnitude: 1 magnitude, 2 power",
            default=2.0,
            low=0,
            high=4,
            low_open=True,
        ),  # fmt: skip
        Param(
            "center",
            "bool",
            "pad n_fft // 2 on both sides so frame t is centred on t * hop",
            default=True,
        ),  # fmt: skip
        Param(
            "pad_mode",
            "choice",
            "padding when centred (librosa default: constant zeros)",
            default="constant",
            choices=("constant", "reflect"),
        ),  # fmt: skip
    ]


def _mel_params() -> list[Param]:
    return [
        Param("n_mels", "int", "number of mel bands", default=128, low=1, high=2048),
        Param("f_min_hz", "float", "lowest frequency", default=0.0, unit="Hz", low=0),
        Param(
            "f_max_hz",
            "float",
            "highest frequency (default Nyquist)",
            default=None,
            unit="Hz",
            low=0,
            low_open=True,
        ),  # fmt: skip
        Param(
            "norm",
            "choice",
            "slaney: area normalisation (librosa); none: peak 1",
            default="slaney",
            choices=("slaney", "none"),
        ),  # fmt: skip
        Param(
            "mel_scale",
            "choice",
            "slaney (librosa default) or htk",
            default="slaney",
            choices=("slaney", "htk"),
        ),  # fmt: skip
    ]


def _top_db(default: float | None) -> Param:
    return Param("top_db", "float", "floor at (maximum - top_db) over the whole signal "
                 "(needs a first pass); null: no floor", default=default, unit="dB", low=0,
                 low_open=True)  # fmt: skip


MIN_MEL_SPACING_HZ = 1e-3  # mel band edges closer than this collapse (zero-width triangles)


def _hop(params: dict[str, Any]) -> int:
    win = params["win_length"] or params["n_fft"]
    return params["hop"] or max(1, win // 4)


def _check_stft(params: dict[str, Any], sample_rate: float | None) -> None:
    win = params["win_length"]
    if win is not None and win > params["n_fft"]:
        raise ParamError("win_length", f"must be <= n_fft ({params['n_fft']}), got {win}")


def _check_mel(params: dict[str, Any], sample_rate: float | None) -> None:
    _check_stft(params, sample_rate)
    f_min, f_max = params["f_min_hz"], params["f_max_hz"]
    if f_max is not None and not f_min < f_max:
        raise ParamError("f_max_hz", f"must be above f_min_hz ({_fmt(f_min)} Hz)")
    if sample_rate is not None:
        nyquist = sample_rate / 2
        top = nyquist if f_max is None else f_max
        if top > nyquist:
            raise ParamError(
                "f_max_hz", f"must be <= Nyquist ({_fmt(nyquist)} Hz), got {_fmt(top)} Hz"
            )
        if not f_min < top:
            raise ParamError("f_min_hz", f"must be below {_fmt(top)} Hz, got {_fmt(f_min)}")
        if (top - f_min) / (params["n_mels"] + 1) < MIN_MEL_SPACING_HZ:
            raise ParamError(
                "f_max_hz",
                f"{params['n_mels']} bands between {_fmt(f_min)} and {_fmt(top)} Hz are "
                f"narrower than {_fmt(MIN_MEL_SPACING_HZ)} Hz each",
            )


def _frame_rate(params: dict[str, Any], rate: float) -> float:
    return rate / _hop(params)


DEFS = [
    StageDef(
        "spectrogram",
        "STFT magnitude (power) spectrogram, streamed frame-exactly (audio -> frequency bins)",
        _stft_params(),
        f"{_IMPL}:Spectrogram",
        "spectral",
        "- spectrogram: {n_fft: 256, hop: 64, power: 1}",
        _check_stft,
        _frame_rate,
    ),
    StageDef(
        "mel",
        "mel spectrogram: STFT power through a mel filterbank (audio -> mel bands)",
        [*_stft_params(), *_mel_params()],
        f"{_IMPL}:MelSpectrogram",
        "spectral",
        "- mel: {n_fft: 512, hop: 128, n_mels: 40}",
        _check_mel,
        _frame_rate,
    ),
    StageDef(
        "mfcc",
        "MFCC: DCT-II of the mel spectrogram in dB (audio -> cepstral coefficients)",
        [
            Param("n_mfcc", "int", "number of coefficients", default=20, low=1, high=2048),
            *_stft_params(),
            *_mel_params(),
            Param(
                "dct_norm",
                "choice",
                "DCT-II normalisation",
                default="ortho",
                choices=("ortho", "none"),
            ),  # fmt: skip
            _top_db(80.0),
        ],
        f"{_IMPL}:MFCC",
        "spectral",
        "- mfcc: {n_mfcc: 13, n_fft: 512, hop: 128, n_mels: 40}",
        _check_mel,
        _frame_rate,
    ),
    StageDef(
        "db",
        "amplitude or power to decibels (librosa amplitude_to_db / power_to_db)",
        [
            Param(
                "kind",
                "choice",
                "power: 10 log10; amplitude: 20 log10",
                default="power",
                choices=("power", "amplitude"),
            ),  # fmt: skip
            Param("ref", "float", "reference value (0 dB)", default=1.0, low=0, low_open=True),
            Param(
                "amin",
                "float",
                "floor before the logarithm (default: 1e-10 for power, "
                "1e-5 for amplitude, as librosa)",
                default=None,
                low=0,
                low_open=True,
            ),  # fmt: skip
            _top_db(80.0),
        ],
        f"{_IMPL}:Decibels",
        "spectral",
        "- db: {kind: power, top_db: 80}",
    ),
]
