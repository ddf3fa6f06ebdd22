"""`audiofx validate`: check a chain spec without processing anything (torch-free)."""

from __future__ import annotations

from typing import Annotated

import typer

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
    chain: Annotated[str, typer.Argument(help="chain YAML file or preset name")],
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

    Exit codes: 0 valid, 2 invalid (one line naming file:line, stage and key).
    """
    with exit_on_error(debug):
        from audiofx_cli.chain.spec import check_rate, load_spec

        spec = load_spec(chain)
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
