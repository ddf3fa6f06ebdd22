"""Feature files: `audiofx process ... -o x.npz` end to end, the file layout, .npz / .pt round
trips through features.load and features.stack, chunking independence, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiofx_cli import features, process_file
from audiofx_cli.errors import AudioFormatError, ProcessingError, UsageError
from tests.conftest import run_cli, write_audio

RATE = 16000
MODCHAIN = """stages:
  - gammatone: {flow_hz: 100, fhigh_hz: 4000}
  - ihc_envelope
  - modulation_filterbank: {preset: jepsen2008}
"""


@pytest.fixture
def am_file(tmp_path):
    t = np.arange(RATE) / RATE
    x = 0.3 * (1 + 0.8 * np.sin(2 * np.pi * 4 * t)) * np.sin(2 * np.pi * 1000 * t)
    return write_audio(tmp_path / "am.wav", np.stack([x, 0.5 * x]), RATE, "FLOAT")


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "mod.yaml"
    path.write_text(MODCHAIN)
    return path


def test_cli_writes_npz_with_axes_and_ragged_counts(tmp_path, am_file, chain_file):
    out = tmp_path / "feats.npz"
    result = run_cli("process", str(am_file), "--chain", str(chain_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with np.load(out, allow_pickle=False) as z:
        data = z["data"]
        assert data.dtype == np.float32
        assert str(z["axes"].tolist()) == str(["channel", "fc_hz", "mfc_hz", "time_s"])
        n_fc = z["fc_hz"].size
        assert data.shape == (2, n_fc, z["mfc_hz"].shape[1], RATE)
        counts, mask = z["counts"], z["mask"]
        assert mask.sum(axis=1).tolist() == counts.tolist()
        assert np.all(np.isnan(z["mfc_hz"][~mask])) and not np.any(np.isnan(z["mfc_hz"][mask]))
        assert not data[:, ~mask].any()  # padding is zero
        assert float(z["sample_rate"]) == RATE and float(z["frame_rate"]) == RATE
        np.testing.assert_allclose(z["time_s"][:3], [0, 1 / RATE, 2 / RATE])
        assert str(z["source"]) == str(am_file)  # the input as given
        assert "modulation_filterbank" in str(z["chain"])
    # the same through the Python API, without a file
    tensor, meta = features.compute(am_file, str(chain_file))
    np.testing.assert_array_equal(tensor.numpy(), data)
    assert meta.counts.tolist() == counts.tolist()


def test_feature_chain_to_audio_file_is_a_usage_error(tmp_path, am_file, chain_file):
    with pytest.raises(UsageError, match=r"not audio.*\.npz") as info:
        process_file(am_file, tmp_path / "x.wav", str(chain_file))
    assert info.value.exit_code == 2
    assert not list(tmp_path.glob("*x.wav*"))


def test_npz_and_pt_round_trip_and_chunking_does_not_matter(tmp_path, am_file):
    whole = tmp_path / "whole.npz"
    process_file(am_file, whole, "mel-64", chunk_seconds=100.0)
    small = tmp_path / "small.pt"
    process_file(am_file, small, "mel-64", chunk_seconds=0.0371)
    a, meta_a = features.load(whole)
    b, meta_b = features.load(small)
    assert a.shape == b.shape == (2, 64, RATE // 512 + 1)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)  # dB values, float32
    assert meta_a.axes == meta_b.axes == ["channel", "mel_hz", "time_s"]
    assert meta_a.frame_rate == pytest.approx(RATE / 512)
    np.testing.assert_allclose(meta_a.coords["mel_hz"], meta_b.coords["mel_hz"])
    assert meta_a.chain["stages"][0]["mel"]["n_mels"] == 64
    assert not list(tmp_path.glob(".*audiofx-tmp*"))  # no temporary files left


def test_double_precision_on_request_and_bad_subtype(tmp_path, am_file):
    out = tmp_path / "d.npz"
    process_file(am_file, out, "mfcc-13", subtype="DOUBLE")
    data, _ = features.load(out)
    assert data.dtype == torch.float64
    with pytest.raises(AudioFormatError, match="DOUBLE"):
        process_file(am_file, tmp_path / "e.npz", "mfcc-13", subtype="PCM_16")


def test_stack_pads_and_reports_lengths(tmp_path):
    paths = []
    for i, seconds in enumerate((0.5, 1.0, 0.75)):
        x = np.random.default_rng(i).standard_normal((1, int(seconds * RATE))) * 0.1
        src = write_audio(tmp_path / f"s{i}.wav", x, RATE, "FLOAT")
        paths.append(tmp_path / f"s{i}.npz")
        process_file(src, paths[-1], "mfcc-13")
    batch, lengths, meta = features.stack(paths)
    expected = [int(s * RATE) // 512 + 1 for s in (0.5, 1.0, 0.75)]
    assert lengths.tolist() == expected
    assert batch.shape == (3, 1, 13, max(expected))
    for i, path in enumerate(paths):
        one, _ = features.load(path)
        torch.testing.assert_close(batch[i, ..., : expected[i]], one)
        assert not batch[i, ..., expected[i] :].any()
    assert meta.coords["time_s"].size == max(expected)
    with pytest.raises(UsageError, match="lengths differ"):
        features.stack(paths, pad=False)
    other = tmp_path / "other.npz"
    process_file(tmp_path / "s0.wav", other, "mel-64")
    with pytest.raises(UsageError, match="not stackable"):
        features.stack([paths[0], other])


def test_failed_run_leaves_nothing(tmp_path, am_file):
    out = tmp_path / "f.npz"
    chain = [{"spectrogram": {"n_fft": 4096, "pad_mode": "reflect"}}]
    short = write_audio(tmp_path / "short.wav", np.zeros((1, 100)), RATE, "FLOAT")
    with pytest.raises(ProcessingError, match=r"pad_mode reflect needs more than n_fft // 2"):
        process_file(short, out, chain)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "audiofx-tmp" in p.name]


def test_modulation_presets_build_and_run(am_file):
    for preset, n_mod in (
        ("modulation-dau1997", 12),
        ("modulation-jepsen2008", 12),
        ("king2019", 5),
    ):
        y, meta = features.compute(am_file, preset)
        assert y.shape[:2] == (2, 30 if preset != "king2019" else 31)
        assert y.shape[2] == n_mod and meta.axes[2] == "mfc_hz"


def _limit_file_size() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_disk_full_while_writing_features_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, am_file, chain_file
):
    """A file-size limit stands in for a full disk: the archive, written in place behind the
    engine, fails mid-way (the features are 2 x 26 x 12 x 16000 float32, 20 MB)."""
    import subprocess

    from tests.conftest import CLI

    out = tmp_path / "f.npz"
    out.write_bytes(b"previous")
    result = subprocess.run(
        [*CLI, "process", str(am_file), "-c", str(chain_file), "-o", str(out), "--overwrite"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "write failed" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"previous"
    assert not [p for p in tmp_path.iterdir() if "audiofx-tmp" in p.name]
