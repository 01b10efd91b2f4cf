"""Functional execution of every opcode against numpy / ml_dtypes references on random inputs.

Each test builds a small kernel with trnsim's KernelBuilder (calls mirror nki.isa), loads it
on a simulated trn2 chip, writes numpy inputs, runs values only and compares the outputs with
a reference computed independently in numpy (float64 where precision matters). See
docs/sim.md "Functional execution" for the semantics and the choices made.
"""

import ml_dtypes
import numpy as np
import pytest

from trnsim._trnsim import sim

BF16 = ml_dtypes.bfloat16


def rng(seed=0):
    return np.random.default_rng(seed)


class Kernel:
    """Inputs go HBM -> SBUF tiles of the same name; outputs SBUF/PSUM -> HBM '<name>_out'."""

    def __init__(self):
        self.kb = sim.KernelBuilder("trn2", "test")
        self.inputs = {}
        self.outputs = []

    def input(self, name, dtype, array):
        array = np.asarray(array)
        h = self.kb.hbm(name + "_in", dtype, list(array.shape), kind="input")
        t = self.kb.sbuf(name, dtype, list(array.shape))
        self.kb.dma_copy(dst=t, src=h)
        self.inputs[name + "_in"] = array
        return t

    def hbm_input(self, name, dtype, array):
        array = np.asarray(array)
        self.inputs[name] = array
        return self.kb.hbm(name, dtype, list(array.shape), kind="input")

    def output(self, name, dtype, shape, psum=False):
        t = (self.kb.psum if psum else self.kb.sbuf)(name, dtype, list(shape))
        self.outputs.append((t, psum))
        return t

    def run(self, seed=0, **kw):
        for t, psum in self.outputs:
            src = t
            if psum:
                src = self.kb.sbuf(t.name + "_sb", t.dtype, t.shape)
                self.kb.tensor_copy(dst=src, src=t)
            h = self.kb.hbm(t.name + "_out", t.dtype, t.shape, kind="output")
            self.kb.dma_copy(dst=h, src=src)
        self.chip = sim.Chip("trn2")
        self.chip.load([self.kb.finish()])
        for name, arr in self.inputs.items():
            self.chip.write(name, arr)
        self.result = self.chip.run(seed=seed, **kw)
        return self

    def get(self, name):
        return self.chip.read(name + "_out")

    def bits(self, name):
        return self.chip.read_bits(name + "_out")


def bf16_round(x):
    return np.asarray(x, np.float32).astype(BF16).astype(np.float32)


# ---- matmul ----------------------------------------------------------------------------------


@pytest.mark.parametrize("k_tiles,m,n", [(1, 128, 512), (3, 64, 200)])
def test_matmul_bf16_accumulates_over_k_tiles_in_fp32(k_tiles, m, n):
    r = rng(1)
    a = bf16_round(r.standard_normal((k_tiles * 128, m)))
    b = bf16_round(r.standard_normal((k_tiles * 128, n)))
    k = Kernel()
    ha = k.hbm_input("a", "bfloat16", a)
    hb = k.hbm_input("b", "bfloat16", b)
    ps = k.output("c", "float32", (m, n), psum=True)
    for t in range(k_tiles):
        ta = k.kb.sbuf(f"ta{t}", "bfloat16", [128, m])
        tb = k.kb.sbuf(f"tb{t}", "bfloat16", [128, n])
        k.kb.dma_copy(dst=ta, src=ha[t * 128:(t + 1) * 128, :])
        k.kb.dma_copy(dst=tb, src=hb[t * 128:(t + 1) * 128, :])
        k.kb.nc_matmul(dst=ps, stationary=ta, moving=tb, accumulate=t > 0)
    k.run()
    got = k.get("c").astype(np.float64)
    ref = a.astype(np.float64).T @ b.astype(np.float64)
    bound = np.abs(a.astype(np.float64)).T @ np.abs(b.astype(np.float64))
    # fp32 accumulation of K products (exact in fp32) plus the PSUM adds.
    assert np.all(np.abs(got - ref) <= bound * (k_tiles * 128 + k_tiles) * 2.0**-24)


def test_matmul_bits_are_the_same_for_any_thread_count():
    # threads= splits nc_matmul's output columns over host threads; the bits may not move.
    r = rng(7)
    a = bf16_round(r.standard_normal((256, 96)))
    b = bf16_round(r.standard_normal((256, 500)))
    bits = []
    for threads in (1, 2, 3, 0):
        k = Kernel()
        ha = k.hbm_input("a", "bfloat16", a)
        hb = k.hbm_input("b", "bfloat16", b)
        ps = k.output("c", "float32", (96, 500), psum=True)
        for t in range(2):
            ta = k.kb.sbuf(f"ta{t}", "bfloat16", [128, 96])
            tb = k.kb.sbuf(f"tb{t}", "bfloat16", [128, 500])
            k.kb.dma_copy(dst=ta, src=ha[t * 128:(t + 1) * 128, :])
            k.kb.dma_copy(dst=tb, src=hb[t * 128:(t + 1) * 128, :])
            k.kb.nc_matmul(dst=ps, stationary=ta, moving=tb, accumulate=t > 0)
        k.run(threads=threads)
        bits.append(k.bits("c"))
    for other in bits[1:]:
        np.testing.assert_array_equal(other, bits[0])
    with pytest.raises(TypeError):
        Kernel().run(threads=-1)


def test_matmul_fp32_result_cast_to_bf16_on_copy_is_rne_exact():
    r = rng(2)
    a = bf16_round(r.standard_normal((128, 32)))
    b = bf16_round(r.standard_normal((128, 64)))
    k = Kernel()
    ta = k.input("a", "bfloat16", a)
    tb = k.input("b", "bfloat16", b)
    ps = k.kb.psum("ps", "float32", [32, 64])
    k.kb.nc_matmul(dst=ps, stationary=ta, moving=tb)
    f32 = k.output("f32", "float32", (32, 64))
    b16 = k.output("b16", "bfloat16", (32, 64))
    k.kb.tensor_copy(dst=f32, src=ps)
    k.kb.tensor_copy(dst=b16, src=ps)
    k.run()
    want = k.get("f32").astype(BF16).view(np.uint16)
    assert np.array_equal(k.bits("b16"), want)


# ---- casts -----------------------------------------------------------------------------------


def test_fp32_to_bf16_rne_bit_exact_against_ml_dtypes():
    r = rng(3)
    bits = r.integers(0, 2**32, size=(128, 512), dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = np.where(np.isnan(x), np.float32(1.0), x)  # NaN payloads are not compared here
    k = Kernel()
    t = k.input("x", "float32", x)
    o = k.output("o", "bfloat16", x.shape)
    k.kb.tensor_copy(dst=o, src=t)
    k.run()
    assert np.array_equal(k.bits("o"), x.astype(BF16).view(np.uint16))


@pytest.mark.parametrize("dtype,np_type", [("float16", np.float16),
                                           ("float8_e5m2", ml_dtypes.float8_e5m2)])
def test_dma_copy_casts(dtype, np_type):
    x = (rng(4).standard_normal((16, 64)) * 4).astype(np.float32)
    k = Kernel()
    t = k.input("x", "float32", x)
    h = k.kb.hbm("h", dtype, [16, 64], kind="output")
    k.kb.dma_copy(dst=h, src=t)
    k.run()
    np.testing.assert_array_equal(k.chip.read("h"), x.astype(np_type).astype(np.float32))


# ---- elementwise -----------------------------------------------------------------------------

ALU = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "max": np.maximum, "min": np.minimum,
    "is_equal": lambda a, b: (a == b).astype(np.float32),
    "is_gt": lambda a, b: (a > b).astype(np.float32),
    "is_le": lambda a, b: (a <= b).astype(np.float32),
    "abs_max": lambda a, b: np.maximum(np.abs(a), np.abs(b)),
    "mod": np.mod,
}


@pytest.mark.parametrize("op", sorted(ALU))
def test_tensor_tensor(op):
    r = rng(5)
    a = r.standard_normal((64, 100)).astype(np.float32)
    b = r.standard_normal((64, 100)).astype(np.float32)
    b[:, :5] = a[:, :5]
    k = Kernel()
    ta, tb = k.input("a", "float32", a), k.input("b", "float32", b)
    o = k.output("o", "float32", a.shape)
    k.kb.tensor_tensor(dst=o, data1=ta, data2=tb, op=op)
    k.run()
    np.testing.assert_array_equal(k.get("o"), ALU[op](a, b).astype(np.float32))


def test_tensor_tensor_bitwise_on_int32():
    r = rng(6)
    a = r.integers(-2**31, 2**31, size=(8, 32), dtype=np.int64).astype(np.int32)
    b = r.integers(-2**31, 2**31, size=(8, 32), dtype=np.int64).astype(np.int32)
    k = Kernel()
    ta, tb = k.input("a", "int32", a), k.input("b", "int32", b)
    outs = {op: k.output(op, "int32", a.shape) for op in ("bitwise_and", "bitwise_or", "bitwise_xor")}
    for op, o in outs.items():
        k.kb.tensor_tensor(dst=o, data1=ta, data2=tb, op=op)
    k.run()
    assert np.array_equal(k.get("bitwise_and"), a & b)
    assert np.array_equal(k.get("bitwise_or"), a | b)
    assert np.array_equal(k.get("bitwise_xor"), a ^ b)


def test_tensor_scalar_with_tile_operands_and_bf16_output():
    r = rng(7)
    x = r.standard_normal((128, 64)).astype(np.float32)
    s0 = r.standard_normal((128, 1)).astype(np.float32)
    k = Kernel()
    tx, ts = k.input("x", "float32", x), k.input("s", "float32", s0)
    o = k.output("o", "bfloat16", x.shape)
    k.kb.tensor_scalar(dst=o, data=tx, op0="subtract", operand0=ts, op1="multiply", operand1=3.0)
    k.run()
    want = ((x - s0) * np.float32(3.0)).astype(BF16).view(np.uint16)
    assert np.array_equal(k.bits("o"), want)


def test_scalar_tensor_tensor_and_reciprocal():
    r = rng(8)
    x = r.standard_normal((32, 48)).astype(np.float32)
    y = r.standard_normal((32, 48)).astype(np.float32)
    k = Kernel()
    tx, ty = k.input("x", "float32", x), k.input("y", "float32", y)
    o = k.output("o", "float32", x.shape)
    rc = k.output("rc", "float32", x.shape)
    k.kb.scalar_tensor_tensor(dst=o, data=tx, op0="add", operand0=0.5, op1="multiply", operand1=ty)
    k.kb.reciprocal(dst=rc, data=tx)
    k.run()
    np.testing.assert_array_equal(k.get("o"), (x + np.float32(0.5)) * y)
    np.testing.assert_array_equal(k.get("rc"), np.float32(1) / x)


ACT = {
    "exp": (np.exp, 1e-6), "tanh": (np.tanh, 1e-6), "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), 1e-6),
    "relu": (lambda v: np.maximum(v, 0), 0), "square": (np.square, 1e-7),
    "gelu_apprx_tanh": (lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3))), 2e-6),
    "silu": (lambda v: v / (1 + np.exp(-v)), 2e-6), "sin": (np.sin, 1e-6), "arctan": (np.arctan, 1e-6),
    "softplus": (lambda v: np.log1p(np.exp(v)), 2e-6), "abs": (np.abs, 0), "sign": (np.sign, 0),
}


@pytest.mark.parametrize("op", sorted(ACT))
def test_activation_functions_against_numpy(op):
    r = rng(9)
    x = (r.standard_normal((64, 128)) * 2).astype(np.float32)
    scale = np.float32(0.75)
    bias = r.standard_normal((64, 1)).astype(np.float32)
    k = Kernel()
    tx, tb = k.input("x", "float32", x), k.input("b", "float32", bias)
    o = k.output("o", "float32", x.shape)
    rr = k.output("r", "float32", (64, 1))
    k.kb.activation(dst=o, op=op, data=tx, bias=tb, scale=float(scale), reduce_op="add", reduce_res=rr)
    k.run()
    fn, rtol = ACT[op]
    pre = (x * scale + bias).astype(np.float64)
    want = fn(pre)
    np.testing.assert_allclose(k.get("o"), want, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(k.get("r")[:, 0], k.get("o").astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-4)


def test_rsqrt_log_sqrt_on_positive_inputs():
    x = (rng(10).random((16, 64)) + 0.1).astype(np.float32)
    k = Kernel()
    tx = k.input("x", "float32", x)
    outs = {op: k.output(op, "float32", x.shape) for op in ("rsqrt", "log", "sqrt")}
    for op, o in outs.items():
        k.kb.activation(dst=o, op=op, data=tx)
    k.run()
    np.testing.assert_allclose(k.get("rsqrt"), 1 / np.sqrt(x.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(k.get("log"), np.log(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(k.get("sqrt"), np.sqrt(x.astype(np.float64)), rtol=1e-6)


# ---- reductions, scans, selects --------------------------------------------------------------


def test_tensor_reduce_and_partition_reduce():
    r = rng(11)
    x = r.standard_normal((32, 6, 10)).astype(np.float32)
    k = Kernel()
    tx = k.input("x", "float32", x)
    s = k.output("s", "float32", (32, 6))
    m = k.output("m", "float32", (32, 1))
    p = k.output("p", "float32", (1, 60))
    k.kb.tensor_reduce(dst=s, op="add", data=tx, axis=2)
    k.kb.tensor_reduce(dst=m, op="max", data=tx, axis=(1, 2), negate=True)
    k.kb.tensor_partition_reduce(dst=p, op="add", data=tx)
    k.run()
    np.testing.assert_allclose(k.get("s"), x.astype(np.float64).sum(axis=2), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(k.get("m")[:, 0], -x.reshape(32, -1).max(axis=1))
    np.testing.assert_allclose(k.get("p")[0], x.reshape(32, 60).astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5)


def test_tensor_tensor_scan_cumulative_sum():
    r = rng(12)
    x = r.standard_normal((16, 40)).astype(np.float32)
    zeros = np.zeros_like(x)
    k = Kernel()
    tx, tz = k.input("x", "float32", x), k.input("z", "float32", zeros)
    o = k.output("o", "float32", x.shape)
    k.kb.tensor_tensor_scan(dst=o, data0=tx, data1=tz, initial=0.0, op0="add", op1="add")
    k.run()
    np.testing.assert_allclose(k.get("o"), np.cumsum(x.astype(np.float64), axis=1), rtol=1e-5, atol=1e-5)


def test_copy_predicated_select_reduce_range_select_affine_select_iota():
    r = rng(13)
    x = r.standard_normal((32, 20)).astype(np.float32)
    pred = (r.random((32, 20)) < 0.5).astype(np.uint8)
    lo = r.integers(0, 10, (32, 1)).astype(np.float32)
    hi = lo + r.integers(1, 10, (32, 1)).astype(np.float32)
    k = Kernel()
    tx, tp = k.input("x", "float32", x), k.input("p", "uint8", pred)
    tlo, thi = k.input("lo", "float32", lo), k.input("hi", "float32", hi)
    cp = k.output("cp", "float32", x.shape)
    sr, srr = k.output("sr", "float32", x.shape), k.output("srr", "float32", (32, 1))
    rs, rsr = k.output("rs", "float32", x.shape), k.output("rsr", "float32", (32, 1))
    af = k.output("af", "float32", (32, 20))
    io = k.output("io", "int32", (32, 4, 5))
    k.kb.memset(dst=cp, value=-7.0)
    k.kb.tensor_copy_predicated(dst=cp, src=tx, predicate=tp)
    k.kb.select_reduce(dst=sr, predicate=tp, on_true=tx, on_false=-1.0, reduce_res=srr)
    k.kb.range_select(dst=rs, on_true_tile=tx, comp_op0="greater_equal", comp_op1="less",
                      bound0=tlo, bound1=thi, reduce_res=rsr, on_false_value=-1e30)
    k.kb.affine_select(dst=af, pattern=[[-1, 20]], channel_multiplier=1, on_true_tile=tx,
                       on_false_value=0.0, cmp_op="greater_equal", offset=3)
    k.kb.iota(dst=io, pattern=[[7, 4], [1, 5]], offset=-5, channel_multiplier=100)
    k.run()
    np.testing.assert_array_equal(k.get("cp"), np.where(pred != 0, x, np.float32(-7)))
    want_sr = np.where(pred != 0, x, np.float32(-1))
    np.testing.assert_array_equal(k.get("sr"), want_sr)
    np.testing.assert_array_equal(k.get("srr")[:, 0], want_sr.max(axis=1))
    i = np.arange(20, dtype=np.float32)[None, :]
    want_rs = np.where((i >= lo) & (i < hi), x, np.float32(-1e30))
    np.testing.assert_array_equal(k.get("rs"), want_rs)
    np.testing.assert_array_equal(k.get("rsr")[:, 0], want_rs.max(axis=1))
    p = np.arange(32)[:, None]
    np.testing.assert_array_equal(k.get("af"), np.where(3 + p - np.arange(20)[None, :] >= 0, x, 0))
    want_io = -5 + 100 * np.arange(32)[:, None, None] + 7 * np.arange(4)[None, :, None] + np.arange(5)[None, None, :]
    np.testing.assert_array_equal(k.get("io"), want_io.astype(np.int32))


def test_bn_stats_bn_aggr_mean_and_variance_over_1000_elements():
    x = (rng(14).standard_normal((64, 1000)) * 3 + 1).astype(np.float32)
    k = Kernel()
    tx = k.input("x", "float32", x)
    st = k.output("st", "float32", (64, 12))
    ag = k.output("ag", "float32", (64, 2))
    k.kb.bn_stats(dst=st, data=tx)
    k.kb.bn_aggr(dst=ag, data=st)
    k.run()
    xd = x.astype(np.float64)
    np.testing.assert_allclose(k.get("ag")[:, 0], xd.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(k.get("ag")[:, 1], xd.var(axis=1), rtol=1e-5)
    st_ = k.get("st")
    np.testing.assert_array_equal(st_[:, 0], 256)  # even elements of the first 512
    np.testing.assert_allclose(st_[:, 1], xd[:, 0:512:2].mean(axis=1), rtol=1e-6, atol=1e-6)


def test_max8_find_index8_match_replace8():
    r = rng(15)
    x = np.stack([r.permutation(200).astype(np.float32) for _ in range(16)])
    k = Kernel()
    tx = k.input("x", "float32", x)
    m = k.output("m", "float32", (16, 8))
    fi = k.output("fi", "uint32", (16, 8))
    rep = k.output("rep", "float32", (16, 200))
    ri = k.output("ri", "uint32", (16, 8))
    k.kb.max8(dst=m, src=tx)
    k.kb.nc_find_index8(dst=fi, data=tx, vals=m)
    k.kb.nc_match_replace8(dst=rep, data=tx, vals=m, imm=-1.0, dst_idx=ri)
    k.run()
    top = -np.sort(-x, axis=1)[:, :8]
    np.testing.assert_array_equal(k.get("m"), top)
    idx = np.argsort(-x, axis=1, kind="stable")[:, :8]
    np.testing.assert_array_equal(k.get("fi"), idx)
    np.testing.assert_array_equal(k.get("ri"), idx)
    want = x.copy()
    np.put_along_axis(want, idx, -1.0, axis=1)
    np.testing.assert_array_equal(k.get("rep"), want)


def test_transposes():
    x = rng(16).standard_normal((64, 96)).astype(np.float32)
    k = Kernel()
    tx = k.input("x", "float32", x)
    pe = k.output("pe", "float32", (96, 64), psum=True)
    dm = k.output("dm", "float32", (96, 64))
    k.kb.nc_transpose(dst=pe, data=tx)
    k.kb.dma_transpose(dst=dm, src=tx)
    small = k.input("s", "bfloat16", bf16_round(x[:32, :16]))
    ve = k.output("ve", "bfloat16", (16, 32))
    k.kb.nc_transpose(dst=ve, data=small, engine="vector")
    k.run()
    np.testing.assert_array_equal(k.get("pe"), x.T)
    np.testing.assert_array_equal(k.get("dm"), x.T)
    np.testing.assert_array_equal(k.get("ve"), bf16_round(x[:32, :16]).T)


def test_local_gather_within_16_partition_groups():
    r = rng(17)
    src = r.standard_normal((32, 16)).astype(np.float32)
    n = 4
    idx = r.integers(0, 16 * 16 // n, (32, 3)).astype(np.int32)
    k = Kernel()
    ts, ti = k.input("s", "float32", src), k.input("i", "int32", idx)
    d = k.output("d", "float32", (32, 3 * n))
    k.kb.local_gather(dst=d, src_buffer=ts, index=ti, num_elem_per_idx=n, num_valid_indices=3)
    k.run()
    want = np.empty((32, 3 * n), np.float32)
    for p in range(32):
        group = src[p // 16 * 16:p // 16 * 16 + 16].reshape(-1)
        for j in range(3):
            want[p, j * n:(j + 1) * n] = group[idx[p, j] * n:(idx[p, j] + 1) * n]
    np.testing.assert_array_equal(k.get("d"), want)


def test_dma_indirect_gather_and_scatter():
    r = rng(18)
    table = r.standard_normal((50, 24)).astype(np.float32)
    idx = r.permutation(50)[:20].astype(np.int32).reshape(20, 1)
    k = Kernel()
    ht = k.hbm_input("table", "float32", table)
    ti = k.input("idx", "int32", idx)
    g = k.output("g", "bfloat16", (20, 24))
    k.kb.dma_copy(dst=g, src=ht, index=ti, indirect="src")
    sc = k.kb.hbm("sc", "float32", [50, 24], kind="output")
    z = k.input("z", "float32", np.zeros((50, 24), np.float32))
    k.kb.dma_copy(dst=sc, src=z)
    k.kb.dma_copy(dst=sc, src=g, index=ti, indirect="dst")
    k.run()
    gathered = table[idx[:, 0]].astype(BF16).astype(np.float32)
    np.testing.assert_array_equal(k.get("g"), gathered)
    want = np.zeros((50, 24), np.float32)
    want[idx[:, 0]] = gathered
    np.testing.assert_array_equal(k.chip.read("sc"), want)


def test_dropout_rng_rand2_are_deterministic_and_plausible():
    x = np.full((128, 256), 2.0, np.float32)
    k = Kernel()
    tx = k.input("x", "float32", x)
    d = k.output("d", "float32", x.shape)
    bits = k.output("bits", "uint32", (128, 64))
    u = k.output("u", "float32", (128, 64))
    k.kb.dropout(dst=d, data=tx, prob=0.3)
    k.kb.rng(dst=bits)
    k.kb.rand2(dst=u, min=1.0, max=3.0)
    k.run(seed=5)
    dropped = k.get("d") == 0
    assert set(np.unique(k.get("d"))) <= {0.0, 2.0}
    assert abs(dropped.mean() - 0.3) < 0.02
    uu = k.get("u")
    assert uu.min() >= 1.0 and uu.max() < 3.0 and abs(uu.mean() - 2.0) < 0.02
    b1 = k.get("bits").copy()
    assert abs(np.unpackbits(b1.view(np.uint8)).mean() - 0.5) < 0.01
    k.chip.run(seed=5)
    assert np.array_equal(k.get("bits"), b1)
    k.chip.run(seed=6)
    assert not np.array_equal(k.get("bits"), b1)


# ---- errors ----------------------------------------------------------------------------------


def test_uninitialized_read_raises_with_instruction_operand_and_element():
    k = Kernel()
    t = k.kb.sbuf("t", "float32", [4, 8])
    o = k.output("o", "float32", (4, 8))
    k.kb.memset(dst=t[0:4, 0:7], value=1.0)
    k.kb.tensor_copy(dst=o, src=t)
    with pytest.raises(sim.UninitializedReadError, match=r"instruction 1 \(tensor_copy\).*operand 'src' \(tensor 't'\).*\[0, 7\]"):
        k.run()


def test_capacity_error_for_too_many_programs():
    chip = sim.Chip("trn2")
    progs = []
    for i in range(9):
        kb = sim.KernelBuilder("trn2", f"p{i}")
        progs.append(kb.finish())
    with pytest.raises(sim.CapacityError):
        chip.load(progs)


def test_write_checks_size_and_name():
    k = Kernel()
    k.hbm_input("x", "float32", np.zeros((2, 2), np.float32))
    k.run()
    with pytest.raises(ValueError, match="'x'"):
        k.chip.write("x", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="no tensor 'nope'"):
        k.chip.write("nope", np.zeros(3, np.float32))


def test_timing_only_run_needs_no_inputs():
    k = Kernel()
    t = k.kb.sbuf("t", "float32", [128, 512])
    h = k.kb.hbm("h", "float32", [128, 512], kind="input")
    k.kb.dma_copy(dst=t, src=h)
    chip = sim.Chip("trn2")
    chip.load([k.kb.finish()])
    res = chip.run(timing_only=True)
    assert res["instructions"] == 1 and res["simulated_ns"] > 0
