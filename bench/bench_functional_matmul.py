"""Functional speed of the bf16 matmul kernel program, old build against new, side by side.

For 1024^3 and 2048^3 (`kernels.matmul(..., chip="trn2", in_dtype="bfloat16",
out_dtype="bfloat16", timing=False)`, the figure bench/run_bench.py reports), each build runs
in its own subprocess, the two alternating, REPEATS times; the medians of the simulator's
`host_seconds` are printed as GFLOP/s next to numpy's fp32 GEMM on one thread
(OPENBLAS_NUM_THREADS=1), measured in the same run.

    .venv/bin/python bench/bench_functional_matmul.py --old /path/to/old/stage --new /path/to/new/stage

A stage is a folder holding a `trnsim` package with its `_trnsim*.so` (docs/CONTRIBUTING.md);
without --new the installed package is measured, without --old only it (what `make bench`
runs). The new build runs with 1 and 2 threads, the old one with 1 (a build without the
`threads` keyword is called without it: those ran on one thread).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import hashlib, json, sys
import numpy as np
from trnsim._trnsim import kernels
n, threads = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
lhsT = rng.standard_normal((n, n), dtype=np.float32)
rhs = rng.standard_normal((n, n), dtype=np.float32)
args = dict(chip="trn2", in_dtype="bfloat16", out_dtype="bfloat16", timing=False)
try:
    out, info = kernels.matmul(lhsT, rhs, threads=threads, **args)
except TypeError:
    # A build before the `threads` keyword: it runs on one thread, so only 1 is measurable.
    if threads != 1:
        print(json.dumps(None)); sys.exit(0)
    out, info = kernels.matmul(lhsT, rhs, **args)
print(json.dumps([info["host_seconds"], hashlib.sha256(out.tobytes()).hexdigest()]))
"""


def child_seconds(stage, n, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if stage:
        env["PYTHONPATH"] = stage
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(threads)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # [seconds, sha256 of the output] or None


def numpy_seconds(n, repeats):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    code = ("import time, statistics, numpy as np, json, sys\n"
            "n, r = int(sys.argv[1]), int(sys.argv[2])\n"
            "a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)\n"
            "b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)\n"
            "a @ b\nt = []\n"
            "for _ in range(r):\n    s = time.perf_counter(); a @ b; t.append(time.perf_counter() - s)\n"
            "print(json.dumps(statistics.median(t)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(n), str(repeats)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", help="stage folder of the old build (default: none)")
    ap.add_argument("--new", help="stage folder of the new build (default: the installed one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        flops = 2.0 * n ** 3
        runs = {("old", 1): [], ("new", 1): [], ("new", 2): []}
        if not args.old:
            del runs[("old", 1)]
        digests = set()  # of every run's output: one value when all builds agree bit for bit
        for _ in range(args.repeats):
            for (which, threads), times in runs.items():
                stage = args.old if which == "old" else args.new
                r = child_seconds(stage, n, threads)
                if r is not None:
                    times.append(r[0])
                    digests.add(r[1])
        np_s = numpy_seconds(n, args.repeats)
        row = {"n": n, "numpy_fp32_gflops": flops / np_s / 1e9,
               "same_output_bits": len(digests) == 1}
        for (which, threads), times in runs.items():
            if times:
                med = statistics.median(times)
                row[f"{which}_{threads}t_seconds"] = med
                row[f"{which}_{threads}t_gflops"] = flops / med / 1e9
                row[f"{which}_{threads}t_vs_numpy"] = np_s / med
        rows.append(row)
        print(json.dumps(row), flush=True)
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "functional_matmul.json"), "w") as f:
        json.dump({"cpus": os.cpu_count(), "repeats": args.repeats, "old": args.old,
                   "new": args.new, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
