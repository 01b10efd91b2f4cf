"""The Dynamo backend ``"trnsim"``: ``torch.compile(model, backend="trnsim", options={...})``.

Dynamo captures Python into FX graphs; AOTAutograd functionalizes each one and decomposes it
to Core ATen (``_compile.decomposition_table()``: Core ATen's decompositions, less those of
whole ops the op table implements), lifting parameters and buffers to graph inputs; the
forward (or inference) graph reaches ``_fw_compiler`` and the backward graph, when autograd
needs one, ``_bw_compiler``; both hand it to ``_compile.compile_graph``. Which activations the
forward saves for the backward is AOTAutograd's min-cut partitioner's decision (it recomputes
cheap pointwise ops in the backward instead of saving them). The optimizer step compiles
through the same backend with ``phase="optimizer"`` (``_optim.compile_optimizer``).
"""

from __future__ import annotations

import functools

import torch
from torch._dynamo.backends.common import AotAutograd

from . import _cache
from ._compile import compile_graph, decomposition_table, timed_capture
from ._errors import OptionsError
from ._options import Options

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


def _fw_compiler(gm: torch.fx.GraphModule, example_inputs, *, options: Options, names,
                 phase: str, f32_saved: set, inference: bool = False):
    if options.weights is not None and not inference:
        raise OptionsError(
            f"options['weights'] = {options.weights!r} is for inference: the backward would "
            "read the full-precision weights; call the compiled model under torch.no_grad() "
            "(or torch.inference_mode())")
    n = sum(1 for node in gm.graph.nodes if node.op == "placeholder")
    if _is_recompile():
        _cache.count("recompiles")
    fn = compile_graph(gm, options=options, name=phase, param_indices=_static_input_indices(n),
                       display_names=names if names and len(names) == n else None)
    f32_saved.update(getattr(getattr(fn, "sg", None), "f32_outputs", ()))
    return fn


def _bw_compiler(gm: torch.fx.GraphModule, example_inputs, *, options: Options,
                 f32_saved: set):
    # Inputs are the activations the forward saved (the backward's placeholders carry the
    # forward's node names) and the output gradients ("tangents"); weights the backward reads
    # are among the saved values, fed per call like any input. Under options dtype, values the
    # forward computed in f32 on purpose (attention's logsumexp) stay f32.
    with timed_capture():
        return compile_graph(gm, options=options, name="backward",
                             keep_dtype=frozenset(f32_saved))


def _partitioner(opts: Options):
    from torch._functorch import partitioners
    if opts.recompute == "none":
        return partitioners.default_partition
    return partitioners.min_cut_rematerialization_partition


def trnsim_backend(gm: torch.fx.GraphModule, example_inputs, options=None, *,
                   phase: str = "forward", **kwargs):
    """Dynamo backend entry: ``torch.compile(model, backend="trnsim", options=...)``.
    `phase` labels the graphs' runs in ``last_run()`` ("forward"; "optimizer" for
    ``compile_optimizer``)."""
    if "mode" in kwargs:
        kwargs.pop("mode")  # torch.compile's `mode` presets are Inductor's; nothing to do here
    opts = Options.parse(options)
    names = [node.name for node in gm.graph.nodes if node.op == "placeholder"]
    f32_saved: set = set()
    fw = functools.partial(_fw_compiler, options=opts, names=names, phase=phase,
                           f32_saved=f32_saved)
    inf = functools.partial(_fw_compiler, options=opts, names=names, phase=phase,
                            f32_saved=f32_saved, inference=True)
    bw = functools.partial(_bw_compiler, options=opts, f32_saved=f32_saved)
    with timed_capture():
        return AotAutograd(fw_compiler=fw, bw_compiler=bw, inference_compiler=inf,
                           partition_fn=_partitioner(opts),
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
