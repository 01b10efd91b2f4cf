"""Checks real hardware would impose, as exceptions naming the kernel's file:line."""
import inspect

import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

HERE = __file__


def line_of(fn, text):
    src, start = inspect.getsourcelines(fn)
    for i, l in enumerate(src):
        if text in l:
            return start + i
    raise AssertionError(text)


def expect(exc, fn, marker, *args):
    with pytest.raises(exc) as ei:
        fn(*args)
    line = line_of(fn.fn if hasattr(fn, "fn") else fn, marker)
    assert f"{HERE}:{line}" in str(ei.value), str(ei.value)
    assert ei.value.file == HERE and ei.value.line == line
    return ei.value


X = np.zeros((256, 512), np.float32)


@nki.jit
def too_many_partitions(x):
    t = nl.load(x)  # MARK
    return t


def test_partition_dim_over_128():
    e = expect(nki.VerifyError, too_many_partitions, "# MARK", X)
    assert "128" in str(e)


@nki.jit
def psum_too_wide(x):
    out = nl.ndarray((128, 1024), dtype=nl.float32, buffer=nl.shared_hbm)
    a = nl.load(x[0:128, 0:128])
    b = nl.ndarray((128, 1024), dtype=nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=b[:, 0:512], src=x[0:128, :])
    nisa.dma_copy(dst=b[:, 512:1024], src=x[128:256, :])
    r = nisa.nc_matmul(a, b)  # MARK
    return out


def test_free_size_over_psum_bank():
    expect(nki.VerifyError, psum_too_wide, "# MARK", X)


@nki.jit
def matmul_mismatch(x):
    a = nl.load(x[0:128, 0:64])
    b = nl.load(x[0:64, 0:512])
    r = nl.matmul(a, b, transpose_x=True)  # MARK
    return r


def test_matmul_shapes():
    expect(nki.VerifyError, matmul_mismatch, "# MARK", X)


@nki.jit
def matmul_from_psum(x):
    a = nl.zeros((128, 128), dtype=nl.float32, buffer=nl.psum)
    b = nl.load(x[0:128, :])
    r = nisa.nc_matmul(a, b)  # MARK
    return r


def test_buffer_rule_matmul_reads_sbuf():
    expect(nki.VerifyError, matmul_from_psum, "# MARK", X)


@nki.jit
def sbuf_overflow(x):
    tiles = []
    for i in range(64):
        tiles.append(nl.ndarray((128, 8192), dtype=nl.float32, buffer=nl.sbuf))  # MARK
    return x


def test_sbuf_capacity():
    expect(nki.CapacityError, sbuf_overflow, "# MARK", X)


@nki.jit
def psum_overflow(x):
    tiles = []
    for i in range(9):
        tiles.append(nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.psum))  # MARK
    return x


def test_psum_capacity():
    expect(nki.CapacityError, psum_overflow, "# MARK", X)


@nki.jit
def read_uninitialized(x):
    out = nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.shared_hbm)
    t = nl.ndarray((128, 512), dtype=nl.float32, buffer=nl.sbuf)
    u = t + 1.0  # MARK
    nl.store(out, value=u)
    return out


def test_uninitialized_read():
    expect(nki.UninitializedReadError, read_uninitialized, "# MARK", X)


@nki.jit
def bad_dtype_transpose(x):
    t = nl.load(x[0:128, 0:128], dtype=nl.float8_e4m3)
    out = nl.ndarray((128, 128), dtype=nl.float8_e4m3, buffer=nl.sbuf)
    nisa.dma_transpose(dst=out, src=t)  # MARK
    return out


def test_dtype_rule():
    expect(nki.VerifyError, bad_dtype_transpose, "# MARK", X)


def test_unsupported_names_raise_not_implemented():
    with pytest.raises(NotImplementedError, match="not supported by trnsim"):
        nl.sort(None)
    with pytest.raises(NotImplementedError, match="not supported by trnsim"):
        nisa.register_load(None, None)  # (sendrecv, nc_n_gather and topk work now)
    with pytest.raises(AttributeError):
        nl.no_such_function_at_all


def test_calls_outside_a_kernel():
    with pytest.raises(nki.NkiError, match="running kernel"):
        nl.zeros((128, 1), dtype=nl.float32)
