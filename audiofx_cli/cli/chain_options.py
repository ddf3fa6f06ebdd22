"""The options that say which chain a command runs, shared by `process`, `validate` and
`watch`: `--chain`, `-e/--stage`, `-r/--rate`, `-C/--channels`, `-b/--bits`, `--dump-chain`.

The composition itself (and its order) is the library's: `chain.inline.compose`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from audiofx_cli.errors import OutputExistsError, UsageError

BITS_SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(k?)\s*(?:hz)?\s*$", re.IGNORECASE)


def complete_chain(incomplete: str) -> list[str]:
    """Shell completion of --chain: presets (shipped and the user's) and chain files here."""
    from audiofx_cli.chain.presets import all_presets

    names = [p.name for p in all_presets()]
    names += [f"user:{p.name}" for p in all_presets() if not p.shipped]
    files = [str(p) for p in Path(".").glob(f"{incomplete}*") if p.suffix in (".yaml", ".yml")]
    return sorted({n for n in names + files if n.startswith(incomplete)})


ChainOption = Annotated[
    str | None,
    typer.Option(
        "--chain",
        "-c",
        help="chain YAML file, preset name (vocal, ...; user:NAME for your own), or YAML text; "
        "none: only -e stages and -r/-C/-b (or a plain format conversion)",
        autocompletion=complete_chain,
    ),
]
StageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--stage",
        "-e",
        help="an inline stage, appended after --chain: 'highpass:cutoff_hz=80,order=4' or "
        "'highpass cutoff_hz=80 order=4' or a bare name (repeatable)",
        show_default=False,
    ),
]
RateOption = Annotated[
    str | None,
    typer.Option(
        "--rate",
        "-r",
        help="output sample rate, Hz (16000, 44.1k): appends a resample stage after the chain",
        show_default=False,
    ),
]
ChannelsOption = Annotated[
    int | None,
    typer.Option(
        "--channels",
        "-C",
        help="output channels: 1 appends mono, N appends channel_count (mono copied to N)",
        show_default=False,
    ),
]
BitsOption = Annotated[
    int | None,
    typer.Option(
        "--bits", "-b", help="output bits: 16, 24 or 32 (integer PCM; --subtype for others)"
    ),
]
DumpChainOption = Annotated[
    str | None,
    typer.Option(
        "--dump-chain",
        help="write the chain that runs (preset + -e stages + shortcuts) as a chain file "
        "(- for stdout)",
        show_default=False,
    ),
]


def parse_rate(text: str) -> float:
    """`-r` values as SoX takes them: 16000, 44100.0, 16k, 44.1k.

    Raises:
        UsageError: not a positive rate (with a hint for -r used as the old --recursive).
    """
    match = _RATE.match(text)
    rate = float(match.group(1)) * (1000.0 if match.group(2) else 1.0) if match else 0.0
    if not rate > 0:
        hint = (
            "; -r is the output rate, as in SoX (scan sub-folders with -R/--recursive)"
            if text.startswith("-") or not match
            else ""
        )
        raise UsageError(f"-r/--rate takes a sample rate in Hz (16000, 44.1k), got '{text}'{hint}")
    return rate


def bits_subtype(bits: int | None, subtype: str | None) -> str | None:
    """The output subtype `-b` and `--subtype` ask for (None: the input's)."""
    if bits is None:
        return subtype
    if bits not in BITS_SUBTYPES:
        raise UsageError(
            f"-b/--bits takes {', '.join(map(str, BITS_SUBTYPES))}, got {bits} "
            "(--subtype names any other: PCM_U8, FLOAT, ...)"
        )
    chosen = BITS_SUBTYPES[bits]
    if subtype is not None and subtype.upper() != chosen:
        raise UsageError(f"-b {bits} and --subtype {subtype} disagree; give one")
    return chosen


def chain_from_options(
    chain: str | None,
    stages: list[str] | None,
    rate: str | None = None,
    channels: int | None = None,
) -> Any:
    """The validated `ChainSpec` these options describe (see `chain.inline.compose`)."""
    from audiofx_cli.chain.inline import compose

    if channels is not None and not 1 <= channels <= 1024:
        raise UsageError(f"-C/--channels takes 1 to 1024, got {channels}")
    return compose(chain, stages, parse_rate(rate) if rate is not None else None, channels)


def dump_chain(spec: Any, target: str, overwrite: bool) -> None:
    """Write `spec` as a chain file at `target` (atomically), or to stdout for '-'."""
    from audiofx_cli.chain.inline import dump_yaml

    text = dump_yaml(spec)
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{target}: exists (use --overwrite to replace it)")
    from audiofx_cli.io.temp import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the chain: {exc.strerror or exc}") from None
