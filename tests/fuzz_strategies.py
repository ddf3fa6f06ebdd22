"""Hypothesis strategies for tests/test_fuzz.py, driven by the registry's parameter declarations:
stage parameters inside their declared ranges, YAML documents, test signals, corrupted files.

Budgets: every fuzz test takes `examples(default, share)` examples, its default in the normal
suite and `share` of AUDIOFX_FUZZ_EXAMPLES when that is set (the long run, see
docs/reliability.md). Sizes that only cost time (taps, FFT lengths, filterbank bands, seconds of
padding or tail) are drawn up to `SIZE_CAP` / `SECONDS_CAP` rather than their declared maximum;
tests/test_hostile_input.py covers the maxima.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from hypothesis import strategies as st

from audiofx_cli.chain.params import Param, StageDef
from audiofx_cli.chain.registry import registry

LONG_RUN = int(os.environ.get("AUDIOFX_FUZZ_EXAMPLES", "0") or 0)
SIZE_CAP = 4096  # integer sizes drawn at most this large (n_fft, taps, downsample, ...)
SECONDS_CAP = 0.5  # durations (pads, tails, fades, delays, windows) drawn at most this long
OPEN_HIGH = 1e5  # upper end for floats declared without one (log-uniform below it)
MEMORYLESS_MODULES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "torch.nn.Tanh": st.just({}),
    "torch.nn.Hardtanh": st.fixed_dictionaries(
        {"min_val": st.floats(-2, -0.01), "max_val": st.floats(0.01, 2)}
    ),
    "torch.nn.Threshold": st.fixed_dictionaries(
        {"threshold": st.floats(-1, 1), "value": st.floats(-1, 1)}
    ),
    "torch.nn.Softsign": st.just({}),
    "torch.nn.PReLU": st.fixed_dictionaries({"init": st.floats(-1, 1)}),
    "torchaudio.transforms.Vol": st.fixed_dictionaries({"gain": st.floats(0, 4)}),
}
CHEAP_STAGES = ("gain", "invert", "lowpass", "highpass", "peaking", "fir_taps", "delay", "pan")


def examples(default: int, share: float) -> int:
    """Examples for one fuzz test: `default`, or `share` of AUDIOFX_FUZZ_EXAMPLES."""
    return max(default, int(LONG_RUN * share)) if LONG_RUN else default


# ---------------------------------------------------------------------------- numbers
def _bounded_float(param: Param, high: float | None) -> st.SearchStrategy[float]:
    """A float inside [low, high] honouring open ends; log-uniform when the span is wide."""
    low = param.low if param.low is not None else -OPEN_HIGH
    top = high if high is not None else OPEN_HIGH
    if low >= top:
        return st.just(float(low))
    uniform = st.floats(low, top, exclude_min=param.low_open, exclude_max=param.high_open)
    if low >= 0 and top / max(low, 1e-6) > 1e3:
        span = (math.log10(max(low, 1e-6)), math.log10(top))
        log = st.floats(*span).map(lambda e: float(min(max(10.0**e, low), top)))
        log = log.filter(lambda v: v > low or not param.low_open).filter(
            lambda v: v < top or not (param.high_open or param.below_nyquist)
        )
        return st.one_of(uniform, log)
    return uniform


def _edges(param: Param, high: float | None) -> list[float]:
    """The declared bounds themselves, where allowed: edges are where bugs live."""
    out = []
    if param.low is not None and not param.low_open:
        out.append(float(param.low))
    if high is not None and not param.high_open and not param.below_nyquist:
        out.append(float(high))
    return out


def float_value(param: Param, rate: float) -> st.SearchStrategy[float]:
    high = param.high
    if param.unit == "s" and param.name != "tau_s":
        high = SECONDS_CAP if high is None else min(high, SECONDS_CAP)
    if param.unit == "ms":
        high = 1000 * SECONDS_CAP if high is None else min(high, 1000 * SECONDS_CAP)
    if param.below_nyquist:
        nyquist = rate / 2 * (1 - 1e-9)
        high = nyquist if high is None else min(high, nyquist)
    edges = _edges(param, high)
    body = _bounded_float(param, high)
    return st.one_of(st.sampled_from(edges), body) if edges else body


def int_value(param: Param) -> st.SearchStrategy[int]:
    low = int(param.low) if param.low is not None else 0
    high = min(int(param.high), SIZE_CAP) if param.high is not None else SIZE_CAP
    low = low + 1 if param.low_open else low
    return st.one_of(st.sampled_from([low, high]), st.integers(low, high))


def stable_section(draw: st.DrawFn) -> list[float]:
    """[b0, b1, b2, 1, a1, a2] with poles inside the unit circle (sometimes on it)."""
    radius = draw(st.one_of(st.floats(0, 0.999), st.just(1.0)))
    theta = draw(st.floats(0, math.pi))
    b = [draw(st.floats(-4, 4)) for _ in range(3)]
    return [*b, 1.0, -2 * radius * math.cos(theta), radius * radius]


# ---------------------------------------------------------------------------- stage params
@st.composite
def param_value(draw: st.DrawFn, stage: StageDef, param: Param, rate: float, files: Path) -> Any:
    """A value for `param` inside its declared range (or None where None is the default)."""
    if param.default is None and draw(st.booleans()):
        return None
    kind = param.kind
    if kind == "float":
        return draw(float_value(param, rate))
    if kind == "int":
        return draw(int_value(param))
    if kind == "bool":
        return draw(st.booleans())
    if kind == "choice":
        return draw(st.sampled_from(param.choices))
    if kind == "floats":
        if stage.name == "ba":
            return ba_value(draw, param.name)
        lengths = param.length or tuple(range(1, 6))
        n = draw(st.sampled_from(lengths))
        return [draw(float_value(param, rate)) for _ in range(n)]
    if kind == "float_or_pair":
        if draw(st.booleans()):
            return draw(float_value(param, rate))
        pair = sorted(draw(float_value(param, rate)) for _ in range(2))
        return pair
    if kind == "sections":
        return [stable_section(draw) for _ in range(draw(st.integers(1, 4)))]
    if kind == "branches":
        count = draw(st.integers(1, 3))
        return [
            [draw(simple_stage(rate, files)) for _ in range(draw(st.integers(1, 2)))]
            for _ in range(count)
        ]
    if kind == "str":  # module name
        return draw(st.sampled_from(sorted(MEMORYLESS_MODULES)))
    if kind == "mapping":  # module args: chosen with the name, see stage_params
        return {}
    if kind == "path":
        return draw(ir_file(files) if param.name == "ir" else taps_file(files))
    raise AssertionError(f"no strategy for parameter kind {kind}")


def ba_value(draw: st.DrawFn, key: str) -> list[float]:
    """b: 1-5 numbers; a: a monic polynomial from poles mostly inside the unit circle."""
    if key == "b":
        return [draw(st.floats(-4, 4)) for _ in range(draw(st.integers(1, 5)))]
    order = draw(st.integers(0, 4))
    roots = []
    for _ in range(order):
        radius = draw(st.one_of(st.floats(0, 0.999), st.floats(0.999, 1.01)))
        roots.append(radius * np.exp(1j * draw(st.sampled_from([0.0, math.pi, 1.0, 2.5]))))
    poly = np.real(np.poly(roots)) if roots else np.array([1.0])
    return [float(v) for v in poly]


@st.composite
def stage_params(draw: st.DrawFn, name: str, rate: float, files: Path) -> dict[str, Any]:
    stage = registry()[name]
    params = {}
    for param in stage.params:
        if not param.required and draw(st.booleans()):
            continue  # leave it to its default
        params[param.name] = draw(param_value(stage, param, rate, files))
    if name == "module":
        module = params.get("name") or draw(st.sampled_from(sorted(MEMORYLESS_MODULES)))
        params["name"] = module
        params["args"] = draw(MEMORYLESS_MODULES[module])
    if name == "fir_taps" and (params.get("taps") is None) == (params.get("file") is None):
        params.pop("file", None)
        params["taps"] = [draw(st.floats(-2, 2)) for _ in range(draw(st.integers(1, 64)))]
    if name == "parallel" and params.get("weights") is not None:
        params["weights"] = params["weights"][: len(params["branches"])]
    return {k: v for k, v in params.items() if v is not None}


@st.composite
def simple_stage(draw: st.DrawFn, rate: float, files: Path) -> Any:
    name = draw(st.sampled_from(CHEAP_STAGES))
    return {name: draw(stage_params(name, rate, files))}


# ---------------------------------------------------------------------------- files
@st.composite
def taps_file(draw: st.DrawFn, folder: Path) -> str:
    taps = np.array([draw(st.floats(-2, 2)) for _ in range(draw(st.integers(1, 64)))])
    index = len(list(folder.glob("taps*")))
    if draw(st.booleans()):
        path = folder / f"taps{index}.npy"
        np.save(path, taps)
    else:
        path = folder / f"taps{index}.txt"
        path.write_text(",\n".join(repr(float(t)) for t in taps))
    return str(path)


@st.composite
def ir_file(draw: st.DrawFn, folder: Path) -> str:
    rate = draw(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]))
    channels = draw(st.integers(1, 2))
    frames = draw(st.integers(1, 600))
    seed = draw(st.integers(0, 2**16))
    data = (
        np.random.default_rng(seed).standard_normal((frames, channels))
        * np.exp(-np.arange(frames) / max(frames / 4, 1))[:, None]
    )
    path = folder / f"ir{len(list(folder.glob('ir*')))}.wav"
    sf.write(path, data / max(np.abs(data).max(), 1e-9), rate, subtype="FLOAT")
    return str(path)


# ---------------------------------------------------------------------------- signals
SIGNALS = ("noise", "silence", "square", "impulse", "dc", "denormal")


def make_signal(kind: str, channels: int, frames: int, seed: int, dtype: Any) -> np.ndarray:
    """(channels, frames) test signal of the given kind, full scale where it has a scale."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.uniform(-1, 1, (channels, frames))
    elif kind == "silence":
        x = np.zeros((channels, frames))
    elif kind == "square":
        period = int(rng.integers(2, 200))
        x = np.where((np.arange(frames) // (period // 2 or 1)) % 2, -1.0, 1.0)
        x = np.broadcast_to(x, (channels, frames)).copy()
    elif kind == "impulse":
        x = np.zeros((channels, frames))
        x[:, int(rng.integers(0, frames))] = 1.0
    elif kind == "dc":
        x = np.full((channels, frames), float(rng.uniform(-1, 1)))
    else:  # subnormal numbers of the processing dtype, random signs
        tiny = np.finfo(dtype).smallest_subnormal * rng.integers(1, 1000, (channels, frames))
        x = tiny * rng.choice([-1.0, 1.0], (channels, frames))
    return x.astype(dtype)


# ---------------------------------------------------------------------------- YAML
YAML_ALPHABET = " \n\t-:{}[],&*!#'\"|>%@`?~.0123456789eE+_abcdeghilmnoprstuxyz"


def mutate(text: str, draw: st.DrawFn) -> str:
    """A few random edits: delete, insert, duplicate or swap lines, replace a number."""
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "dup_line", "swap", "number", "flip"]))
        n = len(text)
        at = draw(st.integers(0, max(n - 1, 0)))
        if op == "delete" and n:
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif op == "insert":
            text = text[:at] + draw(st.text(YAML_ALPHABET, min_size=1, max_size=12)) + text[at:]
        elif op in ("dup_line", "swap"):
            lines = text.split("\n")
            i, j = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
            if op == "dup_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif op == "number":
            word = draw(
                st.sampled_from(["1e-3", "8e1", "+5", ".5", "-2.5e+1", "0x1F", ".nan", "-.inf"])
                | st.floats(allow_nan=True, allow_infinity=True).map(repr)
                | st.integers(-(10**30), 10**30).map(str)
            )
            text = text[:at] + word + text[at:]
        elif n:
            text = text[:at] + chr(draw(st.integers(0, 0x24F))) + text[at + 1 :]
    return text


def yaml_scalar() -> st.SearchStrategy[Any]:
    names = sorted(registry())
    keys = sorted({p.name for s in registry().values() for p in s.params})
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(names + keys + ["stages", "name", "yes", "1e3", ""]),
        st.text(max_size=20),
    )


def yaml_document() -> st.SearchStrategy[Any]:
    """Nested lists and mappings biased toward chain shapes (stage names and keys)."""
    scalars = yaml_scalar()
    keys = st.one_of(st.sampled_from(sorted(registry())), yaml_scalar().map(str))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(keys, inner, max_size=4),
            st.fixed_dictionaries({"stages": st.lists(inner, max_size=4)}),
        ),
        max_leaves=30,
    )
