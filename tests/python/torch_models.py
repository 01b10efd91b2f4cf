"""Tiny random-weight transformers models for the trnsim.torch tests (no download).

Sizes are deliberately not multiples of 128 where the architecture allows it (hidden 72,
intermediate 104, sequence 11, vocabulary 131), so tiling edge cases are exercised.
"""

from __future__ import annotations

import torch

VOCAB = 131
MODELS = ("gpt2", "llama", "mistral", "qwen2", "mixtral")


def config(name: str):
    import transformers as tf

    common = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    decoder = dict(num_hidden_layers=2, hidden_size=72, intermediate_size=104,
                   num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                   **common)
    if name == "gpt2":
        return tf.GPT2Config(n_layer=2, n_embd=72, n_head=6, n_positions=64, **common)
    if name == "llama":
        return tf.LlamaConfig(**decoder)
    if name == "mistral":
        return tf.MistralConfig(sliding_window=8, **decoder)
    if name == "qwen2":
        return tf.Qwen2Config(**decoder)
    if name == "mixtral":
        return tf.MixtralConfig(num_local_experts=4, num_experts_per_tok=2, **decoder)
    raise ValueError(f"unknown model {name!r}; known: {MODELS}")


def build(name: str, seed: int = 0, dtype=torch.float32, **kwargs):
    """The model in eval mode with random weights (seeded); Mixtral uses the batched_mm experts
    implementation (static shapes; the default grouped_mm one calls a custom op). `kwargs` go to
    from_config (attn_implementation="eager")."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    if name == "mixtral":
        kwargs.setdefault("experts_implementation", "batched_mm")
    model = AutoModelForCausalLM.from_config(config(name), **kwargs)
    return model.to(dtype).eval()


def input_ids(batch: int = 2, seq: int = 11, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, seq), generator=g)


def logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, use_cache=False).logits
