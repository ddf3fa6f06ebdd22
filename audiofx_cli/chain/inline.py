"""Chains from the command line: inline stages (`-e`), SoX-style shortcuts (`-r`, `-C`) and the
composition of both with a chain file or preset (torch-free).

An inline stage is a stage name and its parameters, in any of these forms:

    highpass:cutoff_hz=80,order=4        # SoX/torchfx style
    'highpass cutoff_hz=80 order=4'      # one shell word, spaces between
    normalize:mode=lufs,target_db=-16
    delay:delays_ms=[100,200]            # values read as YAML: numbers, lists, quoted text
    dc_remove                            # defaults

Each goes through the same validation as a stage in a chain file (`chain.spec.parse_spec`);
errors name the option: `-e #2 'highpass': key 'cutoff_hz': ...`.

`compose` puts a chain together in this order: the chain file or preset, the inline stages,
then the shortcuts: `-C N` (mono, or `channel_count`), then `-r RATE` (resample at its default
quality). Channels come first so that a downmix resamples fewer channels.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from audiofx_cli.chain.spec import ChainSpec, StageSpec, load_spec, parse_spec
from audiofx_cli.chain.yaml_core import ChainDumper, ChainLoader, parse_scalar
from audiofx_cli.errors import ChainSpecError, UsageError, short_text

FEATURE_FAMILIES = ("auditory", "spectral", "pooling", "features")
MAX_INLINE_CHARS = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLOSE = {"[": "]", "{": "}"}


def _split_items(text: str) -> list[str]:
    """Split at commas and blanks outside brackets and quotes."""
    items, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            current.append(char)
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char in "[{":
            depth += 1
            current.append(char)
        elif char in "]}":
            depth -= 1
            current.append(char)
        elif depth <= 0 and (char == "," or char.isspace()):
            if current:
                items.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        items.append("".join(current))
    return items


def _value(text: str) -> Any:
    """A value as YAML reads it: flow lists and mappings and quoted text through the chain
    loader, plain text by the YAML 1.2 core schema."""
    if text[:1] in "[{\"'":
        return ChainLoader(text).get_single_data()
    return parse_scalar(text)


def parse_inline(text: str) -> tuple[str, dict[str, Any]]:
    """Stage name and raw parameter values of one inline stage (not yet validated).

    Example:
        >>> parse_inline("highpass:cutoff_hz=80,order=4")
        ('highpass', {'cutoff_hz': 80, 'order': 4})
        >>> parse_inline("delay delays_ms=[100, 200] feedback=.5")
        ('delay', {'delays_ms': [100, 200], 'feedback': 0.5})

    Raises:
        ValueError: the text is not `name[:| ]key=value,...`.
    """
    text = text.strip()
    if len(text) > MAX_INLINE_CHARS:
        raise ValueError(f"longer than {MAX_INLINE_CHARS:,} characters")
    match = _NAME.match(text)
    if not match:
        raise ValueError(
            f"expected a stage name first (e.g. highpass:cutoff_hz=80), got {short_text(text)}"
        )
    name, rest = match.group(), text[match.end() :]
    if rest and not (rest[0] == ":" or rest[0].isspace()):
        raise ValueError(f"expected ':' or a blank after '{name}', got {short_text(rest)}")
    params: dict[str, Any] = {}
    for item in _split_items(rest.lstrip(":")):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not _NAME.fullmatch(key):
            raise ValueError(f"expected key=value, got {short_text(item)}")
        if key in params:
            raise ValueError(f"key '{key}' given twice")
        params[key] = _value(value.strip())
    return name, params


def inline_stage(text: str, position: int) -> StageSpec:
    """Parse and validate `-e` number `position` (1-based).

    Raises:
        ChainSpecError: naming `-e #N`, the stage and the key (exit 2).
    """
    where = f"-e #{position}"
    try:
        name, params = parse_inline(text)
    except (ValueError, yaml.YAMLError) as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        raise ChainSpecError(f"{reason} (in {short_text(text)})", stage=where) from None
    document = yaml.dump(
        {"stages": [{name: params} if params else name]}, Dumper=ChainDumper, sort_keys=False
    )
    try:
        stage = parse_spec(document, source=where).stages[0]
    except ChainSpecError as exc:
        label = f"{where} '{name}'" if exc.stage else where
        raise ChainSpecError(exc.reason, stage=label, key=exc.key) from None
    return _relabel(stage, f"{where} '{name}'")


def _relabel(stage: StageSpec, label: str) -> StageSpec:
    """A stage made here is named by its option, not by a line of the YAML made from it."""
    stage.label, stage.source, stage.line, stage.column = label, None, None, None
    stage.key_marks = {}
    for branch in stage.params.get("branches") or []:
        for inner in branch:
            _relabel(inner, f"{label} > {inner.label.rsplit('stage ', 1)[-1]}")
    return stage


def shortcut_stages(rate_hz: float | None, channels: int | None) -> list[StageSpec]:
    """The stages `-C CHANNELS` and `-r RATE` stand for, in that order."""
    stages = []
    if channels is not None:
        stage = {"mono": {}} if channels == 1 else {"channel_count": {"count": channels}}
        stages.append(_shortcut(stage, f"-C {channels}"))
    if rate_hz is not None:
        stages.append(_shortcut({"resample": {"rate_hz": rate_hz}}, f"-r {rate_hz:g}"))
    return stages


def _shortcut(stage: dict[str, Any], option: str) -> StageSpec:
    document = yaml.dump({"stages": [stage]}, Dumper=ChainDumper, sort_keys=False)
    try:
        spec = parse_spec(document, source=option).stages[0]
    except ChainSpecError as exc:
        raise UsageError(f"{option}: {exc.reason}") from None
    return _relabel(spec, f"{option} '{spec.name}'")


def is_feature_chain(spec: ChainSpec) -> bool:
    """Whether the chain ends in features (npz/pt arrays) rather than audio."""
    return bool(spec.stages) and spec.stages[-1].definition.family in FEATURE_FAMILIES


def chain_name(spec: ChainSpec) -> str:
    """What `{chain}` in an output name template stands for: the chain's name, else its file's
    stem or its preset's name."""
    from pathlib import Path

    return spec.name or Path(str(spec.source)).stem.rpartition(":")[2]


def compose(
    chain: str | None,
    inline: list[str] | None = None,
    rate_hz: float | None = None,
    channels: int | None = None,
) -> ChainSpec:
    """The chain a command runs: `chain` (file, preset, URL or YAML text; None: none), then the
    inline stages, then the shortcuts. No chain and nothing else is the empty chain (a copy or
    a format conversion).

    Raises:
        ChainSpecError / UsageError: exit 2, naming the file and line or the option.
    """
    inline = inline or []
    base = load_spec(chain) if chain is not None else ChainSpec([], source=None)
    stages = list(base.stages)
    stages += [inline_stage(text, i) for i, text in enumerate(inline, 1)]
    extra = shortcut_stages(rate_hz, channels)
    if extra and is_feature_chain(ChainSpec(stages)):
        raise UsageError(
            "-r and -C apply to audio; this chain ends in features "
            f"('{stages[-1].name}'): put a resample or mono stage before them instead"
        )
    stages += extra
    if not (inline or extra):
        return base if chain is not None else ChainSpec([], name="convert", source="no chain")
    sources = [base.source] if chain is not None and base.source else []
    sources += ["-e"] * bool(inline) + [s.label.split(" '")[0] for s in extra]
    name = base.name if chain is not None else ("inline" if inline else "convert")
    return ChainSpec(stages, name=name, description=base.description, source=" + ".join(sources))


def dump_yaml(spec: ChainSpec) -> str:
    """The chain as a chain file (what `--dump-chain` writes): parameters in full, defaults
    included, so the file runs the same chain whatever later versions change in defaults."""
    return yaml.dump(spec.to_dict(), Dumper=ChainDumper, sort_keys=False, default_flow_style=None)
