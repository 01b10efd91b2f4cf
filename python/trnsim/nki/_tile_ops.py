"""nki.language's operators and conversions on tiles: ``t[...] = v``, ``a + b``, ``-a``,
``t += x``, ``t.astype``, ``t.view``, ``t.broadcast_to``, ``t.expand_dims``. The tile class
(_tile.py) knows shapes and views only; this module, imported by nki.language, adds what
emits instructions, so the dependency runs one way: language -> _tile_ops -> _tile."""

from __future__ import annotations

from . import _nl_base, _nl_elementwise, bitcast
from ._index import IndexExpr
from ._tile import DynIndex, NkiTensor


class _TileOps:
    """The methods given to NkiTensor (copied onto the class below)."""

    def __setitem__(self, key, value):
        dst = self[key]
        if isinstance(value, NkiTensor):
            if (value._rec is dst._rec and value._off == dst._off and value._st == dst._st
                    and value.shape == dst.shape):
                return  # t[i] += x already wrote in place
            _nl_base._assign(dst, value)
        else:
            _nl_base._fill(dst, value)

    def view(self, dtype):
        """The same bytes read as ``dtype`` (same width), in a new on-chip tile (bitcast.py)."""
        return bitcast.view(self, dtype)

    def broadcast_to(self, shape):
        """A view of this tensor with ``shape`` by numpy broadcasting (stride 0 on the
        broadcast axes; no copy). An on-chip tile broadcast along its partition axis is
        copied through HBM first: engines cannot read one partition into many."""
        return _nl_base._broadcast_view(self, shape)

    def expand_dims(self, axis):
        return _nl_base.expand_dims(self, axis)

    def astype(self, dtype):
        """A copy of the tile converted to ``dtype`` (a new SBUF tile)."""
        return _nl_base.static_cast(self, dtype)

    # -- operators (nki.language arithmetic) ----------------------------------------------------
    def _bin(self, other, op, rev=False):
        return _nl_elementwise._binary(self, other, op, rev)

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
        return _nl_elementwise.abs(self)

    def __invert__(self):
        return _nl_elementwise.invert(self)

    def _inplace(self, o, op):
        _nl_elementwise._binary(self, o, op, False, dst=self)
        return self

    def __iadd__(self, o):
        return self._inplace(o, "add")

    def __isub__(self, o):
        return self._inplace(o, "subtract")

    def __imul__(self, o):
        return self._inplace(o, "multiply")

    def __itruediv__(self, o):
        return self._inplace(o, "divide")


for _name, _fn in vars(_TileOps).items():
    if _name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
        setattr(NkiTensor, _name, _fn)
