"""SIMD kernels for second-order-section cascades, generated as LLVM IR and JIT-compiled.

One kernel runs a whole cascade over `lanes` independent signals at once (channels, or time
segments of one channel): the lanes sit in one SIMD vector of doubles, every section's state
lives in registers, and each sample passes through all sections before the next is read. The
recursion is scipy's direct form II transposed in float64 with fused multiply-adds, whatever
the input/output dtype (float32 or float64), so the state has scipy's `zi` meaning.

Why LLVM IR (through llvmlite, the compiler library numba is built on) rather than numba: numba
leaves the lane loop scalar (its SLP vectoriser is off and the unrolled lane loop is never
loop-vectorised), so the explicit `<lanes x double>` vectors here run about 4-8x faster.
Compiled machine code is cached on disk per (IR, CPU, llvmlite version), so a later process
pays only the load (a few ms), not the compile (0.1-0.5 s).

Kernel C signature (all pointers host memory):
    void sos(double *coef, double *state, void **x_rows, void **y_rows, int64 n)
    coef: (n_sections, 5) = b0, b1, b2, -a1, -a2;  state: (n_sections, 2, lanes);
    x_rows / y_rows: `lanes` pointers to rows of n samples (float or double). In-place is fine.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from functools import cache
from pathlib import Path

LANES = 4  # doubles per vector: one AVX register; measured best on the 2-core AVX-512 box
MAX_UNROLL = 32  # sections per kernel; longer cascades are run as several kernels per block
_TYPES = {"float32": "float", "float64": "double"}
KernelFn = ctypes._CFuncPtr  # type: ignore[attr-defined]
_lock = threading.Lock()


def kernel_ir(n_sections: int, lanes: int, in_dtype: str, out_dtype: str) -> str:
    """LLVM IR text of the cascade kernel (see the module docstring for its signature)."""
    fi, fo = _TYPES[in_dtype], _TYPES[out_dtype]
    vec = f"<{lanes} x double>"
    fma = f"@llvm.fma.v{lanes}f64"
    out = [f"declare {vec} {fma}({vec}, {vec}, {vec})", ""]
    out.append(
        "define void @sos(ptr noalias %coef, ptr noalias %state, ptr noalias %xp, "
        "ptr noalias %yp, i64 %n) {"
    )
    out.append("entry:")
    names = ("b0", "b1", "b2", "na1", "na2")
    for s in range(n_sections):
        for k, name in enumerate(names):
            v = f"{name}_{s}"
            out.append(f"  %{v}.p = getelementptr double, ptr %coef, i64 {5 * s + k}")
            out.append(f"  %{v}.x = load double, ptr %{v}.p")
            out.append(f"  %{v}.i = insertelement {vec} poison, double %{v}.x, i32 0")
            out.append(
                f"  %{v} = shufflevector {vec} %{v}.i, {vec} poison, "
                f"<{lanes} x i32> zeroinitializer"
            )
        for j, name in enumerate(("p", "q")):
            out.append(
                f"  %{name}{s}.ptr = getelementptr double, ptr %state, i64 {(2 * s + j) * lanes}"
            )
            out.append(f"  %{name}{s}.0 = load {vec}, ptr %{name}{s}.ptr, align 8")
    for lane in range(lanes):
        out.append(f"  %xpp{lane} = getelementptr ptr, ptr %xp, i64 {lane}")
        out.append(f"  %x{lane} = load ptr, ptr %xpp{lane}")
        out.append(f"  %ypp{lane} = getelementptr ptr, ptr %yp, i64 {lane}")
        out.append(f"  %y{lane} = load ptr, ptr %ypp{lane}")
    out.append("  %empty = icmp sle i64 %n, 0")
    out.append("  br i1 %empty, label %exit, label %loop")
    out.append("loop:")
    out.append("  %t = phi i64 [0, %entry], [%t1, %loop]")
    for s in range(n_sections):
        for name in ("p", "q"):
            out.append(f"  %{name}{s} = phi {vec} [%{name}{s}.0, %entry], [%{name}{s}.n, %loop]")
    prev = f"{vec} poison"
    for lane in range(lanes):
        out.append(f"  %xa{lane} = getelementptr {fi}, ptr %x{lane}, i64 %t")
        out.append(f"  %xv{lane} = load {fi}, ptr %xa{lane}")
        src = f"%xv{lane}"
        if fi == "float":
            out.append(f"  %xd{lane} = fpext float %xv{lane} to double")
            src = f"%xd{lane}"
        out.append(f"  %vin{lane} = insertelement {prev}, double {src}, i32 {lane}")
        prev = f"{vec} %vin{lane}"
    v = f"%vin{lanes - 1}"
    for s in range(n_sections):
        # y = b0 v + p;  p' = (b1 v + q) - a1 y;  q' = b2 v - a2 y   (direct form II transposed)
        out.append(f"  %o{s} = call {vec} {fma}({vec} %b0_{s}, {vec} {v}, {vec} %p{s})")
        out.append(f"  %u{s} = call {vec} {fma}({vec} %b1_{s}, {vec} {v}, {vec} %q{s})")
        out.append(f"  %p{s}.n = call {vec} {fma}({vec} %na1_{s}, {vec} %o{s}, {vec} %u{s})")
        out.append(f"  %w{s} = fmul {vec} %b2_{s}, {v}")
        out.append(f"  %q{s}.n = call {vec} {fma}({vec} %na2_{s}, {vec} %o{s}, {vec} %w{s})")
        v = f"%o{s}"
    for lane in range(lanes):
        out.append(f"  %ye{lane} = extractelement {vec} {v}, i32 {lane}")
        val = f"%ye{lane}"
        if fo == "float":
            out.append(f"  %yt{lane} = fptrunc double %ye{lane} to float")
            val = f"%yt{lane}"
        out.append(f"  %ya{lane} = getelementptr {fo}, ptr %y{lane}, i64 %t")
        out.append(f"  store {fo} {val}, ptr %ya{lane}")
    out.append("  %t1 = add i64 %t, 1")
    out.append("  %done = icmp eq i64 %t1, %n")
    out.append("  br i1 %done, label %exit, label %loop")
    out.append("exit:")
    for s in range(n_sections):
        for name in ("p", "q"):
            out.append(f"  %{name}{s}.f = phi {vec} [%{name}{s}.0, %entry], [%{name}{s}.n, %loop]")
    for s in range(n_sections):
        for name in ("p", "q"):
            out.append(f"  store {vec} %{name}{s}.f, ptr %{name}{s}.ptr, align 8")
    out.append("  ret void")
    out.append("}")
    return "\n".join(out) + "\n"


def cache_dir() -> Path | None:
    """Where compiled kernels are kept: $AUDIOFX_CACHE_DIR, else the user cache folder.

    Returns None when no writable folder can be had (kernels are then compiled per process).
    """
    env = os.environ.get("AUDIOFX_CACHE_DIR")
    base = (
        Path(env)
        if env
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "audiofx"
    )
    folder = base / "kernels"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


@cache
def _target():  # type: ignore[no-untyped-def]
    import llvmlite
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=3
    )
    tag = f"{llvmlite.__version__}|{llvm.get_default_triple()}|{cpu}|{features}"
    return llvm, machine, tag


_engines: list[object] = []  # keep execution engines (and their code) alive


@cache
def get_kernel(n_sections: int, lanes: int, in_dtype: str, out_dtype: str) -> KernelFn:
    """The compiled kernel for a cascade length, lane count and I/O dtypes (cached).

    Raises:
        ImportError: llvmlite is not installed.
    """
    with _lock:
        llvm, machine, tag = _target()
        ir = kernel_ir(n_sections, lanes, in_dtype, out_dtype)
        key = hashlib.sha256((tag + ir).encode()).hexdigest()[:32]
        folder = cache_dir()
        path = folder / f"sos_{key}.o" if folder else None
        cached = path.read_bytes() if path is not None and path.is_file() else None
        module = llvm.parse_assembly(ir)
        module.verify()
        if cached is None:
            options = llvm.create_pipeline_tuning_options(speed_level=3)
            builder = llvm.create_pass_builder(machine, options)
            builder.getModulePassManager().run(module, builder)
        engine = llvm.create_mcjit_compiler(module, machine)

        def notify(_module: object, buffer: bytes) -> None:
            if path is not None and cached is None:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                try:
                    tmp.write_bytes(buffer)
                    tmp.replace(path)
                except OSError:
                    pass

        engine.set_object_cache(notify, lambda _module: cached)
        engine.finalize_object()
        _engines.append(engine)
        address = engine.get_function_address("sos")
        signature = ctypes.CFUNCTYPE(
            None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64
        )
        return signature(address)


def available() -> bool:
    """True when kernels can be compiled here (llvmlite importable and working)."""
    try:
        get_kernel(1, LANES, "float64", "float64")
    except Exception:  # any failure means: use the scipy fallback
        return False
    return True
