"""GPT-2 (tiny, random weights) on the simulated chip with torch.compile(backend="trnsim").

    python examples/torch/gpt2_forward.py [--dtype bf16] [--trace gpt2.json]
"""
import transformers

from _common import parse_args, run

if __name__ == "__main__":
    args = parse_args(__doc__)
    config = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, n_positions=128,
                                     vocab_size=512, bos_token_id=0, eos_token_id=0)
    run("gpt2", config, args)
