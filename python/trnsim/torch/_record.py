"""What the last call or training step amounted to: ``trnsim.torch.last_run()``.

A forward may run several graphs: Dynamo graph breaks give one graph per piece, and with
``fallback="cpu"`` a graph is split into trnsim parts and host ops. Each executed piece adds
an entry to the current ``RunRecord``; a new record starts with each call of the compiled
model. Under ``torch.compile`` "a call" is told apart by the outermost Dynamo frame on the
Python stack (every graph of one call runs below the same frame object); the
``trnsim.torch.compile`` module marks its calls itself.

A training step is one record: the backward graphs (run by autograd, outside any Dynamo
frame) join the record of the forward they belong to, and a compiled optimizer step joins
the record that ran a backward. So after ``loss.backward(); opt.step()`` the record holds the
step's forward, backward and optimizer graphs, with their times by phase. With gradient
accumulation (several forward/backward pairs per optimizer step) the record holds the last
pair and the optimizer.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

_EVAL_FRAME = os.path.join("_dynamo", "eval_frame.py")
#: Set by callers that know their call boundaries (the torch.export module).
_explicit_call = contextvars.ContextVar("trnsim_torch_call", default=None)
_last: RunRecord | None = None


@dataclass
class GraphRun:
    """One graph executed on the simulated chip."""
    label: str                 #: "graph 0 (forward)", "graph 1 (forward part 0)"
    record: object             #: the core's run record (summary_text, write_trace, ...)
    phase: str = ""            #: "forward", "backward" or "optimizer" (set by add())
    memory: dict = field(default_factory=dict)  #: what the run held in HBM (see _memory)

    @property
    def simulated_ns(self) -> float:
        return float(self.record.simulated_ns)

    @property
    def host_seconds(self) -> float:
        return float(self.record.host_seconds)

    @property
    def instructions(self) -> int:
        return int(self.record.instructions)

    @property
    def model_flops(self) -> float:
        return float(getattr(self.record, "model_flops", 0) or 0)


@dataclass
class HostOps:
    """Ops of a split graph that ran on the host (``fallback="cpu"``)."""
    label: str
    ops: list                  #: (op, "path:line" or None) per host node
    phase: str = ""
    host_seconds: float = 0.0
    simulated_ns: float = 0.0
    instructions: int = 0
    model_flops: float = 0.0


@dataclass
class RunRecord:
    """The graphs one call of a compiled model ran, in order, and their totals."""
    graphs: list = field(default_factory=list)
    tokens: list = field(default_factory=list)  #: the calls (see _call_token) it holds
    optimizer_state_bytes: int = 0   #: set by a compiled optimizer step (compile_optimizer)

    @property
    def runs(self) -> list:
        """The entries that ran on the simulated chip (GraphRun), without host ops."""
        return [g for g in self.graphs if isinstance(g, GraphRun)]

    @property
    def simulated_ns(self) -> float:
        return sum(g.simulated_ns for g in self.graphs)

    @property
    def latency_us(self) -> float:
        return self.simulated_ns / 1000.0

    @property
    def host_seconds(self) -> float:
        return sum(g.host_seconds for g in self.graphs)

    @property
    def instructions(self) -> int:
        return sum(g.instructions for g in self.graphs)

    @property
    def model_flops(self) -> float:
        """The graphs' matmul FLOPs (what MFU is computed from)."""
        return sum(g.model_flops for g in self.graphs)

    @property
    def host_ops(self) -> list:
        """(op, "path:line") of every op that ran on the host."""
        return [o for g in self.graphs if isinstance(g, HostOps) for o in g.ops]

    PHASES = ("forward", "backward", "optimizer")

    def phase_ns(self, phase: str) -> float:
        """Simulated ns of the graphs of one phase ("forward", "backward", "optimizer")."""
        return sum(g.simulated_ns for g in self.graphs if g.phase == phase)

    @property
    def is_training_step(self) -> bool:
        return any(g.phase in ("backward", "optimizer") for g in self.graphs)

    def _summaries(self) -> list:
        out = []
        for g in self.runs:
            if not hasattr(g, "_json"):
                g._json = json.loads(g.record.summary_json())
            out.append(g._json)
        return out

    def step(self) -> dict:
        """The step's totals: simulated ns by phase, MFU, engine busy shares, HBM traffic and
        the memory breakdown (``memory()``)."""
        total = self.simulated_ns
        sums = self._summaries()
        peak = max((s.get("tensor", {}).get("peak_flops_per_core", 0) for s in sums), default=0)
        busy: dict = {}
        for s in sums:
            for core in s.get("per_core", []):
                for eng, e in core.get("engines", {}).items():
                    busy[eng] = busy.get(eng, 0.0) + float(e.get("busy_ns", 0))
        secs = total * 1e-9
        return {
            "chip": sums[0].get("chip") if sums else None,
            "simulated_ns": total,
            "phases_ns": {p: self.phase_ns(p) for p in self.PHASES if self.phase_ns(p) > 0},
            "model_flops": self.model_flops,
            "mfu_percent": 100.0 * self.model_flops / (secs * peak) if secs and peak else 0.0,
            "engine_busy_percent": {k: 100.0 * v / total for k, v in busy.items()} if total
            else {},
            "hbm_read_bytes": sum(int(s.get("hbm", {}).get("read_bytes", 0)) for s in sums),
            "hbm_write_bytes": sum(int(s.get("hbm", {}).get("write_bytes", 0)) for s in sums),
            "memory": self.memory(),
        }

    def memory(self) -> dict:
        """Peak HBM of the step on one NeuronCore, by kind, in bytes: the weights the forward
        reads, the activations it saves for the backward (backward inputs other than output
        gradients and weights), the gradients the backward returns, the optimizer state
        (``compile_optimizer``), and the largest activation arena of any one graph (values
        live only inside it). They are summed as if all were resident at once, which is the
        peak of a step that keeps weights, optimizer state and gradients in HBM throughout.
        ``fits`` compares it with the chip's HBM divided among its NeuronCores."""
        weights: dict = {}
        saved = grads = arena = 0
        cap = cores = 0
        for g in self.runs:
            m = g.memory
            if not m:
                continue
            arena = max(arena, int(m.get("arena_bytes", 0)))
            cap = int(m.get("chip_hbm_bytes", 0)) or cap
            cores = int(m.get("cores_per_chip", 0)) or cores
            if g.phase == "forward":
                weights.update(m.get("params", {}))
        for g in self.runs:
            m = g.memory
            if not m or g.phase != "backward":
                continue
            grads += int(m.get("output_bytes", 0))
            saved += sum(b for name, b, ptr in m.get("inputs", ())
                         if not name.startswith("tangents") and ptr not in weights)
        opt_state = int(self.optimizer_state_bytes)
        w = sum(weights.values())
        total = w + saved + grads + opt_state + arena
        per_core = cap // cores if cap and cores else 0
        return {"weights": w, "saved_activations": saved, "gradients": grads,
                "optimizer_state": opt_state, "largest_graph_arena": arena, "total": total,
                "hbm_per_core": per_core, "fits": bool(per_core == 0 or total <= per_core)}

    def _step_lines(self) -> list:
        st = self.step()
        total = st["simulated_ns"]
        out = [f"== training step on {st['chip']}: {total / 1e6:.3f} ms simulated"]
        for p, ns in st["phases_ns"].items():
            n = sum(1 for g in self.runs if g.phase == p)
            out.append(f"   {p:<10} {ns / 1e6:10.3f} ms  {100.0 * ns / total:5.1f}%  "
                       f"{n} graph(s)")
        out.append(f"   MFU        {st['mfu_percent']:.1f}% ({st['model_flops'] / 1e9:.3f} GFLOP "
                   "of matmul and attention)")
        eng = st["engine_busy_percent"]
        out.append("   engines    " + "  ".join(f"{k} {v:.1f}%" for k, v in eng.items()
                                                if k != "sync") + " busy")
        out.append(f"   HBM        read {_fmt_bytes(st['hbm_read_bytes'])}, written "
                   f"{_fmt_bytes(st['hbm_write_bytes'])}")
        m = st["memory"]
        parts = [f"weights {_fmt_bytes(m['weights'])}", f"gradients {_fmt_bytes(m['gradients'])}",
                 f"optimizer state {_fmt_bytes(m['optimizer_state'])}",
                 f"saved activations {_fmt_bytes(m['saved_activations'])}",
                 f"largest graph's scratch {_fmt_bytes(m['largest_graph_arena'])}"]
        cap = m["hbm_per_core"]
        fits = ("" if not cap else f" of {_fmt_bytes(cap)} per NeuronCore: "
                + ("fits" if m["fits"] else "DOES NOT FIT"))
        out.append(f"   memory     {' + '.join(parts)} = {_fmt_bytes(m['total'])}{fits}")
        return out

    def summary_text(self) -> str:
        runs = self.runs
        if len(self.graphs) == 1 and runs and not self.is_training_step:
            return runs[0].record.summary_text()
        out = self._step_lines() if self.is_training_step and runs else []
        for g in self.graphs:
            if isinstance(g, GraphRun):
                out.append(f"== {g.label}: {g.simulated_ns / 1000.0:.3f} us simulated, "
                           f"{g.instructions} instructions")
                out.append(g.record.summary_text().rstrip("\n"))
            else:
                counts: dict = {}
                for op, where in g.ops:
                    counts.setdefault(op, []).append(where)
                out.append(f"== {g.label}: {len(g.ops)} ops on the host (fallback='cpu'), "
                           f"{g.host_seconds * 1e3:.3f} ms")
                for op, wheres in counts.items():
                    locs = sorted({w for w in wheres if w})
                    at = f" at {', '.join(locs)}" if locs else ""
                    out.append(f"  {op} x{len(wheres)}{at}")
        out.append(f"== total: {len(runs)} graph(s) on trnsim, {self.simulated_ns / 1000.0:.3f} us "
                   f"simulated, {self.instructions} instructions, host {self.host_seconds:.3f} s"
                   + (f", {len(self.host_ops)} host op(s)" if self.host_ops else ""))
        return "\n".join(out) + "\n"

    def summary(self) -> dict:
        """JSON-able: per graph, the core's summary (or the host ops) and the totals."""
        graphs = []
        for g in self.graphs:
            if isinstance(g, GraphRun):
                graphs.append({"label": g.label, "summary": json.loads(g.record.summary_json())})
            else:
                graphs.append({"label": g.label, "host_ops": [list(o) for o in g.ops]})
        out = {"graphs": graphs, "simulated_ns": self.simulated_ns,
               "instructions": self.instructions, "host_seconds": self.host_seconds}
        if self.is_training_step and self.runs:
            out["step"] = self.step()
        return out

    def summary_json(self) -> str:
        """The core's JSON summary when one graph ran; else ``summary()`` as JSON."""
        runs = self.runs
        if len(self.graphs) == 1 and runs and not self.is_training_step:
            return runs[0].record.summary_json()
        return json.dumps(self.summary())

    def write_trace(self, path) -> None:
        """One Perfetto/Chrome trace of every graph of the call, one after the other (graph
        k's events are shifted by the simulated time of graphs 0..k-1; its processes are
        prefixed with its label)."""
        runs = self.runs
        if len(runs) == 1:
            runs[0].record.write_trace(str(path))
            return
        events: list = []
        offset_us = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for k, g in enumerate(runs):
                part = os.path.join(tmp, f"g{k}.json")
                g.record.write_trace(part)
                with open(part) as f:
                    data = json.load(f)
                evs = data["traceEvents"] if isinstance(data, dict) else data
                for e in evs:
                    e = dict(e)
                    if "pid" in e and isinstance(e["pid"], int):
                        e["pid"] = e["pid"] + 1000 * k
                    if "ts" in e and e.get("ph") != "M":
                        e["ts"] = float(e["ts"]) + offset_us
                    if "id" in e:
                        # Each graph numbers its dependency arrows from 1: keep them apart.
                        e["id"] = f"g{k}.{e['id']}"
                    if e.get("ph") == "M" and e.get("name") == "process_name":
                        e["args"] = {**e.get("args", {}),
                                     "name": f"{g.label}: {e.get('args', {}).get('name', '')}"}
                    events.append(e)
                offset_us += g.simulated_ns / 1000.0
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns"}, f)

    def __repr__(self) -> str:
        return (f"RunRecord({len(self.runs)} graph(s), simulated_ns={self.simulated_ns:.0f}, "
                f"host_ops={len(self.host_ops)})")


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def _call_token():
    """What identifies the current call of a compiled model (see the module docstring)."""
    tok = _explicit_call.get()
    if tok is not None:
        return tok
    f = sys._getframe(2)
    outer = None
    while f is not None:
        if f.f_code.co_filename.endswith(_EVAL_FRAME):
            outer = f
        f = f.f_back
    return outer if outer is not None else object()


def _joins_last(phase: str, tok) -> bool:
    if _last is None:
        return False
    phases = {g.phase for g in _last.graphs}
    if phase == "backward":
        return "optimizer" not in phases
    if tok in _last.tokens:
        return phase == "optimizer" or "backward" not in phases
    return phase == "optimizer" and "backward" in phases and "optimizer" not in phases


def add(entry) -> None:
    """Adds an executed graph (GraphRun) or host-op group (HostOps) to the current call or
    training step (see the module docstring)."""
    global _last
    tok = _call_token()
    entry.phase = entry.label.split()[0]
    if not _joins_last(entry.phase, tok):
        _last = RunRecord()
    _last.tokens.append(tok)
    if isinstance(entry, GraphRun):
        entry.label = f"graph {len(_last.runs)} ({entry.label})"
    else:
        entry.label = f"host ({entry.label})"
    _last.graphs.append(entry)


def last_run() -> RunRecord | None:
    """The record of the most recent call of a model compiled with trnsim (None before one)."""
    return _last


def reset() -> None:
    global _last
    _last = None
