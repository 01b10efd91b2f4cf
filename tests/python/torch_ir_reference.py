"""A reference interpreter of the IR text trnsim.torch emits, running each node with PyTorch.

Used by test_torch_serialize.py to check that serialization loses nothing: a graph's IR text,
run here, must give what eager PyTorch gives. Each node ``OP(inputs) {attrs}`` is mapped back
onto ``torch.ops.aten.OP`` by trying its overloads against the schema (inputs fill the Tensor
arguments in order, attributes the arguments they are named after). Values are held in the
dtypes PyTorch used (the IR's u8 as bool, i32 as int64), so the ops behave as they did in the
model. Not a model of the C++ compiler: it only reads the text back.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import torch

# IR dtype -> the torch dtype the model computed in (bool travels as u8, int64 as i32).
TORCH_OF_IR = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16,
               "i32": torch.int64, "i16": torch.int16, "i8": torch.int8, "u8": torch.bool,
               "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2,
               "u16": torch.uint16, "u32": torch.uint32}
NUMPY_OF_IR = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16, "i32": np.int32,
               "i16": np.int16, "i8": np.int8, "u8": np.uint8,
               "f8e4m3": ml_dtypes.float8_e4m3fn, "f8e5m2": ml_dtypes.float8_e5m2,
               "u16": np.uint16, "u32": np.uint32}
IR_OF_TORCH = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16",
               torch.int64: "i32", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
               torch.bool: "u8", torch.uint8: "u8", torch.float64: "f32",
               torch.float8_e4m3fn: "f8e4m3", torch.float8_e5m2: "f8e5m2"}

_HEADER = re.compile(r"^graph\s+([\w.]+)\((.*)\)\s*\{\s*$")
_DECL = re.compile(r"%([\w.]+):\s*(\w+)\[([^\]]*)\](?:\s+(input|param))?")
_NODE = re.compile(r"^\s*(?P<outs>%.*?)\s*=\s*(?P<op>[\w.]+)\((?P<ins>[^)]*)\)"
                   r"(?:\s*\{(?P<attrs>.*?)\})?(?:\s*@(?P<loc>\"(?:[^\"\\]|\\.)*\"))?\s*$")


class IRGraph:
    def __init__(self, text: str):
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("//")]
        m = _HEADER.match(lines[0])
        if not m or lines[-1].strip() != "}":
            raise ValueError(f"not an IR graph: {lines[0]!r}")
        self.name = m.group(1)
        self.inputs = [(n, dt, _shape(s), kind) for n, dt, s, kind in _DECL.findall(m.group(2))]
        self.nodes = []
        self.outputs = []
        for ln in lines[1:-1]:
            s = ln.strip()
            if s.startswith("return"):
                self.outputs = re.findall(r"%([\w.]+)", s)
                continue
            nm = _NODE.match(ln)
            if not nm:
                raise ValueError(f"cannot parse node line {ln!r}")
            outs = [(n, dt, _shape(sh)) for n, dt, sh, _ in _DECL.findall(nm.group("outs"))]
            ins = re.findall(r"%([\w.]+)", nm.group("ins"))
            attrs = parse_attrs(nm.group("attrs") or "")
            loc = nm.group("loc")
            self.nodes.append((outs, nm.group("op"), ins, attrs, loc and loc[1:-1]))

    @property
    def input_names(self):
        return [n for n, _, _, _ in self.inputs]

    @property
    def param_names(self):
        return [n for n, _, _, k in self.inputs if k == "param"]


def _shape(s: str):
    return tuple(int(d) for d in s.split(",") if d.strip())


def parse_attrs(s: str) -> dict:
    out, i = {}, 0
    while i < len(s):
        m = re.compile(r"\s*([\w.]+)\s*=\s*").match(s, i)
        if not m:
            break
        key, i = m.group(1), m.end()
        if s[i] == '"':
            j, buf = i + 1, []
            while s[j] != '"':
                if s[j] == "\\":
                    j += 1
                buf.append(s[j])
                j += 1
            out[key], i = "".join(buf), j + 1
        elif s[i] == "[":
            j = s.index("]", i)
            out[key], i = [int(x) for x in s[i + 1:j].split(",") if x.strip()], j + 1
        else:
            m2 = re.compile(r"[-+\w.]+").match(s, i)
            tok, i = m2.group(0), m2.end()
            if tok in ("inf", "-inf", "nan"):
                out[key] = float(tok)
            elif any(c in tok for c in ".eE"):
                out[key] = float(tok)
            else:
                out[key] = int(tok)
        m3 = re.compile(r"\s*,?").match(s, i)
        i = m3.end()
    return out


def to_torch(a: np.ndarray, ir: str) -> torch.Tensor:
    a = np.ascontiguousarray(a)
    if ir == "bf16":
        t = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    elif ir in ("f8e4m3", "f8e5m2"):
        t = torch.from_numpy(a.view(np.uint8).copy()).view(TORCH_OF_IR[ir])
    else:
        t = torch.from_numpy(a.copy())
    return t.to(TORCH_OF_IR[ir]) if ir != "u8" else t != 0


def to_numpy(t: torch.Tensor, ir: str) -> np.ndarray:
    t = t.detach().contiguous()
    if ir == "bf16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if ir in ("f8e4m3", "f8e5m2"):
        return t.to(TORCH_OF_IR[ir]).view(torch.uint8).numpy().view(NUMPY_OF_IR[ir])
    return t.to({"u8": torch.uint8, "i32": torch.int32}.get(ir, TORCH_OF_IR[ir])).numpy()


def _attr_for(arg, v):
    """An attribute value as the schema argument wants it."""
    t = str(arg.type)
    if arg.name == "dtype" and isinstance(v, str):
        return TORCH_OF_IR[v]
    if "bool" in t and isinstance(v, int) and "[]" not in t and "List" not in t:
        return bool(v)
    return v


def _bind(overload, inputs, attrs):
    """(args, kwargs) for `overload`, or None if the node does not fit its schema."""
    schema = overload._schema
    args, kwargs = [], {}
    pending = list(inputs)
    used = set()
    sargs = schema.arguments
    for i, a in enumerate(sargs):
        t = str(a.type)
        is_list = t.startswith("List[") and "Tensor" in t
        is_tensor = "Tensor" in t and not is_list
        gap = attrs.get(f"{a.name}_present")
        if a.name in attrs:
            v = _attr_for(a, attrs[a.name])
            used.add(a.name)
        elif is_tensor and isinstance(gap, int):
            used.add(f"{a.name}_present")
            if gap or not t.startswith("Optional"):
                return None
            v = None
        elif is_list:
            present = attrs.get(f"{a.name}_present")
            if present is not None:
                used.add(f"{a.name}_present")
                v = []
                for p in present:
                    if p:
                        if not pending:
                            return None
                        v.append(pending.pop(0))
                    else:
                        v.append(None)
            else:
                later = sum(1 for b in sargs[i + 1:] if str(b.type) == "Tensor")
                take = len(pending) - later
                if take < 0:
                    return None
                v, pending = pending[:take], pending[take:]
        elif is_tensor and pending:
            v = pending.pop(0)
        elif a.has_default_value():
            continue
        elif t.startswith("Optional"):
            v = None
        else:
            return None
        if a.kwarg_only:
            kwargs[a.name] = v
        else:
            if len(args) != i:
                return None
            args.append(v)
    if pending or set(attrs) - used:
        return None
    return args, kwargs


def run_node(op: str, inputs, attrs):
    ns, _, name = op.rpartition(".")
    packet = getattr(getattr(torch.ops, ns or "aten"), name)
    errors = []
    names = sorted(packet.overloads(), key=lambda o: (o not in ("default", "Tensor"), o))
    for ov in names:
        overload = getattr(packet, ov)
        bound = _bind(overload, inputs, attrs)
        if bound is None:
            continue
        try:
            return overload(*bound[0], **bound[1])
        except Exception as e:  # noqa: BLE001 - try the next overload
            errors.append(f"{ov}: {e}")
    raise RuntimeError(f"no overload of aten.{op} fits inputs {len(inputs)} attrs {attrs}: "
                       f"{errors}")


def run_graph(g: IRGraph, arrays: dict) -> list[np.ndarray]:
    """Runs the graph on numpy arrays (IR dtypes) by input name; returns the outputs."""
    env = {}
    for name, ir, shape, _ in g.inputs:
        a = arrays[name]
        if tuple(a.shape) != shape or a.dtype != NUMPY_OF_IR[ir]:
            raise ValueError(f"%{name}: got {a.dtype}{list(a.shape)}, declared {ir}{list(shape)}")
        env[name] = to_torch(a, ir)
    for outs, op, ins, attrs, loc in g.nodes:
        res = run_node(op, [env[i] for i in ins], attrs)
        res = list(res) if isinstance(res, (tuple, list)) else [res]
        if len(res) != len(outs):
            raise ValueError(f"{op} at {loc}: {len(res)} results, {len(outs)} declared")
        for (name, ir, shape), r in zip(outs, res):
            if IR_OF_TORCH.get(r.dtype) != ir or tuple(r.shape) != shape:
                raise ValueError(f"%{name} = {op} at {loc}: computed {r.dtype}{list(r.shape)}, "
                                 f"declared {ir}{list(shape)}")
            env[name] = r.contiguous()  # IR values are row-major contiguous
    types = {n: ir for outs, *_ in g.nodes for n, ir, _ in outs}
    types.update({n: ir for n, ir, _, _ in g.inputs})
    return [to_numpy(env[n], types[n]) for n in g.outputs]


# ---- a stand-in for trnsim._trnsim.compiler that runs the IR with the interpreter above ----

class ReferenceCompileError(RuntimeError):
    """Like compiler.CompileError: args = (code, where, message, full_text)."""


class ReferenceRecord:
    def __init__(self, nodes: int, seconds: float):
        self.simulated_ns = 1000.0 * nodes
        self.instructions = nodes
        self.host_seconds = seconds

    def summary_text(self) -> str:
        return f"reference run: {self.instructions} nodes\n"

    def summary_json(self) -> str:
        return '{"simulated_ns": %f}' % self.simulated_ns

    def write_trace(self, path) -> None:
        import json
        with open(path, "w") as f:
            json.dump({"traceEvents": [
                {"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "reference"}},
                {"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "graph"}},
                {"name": "graph", "ph": "X", "pid": 0, "tid": 0, "ts": 0,
                 "dur": self.simulated_ns / 1000.0}]}, f)


class ReferenceExecutable:
    def __init__(self, text: str, chip: str):
        self.graph = IRGraph(text)
        self.text, self.chip = text, chip
        self.input_names = self.graph.input_names
        self.param_names = self.graph.param_names
        self.output_names = self.graph.outputs
        self.num_instructions = len(self.graph.nodes)
        self.cache_key = str(hash((text, chip)))
        self.hbm: dict = {}
        self.uploads: list[str] = []  # names uploaded, in order (tests count re-uploads)

    def program_text(self) -> str:
        return ""

    def ir_text(self) -> str:
        return self.text

    def upload(self, name, array) -> None:
        if name not in self.input_names:
            raise ReferenceCompileError("kInvalidArgument", name, f"no input %{name}", self.text)
        self.hbm[name] = np.array(array, copy=True)
        self.uploads.append(name)

    def run(self, inputs, timing_only=False, rounding="rne", seed=0):
        import time
        t0 = time.perf_counter()
        arrays = dict(self.hbm)
        for k, v in inputs.items():
            if k in self.param_names:
                raise ReferenceCompileError("kInvalidArgument", k, "a param passed to run()",
                                            self.text)
            arrays[k] = v
        if timing_only:  # like the C++ runtime: no values are computed, none are needed
            return [None] * len(self.output_names), ReferenceRecord(len(self.graph.nodes), 0.0)
        missing = [n for n in self.input_names if n not in arrays]
        if missing:
            raise ReferenceCompileError("kInvalidArgument", missing[0], "no value", self.text)
        outs = run_graph(self.graph, arrays)
        return outs, ReferenceRecord(len(self.graph.nodes), time.perf_counter() - t0)


class ReferenceCompiler:
    """The subset of trnsim._trnsim.compiler that trnsim.torch uses. `unsupported` op names
    are left out of supported_ops() (to exercise the fallback)."""

    CompileError = ReferenceCompileError

    def __init__(self, unsupported=()):
        self.unsupported = set(unsupported)
        self.compiled: list[ReferenceExecutable] = []
        self.executables: dict = {}
        self.checked = 0  # calls of check() (the front end skips it on a cache hit)

    def supported_ops(self):
        names = set()
        for s in torch._C._jit_get_all_schemas():
            ns, _, n = s.name.partition("::")
            if ns == "aten":
                names.add(n)
        return sorted(names - self.unsupported)

    def check(self, text: str) -> str:
        self.checked += 1
        try:
            g = IRGraph(text)
        except ValueError as e:
            raise ReferenceCompileError("kParse", "", str(e), text) from None
        known = set(self.supported_ops())
        for i, (_, op, _, _, loc) in enumerate(g.nodes):
            if op not in known and "." not in op:
                where = f"node {i} ({op})" + (f" at {loc}" if loc else "")
                raise ReferenceCompileError("kUnsupported", where, f"unknown op '{op}'", text)
        return text

    def run_passes(self, text, passes, chip="trn2"):
        return text

    def compile(self, text, chip="trn2", print_after=()):
        """Like the C++ session: one Executable per (IR text, chip), shared by every caller."""
        if (text, chip) in self.executables:
            return self.executables[(text, chip)]
        try:
            exe = ReferenceExecutable(text, chip)
        except ValueError as e:
            raise ReferenceCompileError("kParse", "", str(e), text) from None
        self.compiled.append(exe)
        self.executables[(text, chip)] = exe
        return exe
