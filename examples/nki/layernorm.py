"""Layer normalization over the last axis, older NKI style (neuronxcc.nki): rows on the 128
partitions, the last tile of rows partial and masked, gamma/beta rows repeated on all
partitions with broadcast_to. Runs unmodified with: trnsim nki run examples/nki/layernorm.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def layernorm_kernel(x, gamma, beta, eps=1e-5):
    n, d = x.shape
    out = nl.ndarray((n, d), dtype=x.dtype, buffer=nl.shared_hbm)
    g = nl.load(gamma.broadcast_to((nl.tile_size.pmax, d)))
    b = nl.load(beta.broadcast_to((nl.tile_size.pmax, d)))
    i_p = nl.arange(nl.tile_size.pmax)[:, None]
    i_f = nl.arange(d)[None, :]
    for t in nl.affine_range((n + nl.tile_size.pmax - 1) // nl.tile_size.pmax):
        rows = t * nl.tile_size.pmax + i_p
        m = rows < n
        xt = nl.load(x[rows, i_f], mask=m)
        mean = nl.mean(xt, axis=1, keepdims=True, mask=m)
        xc = nl.subtract(xt, mean, mask=m)
        var = nl.mean(nl.square(xc, mask=m), axis=1, keepdims=True, mask=m)
        rstd = nl.rsqrt(nl.add(var, eps, mask=m), mask=m)
        y = nl.add(nl.multiply(nl.multiply(xc, rstd, mask=m), g, mask=m), b, mask=m)
        nl.store(out[rows, i_f], value=y, mask=m)
    return out


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 256)).astype(np.float32)
    gamma = rng.standard_normal((1, 256)).astype(np.float32)
    beta = rng.standard_normal((1, 256)).astype(np.float32)
    y = layernorm_kernel(x, gamma, beta)
    mu = x.mean(1, keepdims=True)
    ref = (x - mu) / np.sqrt(((x - mu) ** 2).mean(1, keepdims=True) + 1e-5) * gamma + beta
    assert np.allclose(y, ref, rtol=1e-4, atol=1e-4), np.abs(y - ref).max()
    print(f"layernorm: matches numpy {y.shape}, {nki.last_run().simulated_ns / 1000:.2f} us "
          "simulated")
