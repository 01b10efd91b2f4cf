"""The planner against every row of the published training runs (docs/validation.md).

Each row is one `trnsim plan` command built by tools/plan_validation.py from tests/data: the
Megatron-LM 2021 rows (A100, roofline) must come within 10% of the published TFLOP/s per GPU,
the AWS Trn1 NeMo GPT-3 rows (compiled layers on the simulated trn1) within 15% of the
published sequences per second. The figures the planner prints about its own accuracy
(configs/plan/validation.json) and the table in docs/validation.md must be the current ones.
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import plan_validation  # noqa: E402

TRNSIM = str(ROOT / ".venv" / "bin" / "trnsim")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    # A fresh compiled-layer cache: every Trn1 layer graph is compiled and simulated here.
    env = dict(os.environ, TRNSIM_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    out = plan_validation.run_all(TRNSIM, env)
    print()
    for r in out:
        print(f"{r['label']:32s} published {r['published']:8.4g} predicted {r['predicted']:8.4g} "
              f"error {100 * r['error']:+6.1f}%  ({r['unit']})")
    return out


def test_every_row_within_its_tolerance(results):
    assert len(results) == 13
    bad = [f"{r['label']}: {100 * r['error']:+.1f}%" for r in results
           if abs(r["error"]) > plan_validation.TOLERANCE[r["table"]]]
    assert not bad, "rows outside tolerance: " + ", ".join(bad)


def test_rows_use_the_intended_compute_models(results):
    assert {r["compute_model"] for r in results if r["table"] == "megatron"} == {"roofline"}
    assert {r["compute_model"] for r in results if r["table"] == "trn1"} == {"compiled"}


def test_published_confidence_is_the_current_one(results):
    """configs/plan/validation.json (what every plan prints) and docs/validation.md agree with
    today's predictions to 1% (rerun `python3 tools/plan_validation.py --write` when not)."""
    stored = json.loads((ROOT / "configs" / "plan" / "validation.json").read_text())
    now = plan_validation.summary(results)
    for table in ("megatron", "trn1"):
        for got, want in zip(now[table]["errors"], stored[table]["errors"]):
            assert abs(got - want) <= 0.01, (table, now[table]["errors"], stored[table]["errors"])
    doc = (ROOT / "docs" / "validation.md").read_text()
    for r in results:
        assert r["command"] in doc, f"docs/validation.md lacks the command of {r['label']}"


def test_plans_state_their_validation():
    import subprocess
    out = subprocess.run([TRNSIM, "plan", "--model", "gpt3-23b", "--system", "trn1.32xlarge",
                          "--chips", "512", "--global-batch", "1024", "--seq", "2048", "--tp", "8",
                          "--pp", "4", "--dp", "32", "--compare", "dgx-a100-80gb", "--json"],
                         capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    assert j["validation"]["direct"] is True
    assert 0 < j["validation"]["error_band"] <= 0.15
    assert j["compare"][0]["validation"]["direct"] is True
    assert "times faster" in j["conclusion"] and "within the validated error" in j["conclusion"]
