"""RMSNorm in the current NKI style, one nki.isa instruction per step.

out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:]

This is the NKI twin of the C++ kernel-library rmsnorm (src/trnsim/kernels/norm.cpp,
emitRmsNorm) and emits the same instruction sequence, so both give the same bits and the same
simulated time (tests/python/test_nki_vs_cpp.py checks it):

    dma_copy   weight [hidden] -> every partition of an SBUF tile (partition stride 0), once
    per 128-row tile, rotating over 3 sets of tiles (2 when 3 do not fit in SBUF):
    dma_copy             x tile HBM -> SBUF
    activation           squares = square(x / sqrt(H)), meansq = sum(squares)  (Scalar Engine)
    tensor_scalar        rstd = (meansq + eps) ^ -0.5                          (Vector Engine)
    scalar_tensor_tensor o = (x * rstd) * weight                               (Vector Engine)
    dma_copy             o tile SBUF -> HBM

The tiles are allocated in the C++ kernel's order and shapes (weight, squares scratch, then
x/out/meansq/rstd per buffer), so the builder's first-fit allocator places them at the same
SBUF addresses; DMA queues are left to the builder's round-robin on both sides.

Runs unmodified with: python -m trnsim.nki.compat examples/nki/rmsnorm_isa.py
"""
import math

import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def rmsnorm_kernel(x, weight, eps=1e-6):
    rows, hidden = x.shape
    out = nl.ndarray((rows, hidden), dtype=x.dtype, buffer=nl.shared_hbm, name="out")
    P = nl.tile_size.pmax
    row_bytes = hidden * np.dtype(x.dtype).itemsize
    out_bytes = hidden * np.dtype(out.dtype).itemsize
    free = nl.tile_size.total_available_sbuf_size  # per partition; nothing allocated yet
    # Three buffers where they fit (the load of tile i+2 then overlaps the compute of tile i).
    bufs = 3 if 3 * (row_bytes + out_bytes) + 2 * row_bytes + 1024 <= free else 2

    # weight[hidden] read into all P partitions with one DMA: partition stride 0 in HBM.
    w = nl.ndarray((P, hidden), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=w, src=weight.ap(pattern=[[0, P], [1, hidden]]))
    # The squares are only needed for their sum: one scratch tile serves every row tile.
    sq = nl.ndarray((P, hidden), dtype=x.dtype, buffer=nl.sbuf)
    xt, ot, ms, rstd = [], [], [], []
    for _ in range(bufs):
        xt.append(nl.ndarray((P, hidden), dtype=x.dtype, buffer=nl.sbuf))
        ot.append(nl.ndarray((P, hidden), dtype=out.dtype, buffer=nl.sbuf))
        ms.append(nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf))
        rstd.append(nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf))

    inv_sqrt_h = 1.0 / math.sqrt(hidden)  # sum((x / sqrt(H))^2) = mean(x^2)
    for tile in nl.sequential_range((rows + P - 1) // P):
        r0 = tile * P
        p = min(P, rows - r0)
        i = tile % bufs
        nisa.dma_copy(dst=xt[i][0:p, :], src=x[r0:r0 + p, :])
        nisa.activation(dst=sq[0:p, :], op=nl.square, data=xt[i][0:p, :], scale=inv_sqrt_h,
                        reduce_op=nl.add, reduce_res=ms[i][0:p, :])
        nisa.tensor_scalar(dst=rstd[i][0:p, :], data=ms[i][0:p, :], op0=nl.add, operand0=eps,
                           op1=nl.power, operand1=-0.5)
        nisa.scalar_tensor_tensor(dst=ot[i][0:p, :], data=xt[i][0:p, :], op0=nl.multiply,
                                  operand0=rstd[i][0:p, :], op1=nl.multiply,
                                  operand1=w[0:p, :])
        nisa.dma_copy(dst=out[r0:r0 + p, :], src=ot[i][0:p, :])
    return out


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 1024)).astype(np.float32)
    weight = rng.standard_normal(1024).astype(np.float32)
    y = rmsnorm_kernel(x, weight)
    ref = x / np.sqrt((x * x).mean(1, keepdims=True) + 1e-6) * weight
    assert np.allclose(y, ref, rtol=1e-4, atol=1e-4), np.abs(y - ref).max()
    run = nki.last_run()
    print(f"rmsnorm_isa: matches numpy {y.shape}, {run.instructions} instructions, "
          f"{run.simulated_ns} simulated ns")
