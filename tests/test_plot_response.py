"""The data behind `audiofx plot CHAIN`, checked against scipy.signal in float64.

References are designed here, independently of audiofx's design code (scipy's butter/cheby1/
firwin, the RBJ cookbook formulas written out), and evaluated with scipy.signal.freqz_sos /
freqz / group_delay / sosfilt / lfilter. Tolerances: complex responses within 1e-9 relative,
group delay within 1e-6 samples or 1e-7 relative (near a notch,
scipy's own evaluation is good to about 2e-8), impulse responses within 1e-12 (all float64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from audiofx_cli.plot import lti
from audiofx_cli.plot.dynamics import compressor_curve, gate_curve, limiter_curve
from audiofx_cli.plot.response import chain_response

RATE = 48000
FREQS = np.array([20.0, 63.0, 250.0, 997.0, 1000.0, 3000.0, 8000.0, 15000.0, 23900.0])


def rbj(kind: str, f0: float, q: float, gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """RBJ Audio EQ Cookbook biquads, written out from the cookbook (b, a)."""
    big_a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / RATE
    cw, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peaking":
        b = [1 + alpha * big_a, -2 * cw, 1 - alpha * big_a]
        a = [1 + alpha / big_a, -2 * cw, 1 - alpha / big_a]
    elif kind == "notch":
        b, a = [1, -2 * cw, 1], [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "allpass":
        b, a = [1 - alpha, -2 * cw, 1 + alpha], [1 + alpha, -2 * cw, 1 - alpha]
    elif kind in ("lowshelf", "highshelf"):
        s = 1 if kind == "lowshelf" else -1
        root = 2 * math.sqrt(big_a) * alpha
        b = [
            big_a * ((big_a + 1) - s * (big_a - 1) * cw + root),
            s * 2 * big_a * ((big_a - 1) - s * (big_a + 1) * cw),
            big_a * ((big_a + 1) - s * (big_a - 1) * cw - root),
        ]
        a = [
            (big_a + 1) + s * (big_a - 1) * cw + root,
            -s * 2 * ((big_a - 1) + s * (big_a + 1) * cw),
            (big_a + 1) + s * (big_a - 1) * cw - root,
        ]
    else:
        raise ValueError(kind)
    return np.array(b, float), np.array(a, float)


def freqz_ba(b: np.ndarray, a: np.ndarray, freqs: np.ndarray = FREQS) -> np.ndarray:
    return signal.freqz(b, a, worN=freqs, fs=RATE)[1]


def close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-9) -> None:
    err = np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-12))
    assert err < rtol, f"max relative error {err:.3g} (tolerance {rtol:g})"


def test_iir_designs_match_freqz_sos_per_stage_and_in_total():
    chain = [
        {"highpass": {"cutoff_hz": 120, "order": 4}},
        {"lowpass": {"cutoff_hz": 6000, "order": 3, "type": "chebyshev1", "ripple_db": 0.5}},
        {"bandstop": {"low_hz": 900, "high_hz": 1100, "order": 2, "type": "elliptic"}},
    ]
    refs = [
        signal.butter(4, 120, "highpass", fs=RATE, output="sos"),
        signal.cheby1(3, 0.5, 6000, "lowpass", fs=RATE, output="sos"),
        signal.ellip(2, 1.0, 40.0, [900, 1100], "bandstop", fs=RATE, output="sos"),
    ]
    resp = chain_response(chain, RATE, freqs_hz=FREQS)
    total = np.ones(FREQS.size, complex)
    for stage, sos in zip(resp.stages, refs, strict=True):
        h = signal.freqz_sos(sos, worN=FREQS, fs=RATE)[1]
        close(stage.h, h)
        total *= h
    close(resp.total, total)
    assert [s.index for s in resp.stages] == [1, 2, 3]  # one entry per YAML stage (unfused)


@pytest.mark.parametrize(
    "kind, params",
    [
        ("peaking", {"freq_hz": 3000, "gain_db": 4.5, "q": 1.3}),
        ("lowshelf", {"freq_hz": 200, "gain_db": -6, "q": 0.7071}),
        ("highshelf", {"freq_hz": 7000, "gain_db": 3, "q": 0.9}),
        ("notch", {"freq_hz": 1000, "q": 10}),
        ("allpass", {"freq_hz": 2500, "q": 0.7071}),
    ],
)
def test_rbj_biquads_match_cookbook(kind, params):
    b, a = rbj(kind, params["freq_hz"], params["q"], params.get("gain_db", 0.0))
    freqs = FREQS[FREQS != 1000.0] if kind == "notch" else FREQS  # exact zero at the notch
    resp = chain_response([{kind: params}], RATE, freqs_hz=freqs)
    close(resp.total, freqz_ba(b, a, freqs))
    tau = signal.group_delay((b, a), w=freqs, fs=RATE)[1]
    np.testing.assert_allclose(resp.total_group_delay_s * RATE, tau, atol=1e-6, rtol=1e-7)


@pytest.mark.parametrize("compensate", [True, False])
def test_fir_with_and_without_delay_compensation(compensate):
    taps = signal.firwin(101, 2000, fs=RATE)
    chain = [{"fir": {"cutoff_hz": 2000, "taps": 101, "compensate_delay": compensate}}]
    resp = chain_response(chain, RATE, freqs_hz=FREQS)
    h = freqz_ba(taps, [1.0])
    shift = 50 if compensate else 0
    close(resp.total, h * np.exp(2j * np.pi * FREQS / RATE * shift))
    tau = signal.group_delay((taps, [1.0]), w=FREQS[FREQS < 3000], fs=RATE)[1] - shift
    passband = FREQS < 3000
    np.testing.assert_allclose(resp.total_group_delay_s[passband] * RATE, tau, atol=1e-6)
    # the impulse response is what the stage outputs: taps centred on 0 when compensated
    t = np.round(resp.impulse_t_s * RATE).astype(int)
    start = int(np.flatnonzero(t == -shift)[0])
    np.testing.assert_allclose(resp.impulse[start : start + 101], taps, atol=1e-12)
    assert np.all(resp.impulse[:start] == 0)


def test_gain_and_parallel_branches_sum_as_complex_responses():
    chain = [
        {"gain": {"gain_db": -6}},
        {
            "parallel": {
                "branches": [
                    [{"highpass": {"cutoff_hz": 2000}}],
                    [{"lowpass": {"cutoff_hz": 500, "type": "chebyshev1"}}, "invert"],
                ],
                "weights": [1.0, 0.5],
            }
        },
    ]
    hp = signal.butter(2, 2000, "highpass", fs=RATE, output="sos")
    lp = signal.cheby1(2, 1.0, 500, "lowpass", fs=RATE, output="sos")
    gain = 10 ** (-6 / 20)
    par = (
        signal.freqz_sos(hp, worN=FREQS, fs=RATE)[1]
        - 0.5 * signal.freqz_sos(lp, worN=FREQS, fs=RATE)[1]
    )
    resp = chain_response(chain, RATE, freqs_hz=FREQS)
    close(resp.stages[0].h, np.full(FREQS.size, gain, complex))
    close(resp.stages[1].h, par)
    close(resp.total, gain * par)
    # group delay of the sum against scipy on the combined rational function
    (b1, a1), (b2, a2) = signal.sos2tf(hp), signal.sos2tf(lp)
    b = np.polyadd(np.polymul(b1, a2), -0.5 * np.polymul(b2, a1))
    a = np.polymul(a1, a2)
    tau = signal.group_delay((b, a), w=FREQS, fs=RATE)[1]
    # rtol 1e-6: scipy's 4th-order polynomial form loses ~2e-7 near DC (see the mpmath test)
    np.testing.assert_allclose(resp.total_group_delay_s * RATE, tau, atol=1e-6, rtol=1e-6)
    # impulse response against lfilter of an impulse
    assert resp.impulse_t_s[0] == 0 and resp.impulse.size > 400
    delta = np.zeros(resp.impulse.size)
    delta[0] = 1.0
    ref = gain * signal.lfilter(b, a, delta)
    np.testing.assert_allclose(resp.impulse, ref, atol=1e-12)


def test_parallel_with_compensated_fir_branch_aligns_the_impulse():
    chain = [
        {
            "parallel": {
                "branches": [
                    [{"fir": {"cutoff_hz": 3000, "taps": 31}}],
                    [{"biquad_lowpass": {"freq_hz": 800}}],
                ]
            }
        }
    ]
    taps = signal.firwin(31, 3000, fs=RATE)
    b, a = signal.butter(2, 800, fs=RATE)  # RBJ low-pass with Q 1/sqrt(2) is this Butterworth
    resp = chain_response(chain, RATE)
    n = resp.impulse.size - 15
    assert n > 200  # the IIR branch has decayed by then (checked below)
    ref = np.zeros(n + 15)
    ref[:31] += taps  # starts 15 samples before the impulse
    delta = np.zeros(n)
    delta[0] = 1
    ref[15:] += signal.lfilter(b, a, delta)
    assert round(resp.impulse_t_s[0] * RATE) == -15
    np.testing.assert_allclose(resp.impulse, ref, atol=1e-6)  # atol: Q is 0.7071, not 1/sqrt(2)
    assert np.max(np.abs(ref[-20:])) < 1e-4 * np.max(np.abs(ref))


def test_impulse_response_of_iir_cascade_matches_sosfilt():
    chain = [
        {"highpass": {"cutoff_hz": 80, "order": 2}},
        {"peaking": {"freq_hz": 3000, "gain_db": 3}},
    ]
    sos = np.vstack(
        [
            signal.butter(2, 80, "highpass", fs=RATE, output="sos"),
            signal.tf2sos(*rbj("peaking", 3000, 1.0, 3.0)),
        ]
    )
    resp = chain_response(chain, RATE)
    delta = np.zeros(resp.impulse.size)
    delta[0] = 1.0
    assert resp.impulse_t_s[0] == 0
    np.testing.assert_allclose(resp.impulse, signal.sosfilt(sos, delta), atol=1e-12)
    # long enough: the tail has decayed below -80 dB of the peak
    assert np.max(np.abs(resp.impulse[-100:])) < 1e-4 * np.max(np.abs(resp.impulse))


def test_unwrapped_phase_follows_a_long_delay_on_the_log_grid():
    """2001 taps uncompensated: phase is -w * 1000 exactly in the pass band; unwrapping the
    plot's log-spaced grid naively gets it wrong, the group-delay-guided unwrapping does not."""
    chain = [{"fir": {"cutoff_hz": 12000, "taps": 2001, "compensate_delay": False}}]
    resp = chain_response(chain, RATE)
    w = 2 * np.pi * resp.freqs_hz / RATE
    passband = resp.freqs_hz < 11000
    np.testing.assert_allclose(resp.phase_rad[passband], -1000 * w[passband], atol=1e-6)
    naive = np.unwrap(np.angle(resp.total))
    assert not np.allclose(naive[passband], -1000 * w[passband], atol=1e-3)


def test_stage_phases_add_up_to_the_total_phase():
    chain = [{"fir": {"cutoff_hz": 2000, "taps": 101}}, {"highpass": {"cutoff_hz": 300}}]
    resp = chain_response(chain, RATE)
    w = 2 * np.pi * resp.freqs_hz / RATE
    parts = [lti.unwrap_phase(s.h, s.group_delay_s * RATE, w) for s in resp.stages]
    wrapped = np.angle(np.exp(1j * (sum(parts) - resp.phase_rad)))
    np.testing.assert_allclose(wrapped, 0, atol=1e-6)


def test_non_linear_stages_are_named_not_shown_and_left_out_of_the_total():
    chain = [
        {"gain": {"gain_db": -6}},
        {"module": {"name": "torch.nn.Tanh"}},
        {"compressor": {"threshold_db": -20, "ratio": 4, "knee_db": 6, "makeup_db": 2}},
    ]
    resp = chain_response(chain, RATE, freqs_hz=FREQS)
    assert [s.shown for s in resp.stages] == [True, False, False]
    assert resp.stages[1].reason == "not a linear filter"
    assert "static curve" in resp.stages[2].reason
    close(resp.total, np.full(FREQS.size, 10 ** (-6 / 20), complex))
    (curve,) = resp.static_curves
    levels = np.array([-40.0, -23.0, -20.0, -17.0, 0.0])
    idx = [int(np.argmin(np.abs(curve.input_db - x))) for x in levels]
    np.testing.assert_allclose(curve.input_db[idx], levels)
    # by hand (T -20, R 4, W 6): below the knee y = x; in the knee y = x - 0.75 (x + 23)^2 / 12
    # (-23 -> -23, -20 -> -20.5625, -17 -> -19.25); above y = T + (x - T) / 4; make-up +2 dB
    expected = np.array([-40.0, -23.0, -20.5625, -19.25, -15.0])
    np.testing.assert_allclose(curve.output_db[idx], expected + 2, atol=1e-12)


def test_static_curves_of_limiter_and_gate():
    x = np.array([-80.0, -50.0, -40.0, -10.0, -1.0, 3.0])
    np.testing.assert_allclose(limiter_curve(x, -3.0), [-80, -50, -40, -10, -3, -3])
    np.testing.assert_allclose(gate_curve(x, -45.0, 30.0), [-110, -80, -40, -10, -1, 3])
    # expander ratio 2: 1 dB more attenuation per dB below the threshold, at most range_db
    np.testing.assert_allclose(gate_curve(x, -45.0, 20.0, ratio=2.0), [-100, -55, -40, -10, -1, 3])
    np.testing.assert_allclose(compressor_curve(x, -10.0, 2.0), [-80, -50, -40, -10, -5.5, -3.5])


def test_sample_rate_changes_the_response():
    resp_48 = chain_response([{"lowpass": {"cutoff_hz": 5000}}], 48000, freqs_hz=FREQS[:6])
    resp_16 = chain_response([{"lowpass": {"cutoff_hz": 5000}}], 16000, freqs_hz=FREQS[:6])
    sos = signal.butter(2, 5000, fs=16000, output="sos")
    close(resp_16.total, signal.freqz_sos(sos, worN=FREQS[:6], fs=16000)[1])
    assert not np.allclose(resp_48.total, resp_16.total)
    assert resp_16.freqs_hz[-1] == 3000.0
    default = chain_response([{"lowpass": {"cutoff_hz": 5000}}], 16000)
    assert default.freqs_hz[0] == 10.0 and default.freqs_hz[-1] == pytest.approx(8000.0)


def test_group_delay_of_a_parallel_sum_against_40_digit_arithmetic():
    """-d(arg H)/dw by mpmath's numerical differentiation at 40 digits, H from the sections."""
    mp = pytest.importorskip("mpmath")  # installed with torch (sympy)
    hp = signal.butter(2, 2000, "highpass", fs=RATE, output="sos")
    lp = signal.cheby1(2, 1.0, 500, "lowpass", fs=RATE, output="sos")
    mp.mp.dps = 40

    def cascade(sos, z1):
        h = mp.mpf(1)
        for b0, b1, b2, a0, a1, a2 in sos:
            h *= (b0 + b1 * z1 + b2 * z1**2) / (a0 + a1 * z1 + a2 * z1**2)
        return h

    def phase(w):
        z1 = mp.exp(-1j * w)
        return mp.arg(cascade(hp, z1) + 0.5 * cascade(lp, z1))

    chain = [
        {
            "parallel": {
                "branches": [
                    [{"highpass": {"cutoff_hz": 2000}}],
                    [{"lowpass": {"cutoff_hz": 500, "type": "chebyshev1"}}],
                ],
                "weights": [1.0, 0.5],
            }
        }
    ]
    freqs = np.array([63.0, 700.0, 5000.0])
    resp = chain_response(chain, RATE, freqs_hz=freqs)
    for f, tau in zip(freqs, resp.total_group_delay_s * RATE, strict=True):
        expected = -float(mp.diff(phase, 2 * mp.pi * f / RATE))
        assert tau == pytest.approx(expected, rel=1e-10), f


def test_delay_echo_and_convolve_are_linear_stages_too(tmp_path):
    """As their docstrings define them: delay H = (1-mix) + mix z^-D / (1 - fb z^-D); echo
    (SoX) y = gain_out (gain_in x + sum decay_j x[n - D_j]); convolve y = dry x + wet (h * x)."""
    import soundfile as sf

    ir = np.random.default_rng(5).standard_normal(200) * np.exp(-np.arange(200) / 40)
    sf.write(tmp_path / "ir.wav", ir, RATE, subtype="DOUBLE")
    chain = [
        {"delay": {"time_ms": 3, "feedback": 0.6, "mix": 0.4}},
        {"echo": {"delays_ms": [2, 5], "decays": [0.5, 0.25], "gain_in": 0.8, "gain_out": 0.9}},
        {"convolve": {"ir": str(tmp_path / "ir.wav"), "wet": 0.5, "dry": 0.5}},
    ]
    d = 144  # 3 ms at 48 kHz
    b_delay = np.zeros(d + 1)
    b_delay[0], b_delay[d] = 0.6, 0.4 - 0.6 * 0.6
    a_delay = np.zeros(d + 1)
    a_delay[0], a_delay[d] = 1.0, -0.6
    echo = np.zeros(241)
    echo[0], echo[96], echo[240] = 0.9 * 0.8, 0.9 * 0.5, 0.9 * 0.25
    conv = 0.5 * ir
    conv[0] += 0.5
    freqs = FREQS[:-1]
    resp = chain_response(chain, RATE, freqs_hz=freqs)
    assert all(s.shown for s in resp.stages)
    refs = [freqz_ba(b_delay, a_delay, freqs), freqz_ba(echo, [1.0], freqs)]
    refs.append(freqz_ba(conv, [1.0], freqs))
    for stage, ref in zip(resp.stages, refs, strict=True):
        close(stage.h, ref, rtol=1e-8)
    tau = signal.group_delay((b_delay, a_delay), w=freqs, fs=RATE)[1]
    np.testing.assert_allclose(resp.stages[0].group_delay_s * RATE, tau, atol=1e-6, rtol=1e-6)
    delta = np.zeros(resp.impulse.size)
    delta[0] = 1.0
    ref = signal.lfilter(b_delay, a_delay, np.convolve(np.convolve(delta, echo), conv))
    np.testing.assert_allclose(resp.impulse, ref[: delta.size], atol=1e-12)
    assert resp.impulse.size > 20 * d  # the feedback echoes have decayed (0.6^k < 1e-5)


def test_stages_declaring_a_linear_operator_are_read_through_it():
    """A fused chain's FusedLTI stage is known to the plot only by its linear_operator()."""
    from audiofx_cli import load_chain
    from audiofx_cli.plot.response import element_of

    chain = [
        {"highpass": {"cutoff_hz": 90, "order": 3}},
        {"fir": {"cutoff_hz": 5000, "taps": 63}},
        {"gain": {"gain_db": 4}},
        {"peaking": {"freq_hz": 2000, "gain_db": -3}},
    ]
    fused = load_chain(chain, RATE, fuse=True)
    assert len(fused) < len(chain)
    w = 2 * np.pi * FREQS / RATE
    total = np.ones(FREQS.size, complex)
    for module in fused:
        element = element_of(module)
        assert element is not None, module
        total *= element.response(w)[0]
    close(total, chain_response(chain, RATE, freqs_hz=FREQS).total, rtol=1e-9)
