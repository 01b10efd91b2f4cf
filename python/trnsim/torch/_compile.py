"""From an ATen FX graph to a callable: serialize, check ops, cache, compile.

Shared by the Dynamo backend (``_backend.py``) and ``trnsim.torch.compile`` (``_export.py``).
"""

from __future__ import annotations

import contextlib
import functools
import operator
import re
import time

import torch

from . import _cache
from ._errors import CompileError, UnsupportedOpError, from_core
from ._options import Options
from ._runtime import CompiledGraph, HostGraph
from ._serialize import _BAD_NAME_CHARS, SerializedGraph, serialize


def core():
    """The C++ compiler binding (``trnsim._trnsim.compiler``)."""
    try:
        from .._trnsim import compiler
    except ImportError as e:  # an older build without python/src/bind_compiler.cpp
        raise ImportError("this trnsim build has no compiler binding (trnsim._trnsim.compiler); "
                          "rebuild the package with `make`") from e
    return compiler


@functools.lru_cache(maxsize=1)
def supported_ops() -> frozenset:
    """Op names of the C++ op table."""
    return frozenset(core().supported_ops())


#: Ops Core ATen decomposes that trnsim's op table may implement as a whole (a kernel of the
#: library): they are kept when supported_ops() has them.
_KEEP_WHEN_SUPPORTED = ("_scaled_dot_product_flash_attention_for_cpu",)


#: Ops Core ATen keeps whole but PyTorch's full decomposition table decomposes; trnsim takes
#: their decomposition (gradient clipping's norms).
_ALSO_DECOMPOSED = (torch.ops.aten.linalg_vector_norm,)


def decomposition_table() -> dict:
    """``torch._decomp.core_aten_decompositions()`` plus those of _ALSO_DECOMPOSED, without the
    decompositions of the ops in _KEEP_WHEN_SUPPORTED that the op table has
    (scaled_dot_product_attention then reaches the compiler as one node instead of
    bmm/_softmax/bmm with mask arithmetic)."""
    from torch._decomp import core_aten_decompositions

    table = core_aten_decompositions()
    from torch._decomp import get_decompositions
    table.update(get_decompositions(_ALSO_DECOMPOSED))
    ops = supported_ops()
    for name in _KEEP_WHEN_SUPPORTED:
        if name in ops:
            packet = getattr(torch.ops.aten, name)
            for overload in packet.overloads():
                table.pop(getattr(packet, overload), None)
    return table


def _version() -> str:
    from .. import __version__
    return __version__


@contextlib.contextmanager
def timed_capture():
    """Adds the block's host time, less the C++ compiler's, to stats()["capture_seconds"]."""
    t0, c0 = time.perf_counter(), _cache.stats()["compile_seconds"]
    try:
        yield
    finally:
        spent = time.perf_counter() - t0 - (_cache.stats()["compile_seconds"] - c0)
        _cache.count("capture_seconds", spent)


def has_chip_work(gm: torch.fx.GraphModule) -> bool:
    return any(n.op == "call_function" and n.target is not operator.getitem
               for n in gm.graph.nodes)


def compile_graph(gm: torch.fx.GraphModule, *, options: Options, name: str = "forward",
                  param_indices=(), display_names=None, split: bool = True,
                  keep_dtype=frozenset()):
    """A boxed callable (takes the list of placeholder values) that runs `gm` on trnsim.
    `keep_dtype`: placeholder names whose dtype ``options.dtype`` leaves alone (serialize).

    Unsupported ops raise UnsupportedOpError, or with ``options.fallback == "cpu"`` the graph
    is split so they run on the host. With the fallback, a node the compiler refuses for its
    shapes or attributes (an "unsupported" CompileError naming the node's value) also moves to
    the host, and the graph is split again."""
    if not has_chip_work(gm):
        return HostGraph(gm)
    if options.fallback != "cpu" or not split:
        return _compile_graph(gm, options, name, param_indices, display_names, frozenset(),
                              keep_dtype)
    denied: set = set()
    while True:
        try:
            return _compile_graph(gm, options, name, param_indices, display_names,
                                  frozenset(denied), keep_dtype)
        except CompileError as e:
            node = _refused_node(e, gm)
            if node is None or node in denied:
                raise
            denied.add(node)


_VALUE_IN_WHERE = re.compile(r"\(\S+ -> %([A-Za-z0-9_.]+)\)")


def _refused_node(e: CompileError, gm: torch.fx.GraphModule):
    """The name of the FX node of `gm` whose IR node an "unsupported" error names, or None."""
    if "not supported" not in str(e.code):
        return None
    m = _VALUE_IN_WHERE.search(str(e.where or "")) or _VALUE_IN_WHERE.search(str(e.message))
    if not m:
        return None
    value = m.group(1).split(".")[0]
    for n in gm.graph.nodes:
        if n.op == "call_function" and _BAD_NAME_CHARS.sub("_", n.name) == value:
            return n.name
    return None


def _compile_graph(gm, options, name, param_indices, display_names, denied, keep_dtype):
    table = supported_ops()
    if options.fallback == "cpu":
        from ._partition import compile_split, host_nodes
        if host_nodes(gm, table, denied):
            return compile_split(gm, options=options, name=name, param_indices=param_indices,
                                 display_names=display_names, supported=table, denied=denied,
                                 keep_dtype=keep_dtype)
    sg = serialize(gm, name=name, param_indices=param_indices, display_names=display_names,
                   f32_as=options.dtype, keep_dtype=keep_dtype,
                   fp8_weights=options.weights == "fp8")
    if not sg.ir_outputs:
        return HostGraph(gm)
    missing = [u for u in sg.ops if u.op not in table]
    if missing:
        first = missing[0]
        raise UnsupportedOpError(first.op, first.aten, first.where,
                                 [(u.op, u.where) for u in missing])
    return build(sg, options, label=name)


def build(sg: SerializedGraph, options: Options, *, label: str) -> CompiledGraph:
    """Compiles serialized IR (through the disk cache) into a CompiledGraph."""
    comp = core()
    key = _cache.cache_key(sg.text, options.chip, _version())
    text = _cache.lookup(key) if options.cache else None
    t0 = time.perf_counter()
    try:
        if text is not None:
            exe = comp.compile(text, chip=options.chip, print_after=list(options.print_after))
            _cache.count("cache_hits")
        else:
            text = comp.check(sg.text)
            exe = comp.compile(text, chip=options.chip, print_after=list(options.print_after))
            _cache.count("compiles")
            if options.cache:
                _cache.store(key, text, {
                    "version": _version(), "chip": options.chip, "graph": sg.name,
                    "ops": len(sg.ops), "num_instructions": int(exe.num_instructions),
                    "cache_key": str(getattr(exe, "cache_key", ""))})
    except comp.CompileError as e:
        raise from_core(e, sg) from e
    finally:
        _cache.count("compile_seconds", time.perf_counter() - t0)
    return CompiledGraph(sg, exe, label=label, timing_only=options.timing_only,
                         core_error=comp.CompileError, rounding=options.rounding,
                         seed=options.seed)
