"""Qwen2 (tiny, random weights, q/k/v projections with bias, GQA) on the simulated chip with
torch.compile(backend="trnsim").

    python examples/torch/qwen2_forward.py [--dtype bf16] [--trace qwen2.json]
"""
import transformers

from _common import parse_args, run

if __name__ == "__main__":
    args = parse_args(__doc__)
    config = transformers.Qwen2Config(num_hidden_layers=2, hidden_size=128,
                                      intermediate_size=256, num_attention_heads=8,
                                      num_key_value_heads=2, vocab_size=512,
                                      max_position_embeddings=128, bos_token_id=0,
                                      eos_token_id=0)
    run("qwen2", config, args)
