"""Single-head attention backward, flash style (the backward of attention_fwd.py), older NKI
style (neuronxcc.nki). The probabilities are never stored: each 128-key block recomputes
P_j = exp(q k_j^T / sqrt(d) - L) from the row log-sum-exp L, then

    dV_j = P_j^T dO            dP_j = dO v_j^T
    dS_j = P_j * (dP_j - D)    D = rowsum(dO * O)
    dQ  += dS_j k_j / sqrt(d)  dK_j = dS_j^T q / sqrt(d)

with dQ accumulating in PSUM over the key blocks. Runs unmodified with:
trnsim nki run examples/nki/attention_bwd.py
"""
import numpy as np

import neuronxcc.nki as nki
import neuronxcc.nki.language as nl


@nki.jit
def attention_bwd_kernel(q, q_t, k, k_t, v_t, o, do, do_t):
    sq, d = q.shape          # q, o, do [128, 64]; q_t, do_t [64, 128]
    sk = k.shape[0]          # k [512, 64]; k_t, v_t [64, 512]
    scale = 1.0 / float(np.sqrt(d))
    dq = nl.ndarray((sq, d), dtype=nl.float32, buffer=nl.shared_hbm)
    dk = nl.ndarray((sk, d), dtype=nl.float32, buffer=nl.shared_hbm)
    dv = nl.ndarray((sk, d), dtype=nl.float32, buffer=nl.shared_hbm)
    q_s, qt_s = nl.load(q), nl.load(q_t)
    do_s, dot_s = nl.load(do), nl.load(do_t)
    # row statistics of the forward: L = max + log(sum(exp(s - max)))
    s_all = nl.multiply(nl.matmul(qt_s, nl.load(k_t), transpose_x=True), scale)  # [sq, sk]
    lse = nl.logsumexp(s_all, axis=1)                                           # [sq, 1]
    neg_lse = nl.multiply(lse, -1.0)
    # D = rowsum(dO * O)
    dsum = nl.sum(nl.multiply(do_s, nl.load(o)), axis=1, keepdims=True)       # [sq, 1]
    dq_acc = nl.zeros((sq, d), dtype=nl.float32, buffer=nl.psum)
    for j in nl.affine_range(sk // 128):
        keys = slice(j * 128, (j + 1) * 128)
        kt_j = nl.load(k_t[:, keys])                                            # [d, 128]
        s_j = nl.multiply(nl.matmul(qt_s, kt_j, transpose_x=True), scale)      # [sq, 128]
        p_j = nl.exp(nl.add(s_j, neg_lse))                                      # P_j
        nl.store(dv[keys, :], value=nl.copy(nl.matmul(p_j, do_s, transpose_x=True)))
        dp_j = nl.matmul(dot_s, nl.load(v_t[:, keys]), transpose_x=True)        # [sq, 128]
        ds_j = nl.multiply(p_j, nl.subtract(dp_j, dsum))
        ds_t = nl.copy(nl.transpose(ds_j))                                      # [128, sq]
        dq_acc += nl.matmul(ds_t, nl.load(k[keys, :]), transpose_x=True)
        nl.store(dk[keys, :], value=nl.multiply(nl.matmul(ds_j, q_s, transpose_x=True), scale))
    nl.store(dq, value=nl.multiply(dq_acc, scale))
    return dq, dk, dv


def reference(q, k, v, do):
    d = q.shape[1]
    s = q @ k.T / np.sqrt(d)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    o = p @ v
    dv = p.T @ do
    dp = do @ v.T
    ds = p * (dp - (do * o).sum(1, keepdims=True))
    return o, ds @ k / np.sqrt(d), ds.T @ q / np.sqrt(d), dv


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    d, sq, sk = 64, 128, 512
    q, do = (rng.standard_normal((sq, d)).astype(np.float32) for _ in range(2))
    k, v = (rng.standard_normal((sk, d)).astype(np.float32) for _ in range(2))
    o, dq_ref, dk_ref, dv_ref = reference(q.astype(np.float64), k.astype(np.float64),
                                          v.astype(np.float64), do.astype(np.float64))
    t = np.ascontiguousarray
    dq, dk, dv = attention_bwd_kernel(q, t(q.T), k, t(k.T), t(v.T), o.astype(np.float32), do,
                                      t(do.T))
    for name, got, ref in (("dq", dq, dq_ref), ("dk", dk, dk_ref), ("dv", dv, dv_ref)):
        assert np.allclose(got, ref, rtol=1e-4, atol=1e-4), (name, np.abs(got - ref).max())
    print(f"attention_bwd: matches numpy dq {dq.shape} dk {dk.shape} dv {dv.shape}, "
          f"{nki.last_run().simulated_ns / 1000:.2f} us simulated")
