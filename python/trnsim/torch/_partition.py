"""``fallback="cpu"``: split a graph so supported ops run on trnsim and the rest on the host.

``CapabilityBasedPartitioner`` groups the supported nodes into as few connected partitions as
the unsupported ones allow; each partition becomes a submodule compiled to trnsim, and the
top-level graph (unsupported ops plus calls of the partitions) runs on the host as an ordinary
FX GraphModule, op by op in eager PyTorch. ``last_run().summary_text()`` lists the host ops.
"""

from __future__ import annotations

import copy

import operator
import time

import torch
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupport

from . import _record
from ._dtypes import IR_DTYPE
from ._serialize import ir_op_name, node_location


class _Support(OperatorSupport):
    def __init__(self, supported, denied=frozenset()):
        super().__init__()
        self.supported = supported
        self.denied = denied  # names of nodes the compiler refused for their shapes or dtypes

    def is_node_supported(self, submodules, node) -> bool:
        if node.op != "call_function" or node.name in self.denied:
            return False
        if node.target is operator.getitem:
            src = node.args[0]
            return isinstance(src, torch.fx.Node) and self.is_node_supported(submodules, src)
        schema = getattr(node.target, "_schema", None)
        if schema is not None and not schema.returns and not node.users:
            return True  # value-less checks: the serializer drops them
        val = node.meta.get("val")
        vals = list(val) if isinstance(val, (tuple, list)) else [val]
        vals += [a.meta.get("val") for a in node.all_input_nodes]
        if not all(isinstance(v, torch.Tensor) and v.dtype in IR_DTYPE for v in vals):
            return False  # e.g. complex values (in or out): the IR cannot hold them
        return ir_op_name(node.target) in self.supported


def host_nodes(gm: torch.fx.GraphModule, supported, denied=frozenset()) -> list:
    """The call_function nodes of `gm` that must run on the host."""
    sup = _Support(supported, denied)
    return [n for n in gm.graph.nodes
            if n.op == "call_function" and not sup.is_node_supported({}, n)]


class _Part(torch.nn.Module):
    """A partition compiled to trnsim, called by the host graph like the submodule it
    replaces."""

    def __init__(self, fn, clock):
        super().__init__()
        self.fn = fn
        self.clock = clock

    def forward(self, *args):
        t0 = time.perf_counter()
        try:
            return self.fn(list(args))
        finally:
            self.clock[0] += time.perf_counter() - t0


class SplitGraph:
    """The host graph with its trnsim parts; a boxed callable like CompiledGraph."""

    def __init__(self, gm, host_ops, name, clock, parts):
        self._boxed_call = True
        self.gm = gm
        self.host_ops = host_ops
        self.name = name
        self.clock = clock
        self.parts = parts      #: the compiled parts, in order (CompiledGraph or HostGraph)

    def __call__(self, args):
        self.clock[0] = 0.0
        t0 = time.perf_counter()
        out = self.gm(*args)
        host = time.perf_counter() - t0 - self.clock[0]
        if self.host_ops:
            _record.add(_record.HostOps(self.name, list(self.host_ops), host_seconds=host))
        return out


def compile_split(gm: torch.fx.GraphModule, *, options, name, param_indices, display_names,
                  supported, denied=frozenset(), keep_dtype=frozenset()) -> SplitGraph:
    from ._compile import compile_graph

    # fuse_partitions rewrites the graph it is given: partition a copy, so that a retry after
    # another refused node (compile_graph) finds that node in the caller's graph again.
    part = CapabilityBasedPartitioner(copy.deepcopy(gm), _Support(supported, denied),
                                      allows_single_node_partition=True)
    fused = part.fuse_partitions(part.propose_partitions())
    placeholders = [n for n in fused.graph.nodes if n.op == "placeholder"]
    params = set(param_indices or ())
    static = {n for i, n in enumerate(placeholders) if i in params}
    static |= {n for n in fused.graph.nodes if n.op == "get_attr"}
    shown = {n: (display_names[i] if display_names and i < len(display_names) else n.name)
             for i, n in enumerate(placeholders)}
    clock = [0.0]
    parts = []
    k = 0
    for node in list(fused.graph.nodes):
        if node.op != "call_module":
            continue
        sub = fused.get_submodule(node.target)
        sub_params = [j for j, a in enumerate(node.args) if a in static]
        sub_names = [shown.get(a, getattr(a, "name", str(a))) for a in node.args]
        fn = compile_graph(sub, options=options, name=f"{name}_part{k}",
                           param_indices=sub_params, display_names=sub_names, split=False,
                           keep_dtype=keep_dtype)
        if hasattr(fn, "label"):
            fn.label = f"{name} part {k}"
        parts.append(fn)
        setattr(fused, node.target, _Part(fn, clock))
        k += 1
    host_ops = [(ir_op_name(n.target), node_location(n)) for n in fused.graph.nodes
                if n.op == "call_function" and n.target is not operator.getitem]
    fused.recompile()
    return SplitGraph(fused, host_ops, name, clock, parts)
