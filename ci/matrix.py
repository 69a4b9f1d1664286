"""The behaviour matrix: every case by family against every kernel the lane ran.

Rows are the gate's results (results.jsonl of each kernel's gate/), grouped by
family, then the lane's own rows: the fuzz campaign, kernel health, the guest.
Columns are kernels (release, upstream version, detected profile).  A cell is
pass/fail/skip/xfail/error with the skip reason; a row whose cells differ
between kernels is marked, and a failing cell links to its failure text in that
kernel's gate/summary.md.  `python -m ci.matrix DIR` redraws it from DIR.
"""
from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path

from ci.outcomes import FAILING, read_jsonl

SYMBOL = {"pass": "pass", "fail": "FAIL", "skip": "skip", "xfail": "xfail", "xpass": "XPASS",
          "error": "ERROR", "": "-"}


def load(run_dir: Path) -> dict:
    """One kernel's column: its lane.json and its results by 'family.name'."""
    meta = json.loads((run_dir / "lane.json").read_text())
    cells = {}
    for r in read_jsonl(run_dir / "gate" / "results.jsonl"):
        cells[(r.family, r.name)] = (r.outcome, r.reason)
    fuzz_log = run_dir / "fuzz" / "fuzz.log"
    last = fuzz_log.read_text(errors="replace").strip().splitlines()[-1:] if fuzz_log.exists() else []
    fuzz = {None: ("", ""), 0: ("pass", ""), 4: ("skip", last[0] if last else ""),
            1: ("fail", "divergence")}.get(meta.get("fuzz_exit"), ("error", f"exit {meta.get('fuzz_exit')}"))
    cells[("lane", "fuzz_campaign")] = fuzz
    if meta.get("mutants_exit") is not None:
        cells[("lane", "mutation_check")] = (("pass", "") if meta["mutants_exit"] == 0
                                             else ("fail", f"pytest exit {meta['mutants_exit']}"))
    cells[("lane", "kernel_health")] = (("fail", "; ".join(meta["health"])[:200]) if meta.get("health")
                                        else ("pass", ""))
    cells[("lane", "guest")] = ("error", meta["guest_error"]) if meta.get("guest_error") else ("pass", "")
    return {"dir": run_dir, "meta": meta, "cells": cells}


def rows_of(columns: list[dict]) -> list[tuple]:
    """Every (family, name) any kernel reported, families in first-seen order, 'lane' last."""
    order: dict = {}
    for col in columns:
        for key in col["cells"]:
            order.setdefault(key, None)
    keys = list(order)
    families = list(dict.fromkeys(k[0] for k in keys if k[0] != "lane")) + ["lane"]
    return [k for fam in families for k in keys if k[0] == fam]


def differs(cells: list[tuple]) -> bool:
    return len({c[0] for c in cells}) > 1


def header_of(col: dict) -> tuple[str, str]:
    m = col["meta"]
    return m["label"], f"{m.get('kernel_version') or m.get('release')}; {m.get('profile') or '?'}"


def markdown(columns: list[dict]) -> str:
    heads = [header_of(c) for c in columns]
    out = ["# Behaviour matrix\n\n",
           "Cells: pass, FAIL, skip (reason), xfail, ERROR.  `≠` marks rows that differ between kernels.\n\n"]
    out.append("| kernel | release / upstream version | profile | version facts | gate | fuzz | "
               "seconds (boot, gate, fuzz) |\n|---|---|---|---|---|---|---|\n")
    for c in columns:
        m = c["meta"]
        sec = m.get("seconds", {})
        out.append(f"| {m['label']} | {m.get('release')} / {m.get('kernel_version') or '?'} | "
                   f"{m.get('profile') or '?'} | {m.get('kernel_commits') or '?'} | "
                   f"exit {m.get('gate_exit')} | exit {m.get('fuzz_exit')} | "
                   f"{sec.get('boot', '-')}, {sec.get('gate', '-')}, {sec.get('fuzz', '-')} |\n")
    out.append(coverage_md(columns))
    out.append("\n| | case | " + " | ".join(h[0] for h in heads) + " |\n")
    out.append("|---|---|" + "---|" * len(heads) + "\n")
    family = None
    for key in rows_of(columns):
        if key[0] != family:
            family = key[0]
            out.append(f"| | **{family}** |" + " |" * len(heads) + "\n")
        cells = [c["cells"].get(key, ("", "")) for c in columns]
        mark = "≠" if differs(cells) else ""
        shown = []
        for col, (outcome, reason) in zip(columns, cells):
            text = SYMBOL.get(outcome, outcome) + (f" ({reason})" if reason and outcome != "pass" else "")
            if outcome in FAILING:
                text = f"[{text}]({col['meta']['label']}/gate/summary.md)"
            shown.append(text.replace("|", "\\|"))
        out.append(f"| {mark} | {key[1]} | " + " | ".join(shown) + " |\n")
    return "".join(out)


def coverage_md(columns: list[dict]) -> str:
    """The per-file coverage lines of the kernels the lane ran with --coverage ('' if none)."""
    out = []
    for c in columns:
        m = c["meta"]
        if m.get("coverage") or m.get("coverage_error"):
            out.append(f"\n{m['label']} (gate and fuzz campaign; {m['label']}/coverage/report/summary.md):\n\n")
            out += [f"- {line}\n" for line in m.get("coverage", [])]
            if m.get("coverage_error"):
                out.append(f"- coverage report failed: {m['coverage_error']}\n")
    return "\n## Kernel coverage of the files under test\n" + "".join(out) if out else ""


CSS = """body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px}th{background:#eee}
.pass{background:#dfd}.fail,.error,.xpass{background:#fcc}.skip{background:#eee}.xfail{background:#ffd}
tr.diff td.name{font-weight:bold;background:#ffe08a}tr.fam td{background:#ddd;font-weight:bold}"""


def to_html(columns: list[dict]) -> str:
    esc = html.escape
    out = [f"<!doctype html><meta charset=utf-8><title>Behaviour matrix</title><style>{CSS}</style>",
           "<h1>Behaviour matrix</h1><p>Rows that differ between kernels are highlighted.</p><table><tr><th>case"]
    out += [f"<th>{esc(a)}<br><small>{esc(b)}</small>" for a, b in map(header_of, columns)]
    family = None
    for key in rows_of(columns):
        if key[0] != family:
            family = key[0]
            out.append(f"<tr class=fam><td colspan={len(columns) + 1}>{esc(family)}")
        cells = [c["cells"].get(key, ("", "")) for c in columns]
        out.append(f"<tr class={'diff' if differs(cells) else 'same'}><td class=name>{esc(key[1])}")
        for col, (outcome, reason) in zip(columns, cells):
            text = esc(SYMBOL.get(outcome, outcome) + (f" ({reason})" if reason and outcome != "pass" else ""))
            if outcome in FAILING:
                text = f"<a href='{esc(col['meta']['label'])}/gate/summary.md'>{text}</a>"
            out.append(f"<td class={esc(outcome or 'none')}>{text}")
    out.append("</table>")
    cov = coverage_md(columns)
    if cov:
        out.append(f"<pre>{esc(cov)}</pre>")
    return "".join(out) + "\n"


def write(results: Path, run_dirs: list[Path]) -> None:
    """DIR/matrix.md and DIR/matrix.html from the given kernels' directories (written whole)."""
    columns = [load(d) for d in run_dirs if (d / "lane.json").exists()]
    for name, text in (("matrix.md", markdown(columns)), ("matrix.html", to_html(columns))):
        tmp = results / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, results / name)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m ci.matrix RESULTS_DIR (a lane results directory)", file=sys.stderr)
        return 2
    results = Path(argv[0])
    dirs = sorted(d for d in results.iterdir() if (d / "lane.json").exists())
    if not dirs:
        print(f"matrix: error: no kernel results (*/lane.json) in {results}", file=sys.stderr)
        return 2
    try:
        write(results, dirs)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"matrix: error: a damaged lane.json or results.jsonl in {results}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
