"""Chain fusion: runs of consecutive linear time-invariant stages become one `FusedLTI`.

A stage takes part when its `linear_operator()` returns parts (IIR section filters, `ba`,
FIR stages, `gain`, and `parallel` of FIR-only branches do); every other stage, including any
future stage that does not declare itself LTI, ends a run. The fused operator is exact: see
`audiofx_cli.dsp.lti` for the merge rules (compensated FIRs stay parts of their own).
Imports torch (used by `chain.build` only).
"""

from __future__ import annotations

from torch import nn

from audiofx_cli.dsp.lti import Part, combine
from audiofx_cli.stages.base import Stage
from audiofx_cli.stages.fused import FusedLTI, stage_operator


def describe(module: nn.Module) -> str:
    """`name(params)` of a stage, for the fused stage's repr."""
    if isinstance(module, FusedLTI):
        return " + ".join(module.sources)
    name = getattr(module, "stage_name", "") or type(module).__name__
    extra = module.extra_repr() if isinstance(module, Stage) else ""
    return f"{name}({extra})" if extra else name


def fuse_stages(modules: list[nn.Module]) -> list[nn.Module]:
    """Replace each run of LTI stages (two or more, or one fusable `parallel`) by a FusedLTI.

    Example:
        >>> from audiofx_cli.chain.build import build_chain
        >>> from audiofx_cli.chain.spec import spec_from_stages
        >>> spec = spec_from_stages([{"highpass": {"cutoff_hz": 80}}, {"gain": {"gain_db": -6}}])
        >>> build_chain(spec, 48000)[0].extra_repr()
        'highpass(cutoff_hz=80.0) + gain(gain_db=-6.0) => sos[1 section]'
    """
    out: list[nn.Module] = []
    run: list[tuple[nn.Module, list[Part]]] = []

    def close() -> None:
        if len(run) == 1 and getattr(run[0][0], "stage_name", "") != "parallel":
            out.append(run[0][0])  # a lone filter stays itself
        elif run:
            parts = combine([p for _, ops in run for p in ops])
            rate = float(getattr(run[0][0], "sample_rate", 0.0))
            out.append(FusedLTI(rate, parts, [describe(m) for m, _ in run]))
        run.clear()

    for module in modules:
        op = stage_operator(module) if isinstance(module, Stage) else None
        if op is None:
            close()
            out.append(module)
        else:
            run.append((module, op))
    close()
    return out
