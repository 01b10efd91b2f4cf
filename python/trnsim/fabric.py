"""trnsim.fabric: systems, the collective cost model and multi-chip runs from Python.

    from trnsim import fabric
    fabric.estimate("trn2.48xlarge", "all_reduce", "256MiB")["busbw_gbps"]
    fabric.load_system("trn2-ultraserver")["scale_up"]

Thin wrappers over ``trnsim._trnsim.fabric`` (python/src/bind_fabric.cpp); sizes may be given
as numbers of bytes or as strings with a unit ("8", "4K", "1MiB", "1GB"), as the
``trnsim collective`` command takes them. docs/fabric.md explains the model.
"""

from __future__ import annotations

import functools as _functools
import re as _re

from ._trnsim import fabric as _f

Cluster = getattr(_f, "Cluster", None)
FabricError = _f.FabricError
load_system = _f.load_system
builtin_systems = _f.builtin_systems
busbw_factor = _f.busbw_factor

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1 << 20, "mb": 10**6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30, "t": 1 << 40,
          "tb": 10**12, "tib": 1 << 40}


def parse_bytes(size) -> int:
    """Bytes of 8, "4K" (KiB), "1MiB", "1MB" (10^6), "1GiB", ... (a plain number is bytes)."""
    if isinstance(size, (int,)) or (hasattr(size, "__index__") and not isinstance(size, str)):
        n = int(size)
    else:
        m = _re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(size))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(f"size {size!r}: expected bytes such as 8, 4K, 1MiB, 1GB or 1GiB")
        n = int(float(m.group(1)) * _UNITS[unit])
    if n < 0:
        raise ValueError(f"size {size!r} is negative")
    return n


@_functools.lru_cache(maxsize=64)
def model(system: str, chips: int | None = None):
    """The collective model of ``chips`` chips of ``system`` (built once per (system, chips)
    and kept: later calls are cheap). A changed system *file* needs model.cache_clear()."""
    return _f.CollectiveModel(system, chips)


def estimate(system: str, op: str, size, chips: int | None = None, algorithm: str = "auto",
             group_size: int = 0, group_stride: int = 1, concurrent_groups: bool = True) -> dict:
    """Time of one collective from the analytical fabric model (docs/fabric.md): ``size`` per
    rank (nccl-tests convention) on ``chips`` chips of ``system`` (default: one scale-up
    domain). Returns time_s, algorithm, algbw_gbps, busbw_gbps, ranks, phases, candidates."""
    return model(system, chips).estimate(op, parse_bytes(size), algorithm, group_size,
                                         group_stride, concurrent_groups)


def sweep(system: str, op: str = "all_reduce", sizes=None, **kwargs) -> list:
    """``estimate`` over sizes (default 8 B to 8 GiB by x4, as ``trnsim collective --sweep``)."""
    if sizes is None:
        sizes = [8 * 4**i for i in range(16)]
    return [estimate(system, op, s, **kwargs) for s in sizes]


CollectiveModel = _f.CollectiveModel

__all__ = ["estimate", "sweep", "model", "CollectiveModel", "parse_bytes", "load_system", "builtin_systems",
           "busbw_factor", "Cluster", "FabricError"]
