"""Benchmarks of training on the simulated chip (forward, backward and optimizer graphs
compiled by trnsim), written to bench/results/bench_torch_train.json and summarized in
bench/RESULTS.md.

1. GPT-2 small (124M), batch 1, seq 1024, one training step (forward with the loss, backward,
   AdamW step compiled with ``compile_optimizer``) in timing-only mode with ``dtype="bf16"``:
   the first step's host time split into capture (Dynamo, AOTAutograd, serialization) and the
   C++ compile, and the second step's host time (graphs compiled; timing runs only).
   Targets: compile <= 60 s, one step <= 60 s host on the 2-core dev machine.
2. One Llama-3-8B decoder layer (bf16 weights, seq 4096, batch 1), forward + backward,
   timing-only, on trn1 and trn2: host seconds, simulated forward and backward time, MFU of
   one NeuronCore. Target <= 60 s host each.

Run with `make bench` or `.venv/bin/python bench/bench_torch_train.py [gpt2_step|llama_layer]`.
Models have random weights (nothing is downloaded).
"""

import json
import sys
import time

import torch
import torch.nn.functional as F

import trnsim.torch
from bench_torch import run_benches


def _phases(run) -> dict:
    st = run.step()
    return {"simulated_ms": st["simulated_ns"] / 1e6,
            "phases_ms": {k: v / 1e6 for k, v in st["phases_ns"].items()},
            "mfu_percent": st["mfu_percent"], "memory_bytes": st["memory"]}


def bench_gpt2_step():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).train()
    V = model.config.vocab_size
    ids = torch.randint(0, V, (1, 1024))
    opts = {"timing_only": True, "dtype": "bf16", "cache": False}

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, ids):
            logits = self.m(ids, use_cache=False).logits
            return F.cross_entropy(logits.view(-1, V), ids.view(-1))

    fast = torch.compile(WithLoss(), backend="trnsim", dynamic=False, options=opts)
    opt = trnsim.torch.compile_optimizer(torch.optim.AdamW(model.parameters(), lr=3e-4), **opts)
    out = {}
    for step in (1, 2):
        trnsim.torch.reset_stats()
        t0 = time.perf_counter()
        fast(ids).backward()
        opt.step()
        opt.zero_grad()
        host = time.perf_counter() - t0
        run = trnsim.torch.last_run()
        stats = trnsim.torch.stats()
        out[f"step{step}"] = {"host_s": host, "compile_s": stats["compile_seconds"],
                              "capture_s": stats["capture_seconds"],
                              "timing_runs_host_s": run.host_seconds, **_phases(run)}
    return out


def bench_llama_layer():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                      num_key_value_heads=8, num_hidden_layers=1)
    cfg._attn_implementation = "sdpa"
    S = 4096
    layer = LlamaDecoderLayer(cfg, 0).to(torch.bfloat16).train()
    rope = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, S, 4096, dtype=torch.bfloat16, requires_grad=True)
    cos, sin = rope(x, torch.arange(S)[None])

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, cos, sin):
            out = self.layer(x, position_embeddings=(cos, sin), attention_mask=None)
            return out[0] if isinstance(out, tuple) else out

    out = {}
    for chip in ("trn2", "trn1"):
        torch._dynamo.reset()
        fast = torch.compile(Wrap(), backend="trnsim", dynamic=False,
                             options={"timing_only": True, "chip": chip, "cache": False})
        t0 = time.perf_counter()
        y = fast(x, cos.detach(), sin.detach())
        y.backward(torch.zeros_like(y))
        host = time.perf_counter() - t0
        run = trnsim.torch.last_run()
        out[chip] = {"host_s": host, **_phases(run)}
        layer.zero_grad()
        print(chip, json.dumps(out[chip]), flush=True)
    return out


def main():
    run_benches(sys.argv[1:] or ["gpt2_step", "llama_layer"], globals(), "bench_torch_train.json")


if __name__ == "__main__":
    main()
