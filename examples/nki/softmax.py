"""Row softmax in the older NKI style: nl.load, nl.max/nl.exp/nl.sum, nl.store.
Runs unmodified with: python -m trnsim.nki.compat examples/nki/softmax.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def softmax_kernel(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    rows, cols = x.shape
    for r in nl.affine_range(rows // 128):
        t = nl.load(x[r * 128:(r + 1) * 128, :])
        m = nl.max(t, axis=1, keepdims=True)
        e = nl.exp(t - m)
        s = nl.sum(e, axis=1, keepdims=True)
        nl.store(out[r * 128:(r + 1) * 128, :], value=e * nl.reciprocal(s))
    return out


if __name__ == "__main__":
    x = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    y = softmax_kernel(x)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.allclose(y, ref, atol=1e-5), np.abs(y - ref).max()
    print("softmax: matches numpy", y.shape)
