"""`trnsim nki run SCRIPT` runs an unmodified NKI kernel file through the compat importer."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRNSIM = Path(sys.executable).parent / "trnsim"


@pytest.mark.skipif(not TRNSIM.exists(), reason="the trnsim CLI is installed beside the venv's python")
def test_nki_run_executes_example_kernel():
    r = subprocess.run([str(TRNSIM), "nki", "run", str(ROOT / "examples/nki/matmul.py")],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "matches numpy" in r.stdout


@pytest.mark.skipif(not TRNSIM.exists(), reason="the trnsim CLI is installed beside the venv's python")
def test_nki_run_passes_script_arguments(tmp_path):
    script = tmp_path / "args.py"
    script.write_text("import sys\nimport nki.language as nl\nprint(sys.argv[1:], nl.tile_size.pmax)\n")
    r = subprocess.run([str(TRNSIM), "nki", "run", str(script), "--flag", "x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['--flag', 'x'] 128"


@pytest.mark.skipif(not TRNSIM.exists(), reason="the trnsim CLI is installed beside the venv's python")
def test_arguments_after_the_script_are_the_scripts_and_traceback_goes_before_it(tmp_path):
    """Everything after SCRIPT reaches the script, --help and --traceback included (issue 12);
    --traceback before SCRIPT prints Python's traceback instead of one error line."""
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nraise ValueError('boom')\n")

    def nki_run(*args):
        return subprocess.run([str(TRNSIM), "nki", "run", *map(str, args)], capture_output=True,
                              text=True, timeout=120)

    r = nki_run(script, "--help", "--traceback", "x")
    assert r.stdout.strip() == "['--help', '--traceback', 'x']"
    assert r.returncode == 1 and r.stderr.strip() == f"trnsim: error: {script}:3: ValueError: boom"
    r = nki_run("--traceback", script)
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr
    r = nki_run()
    assert r.returncode != 0 and r.stderr.startswith("trnsim: error:") and "script" in r.stderr
