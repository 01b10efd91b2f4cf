"""Mixtral (tiny, random weights, 4 experts with top-2 routing, GQA) on the simulated chip
with torch.compile(backend="trnsim").

The experts run with transformers' "batched_mm" implementation: every token gathers the
weights of its experts and runs batched matmuls, which has static shapes. The default
"grouped_mm" implementation calls a custom op (transformers::grouped_mm_fallback) that
trnsim's op table does not have; with it, pass options={"fallback": "cpu"}.

    python examples/torch/mixtral_forward.py [--dtype bf16] [--trace mixtral.json]
"""
import transformers

from _common import parse_args, run

if __name__ == "__main__":
    args = parse_args(__doc__)
    config = transformers.MixtralConfig(num_hidden_layers=2, hidden_size=128,
                                        intermediate_size=256, num_attention_heads=8,
                                        num_key_value_heads=2, vocab_size=512,
                                        max_position_embeddings=128, num_local_experts=4,
                                        num_experts_per_tok=2, bos_token_id=0, eos_token_id=0)
    run("mixtral", config, args, experts_implementation="batched_mm")
