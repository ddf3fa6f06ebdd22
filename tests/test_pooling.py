"""`frames` and `decimate`: against numpy references written here (frame statistics by a loop
over frames; decimation by the physics of a low-pass: band-limited tones come out sampled,
everything above the output Nyquist frequency is attenuated as stated), on audio and on the
audio-rate output of the modulation chain; exact streaming; axes; lengths; refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import get_window

from audiofx_cli import features, load_chain
from audiofx_cli.chain.spec import load_spec
from audiofx_cli.errors import ChainSpecError
from tests.conftest import unit_noise
from tests.test_stage_contract import chunked

MODULATION = [
    {"gammatone": {"flow_hz": 80, "fhigh_hz": 8000, "base_hz": 1000}},
    {"ihc_envelope": {"method": "dau1996"}},
    {"adaptation": {"preset": "dau1997"}},
    {"modulation_filterbank": {"preset": "jepsen2008"}},
]


def frames_reference(
    x: np.ndarray, rate: float, hop_ms: float, window_ms: float, stat: str, window: str
) -> np.ndarray:
    """Frame k centred on sample round(k * hop), `window_ms` long, the statistic over the
    samples inside the signal (float64, one frame at a time)."""
    n = x.shape[-1]
    hop = rate * hop_ms / 1000
    width = int(math.floor(rate * window_ms / 1000 + 0.5))
    w = np.ones(width) if window == "rectangular" else get_window(window, width, fftbins=False)
    count = math.ceil(n / hop - 1e-9)
    out = np.empty((*x.shape[:-1], count))
    for k in range(count):
        start = int(math.floor(k * hop + 0.5)) - (width - 1) // 2
        lo, hi = max(0, start), min(n, start + width)
        seg, ws = x[..., lo:hi], w[lo - start : hi - start]
        if stat == "max":
            out[..., k] = seg.max(-1)
        elif stat == "rms":
            out[..., k] = np.sqrt((ws * seg**2).sum(-1) / ws.sum())
        elif stat == "mean":
            out[..., k] = (ws * seg).sum(-1) / ws.sum()
        else:
            out[..., k] = (ws * np.abs(seg)).sum(-1) / ws.sum()
    return out


@pytest.mark.parametrize(
    "rate, hop_ms, window_ms, stat, window",
    [
        (16000, 10, 25, "rms", "rectangular"),
        (22050, 10, 25, "rms", "hann"),  # hop 220.5 samples: frames on alternate phases
        (44100, 5, 20, "mean", "hamming"),
        (11025, 10, 30, "mean_abs", "blackman"),  # hop 110.25
        (8000, 20, 10, "max", "rectangular"),  # window shorter than the hop
        (48000, 12.5, 40, "mean_abs", "rectangular"),
    ],
)
def test_frames_equal_the_numpy_reference(rate, hop_ms, window_ms, stat, window):
    x = unit_noise(3, 4321, seed=7).reshape(1, 3, 4321)
    params = {"hop_ms": hop_ms, "window_ms": window_ms, "stat": stat, "window": window}
    chain = load_chain([{"frames": params}], rate, dtype=torch.float64)
    got = chain(torch.from_numpy(x)).numpy()
    ref = frames_reference(x, rate, hop_ms, window_ms, stat, window)
    assert got.shape == ref.shape == (1, 3, math.ceil(4321 * hop_ms**-1 * 1000 / rate - 1e-9))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    assert chain.output_rate == pytest.approx(1000 / hop_ms, rel=1e-15)


def test_frames_of_the_modulation_chain_equal_pooled_audio_rate_features():
    """The audio-rate Jepsen 2008 features pooled by numpy equal the chain with `frames`
    (float32 processing, 1e-5 relative to each frame's peak band) for any chunking."""
    rate = 16000
    x = torch.from_numpy(0.1 * unit_noise(1, 9000, seed=3)).float()
    audio_rate = load_chain(MODULATION, rate)(x).double().numpy()
    stage = {"frames": {"hop_ms": 10, "window_ms": 25, "stat": "rms"}}
    chain = load_chain([*MODULATION, stage], rate)
    ref = frames_reference(audio_rate, rate, 10, 25, "rms", "rectangular")
    whole = chain(x)
    assert whole.shape == ref.shape == (1, 30, 12, 57)
    scale = np.abs(ref).max(axis=(1, 2), keepdims=True)
    assert np.abs(whole.double().numpy() - ref).max() / scale.min() < 1e-5
    for sizes in ([1] * 50 + [8950], [777] * 12, [4000, 0, 5000]):
        got = chunked(chain, x, sizes).double().numpy()
        assert np.abs(got - whole.double().numpy()).max() / scale.min() < 1e-6, sizes
    assert not whole.numpy()[:, ~load_spec_mask(chain)].any()  # ragged padding stays 0


def load_spec_mask(chain) -> np.ndarray:
    from audiofx_cli.axes import chain_axes

    return chain_axes(chain).mask()


def test_frames_axes_time_and_counts():
    x = torch.from_numpy(0.1 * unit_noise(2, 22050, seed=1)).float()
    spec = [*MODULATION, {"frames": {"hop_ms": 10}}]
    y, meta = features.compute(x, spec, sample_rate=22050)
    assert meta.axes == ["channel", "fc_hz", "mfc_hz", "time_s"]
    assert meta.frame_rate == 100.0 and meta.sample_rate == 22050
    assert y.shape[-1] == 100
    np.testing.assert_allclose(meta.coords["time_s"], np.arange(100) / 100, atol=1e-15)
    _, audio_meta = features.compute(x[..., :1000], MODULATION, sample_rate=22050)
    assert meta.counts.tolist() == audio_meta.counts.tolist()
    np.testing.assert_array_equal(meta.mask, audio_meta.mask)
    np.testing.assert_array_equal(meta.coords["mfc_hz"], audio_meta.coords["mfc_hz"])
    np.testing.assert_array_equal(meta.coords["fc_hz"], audio_meta.coords["fc_hz"])


def test_frames_after_a_spectral_stage_at_a_fractional_frame_rate():
    rate = 16000
    x = torch.from_numpy(unit_noise(1, 3 * rate, seed=2))
    mel = [{"mel": {"n_fft": 512, "hop": 160, "n_mels": 20}}]  # 100 frames/s
    spec = [*mel, {"frames": {"hop_ms": 50, "window_ms": 100, "stat": "mean"}}]
    chain = load_chain(spec, rate, dtype=torch.float64)
    assert chain.output_rate == 20.0
    ref = frames_reference(load_chain(mel, rate, dtype=torch.float64)(x).numpy(), 100, 50, 100,
                           "mean", "rectangular")  # fmt: skip
    np.testing.assert_allclose(chain(x).numpy(), ref, rtol=1e-12)
    odd = load_chain([{"spectrogram": {"hop": 512}}, {"frames": {"hop_ms": 100}}], 22050)
    assert odd.output_rate == pytest.approx(10.0)  # 22050 / 512 frames/s: hop 4.3 frames


@pytest.mark.parametrize("n", [0, 1, 2, 219, 220, 221, 441, 1000])
def test_lengths_are_ceil_of_duration_times_rate(n):
    x = torch.ones(2, n, dtype=torch.float64)
    for params, ratio in (
        ({"frames": {"hop_ms": 10}}, 100 / 22050),
        ({"decimate": {"rate_hz": 200}}, 200 / 22050),
        ({"decimate": {"factor": 3}}, 1 / 3),
    ):
        chain = load_chain([params], 22050, dtype=torch.float64)
        assert chain(x).shape == (2, math.ceil(n * ratio - 1e-12)), params
        assert chain[0].output_frames(n) == math.ceil(n * ratio - 1e-12)


def tones(rate: float, freqs: np.ndarray, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * np.asarray(freqs)[:, None] * t[None, :])


@pytest.mark.parametrize(
    "rate, params",
    [
        (16000, {"rate_hz": 200}),  # two stages: 20 then 4
        (22050, {"rate_hz": 200}),  # 4 / 441: 21, then 4 / 21
        (48000, {"factor": 2, "stopband_db": 60}),  # one stage
    ],
)
def test_decimate_passes_the_band_and_stops_the_rest(rate, params):
    chain = load_chain([{"decimate": params}], rate, dtype=torch.float64)
    out = chain.output_rate
    nyquist, atten = out / 2, params.get("stopband_db", 80.0)
    seconds = max(2.0, 400 / out)
    stop = np.linspace(nyquist, min(rate / 2 * 0.995, 5 * nyquist), 120)
    y = chain(torch.from_numpy(tones(rate, stop, seconds))).numpy()
    middle = slice(y.shape[-1] // 4, 3 * y.shape[-1] // 4)
    worst_db = 20 * np.log10(np.abs(y[:, middle]).max())
    assert worst_db <= -atten, f"stop-band {worst_db:.1f} dB"
    passing = np.linspace(0.5, 0.8 * nyquist, 40)
    y = chain(torch.from_numpy(tones(rate, passing, seconds))).numpy()
    sampled = tones(out, passing, y.shape[-1] / out)  # the tones at the output times
    error = np.abs(y[:, middle] - sampled[:, middle]).max()
    assert error <= 4 * 10 ** (-atten / 20), f"pass-band error {error:.2g}"


def test_decimate_streams_exactly_after_a_feature_stage():
    rate = 22050  # two stages: 21, then 4 / 21
    x = torch.from_numpy(0.1 * unit_noise(1, 12000, seed=5)).float()
    spec = [{"gammatone": {"flow_hz": 80, "fhigh_hz": 4000}}, {"ihc_envelope": {}},
            {"decimate": {"rate_hz": 200}}]  # fmt: skip
    chain = load_chain(spec, rate)
    whole = chain(x)
    assert whole.shape == (1, 25, 109) and chain.output_rate == 200
    for sizes in ([1] * 100 + [11900], [1000] * 12, [5, 11990, 5]):
        assert torch.allclose(chunked(chain, x, sizes), whole, rtol=0, atol=1e-6), sizes


@pytest.mark.parametrize(
    "stages, rate, match",
    [
        ([{"mel": {"hop": 512}}, {"frames": {"hop_ms": 10}}], 16000,
         r"'frames': key 'hop_ms': is 0.312 samples at the input rate 31.25 Hz"),
        ([{"frames": {"stat": "max", "window": "hann"}}], 16000, r"key 'window'.*rectangular"),
        ([{"decimate": {}}], 16000, r"key 'rate_hz': give rate_hz or factor"),
        ([{"decimate": {"rate_hz": 200, "factor": 2}}], 16000, "give rate_hz or factor"),
        ([{"decimate": {"rate_hz": 300}}], 200, "must not exceed the input rate"),
        ([{"decimate": {"rate_hz": 199.99}}], 44100, "at most 4096 in lowest terms"),
    ],
)  # fmt: skip
def test_impossible_parameters_name_stage_and_key(stages, rate, match):
    with pytest.raises(ChainSpecError, match=match) as info:
        load_chain(stages, rate)
    assert info.value.exit_code == 2


def test_presets_at_frame_rates():
    for name, rate in (("modulation-frames", 100.0), ("king2019-frames", 100.0)):
        spec = load_spec(name)
        chain = load_chain(spec, 16000)
        assert chain.output_rate == rate
        y = chain(torch.from_numpy(0.1 * unit_noise(1, 4000, seed=9)).float())
        assert y.shape[-1] == 25 and torch.isfinite(y).all()
