"""Compact feature files: --subtype HALF (float16) and BFLOAT16, in .npz and .pt. Checked
against the float32 file of the same run: the rounding error within the formats' bounds
(2^-11 and 2^-8 relative), bfloat16 bits in .npz decoded by hand, overflow refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiofx_cli import features, process_file
from audiofx_cli.errors import AudioFormatError, ProcessingError
from tests.conftest import run_cli, unit_noise, write_audio

RATE = 16000
CHAIN = [
    {"gammatone": {"flow_hz": 100, "fhigh_hz": 4000}},
    {"ihc_envelope": {}},
    {"modulation_filterbank": {"preset": "jepsen2008"}},
    {"frames": {"hop_ms": 10, "window_ms": 25}},
]
# half a unit in the last place, relative, and for float16 absolute below its normal range
BOUNDS = {"HALF": (2.0**-11, 2.0**-25), "BFLOAT16": (2.0**-8, 0.0)}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dtypes")
    return write_audio(folder / "in.wav", 0.3 * unit_noise(2, RATE, seed=4), RATE, "FLOAT")


@pytest.fixture(scope="module")
def reference(source):
    out = source.parent / "ref.npz"
    process_file(source, out, CHAIN)
    data, meta = features.load(out)
    assert data.dtype == torch.float32 and meta.frame_rate == 100
    return data.double()


@pytest.mark.parametrize("suffix", ["npz", "pt"])
@pytest.mark.parametrize("subtype, dtype", [("HALF", torch.float16), ("BFLOAT16", torch.bfloat16)])
def test_compact_files_round_within_the_format_bound(tmp_path, source, reference, suffix,
                                                     subtype, dtype):  # fmt: skip
    out = tmp_path / f"f.{suffix}"
    report = process_file(source, out, CHAIN, subtype=subtype)
    assert report.subtype == str(dtype).removeprefix("torch.")
    data, meta = features.load(out)
    assert data.dtype == dtype and data.shape == reference.shape
    rel, floor = BOUNDS[subtype]
    error = (data.double() - reference).abs()
    assert bool((error <= torch.clamp(rel * reference.abs(), min=floor)).all())
    assert float(error.max()) > 0
    assert not data[reference == 0].any()  # ragged padding stays 0
    assert meta.axes == ["channel", "fc_hz", "mfc_hz", "time_s"] and "data_dtype" not in meta.coords


def test_npz_bfloat16_is_uint16_bits_with_a_note(tmp_path, source):
    out = tmp_path / "b.npz"
    process_file(source, out, CHAIN, subtype="BFLOAT16")
    with np.load(out, allow_pickle=False) as z:
        bits = z["data"]
        assert bits.dtype == np.uint16
        assert str(z["data_dtype"]) == "bfloat16" and "uint16" in str(z["data_note"])
        as_float32 = (bits.astype(np.uint32) << 16).view(np.float32)  # the documented decoding
    data, _ = features.load(out)
    np.testing.assert_array_equal(as_float32, data.float().numpy())
    float_file = tmp_path / "f.npz"
    process_file(source, float_file, CHAIN)
    with np.load(float_file) as z:
        assert str(z["data_dtype"]) == "float32" and "data_note" not in z.files


def test_float16_overflow_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "spec.npz"
    tone = np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)[None]
    source = write_audio(tmp_path / "tone.wav", tone, RATE, "FLOAT")
    power = [{"spectrogram": {"n_fft": 4096}}]  # |STFT|^2 of a full-scale tone: about 1e6
    with pytest.raises(ProcessingError, match="65504.*BFLOAT16"):
        process_file(source, out, power, subtype="HALF")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "audiofx-tmp" in p.name]
    process_file(source, out, power, subtype="BFLOAT16")  # float32's range: fine
    data, _ = features.load(out)
    assert float(data.float().max()) > 65504


def test_stack_and_cli(tmp_path, source):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    for out in (a, b):
        result = run_cli("process", str(source), "-c", "modulation-frames", "-o", str(out),
                         "--subtype", "BFLOAT16", "-q")  # fmt: skip
        assert result.returncode == 0, result.stderr
    batch, lengths, meta = features.stack([a, b])
    assert batch.dtype == torch.bfloat16 and lengths.tolist() == [100, 100]
    assert meta.frame_rate == 100
    with pytest.raises(AudioFormatError, match="HALF.*BFLOAT16"):
        process_file(source, tmp_path / "x.npz", CHAIN, subtype="PCM_16")
