"""trnsim.nki: write or bring an NKI kernel and run it on a simulated Trainium chip.

    from trnsim import nki
    import trnsim.nki.language as nl

    @nki.jit
    def add(a, b):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a) + nl.load(b))
        return out

    c = add(np.ones((128, 512), np.float32), np.ones((128, 512), np.float32))

Kernels run in Python once per program (loops unroll by running); every nki.language /
nki.isa call emits instructions through the C++ kernel builder, and the program then runs on
``trnsim``'s simulated chip (values and timing). Target: ``platform_target=`` or
``NEURON_PLATFORM_TARGET_OVERRIDE=trn1|trn2|trn3`` (default trn2). ``trace=path`` (or
``TRNSIM_TRACE``) writes a Perfetto trace, ``report=path`` (or ``TRNSIM_REPORT``) the summary.
See docs/nki.md.
"""

from __future__ import annotations

import functools as _functools

from . import api, collectives, compiler, errors, isa, language  # noqa: F401
from . import typing  # noqa: F401
from ._multichip import MultichipRunInfo
from ._tile import NkiTensor
from ._launch import RunInfo
from ._launch import launch as _launch
from ._multichip import launch_multichip as _launch_multichip
from .errors import (CapacityError, NkiError, NotSupportedError,  # noqa: F401
                     OutOfBoundsError, UninitializedReadError, VerifyError)

tile_size = language.tile_size


def install_import_aliases(replace_existing: bool = True) -> None:
    """Makes ``nki``, ``nki.language``, ``neuronxcc.nki``, ... import trnsim.nki (compat.py).
    Imported on first use, so ``python -m trnsim.nki.compat`` runs compat.py without a
    RuntimeWarning about a module already in sys.modules."""
    from .compat import install_import_aliases as install
    install(replace_existing)

#: ``nki.tensor``: the class of every tensor and tile inside a kernel; also an annotation
#: (``def kernel(a: nki.tensor)``, ``nki.tensor[shape, dtype]``).
tensor = NkiTensor

_last_run: RunInfo | None = None


def last_run() -> RunInfo | None:
    """RunInfo of the most recent kernel run (simulated time, summary, trace writer)."""
    return _last_run


class Kernel:
    """A kernel function ready to run on the simulated chip. ``kernel[grid](...)`` launches
    an SPMD grid; calling it runs once (or once per grid point) and returns numpy arrays."""

    def __init__(self, fn, grid=(), **options):
        self.fn = fn
        self.grid = grid
        self.options = options
        self.last_run = None
        _functools.update_wrapper(self, fn)

    def __getitem__(self, grid):
        if not isinstance(grid, tuple):
            grid = (grid,)
        return Kernel(self.fn, grid, **self.options)

    def __call__(self, *args, **kwargs):
        try:
            return self._call(*args, **kwargs)
        except NkiError as e:
            _place_at_call(e)
            raise

    def _call(self, *args, **kwargs):
        global _last_run
        opts = dict(self.options)
        for k in ("trace", "report", "platform_target", "target", "chip", "num_ranks",
                  "system", "threads", "timing_only", "fill_unwritten"):
            if k in kwargs:
                opts[k] = kwargs.pop(k)
        chip = opts.get("platform_target") or opts.get("target") or opts.get("chip")
        if opts.get("num_ranks") is not None:
            out, run = _launch_multichip(
                self.fn, _rank_args(args, int(opts["num_ranks"])), kwargs, self.grid, chip=chip,
                trace=opts.get("trace"), report=opts.get("report"), system=opts.get("system"),
                threads=opts.get("threads"), timing_only=bool(opts.get("timing_only")),
                fill_unwritten=opts.get("fill_unwritten"))
        else:
            out, run = _launch(self.fn, args, kwargs, self.grid, chip=chip,
                               trace=opts.get("trace"), report=opts.get("report"),
                               multicore=opts.get("multicore", True), system=opts.get("system"),
                               fill_unwritten=opts.get("fill_unwritten"),
                               threads=opts.get("threads"))
        if run is not None:
            self.last_run = _last_run = run
        return out


def _place_at_call(e):
    """An error about the launch itself (grid, ranks, options, a run-time error the core could
    not place) gets the line that called the kernel."""
    if getattr(e, "file", None) is None:
        from ._context import user_loc
        errors.relocate(e, user_loc())


def _is_array(a):
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _rank_args(args, num_ranks):
    """Per-rank argument tuples: a list/tuple of num_ranks arrays gives each rank its own;
    anything else (an array, a number) is the same on every rank."""
    if num_ranks < 1:
        raise errors.NkiValueError(f"num_ranks={num_ranks}: a run needs at least one rank")
    per = [[] for _ in range(num_ranks)]
    for i, a in enumerate(args):
        if isinstance(a, (list, tuple)) and a and all(_is_array(x) for x in a):
            if len(a) != num_ranks:
                raise errors.NkiValueError(
                    f"argument {i} holds {len(a)} arrays but num_ranks={num_ranks}: give one "
                    "array per rank, or one array for every rank")
            for r in range(num_ranks):
                per[r].append(a[r])
        else:
            for r in range(num_ranks):
                per[r].append(a)
    return [tuple(p) for p in per]


def jit(kernel=None, **options):
    """Decorator: ``@nki.jit`` or ``@nki.jit(platform_target="trn1", trace="k.json")``.
    NKI's compiler options (mode, show_compiler_tb, debug_kernel, ...) are accepted and ignored.
    An unknown target (platform_target= / target= / chip=) is an error at the decorator.
    ``fill_unwritten=0`` zero-fills output elements the kernel never wrote (else an error).
    ``threads=N``: host threads for the work inside one instruction (0, the default, = one
    per host core; with num_ranks, the threads running the ranks); outputs and timing are the
    same for every N. A bad value is an error at the decorator."""
    if kernel is None:
        return lambda fn: jit(fn, **options)
    chip = options.get("platform_target") or options.get("target") or options.get("chip")
    if chip is not None:
        from ._grid import target_chip
        target_chip(chip, getattr(kernel, "__name__", "kernel"))
    if "threads" in options:
        from ._launch import threads_option
        threads_option(options["threads"], getattr(kernel, "__name__", "kernel"))
    if isinstance(kernel, Kernel):
        return Kernel(kernel.fn, kernel.grid, **{**kernel.options, **options})
    return Kernel(kernel, **options)


trace = jit  # NKI's nki.trace decorator: same behaviour here
baremetal = jit  # numpy in, numpy out, on the (simulated) device


def simulate(kernel, **options):
    """``nki.simulate(kernel)(*args)``: runs the kernel on the simulated chip."""
    return jit(kernel, **options)


def simulate_kernel(kernel, *args, **kwargs):
    """Older entry point: ``nki.simulate_kernel(kernel, *args)``. With ``num_ranks=N`` the
    kernel runs SPMD on N simulated chips (one rank each) and a list of N outputs comes back;
    an argument given as a list of N arrays is per rank, anything else is the same on every
    rank (docs/nki.md, "Multi-chip runs")."""
    return jit(kernel)(*args, **kwargs)


def simulate_multichip(kernel, rank_args, *, platform_target=None, system=None, trace=None,
                       report=None, threads=0, seed=0, timing_only=False, fill_unwritten=None,
                       **kwargs):
    """Runs ``kernel`` SPMD on ``len(rank_args)`` simulated chips: rank r calls
    ``kernel(*rank_args[r], **kwargs)`` (an item that is not a tuple or list is rank r's only
    argument). Returns the list of per-rank outputs; ``nki.last_run()`` then holds the
    MultichipRunInfo (simulated time, per-rank results, each collective's timing).

    ``system`` names the system whose fabric times the collectives (configs/systems, e.g.
    "trn2.48xlarge"); by default the cluster runtime picks one for the chip. ``timing_only``
    skips the values (outputs are None; the simulated times are the same)."""
    global _last_run
    fn = kernel.fn if isinstance(kernel, Kernel) else kernel
    grid = kernel.grid if isinstance(kernel, Kernel) else ()
    rargs = [tuple(a) if isinstance(a, (tuple, list)) else (a,) for a in rank_args]
    try:
        out, run = _launch_multichip(fn, rargs, kwargs, grid, chip=platform_target, trace=trace,
                                     report=report, system=system, threads=threads, seed=seed,
                                     timing_only=timing_only, fill_unwritten=fill_unwritten)
    except NkiError as e:
        _place_at_call(e)
        raise
    if isinstance(kernel, Kernel):
        kernel.last_run = run
    _last_run = run
    return out


class _Latency:
    def __init__(self, samples_us):
        self.samples_us = list(samples_us)

    def get_latency_percentile(self, p):
        """Simulated latency in microseconds (the simulator is deterministic: every
        iteration takes the same time, so every percentile is the same)."""
        import numpy as np
        return float(np.percentile(self.samples_us, p))


class BenchmarkResult:
    def __init__(self, samples_us):
        self.nc_latency = _Latency(samples_us)


class _Benchmark(Kernel):
    def __init__(self, fn, grid=(), warmup=5, iters=10, **options):
        super().__init__(fn, grid, **options)
        self.warmup, self.iters = int(warmup), int(iters)
        self.benchmark_result = None

    def __getitem__(self, grid):
        if not isinstance(grid, tuple):
            grid = (grid,)
        return _Benchmark(self.fn, grid, self.warmup, self.iters, **self.options)

    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        lat = self.last_run.latency_us
        self.benchmark_result = BenchmarkResult([lat] * max(self.iters, 1))
        print(f"trnsim benchmark {getattr(self.fn, '__name__', 'kernel')}: "
              f"{lat:.3f} us simulated on {self.last_run.chip} "
              f"({self.last_run.instructions} instructions)")
        return out


def benchmark(kernel=None, warmup=5, iters=10, save_neff_name=None, save_trace_name=None,
              **options):
    """``nki.benchmark(warmup=, iters=)(kernel)``: runs and records simulated latency in
    ``.benchmark_result.nc_latency.get_latency_percentile(p)`` (microseconds).
    save_trace_name writes the Perfetto trace there."""
    if save_trace_name:
        options.setdefault("trace", save_trace_name)
    if kernel is None:
        return lambda fn: benchmark(fn, warmup, iters, save_neff_name, save_trace_name, **options)
    fn = kernel.fn if isinstance(kernel, Kernel) else kernel
    grid = kernel.grid if isinstance(kernel, Kernel) else ()
    return _Benchmark(fn, grid, warmup, iters, **options)


profile = benchmark


def __getattr__(name):
    from . import api  # the names that do not work, and why
    reason = api.unsupported("nki").get(name)
    if reason is not None:
        return api.not_supported_stub("nki", name, reason)
    raise AttributeError(f"module 'nki' has no attribute '{name}'")


__all__ = ["jit", "trace", "baremetal", "simulate", "simulate_kernel", "simulate_multichip",
           "benchmark", "profile", "language", "isa", "collectives", "compiler", "typing", "tile_size",
           "tensor",
           "install_import_aliases", "last_run", "Kernel", "MultichipRunInfo", "NkiError", "VerifyError", "CapacityError", "OutOfBoundsError",
           "UninitializedReadError", "NotSupportedError"]
