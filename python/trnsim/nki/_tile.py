"""Tiles and tensors of a traced kernel (NkiTensor): shapes, views, access patterns and
indexing, and how new ones are made. Their arithmetic operators come from nki.language
(_tile_ops.py)."""

from __future__ import annotations

import numpy as np

from . import _buffers, _context
from . import errors as _err
from ._context import _Rec, _row_strides, fail, here, user_loc
from ._dtypes import _DTYPE_SIZE
from ._index import IndexExpr
from ._names import HBM, SBUF


# ---- tiles ---------------------------------------------------------------------------------


def _merge(shape, strides, out):
    """Appends (stride, count) pairs of the non-unit dims, merging contiguous neighbours."""
    prev_s = prev_c = None
    for c, s in zip(shape, strides):
        if c == 1:
            continue
        if prev_c is not None and prev_s == s * c:
            prev_s, prev_c = s, prev_c * c
            continue
        if prev_c is not None:
            out.append(prev_s)
            out.append(prev_c)
        prev_s, prev_c = s, c
    if prev_c is not None:
        out.append(prev_s)
        out.append(prev_c)
    return out


class NkiTensor:
    """A tensor or a view of one (a tile) inside a kernel: HBM, SBUF or PSUM.

    Index it with slices/ints (``t[0:128, 512:1024]``) or index expressions
    (``t[i_p, i_f]``); arithmetic operators and comparisons emit instructions.
    """

    __slots__ = ("_rec", "shape", "dtype", "_off", "_st", "_pd", "_ap", "__weakref__")
    __array_priority__ = 1000  # numpy scalars defer to our operators

    def __init__(self, rec, shape, dtype, off=0, st=None, pd=0):
        self._rec = rec
        self.shape = shape
        self.dtype = dtype
        self._off = off
        self._st = st if st is not None else _row_strides(shape)
        self._pd = pd
        self._ap = None

    # -- properties ------------------------------------------------------------------------
    @property
    def buffer(self):
        return (_buffers.sbuf, _buffers.psum, _buffers.hbm)[self._rec.space]

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        return self._rec.name

    @property
    def tensor(self):  # new-style `t.tensor` refers to the whole tensor
        return self

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        sp = ("sbuf", "psum", "hbm")[self._rec.space]
        return f"<nki tile {sp} {self._rec.core}{list(self.shape)}>"

    def __bool__(self):
        raise _err.NkiTypeError(
            "a tile has no truth value at trace time (its values exist only when the kernel "
            "runs); use nl.where / nisa.select_reduce, or Python values for control flow")

    # -- access patterns ---------------------------------------------------------------------
    def ap(self, pattern=None, offset=0, **_kw):
        """The tile as an operand, or NKI's raw ``ap(pattern=[[step, num], ...], offset=)``."""
        if pattern is None:
            return self
        rec = self._rec
        pattern = [tuple(p) for p in pattern]
        counts = tuple(int(p[1]) for p in pattern)
        strides = tuple(int(p[0]) for p in pattern)
        if rec.space != HBM:
            strides = (rec.F * strides[0],) + strides[1:]
        return NkiTensor(rec, counts, self.dtype, self._off + int(offset), strides, 0)

    def _pattern(self):
        """The flat operand tuple the C++ builder takes (cached)."""
        ap = self._ap
        if ap is not None:
            return ap
        rec = self._rec
        shape, st, pd = self.shape, self._st, self._pd
        if rec.space != HBM:
            F = rec.F
            if pd >= len(shape):
                pd = -1
            if pd >= 0:
                P = shape[pd]
                if P > 1 and st[pd] != F:
                    raise fail(_err.VerifyError,
                               f"this view of an on-chip tile moves data across partitions "
                               f"(partition stride {st[pd]} elements); the first axis must stay "
                               "the partition axis")
                rest_s = st[:pd] + st[pd + 1:]
                rest_c = shape[:pd] + shape[pd + 1:]
            else:
                P = 1
                rest_s, rest_c = st, shape
            poff, foff = divmod(self._off, F)
            out = [rec.tid, poff, 1, P, foff]
            _merge(rest_c, rest_s, out)
        else:
            if len(shape) == 0:
                out = [rec.tid, 0, 1, 1, self._off]
            elif len(shape) == 1:
                out = [rec.tid, 0, 1, 1, self._off, st[0], shape[0]]
            else:
                out = [rec.tid, 0, st[0], shape[0], self._off]
                _merge(shape[1:], st[1:], out)
        if len(out) > 13:
            raise fail(_err.NotSupportedError,
                       f"a view of shape {list(shape)} needs more than 4 free dimensions "
                       "(hardware access patterns have at most 4)")
        ap = tuple(out)
        self._ap = ap
        return ap

    @property
    def partitions(self):
        return self._pattern()[3]

    @property
    def free_size(self):
        ap = self._pattern()
        n = 1
        for i in range(6, len(ap), 2):
            n *= ap[i]
        return n

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if key and isinstance(key[0], NkiTensor):
            return self._indirect(key)
        if self._rec.space != HBM and any(isinstance(k, (DynIndex, NkiTensor)) for k in key[1:]):
            return DynamicView(self, key)
        for k in key:
            if isinstance(k, IndexExpr):
                return self._advanced(key)
        shape, st = self.shape, self._st
        off = self._off
        pd = self._pd
        nshape, nst = [], []
        npd = -1
        dim = 0
        for k in key:
            if k is None:
                nshape.append(1)
                nst.append(0)
                continue
            if k is Ellipsis:
                rest = len(shape) - dim - sum(1 for x in key if x is not None and x is not Ellipsis) + 1
                for _ in range(rest - 1 if rest > 0 else 0):
                    if dim == pd:
                        npd = len(nshape)
                    nshape.append(shape[dim])
                    nst.append(st[dim])
                    dim += 1
                continue
            if dim >= len(shape):
                raise fail(_err.NkiValueError, f"too many indices for a tile of shape {list(shape)}")
            n = shape[dim]
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step <= 0:
                    raise fail(_err.NotSupportedError, "negative slice steps are not supported")
                cnt = len(range(start, stop, step))
                if k.stop is not None and not (-n <= k.stop <= n) or cnt <= 0:
                    raise fail(_err.OutOfBoundsError,
                               f"slice {k.start}:{k.stop} is outside axis {dim} of size {n}")
                off += start * st[dim]
                if dim == pd:
                    npd = len(nshape)
                nshape.append(cnt)
                nst.append(st[dim] * step)
            else:
                try:
                    i = int(k)
                except TypeError:
                    raise fail(_err.NkiTypeError, f"cannot index a tile with {k!r}") from None
                if i < 0:
                    i += n
                if not 0 <= i < n:
                    raise fail(_err.OutOfBoundsError,
                               f"index {int(k)} is outside axis {dim} of size {n}")
                off += i * st[dim]
            dim += 1
        for d in range(dim, len(shape)):
            if d == pd:
                npd = len(nshape)
            nshape.append(shape[d])
            nst.append(st[d])
        if npd < 0 and self._rec.space != HBM:
            npd = -1
        return NkiTensor(self._rec, tuple(nshape), self.dtype, off, tuple(nst),
                         npd if npd >= 0 else (0 if self._rec.space == HBM else 99))

    def _indirect(self, key):
        """``t[idx_tile, ...]``: the rows of HBM tensor t that an on-chip [rows, 1] index tile
        names (an indirect DMA when loaded or stored)."""
        here()
        idx = key[0]
        if self._rec.space != HBM:
            raise fail(_err.NotSupportedError,
                       "indexing an on-chip tile with a tile of indices; only HBM tensors take "
                       "indirect (DMA) indexing")
        if idx._rec.space == HBM:
            raise fail(_err.VerifyError, "the index tile of an indirect access must be on chip "
                       "(nl.load the indices first)")
        if idx.free_size != 1:
            raise fail(_err.VerifyError, f"an index tile holds one row index per partition "
                       f"([rows, 1]); got shape {list(idx.shape)}")
        rest = key[1:]
        row = self[(0,) + rest] if rest else self[0]
        rshape = tuple(d for d in row.shape if d != 1) or (1,)
        rst = tuple(s for d, s in zip(row.shape, row._st) if d != 1) or (1,)
        base = NkiTensor(self._rec, (self.shape[0],) + rshape, self.dtype, row._off,
                         (self._st[0],) + rst, 0)
        return Indirect(base, idx, (idx.partitions,) + rshape)

    def _advanced(self, key):
        shape, st = self.shape, self._st
        ndim = 0
        for k in key:
            if isinstance(k, IndexExpr):
                ndim = max(ndim, k.ndim)
        counts = [1] * ndim
        strides = [0] * ndim
        off = self._off
        if len(key) > len(shape):
            raise fail(_err.NkiValueError, f"too many indices for a tile of shape {list(shape)}")
        for dim, k in enumerate(key):
            s = st[dim]
            if isinstance(k, IndexExpr):
                off += k.const * s
                for p, c in k.terms.items():
                    strides[p] += c * s
                for p, n in k.counts.items():
                    if counts[p] != 1 and n != 1 and counts[p] != n:
                        raise fail(_err.NkiValueError,
                                   f"index expressions disagree on axis {p}: {counts[p]} vs {n}")
                    counts[p] = max(counts[p], n)
            elif isinstance(k, slice) and k == slice(None) and shape[dim] == 1:
                continue
            else:
                try:
                    off += int(k) * s
                except TypeError:
                    raise fail(_err.NotSupportedError,
                               "mixing slices with index expressions is not supported yet; "
                               "use nl.arange/nl.mgrid for every axis") from None
        # Rows beyond the tile are an error the builder reports with the location.
        return NkiTensor(self._rec, tuple(counts), self.dtype, off, tuple(strides), 0)

    # -- shape helpers -----------------------------------------------------------------------
    def reshape(self, shape):
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != int(np.prod(self.shape)):
            raise fail(_err.NkiValueError, f"cannot reshape {list(self.shape)} to {list(shape)}")
        if self._st != _row_strides(self.shape) and self._rec.space == HBM:
            raise fail(_err.NotSupportedError, "reshape of a strided HBM view")
        if self._rec.space != HBM:
            if shape[0] != self.shape[self._pd if self._pd < len(self.shape) else 0]:
                raise fail(_err.NotSupportedError,
                           "reshape that changes the partition dimension of an on-chip tile")
            if self._st[1:] != _row_strides(self.shape)[1:]:
                raise fail(_err.NotSupportedError, "reshape of a strided on-chip view")
            st = (self._rec.F,) + _row_strides(shape)[1:]
            return NkiTensor(self._rec, shape, self.dtype, self._off, st, 0)
        return NkiTensor(self._rec, shape, self.dtype, self._off, _row_strides(shape), 0)

    def assert_shape(self, shape):
        here()
        if tuple(int(s) for s in shape) != tuple(self.shape):
            raise fail(_err.NkiValueError,
                       f"assert_shape: the tensor has shape {list(self.shape)}, not {list(shape)}")
        return self

    @property
    def itemsize(self):
        return _DTYPE_SIZE[self._rec.core]

    def __class_getitem__(cls, item):  # nki.tensor[shape, dtype] in annotations
        return cls



class DynIndex:
    """``off_tile + index_expr``: an index whose base is a value in device memory, known only at
    run time (nisa.tensor_copy_dynamic_src / _dst take tiles indexed with it)."""

    __slots__ = ("value", "expr")

    def __init__(self, value, expr):
        self.value, self.expr = value, expr


class DynamicView:
    """An on-chip tile indexed with a run-time offset on one free axis (``t[i_p, off + i_f]``
    or ``t[i_p, off_tile]``); only nisa.tensor_copy_dynamic_src / _dst take it."""

    __slots__ = ("base", "key")

    def __init__(self, base, key):
        self.base, self.key = base, key

    @property
    def dtype(self):
        return self.base.dtype


class Indirect:
    """Rows of an HBM tensor chosen by an on-chip index tile (``t[idx_tile, i_f]``): nl.load
    gathers them (indirect-source DMA), nl.store scatters into them (indirect-destination)."""

    __slots__ = ("base", "index", "shape")

    def __init__(self, base, index, shape):
        self.base, self.index, self.shape = base, index, shape

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self):
        return len(self.shape)


def new_tile(shape, core: str, space: int = SBUF, user_dtype=None, name=None) -> NkiTensor:
    c = _context._CTX
    shape = tuple(int(s) for s in shape)
    if not shape:
        shape = (1, 1)
    elif len(shape) == 1:
        shape = (shape[0], 1) if space != HBM else shape
    rec = c.alloc(space, core, shape, name)
    return NkiTensor(rec, shape, user_dtype if user_dtype is not None else core, 0,
                     None, 0)


def new_hbm(shape, core: str, user_dtype=None, name=None, kind="output") -> NkiTensor:
    """A kernel-created HBM tensor. Programs of one launch share them in allocation order."""
    c = _context._CTX
    shape = tuple(int(s) for s in shape)
    sh = c.shared
    idx = c.hbm_index
    c.hbm_index += 1
    if idx < len(c.hbm_recs_local):  # a later grid point of this program: the same tensor
        rec = c.hbm_recs_local[idx]
        return NkiTensor(rec, rec.shape, user_dtype or core)
    if idx < len(sh.hbm):
        nm = sh.hbm[idx][0]
        c.names.add(nm)
    else:
        nm = c.unique(name or f"hbm{idx}")
        sh.hbm.append((nm, core, shape))
    tid = c.b.declare(HBM, nm, core, list(shape), kind)
    rec = _Rec(c, tid, HBM, core, shape, None, nm)
    rec.loc = user_loc()
    c.hbm_recs_local.append(rec)
    return NkiTensor(rec, shape, user_dtype if user_dtype is not None else core)


def new_constant(arr, core: str, user_dtype=None) -> NkiTensor:
    """An HBM tensor that the launch fills with ``arr`` before the programs run."""
    c = _context._CTX
    sh = c.shared
    nm = f"const#{sh.nconst}"
    sh.nconst += 1
    c.names.add(nm)
    shape = tuple(int(v) for v in arr.shape) or (1,)
    tid = c.b.declare(HBM, nm, core, list(shape), "input")
    rec = _Rec(c, tid, HBM, core, shape, None, nm)
    c.constants.append((nm, arr.reshape(shape)))
    return NkiTensor(rec, shape, user_dtype if user_dtype is not None else core)


def as_tile(x, what="operand") -> NkiTensor:
    if isinstance(x, NkiTensor):
        return x
    if isinstance(x, DynamicView):
        raise fail(_err.NotSupportedError,
                   f"{what} is a tile indexed with a run-time offset (a tile value in the "
                   "subscript); only nisa.tensor_copy_dynamic_src / tensor_copy_dynamic_dst "
                   "take one")
    raise fail(_err.NkiTypeError,
               f"{what} must be a tile or tensor of the kernel, not {type(x).__name__}")
