"""The tracer behind trnsim.nki: kernel contexts, tiles and their access patterns, index
expressions, and the launch that builds programs, runs them on a simulated chip and reads the
outputs back.

Nothing here computes tensor values: every nki.language / nki.isa call checks its operands and
emits instructions through the one C++ kernel builder (``trnsim._trnsim.nki.Builder``); the
values come from the simulator when the program runs.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .._trnsim import nki as _cnki
from .._trnsim import sim as _csim
from . import errors as _err

try:  # ml_dtypes gives numpy names to bf16 / fp8; without it those read back as float32
    import ml_dtypes as _mld
except ImportError:  # pragma: no cover
    _mld = None

_PKG = os.path.dirname(os.path.abspath(__file__))
SBUF, PSUM, HBM = 0, 1, 2

# ---- enums of the core (values of isa::AluOp, ActFunc, arch::Engine) -------------------------

ALU = {n: i for i, n in enumerate([
    "bypass", "add", "subtract", "multiply", "divide", "max", "min", "pow", "mod", "abs_max",
    "abs_min", "is_equal", "not_equal", "is_gt", "is_ge", "is_lt", "is_le", "bitwise_and",
    "bitwise_or", "bitwise_xor", "logical_and", "logical_or", "logical_xor", "left_shift",
    "right_shift", "logical_right_shift"])}
ACT = {n: i for i, n in enumerate([
    "identity", "copy", "exp", "log", "tanh", "sigmoid", "relu", "gelu", "gelu_apprx_tanh",
    "silu", "sqrt", "rsqrt", "reciprocal", "square", "sin", "cos", "arctan", "abs", "sign",
    "softplus", "erf", "mish", "gelu_dx", "silu_dx"])}
ENGINE = {"tensor": 0, "vector": 1, "scalar": 2, "gpsimd": 3, "sync": 4, "dma": 5}


def _load_engine_numbers():
    # The engine numbers come from the core (arch::Engine); ask it once rather than guess.
    try:
        from .._trnsim import isa as _cisa  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


# ---- dtypes --------------------------------------------------------------------------------


class NamedDType:
    """A dtype numpy has no name for (tfloat32, or bf16/fp8 without ml_dtypes)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"nki.language.{self.name}"


_DT_ALIASES = {
    "float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16", "tfloat32": "tfloat32", "tf32": "tfloat32",
    "float8_e4m3": "float8_e4m3", "float8_e4m3fn": "float8_e4m3", "fp8_e4m3": "float8_e4m3",
    "float8_e5m2": "float8_e5m2", "fp8_e5m2": "float8_e5m2",
    "float8_e3m4": "float8_e3m4", "fp8_e3m4": "float8_e3m4",
    "int8": "int8", "int16": "int16", "int32": "int32", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "bool": "uint8", "bool_": "uint8",
    # MX storage (nki/mx.py): packed fp8 words and e8m0 scale bytes
    "float8_e4m3fn_x4": "uint32", "float8_e5m2_x4": "uint32", "float8_e8m0fnu": "uint8",
    "float4_e2m1fn_x4": "uint16",
}
_DT_CACHE: dict = {}


def dtname(dt) -> str:
    """The core's name of a dtype given as an nl dtype, numpy dtype/type, string or torch dtype."""
    try:
        return _DT_CACHE[dt]
    except (KeyError, TypeError):
        pass
    if isinstance(dt, NamedDType):
        name = dt.name
    elif isinstance(dt, str):
        name = dt
    else:
        name = getattr(dt, "name", None) if not isinstance(dt, type) else None
        if name is None or not isinstance(name, str):
            try:
                name = np.dtype(dt).name
            except TypeError:
                name = str(dt).replace("torch.", "")
    core = _DT_ALIASES.get(name)
    if core is None:
        raise _err.NkiTypeError(f"unsupported dtype {dt!r}")
    try:
        _DT_CACHE[dt] = core
    except TypeError:
        pass
    return core


def numpy_dtype(core: str, user=None):
    """The numpy dtype results of a core dtype are returned in."""
    if user is not None and not isinstance(user, NamedDType):
        try:
            return np.dtype(user)
        except TypeError:
            pass
    if core in ("float32", "tfloat32"):
        return np.dtype(np.float32)
    if core == "float16":
        return np.dtype(np.float16)
    if _mld is not None:
        if core == "bfloat16":
            return np.dtype(_mld.bfloat16)
        if core == "float8_e4m3":
            return np.dtype(_mld.float8_e4m3fn)
        if core == "float8_e5m2":
            return np.dtype(_mld.float8_e5m2)
        if core == "float8_e3m4":
            return np.dtype(_mld.float8_e3m4)
    if core.startswith(("float", "bfloat")):
        return np.dtype(np.float32)
    return np.dtype(core)


_DTYPE_SIZE = {"float32": 4, "tfloat32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3": 1,
               "float8_e5m2": 1, "float8_e3m4": 1, "int8": 1, "int16": 2, "int32": 4,
               "uint8": 1, "uint16": 2, "uint32": 4}
_FLOATS = {"float32", "tfloat32", "float16", "bfloat16", "float8_e4m3", "float8_e5m2",
           "float8_e3m4"}


def is_float(core: str) -> bool:
    return core in _FLOATS


# ---- the current kernel ----------------------------------------------------------------------

_CTX = None  # the _Ctx of the kernel being traced


def ctx():
    c = _CTX
    if c is None:
        raise _err.make_error(
            _err.NkiRuntimeError,
            "nki.language / nki.isa calls need a running kernel: call the kernel through "
            "@nki.jit, nki.simulate(kernel)(...) or nki.simulate_kernel(kernel, ...)",
            user_loc())
    return c


def here():
    """Sets the builder's location to the user's line that called into trnsim.nki; returns
    the builder. Frames inside this package are skipped."""
    c = _CTX
    if c is None:
        ctx()
    f = sys._getframe(1)
    pkg = _PKG
    while f is not None and f.f_code.co_filename.startswith(pkg):
        f = f.f_back
    if f is not None:
        if f.f_code is c.kcode:
            c.kframe = f  # its line after the kernel returns is the return statement's
        loc = (f.f_code.co_filename, f.f_lineno)
        if loc != c.last_loc:
            c.last_loc = loc
            c.b.set_location(loc[0], loc[1])
    return c.b


def _in_pkg(f) -> bool:
    return f.f_code.co_filename.startswith(_PKG)


def user_loc(depth=1):
    """(file, line) of the user's statement that called into trnsim.nki now: the innermost
    frame on the stack outside this package (None when there is none)."""
    f = sys._getframe(depth)
    while f is not None and _in_pkg(f):
        f = f.f_back
    return (f.f_code.co_filename, f.f_lineno) if f is not None else None


def tb_loc(tb):
    """(file, line) of the user's statement an exception passed through on its way out of
    trnsim.nki: the last frame outside the package that called into it (or, for an error
    raised in user code itself, the innermost frame)."""
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    loc = None
    for i, (f, line) in enumerate(frames):
        if not _in_pkg(f) and i + 1 < len(frames) and _in_pkg(frames[i + 1][0]):
            loc = (f.f_code.co_filename, line)
    if loc is None:
        for f, line in reversed(frames):
            if not _in_pkg(f):
                return (f.f_code.co_filename, line)
    return loc


def fail(cls, message):
    """An error at the user's statement that is calling into trnsim.nki now."""
    return _err.make_error(cls, message, user_loc(2))


def mark_written(dst):
    """Records that an instruction writes view ``dst`` of an HBM tensor (under the current
    mask), so that outputs left partly unwritten are found after the run. Only the view is
    kept (offset, shape, strides); elements are worked out after the run, and only when the
    output holds unwritten-looking memory."""
    rec = getattr(dst, "_rec", None)
    if rec is None or rec.space != HBM:
        return
    rec.written = True
    c = rec.ctx
    if c is None or rec.name is None:
        return
    views = c.shared.written.setdefault(rec.name, [])
    if views is True:
        return
    try:
        v = mask_view(dst) if _MASK is not None else dst
        views.append((int(v._off), tuple(int(d) for d in v.shape) or (1,),
                      tuple(int(x) for x in v._st) or (1,)))
    except Exception:  # noqa: BLE001 (a view not understood here: assume all written)
        c.shared.written[rec.name] = True


def _written_elements(views, size):
    """Flat bool array of the elements the recorded views cover (None: treat all as written)."""
    shadow = np.zeros(size, np.bool_)
    try:
        for off, shape, st in views:
            idx = np.full(shape, off, np.int64)
            for ax, (n, stride) in enumerate(zip(shape, st)):
                sh = [1] * len(shape)
                sh[ax] = n
                idx = idx + (np.arange(n, dtype=np.int64) * stride).reshape(sh)
            idx = idx.ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                return None
            shadow[idx] = True
    except Exception:  # noqa: BLE001
        return None
    return shadow


class _Shared:
    """What the programs of one launch share: HBM tensors in allocation order."""

    def __init__(self):
        self.hbm = []          # (name, dtype, shape) of kernel-created HBM tensors, in order
        self.nconst = 0        # nl.shared_constant tensors made so far (unique names)
        # HBM tensor name -> [(offset, shape, strides)] of the views instructions write
        # (True: treat every element as written).
        self.written: dict = {}


class _Ctx:
    def __init__(self, chip: str, name: str, shared: _Shared):
        self.chip = chip
        self.info = chip_info(chip)
        self.b = _cnki.Builder(chip, name)
        self.pool: dict = {}
        self.live: list = []
        self.n = 0
        self.last_loc = None
        self.kcode = None   # the kernel function's code object
        self.kframe = None  # its running frame, seen by here()
        self.pid = (0,)
        self.grid = (1,)
        self.shared = shared
        self.hbm_index = 0
        self.prints: list = []
        self.names: set = set()
        self.hbm_recs_local: list = []
        self.inputs: list = []
        self.constants: list = []  # (name, array) of nl.shared_constant tensors
        self.program = None
        # Multi-chip runs (nki.collectives): this program's rank and the run's rank count.
        self.rank = 0
        self.num_ranks = 1
        self.rank_dependent = False  # the kernel asked for its rank: trace once per rank
        self.collectives = 0         # collective instructions emitted
        self.collective_kinds: set = set()

    def unique(self, base: str) -> str:
        name = base
        while name in self.names:
            self.n += 1
            name = f"{base}_{self.n}"
        self.names.add(name)
        return name

    def alloc(self, space: int, core: str, shape: tuple, name: str | None = None):
        """A _Rec for a new on-chip tensor, reusing a released one of the same kind."""
        key = (space, core, shape)
        lst = self.pool.get(key)
        if lst:
            tid = lst.pop()
        else:
            info = self.info
            if shape[0] > info["partitions"]:
                raise fail(_err.VerifyError,
                           f"partition dimension {shape[0]} is over the {info['partitions']} "
                           f"partitions of {'PSUM' if space == PSUM else 'SBUF'} (nl.tile_size.pmax); "
                           "split the tile along its first axis")
            if self.pool:
                # The builder keeps its first error, so make room before declaring: give the
                # released tensors back to the allocator when the new one would not fit.
                need = _DTYPE_SIZE[core]
                for d in shape[1:]:
                    need *= d
                free = self.b.psum_free_bytes() if space == PSUM else self.b.sbuf_free_bytes()
                if need > free or (space == PSUM and free < info["psum_bank_bytes"]):
                    self.flush_pool(space)
            self.n += 1
            tid = self.b.declare(space, f"{name or 't'}#{self.n}", core, list(shape), "internal")
        return _Rec(self, tid, space, core, shape, key)

    def flush_pool(self, space=None):
        for key in list(self.pool):
            if space is None or key[0] == space:
                for tid in self.pool.pop(key):
                    self.b.release(tid)

    def free(self, rec):
        self.pool.setdefault(rec.key, []).append(rec.tid)


def _row_strides(shape):
    st = [1] * len(shape)
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        st[i] = acc
        acc *= shape[i]
    return tuple(st)


class _Rec:
    """One tensor of the program: its id in the builder and how it is laid out."""

    __slots__ = ("ctx", "tid", "space", "core", "shape", "key", "F", "written",
                 "name", "loc", "__weakref__")

    def __init__(self, c, tid, space, core, shape, key=None, name=None):
        self.ctx = c
        self.tid = tid
        self.space = space
        self.core = core
        self.shape = shape
        self.key = key
        f = 1
        for d in shape[1:]:
            f *= d
        self.F = f
        self.written = False
        self.name = name
        self.loc = None  # kernel line that created it (HBM outputs)

    def __del__(self):
        if self.key is not None:
            c = self.ctx
            if c is not None and c is _CTX:
                c.free(self)


# ---- index expressions (nl.arange / nl.mgrid) ---------------------------------------------


class IndexExpr:
    """An affine index over the axes of an index grid: const + sum(coef * axis_position).

    ``nl.mgrid[0:128, 0:512]`` gives two of them on a 2-D grid; ``nl.arange(n)[:, None]`` one
    on position 0 of a 2-D grid. Indexing a tile with them gives a view whose shape is the
    grid's.
    """

    __slots__ = ("ndim", "terms", "counts", "const")

    def __init__(self, ndim, terms, counts, const=0):
        self.ndim = ndim
        self.terms = terms    # {position: coefficient}
        self.counts = counts  # {position: count}
        self.const = const

    @property
    def shape(self):
        return tuple(self.counts.get(d, 1) for d in range(self.ndim))

    def _combine(self, other, sign):
        if isinstance(other, IndexExpr):
            terms = dict(self.terms)
            counts = dict(self.counts)
            for p, c in other.terms.items():
                terms[p] = terms.get(p, 0) + sign * c
            for p, n in other.counts.items():
                if counts.get(p, n) != n:
                    raise _err.NkiValueError(
                        f"index expressions disagree on axis {p}: {counts[p]} vs {n}")
                counts[p] = n
            return IndexExpr(max(self.ndim, other.ndim), terms, counts,
                             self.const + sign * other.const)
        if isinstance(other, (int, np.integer)):
            return IndexExpr(self.ndim, self.terms, self.counts, self.const + sign * int(other))
        return NotImplemented

    def __add__(self, o):
        return self._combine(o, 1)

    __radd__ = __add__

    def __sub__(self, o):
        return self._combine(o, -1)

    def __rsub__(self, o):
        r = self.__neg__()
        return r._combine(o, 1)

    def __neg__(self):
        return IndexExpr(self.ndim, {p: -c for p, c in self.terms.items()}, self.counts,
                         -self.const)

    def __mul__(self, k):
        if not isinstance(k, (int, np.integer)):
            return NotImplemented
        k = int(k)
        return IndexExpr(self.ndim, {p: c * k for p, c in self.terms.items()}, self.counts,
                         self.const * k)

    __rmul__ = __mul__

    def __getitem__(self, key):
        """Places a 1-D index on a grid: ``[:, None]`` (position 0 of 2), ``[None, :]``."""
        if not isinstance(key, tuple):
            key = (key,)
        mapping = {}
        old = 0
        for newpos, k in enumerate(key):
            if k is None:
                continue
            if isinstance(k, slice) and k == slice(None):
                mapping[old] = newpos
                old += 1
            else:
                raise _err.NotSupportedError("index expressions take only ':' and None")
        return IndexExpr(len(key), {mapping[p]: c for p, c in self.terms.items()},
                         {mapping[p]: n for p, n in self.counts.items()}, self.const)

    def _cmp(self, op, other):
        return IndexMask(self, op, other)

    def __lt__(self, o):
        return self._cmp("lt", o)

    def __le__(self, o):
        return self._cmp("le", o)

    def __gt__(self, o):
        return self._cmp("gt", o)

    def __ge__(self, o):
        return self._cmp("ge", o)

    def __repr__(self):
        return f"IndexExpr(shape={self.shape}, terms={self.terms}, const={self.const})"


class IndexMask:
    """A predicate on index expressions: the ``mask=`` of nki.language / nki.isa calls.

    ``i_p < n``, ``t * 128 + i_p < n``, ``(i_p < n) & (i_f >= 16)``: each comparison puts a
    bound on one axis of the index grid, and together they select a box (a range per axis).
    An instruction under the mask reads and writes only that box of each operand whose shape
    spans the grid; the rest of the destination keeps its old values.
    """

    __slots__ = ("terms",)

    def __init__(self, expr, op, other):
        self.terms = [(expr, op, other)]

    def __and__(self, o):
        if not isinstance(o, IndexMask):
            return NotImplemented
        m = IndexMask.__new__(IndexMask)
        m.terms = self.terms + o.terms
        return m

    __rand__ = __and__

    def __or__(self, o):
        raise _err.NotSupportedError(
            "mask= with '|': trnsim.nki takes masks that select a box of the index grid "
            "(comparisons joined with '&')")

    __ror__ = __or__

    def __bool__(self):
        raise _err.NkiTypeError(
            "an index predicate has no truth value at trace time; pass it as mask=")


_CMP = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b}


def mask_box(mask):
    """{grid axis: (lo, hi, count)} of the positions an affine mask selects."""
    if mask is True:
        return None
    if not isinstance(mask, IndexMask):
        raise fail(_err.NkiTypeError,
                   f"mask= takes a predicate on index expressions (e.g. i_p < n), not "
                   f"{type(mask).__name__}")
    box = {}
    for expr, op, other in mask.terms:
        if isinstance(other, IndexExpr):
            expr = expr - other
            other = 0
        try:
            bound = int(other)
        except TypeError:
            raise fail(_err.NkiTypeError,
                       f"mask= compares an index expression with {other!r}; use an int") from None
        axes = [p for p, c in expr.terms.items() if c != 0]
        if len(axes) != 1:
            raise fail(_err.NotSupportedError,
                       "mask= predicates must bound one axis of the index grid each (e.g. "
                       "i_p < n, t * 128 + i_p < n); a predicate over "
                       f"{len(axes)} axes is not supported yet (use nisa.affine_select)")
        ax = axes[0]
        coef, count = expr.terms[ax], expr.counts.get(ax, 1)
        cmp = _CMP[op]
        ok = [x for x in range(count) if cmp(expr.const + coef * x, bound)]
        lo, hi, _ = box.get(ax, (0, count, count))
        if ok:
            if ok[-1] - ok[0] + 1 != len(ok):  # cannot happen for one affine bound
                raise fail(_err.NotSupportedError, "mask= selects a non-contiguous range")
            lo, hi = max(lo, ok[0]), min(hi, ok[-1] + 1)
        else:
            lo, hi = 0, 0
        box[ax] = (lo, max(lo, hi), count)
    return box


_MASK = None  # the box of the mask of the instruction being emitted (None: no mask)


def mask_view(t, box=None):
    """The part of operand ``t`` the current mask selects (``t`` itself when no axis of its
    shape spans a masked grid axis)."""
    box = _MASK if box is None else box
    if box is None or not isinstance(t, NkiTensor):
        return t
    key = None
    shape = t.shape
    for ax, (lo, hi, count) in box.items():
        if ax < len(shape) and shape[ax] == count and (lo, hi) != (0, count):
            if key is None:
                key = [slice(None)] * len(shape)
            key[ax] = slice(lo, hi)
    if key is None:
        return t
    return t[tuple(key)]


def mask_range(t, axis):
    """(lo, hi) of axis ``axis`` of operand ``t`` that the current mask keeps (the whole
    axis when no mask is active or the mask's grid axis does not span it). mask_view cuts
    the same ranges; instructions whose destination axes are not the source's (transpose,
    matmul) use this to place the destination part instead of matching by axis position."""
    box = _MASK
    n = t.shape[axis]
    if box is None or axis not in box:
        return 0, n
    lo, hi, count = box[axis]
    return (lo, hi) if n == count else (0, n)


def mask_dst(dst, ranges):
    """The pattern of ``dst`` cut to ``ranges`` ((lo, hi) per axis), ignoring the mask's own
    axis matching (the caller derived the ranges from the source operands)."""
    if all((lo, hi) == (0, n) for (lo, hi), n in zip(ranges, dst.shape)):
        return dst._pattern()
    return dst[tuple(slice(lo, hi) for lo, hi in ranges)]._pattern()


def masked(fn):
    """Gives ``fn`` NKI's ``mask=`` keyword: while it runs, every operand pattern is cut to
    the box the mask selects (language._ap / isa._ap apply mask_view)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _MASK
        if not kwargs or kwargs.get("mask") is None:
            kwargs.pop("mask", None)
            return fn(*args, **kwargs)
        m = kwargs.pop("mask")
        here()
        box = mask_box(m)
        if box is not None and any(hi <= lo for lo, hi, _ in box.values()):
            raise fail(_err.NotSupportedError,
                       "mask= selects no element: the instruction would do nothing")
        prev = _MASK
        _MASK = box
        try:
            return fn(*args, **kwargs)
        finally:
            _MASK = prev
    wrapper._masked = True
    return wrapper


def check_mask(mask):
    if mask is not None:
        raise _err.NotSupportedError(
            "mask= given positionally; pass it as a keyword (mask=...)")


def arange(*args):
    r = range(*args)
    if r.step == 0 or len(r) == 0:
        raise _err.NkiValueError(f"nl.arange{args} is empty")
    return IndexExpr(1, {0: r.step}, {0: len(r)}, r.start)


class _MGrid:
    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        n = len(key)
        out = []
        for pos, s in enumerate(key):
            if not isinstance(s, slice):
                raise _err.NkiValueError("nl.mgrid takes slices: nl.mgrid[0:128, 0:512]")
            r = range(s.start or 0, s.stop, s.step or 1)
            out.append(IndexExpr(n, {pos: r.step}, {pos: len(r)}, r.start))
        return tuple(out) if n > 1 else out[0]


mgrid = _MGrid()
ogrid = mgrid


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
        from . import language as nl
        return (nl.sbuf, nl.psum, nl.hbm)[self._rec.space]

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

    def __setitem__(self, key, value):
        dst = self[key]
        if isinstance(value, NkiTensor):
            if (value._rec is dst._rec and value._off == dst._off and value._st == dst._st
                    and value.shape == dst.shape):
                return  # t[i] += x already wrote in place
            from . import language as nl
            nl._assign(dst, value)
        else:
            from . import language as nl
            nl._fill(dst, value)

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

    def view(self, dtype):
        """The same bytes read as ``dtype`` (same width), in a new on-chip tile (bitcast.py)."""
        from . import bitcast
        return bitcast.view(self, dtype)

    def broadcast_to(self, shape):
        """A view of this tensor with ``shape`` by numpy broadcasting (stride 0 on the
        broadcast axes; no copy). An on-chip tile broadcast along its partition axis is
        copied through HBM first: engines cannot read one partition into many."""
        from . import language as nl
        return nl._broadcast_view(self, shape)

    def expand_dims(self, axis):
        from . import language as nl
        return nl.expand_dims(self, axis)

    def astype(self, dtype):
        """A copy of the tile converted to ``dtype`` (a new SBUF tile)."""
        from . import language as nl
        return nl.static_cast(self, dtype)

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

    # -- operators (nki.language arithmetic) ----------------------------------------------------
    def _bin(self, other, op, rev=False):
        from . import language as nl
        return nl._binary(self, other, op, rev)

    def __add__(self, o):
        if isinstance(o, IndexExpr):  # a run-time offset into a tile: t[i_p, off_tile + i_f]
            return DynIndex(self, o)
        return self._bin(o, "add")

    def __radd__(self, o):
        if isinstance(o, IndexExpr):
            return DynIndex(self, o)
        return self._bin(o, "add", True)

    def __sub__(self, o):
        return self._bin(o, "subtract")

    def __rsub__(self, o):
        return self._bin(o, "subtract", True)

    def __mul__(self, o):
        return self._bin(o, "multiply")

    def __rmul__(self, o):
        return self._bin(o, "multiply", True)

    def __truediv__(self, o):
        return self._bin(o, "divide")

    def __rtruediv__(self, o):
        return self._bin(o, "divide", True)

    def __pow__(self, o):
        return self._bin(o, "pow")

    def __rpow__(self, o):
        return self._bin(o, "pow", True)

    def __mod__(self, o):
        return self._bin(o, "mod")

    def __and__(self, o):
        return self._bin(o, "bitwise_and")

    def __or__(self, o):
        return self._bin(o, "bitwise_or")

    def __xor__(self, o):
        return self._bin(o, "bitwise_xor")

    def __lshift__(self, o):
        return self._bin(o, "left_shift")

    def __rshift__(self, o):
        return self._bin(o, "right_shift")

    def __lt__(self, o):
        return self._bin(o, "is_lt")

    def __le__(self, o):
        return self._bin(o, "is_le")

    def __gt__(self, o):
        return self._bin(o, "is_gt")

    def __ge__(self, o):
        return self._bin(o, "is_ge")

    def __eq__(self, o):
        return self._bin(o, "is_equal")

    def __ne__(self, o):
        return self._bin(o, "not_equal")

    __hash__ = object.__hash__

    def __neg__(self):
        return self._bin(-1.0, "multiply")

    def __abs__(self):
        from . import language as nl
        return nl.abs(self)

    def __invert__(self):
        from . import language as nl
        return nl.invert(self)

    def _inplace(self, o, op):
        from . import language as nl
        nl._binary(self, o, op, False, dst=self)
        return self

    def __iadd__(self, o):
        return self._inplace(o, "add")

    def __isub__(self, o):
        return self._inplace(o, "subtract")

    def __imul__(self, o):
        return self._inplace(o, "multiply")

    def __itruediv__(self, o):
        return self._inplace(o, "divide")


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
    c = _CTX
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
    c = _CTX
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
    c = _CTX
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


# ---- chips ---------------------------------------------------------------------------------

_CHIP_INFO: dict = {}


def chip_info(chip: str) -> dict:
    i = _CHIP_INFO.get(chip)
    if i is None:
        i = _CHIP_INFO[chip] = dict(_cnki.chip_info(chip))
    return i


_TARGET_ALIASES = {"gen2": "trn1", "gen3": "trn2", "gen4": "trn3", "trn1n": "trn1",
                   "inf2": "trn1"}
KNOWN_TARGETS = ("trn1", "trn2", "trn3")


def target_chip(explicit=None, kname=None) -> str:
    """The chip a kernel runs on: ``explicit`` (platform_target= / target= / chip=), else
    NEURON_PLATFORM_TARGET_OVERRIDE, else trn2. An unknown name is an error naming the kernel
    and the known targets (a path to a .json chip config is also accepted)."""
    env = os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE")
    t = explicit or env or "trn2"
    if not isinstance(t, (str, os.PathLike)):
        raise _err.make_error(
            _err.NkiTypeError, f"{kname or 'kernel'}: target {t!r} is not a chip name",
            user_loc())
    raw = os.fspath(t)
    if raw.endswith(".json") or os.sep in raw:
        return raw  # a chip config file: the core loads and checks it
    low = raw.lower()
    chip = _TARGET_ALIASES.get(low, low)
    if chip not in KNOWN_TARGETS:
        src = "target" if explicit else "NEURON_PLATFORM_TARGET_OVERRIDE"
        raise _err.make_error(
            _err.NkiValueError,
            f"{kname or 'kernel'}: unknown {src} {raw!r}; known targets are "
            f"{', '.join(KNOWN_TARGETS)} (also {', '.join(sorted(_TARGET_ALIASES))}), or the "
            "path of a .json chip config", user_loc())
    return chip


# ---- launch grids: nl.nc / nl.spmd_dim ---------------------------------------------------------


class NcDim(int):
    """``nl.nc(n)``: a launch-grid axis of n programs, one per physical NeuronCore."""

    def __new__(cls, n):
        n = int(n)
        if n < 1:
            raise _err.NkiValueError(f"nl.nc({n}): a NeuronCore dimension needs at least 1 core")
        return super().__new__(cls, n)

    def __repr__(self):
        return f"nl.nc({int(self)})"


class SpmdDim(int):
    """``nl.spmd_dim(a, b, ...)``: one launch-grid axis of a*b*... programs whose index is
    split into sub-dimensions (the first the most significant); a sub-dimension given as
    ``nl.nc(k)`` spreads the programs over k NeuronCores by its digit."""

    def __new__(cls, *dims):
        if not dims:
            raise _err.NkiValueError("nl.spmd_dim() needs at least one sub-dimension")
        size = 1
        for d in dims:
            if int(d) < 1:
                raise _err.NkiValueError(f"nl.spmd_dim{tuple(dims)}: sizes must be >= 1")
            size *= int(d)
        o = super().__new__(cls, size)
        o.dims = tuple(dims)
        return o

    def __repr__(self):
        return f"nl.spmd_dim({', '.join(repr(d) for d in self.dims)})"


def resolve_grid(grid, kname="kernel"):
    """(sizes, core_of) of a launch grid. core_of(pid) is the NeuronCore of a grid point when
    the grid has nl.nc / nl.spmd_dim(nl.nc(...)) axes (core_of(None) = the number of cores),
    else None."""
    if not isinstance(grid, (tuple, list)):
        grid = (grid,)
    sizes = []
    digits = []  # (axis, divisor, radix) of each NeuronCore sub-dimension, axis order
    for ax, g in enumerate(grid):
        if isinstance(g, SpmdDim):
            below = int(g)
            for d in g.dims:
                below //= int(d)
                if isinstance(d, NcDim):
                    digits.append((ax, below, int(d)))
        elif isinstance(g, NcDim):
            digits.append((ax, 1, int(g)))
        try:
            n = int(g)
        except TypeError:
            raise _err.NkiTypeError(f"{kname}[...]: a launch grid takes ints, nl.nc(n) or "
                                    f"nl.spmd_dim(...), not {g!r}") from None
        if n < 1:
            raise _err.NkiValueError(f"{kname}[...]: grid sizes must be >= 1, not {n}")
        sizes.append(n)
    if not digits:
        return tuple(sizes), None
    total = 1
    for _, _, r in digits:
        total *= r

    def core_of(pid):
        if pid is None:
            return total
        core = 0
        for ax, div, radix in digits:
            core = core * radix + (pid[ax] // div) % radix
        return core
    return tuple(sizes), core_of


# ---- launch --------------------------------------------------------------------------------


class RunInfo:
    """What the last run of a kernel amounted to (simulated time, instructions, summary)."""

    def __init__(self, record, chip, host_trace_seconds, programs):
        self.record = record
        self.chip = chip
        self.simulated_ns = record.simulated_ns
        self.latency_us = record.simulated_ns / 1000.0
        self.instructions = record.instructions
        self.trace_seconds = host_trace_seconds
        self.programs = programs
        self.notes: list = []  # what the front end changed (e.g. fill_unwritten), one line each

    def summary(self) -> dict:
        import json
        d = json.loads(self.record.summary_json())
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def summary_json(self) -> str:
        import json
        if not self.notes:
            return self.record.summary_json()
        return json.dumps(self.summary(), indent=2)

    def summary_text(self) -> str:
        text = self.record.summary_text()
        if self.notes:
            text = text.rstrip("\n") + "\n" + "".join(f"note: {n}\n" for n in self.notes)
        return text

    def write_trace(self, path):
        self.record.write_trace(str(path))


#: 64-bit host dtypes the chip does not hold -> the 32-bit dtype they are converted to.
_NARROW = {"float64": np.float32, "int64": np.int32, "uint64": np.uint32}


def _narrow(arr, what):
    """``arr`` (int64 / uint64 / float64) converted to the chip's 32-bit dtype. Integers must
    fit exactly; floats are rounded to float32 (RNE, as numpy's astype) and must stay finite
    where they were finite. Anything else is an error naming the argument and the value."""
    src = arr.dtype.name
    to = np.dtype(_NARROW[src])
    if arr.dtype.kind in "iu":
        info = np.iinfo(to)
        bad = (arr < info.min) | (arr > info.max)
        if bad.any():
            i = tuple(int(x) for x in np.argwhere(bad)[0])
            raise _err.make_error(
                _err.NkiValueError,
                f"{what} is {src} and holds {int(arr[i])} at index {list(i)}, which {to.name} "
                f"(the widest integer the chip holds) cannot represent "
                f"([{info.min}, {info.max}]); pass values in that range, or convert the array "
                f"yourself (a.astype(np.{to.name})) if wrapping is what you want",
                user_loc())
        return arr.astype(to)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(to)
    bad = np.isfinite(arr) & ~np.isfinite(out)
    if bad.any():
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        raise _err.make_error(
            _err.NkiValueError,
            f"{what} is {src} and holds {float(arr[i])!r} at index {list(i)}, which is outside "
            f"the float32 range (+-{float(np.finfo(np.float32).max):.6g}) and would become "
            "inf; scale the values into range or pass float32 yourself",
            user_loc())
    with np.errstate(invalid="ignore"):
        changed = bool(np.any((out.astype(arr.dtype) != arr) & ~np.isnan(arr)))
    if changed:
        import warnings
        loc = user_loc() or ("<unknown>", 0)
        warnings.warn_explicit(
            f"{what} is float64: its values are rounded to float32 (the chip holds no float64); "
            "pass float32 to silence this", _err.NkiNarrowingWarning, loc[0], loc[1],
            registry=_WARNED.setdefault(loc[0], {}))
    return out


_WARNED: dict = {}  # warning registries per file: each (message, line) warns once


def _to_numpy(a, what="an argument"):
    """(array, core dtype, user dtype) for a numpy array or a CPU torch tensor."""
    mod = type(a).__module__
    if mod.startswith("torch"):
        import torch
        t = a.detach().cpu()
        if t.dtype in (torch.float64, torch.int64):
            arr = _narrow(t.numpy(), what)
            return arr, dtname(arr.dtype), arr.dtype
        core = dtname(str(t.dtype).replace("torch.", ""))
        if t.dtype in (torch.bfloat16,) or "float8" in str(t.dtype):
            return t.float().numpy(), core, t.dtype
        return t.numpy(), core, t.dtype
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8), "uint8", np.bool_
    if arr.dtype.name in _NARROW:
        arr = _narrow(arr, what)
        return arr, dtname(arr.dtype), arr.dtype
    try:
        core = dtname(arr.dtype)
    except _err.NkiTypeError:
        raise _err.make_error(
            _err.NkiTypeError,
            f"{what} has dtype {arr.dtype.name}, which the chip does not hold; pass one of "
            "float32, float16, bfloat16, float8, int8/16/32, uint8/16/32 or bool (int64 and "
            "float64 are converted when the values fit)", user_loc()) from None
    return arr, core, arr.dtype


def _param_names(fn, n):
    import inspect
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"arg{i}" for i in range(n)]


def _is_array(a):
    return isinstance(a, np.ndarray) or type(a).__module__.startswith("torch") and hasattr(a, "detach")



def _host_inputs(fn, args, kname="kernel"):
    """(name, array, core dtype, user dtype, original) of each array argument."""
    names = _param_names(fn, len(args))
    out = []
    for i, a in enumerate(args):
        if _is_array(a):
            arr, core, user = _to_numpy(a, f"{kname}: argument '{names[i]}'")
            out.append((names[i], arr, core, user, a))
    return out


def _trace(fn, args, kwargs, grid, pids, per_core, chip, kname, host_inputs, rank=0,
           num_ranks=1, groups=None, lockstep=False):
    """Runs the kernel function once per grid point, emitting instructions; returns the
    contexts (one per program, each with its finished .program) and the kernel's return value
    (its tensors refer to the first program)."""
    global _CTX
    shared = _Shared()
    ctxs = []
    outs = None
    try:
        if groups is None:
            groups = [[p] for p in pids] if per_core else [pids]
        for core_i, group in enumerate(groups):
            c = _Ctx(chip, kname if len(groups) == 1 else f"{kname}[{core_i}]", shared)
            c.grid = grid or (1,)
            c.rank = rank
            c.num_ranks = num_ranks
            ctxs.append(c)
            _CTX = c
            # Inputs: HBM tensors bound to the host arrays by name.
            kargs = list(args)
            inputs = []
            j = 0
            for i, a in enumerate(args):
                if _is_array(a):
                    nm, arr, core, user, _ = host_inputs[j]
                    j += 1
                    nm = c.unique(nm)
                    tid = c.b.declare(HBM, nm, core, list(arr.shape) or [1], "input")
                    rec = _Rec(c, tid, HBM, core, tuple(arr.shape) or (1,), None, nm)
                    t = NkiTensor(rec, rec.shape, user)
                    inputs.append(rec)
                    kargs[i] = t
            c.inputs = inputs
            c.kcode = getattr(fn, "__code__", None)
            if lockstep and len(group) > 1:  # nl.all_reduce: programs in lockstep threads
                from .spmd_reduce import Lockstep

                def call(c=c, kargs=kargs):
                    o = _call_kernel(c, fn, kargs, kwargs)
                    _check_returned(c, fn, o, kname)
                    return o
                c.lockstep = Lockstep(c, group)
                o = c.lockstep.run(call)
                c.kframe = None
                outs = o if outs is None else outs
                group = []
            for k_i, pid in enumerate(group):
                c.pid = tuple(pid) if pid else (0,)
                c.hbm_index = 0
                c.kframe = None
                o = _call_kernel(c, fn, kargs, kwargs)
                _check_returned(c, fn, o, kname)
                c.kframe = None
                if outs is None:
                    outs = o
            here_loc = c.last_loc
            try:
                prog = c.b.finish()
            except _cnki.CoreError as e:
                raise _err.from_core(e, here_loc) from None
            c.program = prog
            _CTX = None
    except _cnki.CoreError as e:
        c = _CTX
        _CTX = None
        raise _err.from_core(e, c.last_loc if c else None).with_traceback(e.__traceback__) from None
    finally:
        _CTX = None
    return ctxs, outs


def _call_kernel(c, fn, kargs, kwargs):
    """fn(*kargs, **kwargs), with every trnsim.nki error placed at the kernel statement that
    caused it: the user's frame that called into trnsim.nki, from the traceback (errors that
    the core placed itself, at an instruction's recorded line, keep that place)."""
    try:
        return fn(*kargs, **kwargs)
    except _err.NkiError as e:
        if not getattr(e, "located_by_core", False):
            loc = tb_loc(e.__traceback__)
            if loc is not None and (e.file, e.line) != loc:
                _err.relocate(e, loc)
        raise
    except _cnki.CoreError as e:
        err = _err.from_core(e, None)
        if not getattr(err, "located_by_core", False):
            _err.relocate(err, tb_loc(e.__traceback__) or c.last_loc)
        raise err.with_traceback(e.__traceback__) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        api = _api_frame(e.__traceback__)
        if api is None:
            raise  # the kernel's own code raised it
        cls = _err.NkiValueError if isinstance(e, (ValueError, IndexError)) else _err.NkiTypeError
        raise _err.make_error(
            cls, f"bad arguments to {api}: {type(e).__name__}: {e}",
            tb_loc(e.__traceback__)) from e


def _api_frame(tb):
    """'nki.isa.tensor_tensor' when an exception was raised inside trnsim.nki (below the
    kernel's call into the API), else None (raised by the kernel's own code)."""
    below = []  # package frames below the innermost user frame
    while tb is not None:
        f = tb.tb_frame
        below = below + [f] if _in_pkg(f) else []
        tb = tb.tb_next
    if not below:
        return None
    for f in below:  # the public function, not a decorator's wrapper or a helper
        if f.f_code.co_name not in ("wrapper", "<lambda>") and not \
                f.f_code.co_name.startswith("_"):
            break
    else:
        f = below[0]
    mod = f.f_globals.get("__name__", "trnsim.nki").replace("trnsim.", "", 1)
    return f"{mod.replace('._core', '')}.{f.f_code.co_name}"


def _check_returned(c, fn, outs, kname):
    """A kernel returns HBM tensors: an on-chip tile is an error at its return statement."""
    def bad(o):
        if isinstance(o, NkiTensor):
            return o if o._rec.space != HBM else None
        if isinstance(o, (tuple, list)):
            for x in o:
                r = bad(x)
                if r is not None:
                    return r
        if isinstance(o, dict):
            return bad(list(o.values()))
        return None
    t = bad(outs)
    if t is None:
        return
    f = c.kframe
    code = getattr(fn, "__code__", None)
    if f is not None:
        loc = (f.f_code.co_filename, f.f_lineno)
    elif code is not None:
        loc = (code.co_filename, code.co_firstlineno)
    else:
        loc = None
    sp = "PSUM" if t._rec.space == PSUM else "SBUF"
    raise _err.make_error(
        _err.NkiTypeError,
        f"{kname} returns an on-chip {sp} tile of shape {list(t.shape)}; a kernel returns HBM "
        "tensors: store the tile into nl.ndarray(..., buffer=nl.shared_hbm) and return that",
        loc)


def _read_outputs(outs, reader, fills=None):
    """The kernel's return value with every HBM tensor replaced by its values (numpy)."""
    fills = fills or {}

    def read(o):
        if isinstance(o, NkiTensor):
            r = o._rec
            if r.space != HBM:
                raise _err.NkiTypeError(
                    "a kernel returns HBM tensors (nl.ndarray(..., buffer=nl.shared_hbm)); "
                    f"it returned an on-chip tile of shape {list(o.shape)}")
            val = reader(r.name)
            if r.name in fills:
                mask, value = fills[r.name]
                val = np.array(val).reshape(-1)
                val[mask] = value
            val = val.reshape(r.shape)
            nd = numpy_dtype(r.core, o.dtype if not isinstance(o.dtype, str) else None)
            if o.dtype is np.bool_ or nd == np.bool_:
                return val.astype(np.bool_)
            return val.astype(nd)
        if isinstance(o, (tuple, list)):
            return type(o)(read(x) for x in o)
        if isinstance(o, dict):
            return {k: read(v) for k, v in o.items()}
        return o
    return read(outs)


def fill_unwritten_option(value):
    """The fill value for unwritten output elements: the kernel option, else the
    TRNSIM_FILL_UNWRITTEN environment variable, else None (unwritten outputs are an error)."""
    if value is None:
        env = os.environ.get("TRNSIM_FILL_UNWRITTEN")
        if env is None or env == "":
            return None
        value = env
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _err.NkiValueError(
            f"fill_unwritten={value!r}: give a number (e.g. 0) to zero-fill unwritten output "
            "elements, or leave it unset to make them an error") from None


def _unwritten(outs, shared, read_bits):
    """[(tensor, flat bool mask of its unwritten elements)] for each HBM output the kernel
    created and did not fully write. An element counts as unwritten when no instruction's
    destination covered it (traced) and it still holds the memory's fill pattern (all bits
    set) after the run: both must agree, so a pattern the tracer does not follow is never
    reported."""
    found, seen = [], set()

    def visit(o):
        if isinstance(o, NkiTensor):
            r = o._rec
            if r.space != HBM or r.name in seen or r.name not in {h[0] for h in shared.hbm}:
                return
            seen.add(r.name)
            views = shared.written.get(r.name, [])
            if views is True:
                return
            bits = np.asarray(read_bits(r.name)).reshape(-1)
            todo = bits == np.iinfo(bits.dtype).max
            del bits
            if not todo.any():
                return
            shadow = _written_elements(views, todo.size)
            if shadow is None:
                return
            todo &= ~shadow
            if todo.any():
                found.append((o, todo))
        elif isinstance(o, (tuple, list)):
            for x in o:
                visit(x)
        elif isinstance(o, dict):
            for x in o.values():
                visit(x)
    visit(outs)
    return found


def _region(shape, mask):
    """'[a:b, c:d]' bounding box of the True elements of a flat mask over ``shape``, and the
    first one's index."""
    idx = np.argwhere(mask.reshape(shape))
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    box = ", ".join(f"{a}:{b}" for a, b in zip(lo, hi))
    return f"[{box}]", [int(x) for x in idx[0]]


def check_unwritten(outs, shared, read_bits, kname, fill, notes, rank=None):
    """Errors on (or, with ``fill``, fills and notes) output elements the kernel never wrote.
    Returns {tensor name: (mask, fill)} for _read_outputs."""
    fills = {}
    for t, mask in _unwritten(outs, shared, read_bits):
        r = t._rec
        shape = r.shape
        box, first = _region(shape, mask)
        n, total = int(mask.sum()), mask.size
        who = f"rank {rank}: " if rank is not None else ""
        if fill is None:
            raise _err.make_error(
                _err.UninitializedReadError,
                f"{who}{kname}: output '{r.name}' {list(shape)} has {n} of {total} elements "
                f"that the kernel never wrote (region {box}, first at index {first}); store "
                "every element of an output, or run with nki.jit(..., fill_unwritten=0) "
                "(or TRNSIM_FILL_UNWRITTEN=0) to zero-fill them",
                r.loc)
        fills[r.name] = (mask, fill)
        notes.append(f"{who}output '{_err.escape(r.name)}': {n} of {total} elements never "
                     f"written (region {box}) were filled with {fill:g} (fill_unwritten)")
    return fills


def _write_back(host_inputs, ctx0, reader):
    """Arguments the kernel wrote to (old-style output parameters) are updated in place."""
    for (nm, arr, core, user, orig), r in zip(host_inputs, ctx0.inputs):
        if r.written and isinstance(orig, np.ndarray) and orig.flags.writeable:
            orig[...] = reader(nm).astype(orig.dtype).reshape(orig.shape)


def _write_report(record, trace, report):
    trace = trace or os.environ.get("TRNSIM_TRACE") or None
    report = report or os.environ.get("TRNSIM_REPORT") or None
    if trace:
        record.write_trace(str(trace))
    if report:
        text = record.summary_json() if str(report).endswith(".json") else record.summary_text()
        with open(report, "w") as f:
            f.write(text)


def launch(fn, args, kwargs, grid=(), chip=None, trace=None, report=None, name=None,
           multicore=True, system=None, fill_unwritten=None):
    """Traces `fn` once per grid point, runs the programs on a simulated chip and returns
    (outputs as numpy, RunInfo). A lone chip is a world of one rank (rank 0): collectives
    over that rank copy src to dst; more ranks need launch_multichip."""
    import time
    global _CTX
    if _CTX is not None:  # a kernel called from a kernel: inline it
        return fn(*args, **kwargs), None
    kname = name or getattr(fn, "__name__", "kernel")
    chip = target_chip(chip, kname)
    info = chip_info(chip)
    grid, core_of = resolve_grid(grid, kname)
    npoints = int(np.prod(grid)) if grid else 1
    pids = list(np.ndindex(*grid)) if grid else [()]
    cores = info["cores"]
    groups = None
    if core_of is not None:  # nl.nc / nl.spmd_dim: the grid names the NeuronCores
        ncores = core_of(None)
        if ncores > cores:
            raise _err.NkiValueError(
                f"{kname}: the launch grid asks for {ncores} NeuronCores (nl.nc / nl.spmd_dim) "
                f"but a {chip} chip has {cores}")
        groups = [[] for _ in range(ncores)]
        for p in pids:
            groups[core_of(p)].append(p)
    per_core = bool(multicore and len(grid) == 1 and 1 < npoints <= cores)

    fill = fill_unwritten_option(fill_unwritten)
    host_inputs = _host_inputs(fn, args, kname)
    t0 = time.perf_counter()
    from .spmd_reduce import NeedLockstep
    try:
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, per_core, chip, kname, host_inputs,
                            groups=groups)
    except NeedLockstep as e:
        if core_of is not None:
            raise _err.make_error(
                _err.NotSupportedError,
                "nl.all_reduce across NeuronCores (an nl.nc / nl.spmd_dim grid axis): the "
                "per-core programs cannot wait for each other yet; launch the grid without "
                "nl.nc to reduce on one core", (e.file, e.line)) from None
        # nl.all_reduce: trace again with the programs in lockstep, all on one NeuronCore
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, False, chip, kname, host_inputs,
                            lockstep=True)
    trace_s = time.perf_counter() - t0

    # Run.
    chip_obj = _csim.Chip(chip)
    progs = [c.program for c in ctxs]
    try:
        rec = _cnki.load(chip_obj, progs)
        for nm, arr, core, user, orig in host_inputs:
            chip_obj.write(nm, arr, 0)
        for c in ctxs:
            for nm, arr in c.constants:
                chip_obj.write(nm, arr, 0)
        # Events always: the summary's per-engine instruction and wait counts come from them
        # (a few percent of the run's host time), trace file or not.
        _cnki.execute(chip_obj, rec, values=True, timing=True, events=True)
    except _cnki.CoreError as e:
        raise _err.from_core(e, None) from None
    except _csim.SimError as e:
        raise _err.make_error(_err.NkiRuntimeError, str(e)) from None
    run = RunInfo(rec, chip, trace_s, progs)
    fills = check_unwritten(outs, ctxs[0].shared, lambda nm: chip_obj.read_bits(nm, 0), kname,
                            fill, run.notes)
    _write_report(run, trace, report)

    # Device prints (snapshots taken by nl.device_print).
    for c in ctxs:
        for label, nm, core in c.prints:
            val = chip_obj.read(nm, 0)
            print(label, val.astype(numpy_dtype(core)) if not is_float(core) else val)

    def reader(nm):
        return chip_obj.read(nm, 0)
    _write_back(host_inputs, ctxs[0], reader)
    return _read_outputs(outs, reader, fills), run


# ---- multi-chip runs -------------------------------------------------------------------------


class MultichipRunInfo:
    """What a multi-chip run amounted to: the simulated time of the slowest rank, each rank's
    time and instructions, and every collective with its timing (from the fabric model)."""

    def __init__(self, result: dict, cluster, chip, system, num_ranks, trace_seconds, programs):
        self.result = result
        self.cluster = cluster
        self.chip = chip
        self.system = system
        self.num_ranks = num_ranks
        self.simulated_ns = result.get("simulated_ns", 0.0)
        self.latency_us = self.simulated_ns / 1000.0
        self.instructions = sum(r.get("instructions", 0) for r in result.get("ranks", []))
        self.trace_seconds = trace_seconds
        self.programs = programs
        self.collectives = result.get("collectives", [])
        self.process = cluster.process
        self.processes = cluster.processes
        self.local_ranks = range(cluster.first_local_rank, cluster.end_local_rank)
        self.system = result.get("system", system)
        self.notes: list = []  # what the front end changed (e.g. fill_unwritten), one line each

    def output_hashes(self):
        """Per rank, FNV-1a 64 of its output tensors (the same in every MPI process)."""
        return list(self.cluster.output_hashes())

    def summary(self) -> dict:
        """The run as a dict (per-rank results, collectives, compute/communication split)."""
        return dict(self.result)

    def summary_text(self) -> str:
        """A readable table: the run, each rank's time split, each collective's timing."""
        r = self.result
        lines = [
            f"multi-chip run: {self.num_ranks} x {r.get('chip', self.chip)} on "
            f"{r.get('system', self.system)}, {self.simulated_ns / 1e3:.3f} us simulated, "
            f"{self.instructions} instructions, {r.get('supersteps', 0)} supersteps, "
            f"{r.get('host_seconds', 0.0):.3f} s host",
            f"compute {r.get('compute_ns', 0.0) / 1e3:.3f} us, exposed communication "
            f"{r.get('exposed_comm_ns', 0.0) / 1e3:.3f} us (mean per rank), comm tax "
            f"{100 * r.get('comm_tax', 0.0):.1f}%",
            "",
            f"{'rank':>5} {'end us':>12} {'compute us':>12} {'comm us':>12} {'instr':>8}",
        ]
        for i, rr in enumerate(r.get("ranks", [])):
            lines.append(f"{i:>5} {rr['simulated_ns'] / 1e3:>12.3f} {rr['compute_ns'] / 1e3:>12.3f} "
                         f"{rr['exposed_comm_ns'] / 1e3:>12.3f} {rr['instructions']:>8}")
        if self.collectives:
            lines += ["", f"{'collective':<20} {'ranks':>6} {'bytes':>12} {'start us':>10} "
                          f"{'time us':>10} {'algorithm':<20} {'busbw GB/s':>10}"]
            for c in self.collectives:
                lines.append(
                    f"{c['op']:<20} {len(c['ranks']):>6} {c['bytes']:>12} "
                    f"{c['start_ns'] / 1e3:>10.3f} {(c['end_ns'] - c['start_ns']) / 1e3:>10.3f} "
                    f"{c['algorithm']:<20} {c['busbw_gbps']:>10.1f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def summary_json(self) -> str:
        import json
        return json.dumps(self.result, indent=2)

    def write_trace(self, path):
        self.cluster.write_trace(str(path))


def _arg_key(a):
    if _is_array(a):
        arr = np.asarray(a) if not type(a).__module__.startswith("torch") else None
        if arr is not None:
            return ("array", arr.shape, str(arr.dtype))
        return ("tensor", tuple(a.shape), str(a.dtype))
    return ("value", a)


def _same_args(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        kx, ky = _arg_key(x), _arg_key(y)
        if kx[0] != ky[0]:
            return False
        if kx[0] == "value":
            try:
                if not bool(kx[1] == ky[1]):
                    return False
            except Exception:  # noqa: BLE001 (values that do not compare: trace per rank)
                return False
        elif kx != ky:
            return False
    return True


class _FabricArgs:
    def __init__(self, e):
        where = getattr(e, "where", "") or ""
        if not _err._AT.search(where):
            # E.g. a deadlock names each waiting rank's instruction and line in its message:
            # the error is placed at the first of them.
            where = str(e)
        self.args = (getattr(e, "code", "kInternal"), where, getattr(e, "detail", str(e)),
                     str(e))


def _from_fabric(e):
    """A fabric.FabricError as the matching trnsim.nki error, located at the kernel line the
    error's place names ("rank 3: instruction 2 (all_reduce) at k.py:40")."""
    return _err.from_core(_FabricArgs(e))


def launch_multichip(fn, rank_args, kwargs, grid=(), chip=None, trace=None, report=None,
                     name=None, system=None, threads=0, seed=0, timing_only=False,
                     fill_unwritten=None):
    """Runs `fn` SPMD on len(rank_args) simulated chips joined by a fabric; rank r calls
    fn(*rank_args[r], **kwargs). Returns ([outputs of rank 0, ...], MultichipRunInfo).
    Under mpirun each process simulates a slice of the ranks; the outputs of ranks another
    process simulates are None (MultichipRunInfo.local_ranks says which are here). With
    timing_only no values are computed (every output is None): the times are the same.

    The kernel is traced once and the program shared when it does not ask for its rank
    (nki.collectives.rank_id) and every rank's arguments have the same shapes and dtypes;
    otherwise once per rank."""
    import time
    global _CTX
    if _CTX is not None:
        raise _err.NkiRuntimeError("a multi-chip launch inside a running kernel")
    n = len(rank_args)
    if n < 1:
        raise _err.NkiValueError("a multi-chip run needs at least one rank (num_ranks >= 1)")
    kname = name or getattr(fn, "__name__", "kernel")
    chip = target_chip(chip, kname)
    grid, _ = resolve_grid(grid, kname)
    pids = list(np.ndindex(*grid)) if grid else [()]
    fill = fill_unwritten_option(fill_unwritten)

    t0 = time.perf_counter()
    per_rank = []  # (ctxs, outs, host_inputs) per rank; None = reuse rank 0's program
    for r in range(n):
        args = tuple(rank_args[r])
        hin = _host_inputs(fn, args, kname)
        if r > 0 and not per_rank[0][0][0].rank_dependent and _same_args(rank_args[0], args):
            per_rank.append((None, None, hin))
            continue
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, False, chip, kname, hin, r, n)
        per_rank.append((ctxs, outs, hin))
    trace_s = time.perf_counter() - t0

    try:
        from .._trnsim import fabric as _cfab
    except ImportError:  # pragma: no cover
        _cfab = None
    if not hasattr(_cfab, "Cluster"):
        raise _err.NotSupportedError(
            "multi-chip runs need the cluster runtime (fabric::Cluster), which this build of "
            "trnsim._trnsim does not have")
    try:
        cluster = _cfab.Cluster(chip, n, system or "", int(threads))
        shared_prog = per_rank[0][0][0].program
        programs = []
        for r, (ctxs, outs, hin) in enumerate(per_rank):
            prog = ctxs[0].program if ctxs is not None else shared_prog
            programs.append(prog)
            _cnki.cluster_load(cluster, r, prog)
        for r, (ctxs, outs, hin) in enumerate(per_rank):
            if not cluster.is_local(r):  # under mpirun another process simulates it
                continue
            for nm, arr, core, user, orig in hin:
                cluster.write(r, nm, arr)
            for c in (ctxs if ctxs is not None else per_rank[0][0]):
                for nm, arr in c.constants:
                    cluster.write(r, nm, arr)
        result = cluster.run(values=not timing_only, seed=int(seed),
                             events=bool(trace or os.environ.get("TRNSIM_TRACE")))
    except _cnki.CoreError as e:
        raise _err.from_core(e, None) from None
    except _cfab.FabricError as e:
        raise _from_fabric(e) from None
    except _csim.SimError as e:
        raise _err.make_error(_err.NkiRuntimeError, str(e)) from None
    run = MultichipRunInfo(result, cluster, chip, system, n, trace_s, programs)
    _write_report(run, trace, report)

    results = []
    for r, (ctxs, outs, hin) in enumerate(per_rank):
        if timing_only:
            results.append(None)
            continue
        if not cluster.is_local(r):
            results.append(None)  # simulated by another MPI process
            continue
        src = ctxs if ctxs is not None else per_rank[0][0]
        o = outs if ctxs is not None else per_rank[0][1]

        def reader(nm, _r=r):
            return cluster.read(_r, nm)
        for c in src:
            for label, nm, core in c.prints:
                val = reader(nm)
                print(f"[rank {r}]", label, val.astype(numpy_dtype(core)) if not is_float(core) else val)
        _write_back(hin, src[0], reader)
        fills = check_unwritten(o, src[0].shared, lambda nm, _r=r: cluster.read_bits(_r, nm),
                                kname, fill, run.notes, rank=r if n > 1 else None)
        results.append(_read_outputs(o, reader, fills))
    return results, run
