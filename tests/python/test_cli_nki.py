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
