"""The stage contract, for EVERY registered stage (driven by the registry, so new stages are
covered automatically): chunked streaming equals whole-signal processing for any chunking,
batch dims, dtype moves, state_dict round trips, zero-length chunks.

A stage is built from the `example` line of its registry entry; stages whose example needs a
file get one from `EXAMPLE_OVERRIDES`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audiofx_cli import load_chain
from audiofx_cli.chain.registry import registry
from audiofx_cli.stages.base import Chain
from audiofx_cli.stream import run_analysis
from tests.conftest import unit_noise
from tests.ir_fixture import convolve_example

RATE = 44100
TOLERANCE = 1e-5  # max abs difference, float32, unit-peak noise

# name -> function(tmp_path) returning the stage in YAML form, for examples that need files
EXAMPLE_OVERRIDES: dict[str, Callable[[Path], object]] = {"convolve": convolve_example}


def example_stage(name: str, tmp_path: Path) -> object:
    if name in EXAMPLE_OVERRIDES:
        return EXAMPLE_OVERRIDES[name](tmp_path)
    line = registry()[name].example
    return yaml.safe_load(line)[0]


def split(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    parts, start = [], 0
    for size in sizes:
        parts.append(x[..., start : start + size])
        start += size
    return parts


def chunked(chain: Chain, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """What the engine does: analysis passes (if any stage needs them), then step / flush."""
    run_analysis(chain, lambda: split(x, sizes), x[..., :0], x.shape[-1])
    state = chain.init_state(x, x.shape[-1])
    outs, start = [], 0
    for size in sizes:
        y, state = chain.step(x[..., start : start + size], state)
        outs.append(y)
        start += size
    assert start >= x.shape[-1]
    tail = chain.flush(state)
    if tail is not None:
        outs.append(tail)
    return torch.cat(outs, dim=-1)


def chunkings(n: int, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    uneven = []
    while sum(uneven) < n:
        uneven.append(int(rng.choice([0, 1, 2, 7, 31, 100, 257, 1000])))
    return {
        "1": [1] * 300 + [n],  # sample by sample, then the rest at once
        "3": [3] * 200 + [n],
        "64": [64] * (n // 64 + 1),
        "1000": [1000] * (n // 1000 + 1),
        "whole+": [n + 5],
        "uneven": uneven,
    }


ALL_STAGES = sorted(registry())


@pytest.mark.parametrize("name", ALL_STAGES)
def test_chunked_equals_whole(name, tmp_path):
    chain = load_chain([example_stage(name, tmp_path)], RATE)
    x = torch.from_numpy(unit_noise(2, 3000, seed=len(name))).float()
    whole = chain(x)
    for label, sizes in chunkings(x.shape[-1], seed=len(name)).items():
        got = chunked(chain, x, sizes)
        assert got.shape == whole.shape, f"{name} chunks {label}: shape {got.shape}"
        err = float((got - whole).abs().max()) if whole.numel() else 0.0
        assert err <= TOLERANCE, f"{name} chunks {label}: max abs diff {err:.3g}"


def test_mixed_chain_chunked_equals_whole(tmp_path):
    stages = [
        "dc_remove",
        {"highpass": {"cutoff_hz": 80, "order": 4, "type": "chebyshev1"}},
        {"fir": {"cutoff_hz": 8000, "taps": 151}},
        {
            "parallel": {
                "branches": [
                    [{"fir": {"cutoff_hz": 2000, "taps": 41}}],
                    [{"peaking": {"freq_hz": 3000, "gain_db": 4}}],
                ],
                "weights": [0.5, 0.5],
            }
        },
        {"fir_taps": {"taps": [0.2, 0.6, 0.2], "compensate_delay": True}},
        {"bandstop": {"low_hz": 45, "high_hz": 55, "order": 2, "type": "elliptic"}},
        {"gain": {"gain_db": -3}},
    ]
    chain = load_chain(stages, RATE)
    x = torch.from_numpy(unit_noise(2, 20000, seed=11)).float()
    whole = chain(x)
    for sizes in ([1] * 500 + [19500], [4410] * 5, [7, 13000, 0, 6993], [19999, 1]):
        got = chunked(chain, x, sizes)
        assert float((got - whole).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("name", ALL_STAGES)
def test_batch_dims_equal_per_item(name, tmp_path):
    chain = load_chain([example_stage(name, tmp_path)], RATE)
    x = torch.from_numpy(unit_noise(6, 800, seed=3)).float().reshape(3, 2, 800)
    batched = chain(x)
    for i in range(3):
        assert torch.allclose(batched[i], chain(x[i]), atol=TOLERANCE)


@pytest.mark.parametrize("name", ALL_STAGES)
def test_dtype_move_keeps_float64_coefficients(name, tmp_path):
    chain = load_chain([example_stage(name, tmp_path)], RATE).to(torch.float32)
    for stage in chain.modules():
        for buffer_name in getattr(stage, "float64_buffers", ()):
            buffer = getattr(stage, buffer_name, None)
            if buffer is not None:
                assert buffer.dtype == torch.float64, f"{name}.{buffer_name} lost float64"
    x = torch.from_numpy(unit_noise(2, 500, seed=1))
    y64 = chain.to(torch.float64)(x)
    assert y64.dtype == torch.float64


@pytest.mark.parametrize("name", ALL_STAGES)
def test_state_dict_round_trip_and_empty_input(name, tmp_path):
    chain = load_chain([example_stage(name, tmp_path)], RATE)
    clone = load_chain([example_stage(name, tmp_path)], RATE)
    clone.load_state_dict(chain.state_dict())
    x = torch.from_numpy(unit_noise(2, 700, seed=2)).float()
    assert torch.equal(chain(x), clone(x))
    empty = chain(x[..., :0])
    assert empty.shape[-1] == 0


def test_forward_never_leaks_state_between_calls():
    chain = load_chain(["dc_remove", {"lowpass": {"cutoff_hz": 1000}}], RATE)
    x = torch.from_numpy(unit_noise(2, 1000, seed=5)).float()
    first = chain(x)
    assert torch.equal(chain(x), first)


def test_every_stage_has_a_parseable_example():
    for name, stage in registry().items():
        parsed = yaml.safe_load(stage.example)
        assert isinstance(parsed, list) and len(parsed) == 1, name
        item = parsed[0]
        assert item == name or (isinstance(item, dict) and list(item) == [name]), name
