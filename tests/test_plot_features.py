"""Reading feature files for plotting: axes by name or by length, ragged padding, units."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiofx_cli.errors import AudioReadError, UsageError
from audiofx_cli.plot.features import display_values, load_feature_file, time_summary

MFC = np.array([0.0, 5.0, 10.0, 16.67, 27.78, 46.30])


def modulation_file(path, with_dims: bool) -> tuple[np.ndarray, np.ndarray]:
    """(channel 2, fc 5, mfc 6, time 50), mfc padded with NaN per fc, data 0 where padded."""
    fc = np.array([100.0, 250.0, 600.0, 1500.0, 4000.0])
    counts = np.array([3, 4, 5, 6, 6])
    mfc = np.full((5, 6), np.nan)
    for i, c in enumerate(counts):
        mfc[i, :c] = MFC[:c]
    rng = np.random.default_rng(0)
    data = rng.standard_normal((2, 5, 6, 50)).astype(np.float32)
    for i, c in enumerate(counts):
        data[:, i, c:, :] = 0.0
    extra = {"dims": json.dumps(["channel", "fc_hz", "mfc_hz", "time_s"])} if with_dims else {}
    np.savez(
        path,
        data=data,
        channel=np.arange(2),
        fc_hz=fc,
        mfc_hz=mfc,
        counts=counts,
        time_s=0.01 * np.arange(50),
        sample_rate=np.float64(16000),
        frame_rate=np.float64(100),
        chain=json.dumps({"name": "modulation-dau1997", "stages": []}),
        **extra,
    )
    return data, counts


@pytest.mark.parametrize("with_dims", [True, False])
def test_modulation_layout_axes_and_padding(tmp_path, with_dims):
    path = tmp_path / "mod.npz"
    data, counts = modulation_file(path, with_dims)
    feats = load_feature_file(path)
    assert [a.name for a in feats.axes] == ["fc_hz", "mfc_hz"]
    np.testing.assert_allclose(feats.axes[1].values, MFC)  # fullest row of the padded table
    assert feats.channels == 2 and feats.data.shape == (5, 6, 50)
    np.testing.assert_allclose(feats.time_s, 0.01 * np.arange(50))
    for i, c in enumerate(counts):
        np.testing.assert_array_equal(feats.data[i, :c], data[0, i, :c])
        assert np.all(np.isnan(feats.data[i, c:]))  # padding is blank, not zero
    assert feats.units == "value"  # signed (real part of the low modulation filters)
    level, label = time_summary(feats)
    rms = np.sqrt(np.mean(data[0].astype(np.float64) ** 2, axis=-1))
    valid = np.arange(6)[None, :] < counts[:, None]
    np.testing.assert_allclose(level[valid], 20 * np.log10(rms[valid]), rtol=1e-6)
    assert np.all(np.isnan(level[~valid])) and label == "RMS over time (dB)"
    assert feats.meta["chain"]["name"] == "modulation-dau1997"


def test_power_spectrogram_in_db_and_frame_rate_time_axis(tmp_path):
    path = tmp_path / "spec.npz"
    data = np.full((1, 4, 10), 0.01, dtype=np.float32)
    np.savez(
        path,
        data=data,
        freq_hz=np.array([0.0, 100.0, 200.0, 300.0]),
        frame_rate=np.float64(50.0),
        params=json.dumps({"spectrogram": {"n_fft": 8, "power": 2.0}}),
    )
    feats = load_feature_file(path)
    assert feats.axes[0].name == "freq_hz" and feats.units == "power"
    np.testing.assert_allclose(feats.time_s, np.arange(10) / 50.0)
    values, label, vmin, vmax = display_values(feats, 80.0)
    np.testing.assert_allclose(values, -20.0, atol=1e-5)  # 10 log10(0.01)
    assert label == "level (dB, power)" and vmax == pytest.approx(-20.0, abs=1e-5)
    assert vmin == pytest.approx(-100.0, abs=1e-5)


def test_signed_mfcc_without_axis_arrays_is_shown_linearly(tmp_path):
    path = tmp_path / "mfcc.npz"
    np.savez(path, data=np.linspace(-50, 50, 13 * 20).reshape(1, 13, 20))
    feats = load_feature_file(path)
    assert feats.axes[0].name == "index" and feats.units == "value"
    values, label, vmin, vmax = display_values(feats, 80.0)
    assert label == "value" and vmin < 0 < vmax


def test_bad_feature_files(tmp_path):
    missing = tmp_path / "x.npz"
    np.savez(missing, other=np.zeros(3))
    with pytest.raises(AudioReadError, match="no 'data' array"):
        load_feature_file(missing)
    flat = tmp_path / "flat.npz"
    np.savez(flat, data=np.zeros(3))
    with pytest.raises(UsageError, match="nothing to draw over time"):
        load_feature_file(flat)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(AudioReadError, match="cannot read feature file"):
        load_feature_file(junk)


def test_long_time_axis_is_reduced_to_block_rms(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((1, 3, 4, 1000))
    path = tmp_path / "long.npz"
    np.savez(path, data=data, time_s=np.arange(1000) / 100.0)
    feats = load_feature_file(path, max_columns=300)
    assert feats.block == 4 and feats.frames == 1000 and feats.data.shape == (3, 4, 250)
    ref = np.sqrt(np.mean(data[0].reshape(3, 4, 250, 4) ** 2, axis=-1))
    np.testing.assert_allclose(feats.data, ref, rtol=1e-12)
    np.testing.assert_allclose(feats.time_s[:2], [0.015, 0.055])  # block centres
    assert feats.units == "amplitude"  # RMS of signed data


def test_files_written_by_audiofx_process_plot_with_their_axes(runner, tmp_path):
    """Real feature files (issue 6 presets) through `audiofx process`, then `audiofx plot`."""
    from audiofx_cli.cli.main import app
    from tests.conftest import write_audio

    t = np.arange(4000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 1000 * t) * (1 + 0.8 * np.sin(2 * np.pi * 16 * t))
    wav = write_audio(tmp_path / "am.wav", x[None], 16000)
    expected = {"mel-64": ["mel_hz"], "modulation-dau1997": ["fc_hz", "mfc_hz"]}
    for preset, names in expected.items():
        feats_path = tmp_path / f"{preset}.npz"
        result = runner.invoke(app, ["process", str(wav), "--chain", preset, "-o", str(feats_path)])
        assert result.exit_code == 0, result.output
        feats = load_feature_file(feats_path)
        assert [a.name for a in feats.axes] == names
        with np.load(feats_path) as raw:
            first = np.asarray(raw["data"][0], dtype=np.float64)
            np.testing.assert_allclose(feats.axes[0].values, raw[names[0]])
        if feats.block > 1:  # audio-rate modulation output: block RMS of the stored data
            n = feats.data.shape[-1] - 1
            blocks = first[..., : n * feats.block].reshape(*first.shape[:-1], n, feats.block)
            ref = np.sqrt(np.mean(blocks**2, axis=-1))
            np.testing.assert_allclose(feats.data[..., :n], ref, rtol=1e-6, atol=1e-12)
        png = tmp_path / f"{preset}.png"
        result = runner.invoke(app, ["plot", str(feats_path), "-o", str(png)])
        assert result.exit_code == 0, result.output
        assert png.stat().st_size > 10_000
