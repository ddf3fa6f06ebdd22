"""Channel and length stages (mono, channels, pan, invert, trim, pad) against numpy and SoX.

SoX references run on 64-bit float WAV; SoX processes in 32-bit integers, hence the 1e-8
tolerance (2^-32 is 2.3e-10). SoX comparisons: `channels 1` (mean), `remix 2 1`, `trim S =E`,
`pad S E`, `vol -1`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli import load_chain
from audiofx_cli.errors import ChainSpecError
from tests.conftest import needs_sox, unit_noise

RATE = 8000
SOX_TOL = 1e-8


def run(stage, x: np.ndarray, rate: int = RATE) -> np.ndarray:
    chain = load_chain([stage], rate, dtype=torch.float64)
    return chain(torch.from_numpy(x)).numpy()


def sox(tmp_path: Path, x: np.ndarray, *effect: str, rate: int = RATE) -> np.ndarray:
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, rate, subtype="DOUBLE")
    subprocess.run(
        ["sox", "-V1", str(src), "-e", "floating-point", "-b", "64", str(out), *effect],
        check=True,
        capture_output=True,
    )
    return sf.read(out, dtype="float64", always_2d=True)[0].T


def test_mono_mean_and_sum_against_numpy():
    x = unit_noise(3, 1000, seed=1)
    np.testing.assert_allclose(run("mono", x), x.mean(axis=0, keepdims=True), atol=1e-15)
    summed = run({"mono": {"mode": "sum"}}, x)
    np.testing.assert_allclose(summed, x.sum(axis=0, keepdims=True), atol=1e-15)


def test_channel_map_select_reorder_duplicate():
    x = unit_noise(3, 500, seed=2)
    np.testing.assert_array_equal(run({"channels": {"map": [2, 0, 0, 1]}}, x), x[[2, 0, 0, 1]])
    batch = np.stack([x, -x])
    np.testing.assert_array_equal(run({"channels": {"map": [1]}}, batch), batch[:, [1]])


def test_channel_map_index_out_of_range_is_a_clear_error():
    chain = load_chain([{"channels": {"map": [0, 2]}}], RATE)
    with pytest.raises(ChainSpecError, match=r"channel index 2 .* 2-channel input .*0\.\.1"):
        chain(torch.zeros(2, 10))
    with pytest.raises(ChainSpecError, match="integers"):
        load_chain([{"channels": {"map": [0.5]}}], RATE)


@pytest.mark.parametrize("position", [-1.0, -0.3, 0.0, 0.5, 1.0])
def test_pan_constant_power(position):
    x = unit_noise(1, 400, seed=3)
    y = run({"pan": {"position": position}}, x)
    theta = (position + 1) * np.pi / 4
    np.testing.assert_allclose(y, np.vstack([np.cos(theta) * x, np.sin(theta) * x]), atol=1e-15)
    # constant power: the two gains squared add to 1 for a mono source
    np.testing.assert_allclose(np.sum(y**2), np.sum(x**2), rtol=1e-12)
    stereo = unit_noise(2, 400, seed=4)
    z = run({"pan": {"position": position}}, stereo)
    gains = np.sqrt(2) * np.array([[np.cos(theta)], [np.sin(theta)]])
    np.testing.assert_allclose(z, gains * stereo, atol=1e-15)


def test_pan_centre_keeps_stereo_unchanged_and_rejects_more_channels():
    stereo = unit_noise(2, 300, seed=5)
    np.testing.assert_allclose(run("pan", stereo), stereo, atol=1e-15)
    with pytest.raises(ChainSpecError, match="mono or stereo input, got 3 channels"):
        run("pan", unit_noise(3, 10))


def test_invert_trim_pad_against_numpy():
    x = unit_noise(2, 1000, seed=6)
    np.testing.assert_array_equal(run("invert", x), -x)
    trimmed = run({"trim": {"start_s": 0.01, "end_s": 0.1}}, x)  # samples 80 .. 800
    np.testing.assert_array_equal(trimmed, x[:, 80:800])
    np.testing.assert_array_equal(run({"trim": {"start_s": 0.05}}, x), x[:, 400:])
    np.testing.assert_array_equal(run({"trim": {"start_s": 0.2}}, x), x[:, :0])  # past the end
    padded = run({"pad": {"start_s": 0.01, "end_s": 0.02}}, x)
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (80, 160))))


def test_output_frames_match_the_lengths():
    for stage, n, expected in [
        ({"trim": {"start_s": 0.01, "end_s": 0.1}}, 1000, 720),
        ({"trim": {"start_s": 0.01, "end_s": 0.1}}, 500, 420),
        ({"trim": {"start_s": 0.2}}, 1000, 0),
        ({"pad": {"start_s": 0.01, "end_s": 0.02}}, 1000, 1240),
        ({"pad": {"start_s": 0.01, "end_s": 0.02}}, 0, 0),
    ]:
        chain = load_chain([stage], RATE, dtype=torch.float64)
        assert chain[0].output_frames(n) == expected
        assert chain(torch.zeros(2, n)).shape[-1] == expected
    assert chain[0].output_frames(None) is None


def test_trim_rejects_end_before_start():
    with pytest.raises(ChainSpecError, match="end_s.*must be after start_s"):
        load_chain([{"trim": {"start_s": 1.0, "end_s": 0.5}}], RATE)


@needs_sox
def test_against_sox(tmp_path):
    x = 0.5 * unit_noise(3, 8000, seed=7)
    cases = [
        ("mono", ["channels", "1"]),
        ({"channels": {"map": [1, 0]}}, ["remix", "2", "1"]),
        ({"trim": {"start_s": 0.25, "end_s": 0.5}}, ["trim", "0.25", "=0.5"]),
        ({"pad": {"start_s": 0.1, "end_s": 0.2}}, ["pad", "0.1", "0.2"]),
        ("invert", ["vol", "-1"]),
    ]
    for stage, effect in cases:
        ours, ref = run(stage, x), sox(tmp_path, x, *effect)
        assert ours.shape == ref.shape, (stage, ours.shape, ref.shape)
        err = np.max(np.abs(ours - ref))
        assert err < SOX_TOL, f"{stage} vs sox {' '.join(effect)}: max abs error {err:.3g}"
