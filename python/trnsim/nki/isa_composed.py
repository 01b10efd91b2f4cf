"""nki.isa instructions the simulator's ISA has no single instruction for, built from ones it
has, with NKI's documented semantics (the values are the same; the timeline shows the parts).

- ``nc_stream_shuffle``: cross-partition moves inside 32-partition quadrants, one SBUF/PSUM
  DMA per run of consecutive source partitions (NKI runs it on the Vector Engine).
- ``sequence_bounds``: [start, end) of each element's segment: two Vector Engine scans, one
  forward and one over a reversed (negative-stride) view (NKI runs it on the GpSimd Engine).
"""

from __future__ import annotations

from . import _context, _dtypes, _isa_base, _names, _outputs, _tile
from . import errors as _err
from ._names import ALU as _ALU
from ._names import SBUF as _SBUF
from ._isa_base import _ap
from ._ops import _alu
from ._tile import NkiTensor
from ._context import here as _here

_QUADRANT = 32
_KEEP = 255  # shuffle_mask value: leave the destination partition unmodified


def _operand_tile(x, what):
    if not isinstance(x, NkiTensor):
        raise _context.fail(_err.NkiTypeError, f"{what} must be a tile, not {type(x).__name__}")
    return x


# ---- nc_stream_shuffle -----------------------------------------------------------------------


def _shuffle_runs(mask):
    """[(dst_first, src_first, count)] of the partitions a 32-entry shuffle_mask moves, runs
    of consecutive destinations reading consecutive sources merged."""
    runs = []
    for i, s in enumerate(mask):
        if s == _KEEP:
            continue
        if runs and runs[-1][0] + runs[-1][2] == i and runs[-1][1] + runs[-1][2] == s:
            d0, s0, n = runs[-1]
            runs[-1] = (d0, s0, n + 1)
        else:
            runs.append((i, s, 1))
    return runs


def nc_stream_shuffle(*args, **kw):
    """dst partition q*32+i = src partition q*32+shuffle_mask[i] for every quadrant q of the
    access (shuffle_mask[i] = 255 leaves dst partition i as it was).

    Both argument orders work: ``(dst, src, shuffle_mask)`` (current NKI) and
    ``(src, dst, shuffle_mask)`` (older NKI) by keyword; positionally the current order.
    """
    b = _here()
    names = ["dst", "src", "shuffle_mask"]
    a = dict(zip(names, args))
    a.update(kw)
    dst, src = _operand_tile(a.get("dst"), "dst"), _operand_tile(a.get("src"), "src")
    mask = a.get("shuffle_mask")
    try:
        mask = [int(m) for m in mask]
    except TypeError:
        raise _context.fail(_err.NkiTypeError, "nc_stream_shuffle: shuffle_mask is a list of 32 "
                            "ints (255 = leave the partition unmodified)") from None
    if len(mask) != _QUADRANT or any(not (0 <= m < _QUADRANT or m == _KEEP) for m in mask):
        raise _context.fail(_err.NkiValueError,
                            f"nc_stream_shuffle: shuffle_mask must hold 32 entries, each a source "
                            f"partition 0-31 of the quadrant or 255; got {mask}")
    if dst.dtype != src.dtype and _dtypes.dtname(dst.dtype) != _dtypes.dtname(src.dtype):
        raise _context.fail(_err.VerifyError, "nc_stream_shuffle: dst must have src's dtype")
    P = src.partitions
    if dst.partitions != P or dst.free_size != src.free_size:
        raise _context.fail(_err.VerifyError,
                            f"nc_stream_shuffle: dst ({dst.partitions} partitions x "
                            f"{dst.free_size}) and src ({P} x {src.free_size}) must have the same "
                            "partitions and elements per partition")
    if P % _QUADRANT:
        raise _context.fail(_err.VerifyError, f"nc_stream_shuffle: the access spans {P} partitions; "
                            "it must span whole quadrants (32, 64, 96 or 128)")
    if dst._rec is src._rec:  # in place: read every source before any write
        tmp = _tile.new_tile(tuple(src.shape), src._rec.core, _SBUF, src.dtype)
        b.dma_copy(tmp._pattern(), _ap(src), -1, None, 0, False)
        src = tmp
    runs = _shuffle_runs(mask)
    for q in range(0, P, _QUADRANT):
        for d0, s0, n in runs:
            b.dma_copy(dst[q + d0:q + d0 + n]._pattern(), src[q + s0:q + s0 + n]._pattern(),
                       -1, None, 0, False)
    _outputs.mark_written(dst)
    return dst


# ---- sequence_bounds -------------------------------------------------------------------------


def _ts(b, dst, src, op0, s0, op1=None, s1=None):
    """dst = (src <op0> s0) [<op1> s1] on the Vector Engine."""
    b.tensor_scalar(dst._pattern(), src._pattern(), _ALU[op0], s0, _ALU[op1] if op1 else 0, s1,
                    False, False, _names.VECTOR)


def _reversed(t):
    """A view of the [1, n] tile t with its free axis reversed (stride -1)."""
    n = t.shape[-1]
    return NkiTensor(t._rec, t.shape, t.dtype, t._off + (n - 1) * t._st[-1],
                     t._st[:-1] + (-t._st[-1],), t._pd)


def sequence_bounds(*args, **kw):
    """dst[0, 0, i] = first index of element i's segment, dst[0, 1, i] = one past its last
    (segments are runs of equal ids; id 0 is padding: start n, end -1).

    Current NKI ``sequence_bounds(dst, segment_ids)``; older ``sequence_bounds(segment_ids=,
    dtype=)`` returns a new [1, 2, n] tile.
    """
    b = _here()
    if "dst" in kw or (len(args) >= 2):
        a = dict(zip(["dst", "segment_ids"], args))
        a.update(kw)
        dst = _operand_tile(a["dst"], "dst")
    else:
        a = dict(zip(["segment_ids"], args))
        a.update(kw)
        dst = None
    seg = _operand_tile(a["segment_ids"], "segment_ids")
    core = _dtypes.dtname(seg.dtype)
    if core not in ("float32", "int32"):
        raise _context.fail(_err.VerifyError, f"sequence_bounds: segment_ids must be float32 or "
                            f"int32, not {core}")
    if seg.partitions != 1:
        raise _context.fail(_err.VerifyError, f"sequence_bounds: the partition dimension must be "
                            f"1 (segment_ids has {seg.partitions} partitions)")
    n = seg.free_size
    if dst is None:
        out_dt = a.get("dtype") or seg.dtype
        dst = _tile.new_tile((1, 2, n), _dtypes.dtname(out_dt), _SBUF, out_dt)
    if tuple(dst.shape) != (1, 2, n):
        raise _context.fail(_err.VerifyError, f"sequence_bounds: dst must have shape [1, 2, {n}] "
                            f"for {n} segment ids, not {list(dst.shape)}")
    f32 = "float32"

    def tile():
        return _tile.new_tile((1, n), f32)

    s = tile()
    b.tensor_copy(s._pattern(), seg.reshape((1, n))._pattern() if seg.ndim != 2 else
                  _ap(seg), _names.VECTOR)
    nz = tile()  # 1 where the id is not padding
    _ts(b, nz, s, "not_equal", 0.0)
    pos = tile()  # i
    b.iota(pos._pattern(), [1], 0.0, 0.0)
    new = tile()  # 1 where a run starts (left): s[i] != s[i-1], and at i = 0
    keep = tile()
    val = tile()
    res = [tile(), tile()]
    for side in (0, 1):
        if n > 1:
            if side == 0:  # compare with the left neighbour
                b.tensor_tensor(new[:, 1:n]._pattern(), s[:, 1:n]._pattern(),
                                s[:, 0:n - 1]._pattern(), _ALU["not_equal"], _names.VECTOR)
                b.memset(new[:, 0:1]._pattern(), 1.0, _names.VECTOR)
            else:  # with the right neighbour
                b.tensor_tensor(new[:, 0:n - 1]._pattern(), s[:, 0:n - 1]._pattern(),
                                s[:, 1:n]._pattern(), _ALU["not_equal"], _names.VECTOR)
                b.memset(new[:, n - 1:n]._pattern(), 1.0, _names.VECTOR)
        else:
            b.memset(new._pattern(), 1.0, _names.VECTOR)
        # keep = 1 - new; val = new * (i, or i + 1 for the end)
        _ts(b, keep, new, "multiply", -1.0, "add", 1.0)
        _ts(b, val, pos, "add", float(side))
        b.tensor_tensor(val._pattern(), val._pattern(), new._pattern(), _ALU["multiply"],
                        _names.VECTOR)
        # r[i] = keep[i] * r[i-1] + val[i], scanned left to right (start) or right to left
        d, k, v = (res[0], keep, val) if side == 0 else (
            _reversed(res[1]), _reversed(keep), _reversed(val))
        b.tensor_tensor_scan(d._pattern(), k._pattern(), v._pattern(), 0.0, _ALU["multiply"],
                             _ALU["add"])
        # padding: start n, end -1  ->  r = (r - pad) * nz + pad
        pad = float(n) if side == 0 else -1.0
        _ts(b, res[side], res[side], "add", -pad)
        b.tensor_tensor(res[side]._pattern(), res[side]._pattern(), nz._pattern(),
                        _ALU["multiply"], _names.VECTOR)
        _ts(b, dst[:, side, :], res[side], "add", pad)
    _outputs.mark_written(dst)
    return dst


# ---- nc_n_gather -----------------------------------------------------------------------------


def nc_n_gather(*args, **kw):
    """dst[p, j...] = data[p, flat index indices[p, j...]] within each partition (one GpSimd
    local_gather over 16-partition groups after offsetting the indices per partition)."""
    from . import language as _nl
    a = dict(zip(["dst", "data", "indices"], args))
    a.update(kw)
    dst, data, idx = _operand_tile(a.get("dst"), "dst"), _operand_tile(a.get("data"), "data"), \
        _operand_tile(a.get("indices"), "indices")
    _here()
    if _dtypes.dtname(dst.dtype) != _dtypes.dtname(data.dtype):
        raise _context.fail(_err.VerifyError, "nc_n_gather: dst must have data's dtype "
                            f"({_dtypes.dtname(data.dtype)}), not {_dtypes.dtname(dst.dtype)}")
    if dst.free_size != idx.free_size or dst.partitions != idx.partitions:
        raise _context.fail(_err.VerifyError,
                            f"nc_n_gather: dst ({dst.partitions} x {dst.free_size}) must have the "
                            f"partitions and elements per partition of indices ({idx.partitions} x "
                            f"{idx.free_size})")
    _nl._gather_within_partitions(dst, data, idx, "nc_n_gather")
    _outputs.mark_written(dst)
    return dst


# ---- dma_compute -----------------------------------------------------------------------------

_PMAX = 128


def _rows(t):
    """t as a 2-D [rows, elements] view (an on-chip tile: [partitions, free])."""
    if t.ndim == 2:
        return t
    if t.ndim == 1:
        return t.reshape((1, t.shape[0]))
    n = 1
    for d in t.shape[1:]:
        n *= d
    return t.reshape((t.shape[0], n))


def dma_compute(*args, **kw):
    """dst = srcs[0] + srcs[1] + ... in float32, cast to dst's dtype (NKI: inside the DMA
    engines; here: DMA each source into SBUF as float32, add on the Vector Engine, DMA the sum
    to dst). Only reduce_op=nl.add and scales of 1.0, as NKI documents; indirect
    (vector_offset) read-modify-write is not supported."""
    b = _here()
    a = dict(zip(["dst", "srcs", "reduce_op", "scales", "unique_indices", "oob_mode"], args))
    a.update(kw)
    dst = _operand_tile(a.get("dst"), "dst")
    srcs = list(a.get("srcs") or [])
    op = a.get("reduce_op")
    name = getattr(op, "_alu", None) or getattr(op, "__name__", op)
    if name not in ("add", "sum"):
        raise _context.fail(_err.NkiValueError,
                            f"dma_compute: reduce_op must be nl.add (the only one NKI supports), "
                            f"not {op!r}")
    scales = a.get("scales")
    if scales is not None and any(float(s) != 1.0 for s in scales):
        raise _context.fail(_err.NkiValueError,
                            f"dma_compute: every scale must be 1.0 (NKI supports no other yet); "
                            f"got {list(scales)}")
    if not 1 <= len(srcs) <= 16:
        raise _context.fail(_err.NkiValueError,
                            f"dma_compute takes 1 to 16 source tensors, not {len(srcs)}")
    for s in srcs:
        if not isinstance(s, NkiTensor):
            raise _context.fail(_err.NotSupportedError,
                                "dma_compute with an indirect (vector_offset) source: the "
                                "read-modify-write scatter/gather mode is not supported yet")
    d = _rows(dst)
    n = d.shape[0] * d.shape[1]
    views = [_rows(s) for s in srcs]
    for s, v in zip(srcs, views):
        if v.shape[0] * v.shape[1] != n or v.shape[0] != d.shape[0]:
            raise _context.fail(_err.VerifyError,
                                f"dma_compute: source of shape {list(s.shape)} does not match dst "
                                f"of shape {list(dst.shape)} (same element count and first axis)")
    R, F = d.shape
    for r0 in range(0, R, _PMAX):
        r1 = min(R, r0 + _PMAX)
        acc = _tile.new_tile((r1 - r0, F), "float32")
        tmp = _tile.new_tile((r1 - r0, F), "float32") if len(views) > 1 else None
        for i, v in enumerate(views):
            b.dma_copy((acc if i == 0 else tmp)._pattern(), v[r0:r1]._pattern(), -1, None, 0,
                       False)
            if i:
                b.tensor_tensor(acc._pattern(), acc._pattern(), tmp._pattern(), _ALU["add"],
                                _names.VECTOR)
        b.dma_copy(d[r0:r1]._pattern(), acc._pattern(), -1, None, 0, False)
    _outputs.mark_written(dst)
    return dst


# ---- nonzero_with_count ---------------------------------------------------------------------

_GPSIMD_GROUP = 16  # GpSimd core c reads and writes partition 16 * c only
_PSUM_FP32 = 512    # fp32 elements of one PSUM bank per partition


def nonzero_with_count(*args, **kw):
    """For partitions 0, 16, ..., 112 of src [P, T]: dst[p, :N] = indices of the N nonzero
    elements (+ index_offset), dst[p, N:T] = padding_val, dst[p, T] = N; other partitions of
    dst are not written (as NKI documents).

    Composed per active partition: a prefix count of the nonzero flags (a Vector Engine scan)
    gives each nonzero element its output slot; the slots become a one-hot [T, T] matrix (a
    Tensor Engine transpose and a compare) and one matmul of the indices with it places every
    index (exact: each output sums one index and zeros). T is at most 512.
    """
    b = _here()
    a = dict(zip(["dst", "src", "index_offset", "padding_val"], args))
    a.update(kw)
    dst, src = _operand_tile(a.get("dst"), "dst"), _operand_tile(a.get("src"), "src")
    off = int(a.get("index_offset", 0))
    pad = float(a.get("padding_val", -1))
    if _dtypes.dtname(src.dtype) not in ("float32", "int32") or _dtypes.dtname(dst.dtype) != "int32":
        raise _context.fail(_err.VerifyError, "nonzero_with_count: src must be float32 or int32 "
                            "and dst int32")
    if src.ndim != 2 or dst.ndim != 2:
        raise _context.fail(_err.VerifyError, "nonzero_with_count takes 2-D tiles [P, T] and "
                            "[P, T + 1]")
    P, T = src.shape
    if dst.shape != (P, T + 1):
        raise _context.fail(_err.VerifyError, f"nonzero_with_count: dst must have shape "
                            f"[{P}, {T + 1}] (one more element than src), not {list(dst.shape)}")
    if T > _PSUM_FP32:
        raise _context.fail(_err.NotSupportedError,
                            f"nonzero_with_count over {T} elements per partition: trnsim composes "
                            f"it with one PSUM bank of {_PSUM_FP32} float32 results; split src")
    f32 = "float32"
    slot = _tile.new_tile((min(_PMAX, T), T), f32)  # slot[k, j] = j + 1 on every partition
    b.iota(slot._pattern(), [1], 1.0, 0.0)
    for p in range(0, P, _GPSIMD_GROUP):
        row = _tile.new_tile((1, T), f32)  # DMA: engines cannot start at partition 16
        b.dma_copy(row._pattern(), src[p:p + 1, :]._pattern(), -1, None, 0, False)
        nz = _tile.new_tile((1, T), f32)
        _ts(b, nz, row, "not_equal", 0.0)
        zero = _tile.new_tile((1, T), f32)
        b.memset(zero._pattern(), 0.0, _names.VECTOR)
        rank = _tile.new_tile((1, T), f32)  # running count of nonzeros
        b.tensor_tensor_scan(rank._pattern(), nz._pattern(), zero._pattern(), 0.0, _ALU["add"],
                             _ALU["add"])
        key = _tile.new_tile((1, T), f32)  # output slot + 1 of a nonzero element, else 0
        b.tensor_tensor(key._pattern(), rank._pattern(), nz._pattern(), _ALU["multiply"],
                        _names.VECTOR)
        out = _tile.new_tile((1, T), f32, _names.PSUM)
        for k0 in range(0, T, _PMAX):
            k = min(_PMAX, T - k0)
            key_t = _tile.new_tile((k, 1), f32, _names.PSUM)
            b.nc_transpose(key_t._pattern(), key[:, k0:k0 + k]._pattern(), _names.TENSOR)
            key_s = _tile.new_tile((k, 1), f32)
            b.tensor_copy(key_s._pattern(), key_t._pattern(), _names.VECTOR)
            onehot = _tile.new_tile((k, T), f32)
            b.tensor_scalar(onehot._pattern(), slot[0:k, :]._pattern(), _ALU["is_equal"],
                            key_s._pattern(), 0, None, False, False, _names.VECTOR)
            idx = _tile.new_tile((k, 1), f32)  # the element index (+ offset) on partition i
            b.iota(idx._pattern(), [0], float(k0 + off), 1.0)
            b.nc_matmul(out._pattern(), idx._pattern(), onehot._pattern(), k0 > 0, False, False)
        count = rank[:, T - 1:T]
        # slots past the count hold 0; make them padding_val: out += (slot > count) * pad
        past = _tile.new_tile((1, T), f32)
        b.tensor_scalar(past._pattern(), slot[0:1, :]._pattern(), _ALU["is_gt"],
                        count._pattern(), _ALU["multiply"], pad, False, False, _names.VECTOR)
        res = _tile.new_tile((1, T + 1), "int32")
        b.tensor_tensor(res[:, 0:T]._pattern(), out._pattern(), past._pattern(), _ALU["add"],
                        _names.VECTOR)
        b.tensor_copy(res[:, T:T + 1]._pattern(), count._pattern(), _names.VECTOR)
        b.dma_copy(dst[p:p + 1, :]._pattern(), res._pattern(), -1, None, 0, False)
    _outputs.mark_written(dst)
    return dst


# ---- activate2 -------------------------------------------------------------------------------


def _is_bypass(op):
    return op is None or (getattr(op, "__name__", op) == "bypass")


def activate2(dst, op, data, imm0=None, imm1=None, op0=None, op1=None, relu_param=0.0,
              reverse0=False, reverse1=False, reduce_op=None, reduce_res=None,
              reduce_cmd=None, name=None, **kw):
    """dst = op((data <op0> imm0) <op1> imm1) [reduced along the free axis into reduce_res].

    The tensor-scalar stage is one Vector Engine tensor_scalar into a float32 tile, then one
    Scalar Engine activation (NKI: one Scalar Engine instruction). reduce_res takes the
    reduction of this call (reduce_cmd reset_reduce or idle); accumulating across calls
    (reduce, reset) and relu_param (parameterised activations) raise NotSupportedError.
    """
    b = _here()
    dst, data = _operand_tile(dst, "dst"), _operand_tile(data, "data")
    if float(relu_param) != 0.0:
        raise _context.fail(_err.NotSupportedError, "activate2 relu_param (parameterised "
                            "activation functions) is not supported yet")
    cmd = getattr(reduce_cmd, "name", reduce_cmd)
    if reduce_res is not None and cmd not in (None, "idle", "reset_reduce"):
        raise _context.fail(_err.NotSupportedError,
                            f"activate2 reduce_cmd={cmd}: accumulating into the Scalar Engine's "
                            "registers across instructions is not supported; use reset_reduce "
                            "and add the reduce_res tiles")
    if _is_bypass(op0) and not _is_bypass(op1):
        raise _context.fail(_err.NkiValueError, "activate2: op1 requires op0")
    src = data
    if not _is_bypass(op0):
        src = _tile.new_tile((data.partitions, data.free_size), "float32")
        flat = data if data.ndim == 2 else data.reshape((data.partitions, data.free_size))
        b.tensor_scalar(src._pattern(), _ap(flat), _alu(op0), _isa_base._scalar(imm0),
                        0 if _is_bypass(op1) else _alu(op1),
                        None if _is_bypass(op1) else _isa_base._scalar(imm1), bool(reverse0),
                        bool(reverse1), _names.VECTOR)
        if dst.ndim != 2:
            src = src.reshape(tuple(dst.shape))
    if reduce_res is not None:
        return _isa_base.activation(dst=dst, op=op, data=src, reduce_op=reduce_op or "add",
                                    reduce_res=reduce_res)
    return _isa_base.activation(dst=dst, op=op, data=src)


# ---- topk ------------------------------------------------------------------------------------

_SNAKE = 16  # partitions of one topk snake group
_NEG_INF = float("-inf")


def topk(*args, **kw):
    """The k largest values of each 16-partition group and their snake indices (NKI 2.33.0's
    nki.isa.topk: ``topk(val_dst, idx_dst, src, n, sorted=False)``).

    Within group g (partitions 16g..16g+15) snake element i is src[16g + i % 16, i // 16] for
    i < n; result j (j < k, k = val_dst's free size) is written to partition 16g + j % 16,
    free position j // 16 of val_dst (bf16) and idx_dst (uint32, the snake index i). trnsim
    writes the results largest first, and leaves the slots of results >= k unwritten.

    Composed: each group's snake is gathered into one row (SBUF DMAs per partition, padding
    past n set to -inf), then ceil(k / 8) Vector Engine rounds of max8 + nc_match_replace8
    (which returns the indices of the 8 values it replaces, duplicates included), and the
    results are scattered back into the snake layout by DMA.
    """
    b = _here()
    a = dict(zip(["val_dst", "idx_dst", "src", "n", "sorted"], args))
    a.update(kw)
    vd, idd, src = (_operand_tile(a.get(k), k) for k in ("val_dst", "idx_dst", "src"))
    if a.get("sorted", False):
        raise _context.fail(_err.NotSupportedError,
                            "topk(sorted=True): the NKI 2.33.0 reference trnsim follows does not "
                            "say which order sorted=True gives; use sorted=False (trnsim's results "
                            "come largest first)")
    n = int(a.get("n"))
    if (_dtypes.dtname(src.dtype), _dtypes.dtname(vd.dtype), _dtypes.dtname(idd.dtype)) != \
            ("bfloat16", "bfloat16", "uint32"):
        raise _context.fail(_err.VerifyError, "topk: src and val_dst must be bfloat16 and idx_dst "
                            "uint32")
    if src.ndim != 2 or vd.ndim != 2 or idd.ndim != 2:
        raise _context.fail(_err.VerifyError, "topk takes 2-D tiles [par_dim, free]")
    P, C = src.shape
    k = vd.shape[1]
    if P % _SNAKE or vd.shape[0] != P or tuple(idd.shape) != tuple(vd.shape):
        raise _context.fail(_err.VerifyError,
                            f"topk: the partition dim ({P}) must be a multiple of 16, and val_dst "
                            f"{list(vd.shape)} and idx_dst {list(idd.shape)} must both be "
                            f"[{P}, k]")
    if not (8 <= n < 65536) or not (1 <= k < 32768 and k <= n) or C * _SNAKE < n:
        raise _context.fail(_err.VerifyError,
                            f"topk: needs 8 <= n < 65536, 1 <= k < 32768, k <= n and src free "
                            f"size >= ceil(n / 16); got n={n}, k={k}, src free size {C}")
    G = P // _SNAKE
    cols = -(-n // _SNAKE)
    width = cols * _SNAKE
    row = _tile.new_tile((G, width), "bfloat16")
    b.memset(row._pattern(), _NEG_INF, _names.VECTOR)
    for g in range(G):
        for p in range(min(_SNAKE, n)):
            cnt = -(-(n - p) // _SNAKE)  # snake elements p, p + 16, ... below n
            b.dma_copy(row[g:g + 1, p:p + _SNAKE * (cnt - 1) + 1:_SNAKE]._pattern(),
                       src[_SNAKE * g + p:_SNAKE * g + p + 1, 0:cnt]._pattern(), -1, None, 0,
                       False)
    rounds = -(-k // 8)
    vals = _tile.new_tile((G, 8 * rounds), "bfloat16")
    idx = _tile.new_tile((G, 8 * rounds), "uint32")
    for r in range(rounds):
        v8, i8 = vals[:, 8 * r:8 * r + 8], idx[:, 8 * r:8 * r + 8]
        b.max8(v8._pattern(), row._pattern())
        b.nc_match_replace8(row._pattern(), row._pattern(), v8._pattern(), _NEG_INF,
                            i8._pattern())
    for g in range(G):
        for p in range(min(_SNAKE, k)):
            cnt = -(-(k - p) // _SNAKE)  # results p, p + 16, ... below k
            part = slice(_SNAKE * g + p, _SNAKE * g + p + 1)
            picks = slice(p, p + _SNAKE * (cnt - 1) + 1, _SNAKE)
            b.dma_copy(vd[part, 0:cnt]._pattern(), vals[g:g + 1, picks]._pattern(), -1, None,
                       0, False)
            b.dma_copy(idd[part, 0:cnt]._pattern(), idx[g:g + 1, picks]._pattern(), -1, None,
                       0, False)
    _outputs.mark_written(vd)
    _outputs.mark_written(idd)
    return vd
