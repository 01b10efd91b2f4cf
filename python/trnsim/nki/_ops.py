"""The user's spellings of ALU operations and activation functions (numpy ufuncs, nki.language
functions, names) -> the core's numbers (_names.py); nki.isa, nki.language and nl.all_reduce
all use these."""

from __future__ import annotations

from . import _context
from . import errors as _err
from ._names import ACT as _ACT
from ._names import ALU as _ALU


_ALU_NAMES = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
    "true_divide": "divide", "maximum": "max", "minimum": "min", "max": "max", "min": "min",
    "power": "pow", "pow": "pow", "mod": "mod", "fmod": "mod", "remainder": "mod",
    "equal": "is_equal", "not_equal": "not_equal", "greater": "is_gt", "greater_equal": "is_ge",
    "less": "is_lt", "less_equal": "is_le", "bitwise_and": "bitwise_and",
    "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor", "logical_and": "logical_and",
    "logical_or": "logical_or", "logical_xor": "logical_xor", "left_shift": "left_shift",
    "right_shift": "right_shift", "sum": "add", "prod": "multiply", "abs_max": "abs_max",
    "abs_min": "abs_min", "bypass": "bypass", "is_equal": "is_equal", "is_gt": "is_gt",
    "is_ge": "is_ge", "is_lt": "is_lt", "is_le": "is_le", "all": "logical_and",
    "any": "logical_or", "logical_shift_right": "logical_right_shift",
}
_ACT_NAMES = {"absolute": "abs", "copy": "copy", "identity": "identity", "reciprocal": "reciprocal"}


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
