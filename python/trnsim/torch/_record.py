"""What the last forward amounted to: ``trnsim.torch.last_run()``.

A forward may run several graphs: Dynamo graph breaks give one graph per piece, and with
``fallback="cpu"`` a graph is split into trnsim parts and host ops. Each executed piece adds
an entry to the current ``RunRecord``; a new record starts with each call of the compiled
model. Under ``torch.compile`` "a call" is told apart by the outermost Dynamo frame on the
Python stack (every graph of one call runs below the same frame object); the
``trnsim.torch.compile`` module marks its calls itself.
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
    host_seconds: float = 0.0
    simulated_ns: float = 0.0
    instructions: int = 0
    model_flops: float = 0.0


@dataclass
class RunRecord:
    """The graphs one call of a compiled model ran, in order, and their totals."""
    graphs: list = field(default_factory=list)
    token: object = None

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

    def summary_text(self) -> str:
        runs = self.runs
        if len(self.graphs) == 1 and runs:
            return runs[0].record.summary_text()
        out = []
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
        return {"graphs": graphs, "simulated_ns": self.simulated_ns,
                "instructions": self.instructions, "host_seconds": self.host_seconds}

    def summary_json(self) -> str:
        """The core's JSON summary when one graph ran; else ``summary()`` as JSON."""
        runs = self.runs
        if len(self.graphs) == 1 and runs:
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


def add(entry) -> None:
    """Adds an executed graph (GraphRun) or host-op group (HostOps) to the current call."""
    global _last
    tok = _call_token()
    if _last is None or _last.token is not tok:
        _last = RunRecord(token=tok)
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
