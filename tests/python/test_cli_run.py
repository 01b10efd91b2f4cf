"""`trnsim run PROGRAM`: programs saved in the text and binary forms run from the command line,
functionally and timing-only, with a JSON summary, and bad input exits with one clear line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trnsim._trnsim import sim

# TRNSIM_CLI picks another build of the command line (e.g. build/dev/tools/trnsim).
TRNSIM = Path(os.environ.get("TRNSIM_CLI", Path(sys.executable).parent / "trnsim"))
pytestmark = pytest.mark.skipif(not TRNSIM.exists(), reason="needs the installed trnsim CLI")


def small_program():
    """y = exp(x) * 2 on a [128, 512] fp32 tile: one DMA in, ScalarE, VectorE, one DMA out."""
    kb = sim.KernelBuilder("trn2", "cli_test")
    x = kb.hbm("x", "float32", [128, 512], kind="input")
    y = kb.hbm("y", "float32", [128, 512], kind="output")
    t = kb.sbuf("t", "float32", [128, 512])
    e = kb.sbuf("e", "float32", [128, 512])
    kb.dma_copy(dst=t, src=x)
    kb.activation(dst=e, op="exp", data=t)
    kb.tensor_scalar(dst=t, data=e, op0="multiply", operand0=2.0)
    kb.dma_copy(dst=y, src=t)
    return kb.finish()


def run(*args):
    return subprocess.run([str(TRNSIM), "run", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("suffix", [".tsim", ".bin"])
@pytest.mark.parametrize("timing_only", [False, True])
def test_saved_program_runs(tmp_path, suffix, timing_only):
    prog = small_program()
    path = tmp_path / ("p" + suffix)
    prog.save(str(path))
    if suffix == ".tsim":
        assert "\nprogram \"cli_test\"" in path.read_text()
    else:
        assert path.read_bytes()[:8] == b"TRNSIMPG"
    trace = tmp_path / "trace.json"
    r = run(path, "--json", "--trace", trace, *(["--timing-only"] if timing_only else []))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["instructions"] == 4
    assert summary["simulated"]["ns"] > 0
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(1 for e in events if e.get("ph") == "X") == 4


def test_text_and_binary_forms_give_the_same_timing(tmp_path):
    prog = small_program()
    prog.save(str(tmp_path / "p.tsim"))
    prog.save(str(tmp_path / "p.bin"))
    a = json.loads(run(tmp_path / "p.tsim", "--json").stdout)
    b = json.loads(run(tmp_path / "p.bin", "--json").stdout)
    assert a["simulated"]["ns"] == b["simulated"]["ns"] > 0


def test_bad_program_exits_with_one_line(tmp_path):
    bad = tmp_path / "bad.tsim"
    bad.write_text("program \"x\" target=\"trn2\"\nnot_an_opcode.vector dst=%t\n")
    r = run(bad)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trnsim: error:")
    assert "bad.tsim:2" in lines[0]


def test_missing_file_and_unknown_chip(tmp_path):
    r = run(tmp_path / "nope.tsim")
    assert r.returncode != 0 and "nope.tsim" in r.stderr
    small_program().save(str(tmp_path / "p.tsim"))
    r = run(tmp_path / "p.tsim", "--chip", "trn9")
    assert r.returncode != 0 and "trn9" in r.stderr


@pytest.mark.parametrize("what,expected", [
    ("folder", "is a directory"),
    ("empty", "the program file is empty"),
    ("comments", "no instructions"),
])
def test_no_program_to_run_is_one_error_line(tmp_path, what, expected):
    # Issue 14: a folder gave a libstdc++ message without the path; an empty or comment-only
    # file ran as an empty program with exit 0.
    path = tmp_path / what
    if what == "folder":
        path.mkdir()
    else:
        path.write_text("" if what == "empty" else "# a comment\nprogram \"x\"\n")
    r = run(path, "--json")
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"trnsim: error: {path}: ")
    assert expected in lines[0]


def test_control_bytes_in_messages_are_escaped(tmp_path):
    # A name holding a terminal escape sequence is printed as \x1b, never sent raw.
    r = run(tmp_path / "a\x1b[31mb.tsim")
    assert r.returncode != 0
    assert "\x1b" not in r.stderr and "a\\x1b[31mb.tsim" in r.stderr


@pytest.mark.parametrize("section,key", [("vector", "clock_ghz"), ("pe", "clock_ghz"),
                                         ("vector", "elems_per_cycle_32")])
@pytest.mark.parametrize("command", ["run", "demo", "cluster"])
def test_extreme_chip_rate_is_one_error_line_not_a_hang(tmp_path, section, key, command):
    # Issue 14: a chip with a rate of 1e-20 made run, demo and cluster run spin for ever in the
    # timing model. The chip loader's ranges now refuse it: one line naming the key, at once.
    chip = json.loads((Path(__file__).parents[2] / "configs" / "chips" / "trn2.json").read_text())
    chip[section][key]["value"] = 1e-20
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(chip))
    small_program().save(str(tmp_path / "p.tsim"))
    args = {"run": ["run", tmp_path / "p.tsim", "--chip", bad],
            "demo": ["demo", "--chip", bad],
            "cluster": ["cluster", "run", tmp_path / "p.tsim", "--chips", "2", "--chip", bad]}
    try:
        r = subprocess.run([str(TRNSIM), *map(str, args[command])], capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trnsim {command} with {section}.{key} = 1e-20 hangs")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trnsim: error:"), r.stderr
    assert f"key '{section}.{key}'" in lines[0] and "got 1e-20" in lines[0], lines[0]
    assert "docs/configs.md" in lines[0]


def test_overlapping_operands_are_refused_functional_and_timing_only(tmp_path):
    # Issue 13: the operand-overlap rule lives in the verifier, so a timing-only run refuses
    # the program a functional run refuses (it used to time it), with the same one line naming
    # the instruction. Instruction 1 copies x[:, 0:4] onto x[:, 1:5].
    path = tmp_path / "shift.tsim"
    path.write_text('program "shift" target="trn2"\n'
                    'tensor %x sbuf float32 [2, 5] at p0+0x0\n'
                    'memset.vector dst=%x[p0:2, +0, 5@1] value=1\n'
                    'tensor_copy.vector dst=%x[p0:2, +1, 4@1] src=%x[p0:2, +0, 4@1]\n')
    errors = []
    for extra in ([], ["--timing-only"]):
        r = run(path, *extra)
        assert r.returncode != 0 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trnsim: error:"), r.stderr
        errors.append(lines[0])
    assert errors[0] == errors[1]
    assert "instruction 1 (tensor_copy)" in errors[0]
    assert "operand 'dst' (tensor 'x') overlaps operand 'src' (tensor 'x')" in errors[0]
