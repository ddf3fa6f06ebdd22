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

import math
import struct
from collections.abc import Callable
from functools import cache

from audiofx_cli.dsp.iir_kernels import (
    FMA,
    KERNEL_NAME,
    KERNEL_SIGNATURE,
    VEC,
    Body,
    cascade_ir,
    loop_ir,
)
from audiofx_cli.dsp.jit import KernelFn, compile_ir

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


def _sos_body(n_sections: int) -> Body:
    """Every sample through every lane's own section cascade: the cascade kernel's sections
    (direct form II transposed, as scipy's sosfilt; wavefront order) with per-lane
    coefficients. State rows 2 k, 2 k + 1 are section k's z1, z2."""

    def body(
        out: list[str], samples: list[list[str]], state: dict[str, str], tags: list[str]
    ) -> list[list[str]]:
        return cascade_ir(out, "g" * n_sections, samples, state, tags, lane_coefs=True)

    return body


ADAPT_PARAMS = ("gain", "minlvl", "corr", "mult")  # then a1, b0, factor, expfac, offset per loop
_EXP_COEFS = [1.0 / math.factorial(k) for k in range(13)]  # e^r on |r| <= ln2 / 2: ~1 ulp


def adapt_params(n_loops: int) -> list[str]:
    """Coefficient rows of the adaptation kernel."""
    per_loop = ("a1", "b0", "factor", "expfac", "offset")
    return [*ADAPT_PARAMS, *(f"{c}_{k}" for k in range(n_loops) for c in per_loop)]


def _const(value: float) -> str:
    """A <4 x double> constant of `value` (exact: hexadecimal double)."""
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    return "<" + ", ".join([f"double 0x{bits:016X}"] * 4) + ">"


def _exp(out: list[str], a: str, tag: str) -> str:
    """Emit e^a for a <4 x double> (Cody-Waite reduction by ln 2, degree-12 polynomial, the
    power of two built in two halves; +inf above 709.78, 0 far below, NaN lanes give 1 as
    they are discarded by the caller). Within 2 ulp of libm's exp (tests/test_bank.py)."""
    c = {n: _const(v) for n, v in (("hi", 709.782712893384), ("lo", -745.2), ("zero", 0.0))}
    out.append(f"  %{tag}.nan = fcmp uno {VEC} {a}, {a}")
    out.append(f"  %{tag}.a = select <4 x i1> %{tag}.nan, {VEC} {c['zero']}, {VEC} {a}")
    out.append(f"  %{tag}.m = call {VEC} @llvm.minnum.v4f64({VEC} %{tag}.a, {VEC} {c['hi']})")
    out.append(f"  %{tag}.x = call {VEC} @llvm.maxnum.v4f64({VEC} %{tag}.m, {VEC} {c['lo']})")
    out.append(f"  %{tag}.xl = fmul {VEC} %{tag}.x, {_const(1.4426950408889634)}")
    out.append(f"  %{tag}.n = call {VEC} @llvm.rint.v4f64({VEC} %{tag}.xl)")
    out.append(f"  %{tag}.nn = fneg {VEC} %{tag}.n")
    hi, lo = _const(6.93147180369123816490e-01), _const(1.90821492927058770002e-10)
    out.append(f"  %{tag}.r1 = call {VEC} {FMA}({VEC} %{tag}.nn, {VEC} {hi}, {VEC} %{tag}.x)")
    out.append(f"  %{tag}.r = call {VEC} {FMA}({VEC} %{tag}.nn, {VEC} {lo}, {VEC} %{tag}.r1)")
    # 1 + (r + r^2 Q(r)): the small part summed first, one rounding when 1 is added
    q = _estrin(out, f"%{tag}.r", _EXP_COEFS[2:], tag)
    out.append(f"  %{tag}.r2 = fmul {VEC} %{tag}.r, %{tag}.r")
    out.append(f"  %{tag}.t = call {VEC} {FMA}({VEC} %{tag}.r2, {VEC} {q}, {VEC} %{tag}.r)")
    out.append(f"  %{tag}.p = fadd {VEC} %{tag}.t, {_const(1.0)}")
    p = f"%{tag}.p"
    i64 = "<4 x i64>"
    out.append(f"  %{tag}.i = fptosi {VEC} %{tag}.n to {i64}")
    out.append(f"  %{tag}.i1 = ashr {i64} %{tag}.i, <i64 1, i64 1, i64 1, i64 1>")
    out.append(f"  %{tag}.i2 = sub {i64} %{tag}.i, %{tag}.i1")
    scales = []
    for h in ("i1", "i2"):
        out.append(
            f"  %{tag}.b{h} = add {i64} %{tag}.{h}, <i64 1023, i64 1023, i64 1023, i64 1023>"
        )
        out.append(f"  %{tag}.e{h} = shl {i64} %{tag}.b{h}, <i64 52, i64 52, i64 52, i64 52>")
        out.append(f"  %{tag}.s{h} = bitcast {i64} %{tag}.e{h} to {VEC}")
        scales.append(f"%{tag}.s{h}")
    out.append(f"  %{tag}.y1 = fmul {VEC} {p}, {scales[0]}")
    out.append(f"  %{tag}.y2 = fmul {VEC} %{tag}.y1, {scales[1]}")
    out.append(f"  %{tag}.big = fcmp ogt {VEC} %{tag}.a, {c['hi']}")
    inf = _const(math.inf)
    out.append(f"  %{tag} = select <4 x i1> %{tag}.big, {VEC} {inf}, {VEC} %{tag}.y2")
    return f"%{tag}"


def _estrin(out: list[str], r: str, coefs: list[float], tag: str) -> str:
    """Emit sum coefs[k] r^k by Estrin's scheme: pairs c_2j + c_2j+1 r, then combined with
    r^2, r^4, ...: the dependency chain is log2(terms) multiply-adds long instead of one per
    term (Horner), which is what bounds a recursion that evaluates it every sample."""
    terms = [_const(c) for c in coefs]
    power, level = r, 0
    while len(terms) > 1:
        paired = []
        for j in range(0, len(terms) - 1, 2):
            name = f"%{tag}.e{level}.{j}"
            high, low = terms[j + 1], terms[j]
            out.append(f"  {name} = call {VEC} {FMA}({VEC} {high}, {VEC} {power}, {VEC} {low})")
            paired.append(name)
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
        if len(terms) > 1:
            out.append(f"  %{tag}.pw{level} = fmul {VEC} {power}, {power}")
            power = f"%{tag}.pw{level}"
        level += 1
    return terms[0]


def _adapt_body(n_loops: int, limited: bool) -> Body:
    """Every sample of AMT's adaptation loops (comp_adaptloop) for every group of lanes, the
    same operations as numba's `kernels.adapt_loops` (no multiply-add contraction), with a
    vector exponential for the overshoot limiter (computed for every lane, used where the
    divided signal exceeds 1). State row k is loop k's divisor. Emitted in wavefront order
    (loop k of sample t next to loop k - 1 of t and loop k of t - 1): each loop's recursion
    is long (a division, and with the limiter an exponential and another division), and the
    loops of consecutive samples are what can overlap."""
    one = _const(1.0)

    def step(out: list[str], v: str, k: int, gi: int, state: dict[str, str], t: str) -> str:
        c = {p: f"%{p}g{gi}" for p in adapt_params(n_loops)}
        s_k = state[f"s{k}g{gi}"]
        u = f"{k}.{t}"
        out.append(f"  %d{u} = fdiv {VEC} {v}, {s_k}")
        v = f"%d{u}"
        if limited:
            out.append(f"  %over{u} = fcmp ogt {VEC} {v}, {one}")
            out.append(f"  %dm{u} = fsub {VEC} {v}, {one}")
            out.append(f"  %arg{u} = fmul {VEC} {c[f'expfac_{k}']}, %dm{u}")
            e = _exp(out, f"%arg{u}", f"exp{u}")
            out.append(f"  %den{u} = fadd {VEC} {one}, {e}")
            out.append(f"  %quo{u} = fdiv {VEC} {c[f'factor_{k}']}, %den{u}")
            out.append(f"  %lim{u} = fsub {VEC} %quo{u}, {c[f'offset_{k}']}")
            out.append(f"  %vl{u} = select <4 x i1> %over{u}, {VEC} %lim{u}, {VEC} {v}")
            v = f"%vl{u}"
        out.append(f"  %sa{u} = fmul {VEC} {c[f'a1_{k}']}, {s_k}")
        out.append(f"  %sb{u} = fmul {VEC} {c[f'b0_{k}']}, {v}")
        out.append(f"  %s{u} = fadd {VEC} %sa{u}, %sb{u}")
        state[f"s{k}g{gi}"] = f"%s{u}"
        return v

    def body(
        out: list[str], samples: list[list[str]], state: dict[str, str], tags: list[str]
    ) -> list[list[str]]:
        cur = []
        for xs, tag in zip(samples, tags, strict=True):
            row = []
            for gi, x in enumerate(xs):
                t = f"{tag}g{gi}"
                gain, low = f"%gaing{gi}", f"%minlvlg{gi}"
                out.append(f"  %v.{t} = fmul {VEC} {gain}, {x}")
                out.append(f"  %low.{t} = fcmp olt {VEC} %v.{t}, {low}")
                out.append(f"  %v0.{t} = select <4 x i1> %low.{t}, {VEC} {low}, {VEC} %v.{t}")
                row.append(f"%v0.{t}")
            cur.append(row)
        for d in range(n_loops + len(samples) - 1):
            for j, tag in enumerate(tags):
                k = d - j
                if 0 <= k < n_loops:
                    for gi in range(len(cur[j])):
                        cur[j][gi] = step(out, cur[j][gi], k, gi, state, f"{tag}g{gi}")
        outs = []
        for row, tag in zip(cur, tags, strict=True):
            ys = []
            for gi, v in enumerate(row):
                t = f"{tag}g{gi}"
                out.append(f"  %oc.{t} = fsub {VEC} {v}, %corrg{gi}")
                out.append(f"  %o.{t} = fmul {VEC} %oc.{t}, %multg{gi}")
                ys.append(f"%o.{t}")
            outs.append(ys)
        return outs

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


def _per_sample(body: SampleBody) -> Body:
    """A `loop_ir` body that emits `body` for one sample after the other."""

    def samples_body(
        out: list[str], samples: list[list[str]], state: dict[str, str], tags: list[str]
    ) -> list[list[str]]:
        return [body(out, xs, state, tag) for xs, tag in zip(samples, tags, strict=True)]

    return samples_body


def _kernel_ir(
    groups: int, in_dtype: str, out_dtype: str, params: list[str], n_states: int, body: Body
) -> str:
    """`iir_kernels.loop_ir` around `body`, the lanes' parameters loaded per group."""

    lanes = GROUP_LANES * groups
    entry = _params(params, groups)
    declares = tuple(
        f"declare {VEC} @llvm.{name}.v4f64({', '.join([VEC] * arity)})"
        for name, arity in (("sqrt", 1), ("rint", 1), ("minnum", 2), ("maxnum", 2))
    )
    return loop_ir(lanes, 4, in_dtype, out_dtype, entry, n_states, body, declares)


def complex_bank_ir(order: int, groups: int, in_dtype: str, out_dtype: str, envelope: bool) -> str:
    """LLVM IR of the complex one-pole cascade bank (see the module docstring)."""
    if order < 1 or groups < 1:
        raise ValueError(f"order ({order}) and groups ({groups}) must be at least 1")
    body = _per_sample(_complex_body(order, envelope))
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


@cache
def adapt_bank(n_loops: int, limited: bool, groups: int, in_dtype: str, out_dtype: str) -> KernelFn:
    """The compiled adaptation-loop kernel: coef rows from `adapt_params`, state (n_loops,
    lanes) the loops' divisors.

    Raises:
        ImportError: llvmlite is not installed.
    """
    body = _adapt_body(n_loops, limited)
    ir = _kernel_ir(groups, in_dtype, out_dtype, adapt_params(n_loops), n_loops, body)
    return KERNEL_SIGNATURE(compile_ir(ir, KERNEL_NAME))
