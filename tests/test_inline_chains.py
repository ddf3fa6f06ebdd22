"""SoX habits on the command line: inline stages (-e), chain-free conversion, -r/-C/-b, user
presets and --dump-chain, end to end through real files and real processes.

The oracle for an inline stage is the same stage written in a chain file: the outputs must be
the same bytes (the chain file's own correctness is proven by the stage tests against scipy,
SoX and analytic references). Conversions are checked sample by sample against the input.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audiofx_cli.chain.inline import compose, dump_yaml, parse_inline
from audiofx_cli.chain.spec import parse_spec
from audiofx_cli.cli.chain_options import complete_chain, parse_rate
from audiofx_cli.errors import ChainSpecError, UsageError
from tests.conftest import CLI, unit_noise, write_audio

RATE = 48000


def run(args: list[str], cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def folder(tmp_path):
    """A mono and a stereo 48 kHz PCM_24 file, 0.5 s, and an isolated preset folder."""
    write_audio(tmp_path / "mono.wav", 0.5 * unit_noise(1, RATE // 2, seed=1), RATE, "PCM_24")
    write_audio(tmp_path / "st.wav", 0.5 * unit_noise(2, RATE // 2, seed=2), RATE, "PCM_24")
    return tmp_path


@pytest.fixture
def env(tmp_path):
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "AUDIOFX_PRESETS": ""}


# ---------------------------------------------------------------- parsing inline stages
@pytest.mark.parametrize(
    ("text", "name", "params"),
    [
        ("highpass:cutoff_hz=80", "highpass", {"cutoff_hz": 80}),
        ("highpass:cutoff_hz=80,order=4", "highpass", {"cutoff_hz": 80, "order": 4}),
        ("highpass cutoff_hz=80 order=4", "highpass", {"cutoff_hz": 80, "order": 4}),
        ("normalize:mode=lufs,target_db=-16", "normalize", {"mode": "lufs", "target_db": -16}),
        ("gain:gain_db=1e-3", "gain", {"gain_db": 0.001}),
        ("channels:map=[1, 0]", "channels", {"map": [1, 0]}),
        ("channels map=[1,0]", "channels", {"map": [1, 0]}),
        ("dc_remove", "dc_remove", {}),
        ("  pad: start_s=.5 , end_s=1  ", "pad", {"start_s": 0.5, "end_s": 1}),
        ("fir_taps:file='a b,c.npy'", "fir_taps", {"file": "a b,c.npy"}),
    ],
)
def test_inline_forms(text, name, params):
    assert parse_inline(text) == (name, params)


@pytest.mark.parametrize("text", ["", "=3", "highpass:cutoff_hz", "highpass;x=1", "a:b=1,b=2"])
def test_inline_syntax_errors(text):
    with pytest.raises(ValueError):
        parse_inline(text)


def test_inline_stages_validate_like_yaml():
    inline = compose(None, ["highpass:cutoff_hz=80,order=4", "gain gain_db=-3", "dc_remove"])
    yaml_spec = parse_spec(
        "stages:\n - highpass: {cutoff_hz: 80, order: 4}\n - gain: {gain_db: -3}\n - dc_remove\n"
    )
    assert [s.to_dict() for s in inline.stages] == [s.to_dict() for s in yaml_spec.stages]
    assert [s.label for s in inline.stages] == [
        "-e #1 'highpass'",
        "-e #2 'gain'",
        "-e #3 'dc_remove'",
    ]


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (["gain:gain_db=0", "highpass:cutof_hz=80"], "-e #2 'highpass': key 'cutof_hz': unknown"),
        (["highpass:cutoff_hz=x"], "-e #1 'highpass': key 'cutoff_hz': expected a number"),
        (["highpass:cutoff_hz=-5"], "-e #1 'highpass': key 'cutoff_hz'"),
        (["hihgpass"], "-e #1 'hihgpass': unknown stage 'hihgpass' (did you mean 'highpass'?)"),
        (["highpass cutoff_hz"], "-e #1: expected key=value"),
        (["peaking:freq_hz=1000"], "-e #1 'peaking': missing required key 'gain_db'"),
    ],
)
def test_inline_errors_name_the_option_and_key(stages, expected):
    with pytest.raises(ChainSpecError) as caught:
        compose(None, stages)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_rate_values_as_sox_takes_them():
    assert [parse_rate(t) for t in ("16000", "44.1k", "16k", "22050.0", "8kHz")] == [
        16000.0,
        44100.0,
        16000.0,
        22050.0,
        8000.0,
    ]
    with pytest.raises(UsageError, match="-R/--recursive"):
        parse_rate("--chain")


def test_shortcuts_come_after_the_chain_in_the_documented_order():
    spec = compose("vocal", ["gain:gain_db=-1"], rate_hz=16000, channels=1)
    names = [s.name for s in spec.stages]
    assert names[-3:] == ["gain", "mono", "resample"]
    assert names[:-3] == [s.name for s in compose("vocal").stages]
    assert spec.stages[-1].params["rate_hz"] == 16000
    with pytest.raises(UsageError, match="ends in features"):
        compose("mel-64", rate_hz=16000)


def test_chain_as_yaml_text():
    spec = compose("[{highpass: {cutoff_hz: 80}}, dc_remove]")
    assert [s.name for s in spec.stages] == ["highpass", "dc_remove"]
    assert spec.source == "--chain"


# ---------------------------------------------------------------- end to end
def test_inline_stages_give_the_chain_files_bytes(folder):
    chain = folder / "chain.yaml"
    chain.write_text("stages:\n  - highpass: {cutoff_hz: 80, order: 4}\n  - gain: {gain_db: -3}\n")
    a = run(["process", "st.wav", "-c", "chain.yaml", "-o", "a.wav"], folder)
    b = run(
        ["process", "st.wav", "-o", "b.wav", "-e", "highpass:cutoff_hz=80,order=4", "-e",
         "gain gain_db=-3"],
        folder,
    )  # fmt: skip
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert (folder / "a.wav").read_bytes() == (folder / "b.wav").read_bytes()


def test_preset_plus_inline_stage_and_dump_chain(folder):
    result = run(
        ["process", "st.wav", "-c", "vocal", "-e", "normalize:mode=peak,target_db=-1", "-o",
         "out.wav", "--dump-chain", "ran.yaml"],
        folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dumped = (folder / "ran.yaml").read_text()
    assert "normalize" in dumped and "highshelf" in dumped
    again = run(["process", "st.wav", "-c", "ran.yaml", "-o", "again.wav"], folder)
    assert again.returncode == 0, again.stderr
    assert (folder / "out.wav").read_bytes() == (folder / "again.wav").read_bytes()
    peak_db = 20 * np.log10(np.abs(sf.read(folder / "out.wav")[0]).max())
    assert abs(peak_db - -1.0) < 0.01  # the appended stage ran last
    refused = run(["process", "st.wav", "-c", "vocal", "-o", "x.wav", "--dump-chain", "ran.yaml"],
                  folder)  # fmt: skip
    assert refused.returncode == 2 and "exists" in refused.stderr
    assert not (folder / "x.wav").exists()


def test_nyquist_error_names_the_option_and_writes_nothing(folder):
    result = run(
        ["process", "st.wav", "-o", "out.wav", "-e", "gain:gain_db=0", "-e",
         "highpass:cutoff_hz=3e4"],
        folder,
    )  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "-e #2 'highpass': key 'cutoff_hz': must be below Nyquist" in line, line
    assert not (folder / "out.wav").exists()


def test_conversion_without_a_chain_is_bit_exact(folder):
    for target in ("copy.flac", "copy.wav", "copy.aiff"):
        result = run(["process", "st.wav", "-o", target], folder)
        assert result.returncode == 0, result.stderr
        original, rate = sf.read(folder / "st.wav", dtype="int32")
        copy, copy_rate = sf.read(folder / target, dtype="int32")
        assert copy_rate == rate and sf.info(folder / target).subtype == "PCM_24"
        assert np.array_equal(copy, original), target


def test_rate_channels_bits_shortcuts(folder):
    result = run(["process", "st.wav", "-o", "ml.flac", "-r", "16k", "-C", "1", "-b", "16"], folder)
    assert result.returncode == 0, result.stderr
    info = sf.info(folder / "ml.flac")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # the documented order, as a chain file: channels first, then the resampler
    chain = folder / "ml.yaml"
    chain.write_text("stages:\n  - mono\n  - resample: {rate_hz: 16000}\n")
    same = run(["process", "st.wav", "-c", "ml.yaml", "-o", "ref.flac", "--subtype", "PCM_16"],
               folder)  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert np.array_equal(sf.read(folder / "ml.flac")[0], sf.read(folder / "ref.flac")[0])
    # independent reference: scipy's polyphase resampler of the channel mean, float64, compared
    # below 6 kHz (the two anti-alias filters differ in their transition bands)
    x, _ = sf.read(folder / "st.wav", dtype="float64")
    reference = signal.resample_poly(x.mean(axis=1), 1, 3)
    y, _ = sf.read(folder / "ml.flac", dtype="float64")
    assert len(y) == len(reference) == RATE // 2 // 3
    band = signal.butter(8, 6000, fs=16000, output="sos")
    diff = signal.sosfiltfilt(band, y - reference)[200:-200]  # ends: the windows differ
    err = np.abs(diff).max() / np.abs(reference).max()
    assert err < 2e-3, err  # pass-band ripple of two designs plus 16-bit dither


def test_channels_shortcut_copies_mono_and_refuses_other_counts(folder):
    result = run(["process", "mono.wav", "-o", "st_out.wav", "-C", "2"], folder)
    assert result.returncode == 0, result.stderr
    y, _ = sf.read(folder / "st_out.wav", dtype="int32")
    x, _ = sf.read(folder / "mono.wav", dtype="int32")
    assert y.shape == (len(x), 2) and np.array_equal(y[:, 0], x) and np.array_equal(y[:, 1], x)
    refused = run(["process", "st.wav", "-o", "three.wav", "-C", "3"], folder)
    assert refused.returncode == 2 and "cannot make 3 channels from 2" in refused.stderr
    assert not (folder / "three.wav").exists()


def test_folder_batch_with_shortcuts_and_old_r_habit(folder):
    (folder / "in").mkdir()
    for name in ("mono.wav", "st.wav"):
        (folder / "in" / name).write_bytes((folder / name).read_bytes())
    result = run(
        ["process", "in", "--out-dir", "ml", "-r", "16000", "-C", "1", "-b", "16", "--name",
         "{stem}.flac", "-q"],
        folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("mono.flac", "st.flac"):
        info = sf.info(folder / "ml" / name)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    old = run(["process", "in", "-r", "-c", "vocal", "--out-dir", "o"], folder)
    assert old.returncode == 2 and "-R/--recursive" in old.stderr
    assert not (folder / "o").exists()


def test_validate_takes_inline_stages(folder):
    result = run(["validate", "-e", "highpass:cutoff_hz=80", "-e", "dc_remove"], folder)
    assert result.returncode == 0 and "2 stages" in result.stdout, result.stderr
    bad = run(["validate", "-e", "highpass:cutoff_hz=30000", "--sample-rate", "48000"], folder)
    assert bad.returncode == 2 and "-e #1 'highpass': key 'cutoff_hz'" in bad.stderr
    dumped = run(["validate", "vocal", "-e", "gain:gain_db=-1", "--dump-chain", "-"], folder)
    assert dumped.returncode == 0
    assert [s.name for s in parse_spec(dumped.stdout).stages][-1] == "gain"
    assert dump_yaml(parse_spec(dumped.stdout)).strip() == dumped.stdout.strip()


# ---------------------------------------------------------------- user presets
def test_user_presets_save_list_show_use_remove(folder, env):
    chain = folder / "mine.yaml"
    chain.write_text(
        "# my voice\nstages:\n  - highpass: {cutoff_hz: 100}\n  - gain: {gain_db: -2}\n"
    )
    saved = run(["presets", "save", "my-voice", "mine.yaml"], folder, env)
    assert saved.returncode == 0, saved.stderr
    path = folder / "config" / "audiofx" / "presets" / "my-voice.yaml"
    assert path.read_text() == chain.read_text()  # kept as written, comments too
    listed = run(["presets", "list"], folder, {**env, "COLUMNS": "200"})
    assert "my-voice" in listed.stdout and "vocal" in listed.stdout
    assert "# my voice" in run(["presets", "show", "my-voice"], folder, env).stdout
    assert "my-voice" in run(["stages"], folder, {**env, "COLUMNS": "300"}).stdout
    a = run(["process", "st.wav", "-c", "my-voice", "-o", "a.wav"], folder, env)
    b = run(["process", "st.wav", "-c", "mine.yaml", "-o", "b.wav"], folder, env)
    assert a.returncode == b.returncode == 0, a.stderr
    assert (folder / "a.wav").read_bytes() == (folder / "b.wav").read_bytes()
    assert run(["presets", "remove", "my-voice"], folder, env).returncode == 0
    assert not path.exists()
    gone = run(["process", "st.wav", "-c", "my-voice", "-o", "c.wav"], folder, env)
    assert gone.returncode == 2 and "no chain file or preset named 'my-voice'" in gone.stderr


def test_presets_from_inline_stages_and_validation_before_saving(folder, env):
    saved = run(["presets", "save", "hp", "-e", "highpass:cutoff_hz=80"], folder, env)
    assert saved.returncode == 0, saved.stderr
    text = (folder / "config" / "audiofx" / "presets" / "hp.yaml").read_text()
    assert parse_spec(text).name == "hp"
    bad = run(["presets", "save", "bad", "-e", "highpass:cutoff_hz=-1"], folder, env)
    assert bad.returncode == 2 and not (folder / "config/audiofx/presets/bad.yaml").exists()
    exists = run(["presets", "save", "hp", "-e", "dc_remove"], folder, env)
    assert exists.returncode == 2 and "--force" in exists.stderr
    assert run(["presets", "save", "hp", "-e", "dc_remove", "--force"], folder, env).returncode == 0


def test_a_user_preset_never_shadows_a_shipped_one(folder, env):
    refused = run(["presets", "save", "vocal", "-e", "dc_remove"], folder, env)
    assert refused.returncode == 2 and "shipped preset" in refused.stderr
    hand_made = folder / "config" / "audiofx" / "presets"
    hand_made.mkdir(parents=True)
    (hand_made / "vocal.yaml").write_text("stages:\n  - gain: {gain_db: -6}\n")
    clash = run(["process", "st.wav", "-c", "vocal", "-o", "x.wav"], folder, env)
    assert clash.returncode == 2
    assert "--chain preset:vocal or --chain user:vocal" in clash.stderr
    assert not (folder / "x.wav").exists()
    mine = run(["process", "st.wav", "-c", "user:vocal", "-o", "mine.wav"], folder, env)
    shipped = run(["process", "st.wav", "-c", "preset:vocal", "-o", "shipped.wav"], folder, env)
    assert mine.returncode == shipped.returncode == 0
    x, _ = sf.read(folder / "st.wav")
    y, _ = sf.read(folder / "mine.wav")
    assert np.allclose(y, x * 10 ** (-6 / 20), atol=2**-22)
    assert run(["presets", "remove", "preset:vocal"], folder, env).returncode == 2


def test_preset_path_list_and_completion(folder, tmp_path, monkeypatch):
    first, second = tmp_path / "p1", tmp_path / "p2"
    second.mkdir()
    (second / "team-eq.yaml").write_text("stages:\n  - gain: {gain_db: -1}\n")
    monkeypatch.setenv("AUDIOFX_PRESETS", f"{first}{os.pathsep}{second}")
    monkeypatch.chdir(folder)
    assert "team-eq" in complete_chain("team")
    assert "user:team-eq" in complete_chain("user:")
    assert "vocal" in complete_chain("voc")
    env = {"AUDIOFX_PRESETS": f"{first}{os.pathsep}{second}"}
    used = run(["process", "st.wav", "-c", "team-eq", "-o", "t.wav"], folder, env)
    assert used.returncode == 0, used.stderr
    saved = run(["presets", "save", "mine", "-e", "dc_remove"], folder, env)
    assert saved.returncode == 0 and (first / "mine.yaml").is_file()  # the first folder


def test_help_shows_the_sox_habits():
    out = subprocess.run([*CLI, "process", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"}, check=True).stdout  # fmt: skip
    for text in ("-e highpass:cutoff_hz=80", "-r 16k -C 1 -b 16", "--dump-chain", "-o out.flac"):
        assert text in out, text
    assert sys.executable  # the CLI above is this interpreter's
