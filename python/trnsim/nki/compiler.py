"""trnsim.nki.compiler (``ncc``): NKI's compiler controls and direct SBUF/PSUM allocation.

The kernel decorators (``skip_middle_end_transformations``, ``enable_stack_allocator``,
``force_auto_alloc``) change how neuronx-cc compiles a kernel, not what it computes; trnsim
runs the kernel's instructions as written, so they return the kernel unchanged.

Direct allocation (``ncc.sbuf.alloc(func)``, ``ncc.sbuf.mod_alloc(...)`` and the PSUM ones)
is accepted and checked: every logical block's placement is computed as the documented
function gives it and must lie inside SBUF (a partition's bytes) or PSUM (a bank), with the
partition-start rules of the ISA; a placement that does not fit raises ``CapacityError`` at
the kernel line, as implicit allocation does. The tensor itself is then allocated by trnsim's
allocator with one buffer per logical block (the values are the same; blocks that the
placement would alias, e.g. mod_alloc's double buffers, do not share memory here), and that
allocation is checked against capacity with the same errors as ``buffer=nl.sbuf``.
"""

from __future__ import annotations

import functools as _functools

from . import _context, _dtypes
from . import errors as _err
from .language import _Buffer
from ._names import PSUM as _PSUM
from ._names import SBUF as _SBUF


def _decorator(doc):
    def deco(func=None, **options):
        if func is None:
            return lambda f: f
        return func
    deco.__doc__ = doc
    return deco


skip_middle_end_transformations = _decorator(
    "Skip the compiler's middle-end transformations (no effect in trnsim: the kernel's "
    "instructions run as written).")
enable_stack_allocator = _decorator(
    "Allocate SBUF/PSUM tensors with a stack allocator (no effect on values in trnsim; "
    "tiles are allocated first-fit as the kernel declares them).")
force_auto_alloc = _decorator(
    "Ignore direct allocation in the kernel (trnsim always allocates itself; placements are "
    "still checked).")


class _Placed(_Buffer):
    """A buffer= value that places each logical block of the tensor (ncc.*.alloc)."""

    def __init__(self, name, space, func, what):
        super().__init__(name, space, None)
        self.func = func
        self.what = what

    def __repr__(self):
        return f"ncc.{self.what}"

    def check(self, shape, pd, core):
        """Checks the placement of every logical block of a tensor of ``shape`` whose
        partition axis is ``pd`` (axes before it are block axes)."""
        import itertools
        info = _context.ctx().info
        blocks = [int(s) for s in shape[:pd]]
        pdim = int(shape[pd])
        fbytes = _dtypes._DTYPE_SIZE[core]
        for s in shape[pd + 1:]:
            fbytes *= int(s)
        for idx in itertools.product(*[range(n) for n in blocks]):
            loc = self.func(tuple(idx), pdim, fbytes)
            if self.space == _SBUF:
                self._check_sbuf(idx, loc, pdim, fbytes, info)
            else:
                self._check_psum(idx, loc, pdim, fbytes, info)

    def _bad(self, cls, idx, text):
        return _context.fail(cls, f"{self.what}: logical block {tuple(idx)}: {text}")

    @staticmethod
    def _start_ok(start, pdim):
        if pdim > 64:
            return start == 0
        if pdim > 32:
            return start in (0, 64)
        return start in (0, 32, 64, 96)

    def _check_sbuf(self, idx, loc, pdim, fbytes, info):
        try:
            start, addr = (int(v) for v in loc)
        except (TypeError, ValueError):
            raise self._bad(_err.NkiValueError, idx,
                            f"the allocation function must return (start_partition, byte_addr), "
                            f"not {loc!r}") from None
        if not self._start_ok(start, pdim):
            raise self._bad(_err.VerifyError, idx,
                            f"start_partition {start} is not allowed for a {pdim}-partition tile "
                            "(over 64 partitions: 0; over 32: 0 or 64; else 0/32/64/96)")
        if start + pdim > info["partitions"]:
            raise self._bad(_err.CapacityError, idx,
                            f"partitions {start}..{start + pdim - 1} are past the "
                            f"{info['partitions']} SBUF partitions")
        end = addr + fbytes
        if addr < 0 or end > info["sbuf_bytes_per_partition"]:
            raise self._bad(_err.CapacityError, idx,
                            f"bytes {addr}..{end} of each partition are outside the "
                            f"{info['sbuf_bytes_per_partition']} bytes of an SBUF partition")

    def _check_psum(self, idx, loc, pdim, fbytes, info):
        try:
            bank, start, addr = (int(v) for v in loc)
        except (TypeError, ValueError):
            raise self._bad(_err.NkiValueError, idx,
                            f"the allocation function must return (bank_id, start_partition, "
                            f"byte_addr), not {loc!r}") from None
        bank_bytes = info["psum_bank_bytes"]
        if not 0 <= bank < info["psum_banks"]:
            raise self._bad(_err.CapacityError, idx,
                            f"PSUM bank {bank} does not exist (banks 0..{info['psum_banks'] - 1})")
        if not self._start_ok(start, pdim) or start + pdim > info["partitions"]:
            raise self._bad(_err.VerifyError, idx,
                            f"start_partition {start} is not allowed for a {pdim}-partition tile")
        if addr < 0 or addr + fbytes > bank_bytes:
            raise self._bad(_err.CapacityError, idx,
                            f"bytes {addr}..{addr + fbytes} are outside a {bank_bytes}-byte PSUM "
                            "bank (a physical PSUM tile cannot span banks)")


def _num_elems(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _linearize(shape, indices):
    return sum(i * _num_elems(shape[d + 1:]) for d, i in enumerate(indices))


def _modulo(base, shape, scale):
    """The documented modulo placement: base + linearize(shape, idx % shape) * scale."""
    def f(indices):
        sh = tuple(shape) if shape else (1,) * len(indices)
        mod = tuple(i % s for i, s in zip(indices, sh))
        return _linearize(sh, mod) * scale + base
    return f


class _Space:
    """``ncc.sbuf`` / ``ncc.psum``: usable as ``buffer=`` (automatic allocation) and holding
    the direct allocation functions ``alloc``, ``mod_alloc`` and ``auto_alloc``."""

    def __init__(self, name, space):
        self.name = name
        self.space = space
        self.kind = None

    def __repr__(self):
        return f"ncc.{self.name}"

    def auto_alloc(self):
        """The tensor is allocated by the compiler: the same as buffer=nl.sbuf / nl.psum."""
        from . import language as nl
        return nl.sbuf if self.space == _SBUF else nl.psum

    def alloc(self, func):
        """Places logical block ``idx`` where ``func(idx, pdim_size, fdim_size)`` says:
        ``(start_partition, byte_addr)`` in SBUF, ``(bank_id, start_partition, byte_addr)``
        in PSUM. Checked against capacity; see the module docstring."""
        if not callable(func):
            raise _err.NkiTypeError(f"ncc.{self.name}.alloc takes a callable, not {func!r}")
        return _Placed(self.name, self.space, func, f"{self.name}.alloc")

    def mod_alloc(self, *, base_addr=0, base_partition=0, num_par_tiles=(), num_free_tiles=(),
                  base_bank=None, num_bank_tiles=()):
        """Modulo allocation: block ``idx`` goes to tile ``idx % num_*_tiles`` from the base
        address (and, in PSUM, from ``base_bank`` over ``num_bank_tiles`` banks)."""
        if self.space == _SBUF:
            if base_bank is not None or num_bank_tiles:
                raise _err.NkiTypeError("ncc.sbuf.mod_alloc has no base_bank / num_bank_tiles")

            def f(idx, pdim, fdim):
                return (_modulo(base_partition, num_par_tiles, pdim)(idx),
                        _modulo(base_addr, num_free_tiles, fdim)(idx))
        else:
            if base_bank is None:
                raise _err.NkiTypeError("ncc.psum.mod_alloc needs base_bank=")

            def f(idx, pdim, fdim):
                return (_modulo(base_bank, num_bank_tiles, 1)(idx),
                        _modulo(base_partition, num_par_tiles, pdim)(idx),
                        _modulo(base_addr, num_free_tiles, fdim)(idx))
        return _Placed(self.name, self.space, f, f"{self.name}.mod_alloc")


sbuf = _Space("sbuf", _SBUF)
psum = _Space("psum", _PSUM)

__all__ = ["skip_middle_end_transformations", "enable_stack_allocator", "force_auto_alloc",
           "sbuf", "psum"]

del _functools
