"""SIMD kernels for banks of different filters: the auditory filterbanks on the lanes engine.

`audiofx_cli.dsp.iir_kernels` runs ONE cascade over many signals, its coefficients broadcast
to every lane. A filterbank runs MANY filters: 30 gammatone bands on one audio channel, up to
12 modulation filters on each auditory channel. Here every lane of a vector is one (signal,
filter) pair with its own input row (lanes may share one), its own output row, its own
coefficients and its own state, so four different filters advance together in one
<4 x double> and several such groups interleave in one call for the processor to overlap.
The loop reads 4 samples of every lane row at once and transposes 4x4, as the cascade kernel
does; the arithmetic is float64 with fused multiply-adds whatever the I/O dtype.

Two banks:
- `complex_bank`: the complex one-pole cascade of the AMT, `order` equal one-poles
      y_k[t] = p y_k[t-1] + g y_{k-1}[t],  y_0 = x,
  with output post * Re(y_K) or post * |y_K| (`envelope`). Gammatone bands (order 4, post 2)
  and the modulation filterbank's complex band-passes (AMT `efilt`, order 1) are both this.
  coef: (5, lanes) rows Re p, Im p, -Im p, g, post;  state: (order, 2, lanes) Re / Im.
- `sos_bank`: a cascade of second-order sections per lane (direct form II transposed, as
  scipy's sosfilt): the Butterworth modulation filterbank and King 2019's band-passes.
  coef: (5 n_sections, lanes) rows b0, b1, b2, -a1, -a2 per section;  state:
  (n_sections, 2, lanes) z1, z2.

Kernel C signature (`iir_kernels.KERNEL_SIGNATURE`, so `iir_cpu` dispatches it):
    void sos(double *coef, double *state, void **x_rows, void **y_rows, int64 n)
    x_rows / y_rows: `lanes` row pointers of n samples (float or double).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from audiofx_cli.dsp.iir_kernels import (
    FMA,
    KERNEL_NAME,
    KERNEL_SIGNATURE,
    VEC,
    KernelFn,
    compile_ir,
    loop_ir,
)

PARAMS = ("pr", "pi", "npi", "g", "post")  # coef rows, in order
GROUP_LANES = 4  # lanes per vector

# body(out, inputs per group, state names, tag) -> outputs per group (all <4 x double>)
SampleBody = Callable[[list[str], list[str], dict[str, str], str], list[str]]


def _complex_body(order: int, envelope: bool) -> SampleBody:
    """One sample of the complex one-pole cascade for every group of lanes."""

    def body(out: list[str], xs: list[str], state: dict[str, str], tag: str) -> list[str]:
        ys = []
        for gi, x in enumerate(xs):
            c = {p: f"%{p}g{gi}" for p in PARAMS}
            t = f"{tag}g{gi}"
            out.append(f"  %ur0.{t} = fmul {VEC} {c['g']}, {x}")
            ur, ui = f"%ur0.{t}", ""
            for k in range(order):
                sr, si = state[f"s{2 * k}g{gi}"], state[f"s{2 * k + 1}g{gi}"]
                a, yr, b, yi = (f"%{n}{k}.{t}" for n in ("a", "yr", "b", "yi"))
                out.append(f"  {a} = call {VEC} {FMA}({VEC} {c['npi']}, {VEC} {si}, {VEC} {ur})")
                out.append(f"  {yr} = call {VEC} {FMA}({VEC} {c['pr']}, {VEC} {sr}, {VEC} {a})")
                if ui:
                    out.append(f"  {b} = call {VEC} {FMA}({VEC} {c['pi']}, {VEC} {sr}, {VEC} {ui})")
                else:  # the input is real
                    out.append(f"  {b} = fmul {VEC} {c['pi']}, {sr}")
                out.append(f"  {yi} = call {VEC} {FMA}({VEC} {c['pr']}, {VEC} {si}, {VEC} {b})")
                state[f"s{2 * k}g{gi}"], state[f"s{2 * k + 1}g{gi}"] = yr, yi
                if k + 1 < order:
                    out.append(f"  %ur{k + 1}.{t} = fmul {VEC} {c['g']}, {yr}")
                    out.append(f"  %ui{k + 1}.{t} = fmul {VEC} {c['g']}, {yi}")
                    ur, ui = f"%ur{k + 1}.{t}", f"%ui{k + 1}.{t}"
            if envelope:
                out.append(f"  %m2.{t} = fmul {VEC} {yi}, {yi}")
                out.append(f"  %m.{t} = call {VEC} {FMA}({VEC} {yr}, {VEC} {yr}, {VEC} %m2.{t})")
                out.append(f"  %mag.{t} = call {VEC} @llvm.sqrt.v4f64({VEC} %m.{t})")
                yr = f"%mag.{t}"
            out.append(f"  %out.{t} = fmul {VEC} {c['post']}, {yr}")
            ys.append(f"%out.{t}")
        return ys

    return body


def sos_params(n_sections: int) -> list[str]:
    """Coefficient rows of the SOS bank: b0, b1, b2, -a1, -a2 of every section in turn."""
    return [f"{c}_{k}" for k in range(n_sections) for c in ("b0", "b1", "b2", "na1", "na2")]


def _sos_body(n_sections: int) -> SampleBody:
    """One sample through every lane's own section cascade (direct form II transposed, as
    scipy's sosfilt; state rows 2 k, 2 k + 1 are section k's z1, z2)."""

    def body(out: list[str], xs: list[str], state: dict[str, str], tag: str) -> list[str]:
        ys = []
        for gi, v in enumerate(xs):
            for k in range(n_sections):
                c = {n: f"%{n}_{k}g{gi}" for n in ("b0", "b1", "b2", "na1", "na2")}
                z1, z2 = state[f"s{2 * k}g{gi}"], state[f"s{2 * k + 1}g{gi}"]
                t = f"{k}.{tag}g{gi}"
                out.append(f"  %y{t} = call {VEC} {FMA}({VEC} {c['b0']}, {VEC} {v}, {VEC} {z1})")
                out.append(f"  %u{t} = call {VEC} {FMA}({VEC} {c['b1']}, {VEC} {v}, {VEC} {z2})")
                out.append(
                    f"  %p{t} = call {VEC} {FMA}({VEC} {c['na1']}, {VEC} %y{t}, {VEC} %u{t})"
                )
                out.append(f"  %w{t} = fmul {VEC} {c['b2']}, {v}")
                out.append(
                    f"  %q{t} = call {VEC} {FMA}({VEC} {c['na2']}, {VEC} %y{t}, {VEC} %w{t})"
                )
                state[f"s{2 * k}g{gi}"], state[f"s{2 * k + 1}g{gi}"] = f"%p{t}", f"%q{t}"
                v = f"%y{t}"
            ys.append(v)
        return ys

    return body


def _params(params: list[str], groups: int) -> list[str]:
    """Entry lines: coef row j (lanes doubles) into %{params[j]}g{group}, one vector a group."""
    lanes = GROUP_LANES * groups
    out = []
    for j, p in enumerate(params):
        for gi in range(groups):
            out.append(f"  %{p}g{gi}.p = getelementptr double, ptr %coef, i64 {j * lanes + 4 * gi}")
            out.append(f"  %{p}g{gi} = load {VEC}, ptr %{p}g{gi}.p, align 8")
    return out


def _kernel_ir(
    groups: int, in_dtype: str, out_dtype: str, params: list[str], n_states: int, body: SampleBody
) -> str:
    """`iir_kernels.loop_ir` around a per-sample `body` (every group's lanes of one sample)."""

    def samples_body(
        out: list[str], samples: list[list[str]], state: dict[str, str], tags: list[str]
    ) -> list[list[str]]:
        return [body(out, xs, state, tag) for xs, tag in zip(samples, tags, strict=True)]

    lanes = GROUP_LANES * groups
    entry = _params(params, groups)
    sqrt = (f"declare {VEC} @llvm.sqrt.v4f64({VEC})",)
    return loop_ir(lanes, 4, in_dtype, out_dtype, entry, n_states, samples_body, sqrt)


def complex_bank_ir(order: int, groups: int, in_dtype: str, out_dtype: str, envelope: bool) -> str:
    """LLVM IR of the complex one-pole cascade bank (see the module docstring)."""
    if order < 1 or groups < 1:
        raise ValueError(f"order ({order}) and groups ({groups}) must be at least 1")
    body = _complex_body(order, envelope)
    return _kernel_ir(groups, in_dtype, out_dtype, list(PARAMS), 2 * order, body)


@cache
def complex_bank(
    order: int, groups: int, in_dtype: str, out_dtype: str, envelope: bool
) -> KernelFn:
    """The compiled bank kernel (cached in memory and, as machine code, on disk).

    Raises:
        ImportError: llvmlite is not installed.
    """
    ir = complex_bank_ir(order, groups, in_dtype, out_dtype, envelope)
    return KERNEL_SIGNATURE(compile_ir(ir, KERNEL_NAME))


@cache
def sos_bank(n_sections: int, groups: int, in_dtype: str, out_dtype: str) -> KernelFn:
    """The compiled SOS bank kernel: every lane its own cascade of `n_sections` sections
    (coef rows from `sos_params`, state (n_sections, 2, lanes) z1 / z2).

    Raises:
        ImportError: llvmlite is not installed.
    """
    body = _sos_body(n_sections)
    ir = _kernel_ir(groups, in_dtype, out_dtype, sos_params(n_sections), 2 * n_sections, body)
    return KERNEL_SIGNATURE(compile_ir(ir, KERNEL_NAME))
