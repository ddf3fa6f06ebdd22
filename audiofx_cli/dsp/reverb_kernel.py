"""Freeverb's tanks as a compiled kernel (LLVM IR through `audiofx_cli.dsp.jit`).

Blocks: a block of B samples is no longer than any comb (so every comb output of the block was
written before it) and never wraps a line, so within a block every line is a plain array and
the only recursion left is each comb's one-pole low-pass memory. Per block:

- the comb loop, one sample per step with the 8 combs of a tank as the lanes of one
  `<8 x double>`: the 8 comb lines share a ring of R rows (R a power of two above the longest
  comb) in which row r holds, in lane k, what comb k reads at the time of row r. One vector
  load reads all 8 combs; the memories and write-backs are vector operations; comb k writes
  lane k of the row L_k ahead. The comb outputs' sum (in Freeverb's order) goes to a stack
  buffer. A stereo kernel runs both tanks of a pair side by side (two independent recursions);
- the tail loop, 4 samples per step (no recursion within a block): the 4 series all-passes on
  the comb sums, then the output mix (stereo: cross-mixed).

The arithmetic is Freeverb's, operation for operation in float64 (no multiply-add
contraction, sums in Freeverb's order): the output equals the former per-sample numba kernel's
bit for bit (measured on 300k samples, float32 and float64, chunked and whole). Values below
`FLUSH` are stored as exact zeros (Freeverb's `undenormalise`), as vector selects.

Kernel C signature (`iir_kernels.KERNEL_SIGNATURE`):
    void freeverb(double *params, int64 *tanks, void **x_rows, void **y_rows, int64 n)
    params: PARAMS (feedback, damp, 1 - damp, wet1, wet2, dry, input gain, flush);
    tanks: TANK_WORDS int64 words per tank (see `TANK_LAYOUT`), updated in place;
    x_rows / y_rows: 2 rows (stereo) or 1 (mono) of n samples (float or double).
"""

from __future__ import annotations

from functools import cache

from audiofx_cli.dsp.iir_kernels import KERNEL_SIGNATURE
from audiofx_cli.dsp.jit import IR_ELEMENTS, KernelFn, compile_ir

COMBS, ALLPASSES = 8, 4
PARAMS = ("feedback", "damp", "undamp", "wet1", "wet2", "dry", "gain", "flush")
# word offsets inside a tank's record: the 8 comb memories (as doubles); the comb ring (its
# address, rows R = a power of two, the row read now, the most samples per block); the comb
# lengths; each all-pass line's address, length and position (int64)
TANK_LAYOUT = {
    "store": 0,
    "ring": 8,
    "ring_rows": 9,
    "ring_pos": 10,
    "cap": 11,
    "comb_len": 12,
    "ap_base": 20,
    "ap_len": 24,
    "ap_pos": 28,
}
TANK_WORDS = 32
NAME = "freeverb"
MAX_BLOCK = 256  # samples per block at most (the stack buffer of comb sums)
V8 = "<8 x double>"


def _word(out: list[str], name: str, tank: int, field: str, k: int, kind: str = "i64") -> None:
    """%name = tank `tank`'s word `field`[k] (its address is %name.p)."""
    at = tank * TANK_WORDS + TANK_LAYOUT[field] + k
    out.append(f"  %{name}.p = getelementptr i64, ptr %tanks, i64 {at}")
    out.append(f"  %{name} = load {kind}, ptr %{name}.p")


def _block_setup(out: list[str], tanks: int) -> None:
    """Block length %B: at most n - i and each tank's cap, and no ring or all-pass line may
    wrap within it. Sets the ring row pointers (%rd{t}: read, %wr{t}_{k}: comb k's write
    lane) and the all-pass pointers (%ab{t}_{k}) at the block's start."""
    out.append("  %left = sub i64 %n, %i")
    least = "%left"

    def take(tag: str, room: str) -> None:
        nonlocal least
        out.append(f"  %lt{tag} = icmp slt i64 {room}, {least}")
        out.append(f"  %min{tag} = select i1 %lt{tag}, i64 {room}, i64 {least}")
        least = f"%min{tag}"

    for t in range(tanks):
        for field in ("ring", "ring_rows", "ring_pos", "cap"):
            _word(out, f"{field}{t}", t, field, 0, "ptr" if field == "ring" else "i64")
        out.append(f"  %mask{t} = sub i64 %ring_rows{t}, 1")
        take(f"cap{t}", f"%cap{t}")
        out.append(f"  %rroom{t} = sub i64 %ring_rows{t}, %ring_pos{t}")
        take(f"r{t}", f"%rroom{t}")
        out.append(f"  %rdo{t} = shl i64 %ring_pos{t}, 3")
        out.append(f"  %rd{t} = getelementptr double, ptr %ring{t}, i64 %rdo{t}")
        for k in range(COMBS):
            tag = f"c{t}_{k}"
            _word(out, f"len{tag}", t, "comb_len", k)
            out.append(f"  %wsum{tag} = add i64 %ring_pos{t}, %len{tag}")
            out.append(f"  %wrow{tag} = and i64 %wsum{tag}, %mask{t}")
            out.append(f"  %wroom{tag} = sub i64 %ring_rows{t}, %wrow{tag}")
            take(tag, f"%wroom{tag}")
            out.append(f"  %wrow8{tag} = shl i64 %wrow{tag}, 3")
            out.append(f"  %wlane{tag} = add i64 %wrow8{tag}, {k}")
            out.append(f"  %wr{t}_{k} = getelementptr double, ptr %ring{t}, i64 %wlane{tag}")
        for k in range(ALLPASSES):
            tag = f"a{t}_{k}"
            _word(out, f"len{tag}", t, "ap_len", k)
            _word(out, f"pos{tag}", t, "ap_pos", k)
            _word(out, f"base{tag}", t, "ap_base", k, "ptr")
            out.append(f"  %ab{t}_{k} = getelementptr double, ptr %base{tag}, i64 %pos{tag}")
            out.append(f"  %room{tag} = sub i64 %len{tag}, %pos{tag}")
            take(tag, f"%room{tag}")
    out.append(f"  %B = add i64 {least}, 0")


def _block_end(out: list[str], tanks: int) -> None:
    """Advance the ring's row and every all-pass position by %B (wrapping)."""
    for t in range(tanks):
        out.append(f"  %rnext{t} = add i64 %ring_pos{t}, %B")
        out.append(f"  %rwrap{t} = and i64 %rnext{t}, %mask{t}")
        out.append(f"  store i64 %rwrap{t}, ptr %ring_pos{t}.p")
        for k in range(ALLPASSES):
            tag = f"a{t}_{k}"
            out.append(f"  %adv{tag} = add i64 %pos{tag}, %B")
            out.append(f"  %wr{tag} = icmp eq i64 %adv{tag}, %len{tag}")
            out.append(f"  %np{tag} = select i1 %wr{tag}, i64 0, i64 %adv{tag}")
            out.append(f"  store i64 %np{tag}, ptr %pos{tag}.p")


def _comb_sample(out: list[str], t: int, feed: str) -> None:
    """One sample of tank t's combs fed `feed` (double): updates %S{t}.n and stores the sum
    of the 8 comb outputs (in Freeverb's order) at %acc{t}.p[j].

    Ring row r holds, in lane k, what comb k reads at the time whose row is r: one vector
    load reads all 8 combs, and comb k writes lane k of the row L_k ahead."""
    out.append(f"  %j8_{t} = shl i64 %j, 3")
    out.append(f"  %vp{t} = getelementptr double, ptr %rd{t}, i64 %j8_{t}")
    out.append(f"  %V{t} = load {V8}, ptr %vp{t}, align 8")
    # s = value * (1 - damp) + store * damp;  w = feed + s * feedback  (both flushed)
    out.append(f"  %sa{t} = fmul {V8} %V{t}, %undamp8")
    out.append(f"  %sb{t} = fmul {V8} %S{t}, %damp8")
    out.append(f"  %sc{t} = fadd {V8} %sa{t}, %sb{t}")
    s = _flush_w(out, f"S{t}.n", f"%sc{t}", COMBS, "%flush8")
    _vsplat(out, f"feed8_{t}", feed, COMBS)
    out.append(f"  %wm{t} = fmul {V8} {s}, %fb8")
    out.append(f"  %wa{t} = fadd {V8} %feed8_{t}, %wm{t}")
    w = _flush_w(out, f"W{t}", f"%wa{t}", COMBS, "%flush8")
    acc = ""
    for k in range(COMBS):
        out.append(f"  %we{t}_{k} = extractelement {V8} {w}, i32 {k}")
        out.append(f"  %wp{t}_{k} = getelementptr double, ptr %wr{t}_{k}, i64 %j8_{t}")
        out.append(f"  store double %we{t}_{k}, ptr %wp{t}_{k}")
        out.append(f"  %v{t}_{k} = extractelement {V8} %V{t}, i32 {k}")
        if k:
            out.append(f"  %acc{t}_{k} = fadd double {acc}, %v{t}_{k}")
            acc = f"%acc{t}_{k}"
        else:
            acc = f"%v{t}_0"
    out.append(f"  %accp{t} = getelementptr double, ptr %acc{t}.p, i64 %j")
    out.append(f"  store double {acc}, ptr %accp{t}")


def _ty(width: int) -> str:
    return "double" if width == 1 else f"<{width} x double>"


def _vsplat(out: list[str], name: str, scalar: str, width: int) -> str:
    """`scalar` in every lane of a <width x double> (itself when width is 1)."""
    if width == 1:
        return scalar
    ty = _ty(width)
    out.append(f"  %{name}.i = insertelement {ty} poison, double {scalar}, i32 0")
    out.append(
        f"  %{name} = shufflevector {ty} %{name}.i, {ty} poison, <{width} x i32> zeroinitializer"
    )
    return f"%{name}"


def _flush_w(out: list[str], name: str, value: str, width: int, flush: str) -> str:
    """select(|value| < flush, 0, value) on a double or a <width x double>."""
    ty = _ty(width)
    suffix = "f64" if width == 1 else f"v{width}f64"
    mask = "i1" if width == 1 else f"<{width} x i1>"
    zero = "0.0" if width == 1 else "zeroinitializer"
    out.append(f"  %{name}.a = call {ty} @llvm.fabs.{suffix}({ty} {value})")
    out.append(f"  %{name}.c = fcmp olt {ty} %{name}.a, {flush}")
    out.append(f"  %{name} = select {mask} %{name}.c, {ty} {zero}, {ty} {value}")
    return f"%{name}"


def _tail(out: list[str], tanks: int, fi: str, fo: str, width: int, tag: str) -> None:
    """Samples %k{tag} .. + width - 1 of the block: each tank's 4 series all-passes on its comb
    sums, then the output mix (y = wet1 own + wet2 other + dry x; mono y = wet1 tank + dry
    x). No recursion within a block, so `width` samples go side by side."""
    ty = _ty(width)
    k = f"%k{tag}"
    c = {
        name: _vsplat(out, f"{name}{tag}", value, width)
        for name, value in (
            ("half", "0.5"),
            ("flush", "%flush"),
            ("wet1", "%wet1"),
            ("wet2", "%wet2"),
            ("dry", "%dry"),
        )
    }
    outs = []
    for t in range(tanks):
        out.append(f"  %ap{t}{tag} = getelementptr double, ptr %acc{t}.p, i64 {k}")
        out.append(f"  %ai{t}{tag} = load {ty}, ptr %ap{t}{tag}, align 8")
        acc = f"%ai{t}{tag}"
        for a in range(ALLPASSES):
            name = f"{t}_{a}{tag}"
            out.append(f"  %bp{name} = getelementptr double, ptr %ab{t}_{a}, i64 {k}")
            out.append(f"  %bo{name} = load {ty}, ptr %bp{name}, align 8")
            out.append(f"  %bh{name} = fmul {ty} %bo{name}, {c['half']}")
            out.append(f"  %bw{name} = fadd {ty} {acc}, %bh{name}")
            w = _flush_w(out, f"bf{name}", f"%bw{name}", width, c["flush"])
            out.append(f"  store {ty} {w}, ptr %bp{name}, align 8")
            out.append(f"  %ba{name} = fsub {ty} %bo{name}, {acc}")
            acc = f"%ba{name}"
        outs.append(acc)
    out.append(f"  %at{tag} = add i64 %i, {k}")
    fout = fo if width == 1 else f"<{width} x {fo}>"
    for row in range(tanks):
        name = f"{row}{tag}"
        x = _load_x(out, name, row, fi, f"%at{tag}", width)
        out.append(f"  %m1_{name} = fmul {ty} {c['wet1']}, {outs[row]}")
        wet = f"%m1_{name}"
        if tanks == 2:
            out.append(f"  %m2_{name} = fmul {ty} {c['wet2']}, {outs[1 - row]}")
            out.append(f"  %m3_{name} = fadd {ty} {wet}, %m2_{name}")
            wet = f"%m3_{name}"
        out.append(f"  %md_{name} = fmul {ty} {c['dry']}, {x}")
        out.append(f"  %mo_{name} = fadd {ty} {wet}, %md_{name}")
        y = f"%mo_{name}"
        if fo == "float":
            out.append(f"  %yt{name} = fptrunc {ty} {y} to {fout}")
            y = f"%yt{name}"
        out.append(f"  %ya{name} = getelementptr {fo}, ptr %y{row}, i64 %at{tag}")
        out.append(f"  store {fout} {y}, ptr %ya{name}, align 4")


def _load_x(out: list[str], name: str, row: int, fi: str, at: str, width: int) -> str:
    """`width` samples of input row `row` from index `at`, as double(s) named after `name`."""
    fin, ty = (fi, "double") if width == 1 else (f"<{width} x {fi}>", _ty(width))
    out.append(f"  %xa{name} = getelementptr {fi}, ptr %x{row}, i64 {at}")
    out.append(f"  %xr{name} = load {fin}, ptr %xa{name}, align 4")
    if fi == "double":
        return f"%xr{name}"
    out.append(f"  %xd{name} = fpext {fin} %xr{name} to {ty}")
    return f"%xd{name}"


def kernel_ir(stereo: bool, in_dtype: str, out_dtype: str) -> str:
    """LLVM IR of the tank kernel (module docstring): a stereo pair or one mono tank."""
    fi, fo = IR_ELEMENTS[in_dtype], IR_ELEMENTS[out_dtype]
    tanks = 2 if stereo else 1
    out = [
        f"declare {V8} @llvm.fabs.v8f64({V8})",
        "declare double @llvm.fabs.f64(double)",
        "declare <4 x double> @llvm.fabs.v4f64(<4 x double>)",
        "",
        f"define void @{NAME}(ptr noalias %params, ptr noalias %tanks, ptr noalias %xp, "
        "ptr noalias %yp, i64 %n) {",
        "entry:",
    ]
    for t in range(tanks):
        out.append(f"  %acc{t}.p = alloca [{MAX_BLOCK} x double], align 64")
    for k, name in enumerate(PARAMS):
        out.append(f"  %{name}.p = getelementptr double, ptr %params, i64 {k}")
        out.append(f"  %{name} = load double, ptr %{name}.p")
    for name in ("feedback", "damp", "undamp", "flush"):
        _vsplat(out, {"feedback": "fb8"}.get(name, f"{name}8"), f"%{name}", COMBS)
    for row in range(tanks):
        for side in ("x", "y"):
            out.append(f"  %{side}pp{row} = getelementptr ptr, ptr %{side}p, i64 {row}")
            out.append(f"  %{side}{row} = load ptr, ptr %{side}pp{row}")
    for t in range(tanks):
        out.append(f"  %S{t}.p = getelementptr i64, ptr %tanks, i64 {t * TANK_WORDS}")
        out.append(f"  %S{t}.0 = load {V8}, ptr %S{t}.p, align 8")
    out.append("  br label %outer")
    # ------------------------------------------------------------- one block per iteration
    out.append("outer:")
    out.append("  %i = phi i64 [0, %entry], [%inext, %blockend]")
    for t in range(tanks):
        out.append(f"  %S{t}.o = phi {V8} [%S{t}.0, %entry], [%S{t}.n, %blockend]")
    out.append("  %more = icmp slt i64 %i, %n")
    out.append("  br i1 %more, label %setup, label %exit")
    out.append("setup:")
    _block_setup(out, tanks)
    out.append("  br label %combs")
    # ------------------------------------------------ combs: one sample per step, combs as lanes
    out.append("combs:")
    out.append("  %j = phi i64 [0, %setup], [%jnext, %combs]")
    for t in range(tanks):
        out.append(f"  %S{t} = phi {V8} [%S{t}.o, %setup], [%S{t}.n, %combs]")
    out.append("  %atj = add i64 %i, %j")
    xs = [_load_x(out, f"{row}j", row, fi, "%atj", 1) for row in range(tanks)]
    if stereo:
        out.append(f"  %sum = fadd double {xs[0]}, {xs[1]}")
        out.append("  %feed = fmul double %sum, %gain")
    else:
        out.append(f"  %feed = fmul double {xs[0]}, %gain")
    for t in range(tanks):
        _comb_sample(out, t, "%feed")
    out.append("  %jnext = add i64 %j, 1")
    out.append("  %jmore = icmp slt i64 %jnext, %B")
    out.append("  br i1 %jmore, label %combs, label %tail")
    # ---------------------------------- all-passes and mix: 4 samples per step, then the rest
    out.append("tail:")
    out.append("  %B4 = and i64 %B, -4")
    out.append("  %has4 = icmp sgt i64 %B4, 0")
    out.append("  br i1 %has4, label %tail4, label %mid")
    out.append("tail4:")
    out.append("  %k4 = phi i64 [0, %tail], [%k4next, %tail4]")
    _tail(out, tanks, fi, fo, 4, "4")
    out.append("  %k4next = add i64 %k4, 4")
    out.append("  %more4 = icmp slt i64 %k4next, %B4")
    out.append("  br i1 %more4, label %tail4, label %mid")
    out.append("mid:")
    out.append("  %rest = icmp slt i64 %B4, %B")
    out.append("  br i1 %rest, label %tail1, label %blockend")
    out.append("tail1:")
    out.append("  %k1 = phi i64 [%B4, %mid], [%k1next, %tail1]")
    _tail(out, tanks, fi, fo, 1, "1")
    out.append("  %k1next = add i64 %k1, 1")
    out.append("  %more1 = icmp slt i64 %k1next, %B")
    out.append("  br i1 %more1, label %tail1, label %blockend")
    out.append("blockend:")
    _block_end(out, tanks)
    out.append("  %inext = add i64 %i, %B")
    out.append("  br label %outer")
    out.append("exit:")
    for t in range(tanks):
        out.append(f"  store {V8} %S{t}.o, ptr %S{t}.p, align 8")
    out.append("  ret void")
    out.append("}")
    return "\n".join(out) + "\n"


@cache
def get_kernel(stereo: bool, in_dtype: str, out_dtype: str) -> KernelFn:
    """The compiled tank kernel (cached in the process and on disk).

    Raises:
        ImportError: llvmlite is not installed.
    """
    return KERNEL_SIGNATURE(compile_ir(kernel_ir(stereo, in_dtype, out_dtype), NAME))
