"""mask= on nki calls: the box a mask selects, and the operand views cut to it while the
instruction is emitted."""

from __future__ import annotations

from . import errors as _err
from ._context import fail, here
from ._index import IndexExpr, IndexMask
from ._tile import NkiTensor


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
