"""Index expressions (nl.arange / nl.mgrid) and the masks built from them."""

from __future__ import annotations

import numpy as np

from . import errors as _err


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
