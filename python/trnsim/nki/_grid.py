"""Which chip a kernel runs on and its launch grid (nl.nc / nl.spmd_dim axes)."""

from __future__ import annotations

import os

from . import errors as _err
from ._context import user_loc


_TARGET_ALIASES = {"gen2": "trn1", "gen3": "trn2", "gen4": "trn3", "trn1n": "trn1",
                   "inf2": "trn1"}
KNOWN_TARGETS = ("trn1", "trn2", "trn3")


def target_chip(explicit=None, kname=None) -> str:
    """The chip a kernel runs on: ``explicit`` (platform_target= / target= / chip=), else
    NEURON_PLATFORM_TARGET_OVERRIDE, else trn2. An unknown name is an error naming the kernel
    and the known targets (a path to a .json chip config is also accepted)."""
    env = os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE")
    t = explicit or env or "trn2"
    if not isinstance(t, (str, os.PathLike)):
        raise _err.make_error(
            _err.NkiTypeError, f"{kname or 'kernel'}: target {t!r} is not a chip name",
            user_loc())
    raw = os.fspath(t)
    if raw.endswith(".json") or os.sep in raw:
        return raw  # a chip config file: the core loads and checks it
    low = raw.lower()
    chip = _TARGET_ALIASES.get(low, low)
    if chip not in KNOWN_TARGETS:
        src = "target" if explicit else "NEURON_PLATFORM_TARGET_OVERRIDE"
        raise _err.make_error(
            _err.NkiValueError,
            f"{kname or 'kernel'}: unknown {src} {raw!r}; known targets are "
            f"{', '.join(KNOWN_TARGETS)} (also {', '.join(sorted(_TARGET_ALIASES))}), or the "
            "path of a .json chip config", user_loc())
    return chip


# ---- launch grids: nl.nc / nl.spmd_dim ---------------------------------------------------------


class NcDim(int):
    """``nl.nc(n)``: a launch-grid axis of n programs, one per physical NeuronCore."""

    def __new__(cls, n):
        n = int(n)
        if n < 1:
            raise _err.NkiValueError(f"nl.nc({n}): a NeuronCore dimension needs at least 1 core")
        return super().__new__(cls, n)

    def __repr__(self):
        return f"nl.nc({int(self)})"


class SpmdDim(int):
    """``nl.spmd_dim(a, b, ...)``: one launch-grid axis of a*b*... programs whose index is
    split into sub-dimensions (the first the most significant); a sub-dimension given as
    ``nl.nc(k)`` spreads the programs over k NeuronCores by its digit."""

    def __new__(cls, *dims):
        if not dims:
            raise _err.NkiValueError("nl.spmd_dim() needs at least one sub-dimension")
        size = 1
        for d in dims:
            if int(d) < 1:
                raise _err.NkiValueError(f"nl.spmd_dim{tuple(dims)}: sizes must be >= 1")
            size *= int(d)
        o = super().__new__(cls, size)
        o.dims = tuple(dims)
        return o

    def __repr__(self):
        return f"nl.spmd_dim({', '.join(repr(d) for d in self.dims)})"


def resolve_grid(grid, kname="kernel"):
    """(sizes, core_of) of a launch grid. core_of(pid) is the NeuronCore of a grid point when
    the grid has nl.nc / nl.spmd_dim(nl.nc(...)) axes (core_of(None) = the number of cores),
    else None."""
    if not isinstance(grid, (tuple, list)):
        grid = (grid,)
    sizes = []
    digits = []  # (axis, divisor, radix) of each NeuronCore sub-dimension, axis order
    for ax, g in enumerate(grid):
        if isinstance(g, SpmdDim):
            below = int(g)
            for d in g.dims:
                below //= int(d)
                if isinstance(d, NcDim):
                    digits.append((ax, below, int(d)))
        elif isinstance(g, NcDim):
            digits.append((ax, 1, int(g)))
        try:
            n = int(g)
        except TypeError:
            raise _err.NkiTypeError(f"{kname}[...]: a launch grid takes ints, nl.nc(n) or "
                                    f"nl.spmd_dim(...), not {g!r}") from None
        if n < 1:
            raise _err.NkiValueError(f"{kname}[...]: grid sizes must be >= 1, not {n}")
        sizes.append(n)
    if not digits:
        return tuple(sizes), None
    total = 1
    for _, _, r in digits:
        total *= r

    def core_of(pid):
        if pid is None:
            return total
        core = 0
        for ax, div, radix in digits:
            core = core * radix + (pid[ax] // div) % radix
        return core
    return tuple(sizes), core_of
