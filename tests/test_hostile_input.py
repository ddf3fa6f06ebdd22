"""Hostile and sloppy input, case by case: numbers as people write them (YAML 1.2 core schema),
YAML bombs and deep nesting, special and oversized files named by a chain or as inputs, module
stages too big to build, pads and tails too long to make, outputs too big for their format.
Every refusal is one line, comes before the work it would cause, and leaves nothing behind.
(tests/test_fuzz.py tries the same classes at random.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiofx_cli.chain.spec import (
    MAX_CHAIN_BYTES,
    MAX_NESTING,
    MAX_STAGES,
    check_rate,
    load_spec,
    parse_scalar,
    parse_spec,
)
from audiofx_cli.chain.yaml_core import MAX_YAML_DEPTH, MAX_YAML_NODES
from audiofx_cli.errors import ChainSpecError, UsageError
from audiofx_cli.io.chain_files import MAX_IR_RATIO, MAX_TAPS, MAX_TAPS_TEXT_BYTES
from tests.conftest import run_cli, unit_noise, write_audio


def spec_error(text: str, rate: float | None = None) -> str:
    with pytest.raises(ChainSpecError) as info:
        spec = parse_spec(text, source="c.yaml")
        if rate is not None:
            check_rate(spec, rate)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    return message


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    """The CLI's stderr: exactly one 'audiofx: error:' line, the given exit code."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("audiofx: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ---------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "text,value",
    [
        ("1e-3", 0.001),
        ("8e1", 80.0),
        ("1E3", 1000.0),
        ("+5", 5),
        (".5", 0.5),
        ("-2.5e+1", -25.0),
        ("2.", 2.0),
        ("-.5", -0.5),
        ("010", 10),  # YAML 1.2: decimal (YAML 1.1 read octal 8)
        ("0o17", 15),
        ("0x1F", 31),
        ("48_000", 48000),
        ("1_000.5", 1000.5),
        (".inf", float("inf")),
        ("-.Inf", float("-inf")),
        ("true", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("", None),
    ],
)
def test_parse_scalar_numbers_and_constants(text, value):
    got = parse_scalar(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text", ["yes", "no", "on", "off", "y", "1:30", "2024-01-01", "0b101", "1e", "e3", "80 Hz", "="]
)
def test_parse_scalar_keeps_text_as_text(text):
    assert parse_scalar(text) == text


def test_parse_scalar_nan_and_huge_integers():
    assert np.isnan(parse_scalar(".nan"))
    assert parse_scalar("9" * 5000) == float("inf")  # beyond Python's int-from-text limit


@pytest.mark.parametrize(
    "stage,key,text,value",
    [
        ("gain", "gain_db", "1e-3", 0.001),
        ("highpass", "cutoff_hz", "8e1", 80.0),
        ("highpass", "cutoff_hz", "1E3", 1000.0),
        ("gain", "gain_db", "+5", 5.0),
        ("gain", "gain_db", ".5", 0.5),
        ("gain", "gain_db", "-2.5e+1", -25.0),
        ("fir", "taps", "1.01e2", 101),  # an integer key takes an integral float
        ("echo", "delays_ms", "[1e1, 2.5E1]", [10.0, 25.0]),
    ],
)
def test_numbers_in_chain_files(stage, key, text, value):
    extra = {"highpass": "", "fir": ", cutoff_hz: 1e3", "echo": ", decays: [.5, 2.5e-1]"}
    extra = extra.get(stage, "")
    spec = parse_spec(f"stages:\n  - {stage}: {{{key}: {text}{extra}}}\n")
    assert spec.stages[0].params[key] == value
    assert type(spec.stages[0].params[key]) is type(value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("gain: {gain_db: yes}", "key 'gain_db': expected a number, got 'yes' (string)"),
        ("gain: {gain_db: true}", "expected a number, got true (boolean)"),
        ("compressor: {link: yes}", "key 'link': expected true or false, got 'yes' (string)"),
        ("compressor: {link: 1}", "key 'link': expected true or false, got 1"),
        ("gain: {gain_db: loud}", "got 'loud' (string); write e.g. 80, -3.5, 1e-3 or 2.4e4"),
        ("gain: {gain_db: '3'}", "got '3' (string); write numbers without quotes"),
        ("gain: {gain_db: 1:30}", "got '1:30' (string)"),
        ("gain: {gain_db: !!int 1e3}", "c.yaml:2:21: invalid YAML: '1e3' is not a YAML int"),
        ("gain: {gain_db: !!bool yes}", "'yes' is not a YAML bool"),
        ("gain: {gain_db: !!binary '%%'}", "c.yaml:2:21: YAML tag tag:yaml.org,2002:binary"),
        ("gain: {gain_db: 1" + "0" * 400 + "}", "key 'gain_db': must be a finite number"),
        ("gain: {gain_db: 1e999}", "must be a finite number, got inf"),
    ],
)
def test_strict_booleans_and_clear_number_errors(text, expected):
    assert expected in spec_error(f"stages:\n  - {text}\n")


def test_explicit_float_tag_reads_integers():
    assert parse_spec("stages:\n  - gain: {gain_db: !!float 3}\n").stages[0].params == {
        "gain_db": 3.0
    }


def test_long_or_odd_names_give_short_one_line_errors():
    message = spec_error("stages:\n  - " + "x" * 100_000 + "\n")
    assert "100,000 characters" in message
    message = spec_error('stages:\n  - gain: {"a\\nb\\u0007": 1, gain_db: 1}\n')
    assert "a\\nb\\x07" in message


# ---------------------------------------------------------------------------- YAML bombs
def nested_alias_bomb(levels: int = 30) -> str:
    """The issue's file: each level's branches are two copies of the level below, so level k
    stands for 2^k stages (2^30 at 30 levels) in 2 + 2 * levels lines."""
    gain = "[{gain: {gain_db: 0}}]"
    text = f"stages:\n  - parallel:\n      branches: &l0 [{gain}, {gain}]\n"
    for k in range(1, levels):
        text += (
            f"  - parallel:\n      branches: &l{k} "
            f"[[{{parallel: {{branches: *l{k - 1}}}}}], [{{parallel: {{branches: *l{k - 1}}}}}]]\n"
        )
    return text


def test_nested_alias_bomb_is_refused_where_it_passes_the_node_cap():
    message = spec_error(nested_alias_bomb(30))
    assert f"more than {MAX_YAML_NODES:,} YAML nodes (aliases followed)" in message
    # stopped at the level whose expansion first passes the cap, not after expanding 2^30
    line = int(message.split(":")[1])
    assert 2 * 10 < line < 2 * 16, message


def test_nested_alias_bomb_cli_exit_2_one_line(tmp_path):
    chain = tmp_path / "bomb.yaml"
    chain.write_text(nested_alias_bomb(30))
    result = run_cli("validate", str(chain), timeout=60)
    assert "YAML nodes" in one_line_error(result, 2)


def nested_parallel(depth: int) -> str:
    text = "invert"
    for _ in range(depth):
        text = f"{{parallel: {{branches: [[{text}]]}}}}"
    return f"stages: [{text}]\n"


def test_small_bombs_below_the_caps_parse_and_the_stage_and_nesting_caps_hold():
    assert len(parse_spec(nested_alias_bomb(7)).stages) == 7  # 2^8 - 2 gains: within caps
    assert f"more than {MAX_STAGES} stages" in spec_error(nested_alias_bomb(8))
    parse_spec(nested_parallel(MAX_NESTING))
    assert f"nested more than {MAX_NESTING} deep" in spec_error(nested_parallel(MAX_NESTING + 1))


def test_stage_count_cap():
    text = "stages:\n" + "  - invert\n" * (MAX_STAGES + 1)
    assert f"more than {MAX_STAGES} stages" in spec_error(text)
    assert len(parse_spec("stages:\n" + "  - invert\n" * MAX_STAGES).stages) == MAX_STAGES


@pytest.mark.parametrize(
    "text,expected",
    [
        ("stages: &a\n  - parallel: {branches: [*a]}\n", "alias *a is inside its own anchor"),
        ("stages: " + "[" * 100 + "]" * 100 + "\n", f"deeper than {MAX_YAML_DEPTH} levels"),
        ("stages: " + "[" * 10_000 + "]" * 10_000 + "\n", "nesting depth|deeper than"),
        ("a: &x " + "[" * 62 + "]" * 62 + "\nb: [" + "[*x]," * 3 + "]\n", "deeper than"),
        ("stages: *nothing\n", "invalid YAML: found undefined alias"),
    ],
)
def test_cycles_depth_and_undefined_aliases(text, expected):
    assert re.search(re.escape(expected) if "|" not in expected else expected, spec_error(text))


def test_wide_alias_fanout_is_counted():
    text = "x: &x [" + ",".join(["1"] * 1000) + "]\nstages: [" + ",".join(["*x"] * 60) + "]\n"
    assert "YAML nodes" in spec_error(text)


@pytest.mark.parametrize(
    "body",
    [
        "  - fir_taps: {taps: [" + ",".join(["1e-3"] * 40_000) + "]}\n",  # big but allowed
        "  - fir_taps: {taps: [" + ",".join(["1"] * 300_000) + "]}\n",  # over the node cap
        "  - gain: {gain_db: 1}\n" * 38_000,  # over the stage cap
        "  - '" + "x" * 1_000_000 + "'\n",  # one huge name
        "# " + "x" * 1_000_000 + "\n  - invert\n",  # one huge comment
        "  - module: {name: torch.nn.Tanh, args: {" + "a: 1, " * 90_000 + "}}\n",
    ],
)
def test_any_file_up_to_a_mebibyte_is_answered(tmp_path, body):
    """Valid or one ChainSpecError; the work is bounded by the caps (each is O(MAX_YAML_NODES)
    at most; docs/reliability.md records the times)."""
    text = "stages:\n" + body
    assert len(text.encode()) <= MAX_CHAIN_BYTES
    try:
        parse_spec(text, source="c.yaml")
    except ChainSpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("c.yaml")


def test_chain_file_size_cap(tmp_path):
    chain = tmp_path / "big.yaml"
    chain.write_text("stages:\n  - invert\n" + "#" * MAX_CHAIN_BYTES + "\n")
    with pytest.raises(UsageError, match="at most 1.0 MiB"):
        load_spec(chain)


def test_chain_named_as_a_fifo_or_device_is_refused(tmp_path):
    fifo = tmp_path / "chain.yaml"
    os.mkfifo(fifo)
    for chain in (fifo, Path("/dev/zero")):
        with pytest.raises(UsageError, match="is not a file"):
            load_spec(chain)


# ---------------------------------------------------------------------------- files a chain names
def test_fir_taps_from_dev_zero_is_refused_before_reading(tmp_path):
    chain = tmp_path / "c.yaml"
    chain.write_text("stages:\n  - fir_taps: {file: /dev/zero}\n")
    speech = write_audio(tmp_path / "in.wav", 0.1 * unit_noise(1, 800), 8000)
    result = run_cli("process", str(speech), "-c", str(chain), "-o", str(tmp_path / "o.wav"))
    line = one_line_error(result, 2)
    assert "c.yaml:2:16: stage 1 'fir_taps': key 'file'" in line
    assert "/dev/zero is a character device, not a regular file" in line
    assert not (tmp_path / "o.wav").exists()


def test_convolve_ir_from_dev_zero_is_refused(tmp_path):
    message = spec_error("stages:\n  - convolve: {ir: /dev/zero}\n")
    assert "key 'ir': impulse response file /dev/zero is a character device" in message


def test_fifo_taps_and_ir_never_block(tmp_path):
    """Opening a FIFO with no writer would wait forever: it is refused from stat alone."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list[str] = []

    def parse() -> None:
        for text in (f"fir_taps: {{file: {fifo}}}", f"convolve: {{ir: {fifo}}}"):
            try:
                parse_spec(f"stages:\n  - {text}\n")
            except ChainSpecError as exc:
                result.append(str(exc))

    worker = threading.Thread(target=parse, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "parsing blocked on a FIFO"
    assert len(result) == 2 and all("is a FIFO (named pipe)" in m for m in result)


def test_folder_as_taps_file(tmp_path):
    assert "is a folder, not a regular file" in spec_error(
        f"stages:\n  - fir_taps: {{file: {tmp_path}}}\n"
    )


def test_oversized_taps_files_refused_from_their_size(tmp_path):
    text = tmp_path / "taps.txt"
    with open(text, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(MAX_TAPS_TEXT_BYTES + 1)
    message = spec_error(f"stages:\n  - fir_taps: {{file: {text}}}\n")
    assert "taps file" in message and "MiB; at most" in message
    npy = tmp_path / "taps.npy"
    with open(npy, "wb") as handle:
        handle.truncate(100 << 20)
    assert "MiB; at most" in spec_error(f"stages:\n  - fir_taps: {{file: {npy}}}\n")


def test_npy_header_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    path = tmp_path / "lie.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        )
        handle.write(b"\0" * 64)
    message = spec_error(f"stages:\n  - fir_taps: {{file: {path}}}\n")
    assert f"taps must be at most {MAX_TAPS:,} real numbers" in message
    np.save(tmp_path / "c.npy", np.ones(4, dtype=np.complex128))
    assert "real numbers" in spec_error(f"stages:\n  - fir_taps: {{file: {tmp_path}/c.npy}}\n")
    np.save(tmp_path / "ok.npy", np.array([0.25, 0.5, 0.25]))
    spec = parse_spec(f"stages:\n  - fir_taps: {{file: {tmp_path}/ok.npy}}\n")
    assert spec.stages[0].params["file"].endswith("ok.npy")


def test_text_taps_over_the_tap_count(tmp_path):
    path = tmp_path / "taps.txt"
    path.write_text("0 " * (MAX_TAPS + 1))
    assert f"at most {MAX_TAPS:,}" in spec_error(f"stages:\n  - fir_taps: {{file: {path}}}\n")


def test_one_big_file_named_many_times_is_read_once_and_bounded(tmp_path):
    path = tmp_path / "taps.npy"
    np.save(path, np.full(1_000_001, 1e-6))
    text = f"stages: [&s {{fir_taps: {{file: {path}}}}}, " + ", ".join(["*s"] * 40) + "]\n"
    message = spec_error(text)
    assert "stage 34 'fir_taps': key 'file': the files this chain names hold more than" in message


def test_ir_limits_from_the_header(tmp_path):
    long_ir = tmp_path / "long.wav"
    sf.write(long_ir, np.zeros(61 * 1000), 1000)
    assert "61.0 s long (at most 60 s)" in spec_error(f"stages:\n  - convolve: {{ir: {long_ir}}}\n")
    odd = tmp_path / "odd.wav"
    sf.write(odd, np.r_[1.0, np.zeros(99)], 44099)
    text = f"stages:\n  - convolve: {{ir: {odd}}}\n"
    check_rate(parse_spec(text), 48000)  # 48000/44099 in lowest terms: a 960k-tap filter, fine
    message = spec_error(text, rate=192000)
    assert f"ratio 192000/44099; at most {MAX_IR_RATIO}" in message
    wide = tmp_path / "wide.wav"  # 60 s x 4 ch at 8 kHz: 1.9 M samples, 46 M at 192 kHz
    sf.write(wide, np.zeros((60 * 8000, 4), dtype=np.int16), 8000)
    message = spec_error(f"stages:\n  - convolve: {{ir: {wide}}}\n", rate=192000)
    assert "resampled to 192000 Hz has 11,520,000 frames x 4 channels" in message


def test_ir_that_is_not_audio(tmp_path):
    path = tmp_path / "ir.wav"
    path.write_bytes(b"RIFF" + os.urandom(200))
    assert "cannot read impulse response" in spec_error(f"stages:\n  - convolve: {{ir: {path}}}\n")


# ---------------------------------------------------------------------------- module stages
MODULE_BUILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a 10 GB allocation cannot pass
from audiofx_cli.api import load_chain
from audiofx_cli.errors import ChainSpecError
for name, args in eval(sys.argv[1]):
    try:
        load_chain([{"module": {"name": name, "args": args}}], 48000)
        print("built")
    except ChainSpecError as exc:
        print(exc)
"""
TOO_BIG_MODULES = [  # (name, args, expected message)
    (
        "torch.nn.Linear",
        {"in_features": 100_000, "out_features": 100_000},
        "integer arguments multiply to 10,000,000,000, over the 4,194,304 parameters",
    ),
    ("torch.nn.Linear", {"in_features": 50_000, "out_features": 50_000}, "4,194,304 parameters"),
    (
        "torch.nn.LayerNorm",
        {"normalized_shape": [2048, 2048]},
        "has 8,388,608 parameters and buffers (32 MiB as float32); at most 4,194,304",
    ),
    ("torch.nn.Upsample", {"scale_factor": 1e9}, "not a memoryless, sample-wise module"),
    ("torch.nn.PReLU", {"num_parameters": 1}, "built"),
]


def test_module_stage_size_is_refused_before_allocation():
    """Built in a process that may not map more than 4 GiB: a guard that allocated first would
    fail differently (each message names the cap, not an allocation failure)."""
    cases = [(name, args) for name, args, _ in TOO_BIG_MODULES]
    result = subprocess.run(
        [sys.executable, "-c", MODULE_BUILD, repr(cases)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(TOO_BIG_MODULES), result.stdout
    for line, (_, _, expected) in zip(lines, TOO_BIG_MODULES, strict=True):
        assert expected in line


# ---------------------------------------------------------------------------- inputs
def test_a_fifo_as_the_input_fails_with_one_line(tmp_path):
    source = tmp_path / "in.wav"
    os.mkfifo(source)
    out = tmp_path / "out.wav"
    result = run_cli("process", str(source), "-c", "rumble", "-o", str(out), timeout=120)
    line = one_line_error(result, 1)
    assert "in.wav: is a FIFO (named pipe), not a regular audio file; pipe a stream" in line
    assert not out.exists()


def test_special_files_in_a_batch_are_reported_and_the_batch_goes_on(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    good = write_audio(tmp_path / "good.wav", 0.1 * unit_noise(1, 800), 8000)
    out = tmp_path / "out"
    result = run_cli(
        "process", str(fifo), str(good), "/dev/zero", "-c", "rumble", "--out-dir", str(out),
        "-q", timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("audiofx: error")]
    assert len(errors) == 2 and "is a FIFO" in errors[0] and "character device" in errors[1]
    assert sorted(p.name for p in out.iterdir()) == ["good.wav"]


# ---------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "stage,expected",
    [
        (
            "pad: {start_s: 1e5}",
            "key 'start_s': silence of 100000 s is 4,800,000,000 frames at 48000 Hz "
            "(17.9 GiB per channel as float32, made at once); at most 134,217,728 frames",
        ),
        ("pad: {end_s: 3e3}", "key 'end_s': silence of 3000 s is 144,000,000 frames"),
        ("reverb: {tail_s: 6e2}", "key 'tail_s': a tail of 600 s is 230,400,000 frames"),
        ("delay: {tail_s: 600}", "key 'tail_s': a tail of 600 s"),
        ("echo: {delays_ms: [1], decays: [.5], tail_s: 600}", "key 'tail_s': a tail of 600 s"),
    ],
)
def test_pads_and_tails_too_long_to_make(stage, expected):
    rate = 48000 if "pad" in stage else 384000
    assert expected in spec_error(f"stages:\n  - {stage}\n", rate=rate)
    check_rate(parse_spec(f"stages:\n  - {stage}\n"), 1000)  # fine at a low rate


def test_output_its_format_cannot_hold_is_refused_before_writing(tmp_path):
    source = tmp_path / "quiet.flac"  # 750 s of stereo silence at 1 kHz: a few kB of FLAC
    sf.write(source, np.zeros((750 * 1000, 2), dtype=np.int16), 1000, subtype="PCM_16")
    chain = tmp_path / "up.yaml"
    chain.write_text("stages:\n  - resample: {rate_hz: 1536000}\n")
    out = tmp_path / "out.wav"
    result = run_cli("process", str(source), "-c", str(chain), "-o", str(out), timeout=120)
    line = one_line_error(result, 2)
    assert "out.wav: the output would be 1,152,000,000 frames x 2 ch of PCM_16 = 4.29 GiB" in line
    assert "WAV holds at most 4.00 GiB (write .rf64, .w64 or .flac)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.flac", "up.yaml"]


# ---------------------------------------------------------------------------- found by fuzzing
@pytest.mark.parametrize(
    "b,a",
    [
        ([0.0, 1.0], [1.0, -0.5]),  # a one-sample delay: tf2sos alone dropped it
        ([0.0, 0.0, 0.5], [1.0, -0.5, 0.1]),
        ([1e-16, 0.5, 0.25], [1.0, -0.5]),  # a leading coefficient scipy counts as zero
        ([0.0], [1.0, 0.3]),  # all-zero numerator: y = 0 (tf2zpk divided by b[0] = 0)
        ([0.2, 0.3], [1.0, 0.5, 0.1, 0.02]),
    ],
)
def test_ba_matches_lfilter_with_leading_zeros(b, a):
    import scipy.signal
    import torch

    from audiofx_cli import load_chain

    x = np.random.default_rng(0).standard_normal(200)
    chain = load_chain([{"ba": {"b": b, "a": a}}], 8000, dtype=torch.float64)
    y = chain(torch.from_numpy(x)[None]).numpy()[0]
    np.testing.assert_allclose(y, scipy.signal.lfilter(b, a, x), atol=1e-12)


def test_degenerate_auditory_and_mel_parameters():
    from audiofx_cli.dsp.auditory import adapt_design
    from audiofx_cli.dsp.modfilter import modfilterbank_mfc

    np.testing.assert_array_equal(modfilterbank_mfc(5e-324), modfilterbank_mfc(3.0))
    with np.errstate(all="raise"):
        assert adapt_design(8000, (5e-324,), 0.0).a1[0] == 0.0  # tau -> 0: no memory
    message = spec_error("stages:\n  - mel: {f_max_hz: 5e-324, n_mels: 4}\n", rate=8000)
    assert "4 bands between 0 and 4.94066e-324 Hz are narrower than 0.001 Hz each" in message


@pytest.mark.parametrize("name", ["spectrogram", "mfcc"])
def test_hop_longer_than_the_frame_streams_exactly(name):
    """hop > n_fft: the next frame starts past the samples received so far (frames were
    counted from the wrong place after the first chunk)."""
    import torch

    from audiofx_cli import load_chain
    from tests.test_stage_contract import chunked

    chain = load_chain([{name: {"hop": 4096, "win_length": 256}}], 8000, dtype=torch.float64)
    x = torch.from_numpy(unit_noise(1, 13000, seed=5))
    whole = chain(x)
    assert whole.shape[-1] == 4
    for sizes in ([500] * 26, [1] * 50 + [13000], [3, 17, 999, 5000, 10000]):
        torch.testing.assert_close(chunked(chain, x, sizes), whole, rtol=0, atol=1e-9)


def test_tiny_ripple_and_q_are_refused_or_designed():
    message = spec_error(
        "stages:\n  - lowpass: {cutoff_hz: 1e3, type: chebyshev1, ripple_db: 1e-9}\n"
    )
    assert "key 'ripple_db': must be >= 1e-06 dB" in message
    text = "stages:\n  - king2019_modulation: {q: 5e-324}\n"
    assert "must be below Nyquist" in spec_error(text, rate=48000)
