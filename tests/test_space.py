"""`convolve` against scipy.signal.fftconvolve, and `reverb` against an independent per-sample
Freeverb, decay-time physics and the no-denormal guarantee.

Tolerances: convolve 1e-6 max abs in float64 (unit-peak noise); the Freeverb reference 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.errors import ChainSpecError
from tests.conftest import unit_noise
from tests.ir_fixture import write_ir


def run(stage, x: np.ndarray, rate: int) -> np.ndarray:
    return load_chain([stage], rate, dtype=torch.float64)(torch.from_numpy(x)).numpy()


def run_chunked(stage, x: np.ndarray, rate: int, sizes: list[int]) -> np.ndarray:
    chain = load_chain([stage], rate, dtype=torch.float64)
    xt = torch.from_numpy(x)
    state = chain.init_state(xt, x.shape[-1])
    outs, start = [], 0
    for size in sizes:
        y, state = chain.step(xt[..., start : start + size], state)
        outs.append(y)
        start += size
    tail = chain.flush(state)
    return torch.cat(outs + ([tail] if tail is not None else []), dim=-1).numpy()


# ------------------------------------------------------------------------------------ convolve
@pytest.mark.parametrize("ir_channels", [1, 2])
def test_convolve_equals_fftconvolve(tmp_path, ir_channels):
    rate, taps = 16000, 3001
    path = write_ir(tmp_path / "ir.wav", rate, taps, ir_channels)
    import soundfile as sf

    ir = sf.read(path, dtype="float64", always_2d=True)[0].T
    x = unit_noise(2, 20000, seed=1)
    full = signal.fftconvolve(x, np.broadcast_to(ir, (2, taps)), axes=-1)
    stage = {"convolve": {"ir": str(path), "wet": 0.7, "dry": 0.2}}
    expected = 0.7 * full[:, :20000] + 0.2 * x
    for sizes in ([20000], [1000] * 20, [1, 7, 4000, 0, 15992]):
        y = run_chunked(stage, x, rate, sizes)
        assert y.shape == x.shape
        assert np.max(np.abs(y - expected)) < 1e-6
    # with tail_s = (taps - 1) / rate the output is the whole convolution
    tail = {"convolve": {"ir": str(path), "tail_s": (taps - 1) / rate}}
    y = run_chunked(tail, x, rate, [3000] * 7)
    assert y.shape == full.shape
    assert np.max(np.abs(y - full)) < 1e-6


def test_convolve_resamples_the_ir(tmp_path):
    """A smooth band-limited pulse written at 22.05 kHz, used at 44.1 kHz, equals the same
    pulse sampled at 44.1 kHz (the IR is resampled, not reinterpreted)."""
    import soundfile as sf

    def pulse(rate: int) -> np.ndarray:
        t = np.arange(int(0.02 * rate)) / rate - 0.01
        return np.exp(-((t / 0.002) ** 2)) * np.cos(2 * np.pi * 1000 * t)

    path = tmp_path / "pulse.wav"
    sf.write(path, pulse(22050), 22050, subtype="DOUBLE")
    x = np.zeros((1, 2000))
    x[0, 0] = 1.0
    h = run({"convolve": {"ir": str(path)}}, x, 44100)[0, :882]
    expected = pulse(44100)
    # amplitudes are kept; peak 1, error 1.5e-3 (resample_poly's default Kaiser 5 filter)
    assert np.max(np.abs(h - expected)) < 3e-3
    assert h.shape == expected.shape


def test_convolve_normalisation_and_errors(tmp_path):
    path = write_ir(tmp_path / "ir.wav", 8000, 200)
    x = np.zeros((1, 400))
    x[0, 0] = 1.0
    h = run({"convolve": {"ir": str(path), "normalize": "energy"}}, x, 8000)[0, :200]
    assert abs(np.sum(h**2) - 1) < 1e-12
    h = run({"convolve": {"ir": str(path), "normalize": "peak"}}, x, 8000)[0, :200]
    assert abs(np.max(np.abs(h)) - 1) < 1e-12
    stereo = write_ir(tmp_path / "stereo.wav", 8000, 50, channels=2)
    with pytest.raises(ChainSpecError, match="impulse response has 2 channels and the input 3"):
        run({"convolve": {"ir": str(stereo)}}, np.zeros((3, 10)), 8000)
    with pytest.raises(ChainSpecError, match="not found"):
        load_chain([{"convolve": {"ir": str(tmp_path / "missing.wav")}}], 8000)


# ------------------------------------------------------------------------------------ reverb
class FreeverbReference:
    """Jezar's Freeverb, per sample, written from the published C++ (revmodel, comb, allpass)."""

    COMBS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
    ALLPASSES = (556, 441, 341, 225)

    def __init__(self, rate, room_size, damping, wet, dry, width):
        def scaled(n: int, spread: int) -> int:
            return round((n + spread) * rate / 44100)

        self.tanks = []
        for spread in (0, 23):
            combs = [[[0.0] * scaled(n, spread), 0, 0.0] for n in self.COMBS]
            allpasses = [[[0.0] * scaled(n, spread), 0] for n in self.ALLPASSES]
            self.tanks.append((combs, allpasses))
        self.feedback = room_size * 0.28 + 0.7
        self.damp1 = damping * 0.4
        self.damp2 = 1 - self.damp1
        self.wet1 = 3 * wet * (width / 2 + 0.5)
        self.wet2 = 3 * wet * ((1 - width) / 2)
        self.dry = 2 * dry

    def tank(self, index: int, value: float) -> float:
        combs, allpasses = self.tanks[index]
        out = 0.0
        for comb in combs:
            buf, i, store = comb
            output = buf[i]
            store = output * self.damp2 + store * self.damp1
            buf[i] = value + store * self.feedback
            comb[1], comb[2] = (i + 1) % len(buf), store
            out += output
        for ap in allpasses:
            buf, i = ap
            bufout = buf[i]
            buf[i] = out + bufout * 0.5
            out = -out + bufout
            ap[1] = (i + 1) % len(buf)
        return out

    def process_stereo(self, x: np.ndarray) -> np.ndarray:
        y = np.zeros_like(x)
        for n in range(x.shape[1]):
            value = (x[0, n] + x[1, n]) * 0.015
            left, right = self.tank(0, value), self.tank(1, value)
            y[0, n] = left * self.wet1 + right * self.wet2 + x[0, n] * self.dry
            y[1, n] = right * self.wet1 + left * self.wet2 + x[1, n] * self.dry
        return y


def test_reverb_equals_per_sample_freeverb():
    params = {"room_size": 0.8, "damping": 0.3, "wet": 0.5, "dry": 0.3, "width": 0.6}
    x = unit_noise(2, 2500, seed=2)
    x[:, 1200:] = 0.0  # let the tank ring
    rate = 16000  # tunings scaled: combs of 405 .. 587 samples
    ours = run({"reverb": params}, x, rate)
    ref = FreeverbReference(rate, **params).process_stereo(x)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def rt60(h: np.ndarray, rate: int) -> float:
    """T20 from the Schroeder backward integral: line fit from -5 to -25 dB, extrapolated."""
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    sel = (edc_db <= -5) & (edc_db >= -25)
    t = np.arange(h.size)[sel] / rate
    slope = np.polyfit(t, edc_db[sel], 1)[0]
    return -60.0 / slope


def reverb_ir(room_size: float, damping: float, rate: int, seconds: float) -> np.ndarray:
    x = np.zeros((1, int(seconds * rate)))
    x[0, 0] = 1.0
    params = {"room_size": room_size, "damping": damping, "wet": 1.0, "dry": 0.0}
    return run({"reverb": params}, x, rate)[0]


def test_reverb_decay_time_grows_with_room_size_and_matches_comb_theory():
    rate = 22050
    times = [rt60(reverb_ir(r, 0.5, rate, 6.0), rate) for r in (0.2, 0.5, 0.8, 0.95)]
    assert all(b > 1.2 * a for a, b in zip(times, times[1:], strict=False)), times
    # no damping: every comb decays 60 dB in 3 D / (rate * -log10 g) seconds; the measured T20
    # of the network lies between the shortest and the longest comb's
    g = 0.8 * 0.28 + 0.7
    lengths = [round(n * rate / 44100) for n in FreeverbReference.COMBS]
    bounds = [3 * d / (rate * -math.log10(g)) for d in (min(lengths), max(lengths))]
    measured = rt60(reverb_ir(0.8, 0.0, rate, 8.0), rate)
    assert 0.95 * bounds[0] <= measured <= 1.05 * bounds[1], (measured, bounds)


def test_reverb_silence_stays_exactly_silent_and_never_denormal():
    chain = load_chain([{"reverb": {"room_size": 0.3}}], 8000, dtype=torch.float64)
    stage = chain[0]
    x = torch.from_numpy(unit_noise(2, 800, seed=3))
    state = stage.init_state(x)
    y, state = stage.step(x, state)
    ref = FreeverbReference(8000, 0.3, 0.5, 0.33, 0.4, 1.0)  # the stage's defaults otherwise
    np.testing.assert_allclose(y.numpy(), ref.process_stereo(x.numpy()), atol=1e-10)
    silence = torch.zeros(2, 8000)
    tiny = np.finfo(np.float64).tiny  # smallest normal number
    for _ in range(12):  # 12 s of silence at 8 kHz
        y, state = stage.step(silence.double(), state)
        for key in ("comb", "store", "allpass"):
            values = np.abs(state["tanks"][key])
            assert not np.any((values > 0) & (values < tiny)), f"denormal in {key}"
    assert not np.any(state["tanks"]["comb"]) and not np.any(state["tanks"]["allpass"])
    assert not torch.any(y), "output not exactly zero after 12 s of silence"
    # a fresh reverb on silence outputs exact zeros from the start
    quiet = chain(torch.zeros(2, 4000, dtype=torch.float64))
    assert quiet.shape == (2, 4000) and not torch.any(quiet)


def test_reverb_tail_and_mono():
    rate = 8000
    x = unit_noise(1, 1000, seed=4)
    with_tail = run({"reverb": {"tail_s": 0.5}}, x, rate)
    padded = run({"reverb": {}}, np.pad(x, ((0, 0), (0, 4000))), rate)
    assert with_tail.shape == (1, 5000)
    np.testing.assert_allclose(with_tail, padded, atol=1e-12)
    # mono input: wet1 * tank(0.015 x) + dry * x (Freeverb's mono processing). The stereo
    # reference fed [x, 0] has the same left-tank input and, at width 1, wet2 = 0, so its left
    # output is that same signal
    ref = FreeverbReference(rate, 0.5, 0.5, 0.33, 0.4, 1.0)
    stereo_ref = ref.process_stereo(np.vstack([x, np.zeros_like(x)]))
    np.testing.assert_allclose(padded[0, :1000], stereo_ref[0], atol=1e-10)
