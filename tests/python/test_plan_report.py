"""`trnsim plan` end to end: the HTML report opens in headless Chromium and draws (a screenshot
of the right size with the plots' colours in it), has no external URL; the JSON has the keys
docs/plan.md promises; bad options give one line naming the option.

The CLI is $TRNSIM_CLI or .venv/bin/trnsim; the test is skipped when either it or chromium is
missing.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1400, 2000

# A small run: planned in a few seconds even by a sanitizer build.
PLAN_ARGS = [
    "plan", "--model", "llama3-8b", "--system", "trn2.48xlarge", "--chips", "16",
    "--global-batch", "64", "--seq", "4096", "--tokens", "1T", "--threads", "2",
    # The report is under test, not the compute model: the kernel composition keeps it fast.
    "--compute-model", "kernels",
]


def cli():
    path = os.environ.get("TRNSIM_CLI") or str(ROOT / ".venv" / "bin" / "trnsim")
    if not Path(path).exists():
        pytest.skip(f"the trnsim CLI is not built ({path}); run `make` or set TRNSIM_CLI")
    return path


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_cli(*args, check=True):
    proc = subprocess.run([cli(), *args], capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def decode_png(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG, with zlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, at = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, channels)])
        prev = line
    return width, height, rows


def near(colour, rgb, tol=8):
    return all(abs(x - y) <= tol for x, y in zip(colour, rgb))


def test_report_renders_in_headless_chromium(tmp_path):
    browser = chromium()
    report = tmp_path / "plan.html"
    run_cli(*PLAN_ARGS, "--compare", "dgx-h100", "--report", str(report))
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Self-contained: no URL of any scheme, nothing loaded from elsewhere.
    assert not re.search(r"(https?:|ftp:|file:|src\s*=|href\s*=|@import|url\(|<script|<link)",
                         html, re.I), "the report must not reference anything outside itself"
    assert html.count("<svg") == 5
    # It opens with the comparison in one sentence, within the validation's error, and says
    # how sure each system's figures are.
    body = html[html.index("<body>"):]
    first = re.search(r"<p><b>(.*?)</b></p>", body).group(1)
    assert body.index(first) < body.index("<h2>")
    assert re.search(r"times faster .* than .*within the validated error of", first), first
    assert "<h2>How sure</h2>" in html and "not validated" in html  # --compute-model kernels
    # One colour per system in every plot (the first system's #4C78A8, the second's #F58518 in
    # the bars, the goodput curves and the breakdown's swatches), and the planned chip counts
    # marked on the goodput plot.
    goodput = html[html.index('aria-label="goodput'):]
    goodput = goodput[:goodput.index("</svg>")]
    assert 'stroke="#4C78A8"' in goodput and 'stroke="#F58518"' in goodput
    assert goodput.count("planned ") == 2
    breakdown = html[html.index('aria-label="step time breakdown"'):]
    breakdown = breakdown[:breakdown.index("</svg>")]
    assert 'width="10" height="34" fill="#4C78A8"' in breakdown
    assert 'width="10" height="34" fill="#F58518"' in breakdown

    png = tmp_path / "plan.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}",
         f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", report.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert png.exists(), proc.stderr[-2000:]
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)

    counts = {}
    for row in rows[::4]:
        for px in row[::4]:
            counts[px] = counts.get(px, 0) + 1
    total = sum(counts.values())
    assert len(counts) >= 20, f"only {len(counts)} distinct colours: a blank page?"
    assert max(counts.values()) < 0.97 * total, "almost every pixel has one colour"
    # The plots' own colours: compute (#4C78A8), TP communication (#F58518), the second
    # system's bars and curve (#F58518 too) and DP communication (#54A24B).
    for name, rgb in {"compute": (0x4C, 0x78, 0xA8), "orange": (0xF5, 0x85, 0x18)}.items():
        hits = sum(n for px, n in counts.items() if near(px, rgb))
        assert hits >= 50, f"{name} colour barely present ({hits} samples)"


def test_json_has_the_documented_keys():
    out = json.loads(run_cli(*PLAN_ARGS, "--json").stdout)
    for key in ("step_time_s", "tokens_per_s", "model_tflops_per_chip",
                "hardware_tflops_per_chip", "mfu", "hfu", "memory_per_chip_gib", "fits",
                "breakdown", "parallelism", "time_to_train_days", "cost_usd", "energy_mwh",
                "goodput", "checkpoint_interval_s", "expected_interruptions", "search",
                "validation"):
        assert key in out, key
    for key in ("basis", "direct", "error_band", "assumptions"):
        assert key in out["validation"], key
    p = out["parallelism"]
    for key in ("tp", "pp", "dp", "cp", "ep", "vpp", "microbatch", "attention", "dropout"):
        assert key in p, key
    # trn2.48xlarge: 16 chips x 4 logical cores = 64 ranks.
    assert p["tp"] * p["pp"] * p["dp"] * p["cp"] == 16 * 4
    assert out["fits"] is True
    # Whole-run arithmetic, recomputed here: steps, days, cost and energy.
    steps = -(-10**12 // (64 * 4096))
    assert out["steps"] == steps
    assert out["compute_days"] == pytest.approx(steps * out["step_time_s"] / 86400, rel=1e-9)
    wall_h = out["time_to_train_days"] * 24
    assert out["cost_usd"] == pytest.approx(out["nodes"] * out["usd_per_node_hour"] * wall_h,
                                            rel=1e-9)
    assert out["goodput"] == pytest.approx(out["compute_days"] / out["time_to_train_days"],
                                           rel=1e-9)
    assert 0 < out["goodput"] <= 1
    assert out["search"]["fitting"] <= out["search"]["evaluated"]


def test_given_degrees_are_kept():
    out = json.loads(run_cli("plan", "--model", "llama3-8b", "--system", "dgx-h100",
                             "--chips", "64", "--global-batch", "128", "--seq", "4096",
                             "--tp", "8", "--pp", "2", "--json").stdout)
    p = out["parallelism"]
    assert (p["tp"], p["pp"], p["dp"]) == (8, 2, 4)
    assert "search" not in out


@pytest.mark.parametrize("args,option", [
    (["--tp", "3"], "--tp"),
    (["--recompute", "sometimes"], "--recompute"),
    (["--tokens", "lots"], "--tokens"),
    (["--objective", "speed", "--search"], "--objective"),
])
def test_bad_options_give_one_line_naming_them(args, option):
    proc = run_cli("plan", "--model", "llama3-8b", "--system", "dgx-h100", "--chips", "64",
                   "--global-batch", "128", "--seq", "4096", *args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trnsim: error:")
    assert option in lines[0], lines[0]


@pytest.mark.parametrize("path,words", [
    ("/nonexistent/dir/r.html", "does not exist"),
    (".", "is a folder"),
])
def test_an_unwritable_report_fails_before_the_search(path, words):
    # No degree given: without the early check the search would run (seconds) before the
    # write failed; the check makes it one line at once.
    import time
    started = time.monotonic()
    proc = run_cli(*PLAN_ARGS, "--report", path, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trnsim: error: --report:"), lines[0]
    assert words in lines[0], lines[0]
    assert proc.stdout == "", "nothing is planned or printed"
    assert elapsed < 5, f"took {elapsed:.1f} s: did it search first?"


def test_a_hugging_face_config_plans_as_the_catalog_model():
    # tests/data/hf/llama3-8b.config.json is Meta-Llama-3-8B's config.json: the same plan as
    # the built-in llama3-8b (from the paper), to the bit.
    args = ["--system", "dgx-h100", "--chips", "64", "--global-batch", "128", "--seq", "4096",
            "--tp", "8", "--json"]
    hf = json.loads(run_cli("plan", "--model",
                            str(ROOT / "tests" / "data" / "hf" / "llama3-8b.config.json"),
                            *args).stdout)
    builtin = json.loads(run_cli("plan", "--model", "llama3-8b", *args).stdout)
    for key in ("step_time_s", "memory_per_chip_gib", "model_tflops_per_chip", "breakdown"):
        assert hf[key] == builtin[key], key
    assert hf["model"] == "llama3-8b"


def test_a_bad_hugging_face_config_is_one_line_naming_the_key(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "gemma", "hidden_size": 2048}))
    proc = run_cli("plan", "--model", str(config), "--system", "dgx-h100", "--chips", "8",
                   "--global-batch", "8", "--seq", "1024", check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trnsim: error: --model:"), lines[0]
    assert str(config) in lines[0] and "'model_type'" in lines[0] and "gemma" in lines[0]
