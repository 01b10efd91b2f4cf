#!/usr/bin/env python3
"""Cut the plots out of a `trnsim plan --report` page as stand-alone SVG files (docs/plan.md's
worked example) and, with headless Chromium, screenshot the whole page.

  trnsim plan --model llama3-70b --system trn2-ultraserver --chips 4096 --global-batch 2048 \\
      --seq 8192 --tokens 15T --precision bf16 --compare dgx-h100,dgx-h100:4096 \\
      --report plan_llama3_70b.html
  python3 tools/plan_report_images.py plan_llama3_70b.html docs/img

Each `<svg>` of the page gets the SVG namespace, a white background and the page's text styles,
and is written as plan_<name>.svg in the report's order (breakdown, time, cost, energy,
goodput); the screenshot is plan_report.png (1400 x 2000).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ["breakdown", "time", "cost", "energy", "goodput"]
STYLE = ("<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><style>text{font-family:sans-serif} "
         ".lbl{font-size:13px} .val{font-size:12px;fill:#333} .leg{font-size:12px} "
         ".ttl{font-size:15px;font-weight:bold}</style>")


def main(page, out_dir):
    html = Path(page).read_text()
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    if len(svgs) != len(NAMES):
        sys.exit(f"{page}: {len(svgs)} plots, expected {len(NAMES)} (run the plan with --tokens)")
    out = Path(out_dir)
    for name, svg in zip(NAMES, svgs):
        head, rest = svg.split(">", 1)
        svg = head.replace("<svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"", 1) + ">" + STYLE + rest
        (out / f"plan_{name}.svg").write_text(svg + "\n")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--screenshot={out / 'plan_report.png'}", "--window-size=1400,2000",
                        "--hide-scrollbars", Path(page).resolve().as_uri()],
                       capture_output=True, check=True, timeout=180)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
