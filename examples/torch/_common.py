"""Shared by the examples/torch scripts: build a tiny random-weight model from a transformers
config, compile it for trnsim, compare its logits with PyTorch on the CPU, print the summary."""

import argparse
import time

import torch

import trnsim.torch  # noqa: F401  (registers the "trnsim" backend)


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: options={'dtype': 'bf16'} (the graph's f32 computed in bf16)")
    p.add_argument("--chip", default="trn2", help="chip config (configs/chips/<chip>.json)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--trace", help="write a Perfetto trace of the forward here")
    p.add_argument("--timing-only", action="store_true", help="simulate time only")
    p.add_argument("--no-fallback", action="store_true",
                   help="raise on ops trnsim lacks instead of running them on the host")
    return p.parse_args()


def run(name, config, args, **model_kwargs):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, **model_kwargs).eval()
    ids = torch.randint(1, config.vocab_size, (args.batch, args.seq))
    options = {"chip": args.chip, "timing_only": args.timing_only,
               "fallback": None if args.no_fallback else "cpu"}
    if args.dtype == "bf16":
        options["dtype"] = "bf16"
    compiled = torch.compile(model, backend="trnsim", dynamic=False, options=options)

    with torch.no_grad():
        t0 = time.perf_counter()
        got = compiled(ids, use_cache=False).logits
        first = time.perf_counter() - t0
        want = model(ids, use_cache=False).logits
    run_info = trnsim.torch.last_run()
    print(run_info.summary_text())
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"input {tuple(ids.shape)}, first call {first:.1f} s (capture + compile + simulate)")
    print(f"simulated forward: {run_info.simulated_ns / 1e3:.1f} us on {args.chip}, "
          f"{run_info.instructions} instructions, simulator {run_info.host_seconds:.2f} s")
    if args.trace:
        run_info.write_trace(args.trace)
        print(f"trace: {args.trace} (open in https://ui.perfetto.dev)")
    if args.timing_only:
        return
    err = (got.float() - want).abs().max().item()
    scale = want.abs().max().item()
    top1 = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    print(f"logits vs PyTorch CPU: max |err| {err:.3g} ({err / scale:.2g} of max |logit|), "
          f"top-1 agreement {top1:.3f}")
    limit = 1e-3 if args.dtype == "fp32" else 5e-2
    if err > limit * scale:
        raise SystemExit(f"{name}: error {err:.3g} above {limit} x max |logit|")
