"""Compressor, limiter and gate against analytic expectations: the static curve of Giannoulis,
Massberg & Reiss (2012) written out here independently, one-pole time constants, the limiter's
ceiling on loud program material, the gate's range. Streaming equals whole-signal processing
for every detector and link setting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.optimize import brentq

from audiofx_cli.stages.dynamics import Compressor, Gate, Limiter
from tests.conftest import ROOT

RATE = 48000
STATIC_TOLERANCE_DB = 0.5  # the bound, after settling


def static_curve(level_db: float, threshold_db: float, ratio: float, knee_db: float) -> float:
    """Output level (dB) for an input level: hard knee, or the quadratic soft knee."""
    over = level_db - threshold_db
    if knee_db > 0 and abs(over) <= knee_db / 2:
        return level_db + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db)
    return threshold_db + over / ratio if over > 0 else level_db


def sine(amplitude: float, seconds: float = 1.0, freq_hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def chunked(stage, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    state = stage.init_state(x, x.shape[-1])
    outs, start = [], 0
    for size in sizes:
        y, state = stage.step(x[..., start : start + size], state)
        outs.append(y)
        start += size
    tail = stage.flush(state)
    if tail is not None:
        outs.append(tail)
    return torch.cat(outs, dim=-1)


@pytest.mark.parametrize("detector", ["peak", "rms"])
@pytest.mark.parametrize("knee_db", [0.0, 12.0])
def test_compressor_static_curve(detector, knee_db):
    """Steady 1 kHz sines from -50 to +5 dB; the level is the sine's peak (peak detector) or
    RMS (rms detector); the output level over the last 200 ms is the curve plus makeup."""
    threshold, ratio, makeup = -20.0, 4.0, 3.0
    errors = []
    for level in np.arange(-50.0, 5.1, 2.5):
        amplitude = 10 ** (level / 20) * (math.sqrt(2) if detector == "rms" else 1.0)
        stage = Compressor(RATE, threshold, ratio, 5, 100, knee_db, makeup, detector)
        y = stage(torch.from_numpy(sine(amplitude))[None]).numpy()[0, -RATE // 5 :]
        if detector == "peak":
            out = 20 * np.log10(np.abs(y).max())
        else:
            out = 20 * np.log10(np.sqrt(np.mean(y**2)))
        errors.append(out - (static_curve(level, threshold, ratio, knee_db) + makeup))
    assert np.max(np.abs(errors)) <= STATIC_TOLERANCE_DB, np.round(errors, 3)


def _step_reduction(attack_ms: float, release_ms: float) -> tuple[np.ndarray, float, int, int]:
    """Gain reduction (dB) for a constant-level step -40 dB -> -10 dB -> -40 dB (peak detector
    on a DC level: the target is an exact step); threshold -30, ratio 4: 15 dB of reduction."""
    x = np.full(RATE, 10 ** (-40 / 20))
    up, down = RATE // 4, RATE // 2
    x[up:down] = 10 ** (-10 / 20)
    stage = Compressor(RATE, -30, 4, attack_ms, release_ms)
    reduction, _ = stage.gain_reduction_db(torch.from_numpy(x)[None], None)
    return reduction[0], 15.0, up, down


@pytest.mark.parametrize("attack_ms,release_ms", [(1.0, 50.0), (10.0, 80.0), (20.0, 300.0)])
def test_compressor_attack_and_release_time_constants(attack_ms, release_ms):
    """Convention: after a level rise the gain reduction reaches 1 - 1/e of its change after
    attack_ms. After a fall, the held reduction decays with release_ms and the output follows
    it through the attack smoothing: a two-pole decay, r(t) / r0 = (tR e^(-t/tR) -
    tA e^(-t/tA)) / (tR - tA), which reaches 1/e at the time solved below."""
    reduction, full, up, down = _step_reduction(attack_ms, release_ms)
    attack = (np.argmax(reduction[up:] >= full * (1 - 1 / math.e)) + 1) / RATE * 1000
    assert attack == pytest.approx(attack_ms, rel=0.02, abs=0.03)
    assert reduction[down - 1] == pytest.approx(full, abs=1e-3)  # settled
    release = (np.argmax(reduction[down:] <= full / math.e) + 1) / RATE * 1000
    ta, tr = attack_ms / 1000, release_ms / 1000
    expected = brentq(
        lambda t: (tr * math.exp(-t / tr) - ta * math.exp(-t / ta)) / (tr - ta) - 1 / math.e,
        1e-6,
        10.0,
    )
    assert release == pytest.approx(expected * 1000, rel=0.02)


def test_compressor_below_threshold_is_transparent_and_link_matters():
    rng = np.random.default_rng(1)
    quiet = 0.01 * rng.standard_normal((2, 4800))
    stage = Compressor(RATE, threshold_db=-20)
    np.testing.assert_allclose(stage(torch.from_numpy(quiet)).numpy(), quiet, atol=1e-12)
    # a loud left channel: linked, the right channel is turned down too; unlinked, it is not
    x = np.stack([sine(1.0, 0.5), sine(0.01, 0.5)])
    linked = Compressor(RATE, -20, 4, link=True)(torch.from_numpy(x)).numpy()
    alone = Compressor(RATE, -20, 4, link=False)(torch.from_numpy(x)).numpy()
    tail = slice(-RATE // 10, None)
    assert np.abs(linked[1, tail]).max() == pytest.approx(0.01 * 10 ** (-15 / 20), rel=0.05)
    assert np.abs(alone[1, tail]).max() == pytest.approx(0.01, rel=1e-6)
    np.testing.assert_allclose(linked[0], alone[0], atol=1e-12)


def loud_program() -> dict[str, np.ndarray]:
    """Noise and speech 20 dB above full scale."""
    speech, rate = sf.read(ROOT / "examples" / "speech.wav", dtype="float64", always_2d=True)
    assert rate == 22050
    gain = 10 ** (20 / 20)
    noise = np.random.default_rng(3).standard_normal((2, 3 * RATE)) * 0.3 * gain
    return {
        "noise": noise,
        "speech": gain * np.stack([speech[:, 0], np.roll(speech[:, 0], 50)]) / np.abs(speech).max(),
    }


@pytest.mark.parametrize("program", ["noise", "speech"])
@pytest.mark.parametrize("link", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_limiter_never_exceeds_the_ceiling(program, link, dtype):
    x = torch.from_numpy(loud_program()[program]).to(dtype)
    ceiling_db = -1.0
    stage = Limiter(RATE, ceiling_db=ceiling_db, release_ms=50, lookahead_ms=5, link=link)
    y = stage(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert float(y.abs().max()) <= 10 ** (ceiling_db / 20)
    # streaming gives the same samples (see also the gain-design test below)
    sizes = [4096] * (x.shape[-1] // 4096 + 1)
    np.testing.assert_allclose(chunked(stage, x, sizes).numpy(), y.numpy(), atol=1e-6)
    assert float(y.abs().max()) > 10 ** ((ceiling_db - 0.5) / 20)  # and it does reach it


def test_limiter_gain_design_alone_respects_the_ceiling():
    """The clamp in Limiter.step only absorbs float rounding: in float64, |y| exceeds the
    ceiling by at most a few ulp before it."""
    x = torch.from_numpy(loud_program()["noise"])
    stage = Limiter(RATE, ceiling_db=-3.0, lookahead_ms=2)
    stage._ceiling_in = lambda dtype: math.inf  # type: ignore[method-assign]
    y = stage(x)
    assert float(y.abs().max()) <= 10 ** (-3 / 20) * (1 + 1e-12)


def test_limiter_output_is_aligned_with_the_input():
    """A quiet signal passes unchanged (no delay); a single loud click is turned down at its
    own position, and the gain ramps down over the look-ahead before it."""
    rng = np.random.default_rng(4)
    quiet = 0.01 * rng.standard_normal((2, 5000))
    stage = Limiter(RATE, ceiling_db=-6, lookahead_ms=5)
    np.testing.assert_array_equal(stage(torch.from_numpy(quiet)).numpy(), quiet)
    x = np.full((1, 5000), 0.1)
    x[0, 3000] = 2.0
    y = stage(torch.from_numpy(x)).numpy()[0]
    assert y[3000] == pytest.approx(10 ** (-6 / 20), rel=1e-9)
    lookahead = stage.latency
    assert np.all(np.diff(y[3000 - lookahead : 3000]) <= 1e-12)  # ramps down before the click
    assert y[3000 - lookahead - 1] == pytest.approx(0.1, rel=1e-9)  # untouched before the ramp
    assert np.all(y[3001:] < 0.1)  # then releases slowly
    assert y[-1] > y[3001 + lookahead]


@pytest.mark.parametrize("length", [0, 1, 100, 239, 240, 241, 5000])
def test_limiter_keeps_the_length(length):
    x = torch.from_numpy(np.random.default_rng(length).standard_normal((2, length)) * 3)
    stage = Limiter(RATE, lookahead_ms=5)  # 240 samples of look-ahead
    assert stage(x).shape == x.shape
    sizes = [7] * (length // 7 + 1)
    assert chunked(stage, x, sizes).shape == x.shape


def test_gate_attenuates_below_threshold_by_range_and_passes_above():
    loud, quiet = sine(10 ** (-10 / 20), 0.5), sine(10 ** (-60 / 20), 0.5)
    x = np.concatenate([quiet, loud, quiet])[None]
    stage = Gate(RATE, threshold_db=-40, range_db=30, attack_ms=1, hold_ms=10, release_ms=20)
    y = stage(torch.from_numpy(x)).numpy()[0]
    half = RATE // 2

    def level(segment):
        return 20 * np.log10(np.sqrt(np.mean(segment**2)))

    assert level(y[half // 2 : half]) - level(x[0, half // 2 : half]) == pytest.approx(-30, abs=0.1)
    assert level(y[half + half // 2 : 2 * half]) == pytest.approx(level(loud), abs=0.01)
    assert level(y[-half // 2 :]) - level(quiet) == pytest.approx(-30, abs=0.1)


def test_gate_hold_and_release_times():
    """A burst then silence: the gain stays at 0 dB for hold_ms after the level falls below
    threshold (peak detector: exactly at the last loud sample), then closes with the release
    time constant: 63 % of the way to -range_db after release_ms."""
    x = np.zeros(RATE)
    x[: RATE // 10] = 0.5
    stage = Gate(RATE, -20, range_db=60, attack_ms=0, hold_ms=20, release_ms=30, detector="peak")
    y = stage(torch.from_numpy(x)[None]).numpy()[0]
    assert y[0] == 0.5  # attack 0: opens at once
    last_loud = RATE // 10 - 1
    hold = int(0.020 * RATE)
    probe = x.copy()
    probe[last_loud + 1 :] = 0.01  # below threshold, but a measurable gain
    g = stage(torch.from_numpy(probe)[None]).numpy()[0] / probe
    assert np.all(g[: last_loud + hold + 1] == 1.0)
    atten = -20 * np.log10(g[last_loud + hold + 1 :])
    t63 = (np.argmax(atten >= 60 * (1 - 1 / math.e)) + 1) / RATE * 1000
    assert t63 == pytest.approx(30, rel=0.02)


def test_gate_as_downward_expander():
    """ratio 2: 10 dB below the threshold gives 10 dB more attenuation; never beyond range."""
    stage = Gate(RATE, threshold_db=-30, range_db=25, ratio=2, attack_ms=1, hold_ms=0,
                 release_ms=5, detector="rms")  # fmt: skip
    for level, expected in ((-40, -10), (-45, -15), (-80, -25), (-20, 0)):
        x = sine(10 ** (level / 20) * math.sqrt(2), 0.5)
        y = stage(torch.from_numpy(x)[None]).numpy()[0, -RATE // 10 :]
        out = 20 * np.log10(np.sqrt(np.mean(y**2)))
        assert out - level == pytest.approx(expected, abs=0.5), level


@pytest.mark.parametrize(
    "stage",
    [
        Compressor(RATE, -30, 3, 2, 40, 6, 2, "rms", 5, True),
        Compressor(RATE, -30, 3, 2, 40, 0, 0, "peak", 10, False),
        Gate(RATE, -25, 50, None, 1, 5, 20, "rms", 3, False),
        Gate(RATE, -25, 50, 3.0, 1, 5, 20, "peak", 10, True),
        Limiter(RATE, -6, 10, 3, False),
    ],
    ids=["comp-rms-linked", "comp-peak-unlinked", "gate-rms", "expander-peak", "limiter"],
)
def test_streaming_equals_whole_on_program_material(stage):
    x = torch.from_numpy(loud_program()["speech"][:, : RATE * 2] / 10)
    whole = stage(x)
    for sizes in ([1] * 100 + [x.shape[-1]], [4801] * 21, [0, 13, 9000, 0, 100_000]):
        np.testing.assert_allclose(chunked(stage, x, sizes).numpy(), whole.numpy(), atol=1e-9)


YAML_CHAIN = """\
stages:
  - gate: {threshold_db: -60, range_db: 20}
  - compressor: {threshold_db: -24, ratio: 3, knee_db: 6, makeup_db: 4, detector: rms}
  - distortion: {drive_db: 3, mix: 0.2}
  - bitcrush: {bits: 16}
  - fade: {in_s: 0.1, out_s: 0.5, shape: cosine}
  - normalize: {mode: lufs, target_db: -16}
  - limiter: {ceiling_db: -1, lookahead_ms: 5}
"""


def test_new_stages_run_from_a_yaml_chain_through_audiofx_process(tmp_path, runner, speech_file):
    from audiofx_cli.cli.main import app

    chain = tmp_path / "master.yaml"
    chain.write_text(YAML_CHAIN)
    out = tmp_path / "out.wav"
    result = runner.invoke(
        app,
        ["process", str(speech_file), "-c", str(chain), "-o", str(out), "--chunk-seconds", "0.3"],
    )
    assert result.exit_code == 0, result.output
    y, rate = sf.read(out, always_2d=True)
    assert y.shape[0] == sf.info(speech_file).frames
    assert np.abs(y).max() <= 10 ** (-1 / 20) + 2**-15  # the ceiling, plus at most 1 LSB dither
    assert np.abs(y[-50:]).max() <= 2 * 2**-15  # faded out to the last sample
