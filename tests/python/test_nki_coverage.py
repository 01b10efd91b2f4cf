"""NKI names composed of several simulator instructions (nki/isa_composed.py) and masks on
the Tensor Engine instructions, each against numpy (issue 12)."""
import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

RNG = np.random.default_rng(12)


# ---- nc_stream_shuffle ----------------------------------------------------------------------
def _shuffle_ref(src, dst_before, mask):
    out = dst_before.copy()
    for q in range(0, src.shape[0], 32):
        for i, m in enumerate(mask):
            if m != 255:
                out[q + i] = src[q + m]
    return out


@pytest.mark.parametrize("parts", [32, 128])
def test_nc_stream_shuffle_moves_partitions_within_quadrants(parts):
    mask = list(RNG.permutation(32))
    mask[5] = 255  # partition 5 of each quadrant keeps dst's value
    mask[6], mask[7], mask[8] = 10, 11, 12  # a run of consecutive sources

    @nki.jit
    def k(a, b):
        out = nl.ndarray((parts, 16), dtype=nl.float32, buffer=nl.shared_hbm)
        src = nl.load(a)
        dst = nl.load(b)
        nisa.nc_stream_shuffle(dst=dst, src=src, shuffle_mask=mask)
        nl.store(out, dst)
        return out
    a = RNG.standard_normal((parts, 16)).astype(np.float32)
    b = RNG.standard_normal((parts, 16)).astype(np.float32)
    np.testing.assert_array_equal(k(a, b), _shuffle_ref(a, b, mask))


def test_nc_stream_shuffle_in_place_reads_before_writing():
    mask = [(i + 1) % 32 for i in range(32)]  # rotate: every partition reads its neighbour

    @nki.jit
    def k(a):
        out = nl.ndarray((64, 8), dtype=nl.float32, buffer=nl.shared_hbm)
        t = nl.load(a)
        nisa.nc_stream_shuffle(t, t, mask)
        nl.store(out, t)
        return out
    a = RNG.standard_normal((64, 8)).astype(np.float32)
    np.testing.assert_array_equal(k(a), _shuffle_ref(a, a, mask))


def test_nc_stream_shuffle_bad_mask_is_one_clear_error():
    @nki.jit
    def k(a):
        t = nl.load(a)
        nisa.nc_stream_shuffle(t, t, [0] * 31)
        return a
    with pytest.raises(nki.errors.NkiValueError, match="32 entries"):
        k(np.zeros((32, 4), np.float32))


# ---- sequence_bounds ---------------------------------------------------------------------------
def _bounds_ref(seq):
    # NKI's documented numpy equivalent: [start, end) of each run, padding (0) -> (n, -1).
    n = len(seq)
    lo, hi = np.zeros(n), np.zeros(n)
    lo[0] = 0 if seq[0] != 0 else n
    for i in range(1, n):
        lo[i] = n if seq[i] == 0 else (lo[i - 1] if seq[i] == seq[i - 1] else i)
    hi[-1] = n if seq[-1] != 0 else -1
    for i in range(n - 2, -1, -1):
        hi[i] = -1 if seq[i] == 0 else (hi[i + 1] if seq[i] == seq[i + 1] else i + 1)
    return np.stack([lo, hi])[None].astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_sequence_bounds_matches_numpy(dtype):
    seq = np.array([1, 1, 1, 2, 2, 0, 0, 3, 3, 3, 3, 1, 0, 4, 4, 5], dtype)
    seq = np.concatenate([seq, RNG.integers(0, 4, 48).astype(dtype)])

    @nki.jit
    def k(s):
        out = nl.ndarray((1, 2, seq.size), dtype=nl.float32, buffer=nl.shared_hbm)
        t = nl.load(s)
        d = nl.ndarray((1, 2, seq.size), dtype=nl.float32, buffer=nl.sbuf)
        nisa.sequence_bounds(dst=d, segment_ids=t)
        nl.store(out, d)
        return out
    np.testing.assert_array_equal(k(seq[None]), _bounds_ref(seq))


def test_sequence_bounds_old_style_returns_a_tile():
    seq = np.array([[0, 2, 2, 2, 7, 7, 0, 1]], np.int32)

    @nki.jit
    def k(s):
        out = nl.ndarray((1, 2, 8), dtype=nl.int32, buffer=nl.shared_hbm)
        nl.store(out, nisa.sequence_bounds(segment_ids=nl.load(s)))
        return out
    np.testing.assert_array_equal(k(seq), _bounds_ref(seq[0]).astype(np.int32))


def test_sequence_bounds_needs_one_partition():
    @nki.jit
    def k(s):
        nisa.sequence_bounds(segment_ids=nl.load(s))
        return s
    with pytest.raises(nki.VerifyError, match="partition dimension must be 1"):
        k(np.ones((2, 8), np.float32))


# ---- mask= on transpose and matmul ---------------------------------------------------------------
def test_masked_nc_transpose_keeps_the_full_shape_and_writes_the_kept_part():
    @nki.jit
    def k(a):
        out = nl.ndarray((96, 128), dtype=nl.float32, buffer=nl.shared_hbm)
        i_p = nl.arange(128)[:, None]
        i_f = nl.arange(96)[None, :]
        x = nl.load(a)
        t = nisa.nc_transpose(x[i_p, i_f], mask=(i_p < 64))
        assert t.shape == (96, 128), t.shape
        nl.store(out[:, 0:64], nl.copy(t[:, 0:64]))
        nl.store(out[:, 64:128], nl.zeros((96, 64), nl.float32))
        return out
    a = RNG.standard_normal((128, 96)).astype(np.float32)
    want = np.zeros((96, 128), np.float32)
    want[:, :64] = a.T[:, :64]
    np.testing.assert_array_equal(k(a), want)


def test_masked_square_transpose_cuts_the_columns_not_the_rows():
    # A 128x128 tile: a mask on the input rows must land on the output columns.
    @nki.jit
    def k(a):
        out = nl.ndarray((128, 32), dtype=nl.float32, buffer=nl.shared_hbm)
        i_p = nl.arange(128)[:, None]
        i_f = nl.arange(128)[None, :]
        t = nl.transpose(nl.load(a)[i_p, i_f], mask=(i_p < 32))
        nl.store(out, nl.copy(t[:, 0:32]))
        return out
    a = RNG.standard_normal((128, 128)).astype(np.float32)
    np.testing.assert_array_equal(k(a), a.T[:, :32])


def test_masked_nc_matmul_contraction_and_columns():
    @nki.jit
    def k(s, m):
        out = nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.shared_hbm)
        i_k = nl.arange(128)[:, None]
        i_m = nl.arange(128)[None, :]
        st = nl.load(s)
        mv = nl.load(m)
        c = nisa.nc_matmul(st[i_k, i_m], mv, mask=(i_k < 64))  # contract the first 64 rows
        assert c.shape == (128, 512), c.shape
        nl.store(out, nl.copy(c))
        return out
    s = RNG.standard_normal((128, 128)).astype(np.float32)
    m = RNG.standard_normal((128, 512)).astype(np.float32)
    np.testing.assert_allclose(k(s, m), s[:64].T @ m[:64], rtol=1e-4, atol=1e-4)


def test_masked_nl_matmul_rows():
    @nki.jit
    def k(x, y):
        out = nl.ndarray((48, 256), dtype=nl.float32, buffer=nl.shared_hbm)
        i_p = nl.arange(64)[:, None]
        i_f = nl.arange(128)[None, :]
        c = nl.matmul(nl.load(x)[i_p, i_f], nl.load(y), mask=(i_p < 48))
        assert c.shape == (64, 256), c.shape
        nl.store(out, nl.copy(c[0:48]))
        return out
    x = RNG.standard_normal((64, 128)).astype(np.float32)
    y = RNG.standard_normal((128, 256)).astype(np.float32)
    np.testing.assert_allclose(k(x, y), x[:48] @ y, rtol=1e-4, atol=1e-4)


# ---- nc_n_gather ------------------------------------------------------------------------------
def test_nc_n_gather_gathers_within_each_partition():
    data = RNG.standard_normal((128, 4, 16)).astype(np.float32)
    idx = RNG.integers(0, 64, (128, 24)).astype(np.uint32)

    @nki.jit
    def k(d, i):
        out = nl.ndarray((128, 24), dtype=nl.float32, buffer=nl.shared_hbm)
        dst = nl.ndarray((128, 24), dtype=nl.float32, buffer=nl.sbuf)
        nisa.nc_n_gather(dst, nl.load(d), nl.load(i))
        nl.store(out, dst)
        return out
    want = np.take_along_axis(data.reshape(128, 64), idx.astype(np.int64), axis=1)
    np.testing.assert_array_equal(k(data, idx), want)


# ---- dma_compute ------------------------------------------------------------------------------
def test_dma_compute_sums_sources_in_float32():
    srcs = [RNG.standard_normal((200, 48)).astype(np.float32) for _ in range(3)]

    @nki.jit
    def k(a, b, c):
        out = nl.ndarray((200, 48), dtype=nl.float32, buffer=nl.shared_hbm)
        sb = nl.load(c[0:128])
        part = nl.ndarray((128, 48), dtype=nl.float32, buffer=nl.shared_hbm)
        nisa.dma_compute(part, [a[0:128], b[0:128], sb], nl.add)
        nisa.dma_compute(out[128:200], [a[128:200], b[128:200], c[128:200]], nl.add,
                         scales=[1.0, 1.0, 1.0])
        nisa.dma_copy(dst=out[0:128], src=part)
        return out
    want = (srcs[0] + srcs[1]) + srcs[2]
    np.testing.assert_array_equal(k(*srcs), want)


def test_dma_compute_rejects_a_scale_other_than_one():
    @nki.jit
    def k(a):
        out = nl.ndarray((4, 4), dtype=nl.float32, buffer=nl.shared_hbm)
        nisa.dma_compute(out, [a, a], nl.add, scales=[1.0, 2.0])
        return out
    with pytest.raises(nki.errors.NkiValueError, match="scale must be 1.0"):
        k(np.ones((4, 4), np.float32))


# ---- nonzero_with_count -----------------------------------------------------------------------
def _nonzero_ref(src, offset, pad, before):
    out = before.copy()
    T = src.shape[1]
    for p in range(0, src.shape[0], 16):
        nz = np.nonzero(src[p])[0]
        out[p, :] = pad
        out[p, :nz.size] = nz + offset
        out[p, T] = nz.size
    return out


@pytest.mark.parametrize("T", [40, 300])
def test_nonzero_with_count_matches_the_documented_example_and_numpy(T):
    src = (RNG.random((128, T)) < 0.3).astype(np.float32) * RNG.standard_normal((128, T))
    src = src.astype(np.float32)
    src[0, :8] = [0, 1, 1, 0, 0, 1, 0, 0]  # NKI's example row (offset 16 -> 17, 18, 21)
    src[0, 8:] = 0
    src[16] = 0  # no nonzero at all
    before = np.full((128, T + 1), 7, np.int32)

    @nki.jit
    def k(s, d0):
        out = nl.ndarray((128, T + 1), dtype=nl.int32, buffer=nl.shared_hbm)
        dst = nl.load(d0)
        nisa.nonzero_with_count(dst, nl.load(s), index_offset=16, padding_val=-1)
        nl.store(out, dst)
        return out
    got = k(src, before)
    np.testing.assert_array_equal(got, _nonzero_ref(src, 16, -1, before))
    assert list(got[0, :4]) == [17, 18, 21, -1] and got[0, T] == 3


# ---- activate2 --------------------------------------------------------------------------------
@pytest.mark.parametrize("op0,op1,rev0,ref", [
    (np.multiply, np.add, False, lambda x: np.exp(x * 2.0 + 0.5)),
    (np.subtract, None, True, lambda x: np.exp(2.0 - x)),
    (None, None, False, lambda x: np.exp(x)),
])
def test_activate2_tensor_scalar_then_activation(op0, op1, rev0, ref):
    @nki.jit
    def k(a):
        out = nl.ndarray((128, 64), dtype=nl.float32, buffer=nl.shared_hbm)
        red = nl.ndarray((128, 1), dtype=nl.float32, buffer=nl.shared_hbm)
        x = nl.load(a)
        r = nl.ndarray((128, 64), dtype=nl.float32, buffer=nl.sbuf)
        s = nl.ndarray((128, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activate2(dst=r, op=nl.exp, data=x, imm0=2.0, imm1=0.5, op0=op0, op1=op1,
                       reverse0=rev0, reduce_op=nl.add, reduce_res=s,
                       reduce_cmd=nisa.reduce_cmd.reset_reduce)
        nl.store(out, r)
        nl.store(red, s)
        return out, red
    x = RNG.standard_normal((128, 64)).astype(np.float32) * 0.5
    got, red = k(x)
    want = ref(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-5)
    np.testing.assert_allclose(red[:, 0], want.sum(axis=1), rtol=2e-5)


# ---- virtual registers ------------------------------------------------------------------------
def test_registers_with_trace_time_values_drive_loops_and_stores():
    @nki.jit
    def k(a):
        out = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.shared_hbm)
        cnt = nl.ndarray((1, 1), dtype=nl.int32, buffer=nl.shared_hbm)
        n = nisa.register_alloc(3)
        m = nisa.register_alloc()
        nisa.register_move(m, n)          # m = 3
        t = nl.load(a)
        for _ in nl.dynamic_range(m):     # three turns
            t = nl.add(t, 1.0)
        left = nisa.register_alloc(2)
        while left:                        # two turns
            t = nl.multiply(t, 2.0)
            nisa.register_move(left, int(left) - 1)
        nisa.register_store(cnt, n)
        assert isinstance(n, nl.virtual_register)
        nl.store(out, t)
        return out, cnt
    x = RNG.standard_normal((128, 8)).astype(np.float32)
    got, cnt = k(x)
    one = np.float32(1)
    np.testing.assert_array_equal(got, (((x + one) + one) + one) * 4)
    assert cnt.reshape(-1)[0] == 3


def test_register_load_is_not_supported_at_the_kernel_line():
    @nki.jit
    def k(a):
        r = nisa.register_alloc()
        nisa.register_load(r, nl.load(a))
        return a
    with pytest.raises(nki.NotSupportedError, match="run time"):
        k(np.ones((1, 1), np.int32))


def test_an_unset_register_is_one_clear_error():
    @nki.jit
    def k(a):
        r = nisa.register_alloc()
        for _ in nl.dynamic_range(r):
            pass
        return a
    with pytest.raises(nki.errors.NkiValueError, match="holds no value yet"):
        k(np.ones((1, 1), np.int32))


# ---- tensor_copy_dynamic_src / _dst -------------------------------------------------------------
def test_tensor_copy_dynamic_src_gathers_columns_at_run_time_offsets():
    # NKI's example: out[:, k] = src[:, offsets[0, k]] for 64 run-time offsets
    src = RNG.standard_normal((128, 512)).astype(np.float32)
    offs = RNG.integers(0, 512, (1, 16)).astype(np.int32)

    @nki.jit
    def k(s, o):
        out = nl.ndarray((128, 16), dtype=nl.float32, buffer=nl.shared_hbm)
        st = nl.load(s)
        ot = nl.load(o)
        res = nl.ndarray((128, 16), dtype=nl.float32, buffer=nl.sbuf)
        ix, iy = nl.mgrid[0:128, 0:1]
        for idx in nl.affine_range(16):
            res[ix, idx] = nisa.tensor_copy_dynamic_src(st[ix, ot[0, idx] + iy])
        nl.store(out, res)
        return out
    np.testing.assert_array_equal(k(src, offs), src[:, offs[0]])


def test_tensor_copy_dynamic_src_window_and_dst_window():
    src = RNG.standard_normal((64, 256)).astype(np.float32)
    off = np.array([[37]], np.int32)

    @nki.jit
    def k(s, o):
        out = nl.ndarray((64, 32), dtype=nl.float32, buffer=nl.shared_hbm)
        back = nl.ndarray((64, 256), dtype=nl.float32, buffer=nl.shared_hbm)
        st = nl.load(s)
        ot = nl.load(o)
        i_p = nl.arange(64)[:, None]
        i_f = nl.arange(32)[None, :]
        win = nl.ndarray((64, 32), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy_dynamic_src(win, st[i_p, ot[0, 0] + i_f])
        nl.store(out, win)
        z = nl.zeros((64, 256), dtype=nl.float32, buffer=nl.sbuf)
        doubled = nl.multiply(win, 2.0)
        nisa.tensor_copy_dynamic_dst(z[i_p, ot[0, 0] + i_f], doubled)
        nl.store(back, z)
        return out, back
    got, back = k(src, off)
    np.testing.assert_array_equal(got, src[:, 37:69])
    want = np.zeros((64, 256), np.float32)
    want[:, 37:69] = src[:, 37:69] * 2
    np.testing.assert_array_equal(back, want)


def test_masked_new_style_transpose_and_matmul_write_only_the_kept_part():
    @nki.jit
    def k(a, m):
        out_t = nl.ndarray((128, 128), dtype=nl.float32, buffer=nl.shared_hbm)
        out_m = nl.ndarray((128, 256), dtype=nl.float32, buffer=nl.shared_hbm)
        i_p = nl.arange(128)[:, None]
        i_f = nl.arange(128)[None, :]
        x = nl.load(a)
        t = nl.ndarray((128, 128), dtype=nl.float32, buffer=nl.psum)
        nisa.memset(t, 0.0)
        nisa.nc_transpose(t, x[i_p, i_f], mask=(i_f < 40))   # x's columns 0..39 -> t's rows
        nl.store(out_t, nl.copy(t))
        c = nl.ndarray((128, 256), dtype=nl.float32, buffer=nl.psum)
        nisa.memset(c, 0.0)
        nisa.nc_matmul(c, x[i_p, i_f], nl.load(m), mask=(i_f < 40))  # stationary cols -> rows
        nl.store(out_m, nl.copy(c))
        return out_t, out_m
    a = RNG.standard_normal((128, 128)).astype(np.float32)
    m = RNG.standard_normal((128, 256)).astype(np.float32)
    got_t, got_m = k(a, m)
    want_t = np.zeros((128, 128), np.float32)
    want_t[:40] = a.T[:40]
    np.testing.assert_array_equal(got_t, want_t)
    want_m = np.zeros((128, 256), np.float32)
    want_m[:40] = a[:, :40].T @ m
    np.testing.assert_allclose(got_m, want_m, rtol=1e-4, atol=1e-4)


# ---- topk (NKI 2.33.0: per 16-partition group, snake layout in and out) ----------------------
def _snake(x, g, n):
    """Snake elements 0..n-1 of group g: element i is x[16g + i % 16, i // 16]."""
    return x[16 * g:16 * g + 16].T.reshape(-1)[:n]


@pytest.mark.parametrize("parts,cols,n,k", [(16, 3, 42, 8), (32, 4, 64, 20), (128, 8, 120, 37),
                                            (16, 2, 8, 8)])
def test_topk_picks_the_k_largest_of_each_snake_group(parts, cols, n, k):
    import ml_dtypes
    # values distinct within each group and exact in bf16 (quarters of integers below 128)
    x = np.concatenate([(RNG.permutation(16 * cols) - 8 * cols).reshape(16, cols)
                        for _ in range(parts // 16)]).astype(np.float32) / 4
    x = x.astype(ml_dtypes.bfloat16)

    @nki.jit
    def kern(inp):
        src = nl.ndarray((parts, cols), dtype=nl.bfloat16, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=inp)
        vd = nl.ndarray((parts, k), dtype=nl.bfloat16, buffer=nl.sbuf)
        idd = nl.ndarray((parts, k), dtype=nl.uint32, buffer=nl.sbuf)
        nisa.memset(dst=vd, value=-1.0)
        nisa.memset(dst=idd, value=7)
        nisa.topk(val_dst=vd, idx_dst=idd, src=src, n=n)
        ov = nl.ndarray((parts, k), dtype=nl.bfloat16, buffer=nl.shared_hbm)
        oi = nl.ndarray((parts, k), dtype=nl.uint32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=ov, src=vd)
        nisa.dma_copy(dst=oi, src=idd)
        return ov, oi
    ov, oi = kern(x)
    ov, oi = np.asarray(ov).astype(np.float32), np.asarray(oi)
    xf = x.astype(np.float32)
    for g in range(parts // 16):
        snake = _snake(xf, g, n)
        want = np.argsort(-snake, kind="stable")[:k]  # largest first
        got_v, got_i = _snake(ov, g, k), _snake(oi, g, k)
        np.testing.assert_array_equal(got_i, want)
        np.testing.assert_array_equal(got_v, snake[want])
    # free positions past ceil(k / 16) keep what was there
    np.testing.assert_array_equal(oi[:, -(-k // 16):], 7)


def test_topk_with_equal_values_returns_each_index_once():
    import ml_dtypes
    x = np.tile(np.array([[1.0, 2.0, 2.0, 0.5]], np.float32), (16, 1)).astype(ml_dtypes.bfloat16)

    @nki.jit
    def kern(inp):
        src = nl.ndarray((16, 4), dtype=nl.bfloat16, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=inp)
        vd = nl.ndarray((16, 40), dtype=nl.bfloat16, buffer=nl.sbuf)
        idd = nl.ndarray((16, 40), dtype=nl.uint32, buffer=nl.sbuf)
        nisa.memset(dst=idd, value=0)
        nisa.topk(val_dst=vd, idx_dst=idd, src=src, n=64)
        oi = nl.ndarray((16, 40), dtype=nl.uint32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=oi, src=idd)
        return oi
    got = _snake(np.asarray(kern(x)), 0, 40)
    # snake 0..15 hold 1.0, 16..47 hold 2.0, 48..63 hold 0.5: the 32 twos, then 8 of the ones
    assert set(got[:32]) == set(range(16, 48))
    assert len(set(got[32:])) == 8 and set(got[32:]) <= set(range(16))


def test_topk_sorted_true_is_not_supported():
    @nki.jit
    def kern(inp):
        src = nl.load(inp)
        vd = nl.ndarray((16, 8), dtype=nl.bfloat16, buffer=nl.sbuf)
        idd = nl.ndarray((16, 8), dtype=nl.uint32, buffer=nl.sbuf)
        nisa.topk(val_dst=vd, idx_dst=idd, src=src, n=16, sorted=True)
        return inp
    import ml_dtypes
    with pytest.raises(nki.errors.NotSupportedError, match="sorted=True"):
        kern(np.zeros((16, 1), ml_dtypes.bfloat16))


# ---- float8_e3m4 ---------------------------------------------------------------------------
def test_float8_e3m4_cast_and_back_matches_ml_dtypes_bit_for_bit():
    import ml_dtypes
    # every e3m4 value, the midpoints between neighbours (ties to even), overflow, specials
    codes = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e3m4).astype(np.float32)
    finite = np.unique(np.abs(codes[np.isfinite(codes)]))
    mids = (finite[:-1] + finite[1:]) / 2
    x = np.concatenate([codes, mids, -mids, [15.75, 16.0, 1e6, -1e6, 2.0**-8],
                        RNG.standard_normal(1024).astype(np.float32) * 4])
    x = np.resize(x.astype(np.float32), (128, 8))

    @nki.jit
    def kern(a):
        f8 = nl.ndarray((128, 8), dtype=nl.float8_e3m4, buffer=nl.shared_hbm)
        back = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.shared_hbm)
        t = nl.load(a)
        q = nl.copy(t, dtype=nl.float8_e3m4)
        nl.store(f8, q)
        nl.store(back, nl.copy(q, dtype=nl.float32))
        return f8, back
    f8, back = kern(x)
    want = x.astype(ml_dtypes.float8_e3m4)
    assert np.asarray(f8).dtype == ml_dtypes.float8_e3m4
    nan = np.isnan(want.astype(np.float32))  # NaN payloads may differ: any NaN is a NaN
    assert nan.any() and np.isnan(np.asarray(f8).astype(np.float32)[nan]).all()
    np.testing.assert_array_equal(np.asarray(f8).view(np.uint8)[~nan], want.view(np.uint8)[~nan])
    np.testing.assert_array_equal(np.asarray(back).view(np.uint32)[~nan],
                                  want.astype(np.float32).view(np.uint32)[~nan])
    assert np.isnan(np.asarray(back)[nan]).all()


# ---- nl.all_reduce across the SPMD programs of a launch grid ----------------------------------
def test_all_reduce_sums_and_maxes_over_the_programs_of_a_grid():
    @nki.jit
    def kern(a):
        out = nl.ndarray((4, 128, 64), dtype=nl.float32, buffer=nl.shared_hbm)
        i = nl.program_id(0)
        t = nl.load(a[i])
        s = nl.all_reduce(t, np.add, program_axes=0)
        m = nl.all_reduce(t, nl.maximum, program_axes=(0,))
        nl.store(out[i], nl.subtract(s, m))
        return out
    a = RNG.standard_normal((4, 128, 64)).astype(np.float32)
    want = ((a[0] + a[1]) + a[2]) + a[3] - np.maximum.reduce(a, axis=0)  # grid order, float32
    np.testing.assert_array_equal(kern[4](a), np.broadcast_to(want, (4, 128, 64)))


def test_all_reduce_over_one_axis_of_a_2d_grid_with_dtype():
    @nki.jit
    def kern(a):
        out = nl.ndarray((2, 3, 32, 16), dtype=nl.float16, buffer=nl.shared_hbm)
        i, j = nl.program_id(0), nl.program_id(1)
        s = nl.all_reduce(nl.load(a[i, j]), np.add, program_axes=1, dtype=nl.float16)
        nl.store(out[i, j], s)
        return out
    a = RNG.standard_normal((2, 3, 32, 16)).astype(np.float32)
    want = ((a[:, 0] + a[:, 1]) + a[:, 2]).astype(np.float16)
    np.testing.assert_array_equal(kern[2, 3](a), np.broadcast_to(want[:, None], a.shape))


def test_all_reduce_called_by_some_programs_only_is_one_clear_error():
    @nki.jit
    def kern(a):
        out = nl.ndarray((2, 16, 8), dtype=nl.float32, buffer=nl.shared_hbm)
        i = nl.program_id(0)
        t = nl.load(a[i])
        if i == 0:
            t = nl.all_reduce(t, np.add, program_axes=0)
        nl.store(out[i], t)
        return out
    with pytest.raises(nki.errors.NkiValueError, match="same number of times"):
        kern[2](np.zeros((2, 16, 8), np.float32))


def test_all_reduce_across_nl_nc_cores_is_not_supported():
    @nki.jit
    def kern(a):
        out = nl.ndarray((2, 16, 8), dtype=nl.float32, buffer=nl.shared_hbm)
        i = nl.program_id(0)
        nl.store(out[i], nl.all_reduce(nl.load(a[i]), np.add, program_axes=0))
        return out
    with pytest.raises(nki.errors.NotSupportedError, match="across NeuronCores"):
        kern[nl.nc(2)](np.zeros((2, 16, 8), np.float32))
