"""The Dynamo backend ``"trnsim"``: ``torch.compile(model, backend="trnsim", options={...})``.

Dynamo captures Python into FX graphs; AOTAutograd functionalizes each one and decomposes it
to Core ATen (``_compile.decomposition_table()``: Core ATen's decompositions, less those of
whole ops the op table implements), lifting parameters and buffers to graph inputs; the
forward (or inference) graph reaches ``_fw_compiler``, which hands it to
``_compile.compile_graph``. The backward graph, when autograd needs one, runs on the host for
now (``_bw_compiler``): the place where a trnsim backward compiler will go.
"""

from __future__ import annotations

import functools

import torch
from torch._dynamo.backends.common import AotAutograd

from . import _cache
from ._compile import compile_graph, decomposition_table, timed_capture
from ._options import Options
from ._runtime import HostGraph

BACKEND_NAME = "trnsim"


def _static_input_indices(n: int) -> set:
    """Positions of the AOT graph's inputs that are parameters or buffers (Dynamo marks them
    static); they become IR ``param`` inputs, uploaded once."""
    try:
        from torch._guards import TracingContext
        ctx = TracingContext.try_get()
        idx = getattr(getattr(ctx, "fw_metadata", None), "static_input_indices", None)
        if idx is not None:
            return {int(i) for i in idx if 0 <= int(i) < n}
    except (ImportError, AttributeError):
        pass
    return set()


def _is_recompile() -> bool:
    try:
        from torch._guards import CompileContext
        cid = CompileContext.current_compile_id()
        return cid is not None and (cid.frame_compile_id or 0) > 0
    except (ImportError, AttributeError):
        return False


def _fw_compiler(gm: torch.fx.GraphModule, example_inputs, *, options: Options, names):
    n = sum(1 for node in gm.graph.nodes if node.op == "placeholder")
    if _is_recompile():
        _cache.count("recompiles")
    return compile_graph(gm, options=options, name="forward",
                         param_indices=_static_input_indices(n),
                         display_names=names if names and len(names) == n else None)


def _bw_compiler(gm: torch.fx.GraphModule, example_inputs):
    # Backward runs on the host (eager ATen) until trnsim compiles backward graphs.
    return HostGraph(gm)


def trnsim_backend(gm: torch.fx.GraphModule, example_inputs, options=None, **kwargs):
    """Dynamo backend entry: ``torch.compile(model, backend="trnsim", options=...)``."""
    if "mode" in kwargs:
        kwargs.pop("mode")  # torch.compile's `mode` presets are Inductor's; nothing to do here
    opts = Options.parse(options)
    names = [node.name for node in gm.graph.nodes if node.op == "placeholder"]
    fw = functools.partial(_fw_compiler, options=opts, names=names)
    with timed_capture():
        return AotAutograd(fw_compiler=fw, bw_compiler=_bw_compiler, inference_compiler=fw,
                           decompositions=decomposition_table())(gm, example_inputs)


def register() -> None:
    """Registers the backend with Dynamo (once; also when found through the package's
    ``torch_dynamo_backends`` entry point)."""
    from torch._dynamo.backends import registry

    if BACKEND_NAME in registry._COMPILER_FNS:
        return
    if registry._BACKENDS.get(BACKEND_NAME) is not None:
        return  # being loaded through the entry point: lookup_backend registers it
    registry.register_backend(compiler_fn=trnsim_backend, name=BACKEND_NAME)
