"""trnsim.nki.language (``nl``): NKI's tile-level language on the simulated chip.

Every call checks its operands and emits instructions through the C++ kernel builder; tiles
that results need are allocated in SBUF (PSUM for matmul and transpose results) and given back
when nothing refers to them any more. docs/nki.md lists every name and whether it works.
"""

from __future__ import annotations

import numpy as _np

from . import _core
from . import errors as _err
from ._core import ACT as _ACT
from ._core import ALU as _ALU
from ._core import HBM as _HBM
from ._core import PSUM as _PSUM
from ._core import SBUF as _SBUF
from ._core import IndexExpr, NamedDType, NkiTensor, arange, mgrid, ogrid  # noqa: F401
from ._core import here as _here

tile = NkiTensor
ndarray_type = NkiTensor

# ---- dtypes ----------------------------------------------------------------------------------
float32 = _np.float32
float16 = _np.float16
int8, int16, int32 = _np.int8, _np.int16, _np.int32
uint8, uint16, uint32 = _np.uint8, _np.uint16, _np.uint32
bool_ = _np.bool_
tfloat32 = NamedDType("tfloat32")
if _core._mld is not None:
    bfloat16 = _core._mld.bfloat16
    float8_e4m3 = _core._mld.float8_e4m3fn
    float8_e4m3fn = float8_e4m3
    float8_e5m2 = _core._mld.float8_e5m2
    float8_e3m4 = _core._mld.float8_e3m4
else:  # pragma: no cover
    bfloat16 = NamedDType("bfloat16")
    float8_e4m3 = float8_e4m3fn = NamedDType("float8_e4m3")
    float8_e5m2 = NamedDType("float8_e5m2")
    float8_e3m4 = NamedDType("float8_e3m4")
# MX formats (nki/mx.py): four fp8 values packed in a uint32 word; e8m0 scales as uint8 bytes.
float8_e4m3fn_x4 = NamedDType("float8_e4m3fn_x4")
float8_e5m2_x4 = NamedDType("float8_e5m2_x4")
float8_e8m0fnu = NamedDType("float8_e8m0fnu")
float4_e2m1fn_x4 = NamedDType("float4_e2m1fn_x4")  # four fp4 values in a uint16 word
from .registers import VirtualRegister as virtual_register  # noqa: E402


# ---- buffers -------------------------------------------------------------------------------
class _Buffer:
    def __init__(self, name, space, kind):
        self.name, self.space, self.kind = name, space, kind

    def __repr__(self):
        return f"nl.{self.name}"

    def view(self, *a, **k):
        raise _err.not_supported(f"nl.{self.name}.view")


sbuf = _Buffer("sbuf", _SBUF, None)
psum = _Buffer("psum", _PSUM, None)
hbm = _Buffer("hbm", _HBM, "output")
shared_hbm = _Buffer("shared_hbm", _HBM, "output")
private_hbm = _Buffer("private_hbm", _HBM, "internal")


class par_dim(int):
    """Marks the partition axis in a tile shape: ``(nl.par_dim(128), 512)``."""

    def __new__(cls, n):
        return super().__new__(cls, int(n))


# ---- tile_size -----------------------------------------------------------------------------
class _TileSize:
    """Hardware tile limits of the target chip (NEURON_PLATFORM_TARGET_OVERRIDE, default trn2)."""

    def _info(self):
        c = _core._CTX
        return _core.chip_info(c.chip if c else _core.target_chip())

    @property
    def pmax(self):
        return self._info()["partitions"]

    @property
    def psum_fmax(self):
        return self._info()["psum_bank_bytes"] // 4

    psum_bank_fmax = psum_fmax

    @property
    def psum_num_banks(self):
        return self._info()["psum_banks"]

    @property
    def gemm_stationary_fmax(self):
        return self._info()["pe_cols"]

    @property
    def gemm_moving_fmax(self):
        return self._info()["pe_max_moving_free"]

    bn_stats_fmax = 512
    bn_stats_dim = 6
    bn_aggr_dim = 2

    @property
    def total_available_sbuf_size(self):
        return self._info()["sbuf_bytes_per_partition"]


tile_size = _TileSize()


# ---- helpers -------------------------------------------------------------------------------
def _dt(dtype, default):
    return _core.dtname(dtype) if dtype is not None else default


def _promote(a: str, b: str) -> str:
    if a == b:
        return a
    if "float32" in (a, b) or "tfloat32" in (a, b):
        return "float32"
    fa, fb = _core.is_float(a), _core.is_float(b)
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
    return _core.new_tile(shape, core, space, user)


def _tile_of_shape(shape, core, space=_SBUF, user=None):
    return _core.new_tile(shape, core, space, user)


def _ap(x):
    if _core._MASK is not None:
        x = _core.mask_view(x)
    return x._pattern()


def _mark(dst):
    if dst is not None:
        _core.mark_written(dst)


# ---- creation ------------------------------------------------------------------------------
def ndarray(shape, dtype, buffer=None, name="", **kwargs):
    """A new tensor: on-chip (sbuf default, psum) or in HBM (hbm/shared_hbm/private_hbm)."""
    _here()
    buffer = buffer if buffer is not None else sbuf
    if isinstance(shape, int):
        shape = (shape,)
    core = _core.dtname(dtype)
    if not isinstance(buffer, _Buffer):
        if hasattr(buffer, "auto_alloc"):  # ncc.sbuf / ncc.psum
            buffer = buffer.auto_alloc()
        else:
            raise _core.fail(_err.NkiValueError, f"unknown buffer {buffer!r}")
    if buffer.space == _HBM:
        return _core.new_hbm(shape, core, dtype, name or None, buffer.kind)
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
        t = _core.new_tile(phys, core, buffer.space, dtype, name or None)
        ps = _core._row_strides(phys)
        st = tuple(ps[1:1 + pd]) + (t._rec.F,) + tuple(ps[1 + pd:])
        return NkiTensor(t._rec, tuple(int(s) for s in shape), dtype, 0, st, pd)
    return _core.new_tile(shape, core, buffer.space, dtype, name or None)


def empty_like(x, dtype=None, buffer=None, name="", **kw):
    return ndarray(x.shape, dtype if dtype is not None else x.dtype,
                   buffer if buffer is not None else x.buffer, name)


def full(shape, fill_value, dtype, buffer=None, name="", **kw):
    t = ndarray(shape, dtype, buffer, name)
    if t._rec.space == _HBM:
        raise _core.fail(_err.NotSupportedError, "nl.full/zeros/ones in HBM")
    _here().memset(_ap(t), float(fill_value), 1)
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
    core = _core.dtname(dtype)
    ones_t = _core.new_tile((n, n), core)
    b.memset(_ap(ones_t), 1.0, 1)
    t = _core.new_tile((n, n), core, user_dtype=dtype)
    b.affine_select(_ap(t), [-1], 1.0, 0.0, _ALU["is_equal"], _ap(ones_t), 0.0)
    return t


def ds(start, size):
    """A dynamic-looking slice; at trace time it is an ordinary slice."""
    return slice(start, start + size)


def _free_broadcast(x, shape):
    """A stride-0 view of x with `shape` (same rank; size-1 axes repeat)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(x.shape):
        raise _core.fail(_err.NkiValueError, "broadcast_to needs the same rank")
    st = tuple(0 if (a == 1 and b != 1) else s for a, b, s in zip(x.shape, shape, x._st))
    for a, b in zip(x.shape, shape):
        if a != b and a != 1:
            raise _core.fail(_err.NkiValueError, f"cannot broadcast {list(x.shape)} to {list(shape)}")
    return NkiTensor(x._rec, shape, x.dtype, x._off, st, x._pd)


def _broadcast_view(x, shape):
    """x broadcast to `shape` by numpy's rules. HBM tensors and free axes: a stride-0 view.
    An on-chip tile repeated along its partition axis is copied: its row goes to an HBM
    scratch tensor and comes back with partition stride 0 (two DMAs), since engines cannot
    read one partition into many."""
    _here()
    x = _core.as_tile(x, "broadcast_to source")
    shape = tuple(int(s) for s in shape)
    if shape == tuple(x.shape):
        return x
    if len(shape) < len(x.shape):
        raise _core.fail(_err.NkiValueError,
                         f"cannot broadcast {list(x.shape)} to the lower-rank {list(shape)}")
    if len(shape) > len(x.shape):
        if x._rec.space == _HBM:
            x = x.reshape((1,) * (len(shape) - len(x.shape)) + tuple(x.shape))
        else:  # keep the partition axis first: new axes go after it
            x = x[(slice(None),) + (None,) * (len(shape) - len(x.shape))]
    try:
        _np.broadcast_shapes(tuple(x.shape), shape)
    except ValueError:
        raise _core.fail(_err.NkiValueError,
                         f"cannot broadcast {list(x.shape)} to {list(shape)}") from None
    if x._rec.space != _HBM and x.shape[0] == 1 and shape[0] != 1:
        x = _partition_broadcast(x, shape[0])
    return _free_broadcast(x, shape)


def _partition_broadcast(x, n):
    """A new SBUF tile [n, ...] holding x's single partition in every partition."""
    b = _here()
    c = _core.ctx()
    core = x._rec.core
    free = tuple(x.shape[1:])
    nm = f"bcast#{c.shared.nconst}"  # unique in the launch: programs share HBM names
    c.shared.nconst += 1
    c.names.add(nm)
    tid = b.declare(_HBM, nm, core, [1] + [int(v) for v in free] if free else [1, 1], "internal")
    fshape = (1,) + (free if free else (1,))
    rec = _core._Rec(c, tid, _HBM, core, fshape, None, nm)
    row = NkiTensor(rec, (1,) + free, x.dtype)
    b.dma_copy(row._pattern(), x._pattern(), -1, None, 0, False)
    out = _core.new_tile((n,) + free, core, _SBUF, x.dtype)
    st = (0,) + _core._row_strides(free) if free else (0,)
    src = NkiTensor(rec, (n,) + free, x.dtype, 0, st, 0)
    b.dma_copy(out._pattern(), src._pattern(), -1, None, 0, False)
    return out


def broadcast_to(src, shape=None, **kw):
    """``src`` broadcast to ``shape`` by numpy's rules (``shape`` is keyword-only in NKI;
    positional also works). A size-1 partition axis is repeated into a new SBUF tile; free
    axes become stride-0 views; ``src`` itself when the shape already matches."""
    if shape is None:
        raise _core.fail(_err.NkiTypeError, "nl.broadcast_to(src, shape=...) needs a shape")
    return _broadcast_view(src, shape)


def expand_dims(data, axis):
    """A view of ``data`` with a size-1 axis inserted at ``axis`` (an int or a list)."""
    axes = [axis] if isinstance(axis, (int, _np.integer)) else list(axis)
    x = data
    for a in sorted(int(a) + (x.ndim + 1 if int(a) < 0 else 0) for a in axes):
        if a <= 0 and x._rec.space != _HBM:
            raise _core.fail(_err.NkiValueError,
                             "expand_dims: axis 0 is the partition axis; new axes go after it")
        x = x[(slice(None),) * a + (None,)]
    return x


def static_cast(input_data, dtype):
    """``input_data`` converted to ``dtype``: a Python/numpy scalar gives a numpy scalar
    (ints truncate toward zero, as C's static_cast); a tile gives a new SBUF tile (one copy
    that converts, rounding to nearest even)."""
    core = _core.dtname(dtype)
    if isinstance(input_data, NkiTensor):
        if input_data._rec.space == _HBM:
            return load(input_data, dtype=dtype)
        return copy(input_data, dtype=dtype)
    nd = _core.numpy_dtype(core, dtype if not isinstance(dtype, NamedDType) else None)
    if dtype is bool or dtype is _np.bool_:
        return _np.bool_(input_data)
    if isinstance(input_data, _np.ndarray):
        return input_data.astype(nd)
    if not _core.is_float(core) and isinstance(input_data, float):
        return nd.type(int(input_data))
    return nd.type(input_data)


# ---- data movement -------------------------------------------------------------------------
def load(src, dtype=None, mask=None, **kw):
    """HBM -> a new SBUF tile (DMA). ``src`` may be ``t[idx_tile, ...]``: the rows an index
    tile names, gathered by an indirect DMA."""
    b = _here()
    _core.check_mask(mask)
    if isinstance(src, _core.Indirect):
        core = _dt(dtype, src.base._rec.core)
        dst = _core.new_tile(src.shape, core, _SBUF, dtype if dtype is not None else src.dtype)
        b.dma_copy(_ap(dst), src.base._pattern(), -1, _ap(src.index), 1, False)
        return dst
    src = _core.as_tile(src, "nl.load source")
    core = _dt(dtype, src._rec.core)
    dst = _tile_like(src, core, _SBUF, dtype if dtype is not None else src.dtype)
    b.dma_copy(_ap(dst), _ap(src), -1, None, 0, False)
    return dst


def store(dst, value, mask=None, **kw):
    """A tile -> HBM (DMA)."""
    b = _here()
    _core.check_mask(mask)
    if isinstance(dst, _core.Indirect):  # scatter rows by an index tile
        b.dma_copy(dst.base._pattern(), _ap(value), -1, _ap(dst.index), 2, False)
        _mark(dst.base)
        return
    dst = _core.as_tile(dst, "nl.store destination")
    if not isinstance(value, NkiTensor):
        raise _core.fail(_err.NotSupportedError, "nl.store of a Python scalar")
    b.dma_copy(_ap(dst), _ap(value), -1, None, 0, False)
    _mark(dst)


def load_transpose2d(src, dtype=None, mask=None, **kw):
    """HBM [F, P] -> SBUF [P, F]: a load, then a Tensor Engine transpose."""
    _core.check_mask(mask)
    t = load(src, dtype)
    return copy(transpose(t), dtype=dtype if dtype is not None else t.dtype)


def copy(src, dtype=None, mask=None, **kw):
    b = _here()
    _core.check_mask(mask)
    src = _core.as_tile(src)
    core = _dt(dtype, src._rec.core)
    dst = _tile_like(src, core, _SBUF, dtype if dtype is not None else src.dtype)
    if src._rec.space == _HBM:
        b.dma_copy(_ap(dst), _ap(src), -1, None, 0, False)
    else:
        b.tensor_copy(_ap(dst), _ap(src), 1)
    return dst


def _assign(dst, value):
    """dst[...] = value."""
    b = _here()
    if dst._rec.space == _HBM or value._rec.space == _HBM:
        b.dma_copy(_ap(dst), _ap(value), -1, None, 0, False)
        _mark(dst)
    elif value.free_size == 1 and dst.free_size > 1 and value.partitions == dst.partitions:
        b.tensor_scalar(_ap(dst), _ap(_zero_like_shape(dst)), _ALU["add"], _ap(value), 0, None,
                        False, False, 1)
    else:
        b.tensor_copy(_ap(dst), _ap(value), 1)


def _zero_like_shape(dst):
    z = _tile_like(dst, "float32")
    _here().memset(_ap(z), 0.0, 1)
    return z


def _fill(dst, value):
    b = _here()
    if dst._rec.space == _HBM:
        raise _core.fail(_err.NotSupportedError, "assigning a scalar to an HBM tensor")
    b.memset(_ap(dst), float(value), 1)


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
            raise _core.fail(_err.NkiTypeError, "an nki.language operation needs a tile operand")
    if _is_scalar(b_):
        core = a._rec.core
        if isinstance(b_, float) and not _core.is_float(core):
            core = "float32"
        core = _dt(dtype, core)
        out = dst if dst is not None else _tile_like(a, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), _ap(a), alu, float(b_), 0, None, rev, False, 1)
        return out
    if not isinstance(b_, NkiTensor):
        raise _core.fail(_err.NkiTypeError,
                         f"cannot combine a tile with {type(b_).__name__} (numpy arrays must be "
                         "kernel arguments)")
    core = _dt(dtype, _promote(a._rec.core, b_._rec.core))
    apa, apb = _ap(a), _ap(b_)
    pa, pb = apa[3], apb[3]
    fa, fb = a.free_size, b_.free_size
    if pa == pb and fa == fb:
        out = dst if dst is not None else _tile_like(a if a.ndim >= b_.ndim else b_, core, _SBUF, dtype)
        if rev:
            bld.tensor_tensor(_ap(out), apb, apa, alu, 1)
        else:
            bld.tensor_tensor(_ap(out), apa, apb, alu, 1)
        return out
    if pa == pb and fb == 1:  # [P, F] op [P, 1]: per-partition scalar
        out = dst if dst is not None else _tile_like(a, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), apa, alu, apb, 0, None, rev, False, 1)
        return out
    if pa == pb and fa == 1:
        out = dst if dst is not None else _tile_like(b_, core, _SBUF, dtype)
        bld.tensor_scalar(_ap(out), apb, alu, apa, 0, None, not rev, False, 1)
        return out
    # General broadcasting of the free axes (stride-0 views).
    try:
        shape = _np.broadcast_shapes(a.shape, b_.shape)
    except ValueError:
        raise _core.fail(_err.VerifyError,
                         f"tile shapes {list(a.shape)} and {list(b_.shape)} do not match") from None
    if a._rec.space != _HBM and shape[0] != a.shape[0] or shape[0] != b_.shape[0]:
        raise _core.fail(_err.VerifyError,
                         f"tile shapes {list(a.shape)} and {list(b_.shape)} differ in the "
                         "partition axis; engines cannot broadcast across partitions")
    va = _free_broadcast(a if a.ndim == len(shape) else a.reshape((1,) * (len(shape) - a.ndim) + a.shape), shape)
    vb = _free_broadcast(b_ if b_.ndim == len(shape) else b_.reshape((1,) * (len(shape) - b_.ndim) + b_.shape), shape)
    out = dst if dst is not None else _core.new_tile(shape, core, _SBUF, dtype)
    x1, x2 = (vb, va) if rev else (va, vb)
    bld.tensor_tensor(_ap(out), _ap(x1), _ap(x2), alu, 1)
    return out


def _mk_binary(op, doc):
    def f(x, y, dtype=None, mask=None, **kw):
        _core.check_mask(mask)
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
    x = _core.as_tile(x)
    core = _dt(dtype, x._rec.core if _core.is_float(x._rec.core) else "float32")
    out = _tile_like(x, core, _SBUF, dtype)
    b.activation(_ap(out), _ACT[func], _ap(x), _ap(bias) if bias is not None else None,
                 _ap(scale) if isinstance(scale, NkiTensor) else float(scale), 0, None)
    return out


def _mk_act(func, doc):
    def f(x, dtype=None, mask=None, **kw):
        _core.check_mask(mask)
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
    _core.check_mask(mask)
    core = _dt(dtype, x._rec.core if _core.is_float(x._rec.core) else "float32")
    out = _tile_like(x, core, _SBUF, dtype)
    b.reciprocal(_ap(out), _ap(x), 1)
    return out


def negative(x, dtype=None, mask=None, **kw):
    _core.check_mask(mask)
    return _binary(x, -1.0, "multiply", False, None, dtype)


def invert(x, dtype=None, mask=None, **kw):
    _core.check_mask(mask)
    return _binary(x, -1, "bitwise_xor", False, None, dtype)


bitwise_not = invert


def logical_not(x, dtype=None, mask=None, **kw):
    _core.check_mask(mask)
    return _binary(x, 0.0, "is_equal", False, None, dtype)


def where(condition, x, y, dtype=None, mask=None, **kw):
    """x where condition is nonzero, else y (select on the Vector Engine)."""
    b = _here()
    _core.check_mask(mask)
    cond = _core.as_tile(condition, "nl.where condition")
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
    b.memset(_ap(xt), float(x), 1)
    out = _tile_like(cond, core, _SBUF, dtype)
    b.select_reduce(_ap(out), _ap(cond), _ap(xt), float(y), 0, None, False)
    return out


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
    x = _core.as_tile(x)
    if x._rec.space == _HBM:
        raise _core.fail(_err.VerifyError, "reductions read on-chip tiles; nl.load the data first")
    axes = _axes(axis, x.ndim)
    core = _dt(dtype, x._rec.core)
    if axes == (0,) and x._pd == 0:
        if out is None:
            out = _core.new_tile((1,) + tuple(x.shape[1:]), core, _SBUF, dtype)
        b.tensor_partition_reduce(_ap(out), _ALU[op], _ap(x))
        return out
    if 0 in axes or x._pd != 0:
        raise _core.fail(_err.NotSupportedError,
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
        raise _core.fail(_err.NotSupportedError, "a reduction over more than 4 free dimensions")
    mask = 0
    for i, (s, c, red) in enumerate(groups):
        ap += [s, c]
        if red:
            mask |= 1 << i
    kept = tuple(1 if d in axes else x.shape[d] for d in range(1, x.ndim))
    oshape = (x.shape[0],) + (kept if keepdims else tuple(k for d, k in zip(range(1, x.ndim), kept) if d not in axes))
    if out is None:
        out = _core.new_tile(oshape, core, _SBUF, dtype)
    if mask == 0:
        b.tensor_copy(_ap(out), _ap(x), 1)
        if negate:
            b.tensor_scalar(_ap(out), _ap(out), _ALU["multiply"], -1.0, 0, None, False, False, 1)
        return out
    b.tensor_reduce(_ap(out), _ALU[op], tuple(ap), mask, negate, 1)
    del rec
    return out


def sum(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _core.check_mask(mask)
    return _reduce(x, "add", axis, dtype, keepdims)


def max(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _core.check_mask(mask)
    return _reduce(x, "max", axis, dtype, keepdims)


def min(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _core.check_mask(mask)
    return _reduce(x, "min", axis, dtype, keepdims)


def prod(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    _core.check_mask(mask)
    return _reduce(x, "multiply", axis, dtype, keepdims)


def all(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _core.check_mask(mask)
    return _reduce(x, "logical_and", axis, dtype, keepdims)


def any(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):  # noqa: A001
    _core.check_mask(mask)
    return _reduce(x, "logical_or", axis, dtype, keepdims)


def mean(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    _core.check_mask(mask)
    axes = _axes(axis, x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    s = _reduce(x, "add", axis, dtype if dtype is not None else float32, keepdims)
    _here().tensor_scalar(_ap(s), _ap(s), _ALU["multiply"], 1.0 / n, 0, None, False, False, 1)
    return s


def var(x, axis=None, dtype=None, keepdims=False, mask=None, **kw):
    """Population variance along the free axis: mean(x*x) - mean(x)**2."""
    _core.check_mask(mask)
    m = mean(x, axis, float32, True)
    m2 = mean(multiply(x, x, dtype=float32), axis, float32, True)
    return subtract(m2, multiply(m, m), dtype=dtype)


# ---- matmul, transpose, softmax --------------------------------------------------------------
def transpose(x, dtype=None, mask=None, **kw):
    """[P, F] -> [F, P] on the Tensor Engine (result in PSUM). Under a mask the result is the
    whole [F, P] tile, of which the transpose of x's kept part is written."""
    b = _here()
    _core.check_mask(mask)
    x = _core.as_tile(x)
    core = _dt(dtype, x._rec.core)
    out = _core.new_tile((x.free_size, x.partitions), core, _PSUM, dtype)
    if _core._MASK is not None and x.ndim == 2:
        (plo, phi), (flo, fhi) = _core.mask_range(x, 0), _core.mask_range(x, 1)
        b.nc_transpose(_core.mask_dst(out, ((flo, fhi), (plo, phi))),
                       x[plo:phi, flo:fhi]._pattern(), 0)
        return out
    b.nc_transpose(_ap(out), _ap(x), 0)
    return out


def matmul(x, y, transpose_x=False, mask=None, **kw):
    """x @ y (x.T @ y with transpose_x=True) on the Tensor Engine; fp32 result in PSUM.

    Under a mask the result is the whole [M, N] tile; the mask cuts x and y (each axis whose
    size is the mask grid's) and the product of the kept parts is written to its rows/columns.
    """
    b = _here()
    _core.check_mask(mask)
    x = _core.as_tile(x, "nl.matmul x")
    y = _core.as_tile(y, "nl.matmul y")
    if _core._MASK is not None and x.ndim == 2 and y.ndim == 2:
        xr = (_core.mask_range(x, 0), _core.mask_range(x, 1))
        yr = (_core.mask_range(y, 0), _core.mask_range(y, 1))
        kx = xr[0] if transpose_x else xr[1]
        if kx != yr[0]:
            raise _core.fail(_err.NkiValueError,
                             f"nl.matmul mask= keeps contraction rows {list(kx)} of x but "
                             f"{list(yr[0])} of y; mask both the same way")
        rows, cols = (xr[1] if transpose_x else xr[0]), yr[1]
        out = _core.new_tile((x.shape[1] if transpose_x else x.shape[0], y.shape[1]), "float32",
                             _PSUM, float32)
        x = x[xr[0][0]:xr[0][1], xr[1][0]:xr[1][1]]
        y = y[yr[0][0]:yr[0][1], yr[1][0]:yr[1][1]]
        prev, _core._MASK = _core._MASK, None  # the cut views are the whole operands now
        try:
            b.nc_matmul(_core.mask_dst(out, (rows, cols)), _ap(_stationary(x, transpose_x)),
                        _ap(y), False, False, False)
        finally:
            _core._MASK = prev
        return out
    st = _stationary(x, transpose_x)
    ap_s = _ap(st)
    out = _core.new_tile((st.free_size, y.free_size), "float32", _PSUM, float32)
    b.nc_matmul(_ap(out), ap_s, _ap(y), False, False, False)
    return out


def _stationary(x, transposed):
    """x as the Tensor Engine's stationary operand [K, M]: x itself, or x.T copied to SBUF."""
    if transposed:
        return x
    xt = transpose(x)
    st = _core.new_tile(xt.shape, x._rec.core, _SBUF, x.dtype)
    _here().tensor_copy(_ap(st), _ap(xt), 1)
    return st


def softmax(x, axis=-1, dtype=None, mask=None, **kw):
    """exp(x - max) / sum(exp(x - max)) along the free axis (fused max/exp/sum/scale)."""
    b = _here()
    _core.check_mask(mask)
    x = _core.as_tile(x)
    axes = _axes(axis, x.ndim)
    if 0 in axes:
        raise _core.fail(_err.NotSupportedError, "softmax over the partition axis")
    m = _reduce(x, "max", None, float32, True)
    negm = _binary(m, -1.0, "multiply", False, None, None)
    core = _dt(dtype, x._rec.core)
    e = _tile_like(x, core, _SBUF, dtype)
    s = _core.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(e), _ACT["exp"], _ap(x), _ap(negm), 1.0, _ALU["add"], _ap(s))
    r = _core.new_tile((x.shape[0], 1), "float32")
    b.reciprocal(_ap(r), _ap(s), 1)
    b.tensor_scalar(_ap(e), _ap(e), _ALU["multiply"], _ap(r), 0, None, False, False, 1)
    return e


def dropout(x, rate, dtype=None, mask=None, **kw):
    b = _here()
    _core.check_mask(mask)
    core = _dt(dtype, x._rec.core)
    out = _tile_like(x, core, _SBUF, dtype)
    b.dropout(_ap(out), _ap(x), _ap(rate) if isinstance(rate, NkiTensor) else float(rate), 1)
    return out


def rand(shape, dtype=float32, **kw):
    b = _here()
    out = _core.new_tile(shape, _core.dtname(dtype), _SBUF, dtype)
    b.rand2(_ap(out), 0.0, 1.0, 1)
    return out


def random_seed(seed, **kw):
    b = _here()
    s = _core.new_tile((_core.ctx().info["partitions"], 1), "uint32")
    if isinstance(seed, NkiTensor):
        s = seed
    else:
        b.iota(_ap(s), [0], float(int(seed)), 1.0)
    b.set_rng_seed(_ap(s), 1)


sum._alu, max._alu, min._alu, prod._alu = "add", "max", "min", "multiply"  # noqa: A001
all._alu, any._alu = "logical_and", "logical_or"
copy._act = "copy"
reciprocal._act = "reciprocal"


# ---- loops and SPMD ------------------------------------------------------------------------
def affine_range(*args, **kw):
    """A loop with no loop-carried dependency; unrolled by running it."""
    return range(*args)


def sequential_range(*args, **kw):
    return range(*args)


def static_range(*args, **kw):
    return range(*args)


def dynamic_range(*args, **kw):
    # Traced like the others: the loop runs at trace time and its body is emitted each turn.
    return range(*args)


def program_id(axis=0):
    c = _core.ctx()
    if axis >= len(c.grid):
        raise _core.fail(_err.NkiValueError, f"program_id({axis}) on a {len(c.grid)}-D grid")
    return c.pid[axis] if axis < len(c.pid) else 0


def num_programs(axes=None):
    c = _core.ctx()
    if axes is None:
        n = 1
        for g in c.grid:
            n *= g
        return n
    if isinstance(axes, (tuple, list)):
        n = 1
        for a in axes:
            n *= c.grid[a]
        return n
    return c.grid[axes]


def program_ndim():
    return len(_core.ctx().grid)


from .spmd_reduce import all_reduce  # noqa: E402  (reduce across the programs of a grid)


spmd_dim = _core.SpmdDim  # kernel[nl.spmd_dim(nl.nc(2), 2), 2]: grid axes split over cores
nc = _core.NcDim  # kernel[nl.nc(2), 2]: this grid axis spreads its programs over 2 cores


_TARGETS: dict = {}


def _assign_target():
    """The value now bound to the name that the calling statement assigns the result to
    (``b = nl.loop_reduce(...)`` gives b's value before the assignment), or None."""
    import dis
    import sys
    f = sys._getframe(1)
    pkg = _core._PKG
    while f is not None and f.f_code.co_filename.startswith(pkg):
        f = f.f_back
    if f is None:
        return None
    code = f.f_code
    instrs = _TARGETS.get(code)
    if instrs is None:
        instrs = _TARGETS[code] = [(i.offset, i.opname, i.argval) for i in dis.get_instructions(code)]
    lasti = f.f_lasti
    for off, opname, name in instrs:
        if off <= lasti:
            continue
        if opname in ("STORE_FAST", "STORE_DEREF"):
            return f.f_locals.get(name)
        if opname == "STORE_NAME":
            return f.f_locals.get(name, f.f_globals.get(name))
        if opname == "STORE_GLOBAL":
            return f.f_globals.get(name)
        return None
    return None


def loop_reduce(x, op, loop_indices, *, dtype=None, mask=None, **kw):
    """``b = nl.loop_reduce(a, op, loop_indices=[k])`` is ``b = op(b, a)`` computed in place
    in ``b``'s tile (NKI: "the destination tile is also an input to op"); ``b`` is the name
    the statement assigns to. When that name holds no tile yet, the result is a copy of
    ``a`` (op applied to op's identity)."""
    b = _here()
    from . import isa as _isa
    x = _core.as_tile(x, "nl.loop_reduce x")
    alu = _isa._alu(op)
    target = _assign_target()
    if isinstance(target, NkiTensor) and target._rec.space != _HBM:
        if tuple(target.shape) != tuple(x.shape):
            raise _core.fail(_err.NkiValueError,
                             f"nl.loop_reduce: the destination has shape {list(target.shape)} "
                             f"but x has {list(x.shape)}")
        b.tensor_tensor(_ap(target), _ap(target), _ap(x), alu, 1)
        return target
    core = _dt(dtype, x._rec.core)
    out = _tile_like(x, core, _SBUF, dtype)
    b.tensor_copy(_ap(out), _ap(x), 1)
    return out


def device_print(prefix, x, **kw):
    """Prints a tile's values (as they are at this point of the kernel) after the run."""
    b = _here()
    c = _core.ctx()
    if not isinstance(x, NkiTensor):
        c.prints.append((str(prefix), None, None))
        return
    shape = (x.partitions, x.free_size)
    c.n += 1
    nm = c.unique(f"print#{c.n}")
    tid = b.declare(_HBM, nm, x._rec.core, list(shape), "internal")
    snap = _core._Rec(c, tid, _HBM, x._rec.core, shape, None, nm)
    b.dma_copy(_ap(NkiTensor(snap, shape, x.dtype)), _ap(x), -1, None, 0, False)
    c.prints.append((str(prefix), nm, x._rec.core))


# ---- composite math (several instructions each) ---------------------------------------------
_LN2 = 0.6931471805599453


def _float_core(x, dtype):
    return _dt(dtype, x._rec.core if _core.is_float(x._rec.core) else "float32")


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
    x = _core.as_tile(x)
    out = _tile_like(x, _dt(dtype, x._rec.core), _SBUF, dtype)
    b.tensor_scalar(_ap(out), _ap(x), _ALU["max"], float(a_min), _ALU["min"], float(a_max),
                    False, False, 1)
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
    x = _core.as_tile(x)
    w = _core.as_tile(w, "nl.rms_norm w")
    core = _float_core(x, dtype if dtype is not None else compute_dtype)
    ss = _reduce(_act(x, "square", "float32"), "add", axis, "float32", True)
    eps = _core.new_tile((x.shape[0], 1), "float32")
    b.memset(_ap(eps), float(epsilon), 1)
    r = _core.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(r), _ACT["rsqrt"], _ap(ss), _ap(eps), 1.0 / float(n), 0, None)
    y = _binary(x, r, "multiply", False, None, "float32")
    if w.shape[0] == 1 and x.shape[0] != 1:
        w = _broadcast_view(w, tuple(x.shape))
    return _binary(y, w, "multiply", False, None, core)


def logsumexp(x, axis=-1, *, dtype=None, keepdims=False, mask=None, **kw):
    """log(sum(exp(x), axis)) computed as max + log(sum(exp(x - max)))."""
    b = _here()
    x = _core.as_tile(x)
    m = _reduce(x, "max", axis, "float32", True)
    negm = _binary(m, -1.0, "multiply", False, None, "float32")
    e = _tile_like(x, "float32")
    s = _core.new_tile((x.shape[0], 1), "float32")
    b.activation(_ap(e), _ACT["exp"], _ap(x), _ap(negm), 1.0, _ALU["add"], _ap(s))
    return _binary(_act(s, "log", "float32"), m, "add", False, None, _float_core(x, dtype))


def _argbest(x, negate):
    b = _here()
    x = _core.as_tile(x)
    if negate:
        x = _binary(x, -1.0, "multiply", False, None, "float32")
    P = _ap(x)[3]
    top = _core.new_tile((P, 8), x._rec.core)
    b.max8(_ap(top), _ap(x))
    idx = _core.new_tile((P, 8), "uint32", _SBUF, uint32)
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
    x = _core.as_tile(x)
    ones_t = _tile_like(x, "float32")
    b.memset(_ap(ones_t), 1.0, 1)
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
    from . import isa as _isa
    alu = _isa._alu(op)
    if isinstance(dst, _core.Indirect):
        base, idx = dst.base, dst.index
        rshape = tuple(dst.shape[1:])
        rows = dst.shape[0]
        core = base._rec.core
        for r in range(rows):
            ir = idx[r:r + 1]
            row = _core.new_tile((1,) + rshape, core)
            b.dma_copy(_ap(row), base._pattern(), -1, ir._pattern(), 1, False)
            if isinstance(value, NkiTensor):
                v = _core.new_tile((1,) + rshape, value._rec.core)
                b.dma_copy(v._pattern(), value[r:r + 1]._pattern(), -1, None, 0, False)
                b.tensor_tensor(row._pattern(), row._pattern(), v._pattern(), alu, 1)
            else:
                b.tensor_scalar(row._pattern(), row._pattern(), alu, float(value), 0, None,
                                False, False, 1)
            b.dma_copy(base._pattern(), row._pattern(), -1, ir._pattern(), 2, False)
        _mark(base)
        return
    dst = _core.as_tile(dst, "nl.atomic_rmw destination")
    if dst._rec.space != _HBM:
        raise _core.fail(_err.VerifyError, "nl.atomic_rmw updates HBM; the destination is on chip")
    cur = load(dst)
    if isinstance(value, NkiTensor):
        b.tensor_tensor(_ap(cur), _ap(cur), _ap(value), alu, 1)
    else:
        b.tensor_scalar(_ap(cur), _ap(cur), alu, float(value), 0, None, False, False, 1)
    b.dma_copy(_ap(dst), _ap(cur), -1, None, 0, False)
    _mark(dst)


def gather_flattened(data, indices, *, mask=None, dtype=None, **kw):
    """out[p, j] = data[p, indices[p, j]] over each partition's flattened free axes (NKI:
    up to 128 gathers in parallel). Done as one GpSimd local_gather, whose index runs over a
    16-partition group, after adding (p % 16) * free_size to the indices (iota + 2 ALU ops).
    An index past the free size reads a neighbouring partition of the group, or fails past the
    group (NKI: garbage values)."""
    data = _core.as_tile(data, "gather_flattened data")
    indices = _core.as_tile(indices, "gather_flattened indices")
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
        raise _core.fail(_err.VerifyError, f"{what} reads on-chip tiles; nl.load first")
    P = _ap(data)[3]
    F = data.free_size
    pid = _core.new_tile((P, 1), "int32")
    b.iota(_ap(pid), [0], 0.0, 1.0)
    base = _core.new_tile((P, 1), "int32")
    b.tensor_scalar(_ap(base), _ap(pid), _ALU["mod"], 16.0, _ALU["multiply"], float(F),
                    False, False, 1)
    adj = _tile_like(indices, "int32")
    b.tensor_scalar(_ap(adj), _ap(indices), _ALU["add"], _ap(base), 0, None, False, False, 1)
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
            raise _core.fail(_err.NotSupportedError,
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
        core = _core.dtname(dtype)
        arr = arr.astype(_core.numpy_dtype(core, dtype)) if core not in ("bfloat16",) else arr
    elif arr.dtype == _np.float64:
        arr = arr.astype(_np.float32)
    elif arr.dtype == _np.int64:
        arr = arr.astype(_np.int32)
    elif arr.dtype == _np.bool_:
        arr = arr.astype(_np.uint8)
    core = _core.dtname(dtype if dtype is not None else arr.dtype)
    if core in ("bfloat16", "float8_e4m3", "float8_e5m2", "float8_e3m4"):
        arr = arr.astype(_np.float32)
    return _core.new_constant(arr, core, dtype if dtype is not None else arr.dtype)


# ---- mask= on every call that takes it ----------------------------------------------------
def _wrap_masked(ns, module):
    import inspect
    for name, f in list(ns.items()):
        if name.startswith("_") or not inspect.isfunction(f) or f.__module__ != module:
            continue
        if "mask" in inspect.signature(f).parameters and not getattr(f, "_masked", False):
            ns[name] = _core.masked(f)


_wrap_masked(globals(), __name__)


# ---- names of the public API that do not work: nki/api.py says which and why -------------
def __getattr__(name):
    from . import api
    reason = api.unsupported("nki.language").get(name)
    if reason is not None:
        return api.not_supported_stub("nki.language", name, reason)
    raise AttributeError(f"module 'nki.language' has no attribute '{name}'")
