"""Start-up: `--help`, `stages` and `validate` import neither torch nor the compilers (numba,
llvmlite) nor scipy; the IIR kernels are only compiled (or loaded from the disk cache) when a
filter first runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "scipy", "numba", "llvmlite")


def test_help_stages_validate_import_no_heavy_modules():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audiofx_cli.cli.main import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['stages'], ['stages', 'highpass'], ['process', '--help'],\n"
        "             ['validate', 'vocal', '--sample-rate', '48000'],\n"
        "             ['validate', 'podcast', '--sample-rate', '44100']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        f"print(*[name in sys.modules for name in {HEAVY!r}])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False"] * len(HEAVY), result.stdout


def test_building_a_chain_does_not_compile_kernels():
    code = (
        "import sys\n"
        "from audiofx_cli import load_chain\n"
        "load_chain([{'highpass': {'cutoff_hz': 80}}, {'lowpass': {'cutoff_hz': 5000}}], 48000)\n"
        "print('llvmlite' in sys.modules, 'numba' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
