"""Validated spec + sample rate -> `Chain` (an nn.Sequential of stage modules). Imports torch."""

from __future__ import annotations

from audiofx_cli.chain import learn as learning
from audiofx_cli.chain.registry import load_impl
from audiofx_cli.chain.spec import ChainSpec, StageSpec, check_rate
from audiofx_cli.errors import ParamError
from audiofx_cli.stages.base import Chain


def build_chain(
    spec: ChainSpec | list[StageSpec], sample_rate: float, fuse: bool = True, learn: bool = False
) -> Chain:
    """Build the stages of `spec` for `sample_rate` (rate-dependent checks included).

    With `fuse` (default), runs of consecutive linear time-invariant stages become one
    operator with the same output (`audiofx_cli.chain.fuse`); `fuse=False` keeps every stage.
    With `learn`, stages' `learn` keys become parameters (`audiofx_cli.chain.learn`); a chain
    with any is not fused, so `chain[i]` is the spec's stage i. The stage specs are kept as
    `chain.stage_specs` (what `save_chain` writes back).

    Raises:
        ChainSpecError: a rate-dependent check or a stage's construction failed; the message
            names the stage and key.
    """
    stages = spec.stages if isinstance(spec, ChainSpec) else spec
    check_rate(stages, sample_rate)
    learning_any = learn and any(stage.learn for stage in stages)
    modules = []
    rate = float(sample_rate)
    for stage in stages:
        kwargs = dict(stage.params)
        for param in stage.definition.params:
            if param.kind == "branches":
                kwargs[param.name] = [
                    build_chain(branch, rate, fuse) for branch in kwargs[param.name]
                ]
        cls = load_impl(stage.definition)
        try:
            module = cls(sample_rate=rate, **kwargs)
            module.connect(list(modules))
            if learn:
                learning.check_nested(stage)
                if stage.learn:
                    module.learn(learning.bounds(stage, rate))
        except ParamError as exc:
            raise stage.error(exc.key, exc.message) from None
        except ValueError as exc:
            raise stage.error(None, str(exc)) from None
        module.set_origin(stage)
        modules.append(module)
        rate = module.output_rate
    if fuse and not learning_any:
        from audiofx_cli.chain.fuse import fuse_stages

        modules = fuse_stages(modules)
    chain = Chain(*modules, sample_rate=float(sample_rate))
    chain.stage_specs = list(stages)
    return chain
