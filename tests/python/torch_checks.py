"""Checks shared by the trnsim.torch op tests: compile a function, measure its error against
PyTorch CPU, and make sure the op ran on trnsim."""
import torch

import trnsim.torch as tt


def compiled(fn, **options):
    return torch.compile(fn, backend="trnsim", dynamic=False, options=options or None)


def err(out, ref) -> float:
    """max |out - ref| / max |ref|."""
    out, ref = out.double(), ref.double()
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def assert_ran(texts, op):
    """`op` is in one of the IR `texts` (the ir_texts fixture), and a graph ran on trnsim."""
    assert any(f"= {op}(" in t for t in texts), f"no graph with {op} ran on trnsim"
    run = tt.last_run()
    assert run is not None and run.runs and run.simulated_ns > 0
