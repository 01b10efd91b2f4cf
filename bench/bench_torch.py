"""End-to-end benchmarks of the PyTorch path (torch.compile(backend="trnsim")), written to
bench/results/bench_torch.json and summarized in bench/RESULTS.md.

1. Compile of GPT-2 small (124M, seq 1024) forward: the first call in timing-only mode, split
   into capture (Dynamo + AOTAutograd + serialization, Python), compile (the C++ passes and
   lowering) and the timing run. Target: compile <= 30 s on the 2-core dev machine.
2. Functional forward of GPT-2 small at batch 1, seq 128: the second call (weights already in
   simulated HBM), median of REPEATS. Target <= 20 s.
3. Timing-only forward of one Llama-3-8B decoder layer at seq 4096 on trn2: host seconds,
   simulated time and MFU, beside the planner's compute model for the same layer (the
   per-operation composition of src/trnsim/plan/estimate.cpp: QKV and output projections,
   flash attention, SwiGLU MLP, norms and residuals). Target <= 30 s host.

Run with `make bench` or `.venv/bin/python bench/bench_torch.py`. Models have random weights.
"""

import json
import os
import platform
import statistics
import sys
import time

import torch

import trnsim.torch
from trnsim import plan

REPEATS = int(os.environ.get("TRNSIM_BENCH_REPEATS", "3"))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def gpt2_small():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config()).eval()  # 124M: 12 layers, 768 hidden, 50257 vocab


def bench_gpt2_compile():
    model = gpt2_small()
    ids = torch.randint(0, 50257, (1, 1024))
    fast = torch.compile(model, backend="trnsim", dynamic=False, options={"timing_only": True, "fallback": "cpu"})
    t0 = time.perf_counter()
    with torch.no_grad():
        fast(ids, use_cache=False)
    total = time.perf_counter() - t0
    run = trnsim.torch.last_run()
    stats = trnsim.torch.stats()
    return {"first_call_s": total, "timing_run_host_s": run.host_seconds,
            "compile_s": stats.get("compile_seconds", total - run.host_seconds),
            "capture_s": stats.get("capture_seconds"),
            "simulated_us": run.simulated_ns / 1e3}


def bench_gpt2_functional():
    model = gpt2_small()
    ids = torch.randint(0, 50257, (1, 128))
    fast = torch.compile(model, backend="trnsim", dynamic=False, options={"fallback": "cpu"})
    with torch.no_grad():
        fast(ids, use_cache=False)  # compile + upload the weights
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            out = fast(ids, use_cache=False).logits
            times.append(time.perf_counter() - t0)
        ref = model(ids, use_cache=False).logits
    err = (out - ref).abs().max().item() / ref.abs().max().item()
    run = trnsim.torch.last_run()
    return {"median_s": statistics.median(times), "all_s": times,
            "max_abs_err_rel_to_scale": err, "simulated_us": run.simulated_ns / 1e3}


def planner_layer_forward_s(system, T, h, heads, kv, hd, ffn):
    """The planner's forward time of one dense SwiGLU layer on one rank (estimate.cpp)."""
    c = plan.compute_model(system)
    t = c.matmul_seconds(T, (heads + 2 * kv) * hd, h) + c.matmul_seconds(T, h, heads * hd)
    t += c.attention_forward_seconds(1, heads, kv, T, hd, True)
    t += c.memory_bound_seconds(T * h * (2 * 2 + 2 * 3) * 2.0)
    t += c.matmul_seconds(T, 2 * ffn, h) + c.matmul_seconds(T, h, ffn)
    t += c.memory_bound_seconds(T * ffn * 3 * 2.0)
    return t, c.name


def bench_llama_layer():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                      num_key_value_heads=8, num_hidden_layers=1, torch_dtype="bfloat16")
    cfg._attn_implementation = "sdpa"
    S = 4096
    with torch.device("meta"):
        pass
    layer = LlamaDecoderLayer(cfg, 0).to(torch.bfloat16).eval()
    rope = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, S, 4096, dtype=torch.bfloat16)
    pos = torch.arange(S)[None]
    cos, sin = rope(x, pos)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, cos, sin):
            return self.layer(x, position_embeddings=(cos, sin), attention_mask=None)

    fast = torch.compile(Wrap(), backend="trnsim", dynamic=False, options={"timing_only": True, "chip": "trn2"})
    t0 = time.perf_counter()
    with torch.no_grad():
        fast(x, cos, sin)
    host = time.perf_counter() - t0
    run = trnsim.torch.last_run()
    flops = run.model_flops if hasattr(run, "model_flops") else None
    summary = json.loads(run.summary_json()) if hasattr(run, "summary_json") else {}
    # The planner's rank on trn2 is a logical NeuronCore of 2 physical cores (LNC=2); the
    # compiled layer runs on one physical core, so the planner's time x 2 is the like-for-like
    # figure (its kernels split the work over the rank's cores).
    planner_s, model_name = planner_layer_forward_s("trn2.48xlarge", S, 4096, 32, 8, 128, 14336)
    return {"host_s": host, "simulated_us": run.simulated_ns / 1e3,
            "mfu_percent": summary.get("mfu"), "model_flops": flops,
            "planner_rank_us": planner_s * 1e6, "planner_one_core_us": 2 * planner_s * 1e6,
            "planner_compute_model": model_name}


def run_benches(which, namespace, out_file):
    """Runs namespace["bench_<name>"] for each name, printing and writing the results as JSON
    to bench/results/<out_file> (shared with bench_torch_train.py)."""
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__}
    for name in which:
        print(f"== {name}", flush=True)
        out[name] = namespace[f"bench_{name}"]()
        print(json.dumps(out[name], indent=1), flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, out_file), "w") as f:
        json.dump(out, f, indent=1)


def main():
    run_benches(sys.argv[1:] or ["gpt2_compile", "gpt2_functional", "llama_layer"], globals(),
                "bench_torch.json")


if __name__ == "__main__":
    main()
