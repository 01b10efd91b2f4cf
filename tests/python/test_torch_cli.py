"""`trnsim torch run`: an unmodified script's torch.compile goes to trnsim."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRNSIM = os.path.join(os.path.dirname(sys.executable), "trnsim")


def _run(*args):
    return subprocess.run([TRNSIM, "torch", "run", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_plain_torch_compile_runs_on_trnsim():
    r = _run("--chip", "trn1", os.path.join("examples", "torch", "plain_compile.py"))
    assert r.returncode == 0, r.stderr
    err = float(r.stdout.strip().rsplit(" ", 1)[1])
    assert err < 1e-4  # fp32 linear + GELU on the simulator against eager PyTorch
    assert "trnsim summary: trn1" in r.stderr and "simulated time" in r.stderr


def test_missing_script_is_one_error_line():
    r = _run("no_such_script.py")
    assert r.returncode == 2
    assert r.stderr.strip() == "trnsim: error: no_such_script.py: no such file"


def test_help_reaches_the_runner():
    r = _run("--help")
    assert r.returncode == 0 and "--timing-only" in r.stdout
