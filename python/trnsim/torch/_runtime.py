"""Running a compiled graph: torch tensors in, the simulated chip, torch tensors out.

A ``CompiledGraph`` wraps one ``compiler.Executable``. Parameters (IR ``param`` inputs) are
uploaded into simulated HBM on the first call and again only when the tensor changed: another
object, another storage (``data_ptr``) or an in-place write (``_version``). What a param slot
holds is tracked per Executable, not per graph: the C++ session hands the same Executable to
every graph with the same IR text and chip (two instances of one model), so each graph
re-uploads its own weights when another one ran in between. Per-call inputs are converted
every call. Outputs come back as tensors of the FX node's dtype, shape, strides and device.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch.utils import _pytree as pytree

from . import _record
from ._dtypes import NUMPY_DTYPE, from_numpy, to_numpy
from ._errors import TrnsimTorchError, from_core
from ._serialize import SerializedGraph


#: Executable -> {param name: (weakref to the tensor it holds, state)}: what its simulated HBM
#: holds, shared by the CompiledGraphs that share the Executable. Held weakly, like the core's
#: compile cache holds executables: a graph nobody can call again frees its simulated memories.
_resident: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _resident_of(exe) -> dict:
    return _resident.setdefault(exe, {})


def _tensor_state(t: torch.Tensor):
    try:
        version = t._version
    except RuntimeError:  # inference tensors keep no version counter
        version = None
    return (version, t.data_ptr(), t.dtype, tuple(t.shape), t.device)


def _is_dense(shape, stride) -> bool:
    """Whether (shape, stride) is a permutation of a contiguous layout (no overlap, no gaps)."""
    dims = sorted((s, n) for n, s in zip(shape, stride) if n != 1)
    expected = 1
    for s, n in dims:
        if s != expected:
            return False
        expected *= n
    return True


def rebuild_outputs(sg: SerializedGraph, ir_values, args):
    """The FX graph's output structure from the IR outputs (torch tensors) and the inputs."""
    leaves = []
    for o in sg.outputs:
        if o.kind == "value":
            leaves.append(ir_values[o.ref])
        elif o.kind == "input":
            leaves.append(args[o.ref])
        else:
            leaves.append(o.ref)
    return pytree.tree_unflatten(leaves, sg.out_spec)


def to_output_tensor(a, o) -> torch.Tensor:
    """A simulator array (or None under timing_only) as the tensor output `o` describes."""
    if a is None:
        t = torch.zeros(o.shape, dtype=o.dtype, device=o.device)
    else:
        t = from_numpy(a, o.dtype, o.shape, o.device)
    if o.stride is not None and t.dim() > 1 and tuple(t.stride()) != o.stride \
            and _is_dense(o.shape, o.stride):
        t = torch.empty_strided(o.shape, o.stride, dtype=o.dtype, device=t.device).copy_(t)
    return t


class CompiledGraph:
    """A callable taking the graph's placeholder values (a list, AOTAutograd's boxed
    convention) and returning its outputs; runs on the simulated chip."""

    def __init__(self, sg: SerializedGraph, exe, *, label: str, timing_only: bool = False,
                 core_error=(), rounding: str = "rne", seed: int = 0):
        # In the instance dict: functools.wraps (torch._dynamo.disable) copies it.
        self._boxed_call = True
        self.sg = sg
        self.exe = exe
        self.label = label
        self.timing_only = timing_only
        self.rounding = rounding
        self._seed = seed
        self._calls = 0
        self._core_error = core_error  # the core's exception class, mapped to CompileError
        self._uploaded = _resident_of(exe)  # param name -> (weakref, tensor state)
        self._out_specs = {o.ref: o for o in reversed(sg.outputs) if o.kind == "value"}
        self._in_bytes = {i.name: _ir_bytes(i.ir, i.shape) for i in sg.inputs}
        self._hbm = dict(getattr(exe, "hbm_bytes", {}) or {})
        # Inputs are fed by name, outputs come back by position.
        names = [i.name for i in sg.inputs]
        if sorted(exe.input_names) != sorted(names) or len(exe.output_names) != len(
                sg.ir_outputs):
            raise TrnsimTorchError(
                f"the compiled graph's inputs/outputs {list(exe.input_names)} -> "
                f"{list(exe.output_names)} differ from the IR sent ({names} -> {sg.ir_outputs})")

    @property
    def ir_text(self) -> str:
        return self.sg.text

    def _upload(self, spec, t: torch.Tensor) -> None:
        if spec.transform is not None:  # options weights="fp8": the fp8 values or the scales
            t = spec.transform(t)
        self.exe.upload(spec.name, to_numpy(t, spec.ir, spec.what))

    def _feed(self, args) -> dict:
        if self.timing_only:
            return {}  # no values are computed: nothing needs to be in simulated HBM
        feed = {}
        for spec in self.sg.inputs:
            t = spec.constant if spec.index is None else args[spec.index]
            if not isinstance(t, torch.Tensor):
                raise TrnsimTorchError(f"{spec.what} is {type(t).__name__}, not a tensor")
            if spec.kind == "param":
                state = _tensor_state(t)
                known = self._uploaded.get(spec.name)
                if known is None or known[0]() is not t or known[1] != state:
                    self._upload(spec, t)
                    self._uploaded[spec.name] = (weakref.ref(t), state)
                continue
            feed[spec.name] = to_numpy(t, spec.ir, spec.what)
        return feed

    def _memory(self, args) -> dict:
        """What this run holds in HBM, for the step's memory breakdown (_record.RunRecord
        .memory): param tensors by storage address, other inputs by name, outputs, arena."""
        params, inputs = {}, []
        for spec in self.sg.inputs:
            t = spec.constant if spec.index is None else args[spec.index]
            ptr = t.data_ptr() if isinstance(t, torch.Tensor) else 0
            if spec.kind == "param":
                # A weight stored as fp8 has two inputs (values, scales) of one tensor.
                params[ptr] = params.get(ptr, 0) + self._in_bytes[spec.name]
            else:
                inputs.append((spec.name, self._in_bytes[spec.name], ptr))
        return {**self._hbm, "params": params, "inputs": inputs}

    def __call__(self, args):
        args = list(args)
        feed = self._feed(args)
        try:
            seed = (self._seed * 1_000_003 + self._calls) & 0xFFFFFFFFFFFF
            self._calls += 1
            outs, rec = self.exe.run(feed, timing_only=self.timing_only, rounding=self.rounding,
                                     seed=seed)
        except self._core_error as e:
            raise from_core(e, self.sg) from e
        _record.add(_record.GraphRun(self.label, rec, memory=self._memory(args)))
        values = [to_output_tensor(a, self._out_specs[k]) for k, a in enumerate(outs)]
        return rebuild_outputs(self.sg, values, args)


def _ir_bytes(ir: str, shape) -> int:
    return math.prod(int(d) for d in shape) * NUMPY_DTYPE[ir].itemsize


class HostGraph:
    """A graph with nothing for the chip (only inputs, constants or no ops), or a backward
    graph: runs on the host as the FX GraphModule it is."""

    def __init__(self, gm: torch.fx.GraphModule):
        self._boxed_call = True
        self.gm = gm

    def __call__(self, args):
        return self.gm(*args)
