"""Benchmark: the userspace fixup's latency per replace against the target's fd count.

    python bench/fixup_latency.py [--counts 1000,5000,10000,19500] [--epolls 4]
                                  [--reps 25] [--out fixup-latency]

For each fd count, bench/fixup_bench.c (built here with cc, linked with
native/fixup.c) starts one target holding that many fds, a few epolls each
watching the replaced fd, and answers REPS traps per mode with an
ADDFD(SETFD) through fdr_fixup_addfd(), the modes taking turns on the same
target: naive (read every fd's fdinfo, as the closed supervisor does), scan
(readlink every /proc/<pid>/fd entry, kcmp the epolls), tracked (the epolls
the supervisor made for the target's trapped epoll_create1: no scan) and none
(the bare ADDFD).  It prints the median
and p99 per replace, the ratios, the slope of each mode against the fd count,
and writes the table (.txt, .json) and a plot (.svg) into --out.  Counts above
the hard RLIMIT_NOFILE are left out with a note.  Not a test: nothing is
asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODES = ("naive", "scan", "tracked", "none")
COLOURS = {"naive": "#c0392b", "scan": "#e67e22", "tracked": "#27ae60", "none": "#7f8c8d"}


def build(tmp: pathlib.Path) -> pathlib.Path:
    exe = tmp / "fixup_bench"
    cc = os.environ.get("CC") or shutil.which("cc") or "gcc"
    subprocess.run([cc, "-O2", "-Wall", f"-I{ROOT / 'native'}", "-o", str(exe),
                    str(ROOT / "bench" / "fixup_bench.c"), str(ROOT / "native" / "fixup.c")],
                   check=True)
    return exe


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(exe: pathlib.Path, fds: int, epolls: int, reps: int) -> dict:
    done = subprocess.run([str(exe), str(fds), str(epolls), str(reps * len(MODES))],
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"fixup_bench {fds} fds failed ({done.returncode}): {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    row = {"fds": fds, "track_us": float(lines[0].split()[-1])}
    for line in lines[1:]:
        mode, *samples = line.split()
        xs = [float(x) for x in samples]
        row[mode] = {"median_us": percentile(xs, 0.5), "p99_us": percentile(xs, 0.99), "n": len(xs)}
    return row


def slope(rows: list[dict], mode: str) -> float:
    """Least-squares microseconds per 1000 fds of the mode's median."""
    xs = [r["fds"] / 1000 for r in rows]
    ys = [r[mode]["median_us"] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def table(rows: list[dict], epolls: int) -> str:
    out = [f"fixup latency per replace, {epolls} epolls watching the fd (µs; median / p99)",
           f"{'fds':>6} {'naive':>19} {'scan':>19} {'tracked':>15} {'bare ADDFD':>12}"
           f" {'naive/tracked':>14} {'naive/scan':>11}"]
    for r in rows:
        cell = {m: f"{r[m]['median_us']:.0f} / {r[m]['p99_us']:.0f}" for m in MODES}
        out.append(f"{r['fds']:>6} {cell['naive']:>19} {cell['scan']:>19} {cell['tracked']:>15}"
                   f" {cell['none']:>12} {r['naive']['median_us'] / r['tracked']['median_us']:>13.0f}x"
                   f" {r['naive']['median_us'] / r['scan']['median_us']:>10.1f}x")
    out.append("slope (µs of median per 1000 more fds): " + ", ".join(
        f"{m} {slope(rows, m):.1f}" for m in MODES) if len(rows) > 1 else "slope: one count only")
    out.append("tracking (the epoll_create1 traps answered by fdr_fixup_epoll_create, all "
               "epolls): " + ", ".join(f"{r['fds']} fds {r['track_us']:.0f} µs" for r in rows))
    return "\n".join(out)


def svg(rows: list[dict], epolls: int) -> str:
    """Median (line) and p99 (dots) against fd count, log-scaled latency."""
    import math
    w, h, left, right, top, bottom = 720, 440, 70, 150, 40, 50
    xmax = max(r["fds"] for r in rows)
    ys = [r[m][k] for r in rows for m in MODES for k in ("median_us", "p99_us")]
    lo, hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(fds):
        return left + (w - left - right) * fds / xmax

    def py(us):
        return top + (h - top - bottom) * (hi - math.log10(us)) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{left}" y="22" font-size="14">Fixup latency per replace vs target fds '
             f'({epolls} epolls)</text>']
    for e in range(lo, hi + 1):
        y = py(10 ** e)
        label = f"{10 ** e:g} µs" if e < 3 else f"{10 ** (e - 3):g} ms"
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for r in rows:
        x = px(r["fds"])
        parts.append(f'<text x="{x:.1f}" y="{h - bottom + 18}" text-anchor="middle">{r["fds"]}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">'
                 f'open fds in the target</text>')
    for i, m in enumerate(MODES):
        pts = " ".join(f"{px(r['fds']):.1f},{py(r[m]['median_us']):.1f}" for r in rows)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[m]}" stroke-width="2"/>')
        for r in rows:
            parts.append(f'<circle cx="{px(r["fds"]):.1f}" cy="{py(r[m]["p99_us"]):.1f}" r="3" '
                         f'fill="{COLOURS[m]}" opacity="0.5"/>')
        y = top + 20 * i
        parts.append(f'<line x1="{w - right + 10}" x2="{w - right + 30}" y1="{y}" y2="{y}" '
                     f'stroke="{COLOURS[m]}" stroke-width="2"/><text x="{w - right + 36}" '
                     f'y="{y + 4}">{"bare ADDFD" if m == "none" else m}</text>')
    parts.append(f'<text x="{w - right + 10}" y="{top + 20 * len(MODES) + 4}">line: median, '
                 f'dot: p99</text></svg>')
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,5000,10000,19500")
    ap.add_argument("--epolls", type=int, default=4)
    ap.add_argument("--reps", type=int, default=25, help="replaces per mode and count")
    ap.add_argument("--out", default="fixup-latency")
    args = ap.parse_args(argv)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    counts = [int(c) for c in args.counts.split(",")]
    skipped = [c for c in counts if hard != resource.RLIM_INFINITY and c + 16 > hard]
    counts = [c for c in counts if c not in skipped]
    if skipped:
        print(f"left out (hard RLIMIT_NOFILE {hard}): {', '.join(map(str, skipped))} fds",
              file=sys.stderr)
    if not counts:
        return 4
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(pathlib.Path(tmp))
        rows = [measure(exe, c, args.epolls, args.reps) for c in counts]
    text = table(rows, args.epolls)
    print(text)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fixup_latency.txt").write_text(text + "\n")
    (out / "fixup_latency.json").write_text(json.dumps(
        {"epolls": args.epolls, "reps": args.reps, "rows": rows,
         "slope_us_per_1000_fds": {m: slope(rows, m) for m in MODES} if len(rows) > 1 else None},
        indent=2) + "\n")
    (out / "fixup_latency.svg").write_text(svg(rows, args.epolls))
    print(f"wrote {out / 'fixup_latency.txt'}, .json and .svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
