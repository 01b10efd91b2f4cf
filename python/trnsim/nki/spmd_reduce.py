"""``nl.all_reduce``: a reduction across the SPMD programs of one launch grid.

trnsim traces the programs of a grid one after another into one instruction stream, so a
program that calls ``nl.all_reduce`` would need tiles the later programs have not computed
yet. A kernel that calls it is therefore traced again in lockstep (``launch`` catches
``NeedLockstep``): every program runs in its own Python thread, one at a time and in grid
order, up to its next ``all_reduce``; when all have arrived, the reduction is emitted (Vector
Engine ``tensor_tensor`` ops over the programs' tiles, in grid order, accumulated in float32)
and every program resumes with its own copy of the result. All programs then run on one
NeuronCore; a grid whose axes name cores (``nl.nc``) cannot reduce across them yet.
"""

from __future__ import annotations

import threading

from . import _context, _dtypes, _names, _outputs, _tile
from . import errors as _err


class NeedLockstep(_err.NotSupportedError):
    """Raised by the first all_reduce of a normal trace; launch traces the kernel again."""


class _Abort(BaseException):
    """Ends a program thread parked in all_reduce after another program failed."""


class _Program:
    def __init__(self, pid):
        self.pid = pid
        self.go = threading.Event()
        self.hbm_index = 0
        self.kframe = None
        self.out = None
        self.exc = None
        self.done = False
        self.arrival = None   # (x, alu, axes, core) at an all_reduce
        self.result = None


class Lockstep:
    """Runs the programs of one group in lockstep; see the module docstring."""

    def __init__(self, c, group):
        self.c = c
        self.progs = [_Program(tuple(p) if p else (0,)) for p in group]
        self.by_thread: dict = {}
        self.back = threading.Event()
        self.aborted = False

    # -- in a program's thread ------------------------------------------------------------------
    def arrive(self, x, alu, axes, core, user):
        """Called by all_reduce in a program's thread: wait for the others, return the result."""
        p = self.by_thread[threading.get_ident()]
        p.arrival = (x, alu, axes, core, user)
        self._yield(p)
        if self.aborted:
            raise _Abort()
        r, p.result = p.result, None
        return r

    def _yield(self, p):
        c = self.c
        p.hbm_index, p.kframe = c.hbm_index, c.kframe
        self.back.set()
        p.go.wait()
        p.go.clear()

    # -- in the tracing thread ------------------------------------------------------------------
    def _resume(self, p):
        c = self.c
        c.pid, c.hbm_index, c.kframe = p.pid, p.hbm_index, p.kframe
        _context._CTX = c
        self.back.clear()
        p.go.set()
        self.back.wait()
        c.hbm_index, c.kframe = p.hbm_index, p.kframe

    def run(self, call):
        """call() traces the kernel once for the current program; returns program 0's output."""
        def body(p):
            p.go.wait()
            p.go.clear()
            if self.aborted:
                return
            try:
                p.out = call()
            except BaseException as e:  # noqa: BLE001 - re-raised in the tracing thread
                p.exc = e
            p.done = True
            p.hbm_index, p.kframe = self.c.hbm_index, self.c.kframe
            self.back.set()

        threads = []
        for p in self.progs:
            t = threading.Thread(target=body, args=(p,), daemon=True)
            t.start()
            self.by_thread[t.ident] = p
            threads.append(t)
        try:
            while True:
                for p in self.progs:
                    if not p.done:
                        self._resume(p)
                        if p.exc is not None:
                            raise p.exc
                waiting = [p for p in self.progs if not p.done]
                if not waiting:
                    break
                if len(waiting) != len(self.progs):
                    done = [p.pid for p in self.progs if p.done]
                    raise _context.fail(_err.NkiValueError,
                                        f"nl.all_reduce: programs {done} returned while programs "
                                        f"{[p.pid for p in waiting]} wait in an all_reduce; every "
                                        "program of the grid must call it the same number of times")
                self._reduce()
        finally:
            self.aborted = True
            for p in self.progs:  # let threads still parked (after an error) end
                if not p.done:
                    p.go.set()
        return self.progs[0].out

    def _reduce(self):
        x0, alu, axes, _, _ = self.progs[0].arrival
        shape = tuple(x0.shape)
        for p in self.progs:
            x, a2, ax2, _, _ = p.arrival
            if tuple(x.shape) != shape or a2 != alu or ax2 != axes:
                raise _context.fail(_err.NkiValueError,
                                    f"nl.all_reduce: program {p.pid} reduces a tile of shape "
                                    f"{list(x.shape)} (op {a2}, axes {ax2}); program "
                                    f"{self.progs[0].pid} one of shape {list(shape)} (op {alu}, "
                                    f"axes {axes}): every program must pass the same")
        b = self.c.b
        groups: dict = {}
        for p in self.progs:  # programs equal on every axis not reduced over
            key = tuple(v for i, v in enumerate(p.pid) if i not in axes)
            groups.setdefault(key, []).append(p)
        for members in groups.values():
            acc = _tile.new_tile(shape, "float32")
            b.tensor_copy(acc._pattern(), members[0].arrival[0]._pattern(), _names.VECTOR)
            for p in members[1:]:
                b.tensor_tensor(acc._pattern(), acc._pattern(), p.arrival[0]._pattern(), alu,
                                _names.VECTOR)
            for p in members:
                r = _tile.new_tile(shape, p.arrival[3], _names.SBUF, p.arrival[4])
                b.tensor_copy(r._pattern(), acc._pattern(), _names.VECTOR)
                _outputs.mark_written(r)
                p.result = r
                p.arrival = None


def all_reduce(x, op, program_axes, *, dtype=None, mask=None, parallel_reduce=True,
               asynchronous=False, **kwargs):
    """op-reduction of tile x over the SPMD programs along program_axes (an axis or a tuple);
    every program gets the result (cast to dtype, default x's dtype)."""
    from ._ops import _alu
    c = _context.ctx()
    _context.here()
    if not isinstance(x, _tile.NkiTensor) or x._rec.space == _names.HBM:
        raise _context.fail(_err.NkiTypeError, "nl.all_reduce reduces an on-chip tile (SBUF/PSUM)")
    if mask is not None:
        raise _context.fail(_err.NotSupportedError, "nl.all_reduce with mask=: not yet")
    axes = (program_axes,) if isinstance(program_axes, int) else tuple(program_axes)
    if any(not isinstance(a, int) or not 0 <= a < len(c.grid) for a in axes):
        raise _context.fail(_err.NkiValueError, f"nl.all_reduce: program_axes {program_axes!r} "
                            f"must be axes of the {len(c.grid)}-D launch grid")
    alu = _alu(op)
    user = dtype if dtype is not None else x.dtype
    core = _dtypes.dtname(user)
    n = 1
    for a in axes:
        n *= c.grid[a]
    lock = getattr(c, "lockstep", None)
    if lock is None:
        if n == 1:  # one program along the axes: the reduction is a copy
            r = _tile.new_tile(tuple(x.shape), core, _names.SBUF, user)
            c.b.tensor_copy(r._pattern(), x._pattern(), _names.VECTOR)
            _outputs.mark_written(r)
            return r
        raise NeedLockstep("nl.all_reduce across the programs of a launch grid is traced in "
                           "lockstep by nki.jit / simulate launches only")
    return lock.arrive(x, alu, axes, core, user)
