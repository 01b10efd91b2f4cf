"""`trnsim collective`: one collective or a sweep from the fabric cost model, as text or JSON, and
one clear line for bad options. Expected values are derived independently here (bus bandwidth
factors of nccl-tests; the all-reduce bound of the NVLink switch)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

TRNSIM = Path(sys.executable).parent / "trnsim"
pytestmark = pytest.mark.skipif(not TRNSIM.exists(), reason="needs the installed trnsim CLI")


def collective(*args):
    return subprocess.run([str(TRNSIM), "collective", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_json_fields_and_bus_bandwidth():
    r = collective("--system", "trn2-ultraserver", "--op", "all_reduce", "--bytes", "1GiB",
                   "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    for key in ("time_s", "algorithm", "algbw_gbps", "busbw_gbps", "ranks", "phases",
                "candidates"):
        assert key in j
    assert j["bytes"] == 1 << 30
    assert j["chips"] == 64
    n = j["ranks"]
    assert j["algbw_gbps"] == pytest.approx(j["bytes"] / j["time_s"] / 1e9, rel=1e-9)
    assert j["busbw_gbps"] == pytest.approx(j["algbw_gbps"] * 2 * (n - 1) / n, rel=1e-9)
    assert min(c["time_s"] for c in j["candidates"]) == pytest.approx(j["time_s"])
    assert sum(p["time_s"] for p in j["phases"]) == pytest.approx(j["time_s"], rel=1e-9)


def test_named_algorithm_and_groups():
    r = collective("--system", "trn2.48xlarge", "--op", "all_gather", "--bytes", "64MiB",
                   "--algorithm", "ring", "--group-size", "16", "--group-stride", "4", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["algorithm"] == "ring"
    assert j["ranks"] == 16
    assert j["candidates"] == []
    assert j["busbw_gbps"] == pytest.approx(j["algbw_gbps"] * 15 / 16, rel=1e-9)


def test_sweep_table_and_json():
    r = collective("--system", "dgx-h100", "--sweep", "--factor", "4")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if not line.startswith("#")]
    sizes = [int(row[0]) for row in rows]
    assert sizes[0] == 8 and sizes[-1] == 8 << 30
    assert all(b == 4 * a for a, b in zip(sizes, sizes[1:]))
    r = collective("--system", "dgx-h100", "--sweep", "--json", "--min-bytes", "1M",
                   "--max-bytes", "8G")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["bytes"] for row in rows] == [1 << k for k in range(20, 34)]
    busbw = [row["busbw_gbps"] for row in rows]
    assert busbw == sorted(busbw)  # bandwidth grows with size
    # 8 GPUs on a 450 GB/s-per-direction switch: the ring/direct bound 450 GB/s is approached.
    assert 405 < busbw[-1] <= 450


@pytest.mark.parametrize("args, option", [
    (["--op", "allreduce"], "--op"),
    (["--algorithm", "tree"], "--algorithm"),
    (["--bytes", "1XB"], "--bytes"),
    (["--group-size", "3"], "--group-size"),
    (["--chips", "7"], "--chips"),
    (["--op", "all_reduce", "--skew", "2"], "--skew"),
])
def test_errors_name_the_option(args, option):
    r = collective("--system", "dgx-h100", *args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("trnsim: error:") and option in lines[0]


def test_unknown_system():
    r = collective("--system", "no-such-system")
    assert r.returncode != 0
    assert "--system" in r.stderr and "no-such-system" in r.stderr
