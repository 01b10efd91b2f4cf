"""A kernel's outputs: which HBM elements its instructions wrote, the check for outputs left
partly unwritten, and reading the returned tensors back as numpy."""

from __future__ import annotations

import os

import numpy as np

from . import _mask
from . import errors as _err
from ._dtypes import numpy_dtype
from ._mask import mask_view
from ._names import HBM, PSUM
from ._tile import NkiTensor


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
        v = mask_view(dst) if _mask._MASK is not None else dst
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
