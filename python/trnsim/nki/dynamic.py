"""nisa.tensor_copy_dynamic_src / tensor_copy_dynamic_dst: on-chip copies whose source or
destination offset along one free axis is a value in SBUF, known only at run time.

The tile is indexed with the offset in the subscript, as NKI writes it:
``src[i_p, off_tile[0, k] + i_f]`` (or a bare ``src[i_p, off_tile]``). trnsim builds the
element indices on chip and moves the data with the GpSimd Engine's ``local_gather`` (the
simulator's data-dependent on-chip addressing):

- the offset value is DMAed to one float32 element and spread over the partitions by a
  Tensor Engine matmul with a row of ones (exact);
- index[p, j] = (p % 16) * F + (static part of the element's position in its partition)
  + offset * stride of the indexed axis, built with iota and two Vector Engine ops;
- _src: one local_gather of those elements; _dst (contiguous destination window): for every
  element x of the destination rows, the source element x - start is gathered (clamped) and
  a predicated copy writes only the x inside the window.

The offset must keep the access inside the tile (the gather fails at run time otherwise).
"""

from __future__ import annotations

from . import _context, _dtypes, _names, _outputs, _tile
from . import errors as _err
from ._names import ALU as _ALU
from ._tile import DynamicView
from ._tile import DynIndex
from ._index import IndexExpr
from ._tile import NkiTensor
from ._names import PSUM as _PSUM
from ._context import here as _here

_GROUP = 16  # local_gather indexes within a group of 16 partitions


def _split_key(view):
    """(static view, offset tile, element stride of the indexed axis)."""
    base, key = view.base, view.key
    dyn = [i for i, k in enumerate(key) if isinstance(k, (DynIndex, NkiTensor))]
    if len(dyn) != 1 or dyn[0] == 0:
        raise _context.fail(_err.NotSupportedError,
                            "a run-time offset on exactly one free axis of an on-chip tile is "
                            "supported (t[i_p, off + i_f]); not on the partition axis or several")
    d = dyn[0]
    k = key[d]
    value, expr = (k.value, k.expr) if isinstance(k, DynIndex) else (k, 0)
    static = list(key)
    static[d] = expr
    if not any(isinstance(s, IndexExpr) for s in static) and isinstance(expr, int):
        static[d] = slice(0, 1)
    sv = base[tuple(static)]
    if value.partitions * value.free_size != 1:
        raise _context.fail(_err.NkiValueError, f"a run-time offset is one value (a [1, 1] view "
                            f"of a tile), not a view of shape {list(value.shape)}")
    if d >= base.ndim:
        raise _context.fail(_err.NkiValueError, "too many indices for the tile")
    return sv, value, base._st[d]


def _offset_on_partitions(b, value, parts):
    """[parts, 1] float32: the run-time offset on every partition (DMA + ones matmul)."""
    one = _tile.new_tile((1, 1), "float32")
    b.dma_copy(one._pattern(), value._pattern(), -1, None, 0, False)
    ones = _tile.new_tile((1, parts), "float32")
    b.memset(ones._pattern(), 1.0, _names.VECTOR)
    ps = _tile.new_tile((parts, 1), "float32", _PSUM)
    b.nc_matmul(ps._pattern(), ones._pattern(), one._pattern(), False, False, False)
    off = _tile.new_tile((parts, 1), "float32")
    b.tensor_copy(off._pattern(), ps._pattern(), _names.VECTOR)
    return off


def _rows(base, poff, parts):
    """The whole rows (all free elements) of partitions poff..poff+parts of base's tile."""
    F = base._rec.F
    if poff % _GROUP:
        raise _context.fail(_err.NotSupportedError,
                            f"a run-time-offset copy of a view starting at partition {poff}: "
                            f"trnsim gathers in 16-partition groups; start on a multiple of 16")
    return NkiTensor(base._rec, (parts, F), base.dtype, poff * F, (F, 1), 0), F


def _group_base(b, parts, F):
    """[parts, 1] float32: (p % 16) * F."""
    pid = _tile.new_tile((parts, 1), "float32")
    b.iota(pid._pattern(), [0], 0.0, 1.0)
    b.tensor_scalar(pid._pattern(), pid._pattern(), _ALU["mod"], float(_GROUP),
                    _ALU["multiply"], float(F), False, False, _names.VECTOR)
    return pid


def tensor_copy_dynamic_src(*args, **kw):
    """dst = src[..., off + i, ...] with off read from SBUF at run time (older style returns a
    new SBUF tile; current style ``tensor_copy_dynamic_src(dst, src)``)."""
    b = _here()
    if len(args) >= 2 or "dst" in kw:
        a = dict(zip(["dst", "src", "engine"], args))
    else:
        a = dict(zip(["src"], args))
    a.update(kw)
    src = a.get("src")
    if not isinstance(src, DynamicView):
        raise _context.fail(_err.NkiTypeError,
                            "tensor_copy_dynamic_src takes a tile indexed with a run-time offset, "
                            "e.g. src[i_p, off_tile[0, k] + i_f]")
    sv, value, stride = _split_key(src)
    ap = sv._pattern()
    parts, poff, foff = ap[3], ap[1], ap[4]
    rows, F = _rows(src.base, poff, parts)
    steps = [ap[i] for i in range(5, len(ap), 2)]
    counts = [ap[i] for i in range(6, len(ap), 2)]
    idx = _tile.new_tile((parts,) + tuple(counts or [1]), "int32")
    b.iota(idx._pattern(), steps or [0], float(foff), 0.0)
    off = _offset_on_partitions(b, value, parts)
    grp = _group_base(b, parts, F)
    b.tensor_scalar(off._pattern(), off._pattern(), _ALU["multiply"], float(stride),
                    _ALU["add"], grp._pattern(), False, False, _names.VECTOR)
    b.tensor_scalar(idx._pattern(), idx._pattern(), _ALU["add"], off._pattern(), 0, None,
                    False, False, _names.VECTOR)
    dst = a.get("dst")
    dtype = a.get("dtype")
    if dst is None:
        core = _dtypes.dtname(dtype) if dtype is not None else src.base._rec.core
        dst = _tile.new_tile(tuple(sv.shape), core, _names.SBUF, dtype or src.base.dtype)
    if _dtypes.dtname(dst.dtype) != src.base._rec.core:
        tmp = _tile.new_tile(tuple(sv.shape), src.base._rec.core)
        b.local_gather(tmp._pattern(), rows._pattern(), idx._pattern(), 1, idx.free_size)
        b.tensor_copy(dst._pattern(), tmp._pattern(), _names.VECTOR)
    else:
        b.local_gather(dst._pattern(), rows._pattern(), idx._pattern(), 1, idx.free_size)
    _outputs.mark_written(dst)
    return dst


def tensor_copy_dynamic_dst(*args, **kw):
    """dst[..., off + i] = src[..., i] with off read from SBUF at run time; the destination
    window is contiguous along the indexed (last) axis."""
    b = _here()
    a = dict(zip(["dst", "src", "engine"], args))
    a.update(kw)
    dst, src = a.get("dst"), a.get("src")
    if not isinstance(dst, DynamicView):
        raise _context.fail(_err.NkiTypeError,
                            "tensor_copy_dynamic_dst takes dst indexed with a run-time offset, "
                            "e.g. dst[i_p, off_tile[0, k] + i_f]")
    src = _tile.as_tile(src, "tensor_copy_dynamic_dst src")
    sv, value, stride = _split_key(dst)
    ap = sv._pattern()
    parts, poff, foff = ap[3], ap[1], ap[4]
    if len(ap) != 7 or ap[5] != 1 or stride != 1:
        raise _context.fail(_err.NotSupportedError,
                            "tensor_copy_dynamic_dst writes a contiguous window along the last "
                            "axis of the tile (dst[i_p, off + i_f]); other shapes are not "
                            "supported yet")
    n = ap[6]
    if src.partitions != parts or src.free_size != n:
        raise _context.fail(_err.VerifyError,
                            f"tensor_copy_dynamic_dst: src ({src.partitions} x {src.free_size}) "
                            f"must match the destination window ({parts} x {n})")
    rows, F = _rows(dst.base, poff, parts)
    # rel[p, x] = x - foff - off: the source element destination element x receives
    rel = _tile.new_tile((parts, F), "float32")
    b.iota(rel._pattern(), [1], float(-foff), 0.0)
    off = _offset_on_partitions(b, value, parts)
    b.tensor_scalar(rel._pattern(), rel._pattern(), _ALU["subtract"], off._pattern(), 0, None,
                    False, False, _names.VECTOR)
    pred = _tile.new_tile((parts, F), "uint8")
    hi = _tile.new_tile((parts, F), "float32")
    b.tensor_scalar(pred._pattern(), rel._pattern(), _ALU["is_ge"], 0.0, 0, None, False,
                    False, _names.VECTOR)
    b.tensor_scalar(hi._pattern(), rel._pattern(), _ALU["is_lt"], float(n), 0, None, False,
                    False, _names.VECTOR)
    b.tensor_tensor(pred._pattern(), pred._pattern(), hi._pattern(), _ALU["multiply"],
                    _names.VECTOR)
    # gather src[p, clamp(rel)] (src rows start at their own partition group)
    srows = src if src.ndim == 2 else src.reshape((parts, n))
    s_ap = srows._pattern()
    if s_ap[1] % _GROUP or len(s_ap) != 7 or s_ap[5] != 1:
        srows_c = _tile.new_tile((parts, n), src._rec.core)
        b.tensor_copy(srows_c._pattern(), s_ap, _names.VECTOR)
        srows = srows_c
        s_ap = srows._pattern()
    SF = srows._rec.F
    idx = _tile.new_tile((parts, F), "int32")
    b.tensor_scalar(hi._pattern(), rel._pattern(), _ALU["max"], 0.0, _ALU["min"], float(n - 1),
                    False, False, _names.VECTOR)
    grp = _group_base(b, parts, SF)
    b.tensor_scalar(idx._pattern(), hi._pattern(), _ALU["add"], float(s_ap[4]), _ALU["add"],
                    grp._pattern(), False, False, _names.VECTOR)
    full = NkiTensor(srows._rec, (parts, SF), srows.dtype, s_ap[1] * SF, (SF, 1), 0)
    tmp = _tile.new_tile((parts, F), dst.base._rec.core)
    b.local_gather(tmp._pattern(), full._pattern(), idx._pattern(), 1, F)
    b.tensor_copy_predicated(rows._pattern(), tmp._pattern(), pred._pattern(), False, _names.VECTOR)
    _outputs.mark_written(rows)
    return dst.base
