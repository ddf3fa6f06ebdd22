"""Space stages: `reverb` (Freeverb) and `convolve` (impulse response, FFT overlap-save).

Both render `tail_s` seconds of reverberation after the input ends, from `flush` (default 0:
the output has the input's length).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import signal
from torch import Tensor

from audiofx_cli.dsp import reverb as fv
from audiofx_cli.dsp.convolve import fft_size, ir_spectrum, overlap_save
from audiofx_cli.errors import ParamError
from audiofx_cli.io.chain_files import read_ir
from audiofx_cli.stages.base import State
from audiofx_cli.stages.delays import TailStage
from audiofx_cli.stages.rows import kernel_rows, like


class Reverb(TailStage):
    """Freeverb (`reverb`), parameters as in Freeverb / pedalboard.Reverb.

    Stereo input: both tanks get (left + right) * 0.015; the right tank's delays are 23
    samples (at 44.1 kHz) longer; left = wet1 tankL + wet2 tankR + dry left, and the mirror,
    with wet1 = 3 wet (1 + width) / 2, wet2 = 3 wet (1 - width) / 2, dry scaled by 2.
    Mono input (and each channel of inputs with more than two): one tank fed by 0.015 x,
    output wet1 tank + dry x (as Freeverb's mono processing).

    Shape:
        (..., channels, time) -> (..., channels, time + tail).
    """

    stage_name = "reverb"

    def __init__(
        self,
        sample_rate: float,
        room_size: float = 0.5,
        damping: float = 0.5,
        wet: float = 0.33,
        dry: float = 0.4,
        width: float = 1.0,
        tail_s: float = 0.0,
    ) -> None:
        super().__init__(
            sample_rate,
            room_size=room_size,
            damping=damping,
            wet=wet,
            dry=dry,
            width=width,
            tail_s=tail_s,
        )
        self.feedback = room_size * fv.SCALE_ROOM + fv.OFFSET_ROOM
        self.damp = damping * fv.SCALE_DAMP
        self.wet1 = wet * fv.SCALE_WET * (1.0 + width) / 2.0
        self.wet2 = wet * fv.SCALE_WET * (1.0 - width) / 2.0
        self.dry = dry * fv.SCALE_DRY
        self.tail = int(round(tail_s * sample_rate))
        self.left = fv.tunings(sample_rate, spread=False)
        self.right = fv.tunings(sample_rate, spread=True)
        self.params_array = np.array(
            [
                self.feedback,
                self.damp,
                1.0 - self.damp,
                self.wet1,
                self.wet2,
                self.dry,
                fv.FIXED_GAIN,
                fv.FLUSH,
            ]
        )

    def _lengths(self, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
        tanks = math.prod(x.shape[:-1])
        combs = np.tile(self.left[0], (tanks, 1))
        allpasses = np.tile(self.left[1], (tanks, 1))
        if x.shape[-2] == 2:  # odd rows are right tanks
            combs[1::2], allpasses[1::2] = self.right[0], self.right[1]
        return combs, allpasses

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        combs, allpasses = self._lengths(x)
        return {"tanks": fv.zero_state(combs, allpasses), "seen": False, "template": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One chunk; the tanks in `state` are updated in place (and returned)."""
        if state is None:
            state = self.init_state(x)
        n = x.shape[-1]
        if n == 0:
            return x.clone(), state
        rows, y = kernel_rows(x)
        fv.freeverb(rows.numpy(), y.numpy(), state["tanks"], self.params_array, self.stereo(x))
        return like(y, x), self.mark_seen(state, x)

    @staticmethod
    def stereo(x: Tensor) -> bool:
        return x.shape[-2] == 2


class Convolve(TailStage):
    """Convolution with an impulse response file (`convolve`): y = dry x + wet (h * x).

    The IR is resampled to the signal's rate when its own differs (scipy resample_poly, float64),
    then optionally normalised. A mono IR applies to every channel; an IR with as many
    channels as the input applies channel by channel.

    Shape:
        (..., channels, time) -> (..., channels, time + tail).
    """

    stage_name = "convolve"
    float64_buffers = ("ir",)

    def __init__(
        self,
        sample_rate: float,
        ir: str,
        wet: float = 1.0,
        dry: float = 0.0,
        normalize: str = "none",
        tail_s: float = 0.0,
    ) -> None:
        super().__init__(sample_rate, ir=ir, wet=wet, dry=dry, normalize=normalize, tail_s=tail_s)
        data, ir_rate = read_ir(ir)
        if ir_rate != sample_rate:
            if not float(sample_rate).is_integer():
                raise ParamError("ir", f"cannot resample the IR to {sample_rate:g} Hz")
            g = math.gcd(int(sample_rate), ir_rate)
            data = signal.resample_poly(data, int(sample_rate) // g, ir_rate // g, axis=-1)
        if normalize == "peak":
            data = data / max(np.max(np.abs(data)), 1e-300)
        elif normalize == "energy":
            data = data / max(float(np.sqrt(np.max(np.sum(data**2, axis=-1)))), 1e-300)
        self.register_buffer("ir", torch.from_numpy(np.ascontiguousarray(data)), persistent=False)
        self.wet, self.dry = wet, dry
        self.tail = int(round(tail_s * sample_rate))
        self.taps = data.shape[-1]
        self._spectra: dict[tuple[int, str], Tensor] = {}

    def _spectrum(self, n_fft: int) -> Tensor:
        key = (n_fft, str(self.ir.device))
        if key not in self._spectra:
            self._spectra[key] = ir_spectrum(self.ir, n_fft)
        return self._spectra[key]

    def _check(self, channels: int) -> None:
        if self.ir.shape[0] not in (1, channels):
            raise self.spec_error(
                "ir",
                f"the impulse response has {self.ir.shape[0]} channels and the input "
                f"{channels}: use a mono IR or one with {channels} channels",
            )

    def init_state(self, x: Tensor, total_frames: int | None = None) -> State:
        self._check(x.shape[-2])
        history = torch.zeros((*x.shape[:-1], self.taps - 1), dtype=torch.float64, device=x.device)
        return {"history": history, "seen": False, "template": x[..., :0]}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(x)
        self._check(x.shape[-2])
        n_fft = fft_size(x.shape[-1], self.taps)
        spectrum = self._spectrum(n_fft)
        mix = (self.wet, self.dry)
        y, history = overlap_save(x, state["history"], spectrum, self.taps, n_fft, mix)
        return y, self.mark_seen({**state, "history": history}, x)
