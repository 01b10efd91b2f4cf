"""``trnsim.torch.compile(model, example_inputs, **options)``: ahead of time, via torch.export.

``torch.export.export`` captures the whole forward as one graph (no graph breaks: code that
Dynamo would break on is an export error), ``run_decompositions`` lowers it to Core ATen, and
the graph module's graph is compiled like a Dynamo graph. Parameters and buffers are read from
the model at each call (so updates to the model are seen and re-uploaded), buffer mutations
the graph returns are written back, and the outputs take the model's output structure.
"""

from __future__ import annotations

import torch
from torch.export.graph_signature import InputKind, OutputKind
from torch.utils import _pytree as pytree

from . import _record
from ._compile import compile_graph, decomposition_table, timed_capture
from ._options import Options


class TrnsimModule(torch.nn.Module):
    """The compiled model: call it like the model (same arguments structure, same outputs).

    ``.exported`` is the decomposed ExportedProgram, ``.graph`` the compiled graph
    (``CompiledGraph``: ``.ir_text``, ``.exe``; or ``SplitGraph`` with ``fallback="cpu"``)."""

    def __init__(self, model: torch.nn.Module, exported, graph, options: Options):
        super().__init__()
        self._model = [model]  # a list: not registered as a submodule (no double parameters)
        self.exported = exported
        self.graph = graph
        self.options = options
        sig = exported.graph_signature
        self._inputs = list(sig.input_specs)
        self._outputs = list(sig.output_specs)

    @property
    def ir_text(self) -> str | None:
        return getattr(self.graph, "ir_text", None)

    def _state(self, spec):
        model = self._model[0]
        name = spec.target
        if spec.kind == InputKind.PARAMETER:
            try:
                return model.get_parameter(name)
            except AttributeError:
                return self.exported.state_dict[name]
        if spec.kind == InputKind.BUFFER:
            try:
                return model.get_buffer(name)
            except AttributeError:
                return self.exported.state_dict.get(name, self.exported.constants.get(name))
        return self.exported.constants[name]

    def forward(self, *args, **kwargs):
        ep = self.exported
        flat, spec = pytree.tree_flatten((args, kwargs))
        if spec != ep.call_spec.in_spec:
            raise TypeError(f"called with arguments structured as {spec}, but compiled for "
                            f"{ep.call_spec.in_spec}")
        user = iter(flat)
        values, user_values = [], []
        for s in self._inputs:
            if s.kind == InputKind.USER_INPUT:
                v = next(user)
                values.append(v)
                user_values.append(v)
            else:
                values.append(self._state(s))
        token = _record._explicit_call.set(object())
        try:
            with torch.no_grad():
                outs = self.graph(values)
        finally:
            _record._explicit_call.reset(token)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        results = []
        user_specs = [s for s in self._inputs if s.kind == InputKind.USER_INPUT]
        user_by_name = {s.arg.name: v for s, v in zip(user_specs, user_values)}
        for s, v in zip(self._outputs, outs):
            if s.kind == OutputKind.BUFFER_MUTATION:
                buf = self._state(next(i for i in self._inputs
                                       if i.kind == InputKind.BUFFER and i.target == s.target))
                with torch.no_grad():
                    buf.copy_(v)
            elif s.kind == OutputKind.USER_INPUT_MUTATION:
                with torch.no_grad():
                    user_by_name[s.target].copy_(v)
            else:
                results.append(v)
        return pytree.tree_unflatten(results, ep.call_spec.out_spec)


def compile(model: torch.nn.Module, example_inputs, example_kwargs=None, **options):
    """Compiles `model` for trnsim ahead of time with torch.export (static shapes: the
    shapes of `example_inputs`). Options as for ``torch.compile(..., backend="trnsim")``.
    Returns a ``TrnsimModule`` to call like the model."""
    opts = Options.parse(options)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    with timed_capture():
        ep = torch.export.export(model, tuple(example_inputs), kwargs=example_kwargs or None)
        ep = ep.run_decompositions(decomposition_table())
        sig = ep.graph_signature
        params = [i for i, s in enumerate(sig.input_specs) if s.kind != InputKind.USER_INPUT]
        names = [s.target if s.kind != InputKind.USER_INPUT else getattr(s.arg, "name", f"arg{i}")
                 for i, s in enumerate(sig.input_specs)]
        graph = compile_graph(ep.graph_module, options=opts, name="forward",
                              param_indices=params, display_names=names)
    return TrnsimModule(model, ep, graph, opts)
