"""Launching a kernel on one chip: host inputs, tracing once per grid point, running the
programs on a simulated chip and the run's RunInfo."""

from __future__ import annotations

import os

import numpy as np

from .._trnsim import nki as _cnki
from .._trnsim import sim as _csim
from . import _context
from . import errors as _err
from ._context import _Ctx, _in_pkg, _Rec, _Shared, chip_info, tb_loc, user_loc
from ._dtypes import dtname, is_float, numpy_dtype
from ._grid import resolve_grid, target_chip
from ._names import HBM
from ._outputs import (_check_returned, _read_outputs, _write_back, check_unwritten,
                       fill_unwritten_option)
from ._tile import NkiTensor


# ---- launch --------------------------------------------------------------------------------


class RunInfo:
    """What the last run of a kernel amounted to (simulated time, instructions, summary)."""

    def __init__(self, record, chip, host_trace_seconds, programs):
        self.record = record
        self.chip = chip
        self.simulated_ns = record.simulated_ns
        self.latency_us = record.simulated_ns / 1000.0
        self.instructions = record.instructions
        self.trace_seconds = host_trace_seconds
        self.programs = programs
        self.notes: list = []  # what the front end changed (e.g. fill_unwritten), one line each

    def summary(self) -> dict:
        import json
        d = json.loads(self.record.summary_json())
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def summary_json(self) -> str:
        import json
        if not self.notes:
            return self.record.summary_json()
        return json.dumps(self.summary(), indent=2)

    def summary_text(self) -> str:
        text = self.record.summary_text()
        if self.notes:
            text = text.rstrip("\n") + "\n" + "".join(f"note: {n}\n" for n in self.notes)
        return text

    def write_trace(self, path):
        self.record.write_trace(str(path))


#: 64-bit host dtypes the chip does not hold -> the 32-bit dtype they are converted to.
_NARROW = {"float64": np.float32, "int64": np.int32, "uint64": np.uint32}


def _narrow(arr, what):
    """``arr`` (int64 / uint64 / float64) converted to the chip's 32-bit dtype. Integers must
    fit exactly; floats are rounded to float32 (RNE, as numpy's astype) and must stay finite
    where they were finite. Anything else is an error naming the argument and the value."""
    src = arr.dtype.name
    to = np.dtype(_NARROW[src])
    if arr.dtype.kind in "iu":
        info = np.iinfo(to)
        bad = (arr < info.min) | (arr > info.max)
        if bad.any():
            i = tuple(int(x) for x in np.argwhere(bad)[0])
            raise _err.make_error(
                _err.NkiValueError,
                f"{what} is {src} and holds {int(arr[i])} at index {list(i)}, which {to.name} "
                f"(the widest integer the chip holds) cannot represent "
                f"([{info.min}, {info.max}]); pass values in that range, or convert the array "
                f"yourself (a.astype(np.{to.name})) if wrapping is what you want",
                user_loc())
        return arr.astype(to)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(to)
    bad = np.isfinite(arr) & ~np.isfinite(out)
    if bad.any():
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        raise _err.make_error(
            _err.NkiValueError,
            f"{what} is {src} and holds {float(arr[i])!r} at index {list(i)}, which is outside "
            f"the float32 range (+-{float(np.finfo(np.float32).max):.6g}) and would become "
            "inf; scale the values into range or pass float32 yourself",
            user_loc())
    with np.errstate(invalid="ignore"):
        changed = bool(np.any((out.astype(arr.dtype) != arr) & ~np.isnan(arr)))
    if changed:
        import warnings
        loc = user_loc() or ("<unknown>", 0)
        warnings.warn_explicit(
            f"{what} is float64: its values are rounded to float32 (the chip holds no float64); "
            "pass float32 to silence this", _err.NkiNarrowingWarning, loc[0], loc[1],
            registry=_WARNED.setdefault(loc[0], {}))
    return out


_WARNED: dict = {}  # warning registries per file: each (message, line) warns once


def _to_numpy(a, what="an argument"):
    """(array, core dtype, user dtype) for a numpy array or a CPU torch tensor."""
    mod = type(a).__module__
    if mod.startswith("torch"):
        import torch
        t = a.detach().cpu()
        if t.dtype in (torch.float64, torch.int64):
            arr = _narrow(t.numpy(), what)
            return arr, dtname(arr.dtype), arr.dtype
        core = dtname(str(t.dtype).replace("torch.", ""))
        if t.dtype in (torch.bfloat16,) or "float8" in str(t.dtype):
            return t.float().numpy(), core, t.dtype
        return t.numpy(), core, t.dtype
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8), "uint8", np.bool_
    if arr.dtype.name in _NARROW:
        arr = _narrow(arr, what)
        return arr, dtname(arr.dtype), arr.dtype
    try:
        core = dtname(arr.dtype)
    except _err.NkiTypeError:
        raise _err.make_error(
            _err.NkiTypeError,
            f"{what} has dtype {arr.dtype.name}, which the chip does not hold; pass one of "
            "float32, float16, bfloat16, float8, int8/16/32, uint8/16/32 or bool (int64 and "
            "float64 are converted when the values fit)", user_loc()) from None
    return arr, core, arr.dtype


def _param_names(fn, n):
    import inspect
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"arg{i}" for i in range(n)]


def _is_array(a):
    return isinstance(a, np.ndarray) or type(a).__module__.startswith("torch") and hasattr(a, "detach")



def _host_inputs(fn, args, kname="kernel"):
    """(name, array, core dtype, user dtype, original) of each array argument."""
    names = _param_names(fn, len(args))
    out = []
    for i, a in enumerate(args):
        if _is_array(a):
            arr, core, user = _to_numpy(a, f"{kname}: argument '{names[i]}'")
            out.append((names[i], arr, core, user, a))
    return out


def _trace(fn, args, kwargs, grid, pids, per_core, chip, kname, host_inputs, rank=0,
           num_ranks=1, groups=None, lockstep=False):
    """Runs the kernel function once per grid point, emitting instructions; returns the
    contexts (one per program, each with its finished .program) and the kernel's return value
    (its tensors refer to the first program)."""
    shared = _Shared()
    ctxs = []
    outs = None
    try:
        if groups is None:
            groups = [[p] for p in pids] if per_core else [pids]
        for core_i, group in enumerate(groups):
            c = _Ctx(chip, kname if len(groups) == 1 else f"{kname}[{core_i}]", shared)
            c.grid = grid or (1,)
            c.rank = rank
            c.num_ranks = num_ranks
            ctxs.append(c)
            _context._CTX = c
            # Inputs: HBM tensors bound to the host arrays by name.
            kargs = list(args)
            inputs = []
            j = 0
            for i, a in enumerate(args):
                if _is_array(a):
                    nm, arr, core, user, _ = host_inputs[j]
                    j += 1
                    nm = c.unique(nm)
                    tid = c.b.declare(HBM, nm, core, list(arr.shape) or [1], "input")
                    rec = _Rec(c, tid, HBM, core, tuple(arr.shape) or (1,), None, nm)
                    t = NkiTensor(rec, rec.shape, user)
                    inputs.append(rec)
                    kargs[i] = t
            c.inputs = inputs
            c.kcode = getattr(fn, "__code__", None)
            if lockstep and len(group) > 1:  # nl.all_reduce: programs in lockstep threads
                from .spmd_reduce import Lockstep

                def call(c=c, kargs=kargs):
                    o = _call_kernel(c, fn, kargs, kwargs)
                    _check_returned(c, fn, o, kname)
                    return o
                c.lockstep = Lockstep(c, group)
                o = c.lockstep.run(call)
                c.kframe = None
                outs = o if outs is None else outs
                group = []
            for k_i, pid in enumerate(group):
                c.pid = tuple(pid) if pid else (0,)
                c.hbm_index = 0
                c.kframe = None
                o = _call_kernel(c, fn, kargs, kwargs)
                _check_returned(c, fn, o, kname)
                c.kframe = None
                if outs is None:
                    outs = o
            here_loc = c.last_loc
            try:
                prog = c.b.finish()
            except _cnki.CoreError as e:
                raise _err.from_core(e, here_loc) from None
            c.program = prog
            _context._CTX = None
    except _cnki.CoreError as e:
        c = _context._CTX
        _context._CTX = None
        raise _err.from_core(e, c.last_loc if c else None).with_traceback(e.__traceback__) from None
    finally:
        _context._CTX = None
    return ctxs, outs


def _call_kernel(c, fn, kargs, kwargs):
    """fn(*kargs, **kwargs), with every trnsim.nki error placed at the kernel statement that
    caused it: the user's frame that called into trnsim.nki, from the traceback (errors that
    the core placed itself, at an instruction's recorded line, keep that place)."""
    try:
        return fn(*kargs, **kwargs)
    except _err.NkiError as e:
        if not getattr(e, "located_by_core", False):
            loc = tb_loc(e.__traceback__)
            if loc is not None and (e.file, e.line) != loc:
                _err.relocate(e, loc)
        raise
    except _cnki.CoreError as e:
        err = _err.from_core(e, None)
        if not getattr(err, "located_by_core", False):
            _err.relocate(err, tb_loc(e.__traceback__) or c.last_loc)
        raise err.with_traceback(e.__traceback__) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        api = _api_frame(e.__traceback__)
        if api is None:
            raise  # the kernel's own code raised it
        cls = _err.NkiValueError if isinstance(e, (ValueError, IndexError)) else _err.NkiTypeError
        raise _err.make_error(
            cls, f"bad arguments to {api}: {type(e).__name__}: {e}",
            tb_loc(e.__traceback__)) from e


def _api_frame(tb):
    """'nki.isa.tensor_tensor' when an exception was raised inside trnsim.nki (below the
    kernel's call into the API), else None (raised by the kernel's own code)."""
    below = []  # package frames below the innermost user frame
    while tb is not None:
        f = tb.tb_frame
        below = below + [f] if _in_pkg(f) else []
        tb = tb.tb_next
    if not below:
        return None
    for f in below:  # the public function, not a decorator's wrapper or a helper
        if f.f_code.co_name not in ("wrapper", "<lambda>") and not \
                f.f_code.co_name.startswith("_"):
            break
    else:
        f = below[0]
    return f"{_public_module(f.f_globals.get('__name__', 'trnsim.nki'))}.{f.f_code.co_name}"


def _public_module(name):
    """The public module a module of this package speaks for: the parts of nki.language
    (_nl_*.py) for "nki.language", those of nki.isa (_isa_*.py) for "nki.isa", the tracer's
    private modules (_*.py) for "nki"."""
    mod = name.replace("trnsim.", "", 1)
    head, _, last = mod.rpartition(".")
    if last.startswith("_nl_"):
        return f"{head}.language"
    if last.startswith("_isa_"):
        return f"{head}.isa"
    return head if last.startswith("_") else mod


def _write_report(record, trace, report):
    trace = trace or os.environ.get("TRNSIM_TRACE") or None
    report = report or os.environ.get("TRNSIM_REPORT") or None
    if trace:
        record.write_trace(str(trace))
    if report:
        text = record.summary_json() if str(report).endswith(".json") else record.summary_text()
        with open(report, "w") as f:
            f.write(text)


_MAX_THREADS = 2**32 - 1  # RunOptions::threads / ClusterOptions::threads are uint32


def threads_option(value, kname=None) -> int:
    """The ``threads=`` run option as the core takes it: a non-negative int (0, the default,
    = one per host core). Anything else is an error naming the keyword and the kernel."""
    if value is None:
        return 0
    where = f"{kname}: " if kname else ""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _err.NkiTypeError(
            f"{where}threads={value!r} is a {type(value).__name__}; give an int number of host "
            "threads (0 = one per host core)")
    if not 0 <= int(value) <= _MAX_THREADS:
        raise _err.NkiValueError(
            f"{where}threads={int(value)}: give a number of host threads from 0 (one per host "
            f"core) to {_MAX_THREADS}")
    return int(value)


def launch(fn, args, kwargs, grid=(), chip=None, trace=None, report=None, name=None,
           multicore=True, system=None, fill_unwritten=None, threads=None):
    """Traces `fn` once per grid point, runs the programs on a simulated chip and returns
    (outputs as numpy, RunInfo). A lone chip is a world of one rank (rank 0): collectives
    over that rank copy src to dst; more ranks need launch_multichip. ``threads``: host
    threads for the work inside one instruction (RunOptions::threads; 0 or None = one per
    host core); values and timing do not depend on it."""
    import time
    if _context._CTX is not None:  # a kernel called from a kernel: inline it
        return fn(*args, **kwargs), None
    kname = name or getattr(fn, "__name__", "kernel")
    chip = target_chip(chip, kname)
    nthreads = threads_option(threads, kname)
    info = chip_info(chip)
    grid, core_of = resolve_grid(grid, kname)
    npoints = int(np.prod(grid)) if grid else 1
    pids = list(np.ndindex(*grid)) if grid else [()]
    cores = info["cores"]
    groups = None
    if core_of is not None:  # nl.nc / nl.spmd_dim: the grid names the NeuronCores
        ncores = core_of(None)
        if ncores > cores:
            raise _err.NkiValueError(
                f"{kname}: the launch grid asks for {ncores} NeuronCores (nl.nc / nl.spmd_dim) "
                f"but a {chip} chip has {cores}")
        groups = [[] for _ in range(ncores)]
        for p in pids:
            groups[core_of(p)].append(p)
    per_core = bool(multicore and len(grid) == 1 and 1 < npoints <= cores)

    fill = fill_unwritten_option(fill_unwritten)
    host_inputs = _host_inputs(fn, args, kname)
    t0 = time.perf_counter()
    from .spmd_reduce import NeedLockstep
    try:
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, per_core, chip, kname, host_inputs,
                            groups=groups)
    except NeedLockstep as e:
        if core_of is not None:
            raise _err.make_error(
                _err.NotSupportedError,
                "nl.all_reduce across NeuronCores (an nl.nc / nl.spmd_dim grid axis): the "
                "per-core programs cannot wait for each other yet; launch the grid without "
                "nl.nc to reduce on one core", (e.file, e.line)) from None
        # nl.all_reduce: trace again with the programs in lockstep, all on one NeuronCore
        ctxs, outs = _trace(fn, args, kwargs, grid, pids, False, chip, kname, host_inputs,
                            lockstep=True)
    trace_s = time.perf_counter() - t0

    # Run.
    chip_obj = _csim.Chip(chip)
    progs = [c.program for c in ctxs]
    try:
        rec = _cnki.load(chip_obj, progs)
        for nm, arr, core, user, orig in host_inputs:
            chip_obj.write(nm, arr, 0)
        for c in ctxs:
            for nm, arr in c.constants:
                chip_obj.write(nm, arr, 0)
        # Events always: the summary's per-engine instruction and wait counts come from them
        # (a few percent of the run's host time), trace file or not.
        _cnki.execute(chip_obj, rec, values=True, timing=True, events=True,
                      threads=nthreads)
    except _cnki.CoreError as e:
        raise _err.from_core(e, None) from None
    except _csim.SimError as e:
        raise _err.make_error(_err.NkiRuntimeError, str(e)) from None
    run = RunInfo(rec, chip, trace_s, progs)
    fills = check_unwritten(outs, ctxs[0].shared, lambda nm: chip_obj.read_bits(nm, 0), kname,
                            fill, run.notes)
    _write_report(run, trace, report)

    # Device prints (snapshots taken by nl.device_print).
    for c in ctxs:
        for label, nm, core in c.prints:
            val = chip_obj.read(nm, 0)
            print(label, val.astype(numpy_dtype(core)) if not is_float(core) else val)

    def reader(nm):
        return chip_obj.read(nm, 0)
    _write_back(host_inputs, ctxs[0], reader)
    return _read_outputs(outs, reader, fills), run
