"""A small C-like layer over llvmlite.ir for scalar-loop kernels (dynamics, loudness).

The IIR and filterbank kernels write LLVM IR text with explicit vectors: their loops carry a
recursion over many lanes. The dynamics and measurement kernels are mostly plain loops over a
block (levels, dB conversions, gains, FIR taps) around short scalar recursions; written here
the way one writes C (mutable variables as stack slots, counted loops, if), LLVM's -O3 pipeline
of `audiofx_cli.dsp.jit` turns the slots into registers and vectorises the plain loops for the
host (AVX2 / AVX-512). Compiled with llvmlite alone and cached on disk by `dsp.jit`: loading a
kernel costs milliseconds, where numba's first call in a process costs about a second (its
target initialisation, measured 0.8-1.2 s on the 2-core machine of docs/performance.md), which
is most of a short file's processing time.

Example (a kernel that doubles n doubles)::

    k = Kernel("double_all", [("x", PTR), ("n", I64)])
    with k.loop(k.arg("n")) as i:
        k.store(k.fmul(k.load("x", i), k.f64(2.0)), "x", i)
    address = k.compile()
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llvmlite import ir

from audiofx_cli.dsp import jit

F64, F32, I64, I1 = ir.DoubleType(), ir.FloatType(), ir.IntType(64), ir.IntType(1)
PTR = ir.PointerType()
ELEMENT = {"float32": F32, "float64": F64}
CTYPE = {F64: ctypes.c_double, I64: ctypes.c_int64, PTR: ctypes.c_void_p}
FLAGS = ("contract",)  # fused multiply-adds allowed; nothing else relaxed

Value = Any  # an ir.Value


class Var:
    """A mutable local (a stack slot; LLVM promotes it to a register)."""

    def __init__(self, kernel: Kernel, slot: Value, ty: ir.Type) -> None:
        self.kernel, self.slot, self.ty = kernel, slot, ty

    def get(self) -> Value:
        return self.kernel.b.load(self.slot, typ=self.ty)

    def set(self, value: Value) -> None:
        self.kernel.b.store(value, self.slot)


class Kernel:
    """One function `name(args...)` returning void; build its body, then `compile()`."""

    def __init__(self, name: str, args: list[tuple[str, ir.Type]]) -> None:
        self.name = name
        self.module = ir.Module(name=name)
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [t for _, t in args]), name)
        for arg, (_, ty) in zip(fn.args, args, strict=True):
            if ty is PTR:
                arg.add_attribute("noalias")
        self.fn = fn
        self.args = {n: a for (n, _), a in zip(args, fn.args, strict=True)}
        self.arg_types = [t for _, t in args]
        self._entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(self._entry)
        self._intrinsics: dict[str, Value] = {}

    # ------------------------------------------------------------------ values and locals
    def arg(self, name: str) -> Value:
        return self.args[name]

    @staticmethod
    def f64(value: float) -> Value:
        return ir.Constant(F64, value)

    @staticmethod
    def i64(value: int) -> Value:
        return ir.Constant(I64, value)

    def var(self, init: Value, ty: ir.Type = F64) -> Var:
        """A local holding `init` (its slot is allocated in the entry block)."""
        with self.b.goto_block(self._entry):
            self.b.position_at_start(self._entry)
            slot = self.b.alloca(ty)
        var = Var(self, slot, ty)
        var.set(init)
        return var

    def array(self, length: int, ty: ir.Type = F64) -> Value:
        """A stack array of `length` elements (a pointer to its first)."""
        with self.b.goto_block(self._entry):
            self.b.position_at_start(self._entry)
            slot = self.b.alloca(ty, size=ir.Constant(I64, length))
        return slot

    # ------------------------------------------------------------------ memory
    def _ptr(self, base: Value | str) -> Value:
        return self.args[base] if isinstance(base, str) else base

    def at(self, base: Value | str, index: Value, ty: ir.Type = F64) -> Value:
        """The address of element `index` of `base` (elements of type ty)."""
        return self.b.gep(self._ptr(base), [index], source_etype=ty)

    def load(self, base: Value | str, index: Value, ty: ir.Type = F64) -> Value:
        """Element `index` of `base`, read as ty and widened to double when it is float."""
        value = self.b.load(self.at(base, index, ty), typ=ty)
        return self.b.fpext(value, F64) if ty is F32 else value

    def store(self, value: Value, base: Value | str, index: Value, ty: ir.Type = F64) -> None:
        """Store a double (rounded to float when ty is float) at element `index`."""
        if ty is F32:
            value = self.b.fptrunc(value, F32)
        self.b.store(value, self.at(base, index, ty))

    # ------------------------------------------------------------------ arithmetic
    def fadd(self, a: Value, b: Value) -> Value:
        return self.b.fadd(a, b, flags=FLAGS)

    def fsub(self, a: Value, b: Value) -> Value:
        return self.b.fsub(a, b, flags=FLAGS)

    def fmul(self, a: Value, b: Value) -> Value:
        return self.b.fmul(a, b, flags=FLAGS)

    def fdiv(self, a: Value, b: Value) -> Value:
        return self.b.fdiv(a, b, flags=FLAGS)

    def mad(self, a: Value, b: Value, c: Value) -> Value:
        """a * b + c (fused where the processor has it)."""
        return self.fadd(self.fmul(a, b), c)

    def blend(self, coef: Value, old: Value, new: Value) -> Value:
        """coef * old + (1 - coef) * new: a one-pole step."""
        return self.fadd(self.fmul(coef, old), self.fmul(self.fsub(self.f64(1.0), coef), new))

    def _intrinsic(self, name: str, arity: int) -> Value:
        if name not in self._intrinsics:
            fnty = ir.FunctionType(F64, [F64] * arity)
            self._intrinsics[name] = ir.Function(self.module, fnty, f"llvm.{name}.f64")
        return self._intrinsics[name]

    def fmax(self, a: Value, b: Value) -> Value:
        """a > b ? a : b: one instruction (maxsd), unlike llvm.maxnum, whose NaN rule costs
        a compare and a blend in every recursion that takes a maximum (the inputs are
        checked for NaN before any stage runs)."""
        return self.select(self.fcmp(">", a, b), a, b)

    def fmin(self, a: Value, b: Value) -> Value:
        """a < b ? a : b (see `fmax`)."""
        return self.select(self.fcmp("<", a, b), a, b)

    def fabs(self, a: Value) -> Value:
        return self.b.call(self._intrinsic("fabs", 1), [a])

    def select(self, cond: Value, a: Value, b: Value) -> Value:
        return self.b.select(cond, a, b)

    def fcmp(self, op: str, a: Value, b: Value) -> Value:
        return self.b.fcmp_ordered(op, a, b)

    def icmp(self, op: str, a: Value, b: Value) -> Value:
        return self.b.icmp_signed(op, a, b)

    def add(self, a: Value, b: Value) -> Value:
        return self.b.add(a, b)

    def sub(self, a: Value, b: Value) -> Value:
        return self.b.sub(a, b)

    def mul(self, a: Value, b: Value) -> Value:
        return self.b.mul(a, b)

    def imin(self, a: Value, b: Value) -> Value:
        return self.select(self.icmp("<", a, b), a, b)

    def imax(self, a: Value, b: Value) -> Value:
        return self.select(self.icmp(">", a, b), a, b)

    # ------------------------------------------------------------------ control flow
    @contextmanager
    def loop(self, stop: Value, start: Value | None = None, step: int = 1) -> Iterator[Value]:
        """for (i = start; i < stop; i += step): the body is built inside the `with`."""
        counter = self.var(start if start is not None else self.i64(0), I64)
        head = self.fn.append_basic_block("loop")
        body = self.fn.append_basic_block("body")
        done = self.fn.append_basic_block("done")
        self.b.branch(head)
        self.b.position_at_end(head)
        i = counter.get()
        self.b.cbranch(self.icmp("<", i, stop), body, done)
        self.b.position_at_end(body)
        yield i
        counter.set(self.add(i, self.i64(step)))
        self.b.branch(head)
        self.b.position_at_end(done)

    @contextmanager
    def when(self, cond: Value) -> Iterator[None]:
        """if (cond) { ... }"""
        with self.b.if_then(cond):
            yield

    @contextmanager
    def while_(self, make_cond: Any) -> Iterator[None]:
        """while (make_cond()) { ... }: the condition is rebuilt at the loop head."""
        head = self.fn.append_basic_block("while")
        body = self.fn.append_basic_block("wbody")
        done = self.fn.append_basic_block("wdone")
        self.b.branch(head)
        self.b.position_at_end(head)
        self.b.cbranch(make_cond(), body, done)
        self.b.position_at_end(body)
        yield
        self.b.branch(head)
        self.b.position_at_end(done)

    # ------------------------------------------------------------------ build
    def ir(self) -> str:
        """The module's IR text (no target lines: `dsp.jit` compiles for the host)."""
        if self.b.block.terminator is None:
            self.b.ret_void()
        lines = str(self.module).splitlines()
        return "\n".join(line for line in lines if not line.startswith("target ")) + "\n"

    def compile(self) -> Any:
        """The compiled function as a ctypes callable (through `dsp.jit`'s disk cache).

        Raises:
            ImportError: llvmlite is not installed.
        """
        address = jit.compile_ir(self.ir(), self.name)
        signature = ctypes.CFUNCTYPE(None, *[CTYPE[t] for t in self.arg_types])
        return signature(address)
