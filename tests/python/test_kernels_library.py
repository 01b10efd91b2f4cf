"""The C++ kernel library (trnsim.kernels) against numpy references.

Inputs are rounded to the kernel's dtype first (ml_dtypes.bfloat16), so the reference sees the
values the simulated chip sees; the reference then computes in float64. Tolerances follow the
dtype: bf16 results carry one rounding of 2^-9 relative (plus a few for intermediates), fp32
results are checked to ~1e-5. Shapes are small: every call runs the functional simulator.
"""

import ml_dtypes
import numpy as np
import pytest

from trnsim import kernels

RNG = np.random.default_rng(20261122)
BF16_TOL = 2e-2


def rand(shape, lo=-1.0, hi=1.0, dtype="bfloat16"):
    x = RNG.uniform(lo, hi, size=shape).astype(np.float32)
    if dtype == "bfloat16":
        x = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    return x


def tol(dtype):
    return BF16_TOL if dtype == "bfloat16" else 1e-5


@pytest.mark.parametrize("dtype,rows,hidden", [("float32", 200, 384), ("bfloat16", 128, 256)])
def test_rmsnorm(dtype, rows, hidden):
    x = rand((rows, hidden), -2, 2, dtype)
    w = rand((hidden,), 0.5, 1.5, dtype)
    out, info = kernels.rmsnorm(x, w, eps=1e-6, dtype=dtype, timing=False)
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt((x64**2).mean(axis=1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(out, ref, rtol=tol(dtype), atol=tol(dtype))
    assert info["instructions"] > 0


@pytest.mark.parametrize("dtype,rows,hidden", [("float32", 200, 600), ("bfloat16", 128, 256)])
def test_layernorm(dtype, rows, hidden):
    x = rand((rows, hidden), -1, 3, dtype)
    w = rand((hidden,), 0.5, 1.5, dtype)
    b = rand((hidden,), -0.5, 0.5, dtype)
    out, _ = kernels.layernorm(x, w, b, eps=1e-5, dtype=dtype, timing=False)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    var = x64.var(axis=1, keepdims=True)
    ref = (x64 - mean) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(out, ref, rtol=tol(dtype), atol=tol(dtype))


@pytest.mark.parametrize("dtype,shape", [("float32", (600, 200)), ("bfloat16", (256, 384))])
def test_transpose_is_exact(dtype, shape):
    x = rand(shape, dtype=dtype)
    out, _ = kernels.transpose(x, dtype=dtype, timing=False)
    np.testing.assert_array_equal(out, x.T)


@pytest.mark.parametrize("op,axis,shape", [("sum", 1, (300, 130)), ("max", 1, (128, 700)),
                                           ("sum", 0, (700, 300)), ("max", 0, (600, 100))])
def test_reduce(op, axis, shape):
    x = rand(shape, -3, 2, "float32")
    out, _ = kernels.reduce(x, op=op, axis=axis, dtype="float32", timing=False)
    ref = x.astype(np.float64).sum(axis=axis) if op == "sum" else x.max(axis=axis)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * shape[axis])


def rope_tables(seq, head_dim):
    inv = 10000.0 ** (-2.0 * np.arange(head_dim // 2) / head_dim)
    theta = np.arange(seq)[:, None] * inv[None, :]
    return np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)


@pytest.mark.parametrize("dtype,shape", [("float32", (3, 200, 64)), ("bfloat16", (2, 1100, 64))])
def test_rope(dtype, shape):
    x = rand(shape, -2, 2, dtype)
    cos, sin = rope_tables(shape[1], shape[2])
    out, _ = kernels.rope(x, cos, sin, dtype=dtype, timing=False)
    half = shape[2] // 2
    x1, x2 = x[..., :half].astype(np.float64), x[..., half:].astype(np.float64)
    ref = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    np.testing.assert_allclose(out, ref, rtol=tol(dtype), atol=tol(dtype))


def test_swiglu():
    T, H, F = 512, 512, 256
    x = rand((T, H))
    wg, wu, wd = rand((H, F), -0.1, 0.1), rand((H, F), -0.1, 0.1), rand((F, H), -0.1, 0.1)
    out, _ = kernels.swiglu(x, wg, wu, wd, timing=False)
    g, u = x.astype(np.float64) @ wg, x.astype(np.float64) @ wu
    ref = (g / (1 + np.exp(-g)) * u) @ wd
    # h is rounded to bf16 before the down projection.
    np.testing.assert_allclose(out, ref, rtol=1e-2, atol=4e-3)


def attention_ref(q, k, v, causal, scale=None):
    hq, S, D = q.shape
    group = hq // k.shape[0]
    scale = 1 / np.sqrt(D) if scale is None else scale
    out = np.empty(q.shape)
    for h in range(hq):
        s = q[h].astype(np.float64) @ k[h // group].T.astype(np.float64) * scale
        if causal:
            s = np.where(np.tril(np.ones((S, S), bool)), s, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        out[h] = p @ v[h // group] / p.sum(axis=1, keepdims=True)
    return out


def test_attention_causal_gqa():
    q, k, v = rand((2, 512, 128), -2, 2), rand((1, 512, 128), -2, 2), rand((1, 512, 128))
    out, _ = kernels.attention(q, k, v, causal=True, timing=False)
    np.testing.assert_allclose(out, attention_ref(q, k, v, True), atol=1.5e-2)


def test_attention_single_head_non_causal():
    q, k, v = rand((384, 64), -2, 2), rand((384, 64), -2, 2), rand((384, 64))
    out, _ = kernels.attention(q, k, v, causal=False, key_tile=128, scale=0.2, timing=False)
    ref = attention_ref(q[None], k[None], v[None], False, scale=0.2)[0]
    np.testing.assert_allclose(out, ref, atol=1.5e-2)


def test_attention_rejects_trn1():
    q = rand((256, 128))
    with pytest.raises(RuntimeError, match="DMA transpose"):
        kernels.attention(q, q, q, chip="trn1", timing=False)


# The kernel-library targets (timing-only runs on a simulated trn2 NeuronCore).
def test_attention_target():
    info = kernels.time_attention(2, 1, 4096, 128, causal=True)
    assert info["pe_utilization_useful"] >= 0.60


def test_rmsnorm_target():
    info = kernels.time_rmsnorm(8192, 8192)
    assert info["hbm_gbps"] >= 0.70 * info["hbm_share_gbps"]
    assert info["hbm_gbps"] <= info["dma_gbps"] * 1.001


def test_matmul_target():
    info = kernels.time_matmul(4096, 4096, 4096)
    assert info["pe_utilization"] >= 0.85


def attention_grads(q, k, v, dout, causal):
    hq, S, D = q.shape
    group = hq // k.shape[0]
    scale = 1 / np.sqrt(D)
    dq, dk, dv = np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
    lse = np.empty((hq, S))
    for h in range(hq):
        g = h // group
        s = q[h].astype(np.float64) @ k[g].T.astype(np.float64) * scale
        if causal:
            s = np.where(np.tril(np.ones((S, S), bool)), s, -np.inf)
        m = s.max(axis=1, keepdims=True)
        lse[h] = (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]
        p = np.exp(s - lse[h][:, None])
        do = dout[h].astype(np.float64)
        dv[g] += p.T @ do
        dp = do @ v[g].T.astype(np.float64)
        ds = p * (dp - (dp * p).sum(axis=1, keepdims=True))
        dq[h] = scale * ds @ k[g]
        dk[g] += scale * ds.T @ q[h]
    return lse, dq, dk, dv


def test_attention_backward_causal_gqa():
    q, k, v = rand((2, 256, 64), -2, 2), rand((1, 256, 64), -2, 2), rand((1, 256, 64))
    dout = rand((2, 256, 64))
    (out, lse), _ = kernels.attention_lse(q, k, v, causal=True, timing=False)
    lse_ref, dq_ref, dk_ref, dv_ref = attention_grads(q, k, v, dout, True)
    np.testing.assert_allclose(lse, lse_ref, atol=5e-3)
    np.testing.assert_allclose(out, attention_ref(q, k, v, True), atol=1.5e-2)
    (dq, dk, dv), _ = kernels.attention_backward(q, k, v, out, dout, lse, causal=True,
                                                  timing=False)
    for got, ref in ((dq, dq_ref), (dk, dk_ref), (dv, dv_ref)):
        # P and dS are bf16 on chip; the kernel also starts from the chip's bf16 out.
        np.testing.assert_allclose(got, ref, atol=2e-2 * np.abs(ref).max())


def test_the_public_module_is_the_library_and_its_example_runs():
    """trnsim.kernels binds every kernel of the library (one list: the binding's) and the
    module's docstring example runs as written."""
    import doctest

    from trnsim import _trnsim

    assert kernels.__all__ == sorted(n for n in dir(_trnsim.kernels) if not n.startswith("_"))
    assert {"matmul", "attention", "rmsnorm", "time_matmul"} <= set(kernels.__all__)
    assert all(getattr(kernels, n) is getattr(_trnsim.kernels, n) for n in kernels.__all__)
    result = doctest.testmod(kernels)
    assert result.attempted >= 3 and result.failed == 0
