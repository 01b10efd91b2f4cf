"""The optimizer step on the simulated chip: ``trnsim.torch.compile_optimizer(opt)``.

``torch.compile`` of a function that calls ``opt.step()`` is how PyTorch compiles optimizers:
Dynamo traces the step (PyTorch's for-loop or foreach implementation, as the optimizer was
constructed),
AOTAutograd functionalizes it, so the graph returns the new parameters and optimizer state,
and its runtime copies them back into the tensors the optimizer owns. The graph reaches the
trnsim backend with ``phase="optimizer"``; its elementwise chains fuse into passes over the
parameters in simulated HBM, and the run joins the training step's record (``last_run()``).
Gradient clipping (``max_grad_norm``) runs inside the same compiled function. AdamW, Adam
and SGD are tested against eager PyTorch (tests/python/test_torch_train.py).
"""

from __future__ import annotations

import functools
import math

import torch

from . import _record
from ._errors import OptionsError
from ._options import Options

def _check(opt, max_grad_norm) -> None:
    if not isinstance(opt, torch.optim.Optimizer):
        raise OptionsError(f"compile_optimizer takes a torch.optim.Optimizer, not "
                           f"{type(opt).__name__}")
    if max_grad_norm is not None and not (isinstance(max_grad_norm, (int, float))
                                          and math.isfinite(max_grad_norm)
                                          and max_grad_norm > 0):
        raise OptionsError(f"max_grad_norm = {max_grad_norm!r}: a positive number, or None "
                           "for no clipping")
    for k, group in enumerate(opt.param_groups):
        if group.get("fused"):
            raise OptionsError(
                f"param group {k} has fused=True: the fused CPU kernel is one opaque op that "
                "trnsim cannot compile; construct the optimizer with fused=None (the "
                "foreach/for-loop step compiles to trnsim's fused elementwise passes)")
        lr = group.get("lr")
        if isinstance(lr, (int, float)) and not (math.isfinite(lr) and lr >= 0):
            raise OptionsError(f"param group {k} has lr = {lr!r}: a finite number >= 0")


def _state_bytes(opt) -> int:
    seen, total = set(), 0
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor) and v.data_ptr() not in seen:
                seen.add(v.data_ptr())
                total += v.numel() * v.element_size()
    return total


def compile_optimizer(opt: torch.optim.Optimizer, *, max_grad_norm: float | None = None,
                      **options) -> torch.optim.Optimizer:
    """Makes ``opt.step()`` run on trnsim: replaces the optimizer's ``step`` with a
    ``torch.compile``d one (backend ``"trnsim"``, `options` as for ``torch.compile``), which
    first clips the gradients to `max_grad_norm` (``clip_grad_norm_``, when given). Returns
    `opt`. Parameters, gradients and state stay ordinary tensors; the compiled step reads them
    and writes the updated values back, as eager PyTorch would."""
    _check(opt, max_grad_norm)
    opts = Options.parse(options)
    from ._backend import trnsim_backend

    backend = functools.partial(trnsim_backend, options=opts, phase="optimizer")
    eager_step = opt.step
    params = [p for group in opt.param_groups for p in group["params"]]

    def step_fn():
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm, foreach=False)
        eager_step()

    compiled = torch.compile(step_fn, backend=backend, dynamic=False)

    @functools.wraps(eager_step)
    def step(closure=None):
        if closure is not None:
            raise OptionsError("a compiled optimizer step takes no closure (LBFGS-style "
                               "closures re-run the model inside step)")
        compiled()
        rec = _record.last_run()
        if rec is not None and any(g.phase == "optimizer" for g in rec.graphs):
            rec.optimizer_state_bytes = _state_bytes(opt)

    opt.step = step
    opt._trnsim_eager_step = eager_step
    return opt
