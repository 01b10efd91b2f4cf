"""A Mamba-style selective scan (the recurrence of a state-space layer), current NKI style
(nki.isa): channels on partitions, time along the free axis. For each state n:

    dA = exp(delta * A[:, n]);  dBx = delta * B[n, :] * x;  h_t = dA_t * h_{t-1} + dBx_t
    y += C[n, :] * h

with the recurrence as one nisa.tensor_tensor_scan per state. Runs unmodified with:
trnsim nki run examples/nki/mamba_scan.py
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl


@nki.jit
def mamba_scan_kernel(delta, x, A, B, C):
    channels, steps = x.shape          # [128, T]
    states = A.shape[1]                # A [128, N]; B, C [N, T]
    y_out = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.shared_hbm)
    d = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
    xs = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
    a = nl.ndarray((channels, states), dtype=nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=d, src=delta)
    nisa.dma_copy(dst=xs, src=x)
    nisa.dma_copy(dst=a, src=A)
    dx = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=dx, data1=d, data2=xs, op=nl.multiply)
    y = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=y, value=0.0)
    for n in range(states):
        dA = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=dA, op=nl.exp, data=d, scale=a[:, n:n + 1])
        b_row = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=b_row, src=B[n:n + 1, :].broadcast_to((channels, steps)))
        dBx = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=dBx, data1=dx, data2=b_row, op=nl.multiply)
        h = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor_scan(dst=h, data0=dA, data1=dBx, initial=0.0, op0=nl.multiply,
                                op1=nl.add)
        c_row = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=c_row, src=C[n:n + 1, :].broadcast_to((channels, steps)))
        ch = nl.ndarray((channels, steps), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=ch, data1=c_row, data2=h, op=nl.multiply)
        nisa.tensor_tensor(dst=y, data1=y, data2=ch, op=nl.add)
    nisa.dma_copy(dst=y_out, src=y)
    return y_out


def reference(delta, x, A, B, C):
    channels, steps = x.shape
    y = np.zeros((channels, steps), np.float32)
    for n in range(A.shape[1]):
        dA = np.exp(delta * A[:, n:n + 1])
        dBx = delta * x * B[n][None, :]
        h = np.zeros(channels, np.float32)
        for t in range(steps):
            h = dA[:, t] * h + dBx[:, t]
            y[:, t] += C[n, t] * h
    return y


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    T, N = 256, 4
    delta = rng.uniform(0.01, 0.1, (128, T)).astype(np.float32)
    x = rng.standard_normal((128, T)).astype(np.float32)
    A = -rng.uniform(0.5, 2.0, (128, N)).astype(np.float32)
    B = rng.standard_normal((N, T)).astype(np.float32)
    C = rng.standard_normal((N, T)).astype(np.float32)
    y = mamba_scan_kernel(delta, x, A, B, C)
    ref = reference(delta, x, A, B, C)
    assert np.allclose(y, ref, rtol=1e-4, atol=1e-4), np.abs(y - ref).max()
    print(f"mamba_scan: matches numpy {y.shape}, {nki.last_run().simulated_ns / 1000:.2f} us "
          "simulated")
