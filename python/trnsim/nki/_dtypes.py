"""dtypes of trnsim.nki: the core's dtype names for numpy / ml_dtypes / nki.language dtypes,
their sizes and numpy types."""

from __future__ import annotations

import numpy as np

from . import errors as _err

try:  # ml_dtypes gives numpy names to bf16 / fp8; without it those read back as float32
    import ml_dtypes as _mld
except ImportError:  # pragma: no cover
    _mld = None


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
