"""``tile.view(dtype)``: the same bytes read as another dtype of the same width (a bit cast).

The simulator's tensors are typed and have no aliasing view from Python, so the bits are
computed on chip, exactly:
- integer to integer: one bitwise Vector Engine op (bitwise ops copy bit patterns);
- float to integer: the float's sign, exponent and mantissa fields are computed with exact
  float32 arithmetic (an exactly corrected floor(log2), scaling by powers of two) and packed
  into a uint32 with integer shifts and ORs; inf and NaN are set by predicated copies
  (NaN becomes the format's canonical quiet NaN: payloads are not kept);
- integer to float: the fields are cut out with shifts and masks and the value rebuilt as
  sign x mantissa x 2**exponent (exact), inf/NaN by predicated copies;
- float to float of the same width: both.

Only on-chip tiles, and only dtypes of the same width (a view that changes the element
count, like float32 -> bfloat16 x 2, raises NotSupportedError).
"""

from __future__ import annotations

from . import _context, _dtypes, _names, _outputs, _tile
from . import errors as _err
from ._names import ALU as _ALU
from ._names import HBM as _HBM

# core dtype -> (exponent bits, mantissa bits, bias, IEEE inf/NaN (False: e4m3fn, NaN only))
_FLOAT = {"float32": (8, 23, 127, True), "bfloat16": (8, 7, 127, True),
          "float16": (5, 10, 15, True), "float8_e4m3": (4, 3, 7, False),
          "float8_e5m2": (5, 2, 15, True), "float8_e3m4": (3, 4, 3, True)}
_INT = {"int8", "uint8", "int16", "uint16", "int32", "uint32"}


def _t(shape, core):
    return _tile.new_tile(shape, core)


def _ts(b, dst, src, op0, s0, op1=None, s1=None, r0=False):
    if hasattr(s0, "_pattern"):
        s0 = s0._pattern()
    if hasattr(s1, "_pattern"):
        s1 = s1._pattern()
    b.tensor_scalar(dst._pattern(), src._pattern(), _ALU[op0], s0, _ALU[op1] if op1 else 0, s1,
                    r0, False, _names.VECTOR)


def _tt(b, dst, x, y, op):
    b.tensor_tensor(dst._pattern(), x._pattern(), y._pattern(), _ALU[op], _names.VECTOR)


def _floor_log2(b, dst, a):
    """dst = floor(log2(a)), a > 0 finite: ln estimate, corrected by exact power-of-two tests."""
    shape = tuple(a.shape)
    ln = _t(shape, "float32")
    b.activation(ln._pattern(), _names.ACT["log"], a._pattern(), None, 1.0, 0, None)
    _ts(b, ln, ln, "multiply", 1.4426950408889634)
    frac = _t(shape, "float32")
    _ts(b, frac, ln, "mod", 1.0)
    _tt(b, dst, ln, frac, "subtract")
    p = _t(shape, "float32")
    c = _t(shape, "float32")
    for step, cmp in ((1.0, "is_ge"), (0.0, "is_lt")):
        _ts(b, c, dst, "add", step)
        _ts(b, p, c, "pow", 2.0, r0=True)
        _tt(b, c, a, p, cmp)
        _tt(b, dst, dst, c, "add" if step else "subtract")


def _encode(b, v, fmt):
    """uint32 bit patterns of the float32 values v (each exactly representable in fmt)."""
    ebits, mbits, bias, ieee = _FLOAT[fmt]
    shape = tuple(v.shape)
    f = lambda: _t(shape, "float32")  # noqa: E731
    s = f()   # v < 0, or 1 / v < 0 for -0.0 (-> -inf); NaN compares false: sign 0
    _ts(b, s, v, "divide", 1.0, r0=True)
    _ts(b, s, s, "is_lt", 0.0)
    neg = f()
    _ts(b, neg, v, "is_lt", 0.0)
    _tt(b, s, s, neg, "max")
    a = f()
    _ts(b, a, v, "abs_max", 0.0)
    big = float((2.0 - 2.0 ** -mbits) * 2.0 ** ((1 << ebits) - 1 - bias - (1 if ieee else 0)))
    _ts(b, a, a, "min", min(big, 3.4028234663852886e38))  # keep inf out of the arithmetic
    tiny = 2.0 ** (1 - bias)
    normal = f()
    _ts(b, normal, a, "is_ge", tiny)
    e = f()
    ac = f()
    _ts(b, ac, a, "max", tiny)
    _floor_log2(b, e, ac)
    m = f()   # a * 2**(mbits - e) - 2**mbits * normal; the power in two halves (2**149
    k = f()   # would overflow float32): 2**floor(x/2) * 2**(x - floor(x/2)), x = mbits - e
    _ts(b, k, e, "multiply", -0.5, "add", float(mbits) / 2)
    _ts(b, m, k, "mod", 1.0)
    _tt(b, k, k, m, "subtract")           # floor(x / 2)
    _ts(b, m, e, "multiply", -1.0, "add", float(mbits))
    _tt(b, m, m, k, "subtract")           # x - floor(x / 2)
    _ts(b, k, k, "pow", 2.0, r0=True)
    _ts(b, m, m, "pow", 2.0, r0=True)
    _tt(b, m, m, a, "multiply")
    _tt(b, m, m, k, "multiply")
    hid = f()
    _ts(b, hid, normal, "multiply", float(1 << mbits))
    _tt(b, m, m, hid, "subtract")
    _ts(b, e, e, "add", float(bias))
    _tt(b, e, e, normal, "multiply")
    bits = _t(shape, "uint32")
    part = _t(shape, "uint32")
    b.tensor_copy(bits._pattern(), m._pattern(), _names.VECTOR)
    b.tensor_copy(part._pattern(), e._pattern(), _names.VECTOR)
    _ts(b, part, part, "left_shift", float(mbits))
    _tt(b, bits, bits, part, "bitwise_or")
    b.tensor_copy(part._pattern(), s._pattern(), _names.VECTOR)
    _ts(b, part, part, "left_shift", float(ebits + mbits))
    _tt(b, bits, bits, part, "bitwise_or")
    emask = (1 << ebits) - 1
    flag = _t(shape, "uint8")
    if ieee:  # |v| == inf: sign | all-ones exponent
        _ts(b, hid, v, "abs_max", 0.0)
        _ts(b, flag, hid, "is_equal", float("inf"))
        _ts(b, part, part, "bitwise_or", float(emask << mbits))
        b.tensor_copy_predicated(bits._pattern(), part._pattern(), flag._pattern(), False,
                                 _names.VECTOR)
    _tt(b, flag, v, v, "not_equal")  # NaN
    nan = _t(shape, "uint32")
    qnan = (emask << mbits) | ((1 << (mbits - 1)) if ieee else ((1 << mbits) - 1))
    b.memset(nan._pattern(), float(qnan), _names.VECTOR)
    b.tensor_copy_predicated(bits._pattern(), nan._pattern(), flag._pattern(), False, _names.VECTOR)
    return bits


def _decode(b, words, fmt):
    """float32 values of the fmt bit patterns in the low bits of uint32 words."""
    ebits, mbits, bias, ieee = _FLOAT[fmt]
    shape = tuple(words.shape)
    field = _t(shape, "uint32")
    vals = []
    for shift, mask in ((mbits, (1 << ebits) - 1), (0, (1 << mbits) - 1), (ebits + mbits, 1)):
        _ts(b, field, words, "logical_right_shift", float(shift), "bitwise_and", float(mask))
        v = _t(shape, "float32")
        b.tensor_copy(v._pattern(), field._pattern(), _names.VECTOR)
        vals.append(v)
    e, m, s = vals
    emask = float((1 << ebits) - 1)
    val = _t(shape, "float32")
    _ts(b, val, e, "is_gt", 0.0, "multiply", float(1 << mbits))
    _tt(b, val, val, m, "add")
    p = _t(shape, "float32")
    _ts(b, p, e, "max", 1.0, "subtract", float(bias + mbits))
    _ts(b, p, p, "pow", 2.0, r0=True)
    _tt(b, val, val, p, "multiply")
    _ts(b, s, s, "multiply", -2.0, "add", 1.0)
    _tt(b, val, val, s, "multiply")
    flag = _t(shape, "uint8")
    tmp = _t(shape, "uint8")
    if ieee:  # all-ones exponent: inf (mantissa 0) or NaN
        _ts(b, flag, e, "is_equal", emask)
        _ts(b, tmp, m, "is_equal", 0.0)
        _tt(b, tmp, tmp, flag, "multiply")
        _ts(b, p, s, "multiply", float("inf"))
        b.tensor_copy_predicated(val._pattern(), p._pattern(), tmp._pattern(), False, _names.VECTOR)
        _ts(b, tmp, m, "not_equal", 0.0)
        _tt(b, flag, flag, tmp, "multiply")
    else:  # e4m3fn: S.1111.111 is NaN, nothing is inf
        _ts(b, flag, e, "is_equal", emask)
        _ts(b, tmp, m, "is_equal", float((1 << mbits) - 1))
        _tt(b, flag, flag, tmp, "multiply")
    b.memset(p._pattern(), float("nan"), _names.VECTOR)
    b.tensor_copy_predicated(val._pattern(), p._pattern(), flag._pattern(), False, _names.VECTOR)
    return val


def _bits(b, dst, src, width):
    """dst = the low 8*width bits of src's bit pattern (bitwise ops copy bits, no casting)."""
    if width == 4:
        _ts(b, dst, src, "bitwise_or", 0.0)
    else:
        _ts(b, dst, src, "bitwise_and", float((1 << (8 * width)) - 1))


def view(t, dtype):
    """A new on-chip tile holding t's bytes read as ``dtype`` (same element width)."""
    b = _context.here()
    src = t._rec.core
    dst_core = _dtypes.dtname(dtype)
    if t._rec.space == _HBM:
        raise _context.fail(_err.NotSupportedError,
                            "view() of an HBM tensor: load it first (nl.load) and view the tile; "
                            "trnsim's HBM tensors have no aliasing bit-cast views from Python")
    width = _dtypes._DTYPE_SIZE
    if width[src] != width[dst_core]:
        raise _context.fail(_err.NotSupportedError,
                            f"view({dst_core}) of a {src} tile changes the element width "
                            f"({width[src]} -> {width[dst_core]} bytes); only same-width views are "
                            "supported")
    for c in (src, dst_core):
        if c not in _FLOAT and c not in _INT:
            raise _context.fail(_err.NotSupportedError, f"view() with dtype {c} is not supported")
    shape = tuple(t.shape)
    out = _tile.new_tile(shape, dst_core, _names.SBUF, dtype)
    w = width[src]
    if src in _INT and dst_core in _INT:
        _bits(b, out, t, w)
    else:
        if src in _FLOAT:
            v = _t(shape, "float32")
            b.tensor_copy(v._pattern(), t._pattern(), _names.VECTOR)
            bits = _encode(b, v, src)
        else:
            bits = _t(shape, "uint32")
            _bits(b, bits, t, w)
        if dst_core in _INT:
            _bits(b, out, bits, w)
        else:
            b.tensor_copy(out._pattern(), _decode(b, bits, dst_core)._pattern(), _names.VECTOR)
    _outputs.mark_written(out)
    return out
