"""SIMD kernels for second-order-section cascades, generated as LLVM IR and JIT-compiled.

One kernel runs a whole cascade over `lanes` independent signals at once (channels, or time
segments of one channel): the lanes sit in one SIMD vector of doubles, every section's state
lives in registers, and each sample passes through all sections before the next is read. The
recursion is scipy's direct form II transposed in float64 with fused multiply-adds, whatever
the input/output dtype (float32 or float64), so the state has scipy's `zi` meaning.

Why LLVM IR (through llvmlite, the compiler library numba is built on) rather than numba: numba
leaves the lane loop scalar (its SLP vectoriser is off and the unrolled lane loop is never
loop-vectorised), so the explicit `<4 x double>` vectors here run about 4-8x faster. The main
loop reads 4 samples of each lane row with one vector load and transposes 4x4 (same for the
stores), so the loads and stores cost little next to the recursion.
Compilation and its disk cache are `audiofx_cli.dsp.jit`'s.

Kernel C signature (all pointers host memory):
    void sos(double *coef, double *state, void **x_rows, void **y_rows, int64 n)
    coef: (n_sections, 5) = b0, b1, b2, -a1, -a2 (normalised kernels, see `kernel_ir`: b0 = 1
        and one more row holding the output gain);  state: (n_sections, 2, lanes);
    x_rows / y_rows: `lanes` pointers to rows of n samples (float or double). In-place is fine.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache, partial

from audiofx_cli.dsp.jit import IR_ELEMENTS, KernelFn, compile_ir

LANES = 4  # lanes per kernel call (one <4 x double>); 8 (two interleaved groups, or 8-wide)
# measured no faster per lane, and leaves the second core idle on 8 channels
MAX_UNROLL = 32  # sections per kernel; longer cascades are run as several kernels per block


VEC = "<4 x double>"
FMA = "@llvm.fma.v4f64"
KERNEL_NAME = "sos"  # the function every `loop_ir` kernel defines


def _section(
    out: list[str],
    kind: str,
    s: int,
    g: int,
    v: str,
    state: dict[str, str],
    tag: str,
    vec: str,
    fma: str,
    lane_coefs: bool = False,
) -> str:
    """Emit section `s` of lane group `g` on input `v` for one sample; updates `state`, returns
    the output's name. `kind` as in `kernel_ir`: 'g' is scipy's section as it is, the others
    are sections normalised to b0 = 1 whose numerator lets ops drop out. Coefficients are
    %b0_{s} ... (one for all lanes), or %b0_{s}g{g} ... with `lane_coefs` (each lane its own:
    the filterbanks of `audiofx_cli.dsp.bank_kernels`)."""
    # y = b0 v + p;  p' = (b1 v + q) - a1 y;  q' = b2 v - a2 y  (direct form II transposed)
    at = f"g{g}" if lane_coefs else ""
    b0, b1, b2, na1, na2 = (f"%{name}_{s}{at}" for name in ("b0", "b1", "b2", "na1", "na2"))
    p, q = state[f"s{2 * s}g{g}"], state[f"s{2 * s + 1}g{g}"]
    o, u, w = f"%o{s}g{g}.{tag}", f"%u{s}g{g}.{tag}", f"%w{s}g{g}.{tag}"
    pn, qn = f"%p{s}g{g}.{tag}", f"%q{s}g{g}.{tag}"
    if kind == "g":
        out.append(f"  {o} = call {vec} {fma}({vec} {b0}, {vec} {v}, {vec} {p})")
    else:  # b0 = 1
        out.append(f"  {o} = fadd {vec} {v}, {p}")
    out.append(f"  {u} = call {vec} {fma}({vec} {b1}, {vec} {v}, {vec} {q})")
    out.append(f"  {pn} = call {vec} {fma}({vec} {na1}, {vec} {o}, {vec} {u})")
    if kind == "f":  # b2 = a2 = 0: first order, q is 0 after the first sample
        qn = "zeroinitializer"
    elif kind == "u":  # b2 = 1
        out.append(f"  {qn} = call {vec} {fma}({vec} {na2}, {vec} {o}, {vec} {v})")
    elif kind == "z":  # b2 = 0
        out.append(f"  {qn} = fmul {vec} {na2}, {o}")
    else:
        out.append(f"  {w} = fmul {vec} {b2}, {v}")
        out.append(f"  {qn} = call {vec} {fma}({vec} {na2}, {vec} {o}, {vec} {w})")
    state[f"s{2 * s}g{g}"], state[f"s{2 * s + 1}g{g}"] = pn, qn
    return o


def cascade_ir(
    out: list[str],
    kinds: str,
    samples: list[list[str]],
    state: dict[str, str],
    tags: list[str],
    vec: str = VEC,
    fma: str = FMA,
    lane_coefs: bool = False,
) -> list[list[str]]:
    """Emit consecutive samples' passes through every section, for each group of 4 lanes;
    updates `state` and returns the outputs (per sample, per group); `lane_coefs` as in
    `_section`.

    `samples[k][g]` is sample k of lane group g. The operations are emitted in wavefront
    order: section s of sample k right after section s - 1 of sample k and section s of
    sample k - 1 (all it depends on), so the processor finds independent work next to each
    other in program order instead of one long chain per sample.
    """
    cur = [list(sample) for sample in samples]
    for d in range(len(kinds) + len(samples) - 1):
        for k in range(len(samples)):
            s = d - k
            if 0 <= s < len(kinds):
                for g in range(len(cur[k])):
                    cur[k][g] = _section(
                        out, kinds[s], s, g, cur[k][g], state, tags[k], vec, fma, lane_coefs
                    )
    return cur


def _gain(out: list[str], vs: list[str], normalised: bool, tag: str, vec: str) -> list[str]:
    """The cascade output times the gain pulled out of normalised sections (row n_sections of
    coef), or `vs` unchanged for a plain cascade."""
    if not normalised:
        return vs
    scaled = []
    for g, v in enumerate(vs):
        out.append(f"  %gain{g}.{tag} = fmul {vec} %gain, {v}")
        scaled.append(f"%gain{g}.{tag}")
    return scaled


def _transpose4(out: list[str], rows: list[str], tag: str) -> list[str]:
    """4x4 transpose of <4 x double> values (lanes x time <-> time x lanes)."""
    vec = "<4 x double>"
    lo, hi = "<i32 0, i32 4, i32 1, i32 5>", "<i32 2, i32 6, i32 3, i32 7>"
    a, b = "<i32 0, i32 1, i32 4, i32 5>", "<i32 2, i32 3, i32 6, i32 7>"
    r = rows
    out.append(f"  %{tag}.l01 = shufflevector {vec} {r[0]}, {vec} {r[1]}, <4 x i32> {lo}")
    out.append(f"  %{tag}.l23 = shufflevector {vec} {r[2]}, {vec} {r[3]}, <4 x i32> {lo}")
    out.append(f"  %{tag}.h01 = shufflevector {vec} {r[0]}, {vec} {r[1]}, <4 x i32> {hi}")
    out.append(f"  %{tag}.h23 = shufflevector {vec} {r[2]}, {vec} {r[3]}, <4 x i32> {hi}")
    cols = []
    for k, (src, mask) in enumerate((("l", a), ("l", b), ("h", a), ("h", b))):
        out.append(
            f"  %{tag}.c{k} = shufflevector {vec} %{tag}.{src}01, {vec} %{tag}.{src}23, "
            f"<4 x i32> {mask}"
        )
        cols.append(f"%{tag}.c{k}")
    return cols


def _join(out: list[str], quads: list[list[str]], width: int, tag: str) -> list[list[str]]:
    """Per vector group, the 4 time vectors: 4-lane quads as they are, or pairs of quads
    concatenated into <8 x double>."""
    if width == 4:
        return quads
    mask = "<i32 0, i32 1, i32 2, i32 3, i32 4, i32 5, i32 6, i32 7>"
    joined = []
    for g in range(len(quads) // 2):
        cols = []
        for k in range(4):
            name = f"%{tag}{g}.{k}"
            lo, hi = quads[2 * g][k], quads[2 * g + 1][k]
            out.append(f"  {name} = shufflevector {VEC} {lo}, {VEC} {hi}, <8 x i32> {mask}")
            cols.append(name)
        joined.append(cols)
    return joined


def _split(out: list[str], groups: list[list[str]], width: int, tag: str) -> list[list[str]]:
    """Inverse of `_join`: per 4-lane quad, its 4 time vectors."""
    if width == 4:
        return groups
    quads: list[list[str]] = []
    for g, cols in enumerate(groups):
        for half, mask in enumerate(
            ("<i32 0, i32 1, i32 2, i32 3>", "<i32 4, i32 5, i32 6, i32 7>")
        ):
            names = []
            for k, col in enumerate(cols):
                name = f"%{tag}{g}.{half}.{k}"
                wide = "<8 x double>"
                out.append(
                    f"  {name} = shufflevector {wide} {col}, {wide} poison, <4 x i32> {mask}"
                )
                names.append(name)
            quads.append(names)
    return quads


# body(out, samples, state, tags) -> outputs: samples[k][g] is sample k of vector group g;
# emits every sample's pass through the filter and returns the outputs in the same layout
Body = Callable[[list[str], list[list[str]], dict[str, str], list[str]], list[list[str]]]


def loop_ir(
    lanes: int,
    width: int,
    in_dtype: str,
    out_dtype: str,
    entry: list[str],
    n_state_rows: int,
    body: Body,
    declares: tuple[str, ...] = (),
) -> str:
    """A kernel of the module docstring's signature around `body`: after the `entry` lines
    (coefficients into registers), state row r of vector group g (doubles at offset
    r * lanes + width * g of %state) is kept in register s{r}g{g}; the main loop takes 4
    samples per step (one vector load per lane row and a 4x4 transpose, the same for the
    stores), a one-sample loop finishes the remainder, and the state is stored at the end.

    Lanes form groups of `width` (4: <4 x double>; 8: two 4-lane quads joined into <8 x
    double>). Shared by the cascade kernel here and the filterbank kernels
    (`audiofx_cli.dsp.bank_kernels`).

    The emitted IR, for 4 lanes and one state row (abridged)::

        define void @sos(ptr noalias %coef, ptr noalias %state, ptr noalias %xp, ...) {
        entry:
          ...                                    ; `entry`: coefficients
          %s0g0.0 = load <4 x double>, ptr %s0g0.ptr, align 8
          %x0 = load ptr, ptr %xpp0              ; the lane rows' pointers
          %n4 = and i64 %n, -4
          br i1 %has4, label %loop4, label %mid
        loop4:                                   ; 4 samples per step
          %t4 = phi i64 [0, %entry], [%t4n, %loop4]
          %s0g0.a = phi <4 x double> [%s0g0.0, %entry], [%p0g0.a3, %loop4]
          ...                                    ; loads, transposes, `body`, stores
        mid:
          %s0g0.m = phi <4 x double> [%s0g0.0, %entry], [%p0g0.a3, %loop4]
          br i1 %rest, label %loop, label %exit
        loop:                                    ; one sample per step
          ...
        exit:
          %s0g0.f = phi <4 x double> [%s0g0.m, %mid], [%p0g0.one, %loop]
          store <4 x double> %s0g0.f, ptr %s0g0.ptr, align 8
          ret void
        }

    A loop's state phis take the values the body leaves at the end of the step, known only
    once the body is emitted: each loop is emitted first, then put after its phis
    (`_loop_block`).
    """
    fi, fo = IR_ELEMENTS[in_dtype], IR_ELEMENTS[out_dtype]
    V = f"<{width} x double>"
    out = [f"declare {V} @llvm.fma.v{width}f64({V}, {V}, {V})", *declares, ""]
    out.append(
        f"define void @{KERNEL_NAME}(ptr noalias %coef, ptr noalias %state, ptr noalias %xp, "
        "ptr noalias %yp, i64 %n) {"
    )
    out.append("entry:")
    out += entry
    init = _load_state(out, lanes, width, n_state_rows)
    for lane in range(lanes):
        out.append(f"  %xpp{lane} = getelementptr ptr, ptr %xp, i64 {lane}")
        out.append(f"  %x{lane} = load ptr, ptr %xpp{lane}")
        out.append(f"  %ypp{lane} = getelementptr ptr, ptr %yp, i64 {lane}")
        out.append(f"  %y{lane} = load ptr, ptr %ypp{lane}")
    steps = {"lanes": lanes, "width": width, "fi": fi, "fo": fo, "body": body}
    # ---------------------------------------------------------------- 4 samples per step
    # (8 or 16 samples per step, in one wavefront, measured no faster)
    out.append("  %n4 = and i64 %n, -4")
    out.append("  %has4 = icmp sgt i64 %n4, 0")
    out.append("  br i1 %has4, label %loop4, label %mid")
    four = partial(_four_samples, **steps)
    end4 = _loop_block(out, ("loop4", "entry", "a"), _COUNTER4, _LATCH4, init, V, four)
    mid = _join_block(out, ("mid", "m"), (init, "entry"), (end4, "loop4"), V)
    out.append("  %rest = icmp slt i64 %n4, %n")
    out.append("  br i1 %rest, label %loop, label %exit")
    # ---------------------------------------------------------------- one sample per step
    one = partial(_one_sample, **steps)
    end1 = _loop_block(out, ("loop", "mid", "b"), _COUNTER1, _LATCH1, mid, V, one)
    final = _join_block(out, ("exit", "f"), (mid, "mid"), (end1, "loop"), V)
    for k, name in final.items():
        out.append(f"  store {V} {name}, ptr %{k}.ptr, align 8")
    out.append("  ret void")
    out.append("}")
    return "\n".join(out) + "\n"


# the two loops' counters and latches (counter update, exit test, branch)
_COUNTER4 = "%t4 = phi i64 [0, %entry], [%t4n, %loop4]"
_LATCH4 = ("%t4n = add i64 %t4, 4", "%more4 = icmp slt i64 %t4n, %n4")
_LATCH4 += ("br i1 %more4, label %loop4, label %mid",)
_COUNTER1 = "%t = phi i64 [%n4, %mid], [%t1, %loop]"
_LATCH1 = ("%t1 = add i64 %t, 1", "%done = icmp eq i64 %t1, %n")
_LATCH1 += ("br i1 %done, label %exit, label %loop",)


def _join_block(
    out: list[str],
    names: tuple[str, str],
    first: tuple[dict[str, str], str],
    second: tuple[dict[str, str], str],
    vec: str,
) -> dict[str, str]:
    """Emit block `names[0]` where two paths meet: a phi per state register (suffix
    `names[1]`) of its values on the `first` and `second` (state, block) edges."""
    label, suffix = names
    (a, a_block), (b, b_block) = first, second
    out.append(f"{label}:")
    joined = {}
    for k in a:
        joined[k] = f"%{k}.{suffix}"
        out.append(f"  {joined[k]} = phi {vec} [{a[k]}, %{a_block}], [{b[k]}, %{b_block}]")
    return joined


def _load_state(out: list[str], lanes: int, width: int, n_state_rows: int) -> dict[str, str]:
    """Load every state row of every vector group into registers; returns their names."""
    V = f"<{width} x double>"
    init: dict[str, str] = {}
    for row in range(n_state_rows):
        for g in range(lanes // width):
            key = f"s{row}g{g}"
            out.append(
                f"  %{key}.ptr = getelementptr double, ptr %state, i64 {row * lanes + width * g}"
            )
            out.append(f"  %{key}.0 = load {V}, ptr %{key}.ptr, align 8")
            init[key] = f"%{key}.0"
    return init


def _loop_block(
    out: list[str],
    names: tuple[str, str, str],
    counter_phi: str,
    latch: tuple[str, ...],
    init: dict[str, str],
    vec: str,
    emit: Callable[[list[str], dict[str, str]], None],
) -> dict[str, str]:
    """Emit a loop block. `names` = (label, the block it is entered from, suffix of its state
    registers): the counter phi, one phi per state register (%{key}.{suffix}: `init` on entry,
    the step's end value on the back edge), what `emit` produces for one step, then the
    `latch` lines (counter update and branch). Returns the state's names at the end of the
    step."""
    label, entered_from, suffix = names
    state = {k: f"%{k}.{suffix}" for k in init}
    step: list[str] = []
    emit(step, state)  # updates `state` to the end-of-step names
    out.append(f"{label}:")
    out.append(f"  {counter_phi}")
    for k in init:
        out.append(
            f"  %{k}.{suffix} = phi {vec} [{init[k]}, %{entered_from}], [{state[k]}, %{label}]"
        )
    out += step
    out += [f"  {line}" for line in latch]
    return state


def _four_samples(
    out: list[str], state: dict[str, str], lanes: int, width: int, fi: str, fo: str, body: Body
) -> None:
    """One step of the main loop: 4 samples of every lane (vector loads, 4x4 transposes to
    time-major vectors), `body`, and back (transposes, vector stores)."""
    groups = lanes // width
    rows = []
    for lane in range(lanes):
        out.append(f"  %xa{lane}.a = getelementptr {fi}, ptr %x{lane}, i64 %t4")
        out.append(f"  %xr{lane}.a = load <4 x {fi}>, ptr %xa{lane}.a, align 4")
        if fi == "float":
            out.append(f"  %xd{lane}.a = fpext <4 x float> %xr{lane}.a to {VEC}")
            rows.append(f"%xd{lane}.a")
        else:
            rows.append(f"%xr{lane}.a")
    quads = [_transpose4(out, rows[4 * q : 4 * q + 4], f"tin{q}") for q in range(lanes // 4)]
    cols = _join(out, quads, width, "j")  # cols[g][k]: time k of vector group g
    samples = [[cols[g][k] for g in range(groups)] for k in range(4)]
    outs = body(out, samples, state, [f"a{k}" for k in range(4)])
    halves = _split(out, [[outs[k][g] for k in range(4)] for g in range(groups)], width, "s")
    for q in range(lanes // 4):
        back = _transpose4(out, halves[q], f"tout{q}")
        for i, val in enumerate(back):
            lane = 4 * q + i
            if fo == "float":
                out.append(f"  %yt{lane}.a = fptrunc {VEC} {val} to <4 x float>")
                val = f"%yt{lane}.a"
            out.append(f"  %ya{lane}.a = getelementptr {fo}, ptr %y{lane}, i64 %t4")
            out.append(f"  store <4 x {fo}> {val}, ptr %ya{lane}.a, align 4")


def _one_sample(
    out: list[str], state: dict[str, str], lanes: int, width: int, fi: str, fo: str, body: Body
) -> None:
    """One step of the remainder loop: one sample of every lane gathered into vectors,
    `body`, and scattered back."""
    V = f"<{width} x double>"
    vins = []
    for g in range(lanes // width):
        prev = f"{V} poison"
        for i in range(width):
            lane = width * g + i
            out.append(f"  %xa{lane} = getelementptr {fi}, ptr %x{lane}, i64 %t")
            out.append(f"  %xv{lane} = load {fi}, ptr %xa{lane}")
            src = f"%xv{lane}"
            if fi == "float":
                out.append(f"  %xd{lane} = fpext float %xv{lane} to double")
                src = f"%xd{lane}"
            out.append(f"  %vin{lane} = insertelement {prev}, double {src}, i32 {i}")
            prev = f"{V} %vin{lane}"
        vins.append(f"%vin{width * g + width - 1}")
    vouts = body(out, [vins], state, ["one"])[0]
    for g in range(lanes // width):
        for i in range(width):
            lane = width * g + i
            out.append(f"  %ye{lane} = extractelement {V} {vouts[g]}, i32 {i}")
            val = f"%ye{lane}"
            if fo == "float":
                out.append(f"  %yt{lane} = fptrunc double %ye{lane} to float")
                val = f"%yt{lane}"
            out.append(f"  %ya{lane} = getelementptr {fo}, ptr %y{lane}, i64 %t")
            out.append(f"  store {fo} {val}, ptr %ya{lane}")


def broadcast(out: list[str], name: str, index: int, width: int) -> None:
    """Emit %{name}: double coef[index] in every lane of a <width x double>."""
    V = f"<{width} x double>"
    out.append(f"  %{name}.p = getelementptr double, ptr %coef, i64 {index}")
    out.append(f"  %{name}.x = load double, ptr %{name}.p")
    out.append(f"  %{name}.i = insertelement {V} poison, double %{name}.x, i32 0")
    out.append(
        f"  %{name} = shufflevector {V} %{name}.i, {V} poison, <{width} x i32> zeroinitializer"
    )


def kernel_ir(
    n_sections: int, lanes: int, in_dtype: str, out_dtype: str, width: int = 4, kinds: str = ""
) -> str:
    """LLVM IR text of the cascade kernel (see the module docstring for its signature).

    Lanes come in groups of 4 (one <4 x double> each; 8 lanes = 2 interleaved groups, more
    independent work per recursion latency); the loop around the cascade is `loop_ir`'s.

    `kinds` (one letter per section, or "" for scipy's sections as they are) selects a
    normalised cascade: every section has b0 = 1 and the gain pulled out of them all is
    coef[n_sections, 0], applied to the output. Per section: 'u' numerator [1, b1, 1] (every
    Butterworth / Chebyshev high-pass and low-pass section: 3 multiply-adds and an add instead
    of 4 and a multiply), 'z' [1, b1, 0], 'f' first order ([1, b1, 0] and a2 = 0), 'g' any
    [1, b1, b2]. The multiply-add units are the bottleneck of this loop, the adds run beside
    them.
    """
    if lanes % width or width not in (4, 8):
        raise ValueError(f"lanes ({lanes}) must be a multiple of the width (4 or 8, got {width})")
    if kinds and (len(kinds) != n_sections or set(kinds) - set("guzf")):
        raise ValueError(f"kinds {kinds!r}: one of g, u, z, f per section ({n_sections})")
    normalised = bool(kinds)
    kinds = kinds or "g" * n_sections
    V, F = f"<{width} x double>", f"@llvm.fma.v{width}f64"
    entry: list[str] = []
    for s in range(n_sections):
        for k, name in enumerate(("b0", "b1", "b2", "na1", "na2")):
            broadcast(entry, f"{name}_{s}", 5 * s + k, width)
    if normalised:
        broadcast(entry, "gain", 5 * n_sections, width)

    def body(
        out: list[str], samples: list[list[str]], state: dict[str, str], tags: list[str]
    ) -> list[list[str]]:
        passes = cascade_ir(out, kinds, samples, state, tags, V, F)
        return [_gain(out, p, normalised, t, V) for p, t in zip(passes, tags, strict=True)]

    return loop_ir(lanes, width, in_dtype, out_dtype, entry, 2 * n_sections, body)


KERNEL_SIGNATURE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64
)


@cache
def get_kernel(
    n_sections: int, lanes: int, in_dtype: str, out_dtype: str, width: int = 4, kinds: str = ""
) -> KernelFn:
    """The compiled kernel for a cascade length, lane count, I/O dtypes and section kinds
    (see `kernel_ir`; cached).

    Raises:
        ImportError: llvmlite is not installed.
    """
    ir = kernel_ir(n_sections, lanes, in_dtype, out_dtype, width, kinds)
    return KERNEL_SIGNATURE(compile_ir(ir, KERNEL_NAME))


def available() -> bool:
    """True when kernels can be compiled here (llvmlite importable and working)."""
    try:
        get_kernel(1, LANES, "float64", "float64")
    except Exception:  # any failure means: use the scipy fallback
        return False
    return True
