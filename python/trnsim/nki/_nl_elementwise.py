"""nki.language, part 2: elementwise arithmetic (nl.add, ...), activation functions
(nl.exp, ...) and nl.where."""

from __future__ import annotations

import numpy as _np

from . import _context, _dtypes, _mask, _names, _tile
from . import errors as _err
from ._context import here as _here
from ._names import ACT as _ACT
from ._names import ALU as _ALU
from ._names import HBM as _HBM
from ._names import SBUF as _SBUF
from ._nl_base import _ap, _dt, _free_broadcast, _promote, _tile_like
from ._tile import NkiTensor


# ---- elementwise ---------------------------------------------------------------------------
def _is_scalar(x):
    return isinstance(x, (int, float, _np.number, bool))


def _binary(a, b_, op, rev=False, dst=None, dtype=None):
    """Elementwise a <op> b (b <op> a when rev) of tiles and/or scalars."""
    bld = _here()
    alu = _ALU[op]
    if not isinstance(a, NkiTensor):
        a, b_, rev = b_, a, not rev
        if not isinstance(a, NkiTensor):
            raise _context.fail(_err.NkiTypeError, "an nki.language operation needs a tile operand")
    if _is_scalar(b_):
        core = a._rec.core
        if isinstance(b_, float) and not _dtypes.is_float(core):
            core = "float32"
        core = _dt(dtype, core)
        out = dst if dst is not None else _tile_like(a, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), _ap(a), alu, float(b_), 0, None, rev, False, _names.VECTOR)
        return out
    if not isinstance(b_, NkiTensor):
        raise _context.fail(_err.NkiTypeError,
                            f"cannot combine a tile with {type(b_).__name__} (numpy arrays must be "
                            "kernel arguments)")
    core = _dt(dtype, _promote(a._rec.core, b_._rec.core))
    apa, apb = _ap(a), _ap(b_)
    pa, pb = apa[3], apb[3]
    fa, fb = a.free_size, b_.free_size
    if pa == pb and fa == fb:
        out = dst if dst is not None else _tile_like(a if a.ndim >= b_.ndim else b_, core, _SBUF, dtype)
        if rev:
            bld.tensor_tensor(_ap(out), apb, apa, alu, _names.VECTOR)
        else:
            bld.tensor_tensor(_ap(out), apa, apb, alu, _names.VECTOR)
        return out
    if pa == pb and fb == 1:  # [P, F] op [P, 1]: per-partition scalar
        out = dst if dst is not None else _tile_like(a, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), apa, alu, apb, 0, None, rev, False, _names.VECTOR)
        return out
    if pa == pb and fa == 1:
        out = dst if dst is not None else _tile_like(b_, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), apb, alu, apa, 0, None, not rev, False, _names.VECTOR)
        return out
    # General broadcasting of the free axes (stride-0 views).
    try:
        shape = _np.broadcast_shapes(a.shape, b_.shape)
    except ValueError:
        raise _context.fail(_err.VerifyError,
                            f"tile shapes {list(a.shape)} and {list(b_.shape)} do not match") from None
    if a._rec.space != _HBM and shape[0] != a.shape[0] or shape[0] != b_.shape[0]:
        raise _context.fail(_err.VerifyError,
                            f"tile shapes {list(a.shape)} and {list(b_.shape)} differ in the "
                            "partition axis; engines cannot broadcast across partitions")
    va = _free_broadcast(a if a.ndim == len(shape) else a.reshape((1,) * (len(shape) - a.ndim) + a.shape), shape)
    vb = _free_broadcast(b_ if b_.ndim == len(shape) else b_.reshape((1,) * (len(shape) - b_.ndim) + b_.shape), shape)
    out = dst if dst is not None else _tile.new_tile(shape, core, _SBUF, dtype)
    x1, x2 = (vb, va) if rev else (va, vb)
    bld.tensor_tensor(_ap(out), _ap(x1), _ap(x2), alu, _names.VECTOR)
    return out


def _mk_binary(op, doc):
    def f(x, y, dtype=None, mask=None, **kw):
        _mask.check_mask(mask)
        return _binary(x, y, op, False, None, dtype)
    f.__doc__ = doc
    f._alu = op
    return f


add = _mk_binary("add", "x + y")
subtract = _mk_binary("subtract", "x - y")
multiply = _mk_binary("multiply", "x * y")
divide = _mk_binary("divide", "x / y")
maximum = _mk_binary("max", "max(x, y)")
minimum = _mk_binary("min", "min(x, y)")
power = _mk_binary("pow", "x ** y")
fmod = _mk_binary("mod", "x mod y")
mod = fmod
equal = _mk_binary("is_equal", "x == y (1 or 0)")
not_equal = _mk_binary("not_equal", "x != y")
greater = _mk_binary("is_gt", "x > y")
greater_equal = _mk_binary("is_ge", "x >= y")
less = _mk_binary("is_lt", "x < y")
less_equal = _mk_binary("is_le", "x <= y")
logical_and = _mk_binary("logical_and", "x and y")
logical_or = _mk_binary("logical_or", "x or y")
logical_xor = _mk_binary("logical_xor", "x xor y")
bitwise_and = _mk_binary("bitwise_and", "x & y")
bitwise_or = _mk_binary("bitwise_or", "x | y")
bitwise_xor = _mk_binary("bitwise_xor", "x ^ y")
left_shift = _mk_binary("left_shift", "x << y")
right_shift = _mk_binary("right_shift", "x >> y")


def _act(x, func, dtype=None, bias=None, scale=1.0):
    b = _here()
    x = _tile.as_tile(x)
    core = _dt(dtype, x._rec.core if _dtypes.is_float(x._rec.core) else "float32")
    out = _tile_like(x, core, _SBUF, dtype)
    b.activation(_ap(out), _ACT[func], _ap(x), _ap(bias) if bias is not None else None,
                 _ap(scale) if isinstance(scale, NkiTensor) else float(scale), 0, None)
    return out


def _mk_act(func, doc):
    def f(x, dtype=None, mask=None, **kw):
        _mask.check_mask(mask)
        return _act(x, func, dtype)
    f.__doc__ = doc
    f._act = func
    return f


exp = _mk_act("exp", "e ** x (Scalar Engine)")
log = _mk_act("log", "natural log")
tanh = _mk_act("tanh", "tanh")
sigmoid = _mk_act("sigmoid", "1 / (1 + e ** -x)")
relu = _mk_act("relu", "max(x, 0)")
gelu = _mk_act("gelu", "GELU (erf)")
gelu_apprx_tanh = _mk_act("gelu_apprx_tanh", "GELU, tanh approximation")
gelu_dx = _mk_act("gelu_dx", "d GELU / dx")
silu = _mk_act("silu", "x * sigmoid(x)")
silu_dx = _mk_act("silu_dx", "d SiLU / dx")
sqrt = _mk_act("sqrt", "square root")
rsqrt = _mk_act("rsqrt", "1 / sqrt(x)")
square = _mk_act("square", "x * x")
sin = _mk_act("sin", "sine")
cos = _mk_act("cos", "cosine")
arctan = _mk_act("arctan", "arctangent")
abs = _mk_act("abs", "|x|")  # noqa: A001
sign = _mk_act("sign", "sign of x")
softplus = _mk_act("softplus", "log(1 + e ** x)")
erf = _mk_act("erf", "error function")
mish = _mk_act("mish", "x * tanh(softplus(x))")


def reciprocal(x, dtype=None, mask=None, **kw):
    b = _here()
    _mask.check_mask(mask)
    core = _dt(dtype, x._rec.core if _dtypes.is_float(x._rec.core) else "float32")
    out = _tile_like(x, core, _SBUF, dtype)
    b.reciprocal(_ap(out), _ap(x), _names.VECTOR)
    return out


def negative(x, dtype=None, mask=None, **kw):
    _mask.check_mask(mask)
    return _binary(x, -1.0, "multiply", False, None, dtype)


def invert(x, dtype=None, mask=None, **kw):
    _mask.check_mask(mask)
    return _binary(x, -1, "bitwise_xor", False, None, dtype)


bitwise_not = invert


def logical_not(x, dtype=None, mask=None, **kw):
    _mask.check_mask(mask)
    return _binary(x, 0.0, "is_equal", False, None, dtype)


def where(condition, x, y, dtype=None, mask=None, **kw):
    """x where condition is nonzero, else y (select on the Vector Engine)."""
    b = _here()
    _mask.check_mask(mask)
    cond = _tile.as_tile(condition, "nl.where condition")
    if isinstance(x, NkiTensor):
        core = _dt(dtype, x._rec.core)
        out = _tile_like(cond, core, _SBUF, dtype)
        b.select_reduce(_ap(out), _ap(cond), _ap(x), _ap(y) if isinstance(y, NkiTensor) else float(y),
                        0, None, False)
        return out
    if isinstance(y, NkiTensor):
        core = _dt(dtype, y._rec.core)
        out = _tile_like(cond, core, _SBUF, dtype)
        b.select_reduce(_ap(out), _ap(cond), _ap(y), float(x), 0, None, True)
        return out
    core = _dt(dtype, "float32")
    xt = _tile_like(cond, core)
    b.memset(_ap(xt), float(x), _names.VECTOR)
    out = _tile_like(cond, core, _SBUF, dtype)
    b.select_reduce(_ap(out), _ap(cond), _ap(xt), float(y), 0, None, False)
    return out
