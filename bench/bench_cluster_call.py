"""Per-call overhead of a small multi-chip run through trnsim.nki (issue 13): a 1 KiB fp32
all-reduce kernel (128 x 2) on 2 and 8 ranks, threads backend, one process. Prints the median
wall time of whole `nki.simulate_kernel(..., num_ranks=n)` calls (trace, cluster set-up, load,
inputs, run, outputs) over `--repeat` calls after one warm-up call.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_cluster_call.py [--repeat 15]

(OpenBLAS's idle threads spin after numpy calls and take the cores the ranks' threads need.)
"""
import argparse
import statistics
import time

import numpy as np

import trnsim.nki as nki
import trnsim.nki.collectives as ncc
import trnsim.nki.language as nl


def all_reduce(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup(None), op=nl.add)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    for n in (2, 8):
        xs = [np.full((128, 2), r, np.float32) for r in range(n)]
        outs = nki.simulate_kernel(all_reduce, xs, num_ranks=n)
        assert np.all(outs[0] == sum(range(n))), "wrong all-reduce result"
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            nki.simulate_kernel(all_reduce, xs, num_ranks=n)
            times.append(time.perf_counter() - t)
        ms = statistics.median(times) * 1e3
        print(f"{n} ranks: {ms:.2f} ms per call, {ms / n:.2f} ms per rank (median of {len(times)})")


if __name__ == "__main__":
    main()
