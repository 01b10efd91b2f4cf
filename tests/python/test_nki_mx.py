"""MX (microscaling) matmul and quantization (nki/mx.py) against numpy and ml_dtypes: the
packed words, the scale bytes and the matmul values (issue 12)."""
import ml_dtypes
import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

RNG = np.random.default_rng(1212)
FMT = {"e4m3": (nl.float8_e4m3fn_x4, ml_dtypes.float8_e4m3fn, 8),
       "e5m2": (nl.float8_e5m2_x4, ml_dtypes.float8_e5m2, 15)}


def _random_fp8_bytes(shape, np_fp8):
    vals = (RNG.standard_normal(shape) * 4).astype(np_fp8)  # finite values only
    return vals.view(np.uint8)


def _pack(bytes_pck):
    """[P, C, 4] uint8 -> [P, C] uint32, byte k = element k (little-endian)."""
    return np.ascontiguousarray(bytes_pck).view("<u4")[..., 0]


def _scale_rows(P):
    """Data partition p -> scale tile partition (4-partition tile for one quadrant)."""
    if P <= 32:
        return np.arange(P) // 8
    return (np.arange(P) // 32) * 32 + (np.arange(P) % 32) // 8


def _assert_fp32_matmul(got, a, b):
    """got == einsum(a, b) up to float32 accumulation: |error| <= n * 2**-24 * sum |terms|
    (a group with a wrong scale is off by a factor of 2 or more and fails)."""
    want = np.einsum("pmk,pnk->mn", a, b)
    bound = a.shape[0] * a.shape[2] * 2.0 ** -24 * np.einsum("pmk,pnk->mn", abs(a), abs(b))
    err = np.abs(got - want)
    assert np.all(err <= bound), (err / np.maximum(bound, 1e-300)).max()


def _dequant(words_bytes, scale, np_fp8):
    P = words_bytes.shape[0]
    v = words_bytes.view(np_fp8).astype(np.float64)              # [P, C, 4]
    s = np.exp2(scale[_scale_rows(P)].astype(np.float64) - 127)  # [P, C]
    return v * s[:, :, None]


@pytest.mark.parametrize("fmt,K", [("e4m3", 32), ("e5m2", 128)])
def test_nc_matmul_mx_matches_numpy(fmt, K):
    x4, np_fp8, _ = FMT[fmt]
    M, N = 64, 96
    sb = _random_fp8_bytes((K, M, 4), np_fp8)
    mb = _random_fp8_bytes((K, N, 4), np_fp8)
    sp = 4 if K == 32 else K
    ss = RNG.integers(118, 136, (sp, M)).astype(np.uint8)
    ms = RNG.integers(118, 136, (sp, N)).astype(np.uint8)

    @nki.jit
    def k(sw, mw, ssc, msc):
        out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
        st = nl.ndarray((K, M), dtype=x4, buffer=nl.sbuf)
        mv = nl.ndarray((K, N), dtype=x4, buffer=nl.sbuf)
        nisa.dma_copy(dst=st, src=sw)
        nisa.dma_copy(dst=mv, src=mw)
        d = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(d, st, mv, nl.load(ssc), nl.load(msc))
        nl.store(out, nl.copy(d))
        return out
    got = k(_pack(sb), _pack(mb), ss, ms)
    s_val = _dequant(sb, ss, np_fp8)   # [K, M, 4]
    m_val = _dequant(mb, ms, np_fp8)   # [K, N, 4]
    _assert_fp32_matmul(got, s_val, m_val)


def test_nc_matmul_mx_needs_an_x4_tile():
    @nki.jit
    def k(a, s):
        d = nl.ndarray((8, 8), dtype=nl.float32, buffer=nl.psum)
        t = nl.load(a)
        nisa.nc_matmul_mx(d, t, t, nl.load(s), nl.load(s))
        return a
    with pytest.raises(nki.errors.NkiTypeError, match="float8_e4m3fn_x4"):
        k(np.zeros((32, 8), np.uint32), np.zeros((4, 8), np.uint8))


def _quantize_ref(x, np_fp8, emax):
    """NKI's quantize_mx as documented: group = 8 partitions x 4 elements, scale two times
    OCP's (floor(log2(amax)) - emax + 1), bytes packed little-endian."""
    P, F = x.shape
    C = F // 4
    xv = x.astype(np.float64)
    g = np.abs(xv).reshape(P // 8, 8, C, 4).max(axis=(1, 3))          # [P/8, C]
    _, ex = np.frexp(g)
    e = np.where(g > 0, ex - 1, -1000)
    s = np.clip(e - emax + 1 + 127, 0, 254).astype(np.uint8)          # [P/8, C]
    inv = np.exp2(127.0 - s.astype(np.float64))
    q = (xv.reshape(P // 8, 8, C, 4) * inv[:, None, :, None]).reshape(P, F)
    words = _pack(q.astype(np.float32).astype(np_fp8).view(np.uint8).reshape(P, C, 4))
    if P == 32:
        scale = s
    else:
        scale = np.zeros((P, C), np.uint8)
        for grp in range(P // 8):
            scale[(grp // 4) * 32 + grp % 4] = s[grp]
    return words, scale


@pytest.mark.parametrize("fmt,P", [("e4m3", 32), ("e5m2", 64), ("e4m3", 128)])
def test_quantize_mx_words_and_scales_match_numpy(fmt, P):
    x4, np_fp8, emax = FMT[fmt]
    F = 48
    x = (RNG.standard_normal((P, F)) * np.exp2(RNG.integers(-6, 6, (P, 1)))).astype(
        ml_dtypes.bfloat16)
    x[0:8, 0:4] = 0  # an all-zero group
    x[8, 4] = 2.0    # a group whose amax is a power of two
    sp = 4 if P == 32 else P

    @nki.jit
    def k(a):
        w = nl.ndarray((P, F // 4), dtype=nl.uint32, buffer=nl.shared_hbm)
        sc = nl.ndarray((sp, F // 4), dtype=nl.uint8, buffer=nl.shared_hbm)
        d = nl.ndarray((P, F // 4), dtype=x4, buffer=nl.sbuf)
        s = nl.ndarray((sp, F // 4), dtype=nl.uint8, buffer=nl.sbuf)
        if sp > 4:
            nisa.memset(s, 0)
        nisa.quantize_mx(d, nl.load(a), s)
        nisa.dma_copy(dst=w, src=d)
        nisa.dma_copy(dst=sc, src=s)
        return w, sc
    words, scale = k(x)
    want_w, want_s = _quantize_ref(x, np_fp8, emax)
    np.testing.assert_array_equal(scale, want_s)
    np.testing.assert_array_equal(words, want_w)


def test_quantize_then_matmul_mx_approximates_the_float_matmul():
    K, M, N = 128, 32, 64
    a = RNG.standard_normal((K, M * 4)).astype(ml_dtypes.bfloat16)
    b = RNG.standard_normal((K, N * 4)).astype(ml_dtypes.bfloat16)

    @nki.jit
    def k(x, y):
        out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
        qa = nl.ndarray((K, M), dtype=nl.float8_e4m3fn_x4, buffer=nl.sbuf)
        qb = nl.ndarray((K, N), dtype=nl.float8_e4m3fn_x4, buffer=nl.sbuf)
        sa = nl.ndarray((K, M), dtype=nl.float8_e8m0fnu, buffer=nl.sbuf)
        sb = nl.ndarray((K, N), dtype=nl.float8_e8m0fnu, buffer=nl.sbuf)
        nisa.quantize_mx(qa, nl.load(x), sa)
        nisa.quantize_mx(qb, nl.load(y), sb)
        d = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(d, qa, qb, sa, sb)
        nl.store(out, nl.copy(d))
        return out
    got = k(a, b)
    av = a.astype(np.float64).reshape(K, M, 4)
    bv = b.astype(np.float64).reshape(K, N, 4)
    want = np.einsum("pmk,pnk->mn", av, bv)
    # fp8 e4m3 keeps 3 mantissa bits: about 6% per element, averaging out over K*4 terms
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err < 0.05, err


def test_nc_matmul_mx_fp4_nibbles():
    K, M, N = 32, 16, 40
    snib = RNG.integers(0, 16, (K, M, 4)).astype(np.uint16)
    mnib = RNG.integers(0, 16, (K, N, 4)).astype(np.uint16)
    pack = lambda n: (n[..., 0] | (n[..., 1] << 4) | (n[..., 2] << 8) | (n[..., 3] << 12))
    ss = RNG.integers(120, 134, (4, M)).astype(np.uint8)
    ms = RNG.integers(120, 134, (4, N)).astype(np.uint8)

    @nki.jit
    def k(sw, mw, ssc, msc):
        out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
        st = nl.ndarray((K, M), dtype=nl.float4_e2m1fn_x4, buffer=nl.sbuf)
        mv = nl.ndarray((K, N), dtype=nl.float4_e2m1fn_x4, buffer=nl.sbuf)
        nisa.dma_copy(dst=st, src=sw)
        nisa.dma_copy(dst=mv, src=mw)
        d = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(d, st, mv, nl.load(ssc), nl.load(msc))
        nl.store(out, nl.copy(d))
        return out
    got = k(pack(snib).astype(np.uint16), pack(mnib).astype(np.uint16), ss, ms)

    def dec(nib, sc):
        v = nib.astype(np.uint8).view(ml_dtypes.float4_e2m1fn).astype(np.float64)
        return v * np.exp2(sc[_scale_rows(K)].astype(np.float64) - 127)[:, :, None]
    _assert_fp32_matmul(got, dec(snib, ss), dec(mnib, ms))
