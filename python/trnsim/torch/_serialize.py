"""FX graph (Core ATen) -> trnsim graph IR text (src/trnsim/compiler/text.h).

One job: turn a torch.fx graph whose nodes carry ``meta["val"]`` (fake tensors, as AOTAutograd
and torch.export leave them) into the IR text the C++ compiler parses, plus the tables the
runtime needs to feed it (which placeholder is which IR input) and to rebuild the outputs.

The rules (docs/torch.md has them with examples):

- header ``graph NAME(%x: f32[2, 64] input, %w: f32[64, 64] param) {``; placeholders of model
  parameters/buffers (``param_indices``) and ``get_attr`` constants are ``param``, the rest
  ``input``; value names are the FX node names reduced to ``[A-Za-z0-9_.]``;
- each ``call_function`` node is ``%name: type = OP(%in, ...) {attrs} @"file.py:LINE"`` with
  OP the ATen packet name (``aten.add.Tensor`` -> ``add``; other namespaces keep theirs:
  ``transformers.grouped_mm_fallback``); its arguments follow the op schema: FX nodes are
  inputs, Tensor[] lists are inputs (Optional[Tensor][] adds ``<arg>_present=[1, 0]``), a
  left-out Optional[Tensor] followed by a tensor input adds ``<arg>_present=0``, everything
  else is an attribute named by the schema argument, schema defaults filled in (``device``,
  ``layout``, ``pin_memory``, ``memory_format``, ``non_blocking`` and None are left out);
- ops that return nothing (``aten._assert_tensor_metadata``) emit nothing;
- a cast to bool (``_to_copy`` to torch.bool from another dtype) is written ``ne(%x)
  {other=0}``: the IR's u8 cannot tell a bool cast (x != 0) from a uint8 cast (truncation);
- multi-output ops define ``%name.0, %name.1, ...``; ``operator.getitem`` emits nothing;
- ``return`` lists the values the graph returns (deduplicated); inputs returned as they are,
  ``None`` and Python numbers are put back on the Python side (``OutputSpec``).
"""

from __future__ import annotations

import math
import operator
import os
import re
from dataclasses import dataclass, field

import torch
import torch.fx
from torch.utils import _pytree as pytree

from ._dtypes import ir_dtype
from ._errors import DtypeError, DynamicShapeError, TrnsimTorchError
from ._fp8 import Fp8Weight, weight_layout

#: Schema arguments that say where or how a tensor is stored, never what it holds.
_OMITTED_ARGS = frozenset({"device", "layout", "pin_memory", "memory_format", "non_blocking"})
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]")


@dataclass
class InputSpec:
    """One graph input of the IR, in header order."""
    name: str                 #: IR value name (no '%')
    kind: str                 #: "input" or "param"
    index: int | None         #: position among the FX placeholders; None for a get_attr constant
    ir: str                   #: IR dtype
    shape: tuple
    what: str                 #: how error messages name it ("input 'l_x_'")
    constant: torch.Tensor | None = None  #: the tensor of a get_attr constant
    #: what is uploaded for the placeholder's tensor t: transform(t) (options weights="fp8":
    #: a weight's fp8 values, or its scales, an input of its own); None: t itself
    transform: object = None


@dataclass
class OutputSpec:
    """One leaf of the FX graph's output, and where its value comes from."""
    kind: str       #: "value" (an IR output), "input" (a placeholder as is), "const"
    ref: object     #: IR output position, placeholder position, or the Python value
    dtype: torch.dtype | None = None
    shape: tuple = ()
    stride: tuple | None = None
    device: torch.device | None = None


@dataclass
class OpUse:
    """One op node of the graph: its IR op, full ATen name, FX node and model line."""
    op: str
    aten: str
    node: str
    where: str | None


@dataclass
class SerializedGraph:
    name: str
    text: str
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    out_spec: object                      #: pytree spec of the FX output
    ir_outputs: list[str]                 #: names after ``return``
    ops: list[OpUse] = field(default_factory=list)
    locs: dict[str, str] = field(default_factory=dict)   #: value name -> "path:line"
    sources: dict[str, str] = field(default_factory=dict)  #: "basename:line" -> "path:line"
    #: with f32_as: FX names of the returned values that stay float32 (an op defined to give
    #: f32, like attention's logsumexp); a backward graph reading them keeps them f32
    f32_outputs: frozenset = frozenset()

    def full_loc(self, text: str | None) -> str | None:
        """The full ``path:line`` for a message naming ``file.py:LINE`` or a value name."""
        if not text:
            return None
        for short, full in self.sources.items():
            if short in text:
                return full
        for name, full in self.locs.items():
            if re.search(r"%" + re.escape(name) + r"\b", text):
                return full
        return None


def ir_op_name(target) -> str:
    """``aten.add.Tensor`` -> ``add``; other namespaces keep it: ``ns.op``."""
    if isinstance(target, torch._ops.OpOverload):
        packet = target.overloadpacket.__name__
        return packet if target.namespace == "aten" else f"{target.namespace}.{packet}"
    if isinstance(target, torch._ops.OpOverloadPacket):
        ns = target._qualified_op_name.split("::")[0]
        return target.__name__ if ns == "aten" else f"{ns}.{target.__name__}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target.name()}"
    return getattr(target, "__name__", str(target))


def aten_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    return str(target)


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def node_location(node: torch.fx.Node) -> str | None:
    """``path:line`` of the last frame of the node's stack trace that is not inside PyTorch
    itself (torch.export keeps frames of torch.nn modules; the model's line is the one
    before them)."""
    st = node.meta.get("stack_trace")
    if not st:
        return None
    frames = _FRAME.findall(st)
    if not frames:
        return None
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    path, line = (user or frames)[-1]
    return f"{path}:{line}"


def short_loc(full: str) -> str:
    path, _, line = full.rpartition(":")
    return f"{os.path.basename(path)}:{line}"


# ---- literals ----

def fmt_float(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    s = repr(x)
    return s if any(c in s for c in ".eE") else s + ".0"


def fmt_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fmt_attr(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, str):
        return fmt_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_attr(int(e)) for e in v) + "]"
    raise TypeError(f"not an attribute value: {v!r}")


def type_string(val, what: str) -> str:
    """``f32[2, 64]`` for a (fake) tensor; DynamicShapeError for a symbolic shape."""
    if not isinstance(val, torch.Tensor):
        raise TrnsimTorchError(f"{what} is {type(val).__name__}, not a tensor: trnsim graphs "
                               "carry tensors only")
    dims = []
    for d in val.shape:
        if not isinstance(d, int):
            raise DynamicShapeError(
                f"{what} has a symbolic shape {tuple(val.shape)}: trnsim compiles static shapes "
                "only; use torch.compile(..., dynamic=False)")
        dims.append(str(d))
    return f"{ir_dtype(val.dtype, what)}[{', '.join(dims)}]"


# ---- the serializer ----

class _Serializer:
    def __init__(self, gm: torch.fx.GraphModule, name: str, param_indices, display_names,
                 f32_as: torch.dtype | None, keep_dtype=frozenset(), fp8_weights=False):
        self.gm = gm
        self.fp8_weights = fp8_weights
        self.fp8_lines: list[str] = []  # dequantization of fp8 weights, first in the body
        self.name = name
        self.param_indices = set(param_indices or ())
        self.display_names = display_names
        self.f32_as = f32_as
        self.vals = retyped_values(gm, f32_as, keep_dtype) if f32_as is not None else {}
        self.used_names: set[str] = set()
        self.value_of: dict[torch.fx.Node, str | list[str]] = {}
        self.locs: dict[str, str] = {}
        self.sources: dict[str, str] = {}
        self.ops: list[OpUse] = []

    def val(self, node):
        """The node's (fake) value: as captured, or re-derived for options dtype."""
        return self.vals[node] if node in self.vals else node.meta.get("val")

    @staticmethod
    def ir(dtype: torch.dtype, what: str) -> str:
        return ir_dtype(dtype, what)

    @staticmethod
    def type_of(val, what: str) -> str:
        return type_string(val, what)

    def fresh(self, base: str) -> str:
        name = _BAD_NAME_CHARS.sub("_", base) or "v"
        out, k = name, 1
        while out in self.used_names:
            out = f"{name}_{k}"
            k += 1
        self.used_names.add(out)
        return out

    def run(self) -> SerializedGraph:
        graph = self.gm.graph
        inputs: list[InputSpec] = []
        header: list[str] = []
        body: list[str] = []
        consts: list[str] = []
        ph_index = 0
        output_node = None
        for node in graph.nodes:
            if node.op == "placeholder":
                spec = self.placeholder(node, ph_index, header)
                if isinstance(spec, list):
                    inputs += spec
                elif spec is not None:
                    inputs.append(spec)
                ph_index += 1
            elif node.op == "get_attr":
                spec = self.get_attr(node, consts)
                if spec is not None:
                    inputs.append(spec)
            elif node.op == "call_function":
                self.call_function(node, body)
            elif node.op == "output":
                output_node = node
            else:
                raise TrnsimTorchError(
                    f"FX node {node.name} is a {node.op}; trnsim takes ATen graphs of "
                    "call_function nodes (from AOTAutograd or torch.export)")
        outputs, out_spec, ir_outputs = _outputs(self, output_node)
        f32_outputs = frozenset()
        if self.f32_as is not None and output_node is not None:
            f32_outputs = frozenset(
                leaf.name for leaf in pytree.tree_leaves(output_node.args[0])
                if isinstance(leaf, torch.fx.Node) and isinstance(self.val(leaf), torch.Tensor)
                and self.val(leaf).dtype == torch.float32)
        lines = [f"graph {self.name}({', '.join(header + consts)}) {{"]
        lines += self.fp8_lines + body
        lines.append("  return " + ", ".join("%" + n for n in ir_outputs) if ir_outputs
                     else "  return")
        lines.append("}")
        return SerializedGraph(self.name, "\n".join(lines) + "\n", inputs, outputs, out_spec,
                               ir_outputs, self.ops, self.locs, self.sources, f32_outputs)

    def placeholder(self, node, index, header) -> InputSpec | list[InputSpec] | None:
        display = (self.display_names[index] if self.display_names
                   and index < len(self.display_names) else node.name)
        kind = "param" if index in self.param_indices else "input"
        what = f"{'parameter' if kind == 'param' else 'input'} '{display}'"
        val = self.val(node)
        if val is None and "val" not in node.meta:
            raise TrnsimTorchError(f"{what} has no meta['val']: serialize graphs from "
                                   "AOTAutograd or torch.export (they carry fake tensors)")
        if not isinstance(val, torch.Tensor):
            if not node.users:
                return None  # a Python constant the graph was specialized on (torch.export)
            if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
                raise DynamicShapeError(
                    f"{what} is a symbolic {type(val).__name__}: trnsim compiles static shapes "
                    "only; use torch.compile(..., dynamic=False)")
            raise TrnsimTorchError(f"{what} is {type(val).__name__}, not a tensor")
        name = self.fresh(node.name)
        self.value_of[node] = name
        layout = weight_layout(node, val) if self.fp8_weights and kind == "param" else None
        if layout is not None:
            return self.fp8_placeholder(node, index, header, name, val, what, layout)
        header.append(f"%{name}: {self.type_of(val, what)} {kind}")
        return InputSpec(name, kind, index, self.ir(val.dtype, what), tuple(val.shape), what)

    def fp8_placeholder(self, node, index, header, name, val, what, layout) -> list[InputSpec]:
        """A linear weight under options weights="fp8": IR params `name` (its e4m3 values,
        ``[in, out]``) and `name`_scale (bf16 ``[1, out]``, one per output channel), dequantized
        at the top of the body as PyTorch code would (``(q.float() * scale).to(dtype)``, then
        permuted back to ``[out, in]`` for an F.linear weight), which the simplify, layout and
        fp8_matmul passes turn into matmuls reading the fp8 values as stored."""
        transposed = layout == "transposed"
        rows, cols = (int(d) for d in val.shape)
        k, n = (cols, rows) if transposed else (rows, cols)  # stored [in, out] = [k, n]
        scale = self.fresh(f"{name}_scale")
        f32 = self.fresh(f"{name}_f32")
        deq = self.fresh(f"{name}_dequant")
        dims = f"[{k}, {n}]"
        header.append(f"%{name}: f8e4m3{dims} param")
        header.append(f"%{scale}: bf16[1, {n}] param")
        self.fp8_lines.append(f'  %{f32}: f32{dims} = _to_copy(%{name}) {{dtype="f32"}}')
        self.fp8_lines.append(f"  %{deq}: f32{dims} = mul(%{f32}, %{scale})")
        ir = self.ir(val.dtype, what)
        if ir != "f32":
            cast = self.fresh(f"{name}_{ir}")
            self.fp8_lines.append(f'  %{cast}: {ir}{dims} = _to_copy(%{deq}) {{dtype="{ir}"}}')
            deq = cast
        if transposed:  # the model's [out, in] value; its own permute cancels this one
            back = self.fresh(f"{name}_out_in")
            self.fp8_lines.append(f"  %{back}: {ir}[{n}, {k}] = permute(%{deq}) {{dims=[1, 0]}}")
            deq = back
        self.value_of[node] = deq
        w = Fp8Weight(layout)
        return [InputSpec(name, "param", index, "f8e4m3", (k, n), what, transform=w.values),
                InputSpec(scale, "param", index, "bf16", (1, n), f"{what} (fp8 scales)",
                          transform=w.scales)]

    def get_attr(self, node, consts) -> InputSpec | None:
        obj = _fetch_attr(self.gm, node.target)
        if not isinstance(obj, torch.Tensor):
            return None  # submodules of higher-order ops; a call_function using them fails later
        what = f"constant '{node.target}'"
        name = self.fresh(node.name)
        self.value_of[node] = name
        val = self.vals.get(node, obj)
        consts.append(f"%{name}: {self.type_of(val, what)} param")
        return InputSpec(name, "param", None, self.ir(val.dtype, what), tuple(val.shape), what,
                         constant=obj)

    def call_function(self, node, body):
        if node.target is operator.getitem:
            src, idx = node.args
            names = self.value_of.get(src)
            if not isinstance(names, list):
                raise TrnsimTorchError(f"getitem node {node.name} reads {src.name}, which is not "
                                       "a multi-output op")
            self.value_of[node] = names[idx]
            return
        schema = getattr(node.target, "_schema", None)
        if schema is not None and not schema.returns and not node.users:
            return  # value-less checks (aten._assert_tensor_metadata): nothing to compute
        where = node_location(node)
        op = ir_op_name(node.target)
        ins, attrs = self.arguments(node)
        val = self.val(node)
        if self.is_bool_cast(node, val):
            # The IR holds bool as u8, so a cast to bool would read as a cast to uint8, which
            # truncates (0.5 -> 0); x.to(bool) is x != 0 (NaN included): say that.
            op, attrs = "ne", {"other": 0}
        self.ops.append(OpUse(op, aten_name(node.target), node.name, where))
        base = self.fresh(node.name)
        what = f"the result of {node.name} ({aten_name(node.target)})"
        if isinstance(val, (tuple, list)):
            names, decls = [], []
            for k, v in enumerate(val):
                n = f"{base}.{k}"
                self.used_names.add(n)
                names.append(n)
                if v is None:
                    raise TrnsimTorchError(f"{what} has no value for output {k}")
                decls.append(f"%{n}: {self.type_of(v, f'{what}[{k}]')}")
            self.value_of[node] = names
            defined = names
        else:
            if val is None:
                raise TrnsimTorchError(f"{what} has no meta['val'] (serialize graphs from "
                                       "AOTAutograd or torch.export)")
            self.value_of[node] = base
            decls = [f"%{base}: {self.type_of(val, what)}"]
            defined = [base]
        line = f"  {', '.join(decls)} = {op}({', '.join('%' + i for i in ins)})"
        if attrs:
            line += " {" + ", ".join(f"{k}={fmt_attr(v)}" for k, v in sorted(attrs.items())) + "}"
        if where:
            short = short_loc(where)
            self.sources.setdefault(short, where)
            for n in defined:
                self.locs[n] = where
            line += f" @{fmt_string(short)}"
        body.append(line)

    def is_bool_cast(self, node, val) -> bool:
        if node.target is not torch.ops.aten._to_copy.default:
            return False
        src = node.args[0] if node.args else None
        sval = self.val(src) if isinstance(src, torch.fx.Node) else None
        return (isinstance(val, torch.Tensor) and val.dtype == torch.bool
                and isinstance(sval, torch.Tensor) and sval.dtype != torch.bool)

    def input_name(self, node, user) -> str:
        name = self.value_of.get(node)
        if name is None:
            raise TrnsimTorchError(f"{user.name} reads {node.name}, which has no value")
        if isinstance(name, list):
            raise TrnsimTorchError(f"{user.name} reads the whole multi-output {node.name}")
        return name

    def arguments(self, node) -> tuple[list[str], dict]:
        """Inputs and attributes of a call_function node, in schema order."""
        target = node.target
        ins: list[str] = []
        attrs: dict = {}
        schema = getattr(target, "_schema", None)
        if schema is None:
            for a in node.args:
                if isinstance(a, torch.fx.Node):
                    ins.append(self.input_name(a, node))
            return ins, attrs
        missing = object()
        absent = []  # Optional[Tensor] arguments left out so far
        for i, arg in enumerate(schema.arguments):
            if not arg.kwarg_only and i < len(node.args):
                v = node.args[i]
            elif arg.name in node.kwargs:
                v = node.kwargs[arg.name]
            elif arg.has_default_value():
                v = arg.default_value
            else:
                v = missing
            if arg.name in _OMITTED_ARGS:
                continue
            if v is missing or v is None:
                if _is_optional_tensor(arg.type):
                    absent.append(arg.name)
                continue
            before = len(ins)
            self.argument(node, arg, v, ins, attrs)
            if len(ins) > before:
                # A tensor input after a left-out optional tensor: mark the gap so inputs
                # keep their meaning (clamp.Tensor(x, None, max) -> clamp(%x, %max)
                # {min_present=0}).
                for name in absent:
                    attrs[f"{name}_present"] = 0
                absent.clear()
        return ins, attrs

    def argument(self, node, arg, v, ins, attrs):
        name = arg.name
        if isinstance(v, torch.fx.Node):
            val = self.val(v)
            if not isinstance(val, torch.Tensor) and val is not None:
                raise DynamicShapeError(
                    f"{node.name}: argument '{name}' is a symbolic {type(val).__name__} "
                    f"({v.name}): trnsim compiles static shapes only; use "
                    "torch.compile(..., dynamic=False)")
            ins.append(self.input_name(v, node))
            return
        optional = _is_tensor_list(arg.type, optional=True)
        if isinstance(v, (list, tuple)) and (optional or _is_tensor_list(arg.type) or any(
                isinstance(e, torch.fx.Node) for e in v)):
            present = []
            for e in v:
                if e is None:
                    present.append(0)
                    continue
                if not isinstance(e, torch.fx.Node) or not isinstance(self.val(e), torch.Tensor):
                    raise DynamicShapeError(
                        f"{node.name}: argument '{name}' holds a symbolic value ({e}): trnsim "
                        "compiles static shapes only; use torch.compile(..., dynamic=False)")
                present.append(1)
                ins.append(self.input_name(e, node))
            if optional or 0 in present:
                attrs[f"{name}_present"] = present
            return
        if isinstance(v, torch.dtype) and self.f32_as is not None:
            v = _as_f32(v, self.f32_as)
        a = _attr_value(node, name, v)
        if a is not None:
            attrs[name] = a


def _attr_value(node, name, v):
    if isinstance(v, torch.dtype):
        return ir_dtype(v, f"{node.name}: argument '{name}'")
    if isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        raise DynamicShapeError(f"{node.name}: argument '{name}' is symbolic ({v}): trnsim "
                                "compiles static shapes only; use "
                                "torch.compile(..., dynamic=False)")
    if isinstance(v, (list, tuple)):
        out = []
        for e in v:
            if isinstance(e, (torch.SymInt, torch.SymFloat, torch.SymBool)):
                raise DynamicShapeError(
                    f"{node.name}: argument '{name}' has a symbolic entry ({e}): trnsim "
                    "compiles static shapes only; use torch.compile(..., dynamic=False)")
            if isinstance(e, (bool, int)):
                out.append(int(e))
            else:
                raise TrnsimTorchError(
                    f"{node.name} ({aten_name(node.target)}): argument '{name}' = {list(v)} is a "
                    "list of non-integers, which the IR's attributes cannot hold")
        return out
    if isinstance(v, (torch.device, torch.layout, torch.memory_format)):
        return None
    raise TrnsimTorchError(f"{node.name} ({aten_name(node.target)}): argument '{name}' = {v!r} "
                           f"({type(v).__name__}) has no IR attribute form")


def _as_f32(dtype: torch.dtype, f32_as: torch.dtype) -> torch.dtype:
    """`dtype` with float32 (and float64, which the IR holds as f32) replaced by `f32_as`."""
    return f32_as if dtype in (torch.float32, torch.float64) else dtype


def retyped_values(gm: torch.fx.GraphModule, f32_as: torch.dtype, keep_dtype=frozenset()) -> dict:
    """Node -> fake value of the graph run with float32 replaced by `f32_as` everywhere: in
    placeholders (but those named in `keep_dtype`), constants and every dtype argument. Types
    are re-derived op by op, so an op whose result is float32 whatever its inputs (the
    logsumexp of _scaled_dot_product_flash_attention_for_cpu) keeps it."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    vals: dict = {}

    def fake_like(v):
        if not isinstance(v, torch.Tensor):
            return v
        return torch.empty_strided(tuple(v.shape), tuple(v.stride()),
                                   dtype=_as_f32(v.dtype, f32_as))

    def sub(v):
        return _as_f32(v, f32_as) if isinstance(v, torch.dtype) else v

    class _Prop(torch.fx.Interpreter):
        def run_node(self, n):
            try:
                if n.op == "placeholder":
                    v = n.meta.get("val")
                    out = (torch.empty_strided(tuple(v.shape), tuple(v.stride()), dtype=v.dtype)
                           if n.name in keep_dtype and isinstance(v, torch.Tensor)
                           else fake_like(v))
                elif n.op == "get_attr":
                    out = fake_like(_fetch_attr(self.module, n.target))
                elif n.op == "call_function":
                    args, kwargs = self.fetch_args_kwargs_from_env(n)
                    out = n.target(*pytree.tree_map(sub, args), **pytree.tree_map(sub, kwargs))
                else:
                    return super().run_node(n)
            except Exception as e:  # noqa: BLE001 - any op can object to the new dtypes
                where = node_location(n)
                raise DtypeError(
                    f"options dtype={f32_as}: the graph does not run with float32 replaced by "
                    f"{f32_as}; it fails at {n.name} ({aten_name(n.target)}"
                    f"{', ' + where if where else ''}): {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}; cast the model instead "
                    "(model.to(torch.bfloat16))") from e
            vals[n] = out
            return out

    with FakeTensorMode(allow_non_fake_inputs=True):
        _Prop(gm).run(*([None] * sum(1 for n in gm.graph.nodes if n.op == "placeholder")))
    return vals


def _is_optional_tensor(t) -> bool:
    try:
        return t.kind() == "OptionalType" and t.getElementType().kind() == "TensorType"
    except (AttributeError, RuntimeError):
        return False


def _is_tensor_list(t, optional: bool = False) -> bool:
    """Whether a schema type is Tensor[] (or, with `optional`, Optional[Tensor][])."""
    try:
        if t.kind() != "ListType":
            return False
        e = t.getElementType()
        if optional:
            return e.kind() == "OptionalType" and e.getElementType().kind() == "TensorType"
        return e.kind() == "TensorType"
    except (AttributeError, RuntimeError):
        return False


def _fetch_attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _outputs(ser: _Serializer, output_node):
    """OutputSpecs of the FX output's leaves, its pytree spec and the IR return list."""
    if output_node is None:
        return [], pytree.tree_flatten(())[1], []
    leaves, spec = pytree.tree_flatten(output_node.args[0])
    ir_outputs: list[str] = []
    outs: list[OutputSpec] = []
    ph_pos = {n: i for i, n in enumerate(n for n in ser.gm.graph.nodes if n.op == "placeholder")}
    for leaf in leaves:
        if not isinstance(leaf, torch.fx.Node):
            outs.append(OutputSpec("const", leaf))
            continue
        orig = leaf.meta.get("val")
        if leaf.op == "placeholder":
            outs.append(OutputSpec("input", ph_pos[leaf]))
            continue
        if leaf.op == "get_attr":
            outs.append(OutputSpec("const", _fetch_attr(ser.gm, leaf.target)))
            continue
        name = ser.value_of.get(leaf)
        if not isinstance(name, str) or not isinstance(orig, torch.Tensor):
            raise TrnsimTorchError(f"the graph returns {leaf.name} = {orig!r}, which is not "
                                   "one tensor")
        if name not in ir_outputs:
            ir_outputs.append(name)
        outs.append(OutputSpec("value", ir_outputs.index(name), orig.dtype, tuple(orig.shape),
                               tuple(orig.stride()), orig.device))
    return outs, spec, ir_outputs


def serialize(gm: torch.fx.GraphModule, *, name: str = "forward", param_indices=(),
              display_names=None, f32_as: str | torch.dtype | None = None,
              keep_dtype=frozenset(), fp8_weights: bool = False) -> SerializedGraph:
    """IR text and tables of an ATen FX graph (see the module docstring for the rules).

    ``param_indices``: positions of the placeholders that hold parameters or buffers (they
    are uploaded once and stay on the device). ``display_names``: per placeholder, the name
    error messages use (Dynamo's source names). ``f32_as="bf16"`` (options dtype): the graph
    runs with float32 replaced by bfloat16 in its inputs, parameters, constants and dtype
    arguments (types re-derived op by op); float32 inputs are cast on upload and outputs go
    back to the graph's own dtypes; placeholders named in ``keep_dtype`` keep theirs (a
    backward graph's inputs that the forward computed in f32: ``f32_outputs``).
    ``fp8_weights`` (options weights="fp8"): parameters read only as a matmul's weight are
    declared f8e4m3 with a bf16 scale param each and dequantized first (``_fp8.py``)."""
    if isinstance(f32_as, str):
        f32_as = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[f32_as]
    return _Serializer(gm, name, param_indices, display_names, f32_as, keep_dtype,
                       fp8_weights).run()
