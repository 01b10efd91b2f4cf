"""2-D average pooling, older NKI style (neuronxcc.nki): channels on partitions, the pooling
windows addressed by a 5-axis index grid (nl.arange ... [None, :, None, None, None]) and
summed over two free axes at once. Runs unmodified with: trnsim nki run examples/nki/avgpool.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def avgpool_kernel(in_tensor, pool_size):
    c, h, w = in_tensor.shape
    ho, wo = h // pool_size, w // pool_size
    out = nl.ndarray((c, ho, wo), dtype=in_tensor.dtype, buffer=nl.shared_hbm)
    i_0 = nl.arange(c)[:, None, None, None, None]
    i_1 = nl.arange(ho)[None, :, None, None, None]
    i_2 = nl.arange(pool_size)[None, None, :, None, None]
    i_3 = nl.arange(wo)[None, None, None, :, None]
    i_4 = nl.arange(pool_size)[None, None, None, None, :]
    tile = nl.load(in_tensor)
    pooled = nl.sum(tile[i_0, pool_size * i_1 + i_2, pool_size * i_3 + i_4], axis=[2, 4])
    nl.store(out, value=pooled / float(pool_size * pool_size))
    return out


if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((128, 16, 16)).astype(np.float32)
    y = avgpool_kernel(x, 2)
    ref = x.reshape(128, 8, 2, 8, 2).sum(axis=(2, 4)) / 4
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-6), np.abs(y - ref).max()
    print(f"avgpool: matches numpy {y.shape}, {nki.last_run().simulated_ns / 1000:.2f} us "
          "simulated")
