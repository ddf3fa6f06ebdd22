"""The committed stage reference STAGES.md is what `audiofx stages --markdown` renders now."""

from __future__ import annotations

import subprocess
import sys

from audiofx_cli.chain.registry import registry
from audiofx_cli.cli.stages import REGENERATE, stages_markdown
from tests.conftest import ROOT


def test_committed_stages_md_is_up_to_date():
    committed = (ROOT / "STAGES.md").read_text(encoding="utf-8")
    fresh = stages_markdown()
    assert committed == fresh, (
        f"STAGES.md is stale (the stage registry changed); regenerate it from the repository "
        f"root with:  {REGENERATE}"
    )


def test_cli_prints_the_same_reference():
    result = subprocess.run(
        [sys.executable, "-m", "audiofx_cli", "stages", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == stages_markdown()


def test_every_stage_has_its_section_parameters_and_example():
    text = stages_markdown()
    for name, stage in registry().items():
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        assert stage.example.strip() in section, name
        for param in stage.params:
            assert f"| `{param.name}` |" in section, (name, param.name)
    # a unit column, a range and a default, e.g. highpass cutoff_hz
    assert "| `cutoff_hz` | number | Hz | required | (0, Nyquist) | " in text
    assert "\\|" in text  # choices such as 'butterworth \| chebyshev1' are escaped in tables


def test_one_stage_in_markdown():
    text = stages_markdown(["gain"])
    assert text.startswith("### `gain`") and "- gain: {gain_db: -3}" in text
