"""trnsim.nki.isa (``nisa``): one call per instruction, with NKI's keyword names.

Both API generations work: the current one writes into ``dst`` (``nisa.nc_matmul(dst,
stationary, moving)``, ``nisa.dma_copy(dst=, src=)``); the older one returns a new tile
(``nisa.nc_matmul(stationary, moving)``). Ops are numpy ufuncs (np.add, np.maximum, ...),
nki.language functions (nl.add, nl.exp, ...) or their names.
"""

from __future__ import annotations

import enum as _enum

import numpy as _np

from . import _context, _dtypes, _grid, _index, _isa_base, _mask, _names, _outputs, _tile
from . import errors as _err
from . import language as _nl
from ._names import ACT as _ACT
from ._names import ALU as _ALU
from ._ops import _ACT_NAMES, _ALU_NAMES, _act, _alu  # noqa: F401  (also used as isa._alu)
from ._names import HBM as _HBM
from ._names import PSUM as _PSUM
from ._names import SBUF as _SBUF
from ._isa_base import _ap, _is_tile, _mark, _new, _scalar, _split
from ._isa_base import activation, activation_reduce, nc_matmul  # noqa: F401
from ._tile import NkiTensor
from ._context import here as _here


class engine(_enum.IntEnum):  # noqa: N801 (NKI's name)
    unknown = 0
    tensor = 1
    scalar = 2
    gpsimd = 3
    dma = 4
    vector = 5
    sync = 6


# The older API's engine names.
tensor_engine, vector_engine, scalar_engine = engine.tensor, engine.vector, engine.scalar
gpsimd_engine, unknown_engine = engine.gpsimd, engine.unknown

# nisa.engine value -> arch::Engine number of the core, matched by name (unknown: the call's
# default engine)
_ENGINE_CORE = {int(e): _names.ENGINE.get(e.name) for e in engine}


class reduce_cmd(_enum.IntEnum):  # noqa: N801
    idle = 0
    reset = 1
    reduce = 2
    reset_reduce = 3
    load_reduce = 4


class dge_mode(_enum.IntEnum):  # noqa: N801
    none = 0
    swdge = 1
    hwdge = 2
    unknown = 3


class oob_mode(_enum.IntEnum):  # noqa: N801
    error = 0
    skip = 1


class matmul_perf_mode(_enum.Enum):  # noqa: N801
    none = "none"
    double_row = "double_row"


class dma_engine(_enum.IntEnum):  # noqa: N801
    dma = 0


class nc_version(_enum.IntEnum):  # noqa: N801
    gen2 = 2
    gen3 = 3
    gen4 = 4


def get_nc_version():
    chip = _context._CTX.chip if _context._CTX else _grid.target_chip()
    return {"trn1": nc_version.gen2, "trn2": nc_version.gen3, "trn3": nc_version.gen4}.get(
        chip, nc_version.gen3)


# ---- operand helpers -----------------------------------------------------------------------
def _eng(e, default: int) -> int:
    if e is None:
        return default
    if isinstance(e, str):
        return _names.ENGINE[e]
    v = _ENGINE_CORE.get(int(e))
    return default if v is None else v


# ---- Tensor Engine (nc_matmul: _isa_base.py) ----------------------------------------------


def nc_transpose(*args, **kw):
    """dst[F, P] = data[P, F] on the Tensor Engine (to PSUM) or the Vector Engine (<= 32x32)."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and all(_is_tile(x) for x in args[:2]))
    a = _split(args, kw, ["dst", "data", "engine"] if new_style else ["data", "engine"])
    data = a["data"]
    e = _eng(a.get("engine"), _names.TENSOR)
    if new_style:
        dst = a["dst"]
    else:  # the whole transposed tile; a mask decides only which part is written
        dst = _tile.new_tile((data.free_size, data.partitions), data._rec.core,
                             _PSUM if e == 0 else _SBUF, a.get("dtype"))
    b.nc_transpose(_transposed_dst(dst, data), _ap(data), e)
    return dst


def _transposed_dst(dst, data):
    """dst's pattern for a transpose of ``data``: under a mask, the part of dst that the
    masked part of data lands on (data's row range becomes dst's column range)."""
    if _mask._MASK is None or data.ndim != 2 or dst.ndim != 2:
        return _ap(dst)
    (plo, phi), (flo, fhi) = _mask.mask_range(data, 0), _mask.mask_range(data, 1)
    return _mask.mask_dst(dst, ((flo, fhi), (plo, phi)))


# activation, activation_reduce: _isa_base.py (the composed instructions call them)


# ---- Vector / GpSimd engines -----------------------------------------------------------------


def tensor_tensor(*args, **kw):
    """dst = data1 <op> data2, elementwise (Vector or GpSimd Engine)."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 3 and all(_is_tile(x) for x in args[:3]))
    a = _split(args, kw, ["dst", "data1", "data2", "op", "engine"] if new_style
               else ["data1", "data2", "op", "dtype", "engine"])
    d1, d2 = a["data1"], a["data2"]
    if new_style:
        dst = a["dst"]
    else:
        dt = a.get("dtype")
        dst = _new(d1, dt, core=None if dt is not None else _nl._promote(d1._rec.core, d2._rec.core))
    b.tensor_tensor(_ap(dst), _ap(d1), _ap(d2), _alu(a["op"]), _eng(a.get("engine"), _names.VECTOR))
    return dst


def tensor_scalar(*args, **kw):
    """dst = (data <op0> operand0) <op1> operand1 with per-partition or immediate scalars."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    names = ["op0", "operand0", "reverse0", "op1", "operand1", "reverse1"]
    a = _split(args, kw, (["dst", "data"] if new_style else ["data"]) + names)
    data = a["data"]
    dst = a["dst"] if new_style else _new(data, a.get("dtype"))
    op1 = a.get("op1")
    b.tensor_scalar(_ap(dst), _ap(data), _alu(a["op0"]), _scalar(a["operand0"]), _alu(op1),
                    _scalar(a.get("operand1")) if op1 is not None else None,
                    bool(a.get("reverse0", False)), bool(a.get("reverse1", False)),
                    _eng(a.get("engine"), _names.VECTOR))
    return dst


def scalar_tensor_tensor(*args, **kw):
    """dst = (data <op0> operand0) <op1> operand1 where operand1 is a tile."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    names = ["op0", "operand0", "op1", "operand1"]
    a = _split(args, kw, (["dst", "data"] if new_style else ["data"]) + names)
    data = a["data"]
    dst = a["dst"] if new_style else _new(data, a.get("dtype"))
    b.scalar_tensor_tensor(_ap(dst), _ap(data), _alu(a["op0"]), _scalar(a["operand0"]),
                           _alu(a["op1"]), _ap(a["operand1"]), _eng(a.get("engine"), _names.VECTOR))
    return dst


def tensor_scalar_reduce(*args, **kw):
    """tensor_scalar with one op, plus a reduction of the result along the free axis."""
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, (["dst", "data"] if new_style else ["data"])
               + ["op0", "operand0", "reduce_op", "reduce_res"])
    dst = tensor_scalar(**({"dst": a["dst"]} if new_style else {}), data=a["data"], op0=a["op0"],
                        operand0=a["operand0"], dtype=a.get("dtype"))
    res = a["reduce_res"]
    b = _here()
    ap = dst._pattern()
    nfree = (len(ap) - 5) // 2
    b.tensor_reduce(_ap(res), _alu(a["reduce_op"]), ap, list(range(1, nfree + 1)) or [1], False,
                    _names.VECTOR)
    return dst


def tensor_reduce(*args, **kw):
    """Reduces the free axes `axis` of data with op (Vector Engine)."""
    new_style = "dst" in kw or (len(args) >= 1 and _is_tile(args[0]))
    a = _split(args, kw, (["dst"] if new_style else []) + ["op", "data", "axis", "negate", "keepdims"])
    data, axis = a["data"], a.get("axis")
    op = _alu(a["op"])
    name = [k for k, v in _ALU.items() if v == op][0]
    # New style reduces straight into dst: one instruction, as on hardware.
    return _nl._reduce(data, name, axis, a.get("dtype"), bool(a.get("keepdims", False)),
                       bool(a.get("negate", False)), out=a["dst"] if new_style else None)


def tensor_partition_reduce(*args, **kw):
    """dst[0, f] = reduce over partitions of data[p, f] (GpSimd Engine)."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 1 and _is_tile(args[0]))
    a = _split(args, kw, (["dst"] if new_style else []) + ["op", "data"])
    data = a["data"]
    dst = a["dst"] if new_style else _tile.new_tile((1, data.free_size), _dtypes.dtname(a["dtype"])
                                                    if a.get("dtype") is not None else data._rec.core)
    b.tensor_partition_reduce(_ap(dst), _alu(a["op"]), _ap(data))
    return dst


def tensor_copy(*args, **kw):
    """dst = src (with a cast to dst's dtype) on the Vector, Scalar or GpSimd Engine."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, ["dst", "src", "engine"] if new_style else ["src", "dtype", "engine"])
    src = a["src"]
    dst = a["dst"] if new_style else _new(src, a.get("dtype"))
    if dst._rec.space == _HBM or src._rec.space == _HBM:
        b.dma_copy(_ap(dst), _ap(src), -1, None, 0, False)
        _mark(dst)
    else:
        b.tensor_copy(_ap(dst), _ap(src), _eng(a.get("engine"), _names.VECTOR))
    return dst


def tensor_copy_predicated(*args, **kw):
    """dst = predicate ? src : dst (reverse_pred flips the predicate)."""
    b = _here()
    a = _split(args, kw, ["dst", "src", "predicate", "reverse_pred"])
    b.tensor_copy_predicated(_ap(a["dst"]), _ap(a["src"]), _ap(a["predicate"]),
                             bool(a.get("reverse_pred", False)), _eng(a.get("engine"),
                                                                      _names.VECTOR))
    return a["dst"]


def tensor_tensor_scan(*args, **kw):
    """r[i] = (data0[i] <op0> r[i-1]) <op1> data1[i] along the free axis, r[-1] = initial."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 3 and all(_is_tile(x) for x in args[:3]))
    a = _split(args, kw, (["dst"] if new_style else [])
               + ["data0", "data1", "initial", "op0", "op1"])
    d0 = a["data0"]
    dst = a["dst"] if new_style else _new(d0, a.get("dtype"))
    b.tensor_tensor_scan(_ap(dst), _ap(d0), _ap(a["data1"]), _scalar(a["initial"]),
                         _alu(a["op0"]), _alu(a["op1"]))
    return dst


def memset(*args, **kw):
    """dst = value. Old style memset(shape, value, dtype) returns a new tile."""
    b = _here()
    new_style = "dst" in kw or (args and _is_tile(args[0]))
    if new_style:
        a = _split(args, kw, ["dst", "value", "engine"])
        dst = a["dst"]
    else:
        a = _split(args, kw, ["shape", "value", "dtype", "engine"])
        dst = _tile.new_tile(a["shape"], _dtypes.dtname(a["dtype"]), _SBUF, a["dtype"])
    b.memset(_ap(dst), float(a["value"]), _eng(a.get("engine"), _names.VECTOR))
    return dst


def iota(*args, **kw):
    """dst[p, i...] = offset + channel_multiplier * p + sum(step_k * i_k).

    Old style ``iota(expr, dtype)`` with an nl.arange/mgrid expression returns a new tile.
    """
    b = _here()
    if "dst" in kw or (args and _is_tile(args[0])):
        a = _split(args, kw, ["dst", "pattern", "offset", "channel_multiplier"])
        dst = a["dst"]
        steps = [int(p[0]) for p in a["pattern"]]
        b.iota(_ap(dst), steps, float(a.get("offset", 0)), float(a.get("channel_multiplier", 0)))
        return dst
    a = _split(args, kw, ["expr", "dtype"])
    e = a["expr"]
    if not isinstance(e, _index.IndexExpr):
        raise _context.fail(_err.NkiTypeError, "nisa.iota(expr, dtype) takes an index expression")
    shape = e.shape
    if len(shape) == 1:
        shape = (1,) + shape
        terms = {p + 1: c for p, c in e.terms.items()}
    else:
        terms = e.terms
    dst = _tile.new_tile(shape, _dtypes.dtname(a["dtype"]), _SBUF, a["dtype"])
    steps = [int(terms.get(d, 0)) for d in range(1, len(shape))]
    b.iota(_ap(dst), steps, float(e.const), float(terms.get(0, 0)))
    return dst


def affine_select(*args, **kw):
    """dst = cmp(offset + channel_multiplier*p + sum(step_k*i_k), 0) ? on_true : on_false."""
    b = _here()
    if not ("dst" in kw or (args and _is_tile(args[0]))):
        raise _context.fail(_err.NotSupportedError,
                            "old-style nisa.affine_select(pred, ...) with an index predicate; use "
                            "affine_select(dst, pattern, channel_multiplier, on_true_tile, "
                            "on_false_value, cmp_op, offset)")
    a = _split(args, kw, ["dst", "pattern", "channel_multiplier", "on_true_tile",
                          "on_false_value", "cmp_op", "offset"])
    steps = [int(p[0]) for p in a["pattern"]]
    b.affine_select(_ap(a["dst"]), steps, float(a["channel_multiplier"]),
                    _ap(a["on_true_tile"]), float(a["on_false_value"]),
                    _alu(a.get("cmp_op", "is_equal")), float(a.get("offset", 0)))
    return a["dst"]


def range_select(*args, **kw):
    """dst = bound0 <cmp0> i <cmp1> bound1 ? on_true : on_false_value, with a max reduce."""
    b = _here()
    a = _split(args, kw, ["dst", "on_true_tile", "comp_op0", "comp_op1", "bound0", "bound1",
                          "reduce_cmd", "reduce_res", "reduce_op", "range_start", "on_false_value"])
    res = a.get("reduce_res")
    b.range_select(_ap(a["dst"]), _ap(a["on_true_tile"]), _alu(a["comp_op0"]),
                   _alu(a["comp_op1"]), _ap(a["bound0"]), _ap(a["bound1"]), _ap(res),
                   _alu(a.get("reduce_op", "max")) if res is not None else 0,
                   float(a.get("range_start", 0.0)),
                   float(a.get("on_false_value", -3.4028234663852886e38)))
    return a["dst"]


def select_reduce(*args, **kw):
    """dst = predicate ? on_true : on_false [with a reduction into reduce_res]."""
    b = _here()
    a = _split(args, kw, ["dst", "predicate", "on_true", "on_false", "reduce_res", "reduce_cmd",
                          "reduce_op", "reverse_pred"])
    res = a.get("reduce_res")
    b.select_reduce(_ap(a["dst"]), _ap(a["predicate"]), _ap(a["on_true"]),
                    _scalar(a.get("on_false", 0.0)),
                    _alu(a.get("reduce_op", "max")) if res is not None else 0, _ap(res),
                    bool(a.get("reverse_pred", False)))
    return a["dst"]


def _two(name, fn_out_shape):
    def f(*args, **kw):
        b = _here()
        new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
        a = _split(args, kw, ["dst", "data"] if new_style else ["data", "dtype"])
        data = a["data"]
        if new_style:
            dst = a["dst"]
        else:
            ap = data._pattern()
            dt = a.get("dtype")
            dst = _tile.new_tile((ap[3], fn_out_shape(data.free_size)),
                                 _dtypes.dtname(dt) if dt is not None else "float32", _SBUF, dt)
        getattr(b, name)(_ap(dst), _ap(data))
        return dst
    f.__name__ = name
    return f


bn_stats = _two("bn_stats", lambda f: 6 * ((f + 511) // 512))
bn_stats.__doc__ = "Per-partition mean/variance statistics, 6 values per 512-element chunk."
bn_aggr = _two("bn_aggr", lambda f: 2)
bn_aggr.__doc__ = "Combines bn_stats records into (mean, variance) per partition."


def max8(*args, **kw):
    """The 8 largest values of each partition, descending."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, ["dst", "src"] if new_style else ["src", "dtype"])
    src = a["src"]
    dst = a["dst"] if new_style else _tile.new_tile((src._pattern()[3], 8), src._rec.core)
    b.max8(_ap(dst), _ap(src))
    return dst


def reciprocal(*args, **kw):
    """dst = 1 / data."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, ["dst", "data"] if new_style else ["data", "dtype"])
    data = a["data"]
    dst = a["dst"] if new_style else _new(data, a.get("dtype"))
    b.reciprocal(_ap(dst), _ap(data), _eng(a.get("engine"), _names.VECTOR))
    return dst


def nc_find_index8(*args, **kw):
    """For each of the 8 vals of a partition, the index of its first occurrence in data."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 3 and all(_is_tile(x) for x in args[:3]))
    a = _split(args, kw, ["dst", "data", "vals"] if new_style else ["data", "vals", "dtype"])
    data = a["data"]
    dst = a["dst"] if new_style else _tile.new_tile((data._pattern()[3], 8), "uint32")
    b.nc_find_index8(_ap(dst), _ap(data), _ap(a["vals"]))
    return dst


def nc_match_replace8(*args, **kw):
    """dst = data with the first occurrence of each of the 8 vals replaced by imm."""
    b = _here()
    a = _split(args, kw, ["dst", "data", "vals", "imm", "dst_idx"])
    b.nc_match_replace8(_ap(a["dst"]), _ap(a["data"]), _ap(a["vals"]), float(a["imm"]),
                        _ap(a.get("dst_idx")))
    return a["dst"]


def local_gather(*args, **kw):
    """Gathers elements within each group of 16 partitions (GpSimd Engine)."""
    b = _here()
    a = _split(args, kw, ["dst", "src_buffer", "index", "num_elem_per_idx", "num_valid_indices"])
    idx = a["index"]
    nv = a.get("num_valid_indices")
    b.local_gather(_ap(a["dst"]), _ap(a["src_buffer"]), _ap(idx), int(a.get("num_elem_per_idx", 1)),
                   int(nv) if nv is not None else idx.free_size)
    return a["dst"]


def dropout(*args, **kw):
    """dst = data / (1 - prob), or 0 with probability prob."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, ["dst", "data", "prob"] if new_style else ["data", "prob", "dtype"])
    data = a["data"]
    dst = a["dst"] if new_style else _new(data, a.get("dtype"))
    b.dropout(_ap(dst), _ap(data), _scalar(a["prob"]), _eng(a.get("engine"), _names.VECTOR))
    return dst


def rng(dst, engine=None, **kw):
    """Random 32-bit values from each partition's engine RNG."""
    _here().rng(_ap(dst), _eng(engine, _names.VECTOR))
    return dst


def rand2(dst, min=0.0, max=1.0, engine=None, **kw):  # noqa: A002
    """Uniform floats in [min, max)."""
    _here().rand2(_ap(dst), _scalar(min), _scalar(max), _eng(engine, _names.VECTOR))
    return dst


def set_rng_seed(src_seeds, engine=None, **kw):
    _here().set_rng_seed(_ap(src_seeds), _eng(engine, _names.VECTOR))


def rand_set_state(src_seeds, engine=None, **kw):
    _here().rand_set_state(_ap(src_seeds), _eng(engine, _names.VECTOR))


def rand_get_state(dst, engine=None, **kw):
    _here().rand_get_state(_ap(dst), _eng(engine, _names.VECTOR))
    return dst


def exponential(dst, src, max_value=0.0, reduce_res=None, reduce_cmd=reduce_cmd.idle,
                reduce_init=0.0, name=None, **kw):
    """dst = exp(src - max_value) [reduce_res = sum of dst along the free axes]. NKI runs it on
    the Vector Engine of NeuronCore-v4; trnsim emits one Scalar Engine activation (exp with a
    per-partition bias of -max_value), so values match and the engine differs."""
    b = _here()
    P = src._pattern()[3]
    if isinstance(max_value, NkiTensor):
        bias = _tile.new_tile((P, 1), "float32")
        b.tensor_scalar(_ap(bias), _ap(max_value), _ALU["multiply"], -1.0, 0, None, False,
                        False, _names.VECTOR)
    else:
        bias = _tile.new_tile((P, 1), "float32")
        b.memset(_ap(bias), -float(max_value), _names.VECTOR)
    cmd = int(reduce_cmd) if reduce_cmd is not None else 0
    rc = globals()["reduce_cmd"]
    if reduce_res is None or cmd == int(rc.idle):
        b.activation(_ap(dst), _ACT["exp"], _ap(src), _ap(bias), 1.0, 0, None)
        return dst
    acc = reduce_res
    if cmd == int(rc.reduce):  # keep accumulating into reduce_res
        acc = _tile.new_tile((P, 1), "float32")
    b.activation(_ap(dst), _ACT["exp"], _ap(src), _ap(bias), 1.0, _ALU["add"], _ap(acc))
    if acc is not reduce_res:
        b.tensor_tensor(_ap(reduce_res), _ap(reduce_res), _ap(acc), _ALU["add"], _names.VECTOR)
    elif reduce_init and cmd != int(rc.reset):
        b.tensor_scalar(_ap(reduce_res), _ap(reduce_res), _ALU["add"], _scalar(reduce_init), 0,
                        None, False, False, _names.VECTOR)
    return dst


_CUM_INIT = {"add": 0.0, "subtract": 0.0, "multiply": 1.0, "max": float("-inf"),
             "min": float("inf")}


def tensor_scalar_cumulative(dst, src, op0, op1, imm0, imm1=None, reduce_cmd=reduce_cmd.idle,
                             reverse0=False, name=None, **kw):
    """reg = op1(op0(src[i], imm0), reg); dst[i] = reg along the free axis (a tensor_scalar,
    then a tensor_tensor_scan). reduce_cmd: reset_reduce / idle start from op1's identity,
    load_reduce from imm1, reduce from the last value of the previous
    tensor_scalar_cumulative of this kernel."""
    b = _here()
    c = _context.ctx()
    o1 = _alu(op1)
    name1 = [k for k, v in _ALU.items() if v == o1][0]
    if name1 not in _CUM_INIT:
        raise _context.fail(_err.VerifyError, "tensor_scalar_cumulative: op1 must be add, "
                            f"subtract, multiply, max or min, not {op1!r}")
    t = _new(src, core="float32")
    b.tensor_scalar(_ap(t), _ap(src), _alu(op0), _scalar(imm0), 0, None, bool(reverse0), False,
                    _names.VECTOR)
    cmd = int(reduce_cmd) if reduce_cmd is not None else 0
    if cmd == int(globals()["reduce_cmd"].load_reduce):
        initial = _scalar(imm1)
    elif cmd == int(globals()["reduce_cmd"].reduce):
        prev = getattr(c, "cumulative_reg", None)
        if prev is None:
            raise _context.fail(_err.NkiValueError, "tensor_scalar_cumulative(reduce_cmd=reduce) "
                                "continues a previous tensor_scalar_cumulative; there is none")
        initial = _ap(prev)
    else:
        initial = _CUM_INIT[name1]
    b.tensor_tensor_scan(_ap(dst), _ap(t), _ap(t), initial, o1, _ALU["bypass"])
    F = dst.free_size
    flat = dst.reshape((dst.shape[0], F)) if dst.ndim != 2 else dst
    c.cumulative_reg = flat[:, F - 1:F]
    return dst


# ---- DMA -----------------------------------------------------------------------------------


def dma_copy(*args, **kw):
    """dst = src through a DMA queue (any memory; casts to dst's dtype)."""
    b = _here()
    a = _split(args, kw, ["dst", "src"])
    dst, src = a["dst"], a["src"]
    if a.get("dst_rmw_op") is not None:
        raise _context.fail(_err.NotSupportedError, "dma_copy dst_rmw_op")
    oob = a.get("oob_mode")
    b.dma_copy(_ap(dst), _ap(src), -1, None, 0, oob is not None and int(oob) == 1)
    _mark(dst)
    return dst


def dma_transpose(*args, **kw):
    """dst[j, i] = src[i, j] through a transposing DMA (2- or 4-byte dtypes)."""
    b = _here()
    new_style = "dst" in kw or (len(args) >= 2 and _is_tile(args[0]) and _is_tile(args[1]))
    a = _split(args, kw, ["dst", "src", "axes"] if new_style else ["src", "axes", "dtype"])
    src = a["src"]
    if new_style:
        dst = a["dst"]
    else:
        ap = src._pattern()
        dst = _tile.new_tile((src.free_size, ap[3]), src._rec.core, _SBUF, src.dtype)
    b.dma_transpose(_ap(dst), _ap(src), -1)
    _mark(dst)
    return dst


# ---- communication between ranks --------------------------------------------------------


def sendrecv(src, dst, send_to_rank, recv_from_rank, pipe_id=0, dma_engine=None, name=None):
    """Sends ``src`` to rank ``send_to_rank`` and receives ``recv_from_rank``'s src into
    ``dst`` at the same time. In trnsim a rank is a simulated chip of a multi-chip run
    (nki.simulate_kernel(..., num_ranks=N)), so any rank 0..N-1 may be named, not only the two
    cores of a logical NeuronCore; the peer must call sendrecv naming this rank back."""
    b = _here()
    c = _context.ctx()
    for what, t in (("src", src), ("dst", dst)):
        if not _is_tile(t):
            raise _context.fail(_err.NkiTypeError, f"sendrecv: {what} must be a tile of the kernel")
        if t._rec.space == _PSUM:
            raise _context.fail(_err.VerifyError, f"sendrecv: {what} must be in SBUF or HBM, not PSUM")
    for what, r in (("send_to_rank", send_to_rank), ("recv_from_rank", recv_from_rank)):
        if not 0 <= int(r) < c.num_ranks:
            raise _context.fail(_err.NkiValueError,
                                f"sendrecv: {what}={int(r)} is outside the run's {c.num_ranks} "
                                f"rank(s) (0..{c.num_ranks - 1})")
    # Peers differ per rank: the program depends on the rank when the kernel computes them
    # from rank_id(); either way each rank's program is its own trace.
    b.sendrecv(_ap(dst), _ap(src), int(send_to_rank), int(recv_from_rank), int(pipe_id))
    _mark(dst)
    c.collectives += 1
    c.collective_kinds.add("sendrecv")
    return dst


def core_barrier(data, cores, engine=None, name=None):
    """Every rank of ``cores`` waits until all of them have arrived (the ranks of a
    multi-chip run in trnsim). ``data`` is the shared tensor the barrier protects. A rank not
    in ``cores`` does not take part."""
    b = _here()
    c = _context.ctx()
    try:
        ranks = [int(r) for r in cores]
    except TypeError:
        raise _context.fail(_err.NkiTypeError, f"core_barrier: cores must be a list of ranks, not {cores!r}") from None
    for r in ranks:
        if not 0 <= r < c.num_ranks:
            raise _context.fail(_err.NkiValueError,
                                f"core_barrier: rank {r} of cores={ranks} is outside the run's "
                                f"{c.num_ranks} rank(s)")
    if len(set(ranks)) != len(ranks):
        raise _context.fail(_err.NkiValueError, f"core_barrier: cores={ranks} repeats a rank")
    if sorted(ranks) != list(range(c.num_ranks)):
        c.rank_dependent = True
    if c.rank not in ranks:
        return
    b.core_barrier([ranks], _ap(data) if _is_tile(data) else None)
    c.collectives += 1
    c.collective_kinds.add("core_barrier")


# ---- mask= on every instruction -------------------------------------------------------------
def _wrap_all(ns):
    import inspect
    for name, f in list(ns.items()):
        if (name.startswith("_") or not inspect.isfunction(f)
                or f.__module__ not in (__name__, _isa_base.__name__)
                or name in ("get_nc_version",) or getattr(f, "_masked", False)):
            continue
        ns[name] = _mask.masked(f)


_wrap_all(globals())

# Instructions composed of several simulator instructions (isa_composed.py).
from .isa_composed import dma_compute, nc_n_gather, nc_stream_shuffle  # noqa: E402
from .isa_composed import activate2, nonzero_with_count, sequence_bounds, topk  # noqa: E402
from .dynamic import tensor_copy_dynamic_dst, tensor_copy_dynamic_src  # noqa: E402
from .mx import nc_matmul_mx, quantize_mx  # noqa: E402
from .registers import VirtualRegister, register_alloc, register_move  # noqa: E402,F401
from .registers import register_store  # noqa: E402

nc_stream_shuffle = _mask.masked(nc_stream_shuffle)
sequence_bounds = _mask.masked(sequence_bounds)
nc_n_gather = _mask.masked(nc_n_gather)
activate2 = _mask.masked(activate2)


# ---- names of the public API that do not work: nki/api.py says which and why -------------
def __getattr__(name):
    from . import api
    reason = api.unsupported("nki.isa").get(name)
    if reason is not None:
        return api.not_supported_stub("nki.isa", name, reason)
    raise AttributeError(f"module 'nki.isa' has no attribute '{name}'")


del _np
