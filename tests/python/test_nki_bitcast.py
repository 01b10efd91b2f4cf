"""tile.view(dtype): bit casts of on-chip tiles (nki/bitcast.py) against numpy's .view, with
the hard values (signed zeros, subnormals, the largest finite values, inf, NaN) (issue 12)."""
import ml_dtypes
import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import language as nl

RNG = np.random.default_rng(99)


def _special(dt):
    fi = ml_dtypes.finfo(dt)
    vals = [0.0, -0.0, 1.0, -2.5, float(fi.max), -float(fi.max), float(fi.tiny),
            float(fi.smallest_subnormal), -float(fi.smallest_subnormal), np.nan]
    if dt not in (ml_dtypes.float8_e4m3fn,):
        vals += [np.inf, -np.inf]
    return np.array(vals, np.float64).astype(dt)


def _run_view(x, to):
    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, dtype=to, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a).view(to))
        return out
    return k(x)


CASES = [
    (np.float32, np.int32), (np.float32, np.uint32), (ml_dtypes.bfloat16, np.int16),
    (ml_dtypes.bfloat16, np.uint16), (np.float16, np.int16), (np.float16, np.uint16),
    (ml_dtypes.float8_e4m3fn, np.uint8), (ml_dtypes.float8_e5m2, np.int8),
]


@pytest.mark.parametrize("fdt,idt", CASES)
def test_float_to_int_view_matches_numpy(fdt, idt):
    x = np.concatenate([_special(fdt), (RNG.standard_normal(118) * 8).astype(fdt)])
    x = x.reshape(2, 64) if x.size == 128 else np.resize(x, (2, 64)).astype(fdt)
    got = _run_view(x, idt)
    np.testing.assert_array_equal(got, x.view(idt))


@pytest.mark.parametrize("fdt,idt", CASES)
def test_int_to_float_view_matches_numpy(fdt, idt):
    info = np.iinfo(idt)
    x = RNG.integers(info.min, info.max, (2, 64), dtype=np.int64, endpoint=True).astype(idt)
    want = x.view(fdt)
    got = _run_view(x, fdt)
    with np.errstate(invalid="ignore"):
        nan = np.isnan(want.astype(np.float64))
        got_nan = np.isnan(got.astype(np.float64))
    # NaN payloads are not kept (the format's canonical quiet NaN comes back)
    np.testing.assert_array_equal(got_nan, nan)
    np.testing.assert_array_equal(got[~nan].view(idt), want[~nan].view(idt))


def test_int_to_int_and_float_to_float_views():
    x = np.array([[-1, -2, 7, -2147483648]], np.int32)
    np.testing.assert_array_equal(_run_view(x, np.uint32), x.view(np.uint32))
    h = _special(np.float16)[:10].reshape(1, 10)
    np.testing.assert_array_equal(_run_view(h, ml_dtypes.bfloat16).view(np.uint16),
                                  h.view(np.uint16))


def test_view_of_an_hbm_tensor_says_load_first():
    @nki.jit
    def k(a):
        return a.view(nl.int32)
    with pytest.raises(nki.NotSupportedError, match="load it first"):
        k(np.zeros((4, 4), np.float32))
