"""trnsim.nki.language (``nl``): NKI's tile-level language on the simulated chip.

Every call checks its operands and emits instructions through the C++ kernel builder; tiles
that results need are allocated in SBUF (PSUM for matmul and transpose results) and given back
when nothing refers to them any more. docs/nki.md lists every name and whether it works.
"""

from __future__ import annotations

import numpy as _np

from . import _context, _dtypes, _grid, _mask, _names, _ops, _tile
from . import _nl_base, _nl_elementwise, _nl_math, _nl_reduce
from . import errors as _err
# The buffers and the language's parts (each with one job); this module is their public face.
from ._buffers import _Buffer, hbm, private_hbm, psum, sbuf, shared_hbm  # noqa: F401
from ._context import here as _here
from ._dtypes import NamedDType
from ._index import IndexExpr, arange, mgrid, ogrid  # noqa: F401
from ._names import HBM as _HBM
from ._names import SBUF as _SBUF
# Helpers the other modules of the package (isa.py, mx.py, ...) use as nl._name:
from ._nl_base import _ap, _assign, _broadcast_view, _dt, _fill, _promote, _tile_like  # noqa: F401
from ._nl_elementwise import _binary  # noqa: F401
from ._nl_math import _gather_within_partitions  # noqa: F401
from ._nl_reduce import _reduce  # noqa: F401
from ._nl_base import (broadcast_to, copy, ds, empty_like, expand_dims, full, full_like, load,
                       ndarray, ones, ones_like, par_dim, shared_identity_matrix, static_cast,
                       store, zeros, zeros_like)  # noqa: F401
from ._nl_elementwise import (abs, add, arctan, bitwise_and, bitwise_not, bitwise_or,
                              bitwise_xor, cos, divide, equal, erf, exp, fmod, gelu,
                              gelu_apprx_tanh, gelu_dx, greater, greater_equal, invert,
                              left_shift, less, less_equal, log, logical_and, logical_not,
                              logical_or, logical_xor, maximum, minimum, mish, mod, multiply,
                              negative, not_equal, power, reciprocal, relu, right_shift, rsqrt,
                              sigmoid, sign, silu, silu_dx, sin, softplus, sqrt, square,
                              subtract, tanh, where)  # noqa: F401
from ._nl_reduce import (all, any, dropout, load_transpose2d, matmul, max, mean, min, prod,
                         rand, random_seed, softmax, sum, transpose, var)  # noqa: F401
from ._nl_math import (arccos, arcsin, argmax, argmin, atomic_rmw, ceil, clip, cosh, cumsum,
                       erf_dx, exp2, expm1, floor, fori_loop, gather_flattened,
                       gelu_apprx_sigmoid, gelu_apprx_sigmoid_dx, isfinite, isinf, isnan, log1p,
                       log2, logsumexp, mish_dx, rms_norm, shared_constant, sinh, softplus_dx,
                       tan, transpose2d, trunc, while_loop)  # noqa: F401
from ._tile import NkiTensor
from . import _tile_ops  # noqa: F401,E402  (gives tiles nki.language's operators)

tile = NkiTensor
ndarray_type = NkiTensor

# ---- dtypes ----------------------------------------------------------------------------------
float32 = _np.float32
float16 = _np.float16
int8, int16, int32 = _np.int8, _np.int16, _np.int32
uint8, uint16, uint32 = _np.uint8, _np.uint16, _np.uint32
bool_ = _np.bool_
tfloat32 = NamedDType("tfloat32")
if _dtypes._mld is not None:
    bfloat16 = _dtypes._mld.bfloat16
    float8_e4m3 = _dtypes._mld.float8_e4m3fn
    float8_e4m3fn = float8_e4m3
    float8_e5m2 = _dtypes._mld.float8_e5m2
    float8_e3m4 = _dtypes._mld.float8_e3m4
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

# ---- tile_size -----------------------------------------------------------------------------
class _TileSize:
    """Hardware tile limits of the target chip (NEURON_PLATFORM_TARGET_OVERRIDE, default trn2)."""

    def _info(self):
        c = _context._CTX
        return _context.chip_info(c.chip if c else _grid.target_chip())

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
    c = _context.ctx()
    if axis >= len(c.grid):
        raise _context.fail(_err.NkiValueError, f"program_id({axis}) on a {len(c.grid)}-D grid")
    return c.pid[axis] if axis < len(c.pid) else 0


def num_programs(axes=None):
    c = _context.ctx()
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
    return len(_context.ctx().grid)


from .spmd_reduce import all_reduce  # noqa: E402  (reduce across the programs of a grid)


spmd_dim = _grid.SpmdDim  # kernel[nl.spmd_dim(nl.nc(2), 2), 2]: grid axes split over cores
nc = _grid.NcDim  # kernel[nl.nc(2), 2]: this grid axis spreads its programs over 2 cores


_TARGETS: dict = {}


def _assign_target():
    """The value now bound to the name that the calling statement assigns the result to
    (``b = nl.loop_reduce(...)`` gives b's value before the assignment), or None."""
    import dis
    import sys
    f = sys._getframe(1)
    pkg = _context._PKG
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
    x = _tile.as_tile(x, "nl.loop_reduce x")
    alu = _ops._alu(op)
    target = _assign_target()
    if isinstance(target, NkiTensor) and target._rec.space != _HBM:
        if tuple(target.shape) != tuple(x.shape):
            raise _context.fail(_err.NkiValueError,
                                f"nl.loop_reduce: the destination has shape {list(target.shape)} "
                                f"but x has {list(x.shape)}")
        b.tensor_tensor(_ap(target), _ap(target), _ap(x), alu, _names.VECTOR)
        return target
    core = _dt(dtype, x._rec.core)
    out = _tile_like(x, core, _SBUF, dtype)
    b.tensor_copy(_ap(out), _ap(x), _names.VECTOR)
    return out


def device_print(prefix, x, **kw):
    """Prints a tile's values (as they are at this point of the kernel) after the run."""
    b = _here()
    c = _context.ctx()
    if not isinstance(x, NkiTensor):
        c.prints.append((str(prefix), None, None))
        return
    shape = (x.partitions, x.free_size)
    c.n += 1
    nm = c.unique(f"print#{c.n}")
    tid = b.declare(_HBM, nm, x._rec.core, list(shape), "internal")
    snap = _context._Rec(c, tid, _HBM, x._rec.core, shape, None, nm)
    b.dma_copy(_ap(NkiTensor(snap, shape, x.dtype)), _ap(x), -1, None, 0, False)
    c.prints.append((str(prefix), nm, x._rec.core))

# ---- mask= on every call that takes it ----------------------------------------------------
def _wrap_masked(ns, modules):
    import inspect
    for name, f in list(ns.items()):
        if name.startswith("_") or not inspect.isfunction(f) or f.__module__ not in modules:
            continue
        if "mask" in inspect.signature(f).parameters and not getattr(f, "_masked", False):
            ns[name] = _mask.masked(f)


_wrap_masked(globals(), {__name__, _nl_base.__name__, _nl_elementwise.__name__,
                         _nl_reduce.__name__, _nl_math.__name__})


# ---- names of the public API that do not work: nki/api.py says which and why -------------
def __getattr__(name):
    from . import api
    reason = api.unsupported("nki.language").get(name)
    if reason is not None:
        return api.not_supported_stub("nki.language", name, reason)
    raise AttributeError(f"module 'nki.language' has no attribute '{name}'")
