"""The user's spellings of ALU operations and activation functions (numpy ufuncs, nki.language
functions, names) -> the core's numbers (_names.py); nki.isa, nki.language and nl.all_reduce
all use these."""

from __future__ import annotations

from .._trnsim import isa as _cisa
from . import _context
from . import errors as _err
from ._names import ACT as _ACT
from ._names import ALU as _ALU


#: other spellings of ALU operations -> the core's name ("maximum" -> "max", "greater" -> "is_gt");
#: the kernel builder binding's own table, so nki and sim.KernelBuilder take the same spellings
_ALU_NAMES = _cisa.alu_aliases()
#: the same for activation functions ("absolute" -> "abs")
_ACT_NAMES = _cisa.act_aliases()


def _alu(op) -> int:
    if op is None:
        return 0
    name = getattr(op, "_alu", None) or (op if isinstance(op, str) else getattr(op, "__name__", None))
    key = _ALU_NAMES.get(name, name)
    if key not in _ALU:
        raise _context.fail(_err.NkiValueError, f"unknown ALU operation {op!r}")
    return _ALU[key]


def _act(op) -> int:
    if op is None:
        return _ACT["identity"]
    name = getattr(op, "_act", None) or (op if isinstance(op, str) else getattr(op, "__name__", None))
    key = _ACT_NAMES.get(name, name)
    if key not in _ACT:
        raise _context.fail(_err.NotSupportedError if isinstance(name, str) else _err.NkiValueError,
                            f"activation function {op!r} is not supported yet")
    return _ACT[key]
