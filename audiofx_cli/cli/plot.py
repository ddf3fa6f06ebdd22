"""`audiofx plot`: a chain's frequency response, a file's waveform and spectrogram, or a feature
file, as PNG, SVG or PDF. matplotlib (the `plot` extra) and torch are imported only when used."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audiofx_cli.cli.common import DEBUG_HELP, exit_on_error
from audiofx_cli.errors import UsageError

EXAMPLES = """

[bold]Examples[/bold]

  audiofx plot vocal --sample-rate 48000 -o vocal_response.png

  audiofx plot my_chain.yaml -r 44100 --show magnitude,phase,group-delay,impulse -o resp.svg

  audiofx plot speech.wav -o speech.png

  audiofx plot speech.wav --chain vocal -o before_after.png

  audiofx plot feats.npz -o feats.png

INPUT is a chain (YAML file or preset name: frequency response of its linear stages, static
curves of compressor/limiter/gate), an audio file (waveform and log-frequency spectrogram;
with --chain the processed version below, same scales), or a .npz feature file.
Needs matplotlib: pip install 'audiofx-cli\\[plot]'. Exit codes: 0 written, 1 failed, 2 usage error.
"""

CHAIN_SUFFIXES = (".yaml", ".yml")
FEATURE_SUFFIXES = (".npz",)


def _kind(text: str) -> str:
    """'chain' | 'audio' | 'features' for the INPUT argument (torch-free, reads nothing)."""
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in FEATURE_SUFFIXES:
        return "features"
    if suffix == ".pt":
        raise UsageError(f"{text}: plotting reads .npz feature files; write features as .npz")
    if suffix in CHAIN_SUFFIXES:
        return "chain"
    if path.is_file():
        return "audio"
    if path.is_dir():
        raise UsageError(f"{text}: is a folder; plot one file at a time")
    if suffix or "/" in text or "\\" in text:
        raise UsageError(f"{text}: no such file")
    return "chain"  # a preset name; resolved (with suggestions) when loaded


def _default_output(text: str, kind: str, chain: str | None) -> Path:
    stem = Path(text).stem or "plot"
    if kind == "chain":
        return Path(f"{stem}_response.png")
    if chain is not None:
        return Path(f"{stem}_{Path(chain).stem}.png")
    return Path(f"{stem}.png")


def _reject(option: str, value: object, kind: str) -> None:
    if value is not None:
        raise UsageError(f"{option} does not apply to a {kind} plot")


def plot(
    input: Annotated[
        str, typer.Argument(help="chain YAML / preset name, audio file, or .npz feature file")
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="figure file: .png, .svg or .pdf (default: INPUT_response.png / INPUT.png "
            "in the current folder)",
        ),
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option("--sample-rate", "-r", help="chain plots: sample rate in Hz (48000)"),
    ] = None,
    show: Annotated[
        str | None,
        typer.Option(
            help="chain plots: panels, comma-separated: magnitude, phase, group-delay, impulse, "
            "static (default magnitude,phase, plus static for dynamics stages)"
        ),
    ] = None,
    chain: Annotated[
        str | None,
        typer.Option("--chain", "-c", help="audio plots: also show the file processed by this"),
    ] = None,
    db_range: Annotated[
        float, typer.Option(help="audio/feature plots: colour range below the top, dB")
    ] = 90.0,
    size: Annotated[
        str | None, typer.Option(help="figure size WIDTHxHEIGHT in pixels (default by content)")
    ] = None,
    dpi: Annotated[float, typer.Option(help="pixels per inch (text size scales with it)")] = 100.0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print errors only")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Plot a chain's frequency response, a file's waveform and spectrogram, or a feature file."""
    with exit_on_error(debug):
        from audiofx_cli.plot import require_matplotlib
        from audiofx_cli.plot.output import check_figure_output, save_figure
        from audiofx_cli.plot.style import RC

        kind = _kind(input)
        if kind != "chain":
            _reject("--sample-rate", sample_rate, kind)
            _reject("--show", show, kind)
        if kind != "audio":
            _reject("--chain", chain, kind)
        if not (20 <= dpi <= 1200):
            raise UsageError(f"--dpi must be 20 .. 1200, got {dpi:g}")
        if not db_range > 0:
            raise UsageError(f"--db-range must be > 0 dB, got {db_range:g}")
        out = Path(output) if output is not None else _default_output(input, kind, chain)
        check_figure_output(out, overwrite, (Path(input),))
        mpl = require_matplotlib()
        with mpl.rc_context(RC):
            if kind == "chain":
                fig = _chain_figure(input, sample_rate, show, size, dpi)
            elif kind == "audio":
                fig = _audio_figure(input, chain, size, dpi, db_range)
            else:
                fig = _feature_figure(input, size, dpi, db_range)
            save_figure(fig, out, dpi, overwrite)
        if not quiet:
            typer.echo(f"wrote {out}", err=True)


def _chain_figure(
    chain: str, sample_rate: float | None, show: str | None, size: str | None, dpi: float
):
    from audiofx_cli.chain.spec import load_spec
    from audiofx_cli.plot.response import chain_response
    from audiofx_cli.plot.response_figure import default_size, draw_response, parse_panels
    from audiofx_cli.plot.style import parse_size

    rate = 48000.0 if sample_rate is None else sample_rate
    if not rate > 0:
        raise UsageError(f"--sample-rate must be > 0, got {rate:g}")
    spec = load_spec(chain)  # errors before torch is imported
    has_static = any(s.name in ("compressor", "limiter", "gate") for s in spec.stages)
    panels = parse_panels(show, has_static)
    resp = chain_response(spec, rate)
    return draw_response(resp, panels, parse_size(size, default_size(panels)), dpi)


def _audio_figure(path: str, chain: str | None, size: str | None, dpi: float, db_range: float):
    from audiofx_cli.plot.audio import file_pictures
    from audiofx_cli.plot.audio_figure import default_size, draw_pictures
    from audiofx_cli.plot.style import parse_size

    if chain is not None:
        from audiofx_cli.chain.spec import load_spec

        chain_arg: object = load_spec(chain)
    else:
        chain_arg = None
    original, processed = file_pictures(path, chain_arg)
    pictures = [original] if processed is None else [original, processed]
    title = Path(path).name + (f" through chain '{Path(chain).stem}'" if chain else "")
    return draw_pictures(
        title, pictures, parse_size(size, default_size(len(pictures))), dpi, db_range
    )


def _feature_figure(path: str, size: str | None, dpi: float, db_range: float):
    from audiofx_cli.plot.features import default_size, draw_features, load_feature_file
    from audiofx_cli.plot.style import parse_size

    feats = load_feature_file(path)
    return draw_features(feats, parse_size(size, default_size(feats)), dpi, db_range)


plot.__doc__ = (plot.__doc__ or "") + EXAMPLES
