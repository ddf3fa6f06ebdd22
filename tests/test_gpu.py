"""CUDA, where a GPU is: every registered stage on the GPU equals the CPU within its tolerance and
streams chunk for chunk as it processes whole signals; feature axes come back from the device;
files run through the engine on the GPU match the CPU's; and the CLI uses the GPU (`--device
auto` picks it, `--jobs 2` workers share it, a missing index is refused).

Every test here is marked `gpu`: skipped with a reason where CUDA is absent (tests/conftest.py),
run by scripts/gpu_check.sh with AUDIOFX_REQUIRE_GPU=1 (there a skip is an error). Setting
AUDIOFX_GPU_TEST_DEVICE=cpu runs the same tests against the CPU, which checks the tests
themselves on a machine without a GPU (the comparisons are then trivially CPU against CPU).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofx_cli import load_chain
from audiofx_cli.api import process_file
from audiofx_cli.axes import chain_axes
from audiofx_cli.features import load as load_features
from tests.conftest import GPU_TEST_DEVICE, run_cli, unit_noise, write_audio
from tests.test_stage_contract import (
    ALL_STAGES,
    RATE,
    TOLERANCE,
    chunked,
    chunkings,
    example_stage,
)

pytestmark = pytest.mark.gpu

DEVICE = GPU_TEST_DEVICE  # "cuda" (or "cpu" to check these tests where there is no GPU)
# max |gpu - cpu| / max |cpu| for one stage on unit-peak float32 noise. On the CPU, the GPU's
# IIR engine (block state-space scan, AUDIOFX_IIR_ENGINE=scan) stays within 1.7e-7 of the CPU
# kernel for every filter stage; cuFFT, cuBLAS and elementwise CUDA maths differ from their CPU
# counterparts by float32 rounding. 1e-4 leaves a margin of about 500 for all of them, and is
# still 10x tighter than what cuDNN's TF32 convolutions would give (dsp.fir.conv1d avoids them).
CUDA_TOLERANCE = 1e-4
CUDA_TOLERANCES: dict[str, float] = {}  # stage name -> its own tolerance, with the reason


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    if not want.numel():
        return 0.0
    scale = max(float(want.abs().max()), 1e-30)
    return float((got.detach().cpu().double() - want.double()).abs().max()) / scale


def noise(seed: int, frames: int = 3000) -> torch.Tensor:
    return torch.from_numpy(unit_noise(2, frames, seed=seed)).float()


def on_device(chain: torch.nn.Module) -> None:
    """`.to(device)` moved every registered parameter and buffer."""
    for tensor in [*chain.parameters(), *chain.buffers()]:
        assert tensor.device.type == torch.device(DEVICE).type, tensor.shape


@pytest.mark.parametrize("name", ALL_STAGES)
def test_stage_on_gpu_equals_cpu(name, tmp_path):
    stage = example_stage(name, tmp_path)
    x = noise(seed=len(name))
    want = load_chain([stage], RATE)(x)
    chain = load_chain([stage], RATE, device=DEVICE)
    on_device(chain)
    got = chain(x.to(DEVICE))
    assert got.device.type == torch.device(DEVICE).type
    assert got.shape == want.shape and got.dtype == want.dtype
    err = relative_error(got, want)
    assert err <= CUDA_TOLERANCES.get(name, CUDA_TOLERANCE), f"{name}: {err:.3g} of the peak"


@pytest.mark.parametrize("name", ALL_STAGES)
def test_stage_on_gpu_chunked_equals_whole(name, tmp_path):
    """The stage contract (tests/test_stage_contract.py) on the GPU: any chunking, sample by
    sample included, gives the whole-signal output."""
    chain = load_chain([example_stage(name, tmp_path)], RATE, device=DEVICE)
    x = noise(seed=len(name)).to(DEVICE)
    whole = chain(x)
    for label, sizes in chunkings(x.shape[-1], seed=len(name)).items():
        got = chunked(chain, x, sizes)
        assert got.device == whole.device and got.shape == whole.shape, f"{name} {label}"
        err = float((got - whole).abs().max()) if whole.numel() else 0.0
        assert err <= TOLERANCE, f"{name} chunks {label}: max abs diff {err:.3g}"


@pytest.mark.parametrize("name", ALL_STAGES)
def test_feature_axes_from_gpu(name, tmp_path):
    """Axes are read from stage buffers, which live on the GPU: they must come back intact."""
    stage = example_stage(name, tmp_path)
    want = chain_axes(load_chain([stage], RATE))
    got = chain_axes(load_chain([stage], RATE, device=DEVICE))
    assert (got.names, got.frame_rate, got.ragged) == (want.names, want.frame_rate, want.ragged)
    assert sorted(got.coords) == sorted(want.coords)
    for key, values in want.coords.items():
        np.testing.assert_array_equal(got.coords[key], values, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("preset", ["vocal", "podcast", "rumble", "telephone"])
def test_audio_presets_through_files_on_gpu(tmp_path, preset):
    """The whole engine on the GPU (blocks moved to the device, output checked and brought back,
    two-pass stages): a float WAV in, float WAV out, against the same run on the CPU."""
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(2, 48000 * 3, seed=3), 48000, "FLOAT")
    outs = {}
    for device in ("cpu", DEVICE):
        out = tmp_path / f"{device}.wav"
        report = process_file(src, out, preset, device=device, chunk_seconds=0.5, overwrite=True)
        assert report.device.startswith(device)
        outs[device] = sf.read(out, dtype="float64", always_2d=True)[0]
    want, got = outs["cpu"], outs[DEVICE]
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= CUDA_TOLERANCE * np.max(np.abs(want)), preset


@pytest.mark.parametrize("preset", ["mel-64", "modulation-dau1997"])
def test_feature_presets_through_files_on_gpu(tmp_path, preset):
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(1, 16000, seed=4), 16000, "FLOAT")
    results = {}
    for device in ("cpu", DEVICE):
        out = tmp_path / f"{device}.npz"
        process_file(src, out, preset, device=device, chunk_seconds=0.25, overwrite=True)
        results[device] = load_features(out)
    (want, want_meta), (got, got_meta) = results["cpu"], results[DEVICE]
    assert got.shape == want.shape
    assert relative_error(got, want) <= CUDA_TOLERANCE, preset
    for key, values in want_meta.coords.items():
        np.testing.assert_array_equal(got_meta.coords[key], values, err_msg=key)


def expected_device() -> str:
    return "cuda" if DEVICE.startswith("cuda") else "cpu"


def test_device_auto_picks_the_gpu(tmp_path, speech_file):
    auto = run_cli("process", str(speech_file), "-c", "vocal", "-o", str(tmp_path / "a.wav"),
                   "--device", "auto")  # fmt: skip
    assert auto.returncode == 0, auto.stderr
    assert f"real time on {expected_device()})" in auto.stderr, auto.stderr
    cpu = run_cli("process", str(speech_file), "-c", "vocal", "-o", str(tmp_path / "c.wav"),
                  "--device", "cpu", "--subtype", "FLOAT")  # fmt: skip
    gpu = run_cli("process", str(speech_file), "-c", "vocal", "-o", str(tmp_path / "g.wav"),
                  "--device", DEVICE, "--subtype", "FLOAT")  # fmt: skip
    assert cpu.returncode == gpu.returncode == 0, gpu.stderr
    want = sf.read(tmp_path / "c.wav")[0]
    assert np.max(np.abs(sf.read(tmp_path / "g.wav")[0] - want)) <= CUDA_TOLERANCE


def test_missing_gpu_index_is_refused(tmp_path, speech_file):
    if not DEVICE.startswith("cuda"):
        pytest.skip("only meaningful with CUDA")
    count = torch.cuda.device_count()
    result = run_cli("process", str(speech_file), "-c", "vocal", "-o", str(tmp_path / "x.wav"),
                     "--device", f"cuda:{count}")  # fmt: skip
    assert result.returncode == 2
    assert f"device 'cuda:{count}' does not exist: {count} CUDA device(s) here" in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_two_jobs_share_one_gpu(tmp_path):
    """`--jobs 2 --device cuda`: two worker processes on one GPU. `--device cuda` cannot fall
    back to the CPU (a worker without CUDA fails its file), so every file ok means every file
    ran on the GPU; the results equal one job's bit for bit, and the CPU's within tolerance."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        write_audio(src / f"t{i}.wav", 0.3 * unit_noise(2, 44100 * 2, seed=i), 44100, "FLOAT")
    chain = tmp_path / "chain.yaml"
    chain.write_text(
        "stages:\n  - highpass: {cutoff_hz: 80, order: 4}\n  - fir: {cutoff_hz: 8000, taps: 101}\n"
        "  - compressor: {threshold_db: -20, ratio: 3}\n"
    )
    runs = {
        "gpu2": ["--device", DEVICE, "--jobs", "2"],
        "gpu1": ["--device", DEVICE, "--jobs", "1"],
        "cpu1": ["--device", "cpu", "--jobs", "1"],
    }
    for label, extra in runs.items():
        result = run_cli("process", str(src), "-c", str(chain), "--out-dir", str(tmp_path / label),
                         "--chunk-seconds", "0.5", "--json", str(tmp_path / f"{label}.json"), "-q",
                         *extra)  # fmt: skip
        assert result.returncode == 0, f"{label}: {result.stderr}"
        files = json.loads((tmp_path / f"{label}.json").read_text())["files"]
        assert [f["status"] for f in files] == ["ok"] * 6, label
    for name in (f"t{i}.wav" for i in range(6)):
        gpu2, gpu1, cpu1 = (sf.read(tmp_path / label / name)[0] for label in runs)
        np.testing.assert_array_equal(gpu2, gpu1, err_msg=name)
        assert np.max(np.abs(gpu2 - cpu1)) <= CUDA_TOLERANCE * np.max(np.abs(cpu1)), name


def test_engine_input_output_stay_where_they_belong():
    """A CUDA chain takes CUDA input and gives CUDA output; float64 stays float64 on the GPU."""
    chain = load_chain([{"lowpass": {"cutoff_hz": 1000}}], 16000, device=DEVICE,
                       dtype=torch.float64)  # fmt: skip
    x = torch.from_numpy(unit_noise(2, 4000, seed=1)).to(DEVICE)
    y = chain(x)
    assert y.device == x.device and y.dtype == torch.float64
    want = load_chain([{"lowpass": {"cutoff_hz": 1000}}], 16000, dtype=torch.float64)(x.cpu())
    assert relative_error(y, want) <= 1e-10  # float64 all the way: far below float32 rounding
