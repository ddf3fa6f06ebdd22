"""Property-based fuzzing (hypothesis) of everything a user hands audiofx:

- random YAML documents and random edits of the shipped presets -> a valid chain or one
  ChainSpecError naming file:line, never another exception;
- every registered stage with random parameters inside its declared ranges, built at random
  rates (8-192 kHz), run on noise, silence, full-scale squares, impulses, DC and subnormals ->
  finite output or a clean error, and chunked == whole;
- random byte flips and truncations of WAV, FLAC, OGG, AIFF and MP3 files -> exit 1 with one
  line or a correct result, never a traceback, hang or partial output;
- the CLI with random option combinations -> exit 0, 1 or 2 and one error line, never a
  traceback.

The normal suite runs a small fixed (derandomized) budget; `AUDIOFX_FUZZ_EXAMPLES=100000`
spreads that many random cases over the tests, and `AUDIOFX_FUZZ_REPORT=path.json` writes the
counts and times of the run (docs/reliability.md has the command and the last figures).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audiofx_cli import load_chain
from audiofx_cli.chain.registry import registry
from audiofx_cli.chain.spec import check_rate, parse_spec, preset_names, presets_dir
from audiofx_cli.cli.main import app
from audiofx_cli.errors import AudiofxError, ChainSpecError
from audiofx_cli.io.audio import AudioReader
from tests.fuzz_strategies import (
    LONG_RUN,
    SIGNALS,
    YAML_ALPHABET,
    examples,
    make_signal,
    mutate,
    stage_params,
    yaml_document,
)
from tests.test_stage_contract import chunked

pytestmark = pytest.mark.fuzz

STATS: dict[str, Counter[str]] = defaultdict(Counter)
SLOWEST: dict[str, float] = defaultdict(float)
HANG_SECONDS = 300  # a case still running after this long is a hang (first JIT compiles included)


def fuzz_settings(default: int, share: float) -> settings:
    return settings(
        max_examples=examples(default, share),
        deadline=None,  # times are recorded (SLOWEST), not asserted
        database=None,
        derandomize=not LONG_RUN,  # the normal suite tries the same cases every run
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


def record(suite: str, outcome: str, seconds: float) -> None:
    STATS[suite][outcome] += 1
    SLOWEST[suite] = max(SLOWEST[suite], seconds)


@pytest.fixture(scope="module", autouse=True)
def fuzz_report() -> Iterator[None]:
    yield
    path = os.environ.get("AUDIOFX_FUZZ_REPORT")
    if path:
        doc = {
            suite: {"cases": sum(c.values()), **dict(c), "slowest_s": round(SLOWEST[suite], 4)}
            for suite, c in sorted(STATS.items())
        }
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")


class Hang(BaseException):
    """Raised in the main thread when a case runs past HANG_SECONDS (not an Exception, so no
    handler on the way swallows it)."""


@contextmanager
def hang_guard(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------- chain specs
def parse_or_refuse(suite: str, text: str, source: str, rate: float, base: Path) -> None:
    """A valid chain (also checked at `rate`) or one ChainSpecError at source:line."""
    start = time.perf_counter()
    outcome = "valid"
    with hang_guard():
        try:
            spec = parse_spec(text, source=source, base_dir=base)
            try:
                check_rate(spec, rate)
            except ChainSpecError as exc:
                assert str(exc).startswith(source + ":"), str(exc)
                outcome = "refused at the rate"
        except ChainSpecError as exc:
            message = str(exc)
            assert "\n" not in message and len(message) < 1000, message
            assert message.startswith(source + ":"), message
            assert exc.line is not None or "empty" in message, message
            outcome = "refused"
    record(suite, outcome, time.perf_counter() - start)


RATES = st.integers(8000, 192000).map(float)


@fuzz_settings(300, 0.15)
@given(doc=yaml_document(), flow=st.sampled_from([None, True, False]), rate=RATES)
def test_random_yaml_documents(doc, flow, rate, tmp_path_factory):
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    parse_or_refuse("YAML documents", text, "fuzz.yaml", rate, Path.cwd())


@fuzz_settings(200, 0.10)
@given(text=st.text(YAML_ALPHABET, max_size=300), rate=RATES)
def test_random_yaml_text(text, rate):
    parse_or_refuse("YAML text", text, "fuzz.yaml", rate, Path.cwd())


@fuzz_settings(300, 0.20)
@given(name=st.sampled_from(preset_names()), data=st.data(), rate=RATES)
def test_mutated_presets(name, data, rate):
    text = (presets_dir() / f"{name}.yaml").read_text()
    mutated = mutate(text, data.draw)
    parse_or_refuse("preset edits", mutated, f"{name}.yaml", rate, presets_dir())


# ---------------------------------------------------------------------------- stages
ALL_STAGES = sorted(registry())
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-9}  # x max(1, max |whole output|)


@st.composite
def chunk_sizes(draw: st.DrawFn, frames: int) -> list[int]:
    """Up to 40 chunks of 0, 1, 2, 3, 17, 64, 500 frames or all of it, then the rest."""
    sizes: list[int] = []
    while sum(sizes) < frames and len(sizes) < 40:
        sizes.append(draw(st.sampled_from([0, 1, 2, 3, 17, 64, 500, frames])))
    return [*sizes, max(frames - sum(sizes), 0)]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


@pytest.mark.parametrize("name", ALL_STAGES)
@fuzz_settings(3, 0.20 / len(ALL_STAGES))
@given(rate=st.integers(8000, 192000), data=st.data())
def test_every_stage_with_random_parameters(name, rate, data, files):
    start = time.perf_counter()
    params = data.draw(stage_params(name, rate, files), label="params")
    kind = data.draw(st.sampled_from(SIGNALS), label="signal")
    channels = data.draw(st.integers(1, 2), label="channels")
    frames = data.draw(st.integers(1, 3000), label="frames")
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    sizes = data.draw(chunk_sizes(frames), label="chunks")
    with hang_guard(), torch.no_grad():
        try:
            chain = load_chain([{name: params}], rate, dtype=dtype)
            x = torch.from_numpy(make_signal(kind, channels, frames, 0, np.float64)).to(dtype)
            whole = chain(x)
            got = chunked(chain, x, sizes)
        except AudiofxError as exc:  # refused by validation, or at run time with a reason
            assert "\n" not in str(exc)
            record(f"stage {name}", f"refused ({type(exc).__name__})", time.perf_counter() - start)
            return
    assert torch.isfinite(whole).all(), f"{name} {params}: non-finite output on {kind}"
    assert got.shape == whole.shape, f"{name} {params}: chunked {got.shape} != {whole.shape}"
    scale = max(1.0, float(whole.abs().max())) if whole.numel() else 1.0
    err = float((got - whole).abs().max()) if whole.numel() else 0.0
    assert err <= TOLERANCE[dtype] * scale, f"{name} {params} on {kind}: chunked differs {err:.3g}"
    record(f"stage {name}", "ran", time.perf_counter() - start)


# ---------------------------------------------------------------------------- audio files
SOURCES = {  # format -> (extension, subtype)
    "WAV": ("wav", "PCM_16"),
    "WAV float": ("wav", "FLOAT"),
    "FLAC": ("flac", "PCM_16"),
    "OGG": ("ogg", "VORBIS"),
    "AIFF": ("aiff", "PCM_24"),
    "MP3": ("mp3", "MPEG_LAYER_III"),
}
GAIN = 10 ** (-6 / 20)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz-sources")
    x = 0.5 * np.sin(2 * np.pi * 441 * np.arange(2205)[:, None] / 22050 + np.array([0, 1]))
    out = {}
    for fmt, (ext, subtype) in SOURCES.items():
        if fmt == "MP3" and "MP3" not in sf.available_formats():
            continue
        path = folder / f"source.{ext}"
        sf.write(path, x, 22050, subtype=subtype)
        out[fmt] = path.read_bytes()
    return out


@st.composite
def corruption(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 8))):
        header = draw(st.booleans())
        at = draw(st.integers(0, min(len(out), 128) - 1 if header else len(out) - 1))
        out[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


@pytest.fixture(scope="module")
def gain_chain(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-chain") / "gain.yaml"
    path.write_text("stages:\n  - gain: {gain_db: -6}\n")
    return path


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("audiofx: error: "), stderr
    assert not lines[0].startswith("audiofx: error: internal error:"), stderr  # a bug's catch-all
    assert "Traceback" not in stderr, stderr
    return lines[0]


@fuzz_settings(120, 0.20)
@given(fmt=st.sampled_from(sorted(SOURCES)), data=st.data())
def test_corrupted_audio_files(fmt, data, sources, gain_chain, tmp_path_factory):
    if fmt not in sources:
        pytest.skip(f"this libsndfile cannot write {fmt}")
    start = time.perf_counter()
    folder = tmp_path_factory.mktemp("case")
    ext = SOURCES[fmt][0]
    source, out = folder / f"in.{ext}", folder / "out.wav"
    source.write_bytes(data.draw(corruption(sources[fmt]), label="bytes"))
    args = ["process", str(source), "-c", str(gain_chain), "-o", str(out)]
    with hang_guard():
        result = CliRunner().invoke(app, [*args, "--subtype", "FLOAT", "--device", "cpu", "-q"])
    left = sorted(p.name for p in folder.iterdir())
    if result.exit_code == 0:  # the gain applied to what the file decodes to, read in order
        with AudioReader(source) as reader:
            rate = reader.info.sample_rate
            x = np.concatenate(
                [np.zeros((0, reader.info.channels), np.float32)]
                + list(reader.blocks(1 << 16, "float32"))
            )
        y, out_rate = sf.read(out, dtype="float32", always_2d=True)
        assert out_rate == rate and y.shape == x.shape, (y.shape, x.shape)
        np.testing.assert_allclose(y, x * np.float32(GAIN), rtol=1e-6, atol=1e-7)
        outcome = "processed correctly"
    else:
        assert result.exit_code == 1, (result.exit_code, result.stderr)
        one_error_line(result.stderr)
        assert left == [source.name], f"partial output left: {left}"
        outcome = "refused (exit 1)"
    record(f"{fmt} files", outcome, time.perf_counter() - start)


# ---------------------------------------------------------------------------- CLI options
@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cli-inputs")
    good = folder / "in.wav"
    sf.write(good, 0.1 * np.random.default_rng(0).standard_normal((400, 2)), 16000)
    fifo = folder / "pipe.wav"
    os.mkfifo(fifo)
    (folder / "sub").mkdir()
    sf.write(folder / "sub" / "a.flac", np.zeros(100), 8000)
    (folder / "text.wav").write_text("not audio")
    chain = folder / "chain.yaml"
    chain.write_text("stages:\n  - highpass: {cutoff_hz: 1e2}\n  - gain: {gain_db: -3}\n")
    return {
        "good": str(good),
        "fifo": str(fifo),
        "folder": str(folder / "sub"),
        "text": str(folder / "text.wav"),
        "missing": str(folder / "missing.wav"),
        "chain": str(chain),
    }


VALUES = {
    "--chain": ["rumble", "vocal", "telephone", "nope", "chain", "missing", "/dev/zero"],
    "--chunk-seconds": ["1", "0.001", "1e-3", "0", "-1", "nan", "inf", "x", "1e9"],
    "--jobs": ["1", "2", "0", "-1", "x"],
    "--precision": ["float32", "float64", "float16"],
    "--subtype": ["PCM_16", "PCM_24", "FLOAT", "DOUBLE", "VORBIS", "pcm_8"],
    "--dither": ["tpdf", "none", "lots"],
    "--device": ["cpu", "auto", "cuda:7", "tpu"],
    "--type": ["wav", "flac", "xyz"],
    "--name": ["{stem}.{ext}", "{stem}_{chain}.flac", "{nope}", "x/../{stem}.wav", ""],
    "--shard": ["1/2", "2/2", "0/1", "3/2", "x"],
    "--sample-rate": ["48000", "8e3", "-1", "0", "nan", "abc"],
}
FLAGS = ["--overwrite", "--skip-existing", "--recursive", "--sanitize", "--no-fuse", "--quiet"]


@st.composite
def command_line(draw: st.DrawFn, inputs: dict[str, str], out: Path) -> list[str]:
    command = draw(st.sampled_from(["process", "process", "validate", "info", "stages"]))
    names = ["good", "good", "fifo", "folder", "text", "missing"]
    args = [command]
    if command == "process":
        args += [inputs[n] for n in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))]
        if draw(st.booleans()):
            args += ["-o", str(out / draw(st.sampled_from(["o.wav", "o.flac", "o.xyz", "o"])))]
        if draw(st.booleans()):
            args += ["--out-dir", str(out / "dir")]
    elif command == "validate":
        args.append(draw(st.sampled_from(VALUES["--chain"])))
    elif command == "info":
        args += [inputs[n] for n in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2))]
    else:
        args += draw(st.lists(st.sampled_from([*sorted(registry())[:5], "nope"]), max_size=2))
    options = {
        "process": [k for k in VALUES if k != "--sample-rate"],
        "validate": ["--sample-rate"],
        "info": [],
        "stages": [],
    }[command]
    chosen = draw(st.lists(st.sampled_from(options), max_size=5, unique=True)) if options else []
    for option in chosen:
        value = draw(st.sampled_from(VALUES[option]))
        args += [option, inputs.get(value, value)]
    if command == "process":
        args += draw(st.lists(st.sampled_from(FLAGS), max_size=3, unique=True))
        if "--chain" not in args:
            args += ["--chain", "rumble"]
    return args


@fuzz_settings(60, 0.15)
@given(data=st.data())
def test_cli_with_random_options(data, cli_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-out")
    args = data.draw(command_line(cli_inputs, out), label="argv")
    start = time.perf_counter()
    with hang_guard():
        result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if "Usage:" in result.stderr:  # Click's own report of an unknown option or bad value
        assert result.exit_code == 2 and "Error" in result.stderr, result.stderr
        record("CLI options", "usage error (Click)", time.perf_counter() - start)
        return
    errors = [line for line in result.stderr.splitlines() if line.startswith("audiofx: error")]
    assert not any(e.startswith("audiofx: error: internal error:") for e in errors), result.stderr
    assert "Warning:" not in result.stderr, result.stderr  # no Python warning leaks out
    if result.exit_code:  # a reason, one line each (a batch or `info`: one per failed file)
        assert errors, result.stderr
        single = args[0] == "validate" or (args[0] == "process" and "-o" in args)
        assert len(errors) == 1 or not single, result.stderr
    record("CLI options", f"exit {result.exit_code}", time.perf_counter() - start)
