"""trnsim.torch: run PyTorch models on the simulated Trainium chip.

    import torch
    import trnsim.torch            # registers the Dynamo backend "trnsim"

    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={"chip": "trn2", "dtype": None, "timing_only": False,
                                      "fallback": None})
    with torch.no_grad():
        logits = compiled(input_ids)
    print(trnsim.torch.last_run().summary_text())

Training: the backward graphs compile too, and ``trnsim.torch.compile_optimizer(opt)`` makes
``opt.step()`` a compiled graph; ``last_run()`` is then the whole step (forward, backward,
optimizer: times, MFU, memory).

Dynamo captures the model, AOTAutograd lowers each graph to Core ATen, and this package
serializes the graphs to trnsim's graph IR (``_serialize.py``), which the C++ compiler
(``trnsim._trnsim.compiler``) compiles to ISA programs that run on the simulated chip.
``trnsim.torch.compile(model, example_inputs, **options)`` does the same ahead of time through
torch.export. See docs/torch.md.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as _e:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "trnsim.torch needs PyTorch, which is not installed in this environment: "
        "pip install torch==2.13.0 (CPU wheels are enough; trnsim simulates the device)"
    ) from _e

from ._backend import BACKEND_NAME, register as _register, trnsim_backend  # noqa: E402
from ._cache import reset_stats, stats  # noqa: E402
from ._errors import (CompileError, DtypeError, DynamicShapeError, OptionsError,  # noqa: E402
                      TrnsimTorchError, UnsupportedOpError)
from ._export import TrnsimModule, compile  # noqa: E402
from ._fp8 import fp8_quantize  # noqa: E402
from ._optim import compile_optimizer  # noqa: E402
from ._record import GraphRun, HostOps, RunRecord, last_run  # noqa: E402
from ._serialize import SerializedGraph, serialize  # noqa: E402

_register()

# trnsim compiles static shapes. Dynamo's automatic dynamic shapes would turn a dim symbolic
# at the second input shape (and the backend would have to refuse the graph); with it off, a
# new shape recompiles the graph for that shape, as with torch.compile(dynamic=False).
# dynamic=True still gives DynamicShapeError.
import torch._dynamo as _dynamo  # noqa: E402

_dynamo.config.automatic_dynamic_shapes = False


def supported_ops() -> list:
    """The op names (IR spelling, e.g. ``add``, ``_softmax``) trnsim compiles."""
    from ._compile import supported_ops as _ops
    return sorted(_ops())


__all__ = [
    "BACKEND_NAME", "CompileError", "DtypeError", "DynamicShapeError", "GraphRun", "HostOps",
    "OptionsError", "RunRecord", "SerializedGraph", "TrnsimModule", "TrnsimTorchError",
    "UnsupportedOpError", "compile", "compile_optimizer", "fp8_quantize", "last_run",
    "reset_stats", "serialize", "stats", "supported_ops", "trnsim_backend",
]
