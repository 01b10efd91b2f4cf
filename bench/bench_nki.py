"""NKI front-end speed, written to bench/results/bench_nki.json.

1. Tracing: a kernel of 20,000 elementwise tile operations; traced instructions per host
   second (issue 3 target: >= 50,000).
2. A functional 4096x4096x4096 bf16 matmul through the NKI example kernel
   (examples/nki/matmul.py, unmodified, imported through the compat aliases): total host
   seconds for tracing, simulating values and timing (issue 3 target: < 60 s on 2 cores).
"""
import json
import os
import sys
import time

import ml_dtypes
import numpy as np

from trnsim import nki
import trnsim.nki.language as nl

HERE = os.path.dirname(os.path.abspath(__file__))


def trace_rate():
    @nki.jit
    def many(x):
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        for _ in range(20000):
            t = t + 1.0
        nl.store(out, value=t)
        return out

    many(np.zeros((128, 4), np.float32))
    run = nki.last_run()
    return run.instructions, run.trace_seconds


def functional_matmul(n):
    nki.install_import_aliases()
    sys.path.insert(0, os.path.join(HERE, "..", "examples", "nki"))
    import matmul as example  # noqa: E402  (the unmodified example kernel)

    rng = np.random.default_rng(0)
    lhsT = rng.standard_normal((n, n)).astype(ml_dtypes.bfloat16)
    rhs = rng.standard_normal((n, n)).astype(ml_dtypes.bfloat16)
    t0 = time.perf_counter()
    out = example.matmul_kernel(lhsT, rhs)
    seconds = time.perf_counter() - t0
    # Spot-check rows against numpy in float64 (the full product would dominate the bench).
    ref = lhsT[:, :8].astype(np.float64).T @ rhs.astype(np.float64)
    err = float(np.max(np.abs(out[:8] - ref)) / np.max(np.abs(ref)))
    return seconds, nki.last_run().instructions, err


def main():
    instructions, seconds = trace_rate()
    print(f"tracing: {instructions} instructions in {seconds:.3f} s = "
          f"{instructions / seconds:,.0f} traced instructions per host second")
    mm_seconds, mm_instr, err = functional_matmul(4096)
    print(f"functional 4096^3 bf16 matmul (examples/nki/matmul.py): {mm_seconds:.1f} s host, "
          f"{mm_instr} instructions, max relative error of checked rows {err:.1e}")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "bench_nki.json"), "w") as f:
        json.dump({"trace_instructions": instructions, "trace_seconds": seconds,
                   "trace_instructions_per_second": instructions / seconds,
                   "matmul_4096_seconds": mm_seconds, "matmul_4096_instructions": mm_instr,
                   "matmul_4096_rel_error": err}, f, indent=2)


if __name__ == "__main__":
    main()
