"""Tiled matmul in the current NKI style (import nki, nl.ndarray(..., buffer=...),
nisa.dma_copy / nisa.nc_matmul(dst, stationary, moving) / nisa.tensor_copy), accumulating
over K in PSUM. Runs unmodified with: python -m trnsim.nki.compat examples/nki/matmul.py
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def matmul_kernel(lhsT, rhs):
    """result[M, N] = lhsT[K, M].T @ rhs[K, N]; K, M multiples of 128, N of 512."""
    K, M = lhsT.shape
    K_, N = rhs.shape
    assert K == K_
    result = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    TK, TM, TN = nl.tile_size.pmax, nl.tile_size.gemm_stationary_fmax, nl.tile_size.gemm_moving_fmax
    for m in nl.affine_range(M // TM):
        for n in nl.affine_range(N // TN):
            res_psum = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.psum)
            for k in nl.sequential_range(K // TK):
                lhsT_tile = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                rhs_tile = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=lhsT_tile, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=rhs_tile, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=res_psum, stationary=lhsT_tile, moving=rhs_tile,
                               accumulate=k > 0)
            res_sb = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res_sb, src=res_psum)
            nisa.dma_copy(dst=result[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res_sb)
    return result


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    lhsT = rng.standard_normal((256, 128)).astype(np.float32)
    rhs = rng.standard_normal((256, 1024)).astype(np.float32)
    out = matmul_kernel(lhsT, rhs)
    ref = lhsT.T @ rhs
    assert np.allclose(out, ref, rtol=1e-3, atol=1e-3), np.abs(out - ref).max()
    print("matmul: matches numpy", out.shape)
