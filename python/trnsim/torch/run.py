"""``trnsim torch run [--chip C] [--dtype bf16] [--timing-only] [--fallback cpu] SCRIPT [ARGS...]``
(also ``python -m trnsim.torch.run ...``): runs an unmodified PyTorch script with every
``torch.compile`` call that names no backend (or Inductor) compiled by trnsim instead, then
prints the summary of the last trnsim run. Calls that name another backend keep it.
"""

from __future__ import annotations

import argparse
import functools
import os
import runpy
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trnsim torch run",
        description="Run a PyTorch script with torch.compile going to the simulated chip.")
    p.add_argument("--chip", default="trn2", help="chip config (default trn2)")
    p.add_argument("--dtype", choices=["bf16"], default=None,
                   help="cast float parameters and inputs to this dtype on the device")
    p.add_argument("--timing-only", action="store_true",
                   help="simulate time only (outputs are zeros)")
    p.add_argument("--fallback", choices=["cpu"], default=None,
                   help="run ops trnsim cannot compile on the host")
    p.add_argument("--trace", default=None, help="write the last run's Perfetto trace here")
    p.add_argument("script", help="the Python script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return p


def _redirect_compile(options: dict) -> None:
    import torch

    original = torch.compile

    @functools.wraps(original)
    def compile(model=None, *args, **kwargs):  # noqa: A001 - mirrors torch.compile
        if kwargs.get("backend", "inductor") == "inductor":
            kwargs["backend"] = "trnsim"
            kwargs["options"] = {**options, **(kwargs.get("options") or {})}
            kwargs.pop("mode", None)  # Inductor's presets mean nothing to trnsim
        return original(model, *args, **kwargs)

    torch.compile = compile


def main(argv=None) -> int:
    ns = _parser().parse_args(argv)
    if not os.path.isfile(ns.script):
        print(f"trnsim: error: {ns.script}: no such file", file=sys.stderr)
        return 2
    import trnsim.torch as tt

    options = {"chip": ns.chip, "timing_only": ns.timing_only}
    if ns.dtype:
        options["dtype"] = ns.dtype
    if ns.fallback:
        options["fallback"] = ns.fallback
    _redirect_compile(options)
    sys.argv = [ns.script, *ns.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(ns.script)))
    try:
        runpy.run_path(ns.script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    run = tt.last_run()
    if run is None:
        print("trnsim: the script compiled nothing with torch.compile", file=sys.stderr)
        return 0
    print(run.summary_text(), file=sys.stderr)
    if ns.trace:
        run.write_trace(ns.trace)
        print(f"trnsim: trace written to {ns.trace}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
