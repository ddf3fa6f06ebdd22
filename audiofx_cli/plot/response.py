"""The data behind `audiofx plot CHAIN`: exact responses of a chain's linear stages.

    resp = chain_response("vocal", sample_rate=48000)
    resp.freqs_hz, resp.stages[0].h, resp.total          # complex responses
    resp.total_db, resp.phase_deg, resp.group_delay_ms   # what the panels show
    resp.impulse_t_s, resp.impulse                       # impulse response of the linear part

The chain is built UNFUSED (one module per YAML stage) and each stage's designed float64
coefficients are read back: second-order sections, FIR taps (with delay compensation applied as
the stage applies it: the response is multiplied by exp(+jwL)), gains, and parallel branches
summed as complex responses. Stages that are not linear filters are listed with the reason they
are not shown; compressor, limiter and gate get their static level curve instead (see
`audiofx_cli.plot.dynamics`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiofx_cli.plot import lti
from audiofx_cli.plot.dynamics import StaticCurve, static_curve

N_FREQS = 2000
MAX_IMPULSE_SAMPLES = 1 << 18


@dataclass
class StageResponse:
    """One YAML stage: its exact response, or why it is not shown.

    Attributes:
        index: 1-based position in the chain.
        name: stage name (`highpass`).
        label: legend text (`1 highpass cutoff_hz=80`).
        h: complex response at `ChainResponse.freqs_hz` (None when not shown).
        group_delay_s: its group delay in seconds (None when not shown).
        reason: why it is not shown ('' when shown).
        static: input/output level curve for dynamics stages (None otherwise).
    """

    index: int
    name: str
    label: str
    h: np.ndarray | None = None
    group_delay_s: np.ndarray | None = None
    reason: str = ""
    static: StaticCurve | None = None

    @property
    def shown(self) -> bool:
        return self.h is not None

    @property
    def db(self) -> np.ndarray:
        assert self.h is not None
        return magnitude_db(self.h)


@dataclass
class ChainResponse:
    """Responses of a chain at one sample rate (see the module docstring)."""

    title: str
    sample_rate: float
    freqs_hz: np.ndarray
    stages: list[StageResponse]
    total: np.ndarray
    total_group_delay_s: np.ndarray
    phase_rad: np.ndarray
    impulse_t_s: np.ndarray
    impulse: np.ndarray
    static_curves: list[StaticCurve] = field(default_factory=list)
    compensated_samples: int = 0  # delay removed by FIR delay compensation (most, over branches)

    @property
    def total_db(self) -> np.ndarray:
        return magnitude_db(self.total)

    @property
    def phase_deg(self) -> np.ndarray:
        return np.degrees(self.phase_rad)

    @property
    def group_delay_ms(self) -> np.ndarray:
        return 1e3 * self.total_group_delay_s

    @property
    def not_shown(self) -> list[StageResponse]:
        return [s for s in self.stages if not s.shown]


def magnitude_db(h: np.ndarray) -> np.ndarray:
    """20 log10 |h|, floored at -300 dB."""
    return 20 * np.log10(np.maximum(np.abs(h), 1e-15))


def log_frequencies(sample_rate: float, n: int = N_FREQS, f_min_hz: float | None = None):
    """n log-spaced frequencies from f_min (10 Hz; Nyquist/100 below 2 kHz rates) to Nyquist."""
    nyquist = sample_rate / 2
    low = f_min_hz if f_min_hz is not None else (10.0 if nyquist >= 1000 else nyquist / 100)
    return np.geomspace(low, nyquist, n)


def _stage_label(index: int, spec: Any) -> str:
    parts = []
    for key in spec.given:
        value = spec.params.get(key)
        if key == "branches":
            parts.append(f"{len(value)} branches")
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, list) and len(value) > 4:
            value = f"[{len(value)} values]"
        parts.append(f"{key}={value}")
    text = f"{index} {spec.name}"
    return f"{text} ({', '.join(parts)})" if parts else text


def _source_name(source: str | None) -> str:
    if not source or source.startswith("<"):
        return "chain"
    return source.removeprefix("preset:")


def _overrides(cls: type, base: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(base, method)


def element_of(module: Any) -> lti.Element | None:
    """The LTI element of a built stage, or None when it is not a linear filter.

    In order: `parallel` (any linear branches, summed), a stage's own `linear_operator()` (the
    declaration chain fusion uses: FIR parts with their latency, SOS parts), then the filter
    classes the plot knows. A subclass of a filter stage that changes how it runs (overrides
    `step`) and declares nothing is never mistaken for a filter.
    """
    from audiofx_cli.stages.base import Chain
    from audiofx_cli.stages.basic import Gain
    from audiofx_cli.stages.filters import BAStage, SOSFilter
    from audiofx_cli.stages.fir import FIRFilter
    from audiofx_cli.stages.structure import Parallel

    cls = type(module)
    rate = getattr(module, "sample_rate", None)
    if rate is not None and getattr(module, "output_rate", rate) != rate:
        return None
    if isinstance(module, Chain):
        parts = [element_of(m) for m in module]
        return None if any(p is None for p in parts) else lti.Cascade(parts)  # type: ignore
    if cls is Parallel:
        parts = [element_of(b) for b in module.branches]
        if any(p is None for p in parts):
            return None
        return lti.Sum(parts, [float(w) for w in module.weights])  # type: ignore[arg-type]
    declared = _declared(module)
    if declared is not None:
        return declared
    if cls is Gain:
        return lti.Gain(float(module.linear_gain))
    if cls.__module__ == "audiofx_cli.stages.channels" and cls.__name__ == "Invert":
        return lti.Gain(-1.0)
    effect = _delay_effect(module)
    if effect is not None:
        return effect
    if isinstance(module, SOSFilter) and not _overrides(cls, SOSFilter, "step"):
        return lti.SOS(module.sos.detach().cpu().double().numpy())
    if cls is BAStage:
        if module.sos is not None:
            return lti.SOS(module.sos.detach().cpu().double().numpy())
        return lti.FIR(module.taps.detach().cpu().double().numpy())
    if isinstance(module, FIRFilter) and not any(
        _overrides(cls, FIRFilter, m) for m in ("step", "flush")
    ):
        return lti.FIR(module.taps.detach().cpu().double().numpy(), int(module.latency))
    return None


def _delay_effect(module: Any) -> lti.Element | None:
    """`delay`, `echo` and `convolve` (first IR channel), read as their docstrings define them."""
    cls = type(module)
    where = (cls.__module__, cls.__name__)
    if where == ("audiofx_cli.stages.delays", "Delay"):
        return lti.FeedbackDelay(int(module.delay), float(module.feedback), float(module.mix))
    if where == ("audiofx_cli.stages.delays", "Echo"):
        taps = np.zeros(max(module.delays) + 1)
        taps[0] = module.direct
        for delay, gain in zip(module.delays, module.gains, strict=True):
            taps[delay] += gain
        return lti.FIR(taps)
    if where == ("audiofx_cli.stages.space", "Convolve"):
        taps = float(module.wet) * module.ir.detach().cpu().double().numpy()[0]
        taps[0] += float(module.dry)
        return lti.FIR(taps)
    return None


def _declared(module: Any) -> lti.Element | None:
    """The stage's own `linear_operator()` parts as an element (None: not declared)."""
    declare = getattr(module, "linear_operator", None)
    if not callable(declare):
        return None
    parts = declare()
    if parts is None:
        return None
    elements: list[lti.Element] = []
    for part in parts:
        if hasattr(part, "sos"):
            elements.append(lti.SOS(np.asarray(part.sos, dtype=np.float64)))
        elif hasattr(part, "taps"):
            taps = np.asarray(part.taps, dtype=np.float64)
            elements.append(lti.FIR(taps, int(getattr(part, "latency", 0))))
        else:
            return None  # a part this plot does not know
    return elements[0] if len(elements) == 1 else lti.Cascade(elements)


def build_unfused(spec: Any, sample_rate: float) -> Any:
    """Build one module per YAML stage (stage fusion off when the builder offers it)."""
    from audiofx_cli.chain import build

    kwargs: dict[str, Any] = {}
    if "fuse" in inspect.signature(build.build_chain).parameters:
        kwargs["fuse"] = False
    return build.build_chain(spec, sample_rate, **kwargs)


def _impulse(element: lti.Element, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Impulse response on a grid that starts `latency` samples before the impulse."""
    pre = element.latency
    n = int(min(max(element.decay_samples(), 64), MAX_IMPULSE_SAMPLES))
    x = np.zeros(pre + n + pre)
    x[pre] = 1.0
    y = element.apply(x)[: pre + n]  # exact there: the left shifts total at most `pre`
    t = (np.arange(y.size) - pre) / sample_rate
    return t, y


def chain_response(
    chain: Any,
    sample_rate: float,
    freqs_hz: np.ndarray | None = None,
    n_freqs: int = N_FREQS,
    title: str | None = None,
) -> ChainResponse:
    """Exact responses of a chain's linear stages, per stage and in total.

    Args:
        chain: path, preset name, ChainSpec or list of stages in YAML form.
        sample_rate: in Hz.
        freqs_hz: where to evaluate (default: `n_freqs` log-spaced, 10 Hz to Nyquist).
        n_freqs: number of default frequencies.
        title: name shown on the figure (default: the chain's name, else its source).

    Returns:
        ChainResponse: complex per-stage and total responses, unwrapped phase, group delay,
        impulse response (of the product of the linear stages), static curves.

    Raises:
        ChainSpecError, UsageError: invalid chain or rate.

    Example:
        >>> r = chain_response([{"gain": {"gain_db": -6}}], 48000, freqs_hz=np.array([1000.0]))
        >>> round(float(r.total_db[0]), 3)
        -6.0
    """
    from audiofx_cli.api import as_spec

    spec = as_spec(chain)
    built = build_unfused(spec, sample_rate)
    freqs = log_frequencies(sample_rate, n_freqs) if freqs_hz is None else np.asarray(freqs_hz)
    w = 2 * np.pi * freqs / sample_rate
    stages: list[StageResponse] = []
    elements: list[lti.Element] = []
    statics: list[StaticCurve] = []
    total = np.ones(freqs.shape, dtype=np.complex128)
    dtotal = np.zeros(freqs.shape, dtype=np.complex128)
    rate_changed = False
    for index, (stage_spec, module) in enumerate(zip(spec.stages, built, strict=True), 1):
        entry = StageResponse(index, stage_spec.name, _stage_label(index, stage_spec))
        stages.append(entry)
        element = None if rate_changed else element_of(module)
        if element is None:
            entry.static = static_curve(stage_spec.name, stage_spec.params, entry.label)
            if entry.static is not None:
                statics.append(entry.static)
                entry.reason = "non-linear: static curve shown"
            elif rate_changed:
                entry.reason = "after a sample-rate change"
            else:
                entry.reason = "not a linear filter"
            if getattr(module, "output_rate", sample_rate) != getattr(
                module, "sample_rate", sample_rate
            ):
                rate_changed = True
            continue
        h, dh = element.response(w)
        entry.h = h
        entry.group_delay_s = lti.group_delay_samples(h, dh) / sample_rate
        elements.append(element)
        dtotal = dtotal * h + total * dh
        total = total * h
    tau = lti.group_delay_samples(total, dtotal)
    linear = lti.Cascade(elements)
    impulse_t, impulse = _impulse(linear, sample_rate)
    return ChainResponse(
        title=title or spec.name or _source_name(spec.source),
        sample_rate=float(sample_rate),
        freqs_hz=freqs,
        stages=stages,
        total=total,
        total_group_delay_s=tau / sample_rate,
        phase_rad=lti.unwrap_phase(total, tau, w),
        impulse_t_s=impulse_t,
        impulse=impulse,
        static_curves=statics,
        compensated_samples=linear.latency,
    )
