"""The example programs of examples/programs/ run through `trnsim run` and `trnsim cluster run`
with inputs from .npy files (--input) and outputs to .npy files (--output-dir), and their
outputs agree with numpy; bad input files, names and directories are refused before the run
with one line naming the file, the tensor and what to do (docs/cli.md)."""
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "examples" / "programs"
# TRNSIM_CLI picks another build of the command line (e.g. build/dev/tools/trnsim).
TRNSIM = Path(os.environ.get("TRNSIM_CLI", Path(sys.executable).parent / "trnsim"))
pytestmark = pytest.mark.skipif(not TRNSIM.exists(), reason="needs the installed trnsim CLI")

_spec = importlib.util.spec_from_file_location("make_inputs", PROGRAMS / "make_inputs.py")
examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(examples)


def trnsim(*args):
    return subprocess.run([str(TRNSIM), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def one_error_line(r, *needles):
    """The run failed with exactly one 'trnsim: error:' line holding every needle."""
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trnsim: error:"), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("name", examples.EXAMPLES)
def test_example_matches_numpy(tmp_path, name):
    pytest.importorskip("ml_dtypes")
    d = tmp_path / name
    examples.write_inputs(name, d)
    cmd = examples.command(name, d, trnsim=str(TRNSIM))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "outputs written" in r.stdout
    assert "random" not in r.stdout.split("inputs:")[1].splitlines()[0], "every input from a file"
    assert examples.check(name, d) == []
    for path in (d / "out").rglob("*.npy"):  # byte for byte what np.save writes
        buf = io.BytesIO()
        np.save(buf, np.load(path))
        assert buf.getvalue() == path.read_bytes(), path


def test_examples_parse_and_time_without_inputs():
    for name in examples.EXAMPLES:
        args = ["--chips", examples.CHIPS] if name == "allreduce_4chips" else []
        sub = ["cluster", "run"] if args else ["run"]
        r = trnsim(*sub, PROGRAMS / f"{name}.tsim", "--timing-only", "--json", *args)
        assert r.returncode == 0, (name, r.stderr)
        assert json.loads(r.stdout)


# ---- a two-tensor copy, for what --input and --output-dir promise ------------------------------

COPY2 = """program "copy2" target="trn2"
tensor %x hbm float32 [128, 64] at 0x0 kind=input
tensor %y hbm {ydtype} [128, 64] at 0x10000 kind=input
tensor %u hbm float32 [128, 64] at 0x20000 kind=output
tensor %v hbm {vdtype} [128, 64] at 0x30000 kind=output
tensor %"odd name" hbm float32 [8] at 0x40000 kind=inout
tensor %s sbuf float32 [128, 64] at p0+0x0
tensor %w sbuf float32 [128, 64] at p0+0x100
dma_copy.dma dst=%s[p0:128, +0, 64@1] src=%x[p0:128@64, +0, 64@1] queue=0
dma_copy.dma dst=%w[p0:128, +0, 64@1] src=%y[p0:128@64, +0, 64@1] queue=1
dma_copy.dma dst=%u[p0:128@64, +0, 64@1] src=%s[p0:128, +0, 64@1] queue=2
dma_copy.dma dst=%v[p0:128@64, +0, 64@1] src=%w[p0:128, +0, 64@1] queue=3
"""


@pytest.fixture
def copy2(tmp_path):
    def make(ydtype="float32", vdtype="float32"):
        path = tmp_path / f"copy2_{ydtype}_{vdtype}.tsim"
        path.write_text(COPY2.format(ydtype=ydtype, vdtype=vdtype))
        return path
    return make


def test_random_inputs_do_not_depend_on_the_files_given(tmp_path, copy2):
    prog = copy2()
    r = trnsim("run", prog, "--output-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert "x random, y random" in r.stdout
    ones = np.ones((128, 64), np.float32)
    np.save(tmp_path / "ones.npy", ones)
    r = trnsim("run", prog, "--input", f"x={tmp_path / 'ones.npy'}", "--output-dir", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "b" / "u.npy"), ones)
    v_a, v_b = np.load(tmp_path / "a" / "v.npy"), np.load(tmp_path / "b" / "v.npy")
    assert np.array_equal(v_a, v_b) and np.all(np.abs(v_a) <= 1) and np.std(v_a) > 0.3
    # inout tensors are written too, under a file-safe name
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["odd_name.npy", "u.npy", "v.npy"]


def test_json_lists_inputs_and_outputs(tmp_path, copy2):
    np.save(tmp_path / "y.npy", np.zeros((128, 64), np.float32))
    r = trnsim("run", copy2(), "--input", f"%y={tmp_path / 'y.npy'}", "--output-dir", tmp_path / "o",
               "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["inputs"] == {"x": "random", "y": str(tmp_path / "y.npy"), "odd name": "random"}
    assert j["outputs"]["v"] == str(tmp_path / "o" / "v.npy")
    assert j["simulated"]["ns"] > 0


def test_dtypes_convert_only_when_exact(tmp_path, copy2):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    prog = copy2(ydtype="bfloat16", vdtype="bfloat16")
    exact = (np.arange(128 * 64).reshape(128, 64) % 256).astype(np.float64)  # fits bf16
    np.save(tmp_path / "exact.npy", exact)
    r = trnsim("run", prog, "--input", f"y={tmp_path / 'exact.npy'}", "--output-dir", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "float64 values converted to bfloat16 for tensor 'y' (every value exact)" in r.stderr
    v = np.load(tmp_path / "o" / "v.npy")
    assert v.dtype == np.float32 and np.array_equal(v, exact)  # bf16 outputs come as float32

    raw = np.linspace(-3, 3, 128 * 64, dtype=np.float32).reshape(128, 64)
    np.save(tmp_path / "f32.npy", raw)
    one_error_line(trnsim("run", prog, "--input", f"y={tmp_path / 'f32.npy'}"),
                   "f32.npy", "tensor 'y' is bfloat16", "float32", "never rounded",
                   "ml_dtypes.bfloat16")
    np.save(tmp_path / "bf16.npy", raw.astype(ml_dtypes.bfloat16))  # descr '<V2'
    r = trnsim("run", prog, "--input", f"y={tmp_path / 'bf16.npy'}", "--output-dir", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "o" / "v.npy"),
                          raw.astype(ml_dtypes.bfloat16).astype(np.float32))
    # raw 2-byte items do not fill a float32 tensor
    one_error_line(trnsim("run", prog, "--input", f"x={tmp_path / 'bf16.npy'}"),
                   "raw 2-byte items", "tensor 'x' of float32")
    np.save(tmp_path / "int.npy", np.full((128, 64), 3, np.int32))
    r = trnsim("run", prog, "--input", f"x={tmp_path / 'int.npy'}")
    assert r.returncode == 0 and "int32 values converted to float32" in r.stderr
    np.save(tmp_path / "big.npy", np.full((128, 64), 2**24 + 1, np.int64))
    one_error_line(trnsim("run", prog, "--input", f"x={tmp_path / 'big.npy'}"), "16777217")


@pytest.mark.parametrize("case", ["shape", "fortran", "bigendian", "object", "bool", "missing",
                                  "notnpy", "truncated"])
def test_bad_files_are_refused_before_the_run(tmp_path, copy2, case):
    f = tmp_path / f"{case}.npy"
    a = np.zeros((128, 64), np.float32)
    needles = [f.name]
    if case == "shape":
        np.save(f, a.reshape(64, 128))
        needles += ["shape (64, 128)", "tensor 'x'", "(128, 64)", "a.reshape(128, 64)"]
    elif case == "fortran":
        np.save(f, np.asfortranarray(a))
        needles += ["Fortran", "np.ascontiguousarray"]
    elif case == "bigendian":
        np.save(f, a.astype(">f4"))
        needles += ["big-endian", "'>f4'"]
    elif case == "object":
        np.save(f, np.empty((128, 64), object), allow_pickle=True)
        needles += ["object"]
    elif case == "bool":
        np.save(f, a > 0)
        needles += ["bool", "uint8"]
    elif case == "notnpy":
        f.write_bytes(b"x,y\n1,2\n")
        needles += ["not a .npy file"]
    elif case == "truncated":
        np.save(f, a)
        f.write_bytes(f.read_bytes()[:-4])
        needles += ["32768 data bytes", "32764"]
    else:
        needles += ["cannot open"]
    out = tmp_path / "out"
    one_error_line(trnsim("run", copy2(), "--input", f"x={f}", "--output-dir", out), *needles)
    assert not out.exists() or not any(out.iterdir()), "nothing written without a run"


def test_bad_names_and_options(tmp_path, copy2):
    prog = copy2()
    np.save(tmp_path / "a.npy", np.zeros((128, 64), np.float32))
    a = tmp_path / "a.npy"
    one_error_line(trnsim("run", prog, "--input", f"q={a}"), "no tensor 'q'", "its inputs are: x, y")
    one_error_line(trnsim("run", prog, "--input", f"u={a}"), "tensor 'u' is hbm output")
    one_error_line(trnsim("run", prog, "--input", "x"), "expected NAME=FILE")
    one_error_line(trnsim("run", prog, "--input", f"1:x={a}"), "RANK: prefix", "cluster run")
    one_error_line(trnsim("run", prog, "--input", f"x={a}", "--input", f"x={a}"), "given twice")
    one_error_line(trnsim("run", prog, "--input", f"x={a}", "--timing-only"), "--timing-only")
    one_error_line(trnsim("run", prog, "--output-dir", tmp_path / "o", "--timing-only"),
                   "--output-dir", "--timing-only")
    one_error_line(trnsim("run", prog, "--output-dir", a), "--output-dir names a file")
    one_error_line(trnsim("run", prog, "--output-dir", a / "sub"), "cannot create the directory")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        one_error_line(trnsim("run", prog, "--output-dir", ro), "cannot write files")


def test_cluster_inputs_per_rank(tmp_path):
    prog = PROGRAMS / "allreduce_4chips.tsim"
    base = np.zeros((128, 256), np.float32)
    np.save(tmp_path / "all.npy", base + 1)
    np.save(tmp_path / "r2.npy", base + 10)
    r = trnsim("cluster", "run", prog, "--chips", 4, "--input", f"x={tmp_path / 'all.npy'}",
               "--input", f"2:x={tmp_path / 'r2.npy'}", "--output-dir", tmp_path / "o", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert [rank["inputs"]["x"] for rank in j["ranks"]] == [
        str(tmp_path / ("r2.npy" if i == 2 else "all.npy")) for i in range(4)]
    for rank in range(4):
        assert np.all(np.load(tmp_path / "o" / f"rank{rank}" / "y.npy") == 13)
        assert np.load(tmp_path / "o" / f"rank{rank}" / "s.npy").shape == (32, 256)
    one_error_line(trnsim("cluster", "run", prog, "--chips", 4, "--input",
                          f"4:x={tmp_path / 'all.npy'}"), "rank 4 does not exist", "0..3")
    per_rank = tmp_path / "x{rank}.npy"
    one_error_line(trnsim("cluster", "run", prog, "--chips", 4, "--input", f"x={per_rank}"),
                   "x0.npy", "cannot open")
    one_error_line(trnsim("cluster", "run", PROGRAMS.parent.parent / "tests/fabric/mpi_program.tsim",
                          "--chips", 8, "--input", f"rank_id={tmp_path / 'all.npy'}"),
                   "'rank_id' is filled with each rank's id")


def test_cluster_files_under_mpirun_match_one_process(tmp_path):
    """Under `mpirun -np 2` each process writes its own ranks' files, the same bytes as one
    process writes, and a bad input file fails every process (no process waits for ever)."""
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("mpirun is not installed (openmpi-bin)")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self,vader", OMPI_MCA_plm_rsh_agent="")
    for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"):
        env.pop(v, None)
    d = tmp_path / "allreduce_4chips"
    examples.write_inputs("allreduce_4chips", d)
    cmd = [str(a) for a in examples.command("allreduce_4chips", d, trnsim=str(TRNSIM))]
    single = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert single.returncode == 0, single.stderr
    out_mpi = tmp_path / "mpi"
    cmd_mpi = [mpirun, "--oversubscribe", "-np", "2", *cmd[:-1], str(out_mpi), "--json"]
    multi = subprocess.run(cmd_mpi, capture_output=True, text=True, timeout=120, env=env)
    assert multi.returncode == 0, multi.stderr
    if json.loads(multi.stdout)["processes"] != 2:
        pytest.skip("this trnsim was built without MPI")
    files = sorted(p.relative_to(d / "out") for p in (d / "out").rglob("*.npy"))
    assert len(files) == 12
    assert files == sorted(p.relative_to(out_mpi) for p in out_mpi.rglob("*.npy"))
    for f in files:
        assert (d / "out" / f).read_bytes() == (out_mpi / f).read_bytes(), f
    bad = [mpirun, "--oversubscribe", "-np", "2", *cmd[:4], "--chips", "4", "--input",
           f"x={d / 'nope.npy'}"]
    r = subprocess.run(bad, capture_output=True, text=True, timeout=60, env=env)
    # Every process sees the same bad file: one error line, from process 0 (issue 14).
    assert r.returncode != 0 and r.stderr.count("nope.npy: cannot open") == 1
