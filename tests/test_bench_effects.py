"""`audiofx bench --suite effects` on tiny configurations: every table entry builds a valid
audiofx stage, rows and CSV columns, ratios from the same run, SoX and pedalboard rows (skipped
cleanly where absent), unknown stages and mixed suites refused (exit 2). No timing assertions.
"""

from __future__ import annotations

import math
import shutil

import pytest

from audiofx_cli.bench import effects
from audiofx_cli.bench.effects_table import EFFECTS, EffectContext
from audiofx_cli.bench.report import read_csv
from audiofx_cli.cli.main import app

RATE = 44100
TINY = ["--suite", "effects", "--duration", "0.3", "--repeat", "1", "--warmup", "1",
        "--no-progress"]  # fmt: skip


def test_every_entry_is_a_valid_audiofx_stage(tmp_path):
    """The table names registered stages with parameters they accept (validated and built),
    and every label is unique."""
    from audiofx_cli.api import load_chain

    ir, taps = effects.write_impulse_response(tmp_path, RATE, 0)
    ctx = EffectContext(RATE, 2, ir, taps)
    for case in EFFECTS:
        load_chain([{case.stage: case.stage_params(ctx)}], RATE)
    assert len({case.label for case in EFFECTS}) == len(EFFECTS)
    assert {"compressor", "limiter", "gate", "normalize-lufs", "fade"} <= set(effects.stage_names())


def test_rows_csv_and_ratios(runner, tmp_path):
    backends = "audiofx,sox" if shutil.which("sox") else "audiofx"
    out = tmp_path / "effects.csv"
    args = [*TINY, "--stages", "compressor,normalize-lufs", "--backends", backends]
    result = runner.invoke(app, ["bench", *args, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert list(rows[0]) == effects.CSV_COLUMNS
    ours = {r["stage"]: r for r in rows if r["backend"] == "audiofx"}
    assert set(ours) == {"compressor", "normalize-lufs"}
    for row in ours.values():
        assert row["flag"] == "ok" and float(row["rel_error"]) < 1e-5
        assert int(row["samples"]) == 2 * round(0.3 * RATE)
    if shutil.which("sox"):  # the compressor has a SoX row, loudness normalisation none
        sox = [r for r in rows if r["backend"] == "sox"]
        assert [r["stage"] for r in sox] == ["compressor"]
        assert "copy alone" in sox[0]["note"]
        if sox[0]["median_s"] and math.isfinite(float(sox[0]["median_s"])):
            expected = float(sox[0]["median_s"]) / float(ours["compressor"]["median_s"])
            assert float(ours["compressor"]["speedup_vs_sox"]) == pytest.approx(expected)


def test_pedalboard_rows_when_installed(tmp_path):
    pytest.importorskip("pedalboard", reason="pedalboard is optional (pip install pedalboard)")
    options = effects.EffectsOptions(
        stages=["limiter", "tremolo"], durations_s=[0.2], backends=["audiofx", "pedalboard"],
        repeat=1, warmup=0,
    )  # fmt: skip
    result = effects.run_effects(options)
    by = {(r.stage, r.backend): r for r in result.rows}
    assert set(by) == {("limiter", "audiofx"), ("limiter", "pedalboard"), ("tremolo", "audiofx")}
    ratio = by["limiter", "pedalboard"].median_s / by["limiter", "audiofx"].median_s
    assert by["limiter", "audiofx"].speedup_vs_pedalboard == pytest.approx(ratio)


def test_missing_backend_and_unregistered_stage_are_notes(monkeypatch):
    monkeypatch.setattr(effects, "unavailable", lambda b: "sox: skipped" if b == "sox" else None)
    fake = EFFECTS[0].__class__("vocoder", "vocoder", {})
    monkeypatch.setattr(effects, "EFFECTS", (fake, *EFFECTS[:1]))
    options = effects.EffectsOptions(durations_s=[0.1], backends=["audiofx", "sox"], repeat=1,
                                     warmup=0)  # fmt: skip
    result = effects.run_effects(options)
    assert [(r.stage, r.backend) for r in result.rows] == [("compressor", "audiofx")]
    assert "sox: skipped" in result.notes
    assert any("vocoder: skipped, no stage 'vocoder'" in n for n in result.notes)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stages", "vocoder"], "unknown 'vocoder'"),
        (["--suite", "effects,iir"], "runs on its own"),
        (["--backends", "scipy"], "unknown 'scipy'"),
        (["--device", "cuda"], "runs on the CPU"),
    ],
)
def test_bad_arguments_exit_2(runner, args, message):
    result = runner.invoke(app, ["bench", *TINY, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_stages_option_needs_the_effects_suite(runner):
    result = runner.invoke(app, ["bench", "--suite", "iir", "--stages", "gate"])
    assert result.exit_code == 2 and "--suite effects" in result.output


def test_signal_spans_the_envelope():
    x = effects.program_signal(2, 8 * RATE, RATE, 0)
    assert x.dtype.name == "float32" and abs(float(abs(x).max()) - 1.0) < 1e-6
    quiet = abs(x[:, 2 * RATE - 2000 : 2 * RATE + 2000]).max()  # the envelope's -60 dB trough
    assert quiet < 0.01
