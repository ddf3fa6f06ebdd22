"""`audiofx plot` end to end, and the self-documenting CLI: --version, completion, help
examples, command suggestions, the missing-matplotlib hint, and the torch-free help paths."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiofx_cli.cli.main import app
from tests.conftest import file_hash, run_cli, write_audio


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def tone_file(tmp_path: Path) -> Path:
    t = np.arange(8000) / 8000
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 50 * t)
    return write_audio(tmp_path / "tone.wav", np.stack([x, 0.5 * x]), 8000)


def test_chain_response_png_has_the_requested_size(runner, tmp_path):
    out = tmp_path / "vocal_response.png"
    args = ["plot", "vocal", "--sample-rate", "48000", "-o", str(out), "--size", "900x640"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert png_size(out) == (900, 640)
    assert out.stat().st_size > 20_000  # curves, legend and labels, not an empty canvas


def test_chain_response_default_size_grows_with_panels_and_svg(runner, tmp_path):
    png = tmp_path / "r.png"
    show = "magnitude,phase,group-delay,impulse"
    args = ["plot", "podcast-eq", "-r", "44100", "--show", show, "-o", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert png_size(png) == (1200, 110 + 4 * 300)
    svg = tmp_path / "r.svg"
    result = runner.invoke(app, ["plot", "telephone", "-o", str(svg)])
    assert result.exit_code == 0, result.output
    text = svg.read_text()
    assert "<svg" in text and "magnitude (dB)" in text and "frequency (Hz)" in text
    assert "telephone: response at 48000 Hz" in text


def test_chain_file_with_dynamics_gets_a_static_panel(runner, tmp_path):
    chain = tmp_path / "dyn.yaml"
    chain.write_text(
        "name: dyn\nstages:\n  - highpass: {cutoff_hz: 100}\n"
        "  - compressor: {threshold_db: -24, ratio: 3, knee_db: 6}\n  - limiter: {ceiling_db: -1}\n"
    )
    out = tmp_path / "dyn.svg"
    result = runner.invoke(app, ["plot", str(chain), "-r", "44100", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "static level curves" in text and "input level (dBFS)" in text
    assert "not shown (non-linear:" in text and "static curve shown)" in text  # wrapped


def test_audio_picture_and_before_after(runner, tone_file, tmp_path):
    out = tmp_path / "tone.png"
    result = runner.invoke(app, ["plot", str(tone_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1200, 80 + 420)
    both = tmp_path / "both.png"
    result = runner.invoke(app, ["plot", str(tone_file), "--chain", "telephone", "-o", str(both)])
    assert result.exit_code == 0, result.output
    assert png_size(both) == (1200, 80 + 2 * 420)
    svg = tmp_path / "both.svg"
    result = runner.invoke(app, ["plot", str(tone_file), "-c", "telephone", "-o", str(svg)])
    assert result.exit_code == 0, result.output
    text = svg.read_text()
    for label in ("time (s)", "frequency (Hz)", "level (dBFS)", "after 'telephone'", "8000 Hz"):
        assert label in text, label


def test_feature_file_picture(runner, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mel.npz"
    np.savez(
        path,
        data=(rng.random((2, 40, 120)) ** 2).astype(np.float32),
        channel=np.arange(2),
        mel_hz=np.geomspace(60, 3800, 40),
        time_s=np.arange(120) * 0.01,
        sample_rate=np.float64(8000),
        frame_rate=np.float64(100),
        chain=json.dumps({"name": "mel-40", "stages": [{"mel": {"power": 2.0}}]}),
    )
    out = tmp_path / "mel.png"
    result = runner.invoke(app, ["plot", str(path), "-o", str(out), "--size", "800x500"])
    assert result.exit_code == 0, result.output
    assert png_size(out) == (800, 500)


def test_outputs_are_never_overwritten_without_overwrite(runner, tmp_path):
    out = tmp_path / "r.png"
    out.write_bytes(b"keep me")
    result = runner.invoke(app, ["plot", "vocal", "-o", str(out)])
    assert result.exit_code == 2
    assert "exists (use --overwrite" in result.output
    assert out.read_bytes() == b"keep me"
    result = runner.invoke(app, ["plot", "vocal", "-o", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert png_size(out)[0] == 1200
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".audiofx-tmp")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["plot", "vocal", "-o", "x.jpg"], "unknown figure extension '.jpg'; use one of png"),
        (["plot", "vocl", "-o", "x.png"], "did you mean 'vocal'?"),
        (["plot", "vocal", "--show", "magnitud", "-o", "x.png"], "did you mean 'magnitude'?"),
        (["plot", "vocal", "--chain", "rumble", "-o", "x.png"], "--chain does not apply"),
        (["plot", "missing.wav", "-o", "x.png"], "missing.wav: no such file"),
        (["plot", "vocal", "--size", "12x8", "-o", "x.png"], "200 .. 10000 pixels"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_input_file_is_never_the_output(runner, tone_file):
    before = file_hash(tone_file)
    result = runner.invoke(app, ["plot", str(tone_file), "-o", str(tone_file)])
    assert result.exit_code == 2  # .wav is not a figure extension
    result = runner.invoke(app, ["plot", str(tone_file), "-o", str(tone_file), "--overwrite"])
    assert result.exit_code == 2
    assert file_hash(tone_file) == before


def test_missing_matplotlib_prints_the_install_hint_and_exits_2(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # any 'import matplotlib' now raises ImportError\n"
        "from audiofx_cli.cli.main import main\n"
        f"sys.argv = ['audiofx', 'plot', 'vocal', '-o', {str(tmp_path / 'r.png')!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "pip install 'audiofx-cli[plot]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.png").exists()


def test_version_names_torch_and_python_without_importing_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audiofx_cli.cli.main import app\n"
        "out = CliRunner().invoke(app, ['--version']).output\n"
        "print(out.strip()); print('torch' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    version_line, imported = result.stdout.strip().splitlines()
    from importlib.metadata import version

    assert version_line.startswith("audiofx 0.")
    assert f"torch {version('torch')}" in version_line
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}." in version_line
    assert imported.split() == ["False", "False"]


def test_plot_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audiofx_cli.cli.main import app\n"
        "r = CliRunner()\n"
        "for args in (['plot', '--help'], ['stages', '--markdown'], ['--help']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        "print('torch' in sys.modules, 'matplotlib' in sys.modules, 'scipy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False", "False"], result.stderr


@pytest.mark.parametrize("command", ["process", "validate", "stages", "plot"])
def test_help_has_examples(runner, command):
    result = runner.invoke(app, [command, "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"audiofx {command}" in result.output
    if command == "plot":
        assert "pip install 'audiofx-cli[plot]'" in result.output  # not eaten as rich markup


def test_misspelt_command_suggests_the_right_one():
    result = run_cli("proces", "x.wav")
    assert result.returncode == 2
    assert "Did you mean" in result.stderr and "'process'" in result.stderr
    result = run_cli("stages", "higpass")
    assert result.returncode == 2
    assert "did you mean 'highpass'?" in result.stderr


def test_install_completion_writes_a_bash_completion_script(tmp_path):
    exe = shutil.which("audiofx") or str(Path(sys.executable).parent / "audiofx")
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    # typer otherwise guesses the shell from the parent processes (shellingham), which fails
    # under some launchers; with detection off, --install-completion takes the shell's name
    env["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = "1"
    result = subprocess.run(
        [exe, "--install-completion", "bash"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "audiofx.sh"
    assert script.is_file() and "_AUDIOFX_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()


def test_nan_input_and_feature_chains_are_refused(runner, tmp_path):
    x = np.zeros((1, 1000))
    x[0, 500] = np.nan
    bad = write_audio(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    result = runner.invoke(app, ["plot", str(bad), "-o", str(tmp_path / "nan.png")])
    assert result.exit_code == 1
    assert "NaN or Inf samples (first at frame 500)" in result.output
    good = write_audio(tmp_path / "ok.wav", 0.1 * np.ones((1, 1000)), 16000)
    args = ["plot", str(good), "--chain", "mel-64", "-o", str(tmp_path / "m.png")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "outputs features" in result.output and "audiofx plot feats.npz" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.wav", "ok.wav"]
