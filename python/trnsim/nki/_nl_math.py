"""nki.language, part 4: composite math (several instructions each: nl.exp2, nl.rms_norm,
nl.argmax, nl.cumsum, ...), gathers, atomic updates, loops over device values and shared
constants."""

from __future__ import annotations

import numpy as _np
from numpy import uint32

from . import _context, _dtypes, _names, _ops, _tile
from . import errors as _err
from ._context import here as _here
from ._names import ACT as _ACT
from ._names import ALU as _ALU
from ._names import HBM as _HBM
from ._names import SBUF as _SBUF
from ._nl_base import _ap, _broadcast_view, _dt, _mark, _tile_like, copy, load
from ._nl_elementwise import _act, _binary
from ._nl_reduce import _reduce, transpose
from ._tile import NkiTensor


# ---- composite math (several instructions each) ---------------------------------------------
_LN2 = 0.6931471805599453


def _float_core(x, dtype):
    return _dt(dtype, x._rec.core if _dtypes.is_float(x._rec.core) else "float32")


def exp2(x, *, dtype=None, mask=None, **kw):
    """2 ** x: exp(x * ln 2) on the Scalar Engine (one activation)."""
    return _act(x, "exp", dtype, scale=_LN2)


def expm1(x, *, dtype=None, mask=None, **kw):
    """e ** x - 1 (exp, then subtract: no extra precision near 0)."""
    return _binary(_act(x, "exp", "float32"), 1.0, "subtract", False, None, _float_core(x, dtype))


def log2(x, *, dtype=None, mask=None, **kw):
    return _binary(_act(x, "log", "float32"), 1.0 / _LN2, "multiply", False, None,
                   _float_core(x, dtype))


def log1p(x, *, dtype=None, mask=None, **kw):
    """log(1 + x) (add, then log: no extra precision near 0)."""
    return _act(_binary(x, 1.0, "add", False, None, "float32"), "log", _float_core(x, dtype))


def tan(x, *, dtype=None, mask=None, **kw):
    return _binary(_act(x, "sin", "float32"), _act(x, "cos", "float32"), "divide", False, None,
                   _float_core(x, dtype))


def _exp_pair(x):
    return _act(x, "exp", "float32"), _act(x, "exp", "float32", scale=-1.0)


def sinh(x, *, dtype=None, mask=None, **kw):
    a, b = _exp_pair(x)
    return _binary(_binary(a, b, "subtract"), 0.5, "multiply", False, None, _float_core(x, dtype))


def cosh(x, *, dtype=None, mask=None, **kw):
    a, b = _exp_pair(x)
    return _binary(_binary(a, b, "add"), 0.5, "multiply", False, None, _float_core(x, dtype))


def erf_dx(x, *, dtype=None, mask=None, **kw):
    """d erf / dx = 2 / sqrt(pi) * exp(-x * x)."""
    e = _act(_act(x, "square", "float32"), "exp", "float32", scale=-1.0)
    return _binary(e, 1.1283791670955126, "multiply", False, None, _float_core(x, dtype))


def softplus_dx(x, *, dtype=None, mask=None, **kw):
    """d softplus / dx = sigmoid(x)."""
    return _act(x, "sigmoid", dtype)


def gelu_apprx_sigmoid(x, *, dtype=None, mask=None, **kw):
    """x * sigmoid(1.702 x)."""
    return _binary(x, _act(x, "sigmoid", "float32", scale=1.702), "multiply", False, None,
                   _float_core(x, dtype))


def arcsin(x, *, dtype=None, mask=None, **kw):
    """arctan(x / sqrt(1 - x * x)) (|x| < 1)."""
    one_m = _binary(_act(x, "square", "float32"), 1.0, "subtract", True, None, "float32")
    r = _binary(x, _act(one_m, "rsqrt", "float32"), "multiply", False, None, "float32")
    return _act(r, "arctan", _float_core(x, dtype))


def arccos(x, *, dtype=None, mask=None, **kw):
    """pi / 2 - arcsin(x)."""
    return _binary(arcsin(x, dtype="float32"), 1.5707963267948966, "subtract", True, None,
                   _float_core(x, dtype))


def gelu_apprx_sigmoid_dx(x, *, dtype=None, mask=None, **kw):
    """d/dx [x * sigmoid(1.702 x)] = s + 1.702 x s (1 - s), s = sigmoid(1.702 x)."""
    s = _act(x, "sigmoid", "float32", scale=1.702)
    one_m = _binary(s, 1.0, "subtract", True, None, "float32")
    t = _binary(_binary(x, s, "multiply", False, None, "float32"), one_m, "multiply", False,
                None, "float32")
    t = _binary(t, 1.702, "multiply", False, None, "float32")
    return _binary(s, t, "add", False, None, _float_core(x, dtype))


def mish_dx(x, *, dtype=None, mask=None, **kw):
    """d/dx [x tanh(softplus(x))] = t + x (1 - t * t) sigmoid(x), t = tanh(softplus(x))."""
    t = _act(_act(x, "softplus", "float32"), "tanh", "float32")
    one_m = _binary(_act(t, "square", "float32"), 1.0, "subtract", True, None, "float32")
    u = _binary(_binary(x, one_m, "multiply", False, None, "float32"),
                _act(x, "sigmoid", "float32"), "multiply", False, None, "float32")
    return _binary(t, u, "add", False, None, _float_core(x, dtype))


def clip(x, a_min, a_max, *, dtype=None, mask=None, **kw):
    """min(max(x, a_min), a_max) (one tensor_scalar with two ops)."""
    b = _here()
    x = _tile.as_tile(x)
    out = _tile_like(x, _dt(dtype, x._rec.core), _SBUF, dtype)
    b.tensor_scalar(_ap(out), _ap(x), _ALU["max"], float(a_min), _ALU["min"], float(a_max),
                    False, False, _names.VECTOR)
    return out


def isnan(x, *, dtype=None, mask=None, **kw):
    return _binary(x, x, "not_equal", False, None, _dt(dtype, "uint8"))


def isinf(x, *, dtype=None, mask=None, **kw):
    return _binary(_act(x, "abs", "float32"), float("inf"), "is_equal", False, None,
                   _dt(dtype, "uint8"))


def isfinite(x, *, dtype=None, mask=None, **kw):
    return _binary(_act(x, "abs", "float32"), float("inf"), "is_lt", False, None,
                   _dt(dtype, "uint8"))


def _floor32(x):
    """floor(x) in fp32: x - mod(x, 1) (numpy's mod: the sign of the divisor)."""
    return _binary(x, _binary(x, 1.0, "mod", False, None, "float32"), "subtract", False, None,
                   "float32")


def floor(x, *, dtype=None, mask=None, **kw):
    return copy(_floor32(x), dtype=_float_core(x, dtype))


def ceil(x, *, dtype=None, mask=None, **kw):
    neg = _floor32(_binary(x, -1.0, "multiply", False, None, "float32"))
    return _binary(neg, -1.0, "multiply", False, None, _float_core(x, dtype))


def trunc(x, *, dtype=None, mask=None, **kw):
    """sign(x) * floor(|x|)."""
    f = _floor32(_act(x, "abs", "float32"))
    return _binary(f, _act(x, "sign", "float32"), "multiply", False, None, _float_core(x, dtype))


def rms_norm(x, w, axis, n, epsilon=1e-06, *, dtype=None, compute_dtype=None, mask=None, **kw):
    """x / sqrt(sum(x * x, axis) / n + epsilon) * w (w of one partition is repeated on all)."""
    b = _here()
    x = _tile.as_tile(x)
    w = _tile.as_tile(w, "nl.rms_norm w")
    core = _float_core(x, dtype if dtype is not None else compute_dtype)
    ss = _reduce(_act(x, "square", "float32"), "add", axis, "float32", True)
    eps = _tile.new_tile((x.shape[0], 1), "float32")
    b.memset(_ap(eps), float(epsilon), _names.VECTOR)
    r = _tile.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(r), _ACT["rsqrt"], _ap(ss), _ap(eps), 1.0 / float(n), 0, None)
    y = _binary(x, r, "multiply", False, None, "float32")
    if w.shape[0] == 1 and x.shape[0] != 1:
        w = _broadcast_view(w, tuple(x.shape))
    return _binary(y, w, "multiply", False, None, core)


def logsumexp(x, axis=-1, *, dtype=None, keepdims=False, mask=None, **kw):
    """log(sum(exp(x), axis)) computed as max + log(sum(exp(x - max)))."""
    b = _here()
    x = _tile.as_tile(x)
    m = _reduce(x, "max", axis, "float32", True)
    negm = _binary(m, -1.0, "multiply", False, None, "float32")
    e = _tile_like(x, "float32")
    s = _tile.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(e), _ACT["exp"], _ap(x), _ap(negm), 1.0, _ALU["add"], _ap(s))
    return _binary(_act(s, "log", "float32"), m, "add", False, None, _float_core(x, dtype))


def _argbest(x, negate):
    b = _here()
    x = _tile.as_tile(x)
    if negate:
        x = _binary(x, -1.0, "multiply", False, None, "float32")
    P = _ap(x)[3]
    top = _tile.new_tile((P, 8), x._rec.core)
    b.max8(_ap(top), _ap(x))
    idx = _tile.new_tile((P, 8), "uint32", _SBUF, uint32)
    b.nc_find_index8(_ap(idx), _ap(x), _ap(top))
    return idx[:, 0:1]


def argmax(x, axis=-1, *, dtype=None, keepdims=True, mask=None, **kw):
    """Index (uint32, [P, 1]) of the first largest element of each partition's free axis
    (max8, then nc_find_index8)."""
    return _argbest(x, False)


def argmin(x, axis=-1, *, dtype=None, keepdims=True, mask=None, **kw):
    """Index (uint32, [P, 1]) of the first smallest element of each partition's free axis."""
    return _argbest(x, True)


def cumsum(x, axis=-1, *, dtype=None, mask=None, **kw):
    """Running sum along the free axis (one tensor_tensor_scan: r = 1 * r + x)."""
    b = _here()
    x = _tile.as_tile(x)
    ones_t = _tile_like(x, "float32")
    b.memset(_ap(ones_t), 1.0, _names.VECTOR)
    out = _tile_like(x, _float_core(x, dtype), _SBUF, dtype)
    b.tensor_tensor_scan(_ap(out), _ap(ones_t), _ap(x), 0.0, _ALU["multiply"], _ALU["add"])
    return out


def transpose2d(x, *, dtype=None, mask=None, **kw):
    """[P, F] -> [F, P] (the Tensor Engine transpose, copied back to SBUF)."""
    t = transpose(x)
    return copy(t, dtype=dtype if dtype is not None else x.dtype)


def fori_loop(lower, upper, body_fun, init_val):
    """val = body_fun(i, val) for i in range(lower, upper) (unrolled by running it)."""
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val


def atomic_rmw(dst, value, op, *, mask=None, **kw):
    """dst = op(dst, value) on HBM rows, atomically: ``dst`` is ``t[idx_tile, ...]`` (rows an
    index tile names; a row named twice accumulates twice) or a plain HBM view. Each indexed
    row is read by an indirect DMA, combined on the Vector Engine and written back by an
    indirect DMA, one row after another in program order (4 instructions per row)."""
    b = _here()
    alu = _ops._alu(op)
    if isinstance(dst, _tile.Indirect):
        base, idx = dst.base, dst.index
        rshape = tuple(dst.shape[1:])
        rows = dst.shape[0]
        core = base._rec.core
        for r in range(rows):
            ir = idx[r:r + 1]
            row = _tile.new_tile((1,) + rshape, core)
            b.dma_copy(_ap(row), base._pattern(), -1, ir._pattern(), 1, False)
            if isinstance(value, NkiTensor):
                v = _tile.new_tile((1,) + rshape, value._rec.core)
                b.dma_copy(v._pattern(), value[r:r + 1]._pattern(), -1, None, 0, False)
                b.tensor_tensor(row._pattern(), row._pattern(), v._pattern(), alu, _names.VECTOR)
            else:
                b.tensor_scalar(row._pattern(), row._pattern(), alu, float(value), 0, None,
                                False, False, _names.VECTOR)
            b.dma_copy(base._pattern(), row._pattern(), -1, ir._pattern(), 2, False)
        _mark(base)
        return
    dst = _tile.as_tile(dst, "nl.atomic_rmw destination")
    if dst._rec.space != _HBM:
        raise _context.fail(_err.VerifyError, "nl.atomic_rmw updates HBM; the destination is on chip")
    cur = load(dst)
    if isinstance(value, NkiTensor):
        b.tensor_tensor(_ap(cur), _ap(cur), _ap(value), alu, _names.VECTOR)
    else:
        b.tensor_scalar(_ap(cur), _ap(cur), alu, float(value), 0, None, False, False, _names.VECTOR)
    b.dma_copy(_ap(dst), _ap(cur), -1, None, 0, False)
    _mark(dst)


def gather_flattened(data, indices, *, mask=None, dtype=None, **kw):
    """out[p, j] = data[p, indices[p, j]] over each partition's flattened free axes (NKI:
    up to 128 gathers in parallel). Done as one GpSimd local_gather, whose index runs over a
    16-partition group, after adding (p % 16) * free_size to the indices (iota + 2 ALU ops).
    An index past the free size reads a neighbouring partition of the group, or fails past the
    group (NKI: garbage values)."""
    data = _tile.as_tile(data, "gather_flattened data")
    indices = _tile.as_tile(indices, "gather_flattened indices")
    core = _dt(dtype, data._rec.core)
    out = _gather_within_partitions(None, data, indices, "gather_flattened")
    if core != data._rec.core:
        return copy(out, dtype=dtype)
    return out


def _gather_within_partitions(out, data, indices, what):
    """out[p, j] = data[p, flat index indices[p, j]] (a new tile when out is None); shared by
    nl.gather_flattened and nisa.nc_n_gather."""
    b = _here()
    if data._rec.space == _HBM or indices._rec.space == _HBM:
        raise _context.fail(_err.VerifyError, f"{what} reads on-chip tiles; nl.load first")
    P = _ap(data)[3]
    F = data.free_size
    pid = _tile.new_tile((P, 1), "int32")
    b.iota(_ap(pid), [0], 0.0, 1.0)
    base = _tile.new_tile((P, 1), "int32")
    b.tensor_scalar(_ap(base), _ap(pid), _ALU["mod"], 16.0, _ALU["multiply"], float(F),
                    False, False, _names.VECTOR)
    adj = _tile_like(indices, "int32")
    b.tensor_scalar(_ap(adj), _ap(indices), _ALU["add"], _ap(base), 0, None, False, False,
                    _names.VECTOR)
    if out is None:
        out = _tile_like(indices, data._rec.core, _SBUF, data.dtype)
    b.local_gather(_ap(out), _ap(data), _ap(adj), 1, indices.free_size)
    return out


def while_loop(cond_fun, body_fun, init_val):
    """val = body_fun(val) while cond_fun(val) (unrolled by running it). The condition must be
    a Python value at trace time; a tile's values exist only when the kernel runs."""
    val = init_val
    while True:
        c = cond_fun(val)
        if isinstance(c, NkiTensor):
            _here()
            raise _context.fail(_err.NotSupportedError,
                                "nl.while_loop: the condition is a tile, known only at run time; "
                                "trnsim unrolls loops at trace time and needs a Python condition")
        if not c:
            return val
        val = body_fun(val)


def shared_constant(constant, dtype=None, **kw):
    """An HBM tensor holding ``constant`` (a numpy array), written before the kernel runs."""
    _here()
    arr = _np.asarray(constant)
    if dtype is not None:
        core = _dtypes.dtname(dtype)
        arr = arr.astype(_dtypes.numpy_dtype(core, dtype)) if core not in ("bfloat16",) else arr
    elif arr.dtype == _np.float64:
        arr = arr.astype(_np.float32)
    elif arr.dtype == _np.int64:
        arr = arr.astype(_np.int32)
    elif arr.dtype == _np.bool_:
        arr = arr.astype(_np.uint8)
    core = _dtypes.dtname(dtype if dtype is not None else arr.dtype)
    if core in ("bfloat16", "float8_e4m3", "float8_e5m2", "float8_e3m4"):
        arr = arr.astype(_np.float32)
    return _tile.new_constant(arr, core, dtype if dtype is not None else arr.dtype)
