"""Names public NKI kernels use (issue 12): nl.static_cast, broadcast_to, nl.loop_reduce,
nl.spmd_dim / nl.nc launch grids, mask= predicates, nki.compiler, nki.tensor annotations.
Values against numpy; errors name the kernel's file:line."""
import inspect

import ml_dtypes
import numpy as np
import pytest

from trnsim import nki
from trnsim.nki import _context
from trnsim.nki import compiler as ncc
from trnsim.nki import isa as nisa
from trnsim.nki import language as nl

HERE = __file__
RNG = np.random.default_rng(12)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def line_of(fn, text):
    src, start = inspect.getsourcelines(fn)
    for i, l in enumerate(src):
        if text in l:
            return start + i
    raise AssertionError(text)


def expect(exc, kernel, marker, *args):
    with pytest.raises(exc) as ei:
        kernel(*args)
    line = line_of(kernel.fn if hasattr(kernel, "fn") else kernel, marker)
    assert f"{HERE}:{line}" in str(ei.value), str(ei.value)
    return ei.value


# ---- nl.static_cast, tensor.astype ----------------------------------------------------------

@nki.jit
def cast_kernel(a):
    out = nl.ndarray(a.shape, nl.bfloat16, buffer=nl.shared_hbm)
    s = nl.static_cast(2.7, nl.int32)          # scalars: C's static_cast (truncates)
    assert s == 2 and isinstance(s, np.int32)
    assert nl.static_cast(-1.5, np.int32) == -1
    assert nl.static_cast(3, nl.float32) == np.float32(3.0)
    x = nl.load(a)
    y = nl.static_cast(x, nl.bfloat16)          # tiles: a converting copy
    z = x.astype(nl.bfloat16)
    nl.store(out, nl.add(y, z, dtype=nl.bfloat16))
    return out


def test_static_cast_and_astype():
    a = rand(128, 64)
    bf = a.astype(ml_dtypes.bfloat16)
    r = cast_kernel(a)
    assert r.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(r, (bf.astype(np.float32) * 2).astype(ml_dtypes.bfloat16))


# ---- broadcast_to ----------------------------------------------------------------------------

@nki.jit
def bcast_kernel(a, v):
    out = nl.ndarray((128, 64), nl.float32, buffer=nl.shared_hbm)
    row = nl.load(v)                                # [1, 64] on one partition
    full = row.broadcast_to((128, 64))              # repeated on 128 partitions
    col = nl.load(a[:, 0:1])                        # [128, 1]
    wide = nl.broadcast_to(col, shape=(128, 64))    # repeated along the free axis (a view)
    h = nl.load(v.broadcast_to((128, 64)))          # HBM view with stride 0
    same = nl.broadcast_to(full, shape=(128, 64))
    assert same is full
    nl.store(out, full + wide + h)
    return out


def test_broadcast_to():
    a, v = rand(128, 64), rand(1, 64)
    np.testing.assert_array_equal(bcast_kernel(a, v), (v + a[:, :1]) + v)


@nki.jit
def bad_broadcast(a):
    x = nl.load(a)
    return nl.broadcast_to(x, shape=(128, 32))  # MARK


def test_broadcast_to_bad_shape_names_line():
    expect(nki.NkiError, bad_broadcast, "# MARK", rand(128, 64))


# ---- nl.loop_reduce ----------------------------------------------------------------------------

@nki.jit
def loop_reduce_kernel(a):
    out = nl.ndarray((128, 64), nl.float32, buffer=nl.shared_hbm)
    acc = nl.zeros((128, 64), dtype=nl.float32)
    for k in nl.affine_range(a.shape[0] // 128):
        x = nl.load(a[k * 128:(k + 1) * 128, :])
        acc = nl.loop_reduce(x, op=np.add, loop_indices=[k], dtype=nl.float32)
    m = None
    for k in nl.affine_range(a.shape[0] // 128):
        x = nl.load(a[k * 128:(k + 1) * 128, :])
        m = nl.loop_reduce(x, op=nl.maximum, loop_indices=[k])
    nl.store(out, acc + m)
    return out


def test_loop_reduce():
    a = rand(512, 64)
    t = a.reshape(4, 128, 64)
    np.testing.assert_allclose(loop_reduce_kernel(a), t.sum(0) + t.max(0), rtol=1e-5, atol=1e-5)


# ---- nl.spmd_dim / nl.nc: programs per NeuronCore, one shared HBM ------------------------------

SEEN = []


@nki.jit
def spmd_kernel(a):
    b = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
    i, j = nl.program_id(0), nl.program_id(1)
    SEEN.append((i, j, id(_context.ctx())))
    assert nl.num_programs(0) == a.shape[0] and nl.program_ndim() == 2
    t = nl.load(a[i, j])
    nl.store(b[i, j], t * float(10 * i + j + 1))
    return b


def _cores():
    """Grid points per program (one program per NeuronCore), in program order."""
    order = []
    for i, j, c in SEEN:
        if c not in order:
            order.append(c)
    return [[(i, j) for i, j, c in SEEN if c == o] for o in order]


@pytest.mark.parametrize("grid,cores", [
    ((4, 2), [[(i, j) for i in range(4) for j in range(2)]]),
    ((nl.spmd_dim(nl.nc(2), 2), 2), [[(0, 0), (0, 1), (1, 0), (1, 1)],
                                     [(2, 0), (2, 1), (3, 0), (3, 1)]]),
    ((nl.spmd_dim(2, nl.nc(2)), 2), [[(0, 0), (0, 1), (2, 0), (2, 1)],
                                     [(1, 0), (1, 1), (3, 0), (3, 1)]]),
    ((nl.nc(4), 2), [[(i, 0), (i, 1)] for i in range(4)]),
])
def test_spmd_dim_grids(grid, cores):
    a = rand(4, 2, 128, 32)
    scale = (10 * np.arange(4)[:, None] + np.arange(2)[None, :] + 1).astype(np.float32)
    SEEN.clear()
    b = spmd_kernel[grid](a)
    np.testing.assert_array_equal(b, a * scale[:, :, None, None])
    assert _cores() == cores
    assert len(nki.last_run().programs) == len(cores)


def test_nc_grid_beyond_chip_is_an_error():
    with pytest.raises(nki.errors.NkiValueError, match="asks for 4 NeuronCores"):
        spmd_kernel[nl.nc(4), 2](rand(4, 2, 128, 32), platform_target="trn1")


# ---- mask= ------------------------------------------------------------------------------------

@nki.jit
def mask_kernel(a):
    n, m = a.shape
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    i_p = nl.arange(128)[:, None]
    i_f = nl.arange(m)[None, :]
    for t in nl.affine_range((n + 127) // 128):
        rows = t * 128 + i_p < n
        x = nl.load(a[t * 128 + i_p, i_f], mask=rows)
        y = nl.exp(x, mask=rows)
        z = nl.multiply(y, 2.0, mask=rows)
        s = nl.sum(z, axis=1, keepdims=True, mask=rows)
        w = nisa.tensor_scalar(z, np.add, s, mask=rows)
        nl.store(out[t * 128 + i_p, i_f], value=w, mask=rows)
    return out


def test_mask_partial_last_tile():
    a = rand(300, 64)
    e = 2 * np.exp(a)
    np.testing.assert_allclose(mask_kernel(a), e + e.sum(1, keepdims=True), rtol=1e-5)


@nki.jit
def mask_box_kernel(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    i_p, i_f = nl.mgrid[0:128, 0:64]
    x = nl.load(a)
    nl.store(out, value=nl.zeros((128, 64), dtype=nl.float32))
    nl.store(out[i_p, i_f], value=x, mask=(i_p >= 8) & (i_p < 100) & (i_f < 48))
    return out


def test_mask_box_on_two_axes():
    a = rand(128, 64)
    ref = np.zeros_like(a)
    ref[8:100, :48] = a[8:100, :48]
    np.testing.assert_array_equal(mask_box_kernel(a), ref)


@nki.jit
def mask_two_axes_in_one(a):
    i_p, i_f = nl.mgrid[0:128, 0:64]
    x = nl.load(a[i_p, i_f], mask=(i_p + i_f < 64))  # MARK
    return x


def test_mask_over_two_axes_names_line():
    e = expect(nki.NotSupportedError, mask_two_axes_in_one, "# MARK", rand(128, 64))
    assert "affine_select" in str(e)


# ---- nki.compiler ------------------------------------------------------------------------------

@ncc.enable_stack_allocator
@ncc.skip_middle_end_transformations
@nki.jit
def direct_alloc(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    buf = nl.ndarray((4, nl.par_dim(128), 512), dtype=nl.float32,
                     buffer=ncc.sbuf.mod_alloc(base_addr=0, num_free_tiles=(2,)))
    ps = nl.ndarray((2, nl.par_dim(128), 512), dtype=nl.float32,
                    buffer=ncc.psum.mod_alloc(base_bank=0, num_bank_tiles=(2,)))
    fixed = nl.ndarray((nl.par_dim(128), 512), dtype=nl.float32,
                       buffer=ncc.sbuf.alloc(lambda idx, p, f: (0, 16384)))
    for i in nl.affine_range(4):
        buf[i] = nl.load(a[:, i * 512:(i + 1) * 512])
        ps[i % 2] = nl.copy(buf[i])
        fixed[...] = nl.exp(ps[i % 2])
        nl.store(out[:, i * 512:(i + 1) * 512], value=fixed)
    return out


def test_compiler_decorators_and_direct_allocation():
    a = rand(128, 2048)
    np.testing.assert_allclose(direct_alloc(a), np.exp(a), rtol=1e-6)
    assert ncc.sbuf.auto_alloc() is nl.sbuf and ncc.psum.auto_alloc() is nl.psum
    assert ncc.force_auto_alloc(direct_alloc) is direct_alloc


@nki.jit
def sbuf_past_capacity(a):
    top = nl.tile_size.total_available_sbuf_size
    buf = ncc.sbuf.mod_alloc(base_addr=top - 2048, num_free_tiles=(2,))
    t = nl.ndarray((2, nl.par_dim(128), 512), dtype=nl.float32, buffer=buf)  # MARK
    return t


@nki.jit
def psum_bad_bank(a):
    buf = ncc.psum.mod_alloc(base_bank=6, num_bank_tiles=(4,))
    t = nl.ndarray((4, nl.par_dim(128), 512), dtype=nl.float32, buffer=buf)  # MARK
    return t


@nki.jit
def sbuf_bad_start(a):
    buf = ncc.sbuf.alloc(lambda idx, p, f: (32, 0))
    t = nl.ndarray((nl.par_dim(128), 64), dtype=nl.float32, buffer=buf)  # MARK
    return t


def test_direct_allocation_errors_name_line():
    e = expect(nki.CapacityError, sbuf_past_capacity, "# MARK", rand(1, 1))
    assert "(1,)" in str(e) and "SBUF partition" in str(e)
    e = expect(nki.CapacityError, psum_bad_bank, "# MARK", rand(1, 1))
    assert "bank 8" in str(e)
    expect(nki.VerifyError, sbuf_bad_start, "# MARK", rand(1, 1))


def test_implicit_capacity_error_for_placed_tensor():
    @nki.jit
    def too_big(a):
        buf = ncc.sbuf.mod_alloc(base_addr=0, num_free_tiles=(2,))
        t = nl.ndarray((64, nl.par_dim(128), 1024), dtype=nl.float32, buffer=buf)  # MARK
        return t
    expect(nki.CapacityError, too_big, "# MARK", rand(1, 1))


# ---- nki.tensor as an annotation -----------------------------------------------------------------

@nki.jit
def annotated(a: nki.tensor, b: nki.tensor[(128, 64), nl.float32]) -> nki.tensor:
    assert isinstance(a, nki.tensor)
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    x = nl.load(a).assert_shape((128, 64))
    assert x.itemsize == 4 and x.ndim == 2
    nl.store(out, x + nl.load(b))
    return out


def test_tensor_annotation_and_methods():
    a, b = rand(128, 64), rand(128, 64)
    np.testing.assert_array_equal(annotated(a, b), a + b)


def test_compat_aliases_resolve_compiler():
    nki.install_import_aliases()
    import neuronxcc.nki.compiler as c1  # noqa: E402
    import nki.compiler as c2  # noqa: E402
    assert c1 is ncc and c2 is ncc


# ---- nl.while_loop -----------------------------------------------------------------------------

@nki.jit
def while_kernel(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    n, t = nl.while_loop(lambda v: v[0] < 3, lambda v: (v[0] + 1, v[1] * 2.0), (0, nl.load(a)))
    nl.store(out, t)
    return out


@nki.jit
def while_tile_condition(a):
    x = nl.load(a)
    return nl.while_loop(lambda v: v > 0.0, lambda v: v - 1.0, x)  # MARK


def test_while_loop():
    a = rand(128, 16)
    np.testing.assert_array_equal(while_kernel(a), a * 8)
    expect(nki.NotSupportedError, while_tile_condition, "# MARK", a)


# ---- the multi-core example runs unmodified, with no RuntimeWarning -----------------------------

def test_spmd_multicore_example():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-m", "trnsim.nki.compat",
                        os.path.join(root, "examples", "nki", "spmd_multicore.py")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "matches numpy" in r.stdout and "2 NeuronCore programs" in r.stdout
    assert "RuntimeWarning" not in r.stderr, r.stderr


def test_summary_counts_instructions_without_a_trace():
    @nki.jit
    def k(a):
        o = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nl.store(o, nl.exp(nl.load(a)))
        return o
    k(rand(128, 64))
    rows = [l.split() for l in nki.last_run().summary_text().splitlines()]
    engines = {}
    for r in rows:
        if len(r) == 6 and r[0] == "0" and r[1] in ("scalar", "dma"):
            engines.setdefault(r[1], r)
    assert engines["scalar"][4] == "1" and engines["dma"][4] == "2", engines


# ---- indirect DMA (t[idx_tile, i_f]) and nl.gather_flattened -------------------------------------

@nki.jit
def indirect_kernel(data, idx):
    out = nl.ndarray((64, 512), data.dtype, buffer=nl.shared_hbm)
    scattered = nl.ndarray((128, 512), data.dtype, buffer=nl.shared_hbm)
    i_p = nl.arange(64)[:, None]
    i_f = nl.arange(512)[None, :]
    idx_tile = nl.load(idx[i_p])
    rows = nl.load(data[idx_tile[i_p, 0], i_f])       # gather rows idx[0..63]
    nl.store(out, rows)
    nl.store(scattered, nl.zeros((128, 512), nl.float32))
    even = nisa.iota(2 * nl.arange(64)[:, None], dtype=np.int32)
    nl.store(scattered[even, i_f], value=rows)         # scatter to rows 0, 2, 4, ...
    return out, scattered


def test_indirect_load_and_store():
    data = rand(128, 512)
    idx = RNG.permutation(128)[:64].astype(np.int32)
    out, scattered = indirect_kernel(data, idx)
    np.testing.assert_array_equal(out, data[idx])
    ref = np.zeros_like(data)
    ref[2 * np.arange(64)] = data[idx]
    np.testing.assert_array_equal(scattered, ref)


@nki.jit
def gather_kernel(d, i):
    o = nl.ndarray(i.shape, d.dtype, buffer=nl.shared_hbm)
    nl.store(o, nl.gather_flattened(nl.load(d), nl.load(i)))
    return o


def test_gather_flattened():
    d = rand(128, 4, 8)
    i = RNG.integers(0, 32, (128, 2, 5)).astype(np.uint32)
    ref = np.take_along_axis(d.reshape(128, -1), i.reshape(128, -1).astype(np.int64),
                             axis=-1).reshape(i.shape)
    np.testing.assert_array_equal(gather_kernel(d, i), ref)


@nki.jit
def atomic_kernel(table, idx, val):
    m, f = val.shape
    i_p = nl.arange(m)[:, None]
    i_f = nl.arange(f)[None, :]
    rows = nl.load(idx[i_p])
    nl.atomic_rmw(table[rows[i_p, 0], i_f], value=nl.load(val), op=np.add)
    nl.atomic_rmw(table[0:1, :], value=1.0, op=np.add)
    return table


def test_atomic_rmw_accumulates_repeated_rows():
    table = rand(16, 8)
    idx = np.array([1, 3, 1, 5, 3, 1], np.int32)
    val = rand(6, 8)
    ref = table.copy()
    for r, i in enumerate(idx):
        ref[i] = ref[i] + val[r]
    ref[0] += 1.0
    np.testing.assert_array_equal(atomic_kernel(table.copy(), idx, val), ref)
