"""nki.language, part 3: reductions (nl.sum, nl.max, ...), transpose, matmul, softmax,
dropout and random numbers."""

from __future__ import annotations

import numpy as _np
from numpy import float32

from . import _context, _dtypes, _mask, _names, _tile
from . import errors as _err
from ._context import here as _here
from ._names import ACT as _ACT
from ._names import ALU as _ALU
from ._names import HBM as _HBM
from ._names import PSUM as _PSUM
from ._names import SBUF as _SBUF
from ._nl_base import _ap, _dt, _tile_like, copy, load
from ._nl_elementwise import _binary, multiply, reciprocal, subtract
from ._tile import NkiTensor


# ---- reductions ----------------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(1, ndim))
    if isinstance(axis, (int, _np.integer)):
        axis = (int(axis),)
    return tuple(sorted(a + ndim if a < 0 else a for a in axis))


def _reduce(x, op, axis, dtype=None, keepdims=False, negate=False, out=None):
    """Reduces x along `axis` into a new tile, or into `out` (nisa.tensor_reduce(dst=...):
    one instruction writing dst directly)."""
    b = _here()
    x = _tile.as_tile(x)
    if x._rec.space == _HBM:
        raise _context.fail(_err.VerifyError, "reductions read on-chip tiles; nl.load the data first")
    axes = _axes(axis, x.ndim)
    core = _dt(dtype, x._rec.core)
    if axes == (0,) and x._pd == 0:
        if out is None:
            out = _tile.new_tile((1,) + tuple(x.shape[1:]), core, _SBUF, dtype)
        b.tensor_partition_reduce(_ap(out), _ALU[op], _ap(x))
        return out
    if 0 in axes or x._pd != 0:
        raise _context.fail(_err.NotSupportedError,
                            "reducing the partition axis together with free axes (reduce the free "
                            "axes first, then axis 0)")
    # Data pattern: partition, then the free axes grouped into kept/reduced runs.
    rec = x._rec
    ap = list(_ap(x)[:5])
    groups = []  # [stride, count, reduced]
    for d in range(1, x.ndim):
        c, s, red = x.shape[d], x._st[d], d in axes
        if c == 1:
            continue
        if groups and groups[-1][2] == red and groups[-1][0] == s * c:
            groups[-1][0], groups[-1][1] = s, groups[-1][1] * c
        else:
            groups.append([s, c, red])
    if len(groups) > 4:
        raise _context.fail(_err.NotSupportedError, "a reduction over more than 4 free dimensions")
    red_axes = []  # the reduced free dims of the pattern, as nki axes (free dim i = axis i + 1)
    for i, (s, c, red) in enumerate(groups):
        ap += [s, c]
        if red:
            red_axes.append(i + 1)
    kept = tuple(1 if d in axes else x.shape[d] for d in range(1, x.ndim))
    oshape = (x.shape[0],) + (kept if keepdims else tuple(k for d, k in zip(range(1, x.ndim), kept) if d not in axes))
    if out is None:
        out = _tile.new_tile(oshape, core, _SBUF, dtype)
    if not red_axes:
        b.tensor_copy(_ap(out), _ap(x), _names.VECTOR)
        if negate:
            b.tensor_scalar(_ap(out), _ap(out), _ALU["multiply"], -1.0, 0, None, False, False,
                            _names.VECTOR)
        return out
    b.tensor_reduce(_ap(out), _ALU[op], tuple(ap), red_axes, negate, _names.VECTOR)
    del rec
    return out


def sum(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _mask.check_mask(mask)
    return _reduce(x, "add", axis, dtype, keepdims)


def max(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _mask.check_mask(mask)
    return _reduce(x, "max", axis, dtype, keepdims)


def min(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _mask.check_mask(mask)
    return _reduce(x, "min", axis, dtype, keepdims)


def prod(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    _mask.check_mask(mask)
    return _reduce(x, "multiply", axis, dtype, keepdims)


def all(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _mask.check_mask(mask)
    return _reduce(x, "logical_and", axis, dtype, keepdims)


def any(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _mask.check_mask(mask)
    return _reduce(x, "logical_or", axis, dtype, keepdims)


def mean(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    _mask.check_mask(mask)
    axes = _axes(axis, x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    s = _reduce(x, "add", axis, dtype if dtype is not None else float32, keepdims)
    _here().tensor_scalar(_ap(s), _ap(s), _ALU["multiply"], 1.0 / n, 0, None, False, False,
                          _names.VECTOR)
    return s


def var(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    """Population variance along the free axis: mean(x*x) - mean(x)**2."""
    _mask.check_mask(mask)
    m = mean(x, axis, float32, True)
    m2 = mean(multiply(x, x, dtype=float32), axis, float32, True)
    return subtract(m2, multiply(m, m), dtype=dtype)


# ---- matmul, transpose, softmax --------------------------------------------------------------
def transpose(x, dtype=None, mask=None, **kw):
    """[P, F] -> [F, P] on the Tensor Engine (result in PSUM). Under a mask the result is the
    whole [F, P] tile, of which the transpose of x's kept part is written."""
    b = _here()
    _mask.check_mask(mask)
    x = _tile.as_tile(x)
    core = _dt(dtype, x._rec.core)
    out = _tile.new_tile((x.free_size, x.partitions), core, _PSUM, dtype)
    if _mask._MASK is not None and x.ndim == 2:
        (plo, phi), (flo, fhi) = _mask.mask_range(x, 0), _mask.mask_range(x, 1)
        b.nc_transpose(_mask.mask_dst(out, ((flo, fhi), (plo, phi))),
                       x[plo:phi, flo:fhi]._pattern(), _names.TENSOR)
        return out
    b.nc_transpose(_ap(out), _ap(x), _names.TENSOR)
    return out


def load_transpose2d(src, dtype=None, mask=None, **kw):
    """HBM [F, P] -> SBUF [P, F]: a load, then a Tensor Engine transpose."""
    _mask.check_mask(mask)
    t = load(src, dtype)
    return copy(transpose(t), dtype=dtype if dtype is not None else t.dtype)



def matmul(x, y, transpose_x=False, mask=None, **kw):
    """x @ y (x.T @ y with transpose_x=True) on the Tensor Engine; fp32 result in PSUM.

    Under a mask the result is the whole [M, N] tile; the mask cuts x and y (each axis whose
    size is the mask grid's) and the product of the kept parts is written to its rows/columns.
    """
    b = _here()
    _mask.check_mask(mask)
    x = _tile.as_tile(x, "nl.matmul x")
    y = _tile.as_tile(y, "nl.matmul y")
    if _mask._MASK is not None and x.ndim == 2 and y.ndim == 2:
        xr = (_mask.mask_range(x, 0), _mask.mask_range(x, 1))
        yr = (_mask.mask_range(y, 0), _mask.mask_range(y, 1))
        kx = xr[0] if transpose_x else xr[1]
        if kx != yr[0]:
            raise _context.fail(_err.NkiValueError,
                                f"nl.matmul mask= keeps contraction rows {list(kx)} of x but "
                                f"{list(yr[0])} of y; mask both the same way")
        rows, cols = (xr[1] if transpose_x else xr[0]), yr[1]
        out = _tile.new_tile((x.shape[1] if transpose_x else x.shape[0], y.shape[1]), "float32",
                             _PSUM, float32)
        x = x[xr[0][0]:xr[0][1], xr[1][0]:xr[1][1]]
        y = y[yr[0][0]:yr[0][1], yr[1][0]:yr[1][1]]
        prev, _mask._MASK = _mask._MASK, None  # the cut views are the whole operands now
        try:
            b.nc_matmul(_mask.mask_dst(out, (rows, cols)), _ap(_stationary(x, transpose_x)),
                        _ap(y), False, False, False)
        finally:
            _mask._MASK = prev
        return out
    st = _stationary(x, transpose_x)
    ap_s = _ap(st)
    out = _tile.new_tile((st.free_size, y.free_size), "float32", _PSUM, float32)
    b.nc_matmul(_ap(out), ap_s, _ap(y), False, False, False)
    return out


def _stationary(x, transposed):
    """x as the Tensor Engine's stationary operand [K, M]: x itself, or x.T copied to SBUF."""
    if transposed:
        return x
    xt = transpose(x)
    st = _tile.new_tile(xt.shape, x._rec.core, _SBUF, x.dtype)
    _here().tensor_copy(_ap(st), _ap(xt), _names.VECTOR)
    return st


def softmax(x, axis=-1, dtype=None, mask=None, **kw):
    """exp(x - max) / sum(exp(x - max)) along the free axis (fused max/exp/sum/scale)."""
    b = _here()
    _mask.check_mask(mask)
    x = _tile.as_tile(x)
    axes = _axes(axis, x.ndim)
    if 0 in axes:
        raise _context.fail(_err.NotSupportedError, "softmax over the partition axis")
    m = _reduce(x, "max", None, float32, True)
    negm = _binary(m, -1.0, "multiply", False, None, None)
    core = _dt(dtype, x._rec.core)
    e = _tile_like(x, core, _SBUF, dtype)
    s = _tile.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(e), _ACT["exp"], _ap(x), _ap(negm), 1.0, _ALU["add"], _ap(s))
    r = _tile.new_tile((x.shape[0], 1), "float32")
    b.reciprocal(_ap(r), _ap(s), _names.VECTOR)
    b.tensor_scalar(_ap(e), _ap(e), _ALU["multiply"], _ap(r), 0, None, False, False, _names.VECTOR)
    return e


def dropout(x, rate, dtype=None, mask=None, **kw):
    b = _here()
    _mask.check_mask(mask)
    core = _dt(dtype, x._rec.core)
    out = _tile_like(x, core, _SBUF, dtype)
    b.dropout(_ap(out), _ap(x), _ap(rate) if isinstance(rate, NkiTensor) else float(rate),
              _names.VECTOR)
    return out


def rand(shape, dtype=float32, **kw):
    b = _here()
    out = _tile.new_tile(shape, _dtypes.dtname(dtype), _SBUF, dtype)
    b.rand2(_ap(out), 0.0, 1.0, _names.VECTOR)
    return out


def random_seed(seed, **kw):
    b = _here()
    s = _tile.new_tile((_context.ctx().info["partitions"], 1), "uint32")
    if isinstance(seed, NkiTensor):
        s = seed
    else:
        b.iota(_ap(s), [0], float(int(seed)), 1.0)
    b.set_rng_seed(_ap(s), _names.VECTOR)


sum._alu, max._alu, min._alu, prod._alu = "add", "max", "min", "multiply"  # noqa: A001
all._alu, any._alu = "logical_and", "logical_or"
copy._act = "copy"
reciprocal._act = "reciprocal"
