"""Data-parallel gradient step across 4 simulated chips with nki.collectives: every rank
computes the weight gradient of its own batch shard, x_r^T @ dy_r, then an all-reduce sums the
ranks' gradients so every rank holds the full-batch gradient, and an all-gather collects each
rank's activations row block. Runs unmodified with:
trnsim nki run examples/nki/collectives_allreduce.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.collectives as ncc
import neuronxcc.nki.language as nl

RANKS = 4


def grad_allreduce_kernel(x, dy):
    b, fin = x.shape         # this rank's shard: x [128, 64], dy [128, 96]
    fout = dy.shape[1]
    grad = nl.ndarray((fin, fout), dtype=nl.float32, buffer=nl.shared_hbm)
    total = nl.ndarray((fin, fout), dtype=nl.float32, buffer=nl.shared_hbm)
    gathered = nl.ndarray((RANKS * b, fout), dtype=nl.float32, buffer=nl.shared_hbm)
    g = nl.matmul(nl.load(x), nl.load(dy), transpose_x=True)   # x^T dy: [fin, fout]
    nl.store(grad, value=nl.copy(g))
    ncc.all_reduce([grad], [total], ncc.ReplicaGroup(), op=nl.add)
    ncc.all_gather([dy], [gathered], ncc.ReplicaGroup(), collective_dim=0)
    return total, gathered


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((128, 64)).astype(np.float32) for _ in range(RANKS)]
    dys = [rng.standard_normal((128, 96)).astype(np.float32) for _ in range(RANKS)]
    outs = nki.simulate_kernel(grad_allreduce_kernel, xs, dys, num_ranks=RANKS)
    grads = [x.T @ dy for x, dy in zip(xs, dys)]
    want = grads[0]
    for g in grads[1:]:   # fp32 accumulation in rank order, as the cluster runtime does
        want = want + g
    for r, (total, gathered) in enumerate(outs):
        assert np.allclose(total, want, rtol=1e-5, atol=1e-4), (r, np.abs(total - want).max())
        assert np.array_equal(gathered, np.concatenate(dys)), r
    print(f"collectives_allreduce: matches numpy on {RANKS} ranks, grad {want.shape}, "
          f"{nki.last_run().simulated_ns / 1000:.2f} us simulated")
