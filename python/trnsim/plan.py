"""trnsim.plan: the planner from Python (step time, memory, MFU, and with ``tokens`` the
whole run: days, cost, energy, goodput).

    from trnsim import plan
    d = plan.estimate("llama3-70b", "trn2-ultraserver", 256, 1024, 8192, tp=4, pp=4)
    d["step_time_s"], d["mfu"], d["compute_model"]   # "compiled" on Trainium by default
    plan.estimate("llama3-8b", "trn2.48xlarge", 16, 64, 4096, tp=4, compute_model="kernels")
    plan.compute_model("trn2.48xlarge").matmul_seconds(4096, 4096, 4096)
    # As `trnsim plan`: no degree given -> searched; the CLI's token forms; other systems; HTML.
    plan.estimate("config.json", "trn2-ultraserver", 256, 1024, 8192, tokens="15T",
                  compare=["dgx-h100"], report="plan.html")

A thin wrapper over ``trnsim._trnsim.plan.estimate`` (python/src/bind_plan.cpp); docs/plan.md
explains the model.
"""

from __future__ import annotations

from ._trnsim import plan as _p

estimate = _p.estimate
parse_tokens = _p.parse_tokens  # "15T", "300B", "2.5e12" -> tokens, as `trnsim plan --tokens`
builtin_models = _p.builtin_models
compute_model = _p.compute_model  # per-rank operation times of one system (the planner's view)

__all__ = ["estimate", "parse_tokens", "builtin_models", "compute_model"]
