"""trnsim.nki kernels in both API styles against numpy references."""
import os
import subprocess
import sys

import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RNG = np.random.default_rng(1234)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@nki.jit
def add_old(a, b):
    out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    i_p, i_f = nl.mgrid[0:128, 0:512]
    for t in nl.affine_range(a.shape[0] // 128):
        x = nl.load(a[t * 128 + i_p, i_f])
        y = nl.load(b[t * 128 + i_p, i_f])
        nl.store(out[t * 128 + i_p, i_f], value=nl.add(x, y))
    return out


def test_tensor_add_old_style():
    a, b = rand(256, 512), rand(256, 512)
    np.testing.assert_array_equal(add_old(a, b), a + b)


@nki.jit
def add_new(a, b):
    out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    x = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.sbuf)
    y = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=a)
    nisa.dma_copy(dst=y, src=b)
    z = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.sbuf)
    nisa.tensor_tensor(dst=z, data1=x, data2=y, op=np.add)
    nisa.dma_copy(dst=out, src=z)
    return out


def test_tensor_add_new_style():
    a, b = rand(128, 512), rand(128, 512)
    np.testing.assert_array_equal(add_new(a, b), a + b)


def test_operators_and_scalars():
    @nki.jit
    def k(a, b):
        out = nl.ndarray(a.shape, dtype=nl.float32, buffer=nl.shared_hbm)
        x, y = nl.load(a), nl.load(b)
        nl.store(out, value=(x * 2.0 - y) / 4.0 + nl.maximum(x, y))
        return out
    a, b = rand(128, 64), rand(128, 64)
    np.testing.assert_allclose(k(a, b), (a * 2 - b) / 4 + np.maximum(a, b), rtol=1e-6, atol=1e-6)


def test_matmul_psum_accumulation_new_style():
    @nki.jit
    def mm(lhsT, rhs):
        K, M = lhsT.shape
        _, N = rhs.shape
        res = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
        acc = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
        for k in nl.sequential_range(K // 128):
            s = nl.ndarray((128, M), dtype=lhsT.dtype, buffer=nl.sbuf)
            m = nl.ndarray((128, N), dtype=rhs.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=s, src=lhsT[k * 128:(k + 1) * 128, :])
            nisa.dma_copy(dst=m, src=rhs[k * 128:(k + 1) * 128, :])
            nisa.nc_matmul(acc, s, m)  # accumulate=None: first overwrites, then accumulates
        sb = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=sb, src=acc)
        nisa.dma_copy(dst=res, src=sb)
        return res
    a, b = rand(384, 128), rand(384, 512)
    np.testing.assert_allclose(mm(a, b), a.T @ b, rtol=1e-4, atol=1e-3)


def test_matmul_old_style_bf16():
    @nki.jit
    def mm(a_t, b):
        out = nl.ndarray((a_t.shape[1], b.shape[1]), dtype=nl.float32, buffer=nl.shared_hbm)
        acc = nl.zeros((a_t.shape[1], b.shape[1]), dtype=nl.float32, buffer=nl.psum)
        for k in nl.affine_range(a_t.shape[0] // 128):
            x = nl.load(a_t[k * 128:(k + 1) * 128, :], dtype=nl.bfloat16)
            y = nl.load(b[k * 128:(k + 1) * 128, :], dtype=nl.bfloat16)
            acc += nl.matmul(x, y, transpose_x=True)
        nl.store(out, value=nl.copy(acc))
        return out
    import ml_dtypes
    a, b = rand(256, 64), rand(256, 256)
    ab = a.astype(ml_dtypes.bfloat16).astype(np.float32)
    bb = b.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_allclose(mm(a, b), ab.T @ bb, rtol=1e-4, atol=1e-3)


def test_matmul_no_transpose_x():
    @nki.jit
    def mm(a, b):
        out = nl.ndarray((a.shape[0], b.shape[1]), dtype=nl.float32, buffer=nl.shared_hbm)
        nl.store(out, value=nl.matmul(nl.load(a), nl.load(b)))
        return out
    a, b = rand(64, 128), rand(128, 256)
    np.testing.assert_allclose(mm(a, b), a @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("cols", [256, 300])
def test_softmax_and_builtin_softmax(cols):
    @nki.jit
    def sm(x):
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        out2 = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        e = nl.exp(t - nl.max(t, axis=1, keepdims=True))
        nl.store(out, value=e / nl.sum(e, axis=1, keepdims=True))
        nl.store(out2, value=nl.softmax(t, axis=1))
        return out, out2
    x = rand(128, cols)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    y1, y2 = sm(x)
    np.testing.assert_allclose(y1, ref, atol=1e-6)
    np.testing.assert_allclose(y2, ref, atol=1e-6)


def test_transpose_and_reductions():
    @nki.jit
    def k(x):
        t_out = nl.ndarray((x.shape[1], x.shape[0]), dtype=x.dtype, buffer=nl.shared_hbm)
        s_out = nl.ndarray((x.shape[0], 1), dtype=nl.float32, buffer=nl.shared_hbm)
        m_out = nl.ndarray((1, x.shape[1]), dtype=nl.float32, buffer=nl.shared_hbm)
        t = nl.load(x)
        nl.store(t_out, value=nl.copy(nl.transpose(t)))
        nl.store(s_out, value=nl.mean(t, axis=1, keepdims=True))
        nl.store(m_out, value=nl.max(t, axis=0))
        return t_out, s_out, m_out
    x = rand(128, 96)
    t, s, m = k(x)
    np.testing.assert_array_equal(t, x.T)
    np.testing.assert_allclose(s[:, 0], x.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m[0], x.max(0))


def test_activations_and_where():
    @nki.jit
    def k(x):
        outs = [nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm) for _ in range(4)]
        t = nl.load(x)
        nl.store(outs[0], value=nl.tanh(t))
        nl.store(outs[1], value=nl.sigmoid(t))
        nl.store(outs[2], value=nl.relu(t))
        nl.store(outs[3], value=nl.where(t > 0.0, t, 0.5))
        return tuple(outs)
    x = rand(128, 128)
    a, b, c, d = k(x)
    np.testing.assert_allclose(a, np.tanh(x), atol=1e-5)
    np.testing.assert_allclose(b, 1 / (1 + np.exp(-x)), atol=1e-5)
    np.testing.assert_array_equal(c, np.maximum(x, 0))
    np.testing.assert_array_equal(d, np.where(x > 0, x, 0.5))


@nki.jit
def spmd_scale(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    i = nl.program_id(0)
    assert nl.num_programs(0) == x.shape[0] // 128
    t = nl.load(x[i * 128:(i + 1) * 128, :])
    nl.store(out[i * 128:(i + 1) * 128, :], value=t * float(i + 1))
    return out


@pytest.mark.parametrize("programs", [2, 4, 12])  # 2, 4: one per core; 12: sequential
def test_spmd_grid(programs):
    x = rand(128 * programs, 64)
    y = spmd_scale[programs](x)
    ref = x * np.repeat(np.arange(1, programs + 1, dtype=np.float32), 128)[:, None]
    np.testing.assert_array_equal(y, ref)


def test_2d_grid_and_simulate_entry_points():
    sys.path.insert(0, os.path.join(ROOT, "examples", "nki"))
    nki.install_import_aliases()
    import tensor_add  # noqa: E402 (an example written against neuronxcc.nki)
    a, b = rand(256, 1024), rand(256, 1024)
    np.testing.assert_array_equal(nki.simulate_kernel(tensor_add.tensor_add_kernel[2, 2], a, b), a + b)
    np.testing.assert_array_equal(nki.simulate(tensor_add.tensor_add_kernel[2, 2])(a, b), a + b)


def test_old_style_isa_returns_tiles():
    @nki.jit
    def k(x, y):
        out = nl.ndarray((64, 128), dtype=nl.float32, buffer=nl.shared_hbm)
        a = nl.load(x)
        b = nl.load(y)
        p = nisa.nc_matmul(a, b)  # [K=128, M=64] x [128, 128]
        s = nisa.tensor_copy(p)
        s2 = nisa.tensor_scalar(s, np.multiply, 2.0, op1=np.add, operand1=1.0)
        e = nisa.activation(op=nl.exp, data=s2, scale=0.0)
        nl.store(out, value=nisa.tensor_tensor(s2, e, op=nl.subtract))
        return out
    x, y = rand(128, 64), rand(128, 128)
    np.testing.assert_allclose(k(x, y), (x.T @ y) * 2 + 1 - 1, rtol=1e-4, atol=1e-3)


def test_benchmark_and_trace(tmp_path):
    trace = tmp_path / "t.json"
    report = tmp_path / "r.json"
    bench = nki.benchmark(warmup=2, iters=3, save_trace_name=str(trace))(add_old)
    a, b = rand(256, 512), rand(256, 512)
    bench(a, b)
    p50 = bench.benchmark_result.nc_latency.get_latency_percentile(50)
    assert p50 > 0 and p50 == bench.benchmark_result.nc_latency.get_latency_percentile(99)
    assert trace.exists() and trace.read_text().lstrip().startswith(("{", "["))
    add_old(a, b, report=str(report))
    import json
    summary = json.loads(report.read_text())
    assert summary["simulated"]["us"] == pytest.approx(p50, rel=1e-6)


def test_target_override(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn1")
    a, b = rand(128, 512), rand(128, 512)
    np.testing.assert_array_equal(add_new(a, b), a + b)
    assert nki.last_run().chip == "trn1"


def test_torch_inputs():
    torch = pytest.importorskip("torch")
    a, b = torch.randn(128, 512), torch.randn(128, 512)
    np.testing.assert_array_equal(add_new(a, b), (a + b).numpy())


@pytest.mark.parametrize("example", ["tensor_add.py", "matmul.py", "softmax.py", "transpose.py",
                                     "layernorm.py", "avgpool.py", "mamba_scan.py",
                                     "attention_fwd.py", "attention_bwd.py",
                                     "collectives_allreduce.py"])
def test_compat_runs_unmodified_examples(example):
    r = subprocess.run([sys.executable, "-m", "trnsim.nki.compat",
                        os.path.join(ROOT, "examples", "nki", example)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "matches numpy" in r.stdout


def test_long_traced_loop():
    """20,000 traced instructions give the right values (their speed is in bench/bench_nki.py)."""
    @nki.jit
    def many(x):
        out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
        t = nl.load(x)
        for _ in range(20000):
            t = t + 1.0
        nl.store(out, value=t)
        return out
    y = many(np.zeros((128, 4), np.float32))
    assert np.all(y == 20000)
    assert nki.last_run().instructions >= 20000
