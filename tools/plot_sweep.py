#!/usr/bin/env python3
"""Plot `trnsim collective --sweep --json` output as an SVG (bus bandwidth against size, one line
per sweep, each point marked with the algorithm the model chose) and print a Markdown table.

No plotting library: the SVG is written by hand, so this runs with a bare Python 3.

  trnsim collective --system trn2.48xlarge --sweep --json > a.json
  trnsim collective --system trn2-ultraserver --sweep --json > b.json
  python3 tools/plot_sweep.py a.json b.json --svg docs/img/fabric_sweep.svg > table.md

(docs/fabric.md: `make fabric-plots` is not a target; the commands above regenerate the figure.)
"""

import argparse
import json
import math
import sys

LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
ALGO_MARKERS = {  # algorithm -> (shape, fill)
    "ring": ("circle", "#ffffff"),
    "bidirectional_ring": ("circle", "#000000"),
    "torus": ("square", "#000000"),
    "halving_doubling": ("diamond", "#000000"),
    "direct": ("triangle", "#ffffff"),
    "hierarchical": ("square", "#ffffff"),
    "in_network": ("diamond", "#ffffff"),
}


def human(size):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def marker(shape, x, y, fill, stroke):
    r = 4.5
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="{stroke}"/>'
    if shape == "square":
        return (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" '
                f'fill="{fill}" stroke="{stroke}"/>')
    if shape == "diamond":
        pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} {x - r - 1:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{fill}" stroke="{stroke}"/>'
    pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y + r:.1f} {x - r - 1:.1f},{y + r:.1f}"
    return f'<polygon points="{pts}" fill="{fill}" stroke="{stroke}"/>'


def svg(sweeps, title):
    width, height = 1020, 520
    left, right, top, bottom = 80, 340, 50, 60
    pw, ph = width - left - right, height - top - bottom
    sizes = [row["bytes"] for _, rows in sweeps for row in rows]
    lo, hi = math.log2(min(sizes)), math.log2(max(sizes))
    ymax = max(row["busbw_gbps"] for _, rows in sweeps for row in rows)
    step = 10 ** math.floor(math.log10(max(ymax, 1e-9)))
    for mult in (1, 2, 5, 10):
        if ymax / (step * mult) <= 8:
            step *= mult
            break
    ytop = step * math.ceil(ymax / step) if ymax > 0 else 1

    def px(b):
        return left + (math.log2(b) - lo) / max(hi - lo, 1) * pw

    def py(v):
        return top + ph - v / ytop * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left + pw / 2}" y="24" text-anchor="middle" font-size="15">{title}</text>']
    y = 0.0
    while y <= ytop + 1e-9:
        out.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{left + pw}" y2="{py(y):.1f}" '
                   f'stroke="#dddddd"/>')
        out.append(f'<text x="{left - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
        y += step
    e = math.ceil(lo)
    while e <= hi:
        if e % 4 == 3 or e == math.ceil(lo):
            x = px(2 ** e)
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eeeeee"/>')
            out.append(f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">'
                       f'{human(2 ** e)}</text>')
        e += 1
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#000000"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 15}" text-anchor="middle">'
               f'bytes per rank (nccl-tests size)</text>')
    out.append(f'<text x="20" y="{top + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 20 {top + ph / 2})">bus bandwidth (GB/s)</text>')
    legend_y = top + 10
    used = []
    for i, (label, rows) in enumerate(sweeps):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        pts = " ".join(f"{px(r['bytes']):.1f},{py(r['busbw_gbps']):.1f}" for r in rows)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in rows:
            shape, fill = ALGO_MARKERS.get(r["algorithm"], ("circle", "#888888"))
            if r["algorithm"] not in used:
                used.append(r["algorithm"])
            out.append(marker(shape, px(r["bytes"]), py(r["busbw_gbps"]), fill, colour))
        out.append(f'<line x1="{left + pw + 15}" y1="{legend_y}" x2="{left + pw + 40}" '
                   f'y2="{legend_y}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 46}" y="{legend_y + 4}">{label}</text>')
        legend_y += 20
    legend_y += 10
    out.append(f'<text x="{left + pw + 15}" y="{legend_y}">algorithm chosen:</text>')
    legend_y += 18
    for algo in used:
        shape, fill = ALGO_MARKERS.get(algo, ("circle", "#888888"))
        out.append(marker(shape, left + pw + 25, legend_y - 4, fill, "#000000"))
        out.append(f'<text x="{left + pw + 40}" y="{legend_y}">{algo}</text>')
        legend_y += 18
    out.append("</svg>")
    return "\n".join(out) + "\n"


def table(sweeps):
    labels = [label for label, _ in sweeps]
    head = "| size | " + " | ".join(f"{l} time (us) | algbw | busbw (GB/s) | algorithm" for l in labels) + " |"
    sep = "|---:|" + "---:|---:|---:|---|" * len(labels)
    lines = [head, sep]
    by_size = [{r["bytes"]: r for r in rows} for _, rows in sweeps]
    for size in sorted({b for d in by_size for b in d}):
        cells = [human(size)]
        for d in by_size:
            r = d.get(size)
            if r is None:
                cells += ["", "", "", ""]
            else:
                cells += [f"{r['time_s'] * 1e6:.2f}", f"{r['algbw_gbps']:.2f}",
                          f"{r['busbw_gbps']:.2f}", r["algorithm"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+", help="JSON files from trnsim collective --sweep --json")
    ap.add_argument("--svg", help="write the plot here")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    sweeps = []
    for path in args.sweeps:
        with open(path) as f:
            rows = json.load(f)
        if not rows:
            sys.exit(f"plot_sweep: {path}: empty sweep")
        label = f"{rows[0]['system']} ({rows[0]['chips']} chips, {rows[0]['ranks']} ranks)"
        sweeps.append((label, rows))
    if args.svg:
        title = args.title or f"{sweeps[0][1][0]['op']}: model bus bandwidth by size"
        with open(args.svg, "w") as f:
            f.write(svg(sweeps, title))
    sys.stdout.write(table(sweeps))


if __name__ == "__main__":
    main()
