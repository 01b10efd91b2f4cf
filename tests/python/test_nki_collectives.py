"""nki.collectives on simulated multi-chip runs, checked against numpy.

References are computed here, independently of the simulator: reductions accumulate in fp32 in
rank order (the order the cluster runtime promises, docs/nki.md) and are rounded once to the
destination dtype with ml_dtypes (round to nearest even), so fp32 and bf16 results compare
bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import trnsim.nki as nki
import trnsim.nki.collectives as ncc
import trnsim.nki.language as nl

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = ml_dtypes.bfloat16

try:
    from trnsim._trnsim import fabric as _cfab
    HAVE_CLUSTER = hasattr(_cfab, "Cluster")
except ImportError:  # pragma: no cover
    HAVE_CLUSTER = False

needs_cluster = pytest.mark.skipif(not HAVE_CLUSTER,
                                   reason="trnsim._trnsim.fabric.Cluster is not built")
from trnsim._trnsim import sim as _csim  # noqa: E402

HAVE_BUILDER = hasattr(_csim.KernelBuilder, "all_reduce")
needs_builder = pytest.mark.skipif(not HAVE_BUILDER,
                                   reason="the kernel builder has no collective instructions")

SHAPE = (128, 32)


def _inputs(n, dtype, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32).astype(dtype) for _ in range(n)]


def _reduce(arrays, op, dtype):
    """fp32 accumulation in list order, one rounding to dtype at the end."""
    acc = arrays[0].astype(np.float32)
    for a in arrays[1:]:
        a = a.astype(np.float32)
        acc = acc + a if op == "add" else (np.maximum(acc, a) if op == "max" else np.minimum(acc, a))
    return acc.astype(dtype)


_OPS = {"add": nl.add, "max": nl.maximum, "min": nl.minimum}


# ---- kernels ---------------------------------------------------------------------------------


def k_all_reduce(x, op_name="add", groups=None):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup(groups), op=_OPS[op_name])
    return out


def k_all_gather(x, groups=None, n=1):
    out = nl.ndarray((x.shape[0] * n,) + tuple(x.shape[1:]), x.dtype, buffer=nl.shared_hbm)
    ncc.all_gather([x], [out], ncc.ReplicaGroup(groups), collective_dim=0)
    return out


def k_reduce_scatter(x, groups=None, n=1):
    out = nl.ndarray((x.shape[0] // n,) + tuple(x.shape[1:]), x.dtype, buffer=nl.shared_hbm)
    ncc.reduce_scatter([x], [out], ncc.ReplicaGroup(groups), collective_dim=0, op=nl.add)
    return out


def k_all_to_all(x, groups=None):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_to_all([x], [out], ncc.ReplicaGroup(groups), collective_dim=0)
    return out


def k_permute(x, pairs):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.zeros(x.shape, x.dtype))  # ranks nobody sends to read back zeros
    ncc.collective_permute([x], [out], source_target_pairs=pairs)
    return out


def k_permute_all(x, pairs):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.collective_permute([x], [out], source_target_pairs=pairs)
    return out


def k_ring_shift(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.collective_permute_implicit([[x]], [[out]], ncc.ReplicaGroup())
    return out


def k_rank_scaled(x):
    """out = x * (rank + 1), then all-reduced: sum_r (r + 1) x_r."""
    r = ncc.rank_id()
    t = nl.load(x)
    scaled = nl.multiply(t, float(r + 1))
    tmp = nl.ndarray(x.shape, x.dtype, buffer=nl.private_hbm)
    nl.store(tmp, scaled)
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([tmp], [out], ncc.ReplicaGroup(), op=nl.add)
    return out


def k_sbuf_all_reduce(x):
    t = nl.load(x)
    r = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    ncc.all_reduce([t], [r], ncc.ReplicaGroup(), op=nl.add)
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nl.store(out, r)
    return out


# ---- pure-Python parts (no cluster needed) ---------------------------------------------------


def test_replica_group_from_partition_op_matches_vendor_examples():
    # The three examples of the vendor's ReplicaGroup.from_partition_op docstring (8 ranks).
    rg = ncc.ReplicaGroup.from_partition_op
    assert rg(8, ncc.rg_partition_op.bitwise_and, 0).replica_groups == [list(range(8))]
    assert rg(8, ncc.rg_partition_op.div, 4).replica_groups == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert rg(8, ncc.rg_partition_op.mod, 4).replica_groups == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_replica_group_rejects_overlap_and_empty_lists():
    with pytest.raises(ValueError, match="appears twice"):
        ncc.ReplicaGroup([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="empty"):
        ncc.ReplicaGroup([[0, 1], []])
    with pytest.raises(TypeError, match="list of rank lists"):
        ncc.ReplicaGroup(3)


def test_collectives_outside_a_kernel_say_how_to_run_one():
    x = np.zeros(SHAPE, np.float32)
    with pytest.raises(RuntimeError, match="running kernel"):
        ncc.rank_id()
    with pytest.raises(RuntimeError, match="running kernel"):
        ncc.all_reduce([x], [x], ncc.ReplicaGroup(), op=nl.add)


def test_unsupported_names_raise_not_supported():
    with pytest.raises(NotImplementedError, match="all_to_all_v"):
        ncc.all_to_all_v()


# ---- runs ------------------------------------------------------------------------------------


@needs_cluster
@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_all_reduce_sum(n, dtype):
    xs = _inputs(n, dtype, seed=n)
    outs = nki.simulate_kernel(k_all_reduce, xs, num_ranks=n)
    assert len(outs) == n
    ref = _reduce(xs, "add", dtype)
    for r, o in enumerate(outs):
        assert o.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(o.view(np.uint8), ref.view(np.uint8), err_msg=f"rank {r}")


@needs_cluster
@pytest.mark.parametrize("op", ["max", "min"])
def test_all_reduce_max_min(op):
    n = 4
    xs = _inputs(n, BF16, seed=7)
    outs = nki.simulate_kernel(k_all_reduce, xs, op, num_ranks=n)
    ref = _reduce(xs, op, BF16)
    for o in outs:
        np.testing.assert_array_equal(o.astype(np.float32), ref.astype(np.float32))


@needs_cluster
@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_all_gather(n, dtype):
    xs = _inputs(n, dtype, shape=(16, 32), seed=n + 1)
    outs = nki.simulate_kernel(k_all_gather, xs, None, n, num_ranks=n)
    ref = np.concatenate(xs, axis=0)
    for o in outs:
        np.testing.assert_array_equal(o.astype(np.float32), ref.astype(np.float32))


@needs_cluster
@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_reduce_scatter(n, dtype):
    xs = _inputs(n, dtype, shape=(8 * n, 32), seed=n + 2)
    outs = nki.simulate_kernel(k_reduce_scatter, xs, None, n, num_ranks=n)
    full = _reduce(xs, "add", dtype)
    chunks = np.split(full, n, axis=0)
    for r, o in enumerate(outs):
        np.testing.assert_array_equal(o.astype(np.float32), chunks[r].astype(np.float32),
                                      err_msg=f"rank {r}")


@needs_cluster
@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_all_to_all(n, dtype):
    xs = _inputs(n, dtype, shape=(4 * n, 32), seed=n + 3)
    outs = nki.simulate_kernel(k_all_to_all, xs, None, num_ranks=n)
    # out_r = concat over sources s of chunk r of x_s
    for r, o in enumerate(outs):
        ref = np.concatenate([np.split(xs[s], n, axis=0)[r] for s in range(n)], axis=0)
        np.testing.assert_array_equal(o.astype(np.float32), ref.astype(np.float32),
                                      err_msg=f"rank {r}")


@needs_cluster
@pytest.mark.parametrize("n", [2, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_collective_permute_ring(n, dtype):
    xs = _inputs(n, dtype, shape=(16, 32), seed=n + 4)
    ring = [(r, (r + 1) % n) for r in range(n)]
    outs = nki.simulate_kernel(k_permute_all, xs, ring, num_ranks=n)
    for r, o in enumerate(outs):
        np.testing.assert_array_equal(o.astype(np.float32), xs[(r - 1) % n].astype(np.float32))


@needs_cluster
def test_collective_permute_swap_leaves_the_others():
    n = 4
    xs = _inputs(n, np.float32, shape=(16, 32), seed=n + 4)
    # Pairwise swap of 0<->1 only: the others receive nothing and keep their zeros.
    outs = nki.simulate_kernel(k_permute, xs, [(0, 1), (1, 0)], num_ranks=n)
    np.testing.assert_array_equal(outs[0], xs[1])
    np.testing.assert_array_equal(outs[1], xs[0])
    for o in outs[2:]:
        np.testing.assert_array_equal(o, np.zeros_like(o))


@needs_cluster
def test_collective_permute_implicit_is_a_ring_shift():
    n = 4
    xs = _inputs(n, BF16, shape=(16, 32), seed=11)
    outs = nki.simulate_kernel(k_ring_shift, xs, num_ranks=n)
    for r, o in enumerate(outs):
        np.testing.assert_array_equal(o.astype(np.float32), xs[(r - 1) % n].astype(np.float32))


@needs_cluster
@pytest.mark.parametrize("n", [2, 4])
def test_rank_id_traces_each_rank(n):
    xs = _inputs(n, np.float32, seed=12)
    outs = nki.simulate_kernel(k_rank_scaled, xs, num_ranks=n)
    ref = _reduce([x * np.float32(r + 1) for r, x in enumerate(xs)], "add", np.float32)
    np.testing.assert_allclose(outs[0], ref, rtol=1e-6, atol=1e-6)
    run = nki.last_run()
    assert len(run.programs) == n  # one program per rank: the kernel asked for its rank


@needs_cluster
def test_rank_independent_kernel_is_traced_once():
    n = 8
    xs = _inputs(n, np.float32, seed=13)
    nki.simulate_kernel(k_all_reduce, xs, num_ranks=n)
    run = nki.last_run()
    assert len({id(p) for p in run.programs}) == 1


@needs_cluster
@pytest.mark.parametrize("how,groups", [
    ("div", [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("mod", [[0, 4], [1, 5], [2, 6], [3, 7]]),
    ("explicit", [[0, 3, 5, 6], [1, 2, 4, 7]]),
])
def test_replica_groups_reduce_within_each_list(how, groups):
    n = 8
    xs = _inputs(n, np.float32, seed=14)
    if how == "div":
        rg = ncc.ReplicaGroup.from_partition_op(n, ncc.rg_partition_op.div, 4)
    elif how == "mod":
        rg = ncc.ReplicaGroup.from_partition_op(n, ncc.rg_partition_op.mod, 4)
    else:
        rg = ncc.ReplicaGroup(groups)
    assert rg.replica_groups == groups
    outs = nki.simulate_kernel(k_all_reduce, xs, "add", rg.replica_groups, num_ranks=n)
    for g in groups:
        ref = _reduce([xs[r] for r in g], "add", np.float32)
        for r in g:
            np.testing.assert_array_equal(outs[r], ref, err_msg=f"rank {r} of {g}")


@needs_cluster
def test_all_gather_in_groups_follows_list_order():
    n = 8
    groups = [[3, 1], [0, 2], [7, 6], [5, 4]]
    xs = _inputs(n, np.float32, shape=(8, 32), seed=15)
    outs = nki.simulate_kernel(k_all_gather, xs, groups, 2, num_ranks=n)
    for g in groups:
        ref = np.concatenate([xs[r] for r in g], axis=0)
        for r in g:
            np.testing.assert_array_equal(outs[r], ref)


@needs_cluster
def test_simulate_multichip_and_run_info():
    n = 4
    xs = _inputs(n, np.float32, seed=16)
    outs = nki.simulate_multichip(k_all_reduce, [(x,) for x in xs])
    np.testing.assert_array_equal(outs[2], _reduce(xs, "add", np.float32))
    run = nki.last_run()
    assert run.num_ranks == n
    assert run.simulated_ns > 0
    assert len(run.collectives) >= 1
    c = run.collectives[0]
    assert c["op"] == "all_reduce"


@needs_cluster
def test_same_array_for_every_rank():
    # One array (not a list) is every rank's input: the sum is n * x.
    n = 4
    x = _inputs(1, np.float32, seed=17)[0]
    outs = nki.simulate_kernel(k_all_reduce, x, num_ranks=n)
    np.testing.assert_array_equal(outs[3], _reduce([x] * n, "add", np.float32))


@needs_builder
def test_single_rank_launch_runs_collectives_as_one_rank():
    x = _inputs(1, np.float32, seed=18)[0]
    out = nki.jit(k_all_reduce)(x)
    np.testing.assert_array_equal(out, x)


@needs_cluster
def test_sbuf_all_reduce():
    n = 4
    xs = _inputs(n, np.float32, seed=19)
    outs = nki.simulate_kernel(k_sbuf_all_reduce, xs, num_ranks=n)
    np.testing.assert_array_equal(outs[1], _reduce(xs, "add", np.float32))


@needs_cluster
def test_all_reduce_64_ranks():
    n = 64
    xs = _inputs(n, BF16, shape=(32, 16), seed=20)
    outs = nki.simulate_kernel(k_all_reduce, xs, num_ranks=n)
    ref = _reduce(xs, "add", BF16)
    for r in (0, 17, 63):
        np.testing.assert_array_equal(outs[r].astype(np.float32), ref.astype(np.float32))


# ---- errors name the kernel line -------------------------------------------------------------


def _line_of(fn, text):
    import inspect
    src, start = inspect.getsourcelines(fn)
    for i, line in enumerate(src):
        if text in line:
            return start + i
    raise AssertionError(text)


def k_bad_gather_shape(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_gather([x], [out], ncc.ReplicaGroup(), collective_dim=0)  # BAD-GATHER
    return out


def k_rank_outside(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup([[0, 1]]), op=nl.add)  # BAD-GROUP
    return out


def k_bad_op(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup(), op=nl.multiply)  # BAD-OP
    return out


def k_bad_pairs(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.collective_permute([x], [out], source_target_pairs=[(0, 9)])  # BAD-PAIR
    return out


@pytest.mark.parametrize("kernel,mark,match,cls", [
    (k_bad_gather_shape, "BAD-GATHER", "must hold 4 sources", ValueError),
    pytest.param(k_rank_outside, "BAD-GROUP", "rank 2 is in no list", ValueError,
                 marks=needs_builder),  # ranks 0 and 1 emit before rank 2 fails
    (k_bad_op, "BAD-OP", "op must be nl.add", ValueError),
    (k_bad_pairs, "BAD-PAIR", "names rank 9", ValueError),
])
def test_errors_name_the_kernel_line(kernel, mark, match, cls):
    # These are caught while tracing, before anything runs: no cluster needed.
    xs = _inputs(4, np.float32, shape=(16, 32))
    with pytest.raises(cls, match=match) as e:
        nki.simulate_kernel(kernel, xs, num_ranks=4)
    assert e.value.line == _line_of(kernel, mark)
    assert e.value.file.endswith("test_nki_collectives.py")
    assert f"test_nki_collectives.py:{e.value.line}:" in str(e.value)


def test_group_naming_a_rank_beyond_the_run():
    xs = _inputs(2, np.float32, shape=(16, 32))
    with pytest.raises(ValueError, match="names rank 2, but the run has 2 rank"):
        nki.simulate_kernel(k_all_reduce, xs, "add", [[0, 1, 2, 3]], num_ranks=2)


def test_per_rank_list_must_match_num_ranks():
    xs = _inputs(3, np.float32, shape=(16, 32))
    with pytest.raises(ValueError, match="holds 3 arrays but num_ranks=4"):
        nki.simulate_kernel(k_all_reduce, xs, num_ranks=4)


# ---- nisa.sendrecv / core_barrier, implicit permutes, deadlocks ------------------------------


def k_sendrecv_pairs(x):
    """Ranks 2k and 2k+1 swap their inputs with nisa.sendrecv."""
    import trnsim.nki.isa as nisa
    r = ncc.rank_id()
    peer = r ^ 1
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nisa.sendrecv(src=x, dst=out, send_to_rank=peer, recv_from_rank=peer, pipe_id=0)
    nisa.core_barrier(out, cores=list(range(ncc.num_ranks())))
    return out


@needs_cluster
def test_sendrecv_swaps_pairs_and_barrier_runs():
    n = 4
    xs = _inputs(n, BF16, shape=(16, 32), seed=21)
    outs = nki.simulate_kernel(k_sendrecv_pairs, xs, num_ranks=n)
    for r in range(n):
        np.testing.assert_array_equal(outs[r].astype(np.float32), xs[r ^ 1].astype(np.float32))
    ops = [c["op"] for c in nki.last_run().collectives]
    assert "barrier" in ops
    assert any("send" in o for o in ops)


def k_ring_reduce(a, b):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    ncc.collective_permute_implicit_reduce([[a]], [[b]], [[out]], ncc.ReplicaGroup(), op=nl.add)
    src = ncc.collective_permute_implicit_current_processing_rank_id(1, ncc.ReplicaGroup())
    marker = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
    nl.store(marker, nl.full((1, 1), float(src), nl.float32))
    return out, marker


@needs_cluster
def test_collective_permute_implicit_reduce():
    n = 4
    a = _inputs(n, np.float32, shape=(16, 32), seed=22)
    b = _inputs(n, np.float32, shape=(16, 32), seed=23)
    outs = nki.simulate_kernel(k_ring_reduce, a, b, num_ranks=n)
    for r in range(n):
        p = (r - 1) % n
        np.testing.assert_array_equal(outs[r][0], a[p] + b[p])
        assert outs[r][1][0, 0] == p  # after one shift rank r holds rank r-1's data


def k_mismatched(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    if ncc.rank_id() == 0:
        ncc.all_reduce([x], [out], ncc.ReplicaGroup(), op=nl.add)  # RANK0-REDUCE
    else:
        ncc.all_gather([x], [out], ncc.ReplicaGroup([[1], [0]]), collective_dim=0)
    return out


@needs_cluster
def test_ranks_calling_different_collectives_is_an_error_not_a_hang():
    xs = _inputs(2, np.float32, shape=(16, 32))
    with pytest.raises(nki.NkiError) as e:
        nki.simulate_kernel(k_mismatched, xs, num_ranks=2)
    msg = str(e.value)
    assert "rank 0" in msg and "rank 1" in msg
    # Placed at the line where rank 0 waits.
    assert e.value.file.endswith("test_nki_collectives.py")
    assert e.value.line == _line_of(k_mismatched, "RANK0-REDUCE")


def k_unequal_groups(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup([[0, 1, 2], [3]]), op=nl.add)  # UNEQUAL
    return out


@needs_builder
def test_unequal_rank_lists_are_a_verify_error_at_the_kernel_line():
    xs = _inputs(4, np.float32, shape=(16, 32))
    with pytest.raises(nki.VerifyError, match="same size") as e:
        nki.simulate_kernel(k_unequal_groups, xs, num_ranks=4)
    assert e.value.line == _line_of(k_unequal_groups, "UNEQUAL")


@needs_cluster
def test_multichip_trace_and_report(tmp_path):
    import json
    n = 2
    xs = _inputs(n, np.float32, seed=24)
    trace = tmp_path / "t.json"
    report = tmp_path / "r.json"
    nki.simulate_kernel(k_all_reduce, xs, num_ranks=n, trace=str(trace), report=str(report))
    events = json.loads(trace.read_text())
    evs = events["traceEvents"] if isinstance(events, dict) else events
    assert any("rank 1" in json.dumps(e) for e in evs)
    rep = json.loads(report.read_text())
    assert rep["collectives"][0]["op"] == "all_reduce"
    assert rep["collectives"][0]["ranks"] == [0, 1]
    assert rep["simulated_ns"] >= rep["collectives"][0]["end_ns"] > 0


@needs_cluster
@pytest.mark.parametrize("system,n", [(None, 8), ("trn2-ultraserver", 4)])
def test_collective_time_is_what_the_fabric_model_says(system, n):
    """A collective lasts what fabric.CollectiveModel gives for the run's system
    (fabric/cluster.h): here the same question asked of fabric.estimate directly, with the
    cluster's documented mapping (one rank per chip: a rank-list of n chips is a group of n
    model ranks spaced ranks_per_chip apart, on the whole nodes that hold the chips)."""
    from trnsim._trnsim import fabric
    xs = _inputs(n, np.float32, shape=(128, 256), seed=25)
    nki.simulate_kernel(k_all_reduce, xs, num_ranks=n, system=system)
    run = nki.last_run()
    sysname = run.result["system"]
    if system is not None:
        assert sysname == system
    cfg = fabric.load_system(sysname)
    per_node = cfg["chips_per_node"]
    model_chips = -(-n // per_node) * per_node
    c = run.collectives[0]
    assert c["bytes"] == 128 * 256 * 4
    want = fabric.estimate(sysname, "all_reduce", c["bytes"], chips=model_chips, group_size=n,
                           group_stride=cfg["accel"]["ranks_per_chip"], concurrent_groups=False)
    assert c["end_ns"] - c["start_ns"] == pytest.approx(want["time_s"] * 1e9, rel=1e-9)
    assert c["algorithm"] == want["algorithm"]
    assert run.simulated_ns >= c["end_ns"]


def k_sbuf_all_gather(x, n):
    t = nl.load(x)
    g = nl.ndarray((x.shape[0] * n, x.shape[1]), x.dtype, buffer=nl.sbuf)
    ncc.all_gather([t], [g], ncc.ReplicaGroup(), collective_dim=0)
    out = nl.ndarray(g.shape, x.dtype, buffer=nl.shared_hbm)
    nl.store(out, g)
    return out


@needs_cluster
def test_sbuf_all_gather_along_partitions():
    n = 4
    xs = _inputs(n, BF16, shape=(16, 32), seed=26)
    outs = nki.simulate_kernel(k_sbuf_all_gather, xs, n, num_ranks=n)
    ref = np.concatenate(xs, axis=0).astype(np.float32)
    for o in outs:
        np.testing.assert_array_equal(o.astype(np.float32), ref)


@needs_cluster
def test_reduce_scatter_and_all_to_all_in_groups():
    n = 8
    mod = ncc.ReplicaGroup.from_partition_op(n, ncc.rg_partition_op.mod, 4).replica_groups
    xs = _inputs(n, np.float32, shape=(8, 32), seed=27)
    outs = nki.simulate_kernel(k_reduce_scatter, xs, mod, 2, num_ranks=n)
    for g in mod:  # [[0, 4], [1, 5], ...]: position k keeps chunk k of the list's sum
        full = _reduce([xs[r] for r in g], "add", np.float32)
        for k, r in enumerate(g):
            np.testing.assert_array_equal(outs[r], np.split(full, 2, axis=0)[k])
    div = ncc.ReplicaGroup.from_partition_op(n, ncc.rg_partition_op.div, 4).replica_groups
    outs = nki.simulate_kernel(k_all_to_all, xs, div, num_ranks=n)
    for g in div:
        for k, r in enumerate(g):
            ref = np.concatenate([np.split(xs[s], 4, axis=0)[k] for s in g], axis=0)
            np.testing.assert_array_equal(outs[r], ref)


@needs_cluster
@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["fp32", "bf16"])
def test_every_collective_on_64_ranks(dtype):
    n = 64
    xs = _inputs(n, dtype, shape=(n, 8), seed=28)
    outs = nki.simulate_kernel(k_all_reduce, xs, num_ranks=n)
    ref = _reduce(xs, "add", dtype).astype(np.float32)
    assert all(np.array_equal(o.astype(np.float32), ref) for o in outs)
    outs = nki.simulate_kernel(k_all_gather, [x[:1] for x in xs], None, n, num_ranks=n)
    ref = np.concatenate([x[:1] for x in xs], axis=0).astype(np.float32)
    assert all(np.array_equal(o.astype(np.float32), ref) for o in outs)
    outs = nki.simulate_kernel(k_reduce_scatter, xs, None, n, num_ranks=n)
    full = _reduce(xs, "add", dtype).astype(np.float32)
    for r in (0, 31, 63):
        np.testing.assert_array_equal(outs[r].astype(np.float32), full[r:r + 1])
    outs = nki.simulate_kernel(k_all_to_all, xs, None, num_ranks=n)
    for r in (0, 31, 63):
        ref = np.stack([xs[s][r] for s in range(n)]).astype(np.float32)
        np.testing.assert_array_equal(outs[r].astype(np.float32), ref)
    ring = [(r, (r + 1) % n) for r in range(n)]
    outs = nki.simulate_kernel(k_permute_all, xs, ring, num_ranks=n)
    for r in (0, 31, 63):
        np.testing.assert_array_equal(outs[r].astype(np.float32), xs[(r - 1) % n].astype(np.float32))


UNMODIFIED_SCRIPT = '''
import numpy as np
import neuronxcc.nki as nki
import neuronxcc.nki.language as nl
import nki.collectives as ncc

@nki.jit
def kernel(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([x], [out], ncc.ReplicaGroup([[0, 1, 2, 3]]), op=nl.add)
    return out

xs = [np.full((8, 16), r + 1, np.float32) for r in range(4)]
outs = kernel(xs, num_ranks=4)
print("SUM", float(outs[3][0, 0]))
'''


@needs_cluster
def test_unmodified_nki_script_with_collectives_runs_through_compat(tmp_path):
    import subprocess
    import sys
    script = tmp_path / "k.py"
    script.write_text(UNMODIFIED_SCRIPT)
    p = subprocess.run([sys.executable, "-m", "trnsim.nki.compat", str(script)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "SUM 10.0" in p.stdout  # 1 + 2 + 3 + 4


@needs_cluster
def test_text_report_lists_ranks_and_collectives(tmp_path):
    n = 2
    report = tmp_path / "r.txt"
    nki.simulate_kernel(k_rank_scaled, _inputs(n, np.float32, seed=29), num_ranks=n,
                        report=str(report))
    text = report.read_text()
    run = nki.last_run()
    assert f"{n} x trn2" in text
    assert "all_reduce" in text
    # One row per rank with its instruction count.
    for r, rr in enumerate(run.result["ranks"]):
        assert any(line.split()[:1] == [str(r)] and line.split()[-1] == str(rr["instructions"])
                   for line in text.splitlines())


@needs_cluster
def test_timing_only_gives_the_same_times():
    n = 4
    xs = _inputs(n, np.float32, seed=30)
    nki.simulate_kernel(k_rank_scaled, xs, num_ranks=n)
    full = nki.last_run()
    outs = nki.simulate_multichip(k_rank_scaled, [(x,) for x in xs], timing_only=True)
    fast = nki.last_run()
    assert outs == [None] * n
    assert fast.simulated_ns == full.simulated_ns
    assert [c["end_ns"] for c in fast.collectives] == [c["end_ns"] for c in full.collectives]


def k_grid_then_reduce(x, out):
    """Old-style output argument; each grid point copies its half, then one all-reduce."""
    i = nl.program_id(0)
    h = x.shape[0] // 2
    tmp = nl.ndarray(x.shape, x.dtype, buffer=nl.private_hbm)
    nl.store(tmp[i * h:(i + 1) * h, :], nl.load(x[i * h:(i + 1) * h, :]))
    if i == nl.num_programs(0) - 1:
        ncc.all_reduce([tmp], [out], ncc.ReplicaGroup(), op=nl.maximum)


@needs_cluster
def test_spmd_grid_inside_each_rank():
    n = 2
    xs = _inputs(n, np.float32, shape=(16, 32), seed=31)
    outs = [np.zeros((16, 32), np.float32) for _ in range(n)]
    nki.jit(k_grid_then_reduce)[2](xs, outs, num_ranks=n)
    ref = np.maximum(xs[0], xs[1])
    for o in outs:  # written in place, as for one chip
        np.testing.assert_array_equal(o, ref)


def k_coalesced(a, b):
    oa = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    ob = nl.ndarray(b.shape, b.dtype, buffer=nl.shared_hbm)
    ncc.all_reduce([a, b], [oa, ob], ncc.ReplicaGroup(), op=nl.add)
    return oa, ob


@needs_cluster
def test_coalesced_all_reduce_of_two_tensors():
    n = 4
    a = _inputs(n, np.float32, shape=(16, 32), seed=32)
    b = _inputs(n, BF16, shape=(8, 8), seed=33)
    outs = nki.simulate_kernel(k_coalesced, a, b, num_ranks=n)
    for oa, ob in outs:
        np.testing.assert_array_equal(oa, _reduce(a, "add", np.float32))
        np.testing.assert_array_equal(ob.astype(np.float32), _reduce(b, "add", BF16).astype(np.float32))
    assert [c["op"] for c in nki.last_run().collectives] == ["all_reduce", "all_reduce"]
