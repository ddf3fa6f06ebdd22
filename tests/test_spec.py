"""Chain-spec validation: every bad input gives one line naming file:line:col, stage, key,
value and what is allowed."""

from __future__ import annotations

import pytest

from audiofx_cli.chain.spec import check_rate, load_spec, parse_spec, preset_names
from audiofx_cli.errors import ChainSpecError, UsageError


def error_of(text: str, rate: float | None = None) -> str:
    with pytest.raises(ChainSpecError) as info:
        spec = parse_spec(text, source="c.yaml")
        if rate is not None:
            check_rate(spec, rate)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "stages:\n  - hihgpass: {cutoff_hz: 80}\n",
            "c.yaml:2:5: stage 1: unknown stage 'hihgpass' (did you mean 'highpass'?)",
        ),
        (
            "stages:\n  - gain: {gain_db: 1}\n  - peaking: {freq_hz: 3000, gain_db: 3, qq: 1.0}\n",
            "c.yaml:3:42: stage 2 'peaking': key 'qq': unknown key (did you mean 'q'?)",
        ),
        (
            "stages:\n  - highpass\n",
            "c.yaml:2:5: stage 1 'highpass': missing required key 'cutoff_hz'",
        ),
        (
            "stages:\n  - highpass: {cutoff_hz: '80'}\n",
            "c.yaml:2:16: stage 1 'highpass': key 'cutoff_hz': expected a number, "
            "got '80' (string)",
        ),
        ("stages:\n  - highpass: {cutoff_hz: .nan}\n", "key 'cutoff_hz': must be a finite number"),
        ("stages:\n  - highpass: {cutoff_hz: -5}\n", "key 'cutoff_hz': must be > 0 Hz, got -5"),
        ("stages:\n  - highpass: {cutoff_hz: 100, order: 0}\n", "key 'order': must be >= 1, got 0"),
        ("stages:\n  - highpass: {cutoff_hz: 100, order: 2.5}\n", "expected an integer, got 2.5"),
        (
            "stages:\n  - highpass: {cutoff_hz: 100, order: 3, type: linkwitz_riley}\n",
            "linkwitz_riley needs an even order, got 3",
        ),
        (
            "stages:\n  - highpass: {cutoff_hz: 100, type: butter}\n",
            "key 'type': must be one of butterworth | chebyshev1",
        ),
        (
            "stages:\n  - peaking: {freq_hz: 100, gain_db: 1, q: 0}\n",
            "key 'q': must be >= 0.001, got 0",
        ),
        (
            "stages:\n  - bandpass: {low_hz: 500, high_hz: 300}\n",
            "key 'high_hz': must be above low_hz (500 Hz), got 300",
        ),
        ("stages:\n  - gain: {gain_db: true}\n", "expected a number, got true (boolean)"),
        (
            "stages:\n  - gain: {gain_db: 1, gain_db: 2}\n",
            "c.yaml:2:24: stage 1 'gain': duplicate key",
        ),
        ("stages:\n  - gain: 3\n", "stage 1 'gain': parameters must be a mapping"),
        ("stages:\n  - {gain: {gain_db: 1}, dc_remove: null}\n", "one-key mapping"),
        (
            "stagse:\n  - gain: {gain_db: 1}\n",
            "c.yaml:1:1: unknown top-level key 'stagse' (did you mean 'stages'?)",
        ),
        ("name: x\n", "missing 'stages:'"),
        ("", "the chain file is empty"),
        ("stages:\n  - highpass: {cutoff_hz: 80\n", "c.yaml:3:1: invalid YAML"),
        ("stages: 5\n", "stages must be a list of stages"),
        ("!!python/object/apply:os.system ['ls']\n", "YAML tag"),
        ("stages:\n  - gain: {gain_db: !!python/name:os.system }\n", "c.yaml:2:21: YAML tag"),
        ("stages:\n  - module: {name: os.system}\n", "'os.system' is not allowed"),
        ("stages:\n  - module: {name: torch.nn.functional.relu}\n", "is not allowed"),
        ("stages:\n  - sos: {sections: [[1, 0, 0, 1, -2.5, 1.2]]}\n", "filter is unstable"),
        (
            "stages:\n  - sos: {sections: [[1, 0, 0, 1]]}\n",
            "section 0 must be [b0, b1, b2, a0, a1, a2]",
        ),
        ("stages:\n  - ba: {b: [1], a: [1, -1.0]}\n", "filter is unstable: a pole has magnitude 1"),
        (
            "stages:\n  - parallel:\n      branches:\n        - [{lowpass: {cutoff_hz: 100}}]\n"
            "        - [{lowpass: {cutof_hz: 100}}]\n",
            "c.yaml:5:23: stage 1 'parallel' > branch 2 > stage 1 'lowpass': "
            "key 'cutof_hz': unknown",
        ),
        (
            "stages:\n  - parallel: {branches: [[dc_remove]], weights: [1, 2]}\n",
            "key 'weights': needs one weight per branch (1), got 2",
        ),
    ],
)
def test_spec_errors(text, expected):
    assert expected in error_of(text)


@pytest.mark.parametrize(
    "text,rate,expected",
    [
        (
            "stages:\n  - highpass: {cutoff_hz: 30000}\n",
            48000,
            "c.yaml:2:16: stage 1 'highpass': key 'cutoff_hz': must be below Nyquist (24000 Hz at "
            "48000 Hz), got 30000 Hz",
        ),
        ("stages:\n  - lowpass: {cutoff_hz: 22050}\n", 44100, "must be below Nyquist (22050 Hz"),
        ("stages:\n  - fir: {pass: bandpass, cutoff_hz: [100, 9000]}\n", 16000, "got 9000 Hz"),
        (
            "stages:\n  - parallel:\n      branches:\n"
            "        - [{peaking: {freq_hz: 9000, gain_db: 1}}]\n",
            16000,
            "c.yaml:4:23: stage 1 'parallel' > branch 1 > stage 1 'peaking': key 'freq_hz'",
        ),
    ],
)
def test_rate_dependent_errors(text, rate, expected):
    parse_spec(text, source="c.yaml")  # valid without a rate
    assert expected in error_of(text, rate)


def test_valid_spec_forms():
    spec = parse_spec("stages:\n  - dc_remove\n  - dc_remove:\n  - gain: {gain_db: 2}\n")
    assert [s.name for s in spec.stages] == ["dc_remove", "dc_remove", "gain"]
    assert spec.stages[0].params == {"cutoff_hz": 5.0, "order": 1}
    bare_list = parse_spec("- gain: {gain_db: 1}\n")
    assert bare_list.stages[0].params == {"gain_db": 1.0}
    assert parse_spec("stages: []\n").stages == []


def test_presets_load_and_are_valid_at_common_rates():
    assert {"vocal", "rumble", "telephone", "podcast", "podcast-eq", "broadcast", "audiobook",
            "speech-ml", "cleanup"} <= set(preset_names())  # fmt: skip
    for name in preset_names():
        spec = load_spec(name)
        assert spec.description
        for rate in (16000, 22050, 44100, 48000, 96000):
            if name == "telephone" or rate >= 16000:
                check_rate(spec, rate)
    check_rate(load_spec("telephone"), 8000)


def test_unknown_chain_names():
    with pytest.raises(
        UsageError, match="no chain file or preset named 'vocla'.*did you mean 'vocal'"
    ):
        load_spec("vocla")
    with pytest.raises(UsageError, match="chain file not found: missing.yaml"):
        load_spec("missing.yaml")


def test_to_dict_round_trips():
    text = (
        "name: t\nstages:\n  - parallel: {branches: [[{gain: {gain_db: 1}}], [dc_remove]]}\n"
        "  - lowpass: {cutoff_hz: 100}\n"
    )
    spec = parse_spec(text)
    import yaml

    again = parse_spec(yaml.safe_dump(spec.to_dict()))
    assert again.to_dict() == spec.to_dict()
