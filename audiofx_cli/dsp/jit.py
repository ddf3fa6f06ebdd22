"""The project's JIT layer: LLVM IR text -> machine code (llvmlite), cached on disk.

Every compiled kernel of audiofx goes through `compile_ir`: the IIR cascade and filterbank
kernels (`dsp.iir_kernels`, `dsp.bank_kernels`), the OpenMP lane-group driver (`dsp.omp`), the
layout copies (`dsp.layout`) and the PCM conversion (`io.pcm`). Machine code is cached per
(IR, CPU, llvmlite version) under `cache_dir()`, so a later process pays only the load (a few
ms), not the compile (0.1-0.5 s). The same folder holds scipy's cached designs (`dsp.design`).

`try_compile` is the "compile this or fall back to numpy" helper for callers that have a numpy
path; `IR_ELEMENTS` maps numpy dtype names to LLVM element types.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from functools import cache
from pathlib import Path

IR_ELEMENTS = {"float32": "float", "float64": "double"}  # numpy dtype name -> LLVM IR type
KernelFn = ctypes._CFuncPtr  # type: ignore[attr-defined]
_lock = threading.Lock()


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


def compile_ir(ir: str, name: str) -> int:
    """Compile LLVM IR text (or load its machine code from the disk cache) and return the
    address of function `name`; the code stays loaded for the life of the process.

    Raises:
        ImportError: llvmlite is not installed.
    """
    with _lock:
        llvm, machine, tag = _target()
        key = hashlib.sha256((tag + ir).encode()).hexdigest()[:32]
        folder = cache_dir()
        # one name prefix for every kernel (it predates the non-cascade ones)
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
        return int(engine.get_function_address(name))


def try_compile(ir: str, name: str, signature: type) -> KernelFn | None:
    """`compile_ir` wrapped as a ctypes function of `signature`, or None when nothing can be
    compiled here (no llvmlite, or a compiler that fails): callers then use numpy."""
    try:
        return signature(compile_ir(ir, name))
    except Exception:  # any failure means: the caller's numpy path
        return None
