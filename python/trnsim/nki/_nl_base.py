"""nki.language, part 1: tile creation (nl.ndarray, nl.zeros, ...), broadcasting and casts,
and data movement (nl.load, nl.store, nl.copy), with the helpers the other parts share."""

from __future__ import annotations

import numpy as _np
from numpy import float32

from . import _context, _dtypes, _mask, _names, _outputs, _tile
from . import errors as _err
from ._buffers import _Buffer, sbuf
from ._context import here as _here
from ._dtypes import NamedDType
from ._names import ALU as _ALU
from ._names import HBM as _HBM
from ._names import SBUF as _SBUF
from ._tile import NkiTensor


class par_dim(int):
    """Marks the partition axis in a tile shape: ``(nl.par_dim(128), 512)``."""

    def __new__(cls, n):
        return super().__new__(cls, int(n))


# ---- helpers -------------------------------------------------------------------------------
def _dt(dtype, default):
    return _dtypes.dtname(dtype) if dtype is not None else default


def _promote(a: str, b: str) -> str:
    if a == b:
        return a
    if "float32" in (a, b) or "tfloat32" in (a, b):
        return "float32"
    fa, fb = _dtypes.is_float(a), _dtypes.is_float(b)
    if fa and not fb:
        return a
    if fb and not fa:
        return b
    return "float32"


def _tile_like(x: NkiTensor, core: str, space=_SBUF, user=None):
    shape = x.shape
    pd = x._pd if x._pd < len(shape) else -1
    if pd > 0:  # partition axis first in the result
        shape = (shape[pd],) + shape[:pd] + shape[pd + 1:]
    elif pd < 0 and x._rec.space != _HBM:
        shape = (1,) + tuple(shape)
    return _tile.new_tile(shape, core, space, user)


def _tile_of_shape(shape, core, space=_SBUF, user=None):
    return _tile.new_tile(shape, core, space, user)


def _ap(x):
    if _mask._MASK is not None:
        x = _mask.mask_view(x)
    return x._pattern()


def _mark(dst):
    if dst is not None:
        _outputs.mark_written(dst)


# ---- creation ------------------------------------------------------------------------------
def ndarray(shape, dtype, buffer=None, name="", **kwargs):
    """A new tensor: on-chip (sbuf default, psum) or in HBM (hbm/shared_hbm/private_hbm)."""
    _here()
    buffer = buffer if buffer is not None else sbuf
    if isinstance(shape, int):
        shape = (shape,)
    core = _dtypes.dtname(dtype)
    if not isinstance(buffer, _Buffer):
        if hasattr(buffer, "auto_alloc"):  # ncc.sbuf / ncc.psum
            buffer = buffer.auto_alloc()
        else:
            raise _context.fail(_err.NkiValueError, f"unknown buffer {buffer!r}")
    if buffer.space == _HBM:
        return _tile.new_hbm(shape, core, dtype, name or None, buffer.kind)
    shape = tuple(shape)
    pd = 0
    for i, s in enumerate(shape):
        if isinstance(s, par_dim):
            pd = i
            break
    check = getattr(buffer, "check", None)
    if check is not None:  # ncc.sbuf.alloc / mod_alloc and the PSUM ones
        check(shape, pd, core)
    if pd > 0:  # leading block axes: stored [P, blocks..., free...], seen as given
        phys = (shape[pd],) + shape[:pd] + shape[pd + 1:]
        t = _tile.new_tile(phys, core, buffer.space, dtype, name or None)
        ps = _context._row_strides(phys)
        st = tuple(ps[1:1 + pd]) + (t._rec.F,) + tuple(ps[1 + pd:])
        return NkiTensor(t._rec, tuple(int(s) for s in shape), dtype, 0, st, pd)
    return _tile.new_tile(shape, core, buffer.space, dtype, name or None)


def empty_like(x, dtype=None, buffer=None, name="", **kw):
    return ndarray(x.shape, dtype if dtype is not None else x.dtype,
                   buffer if buffer is not None else x.buffer, name)


def full(shape, fill_value, dtype, buffer=None, name="", **kw):
    t = ndarray(shape, dtype, buffer, name)
    if t._rec.space == _HBM:
        raise _context.fail(_err.NotSupportedError, "nl.full/zeros/ones in HBM")
    _here().memset(_ap(t), float(fill_value), _names.VECTOR)
    return t


def zeros(shape, dtype, buffer=None, name="", **kw):
    return full(shape, 0.0, dtype, buffer, name)


def ones(shape, dtype, buffer=None, name="", **kw):
    return full(shape, 1.0, dtype, buffer, name)


def zeros_like(x, dtype=None, buffer=None, name="", **kw):
    return zeros(x.shape, dtype if dtype is not None else x.dtype,
                 buffer if buffer is not None else (x.buffer if x._rec.space != _HBM else sbuf), name)


def ones_like(x, dtype=None, buffer=None, name="", **kw):
    return ones(x.shape, dtype if dtype is not None else x.dtype,
                buffer if buffer is not None else (x.buffer if x._rec.space != _HBM else sbuf), name)


def full_like(x, fill_value, dtype=None, buffer=None, name="", **kw):
    return full(x.shape, fill_value, dtype if dtype is not None else x.dtype,
                buffer if buffer is not None else sbuf, name)


def shared_identity_matrix(n, dtype=float32, **kw):
    """An n x n identity tile (iota-free: affine_select of ones on p - i == 0)."""
    b = _here()
    core = _dtypes.dtname(dtype)
    ones_t = _tile.new_tile((n, n), core)
    b.memset(_ap(ones_t), 1.0, _names.VECTOR)
    t = _tile.new_tile((n, n), core, user_dtype=dtype)
    b.affine_select(_ap(t), [-1], 1.0, _ap(ones_t), 0.0, _ALU["is_equal"], 0.0)
    return t


def ds(start, size):
    """A dynamic-looking slice; at trace time it is an ordinary slice."""
    return slice(start, start + size)


def _free_broadcast(x, shape):
    """A stride-0 view of x with `shape` (same rank; size-1 axes repeat)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(x.shape):
        raise _context.fail(_err.NkiValueError, "broadcast_to needs the same rank")
    st = tuple(0 if (a == 1 and b != 1) else s for a, b, s in zip(x.shape, shape, x._st))
    for a, b in zip(x.shape, shape):
        if a != b and a != 1:
            raise _context.fail(_err.NkiValueError, f"cannot broadcast {list(x.shape)} to {list(shape)}")
    return NkiTensor(x._rec, shape, x.dtype, x._off, st, x._pd)


def _broadcast_view(x, shape):
    """x broadcast to `shape` by numpy's rules. HBM tensors and free axes: a stride-0 view.
    An on-chip tile repeated along its partition axis is copied: its row goes to an HBM
    scratch tensor and comes back with partition stride 0 (two DMAs), since engines cannot
    read one partition into many."""
    _here()
    x = _tile.as_tile(x, "broadcast_to source")
    shape = tuple(int(s) for s in shape)
    if shape == tuple(x.shape):
        return x
    if len(shape) < len(x.shape):
        raise _context.fail(_err.NkiValueError,
                            f"cannot broadcast {list(x.shape)} to the lower-rank {list(shape)}")
    if len(shape) > len(x.shape):
        if x._rec.space == _HBM:
            x = x.reshape((1,) * (len(shape) - len(x.shape)) + tuple(x.shape))
        else:  # keep the partition axis first: new axes go after it
            x = x[(slice(None),) + (None,) * (len(shape) - len(x.shape))]
    try:
        _np.broadcast_shapes(tuple(x.shape), shape)
    except ValueError:
        raise _context.fail(_err.NkiValueError,
                            f"cannot broadcast {list(x.shape)} to {list(shape)}") from None
    if x._rec.space != _HBM and x.shape[0] == 1 and shape[0] != 1:
        x = _partition_broadcast(x, shape[0])
    return _free_broadcast(x, shape)


def _partition_broadcast(x, n):
    """A new SBUF tile [n, ...] holding x's single partition in every partition."""
    b = _here()
    c = _context.ctx()
    core = x._rec.core
    free = tuple(x.shape[1:])
    nm = f"bcast#{c.shared.nconst}"  # unique in the launch: programs share HBM names
    c.shared.nconst += 1
    c.names.add(nm)
    tid = b.declare(_HBM, nm, core, [1] + [int(v) for v in free] if free else [1, 1], "internal")
    fshape = (1,) + (free if free else (1,))
    rec = _context._Rec(c, tid, _HBM, core, fshape, None, nm)
    row = NkiTensor(rec, (1,) + free, x.dtype)
    b.dma_copy(row._pattern(), x._pattern(), -1, None, 0, False)
    out = _tile.new_tile((n,) + free, core, _SBUF, x.dtype)
    st = (0,) + _context._row_strides(free) if free else (0,)
    src = NkiTensor(rec, (n,) + free, x.dtype, 0, st, 0)
    b.dma_copy(out._pattern(), src._pattern(), -1, None, 0, False)
    return out


def broadcast_to(src, shape=None, **kw):
    """``src`` broadcast to ``shape`` by numpy's rules (``shape`` is keyword-only in NKI;
    positional also works). A size-1 partition axis is repeated into a new SBUF tile; free
    axes become stride-0 views; ``src`` itself when the shape already matches."""
    if shape is None:
        raise _context.fail(_err.NkiTypeError, "nl.broadcast_to(src, shape=...) needs a shape")
    return _broadcast_view(src, shape)


def expand_dims(data, axis):
    """A view of ``data`` with a size-1 axis inserted at ``axis`` (an int or a list)."""
    axes = [axis] if isinstance(axis, (int, _np.integer)) else list(axis)
    x = data
    for a in sorted(int(a) + (x.ndim + 1 if int(a) < 0 else 0) for a in axes):
        if a <= 0 and x._rec.space != _HBM:
            raise _context.fail(_err.NkiValueError,
                                "expand_dims: axis 0 is the partition axis; new axes go after it")
        x = x[(slice(None),) * a + (None,)]
    return x


def static_cast(input_data, dtype):
    """``input_data`` converted to ``dtype``: a Python/numpy scalar gives a numpy scalar
    (ints truncate toward zero, as C's static_cast); a tile gives a new SBUF tile (one copy
    that converts, rounding to nearest even)."""
    core = _dtypes.dtname(dtype)
    if isinstance(input_data, NkiTensor):
        if input_data._rec.space == _HBM:
            return load(input_data, dtype=dtype)
        return copy(input_data, dtype=dtype)
    nd = _dtypes.numpy_dtype(core, dtype if not isinstance(dtype, NamedDType) else None)
    if dtype is bool or dtype is _np.bool_:
        return _np.bool_(input_data)
    if isinstance(input_data, _np.ndarray):
        return input_data.astype(nd)
    if not _dtypes.is_float(core) and isinstance(input_data, float):
        return nd.type(int(input_data))
    return nd.type(input_data)


# ---- data movement -------------------------------------------------------------------------
def load(src, dtype=None, mask=None, **kw):
    """HBM -> a new SBUF tile (DMA). ``src`` may be ``t[idx_tile, ...]``: the rows an index
    tile names, gathered by an indirect DMA."""
    b = _here()
    _mask.check_mask(mask)
    if isinstance(src, _tile.Indirect):
        core = _dt(dtype, src.base._rec.core)
        dst = _tile.new_tile(src.shape, core, _SBUF, dtype if dtype is not None else src.dtype)
        b.dma_copy(_ap(dst), src.base._pattern(), -1, _ap(src.index), 1, False)
        return dst
    src = _tile.as_tile(src, "nl.load source")
    core = _dt(dtype, src._rec.core)
    dst = _tile_like(src, core, _SBUF, dtype if dtype is not None else src.dtype)
    b.dma_copy(_ap(dst), _ap(src), -1, None, 0, False)
    return dst


def store(dst, value, mask=None, **kw):
    """A tile -> HBM (DMA)."""
    b = _here()
    _mask.check_mask(mask)
    if isinstance(dst, _tile.Indirect):  # scatter rows by an index tile
        b.dma_copy(dst.base._pattern(), _ap(value), -1, _ap(dst.index), 2, False)
        _mark(dst.base)
        return
    dst = _tile.as_tile(dst, "nl.store destination")
    if not isinstance(value, NkiTensor):
        raise _context.fail(_err.NotSupportedError, "nl.store of a Python scalar")
    b.dma_copy(_ap(dst), _ap(value), -1, None, 0, False)
    _mark(dst)



def copy(src, dtype=None, mask=None, **kw):
    b = _here()
    _mask.check_mask(mask)
    src = _tile.as_tile(src)
    core = _dt(dtype, src._rec.core)
    dst = _tile_like(src, core, _SBUF, dtype if dtype is not None else src.dtype)
    if src._rec.space == _HBM:
        b.dma_copy(_ap(dst), _ap(src), -1, None, 0, False)
    else:
        b.tensor_copy(_ap(dst), _ap(src), _names.VECTOR)
    return dst


def _assign(dst, value):
    """dst[...] = value."""
    b = _here()
    if dst._rec.space == _HBM or value._rec.space == _HBM:
        b.dma_copy(_ap(dst), _ap(value), -1, None, 0, False)
        _mark(dst)
    elif value.free_size == 1 and dst.free_size > 1 and value.partitions == dst.partitions:
        b.tensor_scalar(_ap(dst), _ap(_zero_like_shape(dst)), _ALU["add"], _ap(value), 0, None,
                        False, False, _names.VECTOR)
    else:
        b.tensor_copy(_ap(dst), _ap(value), _names.VECTOR)


def _zero_like_shape(dst):
    z = _tile_like(dst, "float32")
    _here().memset(_ap(z), 0.0, _names.VECTOR)
    return z


def _fill(dst, value):
    b = _here()
    if dst._rec.space == _HBM:
        raise _context.fail(_err.NotSupportedError, "assigning a scalar to an HBM tensor")
    b.memset(_ap(dst), float(value), _names.VECTOR)
