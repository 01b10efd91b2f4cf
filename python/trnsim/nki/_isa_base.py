"""The operand helpers of nki.isa and the instructions that composed ones are built from
(nc_matmul, activation, activation_reduce).

nki.isa re-exports everything here; isa_composed.py and mx.py call these directly, so imports run
one way: isa -> isa_composed / mx -> _isa_base (nki.isa is never imported back).
"""

from __future__ import annotations

import weakref as _weakref

from . import _dtypes, _mask, _outputs, _tile
from . import language as _nl
from ._names import PSUM as _PSUM
from ._names import SBUF as _SBUF
from ._ops import _act, _alu
from ._tile import NkiTensor
from ._context import here as _here


# ---- operand helpers -----------------------------------------------------------------------
def _ap(x):
    if x is None:
        return None
    if _mask._MASK is not None:
        x = _mask.mask_view(x)
    return x._pattern()


def _scalar(s):
    if s is None:
        return None
    if isinstance(s, NkiTensor):
        return _ap(s)
    return float(s)


def _is_tile(x):
    return isinstance(x, NkiTensor)


def _new(like, dtype=None, space=_SBUF, core=None):
    core = core or (_dtypes.dtname(dtype) if dtype is not None else like._rec.core)
    return _nl._tile_like(like, core, space, dtype)


def _split(args, kw, names):
    """Binds positional/keyword arguments to `names` (a dict name -> value)."""
    out = dict(zip(names, args))
    for k, v in kw.items():
        out[k] = v
    return out


def _mark(dst):
    if dst is not None:
        _outputs.mark_written(dst)


# ---- Tensor Engine -------------------------------------------------------------------------


def nc_matmul(*args, **kw):
    """dst[M, N] (+)= stationary[K, M].T @ moving[K, N] into PSUM (fp32).

    New style ``nc_matmul(dst, stationary, moving, ..., accumulate=None)``: accumulate=None
    accumulates when this PSUM tile already holds a matmul result of this kernel, else
    overwrites. Old style ``nc_matmul(stationary, moving)`` returns a new PSUM tile.
    """
    b = _here()
    new_style = "dst" in kw or (len(args) >= 3 and all(_is_tile(a) for a in args[:3]))
    a = _split(args, kw, ["dst", "stationary", "moving"] if new_style else ["stationary", "moving"])
    st, mv = a["stationary"], a["moving"]
    if a.get("tile_position") or a.get("tile_size"):
        pass  # row/column tiling is a timing hint; values are the same
    if a.get("is_stationary_onezero") or a.get("is_moving_onezero"):
        pass  # hints for the hardware; values are the same
    pm = a.get("perf_mode")
    dbl = pm is not None and str(getattr(pm, "value", pm)) == "double_row"
    tr = bool(a.get("is_transpose", False))
    if new_style:
        dst = a["dst"]
        acc = a.get("accumulate")
        if acc is None:
            key = (dst._off, dst.shape, dst._st)
            rec = dst._rec
            ent = _MM_DONE.get(id(rec))
            if ent is None or ent[0]() is not rec:
                ent = _MM_DONE[id(rec)] = (_weakref.ref(rec), set())
            acc = key in ent[1]
            ent[1].add(key)
        b.nc_matmul(_matmul_dst(dst, st, mv, dbl or tr), _ap(st), _ap(mv), bool(acc), dbl, tr)
        return dst
    M = st.free_size // (2 if dbl else 1)
    N = mv.free_size // (2 if dbl else 1)
    core = mv._rec.core if tr else "float32"
    dst = _tile.new_tile((M, N), core, _PSUM)  # whole; a mask decides which part is written
    b.nc_matmul(_matmul_dst(dst, st, mv, dbl or tr), _ap(st), _ap(mv), False, dbl, tr)
    return dst


def _matmul_dst(dst, st, mv, special=False):
    """dst's pattern for stationary.T @ moving: under a mask, rows = the stationary's kept
    free range, columns = the moving's (a mask on the contraction axis cuts no dst axis)."""
    if special or _mask._MASK is None or st.ndim != 2 or mv.ndim != 2 or dst.ndim != 2:
        return _ap(dst)
    return _mask.mask_dst(dst, (_mask.mask_range(st, 1), _mask.mask_range(mv, 1)))


_MM_DONE: dict = {}


# ---- Scalar Engine -------------------------------------------------------------------------


def activation(*args, **kw):
    """dst = op(data * scale + bias) [+ reduce along the free axis into reduce_res]."""
    b = _here()
    new_style = "dst" in kw or (args and _is_tile(args[0]))
    a = _split(args, kw, ["dst", "op", "data", "bias", "scale", "reduce_op", "reduce_res"]
               if new_style else ["op", "data", "bias", "scale", "reduce_op", "reduce_res", "dtype"])
    data = a["data"]
    dst = a["dst"] if new_style else _new(data, a.get("dtype"),
                                          core=None if a.get("dtype") is not None else
                                          (data._rec.core if _dtypes.is_float(data._rec.core) else "float32"))
    red = a.get("reduce_op")
    res = a.get("reduce_res")
    scale = a.get("scale", 1.0)
    b.activation(_ap(dst), _act(a["op"]), _ap(data), _ap(a.get("bias")),
                 _scalar(1.0 if scale is None else scale),
                 _alu(red) if res is not None else 0, _ap(res))
    return dst


def activation_reduce(*args, **kw):
    """activation plus a reduction (reduce_op) of the result along the free axis."""
    new_style = "dst" in kw or (args and _is_tile(args[0]))
    names = (["dst", "op", "data", "reduce_op", "reduce_res", "bias", "scale"] if new_style
             else ["op", "data", "reduce_op", "reduce_res", "bias", "scale", "dtype"])
    a = _split(args, kw, names)
    return activation(**a)
