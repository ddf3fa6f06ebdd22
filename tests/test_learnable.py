"""Learnable chains: parameters named by key, gradients (gradcheck) for every learnable stage and
a mixed chain, forward equal to the designed chain, ranges kept, `learn:` and `learnable=`
validation, a fit that recovers known parameters, and save_chain -> `audiofx process`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.autograd import gradcheck, gradgradcheck

import audiofx_cli
from audiofx_cli.chain.learn import supported_text
from audiofx_cli.chain.registry import load_impl, registry
from audiofx_cli.chain.spec import parse_spec
from audiofx_cli.errors import ChainSpecError, OutputExistsError, UsageError
from audiofx_cli.stages.learnable import Learnable
from tests.conftest import run_cli, unit_noise, write_audio

F64 = torch.float64
RATE = 16000

LEARNABLE_STAGES = [
    {"gain": {"gain_db": -2}},
    {"dc_remove": {"cutoff_hz": 30}},
    {"lowpass": {"cutoff_hz": 3000, "order": 3}},
    {"highpass": {"cutoff_hz": 800, "order": 4, "type": "linkwitz_riley"}},
    {"bandpass": {"low_hz": 300, "high_hz": 3000, "order": 2}},
    {"bandstop": {"low_hz": 2000, "high_hz": 4000, "order": 1}},
    {"peaking": {"freq_hz": 1000, "gain_db": 3, "q": 1.4}},
    {"lowshelf": {"freq_hz": 200, "gain_db": -3}},
    {"highshelf": {"freq_hz": 2000, "gain_db": 4}},
    {"notch": {"freq_hz": 500, "q": 2}},
    {"allpass": {"freq_hz": 700}},
    {"biquad_lowpass": {"freq_hz": 3000}},
    {"biquad_highpass": {"freq_hz": 100, "q": 0.9}},
    {"fir": {"cutoff_hz": 3000, "taps": 21}},
    {"fir": {"pass": "bandpass", "cutoff_hz": [300, 3000], "taps": 31}},
    {"fir_taps": {"taps": [0.25, 0.5, 0.25]}},
    {"sos": {"sections": [[0.2, 0.4, 0.2, 1, -0.37, 0.2], [1, -1, 0, 2, -1.6, 0]]}},
    {"ba": {"b": [0.5, 0.3, 0.1], "a": [1, -0.5, 0.2, 0.05]}},
    {"ba": {"b": [0.5, 0.5], "a": [2.0]}},
]


def _name(stage: dict) -> str:
    return next(iter(stage))


def _gradcheck_chain(chain: torch.nn.Module, x: torch.Tensor, twice: bool = False) -> bool:
    names = [n for n, _ in chain.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in chain.named_parameters()]

    def fn(x, *values):
        return torch.func.functional_call(chain, dict(zip(names, values, strict=True)), (x,))

    inputs = (x.detach().clone().requires_grad_(), *params)
    ok = gradcheck(fn, inputs)
    return ok and (not twice or gradgradcheck(fn, inputs))


def test_every_learnable_definition_has_a_learnable_stage():
    """Registry guard: `learnable` keys in chain/defs == the stage class's, which is Learnable."""
    for name, definition in registry().items():
        cls = load_impl(definition)
        if definition.learnable:
            assert issubclass(cls, Learnable), name
            assert tuple(cls.learnable_keys) == definition.learnable, name
            assert all(definition.param(k) is not None for k in definition.learnable), name
        else:
            assert not getattr(cls, "learnable_keys", ()), name


@pytest.mark.parametrize("stage", LEARNABLE_STAGES, ids=_name)
def test_gradcheck_every_learnable_stage(stage):
    torch.manual_seed(0)
    chain = audiofx_cli.load_chain([stage], RATE, dtype=F64, learnable=True)
    keys = registry()[_name(stage)].learnable
    if _name(stage) == "ba" and len(stage["ba"]["a"]) == 1:
        keys = ("b",)
    assert [n for n, _ in chain.named_parameters()] == [f"0.{k}" for k in keys]
    twice = _name(stage) in ("gain", "fir", "fir_taps")  # pure torch: twice differentiable
    assert _gradcheck_chain(chain, torch.randn(2, 48, dtype=F64), twice)


def test_gradcheck_mixed_chain():
    stages = [
        {"highpass": {"cutoff_hz": 100, "order": 2}},
        {"peaking": {"freq_hz": 2000, "gain_db": 3, "q": 1.4}},
        "dc_remove",
        {"fir": {"cutoff_hz": 5000, "taps": 15}},
        {"lowpass": {"cutoff_hz": 6000, "type": "chebyshev1"}},  # cannot learn: fixed
        {"gain": {"gain_db": -1}},
    ]
    chain = audiofx_cli.load_chain(
        stages, RATE, dtype=F64, learnable=["0.cutoff_hz", "1.q", "5.gain_db"]
    )
    names = [n for n, _ in chain.named_parameters()]
    assert names == ["0.cutoff_hz", "1.q", "5.gain_db"]
    assert _gradcheck_chain(chain, torch.randn(1, 2, 40, dtype=F64))


@pytest.mark.parametrize("dtype,tol", [(F64, 1e-10), (torch.float32, 1e-6)])
def test_learnable_forward_equals_designed_chain(dtype, tol):
    x = torch.from_numpy(unit_noise(2, 6000, seed=1)).to(dtype)
    designed = audiofx_cli.load_chain(LEARNABLE_STAGES, RATE, dtype=dtype)  # fused
    learnt = audiofx_cli.load_chain(LEARNABLE_STAGES, RATE, dtype=dtype, learnable=True)
    assert len(learnt) == len(LEARNABLE_STAGES) < len(list(designed.parameters())) + 30
    assert all(p.dtype == F64 and p.device.type == "cpu" for p in learnt.parameters())
    with torch.no_grad():
        ref = designed(x)
    y = learnt(x)
    assert y.dtype == dtype
    assert float((y.detach() - ref).abs().max() / ref.abs().max()) < tol


def test_learnable_chain_streams_like_whole():
    x = torch.from_numpy(unit_noise(2, 3000, seed=2))
    chain = audiofx_cli.load_chain(LEARNABLE_STAGES, RATE, dtype=F64, learnable=True)
    whole = chain(x)
    state, parts = chain.init_state(x[..., :0]), []
    for chunk in x.split(701, dim=-1):
        y, state = chain.step(chunk, state)
        parts.append(y)
    tail = chain.flush(state)
    streamed = torch.cat([*parts, *([] if tail is None else [tail])], -1)
    assert float((streamed - whole).detach().abs().max()) < 1e-10


def test_values_stay_in_range_whatever_the_coordinates():
    stages = [
        {"lowpass": {"cutoff_hz": 1000, "order": 4}},
        {"bandpass": {"low_hz": 300, "high_hz": 3000}},
        {"peaking": {"freq_hz": 1000, "gain_db": 0, "q": 1}},
        {"sos": {"sections": [[1, 0, 0, 1, -0.5, 0.1]]}},
    ]
    chain = audiofx_cli.load_chain(stages, RATE, dtype=F64, learnable=True)
    x = torch.from_numpy(unit_noise(1, 4000, seed=3))
    for extreme in (1e3, -1e3):
        with torch.no_grad():
            for p in chain.parameters():
                p.fill_(extreme)
            y = chain(x)
            assert torch.isfinite(y).all()
            for stage in chain:
                for key in stage.learned:
                    value = stage.value(key)
                    if key.endswith("_hz"):
                        assert 0 < float(value) < RATE / 2
            assert chain[1].value("low_hz") < chain[1].value("high_hz")
            assert 1e-2 <= float(chain[2].value("q")) <= 1000
            assert -60 <= float(chain[2].value("gain_db")) <= 60
            a = chain[3].value("sections")[0, 3:].numpy()
            assert np.max(np.abs(np.roots(a))) < 1


def test_learn_key_in_yaml():
    text = """
stages:
  - highpass: {cutoff_hz: 80, learn: [cutoff_hz]}
  - peaking: {freq_hz: 1000, gain_db: 0, q: 1.4, learn: [gain_db, q]}
  - gain: {gain_db: 0, learn: true}
"""
    spec = parse_spec(text)
    assert [s.learn for s in spec.stages] == [("cutoff_hz",), ("gain_db", "q"), ("gain_db",)]
    chain = audiofx_cli.load_chain(spec, RATE)
    assert [n for n, _ in chain.named_parameters()] == [
        "0.cutoff_hz",
        "1.gain_db",
        "1.q",
        "2.gain_db",
    ]
    assert not list(audiofx_cli.load_chain(spec, RATE, learnable=False).parameters())
    more = audiofx_cli.load_chain(spec, RATE, learnable=["1.freq_hz"])
    assert "1.freq_hz" in dict(more.named_parameters())


@pytest.mark.parametrize(
    "yaml_stage,fragment",
    [
        ("compressor: {threshold_db: -20, learn: [threshold_db]}", "has no learnable parameters"),
        (
            "peaking: {freq_hz: 1000, gain_db: 0, learn: [width]}",
            "learns freq_hz, gain_db, q, not width",
        ),
        (
            "lowpass: {cutoff_hz: 1000, type: chebyshev1, learn: [cutoff_hz]}",
            "type chebyshev1 cannot learn",
        ),
        ("gain: {gain_db: 0, learn: 3}", "expected a list of keys"),
    ],
)
def test_learn_key_refusals_name_what_is_supported(yaml_stage, fragment):
    with pytest.raises(ChainSpecError) as info:
        parse_spec(f"stages:\n  - {yaml_stage}\n", source="x.yaml")
    message = str(info.value)
    assert fragment in message and "x.yaml:2" in message and "\n" not in message
    if "no learnable" in fragment:
        assert "peaking (freq_hz, gain_db, q)" in message and supported_text() in message


@pytest.mark.parametrize(
    "learnable,fragment",
    [
        (["0.gain"], "learns gain_db, not gain"),
        (["3.gain_db"], "the chain has 2 stages"),
        (["gain_db"], "is not 'index.key'"),
        (["1.threshold_db"], "has no learnable parameters"),
        ("0.gain_db", "give a list"),
    ],
)
def test_learnable_selection_errors(learnable, fragment):
    stages = [{"gain": {"gain_db": 0}}, {"compressor": {"threshold_db": -20}}]
    with pytest.raises(UsageError, match=fragment):
        audiofx_cli.load_chain(stages, RATE, learnable=learnable)


def test_value_outside_the_learnt_range_is_refused():
    with pytest.raises(ChainSpecError, match=r"cannot learn q = 0.001: learnt values stay inside"):
        audiofx_cli.load_chain(
            [{"peaking": {"freq_hz": 1000, "gain_db": 0, "q": 0.001}}], RATE, learnable=True
        )


def test_fit_recovers_peaking_and_highpass():
    """A peaking EQ at 2 kHz, +6 dB, q 1.4 after a 100 Hz high-pass, learnt from a 0 dB /
    1 kHz / 50 Hz start by Adam on 0.5 s of noise: 0.1 dB and 1 %."""
    truth = [
        {"highpass": {"cutoff_hz": 100}},
        {"peaking": {"freq_hz": 2000, "gain_db": 6, "q": 1.4}},
    ]
    start = [
        {"highpass": {"cutoff_hz": 50}},
        {"peaking": {"freq_hz": 1000, "gain_db": 0, "q": 1.4}},
    ]
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((1, RATE // 2)))
    with torch.no_grad():
        target = audiofx_cli.load_chain(truth, RATE, dtype=F64)(x)
    model = audiofx_cli.load_chain(start, RATE, dtype=F64, learnable=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(250):
        loss = (model(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    hp, eq = model[0].learned_values(), model[1].learned_values()
    assert abs(eq["gain_db"] - 6) < 0.1
    assert abs(eq["freq_hz"] / 2000 - 1) < 0.01
    assert abs(eq["q"] / 1.4 - 1) < 0.01
    assert abs(hp["cutoff_hz"] / 100 - 1) < 0.01


def test_save_chain_then_audiofx_process_applies_it(tmp_path):
    stages = [
        {"highpass": {"cutoff_hz": 80, "order": 2}},
        {"peaking": {"freq_hz": 1000, "gain_db": 0, "q": 1.4}},
        {"fir_taps": {"taps": [0.25, 0.5, 0.25]}},
        {"gain": {"gain_db": -3}},
    ]
    chain = audiofx_cli.load_chain(stages, RATE, dtype=F64, learnable=True)
    with torch.no_grad():  # as if learnt
        chain[1].gain_db.add_(0.5)
        chain[0].cutoff_hz.add_(0.2)
        chain[2].taps.mul_(0.9)
    fitted = audiofx_cli.save_chain(chain, tmp_path / "fitted.yaml")
    with pytest.raises(OutputExistsError):
        audiofx_cli.save_chain(chain, fitted)
    saved = parse_spec(fitted.read_text())
    assert saved.stages[1].params["gain_db"] == pytest.approx(
        float(chain[1].value("gain_db").detach()), abs=1e-9
    )
    assert saved.stages[1].learn == ("freq_hz", "gain_db", "q")
    src = write_audio(tmp_path / "in.wav", 0.5 * unit_noise(1, 4000, seed=5), RATE, "FLOAT")
    out = tmp_path / "out.wav"
    result = run_cli(
        "process", str(src), "-c", str(fitted), "-o", str(out), "--precision", "float64"
    )
    assert result.returncode == 0, result.stderr
    processed = sf.read(out, always_2d=True)[0].T
    with torch.no_grad():
        expected = chain(torch.from_numpy(sf.read(src, always_2d=True)[0].T)).numpy()
    assert np.max(np.abs(processed - expected)) < 1e-6
