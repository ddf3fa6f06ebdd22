"""Auditory stages (AMT models): gammatone filterbank, inner-hair-cell envelope, adaptation
loops, the Dau/Jepsen modulation filterbank and the King et al. 2019 modulation filterbank."""

from __future__ import annotations

import math
from typing import Any

from audiofx_cli.chain.params import Param, StageDef, _fmt
from audiofx_cli.errors import ParamError

_IMPL = "audiofx_cli.stages.auditory"
_MOD = "audiofx_cli.stages.modfilterbank"

MODFB_PRESETS = ("dau1997", "verhey1999", "jepsen2008", "paulick2024", "none")
ADAPT_PRESETS = ("dau1997", "jepsen2008", "dau1996", "osses2021", "breebaart2001", "puschel1988")


def _freq(name: str, doc: str, default: Any) -> Param:
    return Param(name, "float", doc, default=default, unit="Hz", low=0, low_open=True)


def _erb(f: float) -> float:
    return 9.2645 * math.log(1 + f * 0.00437)


def _check_gammatone(params: dict[str, Any], sample_rate: float | None) -> None:
    flow, fhigh, base = params["flow_hz"], params["fhigh_hz"], params["base_hz"]
    if not flow < fhigh:
        raise ParamError("fhigh_hz", f"must be above flow_hz ({_fmt(flow)} Hz), got {_fmt(fhigh)}")
    if base is not None and not flow <= base <= fhigh:
        raise ParamError(
            "base_hz", f"must lie in [flow_hz, fhigh_hz] = [{_fmt(flow)}, {_fmt(fhigh)}] Hz"
        )
    if sample_rate is not None:
        # the highest centre frequency is at most fhigh_hz (AMT places them inside the range)
        spacing = 1 / params["density"]
        span = _erb(fhigh) - _erb(flow)
        top_erb = _erb(fhigh) - (span - math.floor(span / spacing) * spacing) / 2
        if base is not None:
            top_erb = _erb(base) + math.floor((_erb(fhigh) - _erb(base)) / spacing) * spacing
        top = (math.exp(top_erb / 9.2645) - 1) / 0.00437
        if top >= sample_rate / 2:
            raise ParamError(
                "fhigh_hz",
                f"the highest centre frequency ({_fmt(round(top, 2))} Hz) must be below "
                f"Nyquist ({_fmt(sample_rate / 2)} Hz at {_fmt(sample_rate)} Hz)",
            )


def _check_king(params: dict[str, Any], sample_rate: float | None) -> None:
    lo, hi, q = params["mflow_hz"], params["mfhigh_hz"], params["q"]
    if not lo <= hi:
        raise ParamError("mfhigh_hz", f"must be >= mflow_hz ({_fmt(lo)} Hz), got {_fmt(hi)}")
    if sample_rate is not None:
        top = hi * math.hypot(2, 1 / q) / 2 + hi / q / 2  # hypot: no 1 / q**2 underflow
        if top >= sample_rate / 2:
            raise ParamError(
                "mfhigh_hz",
                f"the top band edge ({_fmt(round(top, 2))} Hz) must be below Nyquist "
                f"({_fmt(sample_rate / 2)} Hz)",
            )


def _check_adapt(params: dict[str, Any], sample_rate: float | None) -> None:
    tau = params["tau_s"]
    if tau is not None and any(t <= 0 for t in tau):
        raise ParamError("tau_s", f"time constants must be > 0 s, got {tau}")


DEFS = [
    StageDef(
        "gammatone",
        "AMT auditory filterbank: ERB-spaced 4th-order gammatone filters (audio -> bands)",
        [
            _freq("flow_hz", "lowest centre frequency bound", 80.0),
            _freq("fhigh_hz", "highest centre frequency bound", 8000.0),
            _freq("base_hz", "one channel exactly here (AMT basef; dau1997 uses 1000)", None),
            Param(
                "density",
                "float",
                "channels per ERB (AMT bwmul = 1 / density)",
                default=1.0,
                low=0.01,  # one channel per 100 ERB: a single channel over any audible range
                high=20,
            ),
            Param("order", "int", "gammatone order", default=4, low=1, high=8),
            Param(
                "output",
                "choice",
                "2 Re(y) as AMT auditoryfilterbank, or the envelope 2 |y|",
                default="real",
                choices=("real", "envelope"),
            ),
        ],
        f"{_IMPL}:Gammatone",
        "auditory",
        "- gammatone: {flow_hz: 80, fhigh_hz: 8000, base_hz: 1000}",
        _check_gammatone,
    ),
    StageDef(
        "ihc_envelope",
        "AMT inner-hair-cell envelope: half-wave rectification + low-pass (or Hilbert)",
        [
            Param(
                "method",
                "choice",
                "dau1996: 1st-order 1 kHz low-pass; breebaart2001: 5 x 1st-order 2 kHz; "
                "hilbert: |analytic signal| of the whole stream (held until its end)",
                default="dau1996",
                choices=("dau1996", "breebaart2001", "hilbert"),
            )
        ],
        f"{_IMPL}:IHCEnvelope",
        "auditory",
        "- ihc_envelope: {method: dau1996}",
    ),
    StageDef(
        "adaptation",
        "AMT adaptation loops (adaptloop): 5 nonlinear feedback loops, model units",
        [
            Param(
                "preset",
                "choice",
                "AMT group: time constants and overshoot limit",
                default="dau1997",
                choices=ADAPT_PRESETS,
            ),
            Param(
                "limit",
                "float",
                "overshoot limit (<= 1: none); default: the preset's",
                default=None,
                low=0,
            ),  # fmt: skip
            Param(
                "tau_s",
                "floats",
                "loop time constants; default: the preset's",
                default=None,
                unit="s",
                low=0,
                low_open=True,
            ),  # fmt: skip
            Param(
                "min_spl_db",
                "float",
                "lowest audible level (AMT minspl)",
                default=0.0,
                unit="dB SPL",
                low=-100,
                high=100,
            ),  # fmt: skip
            Param(
                "dboffset_db",
                "float",
                "level of a full-scale (RMS 1) signal",
                default=100.0,
                unit="dB SPL",
                low=0,
                high=200,
            ),  # fmt: skip
        ],
        f"{_IMPL}:Adaptation",
        "auditory",
        "- adaptation: {preset: dau1997}",
        _check_adapt,
    ),
    StageDef(
        "modulation_filterbank",
        "AMT modfilterbank (Dau 1997 / Verhey 1999 / Jepsen 2008): ragged modulation bands",
        [
            Param(
                "preset",
                "choice",
                "AMT group for the keys left out (upper limit, 150 Hz pre-filter, att_factor)",
                default="jepsen2008",
                choices=MODFB_PRESETS,
            ),
            Param(
                "q",
                "float",
                "quality factor of the log-spaced filters",
                default=2.0,
                low=0.5,
                high=100,
                low_open=True,
            ),  # fmt: skip
            Param(
                "max_mfc_hz",
                "float",
                "upper bound of modulation centre frequencies (AMT mfc_upper_limit_max)",
                default=1000.0,
                unit="Hz",
                low=0,
                low_open=True,
            ),  # fmt: skip
            Param(
                "use_upper_limit",
                "bool",
                "limit each channel to 0.25 x fc; default: the preset's",
                default=None,
            ),  # fmt: skip
            Param(
                "lp150",
                "bool",
                "first-order 150 Hz low-pass before the filters; default: the preset's",
                default=None,
            ),  # fmt: skip
            Param(
                "att_factor",
                "float",
                "factor on the envelopes above 10 Hz; default: the preset's",
                default=None,
                low=0,
                high=10,
                low_open=True,
            ),  # fmt: skip
            Param(
                "filter_type",
                "choice",
                "efilt: AMT's complex one-pole filters; butterworth: 4th-order band-passes "
                "(not in AMT; real band outputs, no envelope)",
                default="efilt",
                choices=("efilt", "butterworth"),
            ),
            Param(
                "fc_hz",
                "floats",
                "auditory centre frequency of each input channel when "
                "no gammatone stage precedes (one value, or one per channel)",
                default=None,
                unit="Hz",
                low=0,
            ),  # fmt: skip
        ],
        f"{_MOD}:ModulationFilterbank",
        "auditory",
        "- modulation_filterbank: {preset: jepsen2008, fc_hz: [1000, 4000]}",
    ),
    StageDef(
        "king2019_modulation",
        "AMT king2019_modfilterbank: log-spaced 4th-order Butterworth modulation band-passes",
        [
            _freq("mflow_hz", "lowest modulation centre frequency", 2.0),
            _freq("mfhigh_hz", "highest modulation centre frequency bound", 150.0),
            Param("q", "float", "quality factor", default=1.0, low=0, high=100, low_open=True),
            Param(
                "n_mod",
                "int",
                "number of filters, log-spaced from mflow_hz to mfhigh_hz "
                "(default: AMT's step (sqrt(4Q^2+1)+1)/(sqrt(4Q^2+1)-1))",
                default=None,
                low=1,
                high=200,
            ),  # fmt: skip
            Param("lp150", "bool", "first-order 150 Hz low-pass first", default=False),
            Param(
                "phase_insensitive",
                "choice",
                "hilbert: above phase_cut_hz the band's Hilbert envelope, RMS-matched (AMT)",
                default="hilbert",
                choices=("hilbert", "none"),
            ),
            Param(
                "hilbert_method",
                "choice",
                "fft: AMT-exact whole-signal transform (the stage holds its input until the "
                "stream ends); fir: streaming FIR transformer, bounded memory, two passes",
                default="fft",
                choices=("fft", "fir"),
            ),
            Param(
                "hilbert_ms",
                "float",
                "length of the FIR Hilbert transformer (latency: half of it)",
                default=2000.0,
                unit="ms",
                low=10,
                high=60000,
            ),  # fmt: skip
            Param(
                "phase_cut_hz",
                "float",
                "Hilbert envelope above this centre frequency",
                default=10.0,
                unit="Hz",
                low=0,
            ),  # fmt: skip
        ],
        f"{_MOD}:King2019Modulation",
        "auditory",
        "- king2019_modulation: {mflow_hz: 2, mfhigh_hz: 150}",
        _check_king,
    ),
]
