"""Modulation filterbanks against AMT: centre-frequency lists (hand-computed values from AMT's
formulas), efilt responses against the analytic complex one-pole, whole-stage outputs against
a float64 reference written from AMT modfilterbank.m / king2019_modfilterbank.m with
scipy.signal.lfilter (complex coefficients for efilt), AM test tones peaking in the right
channel, and the streaming FIR Hilbert mode against the whole-signal one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from audiofx_cli import load_chain
from audiofx_cli.dsp.modfilter import king2019_mfc, modfilterbank_mfc
from audiofx_cli.errors import UsageError
from tests.conftest import unit_noise
from tests.test_stage_contract import chunked

FS = 16000
Q150 = [0, 5, 10, 16.67, 27.78, 46.30, 77.16, 128.60]
DAU1000 = [*Q150, 214.33, 357.22, 595.37, 992.29]


def run(stages, x, rate=FS, dtype=torch.float64):
    return load_chain(stages, rate, dtype=dtype)(torch.from_numpy(x).to(dtype)).double().numpy()


def rel_err(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def test_centre_frequencies_q2():
    assert np.round(modfilterbank_mfc(150.0, 2.0), 2).tolist() == Q150
    assert np.round(modfilterbank_mfc(1000.0, 2.0), 2).tolist() == DAU1000


def test_dau1997_preset_gives_twelve_filters_for_every_channel():
    stage = load_chain([{"modulation_filterbank": {"preset": "dau1997", "fc_hz": [100, 8000]}}], FS)
    assert stage[0].design.counts.tolist() == [12, 12]
    np.testing.assert_allclose(stage[0].mfc_hz.numpy()[0], DAU1000, atol=0.005)


def test_jepsen2008_counts_per_auditory_channel():
    fc = [100, 250, 500, 1000, 2000, 4000, 8000]
    stage = load_chain([{"modulation_filterbank": {"preset": "jepsen2008", "fc_hz": fc}}], 32000)
    assert stage[0].design.counts.tolist() == [4, 6, 7, 9, 10, 12, 12]


def test_king2019_centre_frequencies():
    assert np.round(king2019_mfc(), 2).tolist() == [2.0, 5.24, 13.71, 35.89, 93.96]
    np.testing.assert_allclose(king2019_mfc(2, 150, 1, n_mod=4), np.geomspace(2, 150, 4))


def efilt(mfc: float, fs: float, q: float = 2.0):
    """AMT efilt(w0, bw): b = 1 - e0, a = [1, -e0 exp(i w0)]."""
    w0 = 2 * np.pi * mfc / fs
    bw = 2 * np.pi * 5 / fs if mfc < 10 else w0 / q
    e0 = np.exp(-bw / 2)
    return np.array([1 - e0]), np.array([1, -e0 * np.exp(1j * w0)])


def test_efilt_designs_unit_gain_at_centre_and_analytic_dc():
    stage = load_chain([{"modulation_filterbank": {"preset": "dau1997"}}], FS)[0]
    d = stage.design
    for f in range(1, d.mfc_unique.size):
        mfc = d.mfc_unique[f]
        b, a = efilt(mfc, FS)
        w0 = 2 * np.pi * mfc / FS
        ours = d.gain[f] / (1 - d.pole[f] * np.exp(-1j * np.array([w0, 0.0])))
        _, ref = signal.freqz(b, a, worN=[w0, 0.0])
        np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-12)
        assert abs(ours[0]) == pytest.approx(1.0, abs=1e-12)


def amt_modfilterbank(x, fs, fc, q=2.0, upper=True, lp150=True, att=1 / math.sqrt(2), top=1000):
    """AMT modfilterbank.m for one channel, scipy.signal.lfilter in float64."""
    umf = min(0.25 * fc, top) if upper else top
    mfc = modfilterbank_mfc(umf, q)
    if lp150:
        x = signal.lfilter(*signal.butter(1, 150 / (fs / 2)), x)
    out = [signal.lfilter(*signal.butter(2, 2.5 / (fs / 2)), x)]
    for m in mfc[1:]:
        y = 2 * signal.lfilter(*efilt(m, fs, q), x)
        out.append(np.real(y) if m <= 10 else att * np.abs(y))
    return np.stack(out)


@pytest.mark.parametrize("preset", ["dau1997", "verhey1999", "jepsen2008"])
def test_modulation_filterbank_matches_amt_reference(preset):
    fc = [250.0, 1000.0, 4000.0]
    x = np.abs(unit_noise(3, 8000, seed=7))
    y = run([{"modulation_filterbank": {"preset": preset, "fc_hz": fc}}], x)
    upper, lp150, att = {
        "dau1997": (False, False, 1.0),
        "verhey1999": (True, False, 1.0),
        "jepsen2008": (True, True, 1 / math.sqrt(2)),
    }[preset]
    for c, f in enumerate(fc):
        ref = amt_modfilterbank(x[c], FS, f, upper=upper, lp150=lp150, att=att)
        assert rel_err(y[c, : ref.shape[0]], ref) < 1e-6
        assert not y[c, ref.shape[0] :].any()  # padding is zero


def test_modulation_filterbank_float32_close_to_float64():
    x = np.abs(unit_noise(1, 8000, seed=8))
    stages = [{"modulation_filterbank": {"preset": "dau1997"}}]
    y64 = run(stages, x)
    y32 = run(stages, x.astype(np.float32).astype(np.float64), dtype=torch.float32)
    assert rel_err(y32, y64) < 1e-5


def test_butterworth_variant_matches_scipy_sosfilt():
    x = unit_noise(1, 6000, seed=9)
    y = run([{"modulation_filterbank": {"preset": "dau1997", "filter_type": "butterworth"}}], x)
    np.testing.assert_allclose(
        y[0, 0], signal.sosfilt(signal.butter(2, 2.5, fs=FS, output="sos"), x[0]), atol=1e-12
    )
    for m, mfc in enumerate(DAU1000[1:], start=1):
        exact = modfilterbank_mfc(1000.0)[m]
        width = 5.0 if exact < 10 else exact / 2
        sos = signal.butter(
            2, [exact - width / 2, exact + width / 2], "bandpass", fs=FS, output="sos"
        )
        assert rel_err(y[0, m], 2 * signal.sosfilt(sos, x[0])) < 1e-9, mfc


def test_dc_and_tone_responses_of_the_stage():
    """Steady state for DC and for a cosine at each mfc, against the analytic efilt response."""
    n = 3 * FS
    stage = [{"modulation_filterbank": {"preset": "dau1997"}}]
    dc = run(stage, np.ones((1, n)))[0, :, -1]
    assert dc[0] == pytest.approx(1.0, abs=1e-6)  # 2.5 Hz Butterworth low-pass: unit DC gain
    for m, mfc in enumerate(modfilterbank_mfc(1000.0)[1:], start=1):
        b, a = efilt(mfc, FS)
        h0 = signal.freqz(b, a, worN=[0.0])[1][0]
        expected = 2 * h0.real if mfc <= 10 else 2 * abs(h0)
        assert dc[m] == pytest.approx(expected, rel=1e-4, abs=1e-9)
        t = np.arange(n) / FS
        y = run(stage, np.cos(2 * np.pi * mfc * t)[None])[0, m]
        _, (hp, hn) = signal.freqz(b, a, worN=[2 * np.pi * mfc / FS, -2 * np.pi * mfc / FS])
        last = y[-FS:]
        if mfc <= 10:  # 2 Re(y): amplitude |H(f) + conj(H(-f))|
            assert np.max(np.abs(last)) == pytest.approx(abs(hp + np.conj(hn)), rel=2e-3)
        else:  # |2y| = |H(f) + H(-f) e^{-2i w t}|: mean over a period, numerically
            phase = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
            assert np.mean(last) == pytest.approx(
                np.mean(np.abs(hp + hn * np.exp(1j * phase))), rel=2e-3
            )


def test_am_tone_peaks_in_the_right_modulation_channel():
    t = np.arange(2 * FS) / FS
    chain = [
        {"gammatone": {"flow_hz": 80, "fhigh_hz": 8000, "base_hz": 1000}},
        "ihc_envelope",
        {"modulation_filterbank": {"preset": "jepsen2008"}},
    ]
    stage = load_chain(chain, FS)[2]
    band = int(np.argmin(np.abs(stage.fc_hz.numpy() - 1000)))
    mfc = stage.mfc_hz.numpy()[band]
    for fm, expected in ((4.0, 5.0), (32.0, 27.78)):
        x = (1 + 0.8 * np.sin(2 * np.pi * fm * t)) * np.sin(2 * np.pi * 1000 * t)
        y = run(chain, 0.1 * x[None])[0, band, :, FS:]  # last second
        count = stage.design.counts[band]
        level = [
            math.sqrt(2) * np.std(y[m]) if mfc[m] <= 10 else np.mean(y[m]) for m in range(1, count)
        ]
        peak = mfc[1 + int(np.argmax(level))]
        assert peak == pytest.approx(expected, abs=0.01), (
            fm,
            dict(zip(mfc[1:count], level, strict=True)),
        )


def test_fc_from_gammatone_and_from_fc_hz_agree():
    x = unit_noise(1, 4000, seed=10)
    chain = [{"gammatone": {"flow_hz": 100, "fhigh_hz": 4000}}, "ihc_envelope"]
    env = load_chain(chain, FS, dtype=torch.float64)(torch.from_numpy(x))
    fc = load_chain(chain, FS)[0].fc_hz.numpy().tolist()
    joined = run([*chain, "modulation_filterbank"], x)
    direct = run([{"modulation_filterbank": {"fc_hz": fc}}], env[0].numpy())
    np.testing.assert_allclose(joined[0], direct, atol=1e-12)


def test_fc_hz_must_match_the_channel_count():
    chain = load_chain([{"modulation_filterbank": {"fc_hz": [500, 1000, 2000]}}], FS)
    with pytest.raises(UsageError, match="fc_hz"):
        chain(torch.zeros(2, 100))


def amt_king2019(x, fs, mfc, q=1.0, cut=10.0, ba=False):
    """AMT king2019_modfilterbank.m: butter(2, edges) per filter, hilbert, RMS match. AMT runs
    the (b, a) form (ba=True); the same design as sections is the better float64 reference
    (the 2 Hz band's (b, a) form loses ~1e-5 relative at 16 kHz)."""
    out = []
    for f in mfc:
        edges = f * math.sqrt(4 + 1 / q**2) / 2 + np.array([-1, 1]) * f / q / 2
        if ba:
            y = signal.lfilter(*signal.butter(2, 2 * edges / fs, "bandpass"), x)
        else:
            y = signal.sosfilt(signal.butter(2, 2 * edges / fs, "bandpass", output="sos"), x)
        if f > cut:
            env = np.abs(signal.hilbert(y))
            y = env * np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(env**2))
        out.append(y)
    return np.stack(out)


def test_king2019_matches_amt_reference():
    x = unit_noise(2, 2 * FS, seed=11)
    y = run([{"king2019_modulation": {}}], x)
    for c in range(2):
        assert rel_err(y[c], amt_king2019(x[c], FS, king2019_mfc())) < 1e-6
        assert rel_err(y[c], amt_king2019(x[c], FS, king2019_mfc(), ba=True)) < 1e-4


def test_king2019_fir_streams_exactly_and_matches_amt_away_from_edges():
    rate = 8000
    x = unit_noise(1, 4 * rate, seed=12)
    stages = [{"king2019_modulation": {"hilbert_method": "fir", "hilbert_ms": 1000}}]
    chain = load_chain(stages, rate, dtype=torch.float64)
    whole = chain(torch.from_numpy(x)).numpy()
    for sizes in ([4000] * 8, [7, 20000, 0, 11993]):
        got = chunked(chain, torch.from_numpy(x), sizes).numpy()
        np.testing.assert_allclose(got, whole, atol=1e-12)
    ref = amt_king2019(x[0], rate, king2019_mfc())
    middle = slice(rate, 3 * rate)  # away from the first and last second
    for m in range(2, 5):  # the Hilbert bands (13.71, 35.89, 93.96 Hz)
        err = np.max(np.abs(whole[0, m, middle] - ref[m, middle])) / np.sqrt(np.mean(ref[m] ** 2))
        assert err < 5e-3, (m, err)  # measured 2e-3, 8e-5, 1e-4 (docs/features.md)


def test_king2019_none_is_the_plain_band_passes():
    x = unit_noise(1, FS, seed=13)
    y = run([{"king2019_modulation": {"phase_insensitive": "none"}}], x)
    assert rel_err(y[0], amt_king2019(x[0], FS, king2019_mfc(), cut=1e9)) < 1e-6


def test_one_fc_or_none_applies_to_every_channel():
    x = np.abs(unit_noise(3, 2000, seed=14))
    one = run([{"modulation_filterbank": {"preset": "jepsen2008", "fc_hz": [1000]}}], x)
    for c in range(3):
        ref = amt_modfilterbank(x[c], FS, 1000.0)
        assert rel_err(one[c, : ref.shape[0]], ref) < 1e-6
    # no fc at all (AMT: fs / 2), on a (batch, bands, time) input
    y = run([{"modulation_filterbank": {"preset": "dau1997"}}], x.reshape(1, 3, 2000))
    assert y.shape == (1, 3, 12, 2000)
    ref = amt_modfilterbank(x[1], FS, FS / 2, upper=False, lp150=False, att=1.0)
    assert rel_err(y[0, 1], ref) < 1e-6
