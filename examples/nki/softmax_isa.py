"""Row softmax in the current NKI style, one nki.isa instruction per step.

This is the NKI twin of the C++ kernel-library softmax (src/trnsim/kernels/softmax.cpp) and
emits the same instruction sequence, so both give the same bits and the same simulated time
(tests/python/test_nki_vs_cpp.py checks it). Per 128-row tile, alternating between two sets of
SBUF tiles allocated up front (double buffering):

    dma_copy      x tile HBM -> SBUF
    tensor_reduce negMax = -max(x)                    (Vector Engine)
    activation    e = exp(x + negMax), sum = sum(e)   (Scalar Engine, fused reduce)
    reciprocal    inv = 1 / sum                       (Vector Engine)
    tensor_scalar o = e * inv                         (Vector Engine)
    dma_copy      o tile SBUF -> HBM

The tiles are allocated in the C++ kernel's order and shapes, so the builder's first-fit
allocator places them at the same SBUF addresses; DMA queues are left to the builder's
round-robin on both sides.

Runs unmodified with: python -m trnsim.nki.compat examples/nki/softmax_isa.py
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def softmax_kernel(x):
    rows, cols = x.shape
    out = nl.ndarray((rows, cols), dtype=x.dtype, buffer=nl.shared_hbm, name="out")
    P = nl.tile_size.pmax
    # Two sets of tiles, allocated before the loop in the C++ kernel's order (x, exp, out,
    # negmax, sum, inv for set 0, then for set 1) and kept alive for the whole kernel.
    xt, et, ot, neg_max, tsum, inv = [], [], [], [], [], []
    for _ in range(2):
        xt.append(nl.ndarray((P, cols), dtype=x.dtype, buffer=nl.sbuf))
        et.append(nl.ndarray((P, cols), dtype=nl.float32, buffer=nl.sbuf))
        ot.append(nl.ndarray((P, cols), dtype=out.dtype, buffer=nl.sbuf))
        neg_max.append(nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf))
        tsum.append(nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf))
        inv.append(nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf))

    for tile in nl.sequential_range((rows + P - 1) // P):
        r0 = tile * P
        p = min(P, rows - r0)
        i = tile % 2
        nisa.dma_copy(dst=xt[i][0:p, :], src=x[r0:r0 + p, :])
        nisa.tensor_reduce(dst=neg_max[i][0:p, :], op=nl.maximum, data=xt[i][0:p, :], axis=1,
                           negate=True, keepdims=True)
        nisa.activation(dst=et[i][0:p, :], op=nl.exp, data=xt[i][0:p, :],
                        bias=neg_max[i][0:p, :], scale=1.0, reduce_op=nl.add,
                        reduce_res=tsum[i][0:p, :])
        nisa.reciprocal(dst=inv[i][0:p, :], data=tsum[i][0:p, :])
        nisa.tensor_scalar(dst=ot[i][0:p, :], data=et[i][0:p, :], op0=nl.multiply,
                           operand0=inv[i][0:p, :])
        nisa.dma_copy(dst=out[r0:r0 + p, :], src=ot[i][0:p, :])
    return out


if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
    y = softmax_kernel(x)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.allclose(y, ref, atol=1e-5), np.abs(y - ref).max()
    run = nki.last_run()
    print(f"softmax_isa: matches numpy {y.shape}, {run.instructions} instructions, "
          f"{run.simulated_ns} simulated ns")
