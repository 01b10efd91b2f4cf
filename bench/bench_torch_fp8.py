"""fp8 weights (options weights="fp8") against the model's bf16 weights: one Llama-3-8B decoder
layer (bf16, hidden 4096, 32/8 heads, SwiGLU 14336; the layer's seven linear weights, 218M
parameters, are what fp8 stores), timing-only, at a decode-like 16 tokens (weight traffic
dominates) and a 2048-token prefill (TensorE dominates), on trn2 and trn1. Per run: simulated
time, TensorE busy time, HBM bytes read, weight bytes in HBM. Written to
bench/results/bench_torch_fp8.json and summarized in bench/RESULTS.md.

Run with `.venv/bin/python bench/bench_torch_fp8.py [tokens ...]`.
"""

import os
import sys
import time

import torch

import trnsim.torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import run_benches  # noqa: E402


def layer_run(tokens: int, chip: str, weights):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                      num_key_value_heads=8, num_hidden_layers=1)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    layer = LlamaDecoderLayer(cfg, 0).to(torch.bfloat16).eval()
    rope = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, tokens, 4096, dtype=torch.bfloat16)
    cos, sin = rope(x, torch.arange(tokens)[None])

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, cos, sin):
            return self.layer(x, position_embeddings=(cos, sin), attention_mask=None)

    torch._dynamo.reset()
    opts = {"timing_only": True, "chip": chip, "weights": weights}
    fast = torch.compile(Wrap(), backend="trnsim", dynamic=False, options=opts)
    t0 = time.perf_counter()
    with torch.no_grad():
        fast(x, cos, sin)
    host = time.perf_counter() - t0
    st = trnsim.torch.last_run().step()
    return {"host_s": round(host, 2), "simulated_us": round(st["simulated_ns"] / 1e3, 1),
            "tensor_busy_us": round(st["engine_busy_percent"].get("tensor", 0)
                                    * st["simulated_ns"] / 1e5, 1),
            "dma_busy_percent": round(st["engine_busy_percent"].get("dma", 0), 1),
            "hbm_read_mb": round(st["hbm_read_bytes"] / 1e6, 1),
            "weights_mb": round(st["memory"]["weights"] / 1e6, 1),
            "mfu_percent": round(st["mfu_percent"], 1)}


def bench_layer(tokens_list=(16, 2048)):
    out = {}
    for tokens in tokens_list:
        for chip in ("trn2", "trn1"):
            for weights in (None, "fp8"):
                key = f"{tokens} tokens, {chip}, {weights or 'bf16'}"
                out[key] = layer_run(tokens, chip, weights)
                print(key, out[key], flush=True)
    return out


def main():
    tokens = tuple(int(t) for t in sys.argv[1:]) or (16, 2048)
    run_benches(["layer"], {"bench_layer": lambda: bench_layer(tokens)}, "bench_torch_fp8.json")


if __name__ == "__main__":
    main()
