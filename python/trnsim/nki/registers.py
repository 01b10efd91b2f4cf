"""NKI's virtual registers (``nisa.register_alloc/move/store``, ``nl.virtual_register``).

trnsim unrolls a kernel while tracing it, so a register is simulated by the value it holds
at trace time: one set by ``register_alloc(x)`` or ``register_move`` (compile-time integers
or another register) is known, and works wherever NKI takes a register: ``nl.dynamic_range``
bounds, ``while reg:`` conditions, ``int(reg)``, and ``register_store`` (a memset of the value).
``register_load`` reads the value from memory at run time, which a traced instruction stream
cannot branch on: it raises NotSupportedError at the kernel line (nki/api.py says why).
"""

from __future__ import annotations

from . import _context, _names, _outputs, _tile
from . import errors as _err
from ._names import HBM as _HBM
from ._tile import NkiTensor


class VirtualRegister:
    """A register whose value is known while the kernel is traced (None: not set yet)."""

    def __init__(self, state=None, frozen=False):
        self.value = None if state is None else _int(state)
        self.frozen = bool(frozen)

    def _get(self):
        if self.value is None:
            _context.here()
            raise _context.fail(_err.NkiValueError,
                                "this virtual register holds no value yet: set it with "
                                "nisa.register_alloc(x) or nisa.register_move(reg, x)")
        return self.value

    def __index__(self):
        return self._get()

    __int__ = __index__

    def __bool__(self):
        return self._get() != 0

    def __repr__(self):
        return f"VirtualRegister({self.value})"


def _int(x):
    if isinstance(x, VirtualRegister):
        return x._get()
    if isinstance(x, NkiTensor):
        raise _context.fail(_err.NotSupportedError,
                            "a register set from a tile holds a value known only at run time; "
                            "trnsim traces kernels into a fixed instruction stream (use an int)")
    try:
        return int(x)
    except (TypeError, ValueError):
        raise _context.fail(_err.NkiTypeError,
                            f"a register holds a 32-bit integer, not {x!r}") from None


def register_alloc(x=None):
    """A new register, holding the integer x (or nothing yet)."""
    _context.here()
    return VirtualRegister(None if x is None else _int(x))


def register_move(dst, src):
    """dst = src (a compile-time integer or another register)."""
    _context.here()
    if not isinstance(dst, VirtualRegister):
        raise _context.fail(_err.NkiTypeError, "register_move: dst must be a virtual register "
                            "(nisa.register_alloc())")
    dst.value = _int(src)
    return dst


def register_store(dst, src):
    """Writes register src's value into the one-element tensor dst (HBM or SBUF)."""
    b = _context.here()
    if not isinstance(dst, NkiTensor) or dst.free_size * dst.partitions != 1:
        raise _context.fail(_err.NkiValueError, "register_store: dst must be a tensor with exactly "
                            "one element ([1] or [1, 1])")
    if not isinstance(src, VirtualRegister):
        raise _context.fail(_err.NkiTypeError, "register_store: src must be a virtual register")
    value = float(src._get())
    if dst._rec.space == _HBM:
        t = _tile.new_tile((1, 1), dst._rec.core)
        b.memset(t._pattern(), value, _names.VECTOR)
        b.dma_copy(dst._pattern(), t._pattern(), -1, None, 0, False)
    else:
        b.memset(dst._pattern(), value, _names.VECTOR)
    _outputs.mark_written(dst)
    return dst
