"""The trnsim.torch disk cache across processes, with the real compiler: the second process
that compiles the same model takes cache hits and compiles nothing."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent(f"""
    import json, sys
    sys.path.insert(0, {HERE!r})
    import torch
    import trnsim.torch as tt
    import torch_models as M
    model, ids = M.build("llama"), M.input_ids()
    compiled = torch.compile(model, backend="trnsim", dynamic=False,
                             options={{"fallback": "cpu"}})
    logits = M.logits(compiled, ids)
    ref = M.logits(model, ids)
    from torch._dynamo.utils import counters
    print(json.dumps({{"stats": tt.stats(),
                      "dynamo": {{k: dict(v) for k, v in counters.items()}},
                      "error": ((logits - ref).abs().max() / ref.abs().max()).item()}}))
""")


def _run(cache_dir):
    env = dict(os.environ, TRNSIM_CACHE_DIR=str(cache_dir))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing(tmp_path):
    first = _run(tmp_path)
    second = _run(tmp_path)
    print("first:", first)
    print("second:", second)
    assert first["stats"]["compiles"] >= 1 and first["stats"]["cache_hits"] == 0
    assert second["stats"]["compiles"] == 0
    assert second["stats"]["cache_hits"] == first["stats"]["compiles"]
    assert first["stats"]["recompiles"] == second["stats"]["recompiles"] == 0
    assert first["error"] <= 1e-3 and second["error"] <= 1e-3
    entries = sorted(p.name for p in tmp_path.glob("*/*"))
    assert len(entries) == 2 * first["stats"]["compiles"]  # <key>.ir and <key>.json each
    marker = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert marker["chip"] == "trn2" and marker["graph"].startswith("forward")
    assert marker["ops"] > 0


def test_cache_off(tmp_path):
    env_dir = "off"
    first = _run(env_dir)
    assert first["stats"]["compiles"] >= 1 and first["stats"]["cache_hits"] == 0
