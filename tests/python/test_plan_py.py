"""trnsim._trnsim.plan.estimate from Python: one training step (and the run) as a dict.

The checks recompute what the planner's outputs must satisfy from the other outputs and from
the model's shape read here from configs/models/*.json (independently of the C++ loader):
tokens/s = batch * seq / step time, the breakdown adds up to the step time, MFU = model FLOPs /
time / chips / peak, model FLOPs >= 6 * parameters * tokens (the dense-matmul part of forward
+ backward), and the run's step count and compute days follow from the token budget.
"""

from __future__ import annotations

import json
import math
import os

import pytest

plan = pytest.importorskip("trnsim._trnsim.plan")
fabric = pytest.importorskip("trnsim._trnsim.fabric")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _model_json(name):
    with open(os.path.join(REPO, "configs", "models", f"{name}.json")) as f:
        return json.load(f)


def _dense_params(m):
    """Parameters of a dense GQA transformer, computed here from the config's shape."""
    h, layers, ffn, vocab = m["hidden"], m["layers"], m["ffn_hidden"], m["vocab"]
    head_dim = h // m["heads"]
    attn = h * h * 2 + 2 * h * m["kv_heads"] * head_dim  # q, o, k, v
    mlp = (3 if m["activation"] == "swiglu" else 2) * h * ffn
    return layers * (attn + mlp) + vocab * h


@pytest.mark.parametrize("system,chips,tp,pp", [("dgx-h100", 64, 8, 1), ("trn2.48xlarge", 16, 4, 2)])
def test_step_is_self_consistent(system, chips, tp, pp):
    gb, seq = 64, 4096
    d = plan.estimate("llama3-8b", system, chips, gb, seq, tp=tp, pp=pp, compute="roofline")
    s = d["step"]
    ranks = chips * fabric.load_system(system)["accel"]["ranks_per_chip"]
    par = s["parallelism"]
    assert par["tp"] * par["pp"] * par["dp"] * par["cp"] == ranks  # dp=0: the rest
    t = s["step_time_s"]
    assert t > 0
    assert s["tokens_per_s"] == pytest.approx(gb * seq / t, rel=1e-9)
    b = s["breakdown_s"]
    parts = (b["compute"] + b["recompute"] + b["tp_exposed"] + b["cp_exposed"] + b["ep_exposed"]
             + b["dp_exposed"] + b["pp_exposed"] + b["bubble"] + b["optimizer"] + b["other"])
    assert parts == pytest.approx(t, rel=1e-6)
    m = s["memory_bytes"]
    assert m["total"] == pytest.approx(m["weights"] + m["gradients"] + m["optimizer"]
                                       + m["activations"] + m["buffers"], rel=1e-9)
    assert s["memory_per_chip_gib"] == pytest.approx(m["total"] / 2**30, rel=1e-6)
    # Model FLOPs from the reported TFLOPS: at least the dense matmuls' 6 * N * tokens.
    model_flops = s["model_tflops_per_chip"] * 1e12 * t * chips
    n = _dense_params(_model_json("llama3-8b"))
    assert model_flops >= 6 * n * gb * seq * 0.98
    assert model_flops <= 6 * n * gb * seq * 1.6  # attention adds tens of percent at 4K, not more
    assert s["hardware_tflops_per_chip"] >= s["model_tflops_per_chip"]
    assert 0 < s["mfu"] <= s["hfu"] < 1


def test_run_follows_from_the_step():
    gb, seq, tokens = 64, 4096, 1e12
    d = plan.estimate("llama3-8b", "dgx-h100", 64, gb, seq, tp=8, compute="roofline",
                      tokens=tokens)
    r, t = d["run"], d["step"]["step_time_s"]
    assert r["steps"] == math.ceil(tokens / (gb * seq))
    assert r["compute_days"] == pytest.approx(r["steps"] * t / 86400, rel=1e-6)
    assert r["time_to_train_days"] >= r["compute_days"]
    assert 0 < r["goodput"] <= 1
    assert r["goodput"] == pytest.approx(r["compute_days"] / r["time_to_train_days"], rel=1e-6)


def test_more_tensor_parallelism_moves_time_into_tp_communication():
    a = plan.estimate("llama3-70b", "dgx-h100", 64, 64, 4096, tp=2, pp=4, compute="roofline")
    b = plan.estimate("llama3-70b", "dgx-h100", 64, 64, 4096, tp=8, pp=4, compute="roofline")
    assert b["step"]["breakdown_s"]["tp_exposed"] > a["step"]["breakdown_s"]["tp_exposed"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(model="no-such-model"), "no-such-model"),
    (dict(system="no-such-system"), "no-such-system"),
    (dict(tp=3), "tp"),
    (dict(recompute="sometimes"), "recompute"),
    (dict(precision="fp4"), "precision"),
])
def test_errors_name_the_bad_input(kwargs, match):
    args = dict(model="llama3-8b", system="dgx-h100", chips=64, global_batch=64, seq=4096,
                compute="roofline")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plan.estimate(**args)


def test_builtin_models():
    names = plan.builtin_models()
    assert "llama3-8b" in names
    assert set(names) == {f[:-5] for f in os.listdir(os.path.join(REPO, "configs", "models"))
                          if f.endswith(".json")}
