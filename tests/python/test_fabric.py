"""trnsim._trnsim.fabric from Python: systems as dicts and the collective cost model.

The model's times are checked against alpha-beta formulas derived by hand for a system written
here (one ring of p chips, one rank per chip): a ring all-reduce of n bytes takes
2(p-1) hops of latency a and moves 2(p-1)/p * n bytes over each link of bandwidth B,
T = 2(p-1) a + 2(p-1)/p * n / B; reduce-scatter and all-gather take half of each term.
"""

from __future__ import annotations

import json
import os

import pytest

fabric = pytest.importorskip("trnsim._trnsim.fabric")
if not hasattr(fabric, "estimate"):  # pragma: no cover
    pytest.skip("trnsim._trnsim.fabric.estimate is not built", allow_module_level=True)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _v(x, source="test system written by hand in tests/python/test_fabric.py"):
    return {"value": x, "source": source}


def ring_system(tmp_path, p=4, link_gbps=100.0, hop_ns=1000.0):
    """One ring of p chips, one rank per chip, a scale-out network that is never used."""
    cfg = {
        "schema_version": 1,
        "name": f"test-ring{p}",
        "description": f"{p} chips on one ring (test)",
        "accel": {
            "name": "TestChip", "sim_chip": "trn2", "ranks_per_chip": _v(1),
            "peak_tflops_bf16": _v(100), "peak_tflops_fp8": _v(0), "peak_tflops_fp32": _v(25),
            "memory_bytes": _v(1 << 34), "memory_gbps": _v(1000), "power_watts": _v(500),
        },
        "chips_per_node": _v(p),
        "scale_up": [{
            "name": "x", "kind": "ring", "size": _v(p), "link_gbps": _v(link_gbps),
            "hop_latency_ns": _v(hop_ns), "in_network_reduction": _v(False),
        }],
        "scale_out": {
            "name": "none", "nic_gbps_per_chip": _v(10), "rails": _v(1), "tiers": _v(1),
            "hop_latency_ns": _v(5000), "oversubscription": _v(1), "max_chips": _v(p * 64),
        },
        "checkpoint_gbps_per_node": _v(1),
        "reliability": {"chip_mtbf_hours": _v(0), "restart_seconds": _v(0)},
    }
    path = tmp_path / f"ring{p}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_load_system_matches_the_config_file():
    d = fabric.load_system("trn2.48xlarge")
    with open(os.path.join(REPO, "configs", "systems", "trn2.48xlarge.json")) as f:
        raw = json.load(f)
    assert d["name"] == raw["name"]
    assert d["chips_per_node"] == raw["chips_per_node"]["value"]
    assert d["accel"]["ranks_per_chip"] == raw["accel"]["ranks_per_chip"]["value"]
    assert [x["size"] for x in d["scale_up"]] == [x["size"]["value"] for x in raw["scale_up"]]
    assert d["scale_up"][0]["link_gbps"] == raw["scale_up"][0]["link_gbps"]["value"]
    assert "trn2.48xlarge" in fabric.builtin_systems()


def test_load_system_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no-such-system"):
        fabric.load_system("no-such-system")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "name": "x"}))
    with pytest.raises(ValueError, match="bad.json"):
        fabric.load_system(str(bad))


@pytest.mark.parametrize("p", [4, 8])
def test_ring_all_reduce_matches_the_alpha_beta_formula(tmp_path, p):
    link_gbps, hop_ns, n = 100.0, 1000.0, 64 << 20
    path = ring_system(tmp_path, p, link_gbps, hop_ns)
    d = fabric.estimate(path, "all_reduce", n, chips=p, algorithm="ring")
    a, inv_b = hop_ns * 1e-9, 1.0 / (link_gbps * 1e9)
    expect = 2 * (p - 1) * a + 2 * (p - 1) / p * n * inv_b
    assert d["algorithm"] == "ring"
    assert d["ranks"] == p
    assert d["time_s"] == pytest.approx(expect, rel=1e-3)
    # nccl-tests conventions: algbw = bytes / time, busbw = algbw * 2(p-1)/p.
    assert d["algbw_gbps"] == pytest.approx(n / d["time_s"] / 1e9, rel=1e-9)
    assert d["busbw_gbps"] == pytest.approx(d["algbw_gbps"] * 2 * (p - 1) / p, rel=1e-9)
    assert d["candidates"] == []  # an algorithm was named
    assert d["phases"] and sum(ph["time_s"] for ph in d["phases"]) == pytest.approx(d["time_s"], rel=1e-6)


@pytest.mark.parametrize("op", ["reduce_scatter", "all_gather"])
def test_ring_reduce_scatter_and_all_gather_take_half(tmp_path, op):
    p, link_gbps, hop_ns, n = 4, 100.0, 1000.0, 64 << 20
    path = ring_system(tmp_path, p, link_gbps, hop_ns)
    d = fabric.estimate(path, op, n, chips=p, algorithm="ring")
    expect = (p - 1) * hop_ns * 1e-9 + (p - 1) / p * n / (link_gbps * 1e9)
    assert d["time_s"] == pytest.approx(expect, rel=1e-3)
    assert d["busbw_gbps"] == pytest.approx(d["algbw_gbps"] * (p - 1) / p, rel=1e-9)
    assert fabric.busbw_factor(op, p) == pytest.approx((p - 1) / p)
    assert fabric.busbw_factor("all_reduce", p) == pytest.approx(2 * (p - 1) / p)


def test_auto_picks_the_fastest_candidate():
    for n in (8, 1 << 30):
        d = fabric.estimate("trn2.48xlarge", "all_reduce", n)
        assert d["candidates"], "auto reports the algorithms it considered"
        best = min(d["candidates"], key=lambda c: c["time_s"])
        assert d["time_s"] == pytest.approx(best["time_s"])
        assert d["algorithm"] == best["algorithm"]
    # Default chips: one scale-up domain of the system.
    sysd = fabric.load_system("trn2.48xlarge")
    dom = 1
    for dim in sysd["scale_up"]:
        dom *= dim["size"]
    d = fabric.estimate("trn2.48xlarge", "all_gather", 1 << 20)
    assert d["chips"] == dom
    assert d["ranks"] == dom * sysd["accel"]["ranks_per_chip"]


def test_bigger_messages_take_longer_and_groups_are_respected():
    small = fabric.estimate("trn2.48xlarge", "all_reduce", 1 << 20)
    big = fabric.estimate("trn2.48xlarge", "all_reduce", 1 << 30)
    assert big["time_s"] > small["time_s"]
    g = fabric.estimate("trn2.48xlarge", "all_reduce", 1 << 30, group_size=4)
    assert g["ranks"] == 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(op="all_reduce_typo"), "all_reduce_typo"),
    (dict(algorithm="spiral"), "spiral"),
    (dict(system="no-such-system"), "no-such-system"),
    (dict(group_stride=0), "group_stride"),
])
def test_estimate_errors(kwargs, match):
    args = dict(system="trn2.48xlarge", op="all_reduce", bytes=1 << 20)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fabric.estimate(**args)


def test_python_wrapper_takes_sizes_with_units():
    from trnsim import fabric as f
    assert f.parse_bytes(8) == 8
    assert f.parse_bytes("4K") == 4 * 1024
    assert f.parse_bytes("1MiB") == 1 << 20
    assert f.parse_bytes("1MB") == 10**6
    assert f.parse_bytes("2GiB") == 2 << 30
    with pytest.raises(ValueError, match="1XB"):
        f.parse_bytes("1XB")
    a = f.estimate("trn2.48xlarge", "all_gather", "64MiB")
    b = fabric.estimate("trn2.48xlarge", "all_gather", 64 << 20)
    assert a["time_s"] == b["time_s"]
    sw = f.sweep("trn2.48xlarge", "all_reduce", sizes=[1 << 10, 1 << 20, 1 << 30])
    assert [d["bytes"] for d in sw] == [1 << 10, 1 << 20, 1 << 30]
    assert sw[0]["time_s"] < sw[1]["time_s"] < sw[2]["time_s"]


# ---- fabric.Cluster used directly (program files, per-rank numpy I/O) -----------------------


def _all_reduce_program(tmp_path):
    """An all-reduce program traced by trnsim.nki and saved in the text form."""
    import numpy as np
    import trnsim.nki as nki
    import trnsim.nki.collectives as ncc
    import trnsim.nki.language as nl

    def k(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        ncc.all_reduce([x], [out], ncc.ReplicaGroup(), op=nl.add)
        return out

    nki.jit(k)(np.zeros((8, 64), np.float32))  # one rank: the program is rank-independent
    path = tmp_path / "all_reduce.tsim"
    text = nki.last_run().programs[0].text()
    path.write_text(text)
    return str(path), text


@pytest.mark.skipif(not hasattr(fabric, "Cluster"), reason="fabric.Cluster is not built")
def test_cluster_runs_a_program_file_and_is_thread_count_independent(tmp_path):
    import numpy as np
    path, text = _all_reduce_program(tmp_path)
    assert "all_reduce" in text
    rng = np.random.default_rng(5)
    n = 8
    xs = [rng.standard_normal((8, 64)).astype(np.float32) for _ in range(n)]
    ref = xs[0].copy()
    for x in xs[1:]:
        ref = ref + x  # fp32, rank order
    hashes = []
    for threads in (1, 4):
        c = fabric.Cluster("trn2", n, threads=threads)
        assert c.size == n and (c.first_local_rank, c.end_local_rank) == (0, n)
        c.load_file(path)
        for r in range(n):
            c.write(r, "x", xs[r])
        res = c.run()
        assert res["collectives"][0]["op"] == "all_reduce"
        assert res["collectives"][0]["ranks"] == list(range(n))
        assert res["collectives"][0]["bytes"] == 8 * 64 * 4
        for r in (0, n - 1):
            np.testing.assert_array_equal(c.read(r, "hbm0"), ref)
        hashes.append(c.output_hashes())
        times = [rr["simulated_ns"] for rr in res["ranks"]]
        assert res["simulated_ns"] == max(times)
    assert hashes[0] == hashes[1]


@pytest.mark.skipif(not hasattr(fabric, "Cluster"), reason="fabric.Cluster is not built")
def test_cluster_errors(tmp_path):
    import numpy as np
    path, _ = _all_reduce_program(tmp_path)
    c = fabric.Cluster("trn2", 2)
    c.load_file(path)
    with pytest.raises(ValueError, match="no tensor 'nope'"):
        c.read(0, "nope")
    with pytest.raises(ValueError, match="rank 5 is outside"):
        c.write(5, "x", np.zeros((8, 64), np.float32))
    with pytest.raises(ValueError, match="takes 512 values"):
        c.write(0, "x", np.zeros((3,), np.float32))
    with pytest.raises(ValueError, match="transport"):
        fabric.Cluster("trn2", 2, transport="carrier-pigeon")
    with pytest.raises(ValueError, match="no-such-chip"):
        fabric.Cluster("no-such-chip", 2)
    # Inputs never written: the run reads memory nothing wrote -> a FabricError with its code.
    with pytest.raises(fabric.FabricError) as e:
        c.run()
    assert e.value.code


def test_collective_model_object_matches_estimate_and_is_cached():
    m = fabric.CollectiveModel("trn2.48xlarge", 16)
    assert m.chips == 16 and m.system == "trn2.48xlarge"
    for op, n in (("all_reduce", 1 << 20), ("all_to_all", 1 << 26)):
        assert m.estimate(op, n) == fabric.estimate("trn2.48xlarge", op, n, chips=16)
    from trnsim import fabric as f
    assert f.model("trn2.48xlarge", 16) is f.model("trn2.48xlarge", 16)
    with pytest.raises(ValueError, match="spiral"):
        m.estimate("all_reduce", 8, algorithm="spiral")
