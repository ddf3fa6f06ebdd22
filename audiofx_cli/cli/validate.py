"""`audiofx validate`: check a chain spec without processing anything (torch-free)."""

from __future__ import annotations

from typing import Annotated

import typer

from audiofx_cli.cli.chain_options import (
    ChannelsOption,
    DumpChainOption,
    StageOption,
    chain_from_options,
    complete_chain,
    dump_chain,
)
from audiofx_cli.cli.common import DEBUG_HELP, NoServer, exit_on_error
from audiofx_cli.errors import UsageError


def _params_text(params: dict) -> str:
    parts = []
    for key, value in params.items():
        if key == "branches":
            value = f"{len(value)} branches"
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def validate(
    chain: Annotated[
        str | None,
        typer.Argument(
            help="chain YAML file, preset name or YAML text (none: only the -e stages)",
            autocompletion=complete_chain,
            show_default=False,
        ),
    ] = None,
    stage: StageOption = None,
    channels: ChannelsOption = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate", help="output sample rate as process -r takes it (appends a resample)"
        ),
    ] = None,
    dump_chain_to: DumpChainOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the --dump-chain file")
    ] = False,
    sample_rate: Annotated[
        float | None,
        typer.Option(
            "--sample-rate",
            "-r",
            help="also check rate-dependent limits (Nyquist) at this rate, Hz",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no output when valid")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    no_server: NoServer = False,
) -> None:
    """Validate a chain spec: stage names, keys, types, ranges (and Nyquist with --sample-rate).

    [bold]Example[/bold]

      audiofx validate my_chain.yaml --sample-rate 48000

      audiofx validate vocal -e compressor:threshold_db=-20 -r 48000 --dump-chain mine.yaml

    Exit codes: 0 valid, 2 invalid (one line naming file:line, stage and key).
    """
    with exit_on_error(debug):
        from audiofx_cli.chain.spec import check_rate

        if chain is None and not stage:
            raise UsageError("give a chain (file, preset or YAML text) or -e stages to validate")
        spec = chain_from_options(chain, stage, rate, channels)
        if dump_chain_to is not None:
            dump_chain(spec, dump_chain_to, overwrite)
            if dump_chain_to == "-":
                return
        if sample_rate is not None:
            if not sample_rate > 0:
                raise UsageError(f"--sample-rate must be > 0, got {sample_rate:g}")
            check_rate(spec, sample_rate)
            if any(s.name == "module" for s in spec.stages):
                from audiofx_cli.chain.build import build_chain  # torch only for modules

                build_chain(spec, sample_rate)
        if quiet:
            return
        label = f"'{spec.name}' " if spec.name else ""
        where = f"at {sample_rate:g} Hz" if sample_rate else "(give --sample-rate to check Nyquist)"
        typer.echo(f"chain {label}({spec.source}) is valid {where}: {len(spec.stages)} stages")
        for i, stage in enumerate(spec.stages, 1):
            typer.echo(f"  {i}. {stage.name}: {_params_text(stage.params)}")
