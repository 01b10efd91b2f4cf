"""The core's names and numbers the front end passes to the kernel builder: memory spaces,
ALU operations, activation functions and engines. The tables come from the core
(``trnsim._trnsim.isa``: index = the C++ enum value), so they cannot drift from it."""

from __future__ import annotations

from .._trnsim import isa as _cisa

# isa::MemSpace values (the builder's declare() takes them).
SBUF, PSUM, HBM = 0, 1, 2

#: isa::AluOp name -> value ("add", "is_ge", ...)
ALU = {n: i for i, n in enumerate(_cisa.alu_ops())}
#: isa::ActFunc name -> value ("exp", "gelu_apprx_tanh", ...)
ACT = {n: i for i, n in enumerate(_cisa.act_funcs())}
#: arch::Engine name -> value ("tensor", "vector", "scalar", "gpsimd", "sync", "dma")
ENGINE = {n: i for i, n in enumerate(_cisa.engines())}
# The engines the tracer names most (the builder takes the number).
TENSOR, VECTOR, SCALAR, GPSIMD = (ENGINE[n] for n in ("tensor", "vector", "scalar", "gpsimd"))
#: every opcode's name (nki.isa spelling), in isa::Opcode order
OPCODES = tuple(_cisa.opcodes())
