"""Element types across the boundary: torch dtype <-> IR dtype <-> numpy dtype.

The IR has no bool and no 64-bit types, so three torch dtypes travel as another one:
``torch.bool`` as ``u8`` (0/1), ``torch.int64`` as ``i32`` (values must fit; checked on the way
in) and ``torch.float64`` as ``f32``. Values coming back are converted to the dtype of the FX
node they stand for, so a caller sees the dtypes eager PyTorch would give.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch

from ._errors import DtypeError

#: torch dtype -> IR dtype spelling (compiler/graph.h irDtypeName).
IR_DTYPE = {
    torch.float32: "f32",
    torch.bfloat16: "bf16",
    torch.float16: "f16",
    torch.float64: "f32",
    torch.float8_e4m3fn: "f8e4m3",
    torch.float8_e5m2: "f8e5m2",
    torch.int32: "i32",
    torch.int64: "i32",
    torch.int16: "i16",
    torch.int8: "i8",
    torch.uint8: "u8",
    torch.bool: "u8",
    torch.uint16: "u16",
    torch.uint32: "u32",
}

#: IR dtype -> numpy dtype of the arrays that cross the pybind11 boundary.
NUMPY_DTYPE = {
    "f32": np.dtype(np.float32),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "f16": np.dtype(np.float16),
    "f8e4m3": np.dtype(ml_dtypes.float8_e4m3fn),
    "f8e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "i32": np.dtype(np.int32),
    "i16": np.dtype(np.int16),
    "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
}

#: IR dtype -> the torch dtype holding the same bits (for the zero-copy views below).
_TORCH_OF_IR = {
    "f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16,
    "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2, "i32": torch.int32,
    "i16": torch.int16, "i8": torch.int8, "u8": torch.uint8, "u16": torch.uint16,
    "u32": torch.uint32,
}

#: numpy has no bf16/fp8: those cross as a same-width integer view.
_BIT_VIEW = {"bf16": (torch.int16, np.int16), "f8e4m3": (torch.uint8, np.uint8),
             "f8e5m2": (torch.uint8, np.uint8), "u16": (torch.int16, np.int16),
             "u32": (torch.int32, np.int32)}

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def ir_dtype(dtype: torch.dtype, what: str = "a value") -> str:
    """The IR spelling of a torch dtype (DtypeError for complex and other unsupported ones)."""
    try:
        return IR_DTYPE[dtype]
    except KeyError:
        raise DtypeError(f"{what} has dtype {dtype}, which trnsim cannot hold; supported: "
                         "float32/64, bfloat16, float16, float8_e4m3fn/e5m2, int8/16/32/64, "
                         "uint8/16/32, bool") from None


def is_float(dtype: torch.dtype) -> bool:
    return dtype in _FLOATS


def to_numpy(t: torch.Tensor, ir: str, what: str) -> np.ndarray:
    """A contiguous numpy array of `t` in IR dtype `ir` (casting first where the IR dtype is
    narrower, e.g. int64 -> i32 after a range check that names `what`)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == torch.int64 and ir == "i32" and t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < _I32_MIN or hi > _I32_MAX:
            raise DtypeError(f"{what} is int64 with values in [{lo}, {hi}], outside int32: trnsim "
                             "has no 64-bit integers and carries int64 as i32")
    target = _TORCH_OF_IR[ir]
    if t.dtype != target:
        t = t.to(target)
    t = t.resolve_conj().resolve_neg().contiguous()
    if ir in _BIT_VIEW:
        tview, nview = _BIT_VIEW[ir]
        return t.view(tview).numpy().view(nview).view(NUMPY_DTYPE[ir])
    return t.numpy()


def from_numpy(a: np.ndarray, dtype: torch.dtype, shape, device=None) -> torch.Tensor:
    """A torch tensor of `dtype` and `shape` from an array the simulator returned (any IR
    dtype; u8 -> bool as `!= 0`, i32 -> int64, f32 -> float64 where the FX node says so)."""
    a = np.asarray(a)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, copy=True, order="C")
    name = _ir_of_numpy(a.dtype)
    if name in _BIT_VIEW:
        tview, nview = _BIT_VIEW[name]
        t = torch.from_numpy(a.view(nview)).view(tview).view(_TORCH_OF_IR[name])
    else:
        t = torch.from_numpy(a)
    if dtype == torch.bool and t.dtype != torch.bool:
        t = t != 0
    elif t.dtype != dtype:
        t = t.to(dtype)
    t = t.reshape(tuple(shape))
    if device is not None and t.device != torch.device(device):
        t = t.to(device)
    return t


def _ir_of_numpy(d: np.dtype) -> str:
    for k, v in NUMPY_DTYPE.items():
        if v == d:
            return k
    raise DtypeError(f"the simulator returned an array of numpy dtype {d}, which has no torch "
                     "counterpart here")
