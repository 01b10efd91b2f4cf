"""End-to-end benchmarks of the simulator, written to bench/results/run_bench.json.

1. Functional speed of large bf16 matmuls: the simulated chip computing real values, against a
   host bf16 GEMM (PyTorch CPU, torch==2.13.0) on the same shape, measured in the same run,
   medians of several repetitions, one host thread each. numpy's fp32 GEMM (OpenBLAS, one
   thread) is listed beside it for scale: on CPUs without bf16 instructions PyTorch's bf16
   GEMM is far slower than fp32.
2. Timing-only speed: simulated instructions and simulated PE cycles per host second for the
   4096x8192x8192 bf16 matmul program on one trn1 NeuronCore, and its PE utilization.

Run with `make bench` (which installs torch into .venv) or `.venv/bin/python bench/run_bench.py`.
"""

import os

# One host thread for every library, so the comparison is core against core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import platform
import statistics
import sys
import time

import numpy as np

from trnsim._trnsim import kernels

REPEATS = int(os.environ.get("TRNSIM_BENCH_REPEATS", "3"))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def host_bf16_gemm_seconds(m, k, n):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    a = torch.randn(m, k).to(torch.bfloat16)
    b = torch.randn(k, n).to(torch.bfloat16)
    torch.matmul(a, b)  # warm-up
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_fp32_gemm_seconds(m, k, n):
    a = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((k, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def trnsim_functional_seconds(m, k, n, threads=1):
    rng = np.random.default_rng(0)
    lhsT = rng.standard_normal((k, m), dtype=np.float32)
    rhs = rng.standard_normal((k, n), dtype=np.float32)
    times = []
    for _ in range(REPEATS):
        _, info = kernels.matmul(lhsT, rhs, chip="trn2", in_dtype="bfloat16",
                                 out_dtype="bfloat16", timing=False, threads=threads)
        times.append(info["host_seconds"])
    return statistics.median(times)


def main():
    os.makedirs(RESULTS, exist_ok=True)
    results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "python": sys.version.split()[0], "repeats": REPEATS, "functional": [], "timing": {}}
    print(f"{'shape':>16} {'trnsim s':>10} {'host bf16 s':>12} {'trnsim GF/s':>12} "
          f"{'host GF/s':>10} {'ratio':>7} {'np fp32 GF/s':>13}")
    for m, k, n in [(1024, 1024, 1024), (2048, 2048, 2048)]:
        flops = 2.0 * m * k * n
        sim_s = trnsim_functional_seconds(m, k, n)
        sim_all_s = trnsim_functional_seconds(m, k, n, threads=0)
        host_s = host_bf16_gemm_seconds(m, k, n)
        ratio = host_s / sim_s if host_s else None
        np_s = numpy_fp32_gemm_seconds(m, k, n)
        results["functional"].append({"m": m, "k": k, "n": n, "trnsim_seconds": sim_s,
                                      "host_bf16_seconds": host_s, "ratio_vs_host": ratio,
                                      "trnsim_all_cores_seconds": sim_all_s,
                                      "numpy_fp32_seconds": np_s,
                                      "ratio_vs_numpy_fp32": np_s / sim_s})
        host_txt = f"{host_s:12.3f}" if host_s else f"{'n/a':>12}"
        host_gf = f"{flops / host_s / 1e9:10.1f}" if host_s else f"{'n/a':>10}"
        ratio_txt = f"{ratio:7.2f}" if ratio else f"{'n/a':>7}"
        print(f"{m}x{k}x{n:>6} {sim_s:10.3f} {host_txt} {flops / sim_s / 1e9:12.1f} {host_gf} "
              f"{ratio_txt} {flops / np_s / 1e9:13.1f}   (trnsim on {os.cpu_count()} threads: "
              f"{flops / sim_all_s / 1e9:.1f} GF/s)")

    times, info = [], None
    for _ in range(REPEATS):
        info = kernels.time_matmul(4096, 8192, 8192, chip="trn1")
        times.append(info["host_seconds"])
    host_s = statistics.median(times)
    pe_clock_hz = 2.8e9  # trn1 PE clock, configs/chips/trn1.json
    timing = {"program": "matmul 4096x8192x8192 bf16, trn1, timing-only",
              "instructions": info["instructions"], "host_seconds": host_s,
              "instructions_per_host_second": info["instructions"] / host_s,
              "simulated_cycles_per_host_second": info["simulated_ns"] * 1e-9 * pe_clock_hz / host_s,
              "simulated_ms": info["simulated_ns"] * 1e-6,
              "pe_utilization": info.get("pe_utilization")}
    results["timing"] = timing
    print(f"\ntiming-only {timing['program']}: {timing['instructions']} instructions in "
          f"{host_s:.3f} s = {timing['instructions_per_host_second'] / 1e6:.2f} M instr/s, "
          f"{timing['simulated_cycles_per_host_second'] / 1e6:.1f} M simulated cycles/s; "
          f"simulated {timing['simulated_ms']:.2f} ms, PE utilization "
          f"{100 * (timing['pe_utilization'] or 0):.1f}%")
    with open(os.path.join(RESULTS, "run_bench.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
