"""The chunked engine: analysis passes, sinks, NaN checks, any block size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiofx_cli import load_chain
from audiofx_cli.errors import ProcessingError
from audiofx_cli.io.sinks import ChunkSink
from audiofx_cli.stages.base import Chain, Stage
from audiofx_cli.stream import run_chain
from tests.conftest import unit_noise


class PeakTo(Stage):
    """Test-only two-pass stage: scales the whole stream so its peak is `target`."""

    needs_analysis = True

    def __init__(self, sample_rate: float, target: float) -> None:
        super().__init__(sample_rate, target=target)
        self.target = target
        self.scale = 1.0

    def init_analysis(self, x, total_frames=None):
        return 0.0

    def analyze(self, x, peak):
        return max(peak, float(x.abs().max())) if x.numel() else peak

    def finish_analysis(self, peak):
        self.scale = self.target / peak

    def step(self, x, state):
        return x * self.scale, None


class ListSink(ChunkSink):
    def __init__(self):
        self.parts, self.template, self.rate = [], None, None

    def open(self, template, sample_rate):
        self.template, self.rate = template, sample_rate

    def write(self, y):
        self.parts.append(y.clone())

    def result(self):
        return torch.cat(self.parts, dim=-1).numpy()


def blocks_of(data: np.ndarray, size: int):
    def source():
        for start in range(0, data.shape[1], size):
            yield data[:, start : start + size].T.astype(np.float32)

    return source


@pytest.mark.parametrize("block", [1, 333, 10_000])
def test_analysis_pass_sees_the_stream_after_earlier_stages(block):
    data = unit_noise(2, 5000, seed=1) * 0.3
    filt = load_chain([{"lowpass": {"cutoff_hz": 3000}}, {"gain": {"gain_db": 6}}], 44100)
    chain = Chain(*filt, PeakTo(44100, 0.5), sample_rate=44100)
    sink = ListSink()
    stats = run_chain(
        chain,
        blocks_of(data, block),
        sink,
        channels=2,
        total_frames=5000,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    out = sink.result()
    assert stats.frames_in == stats.frames_out == 5000
    assert np.max(np.abs(out)) == pytest.approx(0.5, rel=1e-6)
    whole = chain(torch.from_numpy(data).float()).numpy()
    assert np.max(np.abs(out - whole)) < 1e-6
    assert sink.template.shape == (2, 0) and sink.rate == 44100


def test_nan_from_the_chain_is_an_error():
    data = unit_noise(1, 100)
    chain = load_chain([{"module": {"name": "torch.nn.LogSigmoid"}}], 16000)  # finite
    run_chain(
        chain,
        blocks_of(data, 50),
        ListSink(),
        channels=1,
        total_frames=100,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    chain = load_chain([{"gain": {"gain_db": 200}}, {"gain": {"gain_db": 200}}], 16000)
    big = np.full((1, 10), 1e38)
    with pytest.raises(ProcessingError, match="NaN or Inf"):
        run_chain(
            chain,
            blocks_of(big, 5),
            ListSink(),
            channels=1,
            total_frames=10,
            device=torch.device("cpu"),
            dtype=torch.float32,
        )


@pytest.mark.parametrize(
    "stages",
    [
        [{"highpass": {"cutoff_hz": 100}}, {"lowpass": {"cutoff_hz": 3000, "order": 4}}],
        [{"fir": {"cutoff_hz": 2000, "taps": 101}}, {"highpass": {"cutoff_hz": 200}}],
        [{"fir": {"cutoff_hz": 2000, "taps": 255, "compensate_delay": False}}],
        [{"fir": {"cutoff_hz": 2000, "taps": 255}}],
        [{"gain": {"gain_db": -3}}, {"resample": {"rate_hz": 11025}}],
        [
            {"compressor": {"threshold_db": -20, "ratio": 4}},
            {"peaking": {"freq_hz": 1000, "gain_db": 6}},
        ],
    ],
    ids=["sos", "fir+sos", "fir", "fir-delay-compensated", "resample", "dynamics+biquad"],
)
@pytest.mark.parametrize("fuse", [True, False])
def test_run_tensor_equals_the_whole_signal_forward(stages, fuse):
    """run_tensor (chunks written straight into one output where a stage can) equals forward
    for any chunk length, fused or not, also when the output length differs."""
    from audiofx_cli.stream import run_tensor

    chain = load_chain(stages, 22050, fuse=fuse)
    x = torch.from_numpy(0.5 * unit_noise(2, 30000, seed=3)).float()
    with torch.no_grad():
        whole = chain(x)
    for chunk in (0, 1000, 7777, 29999):
        got = run_tensor(chain, x, chunk)
        assert got.shape == whole.shape and got.dtype == x.dtype
        assert float((got - whole).abs().max()) < 1e-5, chunk
