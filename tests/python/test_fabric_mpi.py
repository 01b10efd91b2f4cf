"""A Python NKI multi-chip script under `mpirun -np 2` gives the same bits, hashes and simulated
time as the same script in one process.

Each process of the MPI run simulates half of the ranks (fabric::Cluster's MPI transport) and
writes what it has to a JSON file; the test puts the halves together and compares them with a
single-process run of the same script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

fabric = pytest.importorskip("trnsim._trnsim.fabric")

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import trnsim.nki as nki
    import trnsim.nki.collectives as ncc
    import trnsim.nki.language as nl

    def kernel(x):
        summed = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        ncc.all_reduce([x], [summed], ncc.ReplicaGroup(), op=nl.add)
        gathered = nl.ndarray((x.shape[0] * 4, x.shape[1]), x.dtype, buffer=nl.shared_hbm)
        ncc.all_gather([summed], [gathered], ncc.ReplicaGroup(), collective_dim=0)
        shifted = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        ncc.collective_permute([x], [shifted], [(r, (r + 1) % 4) for r in range(4)])
        return summed, gathered, shifted

    xs = [np.random.default_rng(r).standard_normal((16, 32)).astype(np.float32).astype(nl.bfloat16)
          for r in range(4)]
    outs = nki.simulate_kernel(kernel, xs, num_ranks=4)
    run = nki.last_run()
    res = {
        "process": run.process, "processes": run.processes, "local": list(run.local_ranks),
        "hashes": [str(h) for h in run.output_hashes()], "simulated_ns": run.simulated_ns,
        "outputs": {str(r): [o.astype(np.float32).tolist() for o in outs[r]]
                    for r in run.local_ranks},
        "none_elsewhere": all(outs[r] is None for r in range(4) if r not in run.local_ranks),
    }
    with open(f"{sys.argv[1]}/p{run.process}.json", "w") as f:
        json.dump(res, f)
""")


def _mpirun():
    return shutil.which("mpirun") or shutil.which("mpiexec")


def _skip_reason():
    if not hasattr(fabric, "Cluster"):
        return "trnsim._trnsim.fabric.Cluster is not built"
    if not fabric.mpi_built_in():
        return "this trnsim was built without MPI (find_package(MPI) found nothing)"
    if _mpirun() is None:
        return "mpirun is not installed (openmpi-bin)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _run(cmd, outdir, env):
    os.makedirs(outdir, exist_ok=True)
    p = subprocess.run(cmd + [str(outdir)], env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}"
    out = {}
    for name in sorted(os.listdir(outdir)):
        with open(os.path.join(outdir, name)) as f:
            d = json.load(f)
        out[d["process"]] = d
    return out


def test_mpirun_np2_matches_one_process(tmp_path):
    script = tmp_path / "multichip.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    # Keep the single run out of any MPI environment the test itself might run in.
    for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"):
        env.pop(v, None)
    single = _run([sys.executable, str(script)], tmp_path / "single", env)
    assert list(single) == [0] and single[0]["processes"] == 1
    assert single[0]["local"] == [0, 1, 2, 3]

    multi = _run([_mpirun(), "--oversubscribe", "-np", "2", sys.executable, str(script)],
                 tmp_path / "mpi", env)
    assert sorted(multi) == [0, 1], "each MPI process wrote its file"
    assert [multi[p]["processes"] for p in (0, 1)] == [2, 2]
    assert multi[0]["local"] == [0, 1] and multi[1]["local"] == [2, 3]
    for p in (0, 1):
        assert multi[p]["none_elsewhere"]
        # Every process knows every rank's output hash and the same clocks.
        assert multi[p]["hashes"] == single[0]["hashes"]
        assert multi[p]["simulated_ns"] == single[0]["simulated_ns"]
        for r in multi[p]["local"]:
            assert multi[p]["outputs"][str(r)] == single[0]["outputs"][str(r)], f"rank {r}"
