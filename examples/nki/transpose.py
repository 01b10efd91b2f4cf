"""2-D transpose with the Tensor Engine in the current NKI style (nisa.nc_transpose).
Runs unmodified with: python -m trnsim.nki.compat examples/nki/transpose.py
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def transpose_kernel(x):
    P, F = x.shape  # both <= 128
    out = nl.ndarray((F, P), dtype=x.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray((P, F), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    tp = nl.ndarray((F, P), dtype=x.dtype, buffer=nl.psum)
    nisa.nc_transpose(dst=tp, data=t)
    ts = nl.ndarray((F, P), dtype=x.dtype, buffer=nl.sbuf)
    nisa.tensor_copy(dst=ts, src=tp)
    nisa.dma_copy(dst=out, src=ts)
    return out


if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((128, 96)).astype(np.float32)
    y = transpose_kernel(x)
    assert np.array_equal(y, x.T)
    print("transpose: matches numpy", y.shape)
