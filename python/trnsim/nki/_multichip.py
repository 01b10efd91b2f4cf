"""Multi-chip launches (nki.collectives): trace per rank, run on a fabric.Cluster,
MultichipRunInfo."""

from __future__ import annotations

import os

import numpy as np

from .._trnsim import nki as _cnki
from .._trnsim import sim as _csim
from . import _context
from . import errors as _err
from ._dtypes import is_float, numpy_dtype
from ._grid import resolve_grid, target_chip
from ._launch import _host_inputs, _is_array, _trace, _write_report, threads_option
from ._outputs import _read_outputs, _write_back, check_unwritten, fill_unwritten_option


# ---- multi-chip runs -------------------------------------------------------------------------


class MultichipRunInfo:
    """What a multi-chip run amounted to: the simulated time of the slowest rank, each rank's
    time and instructions, and every collective with its timing (from the fabric model)."""

    def __init__(self, result: dict, cluster, chip, system, num_ranks, trace_seconds, programs):
        self.result = result
        self.cluster = cluster
        self.chip = chip
        self.system = system
        self.num_ranks = num_ranks
        self.simulated_ns = result.get("simulated_ns", 0.0)
        self.latency_us = self.simulated_ns / 1000.0
        self.instructions = sum(r.get("instructions", 0) for r in result.get("ranks", []))
        self.trace_seconds = trace_seconds
        self.programs = programs
        self.collectives = result.get("collectives", [])
        self.process = cluster.process
        self.processes = cluster.processes
        self.local_ranks = range(cluster.first_local_rank, cluster.end_local_rank)
        self.system = result.get("system", system)
        self.notes: list = []  # what the front end changed (e.g. fill_unwritten), one line each

    def output_hashes(self):
        """Per rank, FNV-1a 64 of its output tensors (the same in every MPI process)."""
        return list(self.cluster.output_hashes())

    def summary(self) -> dict:
        """The run as a dict (per-rank results, collectives, compute/communication split)."""
        return dict(self.result)

    def summary_text(self) -> str:
        """A readable table: the run, each rank's time split, each collective's timing."""
        r = self.result
        lines = [
            f"multi-chip run: {self.num_ranks} x {r.get('chip', self.chip)} on "
            f"{r.get('system', self.system)}, {self.simulated_ns / 1e3:.3f} us simulated, "
            f"{self.instructions} instructions, {r.get('supersteps', 0)} supersteps, "
            f"{r.get('host_seconds', 0.0):.3f} s host",
            f"compute {r.get('compute_ns', 0.0) / 1e3:.3f} us, exposed communication "
            f"{r.get('exposed_comm_ns', 0.0) / 1e3:.3f} us (mean per rank), comm tax "
            f"{100 * r.get('comm_tax', 0.0):.1f}%",
            "",
            f"{'rank':>5} {'end us':>12} {'compute us':>12} {'comm us':>12} {'instr':>8}",
        ]
        for i, rr in enumerate(r.get("ranks", [])):
            lines.append(f"{i:>5} {rr['simulated_ns'] / 1e3:>12.3f} {rr['compute_ns'] / 1e3:>12.3f} "
                         f"{rr['exposed_comm_ns'] / 1e3:>12.3f} {rr['instructions']:>8}")
        if self.collectives:
            lines += ["", f"{'collective':<20} {'ranks':>6} {'bytes':>12} {'start us':>10} "
                          f"{'time us':>10} {'algorithm':<20} {'busbw GB/s':>10}"]
            for c in self.collectives:
                lines.append(
                    f"{c['op']:<20} {len(c['ranks']):>6} {c['bytes']:>12} "
                    f"{c['start_ns'] / 1e3:>10.3f} {(c['end_ns'] - c['start_ns']) / 1e3:>10.3f} "
                    f"{c['algorithm']:<20} {c['busbw_gbps']:>10.1f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def summary_json(self) -> str:
        import json
        return json.dumps(self.result, indent=2)

    def write_trace(self, path):
        self.cluster.write_trace(str(path))


def _arg_key(a):
    if _is_array(a):
        arr = np.asarray(a) if not type(a).__module__.startswith("torch") else None
        if arr is not None:
            return ("array", arr.shape, str(arr.dtype))
        return ("tensor", tuple(a.shape), str(a.dtype))
    return ("value", a)


def _same_args(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        kx, ky = _arg_key(x), _arg_key(y)
        if kx[0] != ky[0]:
            return False
        if kx[0] == "value":
            try:
                if not bool(kx[1] == ky[1]):
                    return False
            except Exception:  # noqa: BLE001 (values that do not compare: trace per rank)
                return False
        elif kx != ky:
            return False
    return True


class _FabricArgs:
    def __init__(self, e):
        where = getattr(e, "where", "") or ""
        if not _err._AT.search(where):
            # E.g. a deadlock names each waiting rank's instruction and line in its message:
            # the error is placed at the first of them.
            where = str(e)
        self.args = (getattr(e, "code", "kInternal"), where, getattr(e, "detail", str(e)),
                     str(e))


def _from_fabric(e):
    """A fabric.FabricError as the matching trnsim.nki error, located at the kernel line the
    error's place names ("rank 3: instruction 2 (all_reduce) at k.py:40")."""
    return _err.from_core(_FabricArgs(e))


def launch_multichip(fn, rank_args, kwargs, grid=(), chip=None, trace=None, report=None,
                     name=None, system=None, threads=0, seed=0, timing_only=False,
                     fill_unwritten=None):
    """Runs `fn` SPMD on len(rank_args) simulated chips joined by a fabric; rank r calls
    fn(*rank_args[r], **kwargs). Returns ([outputs of rank 0, ...], MultichipRunInfo).
    Under mpirun each process simulates a slice of the ranks; the outputs of ranks another
    process simulates are None (MultichipRunInfo.local_ranks says which are here). With
    timing_only no values are computed (every output is None): the times are the same.

    The kernel is traced once and the program shared when it does not ask for its rank
    (nki.collectives.rank_id) and every rank's arguments have the same shapes and dtypes;
    otherwise once per rank."""
    import time
    if _context._CTX is not None:
        raise _err.NkiRuntimeError("a multi-chip launch inside a running kernel")
    n = len(rank_args)
    if n < 1:
        raise _err.NkiValueError("a multi-chip run needs at least one rank (num_ranks >= 1)")
    kname = name or getattr(fn, "__name__", "kernel")
    chip = target_chip(chip, kname)
    grid, _ = resolve_grid(grid, kname)
    pids = list(np.ndindex(*grid)) if grid else [()]
    fill = fill_unwritten_option(fill_unwritten)
    nthreads = threads_option(threads, kname)

    t0 = time.perf_counter()
    per_rank = []  # (ctxs, outs, host_inputs) per rank; None = reuse rank 0's program
    for r in range(n):
        args = tuple(rank_args[r])
        hin = _host_inputs(fn, args, kname)
        if r > 0 and not per_rank[0][0][0].rank_dependent and _same_args(rank_args[0], args):
            per_rank.append((None, None, hin))
            continue
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, False, chip, kname, hin, r, n)
        per_rank.append((ctxs, outs, hin))
    trace_s = time.perf_counter() - t0

    try:
        from .._trnsim import fabric as _cfab
    except ImportError:  # pragma: no cover
        _cfab = None
    if not hasattr(_cfab, "Cluster"):
        raise _err.NotSupportedError(
            "multi-chip runs need the cluster runtime (fabric::Cluster), which this build of "
            "trnsim._trnsim does not have")
    try:
        cluster = _cfab.Cluster(chip, n, system or "", nthreads)
        shared_prog = per_rank[0][0][0].program
        programs = []
        for r, (ctxs, outs, hin) in enumerate(per_rank):
            prog = ctxs[0].program if ctxs is not None else shared_prog
            programs.append(prog)
            _cnki.cluster_load(cluster, r, prog)
        for r, (ctxs, outs, hin) in enumerate(per_rank):
            if not cluster.is_local(r):  # under mpirun another process simulates it
                continue
            for nm, arr, core, user, orig in hin:
                cluster.write(r, nm, arr)
            for c in (ctxs if ctxs is not None else per_rank[0][0]):
                for nm, arr in c.constants:
                    cluster.write(r, nm, arr)
        result = cluster.run(values=not timing_only, seed=int(seed),
                             events=bool(trace or os.environ.get("TRNSIM_TRACE")))
    except _cnki.CoreError as e:
        raise _err.from_core(e, None) from None
    except _cfab.FabricError as e:
        raise _from_fabric(e) from None
    except _csim.SimError as e:
        raise _err.make_error(_err.NkiRuntimeError, str(e)) from None
    run = MultichipRunInfo(result, cluster, chip, system, n, trace_s, programs)
    _write_report(run, trace, report)

    results = []
    for r, (ctxs, outs, hin) in enumerate(per_rank):
        if timing_only:
            results.append(None)
            continue
        if not cluster.is_local(r):
            results.append(None)  # simulated by another MPI process
            continue
        src = ctxs if ctxs is not None else per_rank[0][0]
        o = outs if ctxs is not None else per_rank[0][1]

        def reader(nm, _r=r):
            return cluster.read(_r, nm)
        for c in src:
            for label, nm, core in c.prints:
                val = reader(nm)
                print(f"[rank {r}]", label, val.astype(numpy_dtype(core)) if not is_float(core) else val)
        _write_back(hin, src[0], reader)
        fills = check_unwritten(o, src[0].shared, lambda nm, _r=r: cluster.read_bits(_r, nm),
                                kname, fill, run.notes, rank=r if n > 1 else None)
        results.append(_read_outputs(o, reader, fills))
    return results, run
