"""The kernel being traced: its context (builder, tensor allocation, launch-wide state),
the user's source locations, and the located errors every nki call raises."""

from __future__ import annotations

import os
import sys

from .._trnsim import nki as _cnki
from .._trnsim import sim as _csim
from . import errors as _err
from ._dtypes import _DTYPE_SIZE
from ._names import PSUM

_PKG = os.path.dirname(os.path.abspath(__file__))


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
        self.b = _csim.KernelBuilder(chip, name)
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


# ---- chips ---------------------------------------------------------------------------------

_CHIP_INFO: dict = {}


def chip_info(chip: str) -> dict:
    i = _CHIP_INFO.get(chip)
    if i is None:
        i = _CHIP_INFO[chip] = dict(_cnki.chip_info(chip))
    return i
