"""Single-head attention forward, softmax(q k^T / sqrt(d)) v, older NKI style
(neuronxcc.nki): q and k come transposed ([d, seq], head dim on partitions) so nl.matmul with
transpose_x=True needs no extra transpose; the probabilities are transposed 128 keys at a time
for the second matmul, which accumulates in PSUM. Runs unmodified with:
trnsim nki run examples/nki/attention_fwd.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def attention_fwd_kernel(q_t, k_t, v):
    d, sq = q_t.shape        # [64, 128]
    sk = k_t.shape[1]        # k_t [64, 512], v [512, 64]
    out = nl.ndarray((sq, d), dtype=nl.float32, buffer=nl.shared_hbm)
    q = nl.load(q_t)
    k = nl.load(k_t)
    scores = nl.matmul(q, k, transpose_x=True)                  # [sq, sk] in PSUM
    s = nl.multiply(scores, 1.0 / float(np.sqrt(d)))            # to SBUF, scaled
    probs = nl.softmax(s, axis=1)
    acc = nl.zeros((sq, d), dtype=nl.float32, buffer=nl.psum)
    for j in nl.affine_range(sk // 128):
        p_t = nl.copy(nl.transpose(probs[:, j * 128:(j + 1) * 128]))  # [128 keys, sq]
        v_j = nl.load(v[j * 128:(j + 1) * 128, :])
        acc += nl.matmul(p_t, v_j, transpose_x=True)
    nl.store(out, value=nl.copy(acc))
    return out


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    d, sq, sk = 64, 128, 512
    q = rng.standard_normal((sq, d)).astype(np.float32)
    k = rng.standard_normal((sk, d)).astype(np.float32)
    v = rng.standard_normal((sk, d)).astype(np.float32)
    y = attention_fwd_kernel(np.ascontiguousarray(q.T), np.ascontiguousarray(k.T), v)
    s = q @ k.T / np.sqrt(d)
    p = np.exp(s - s.max(1, keepdims=True))
    ref = (p / p.sum(1, keepdims=True)) @ v
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-5), np.abs(y - ref).max()
    print(f"attention_fwd: matches numpy {y.shape}, {nki.last_run().simulated_ns / 1000:.2f} us "
          "simulated")
