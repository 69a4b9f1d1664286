"""Kernel coverage of the files under test: gcov data from a lane guest, summed and reported.

    python -m ci.coverage --gcno DIR --gcda gate=DIR [--gcda fuzz=DIR ...] --out DIR

--gcno is the kernel's exported notes (ci.kbuild writes them to <build>/gcov/:
each profiled object's .gcno and its source, under the object's path, e.g.
fs/eventpoll.gcno and fs/eventpoll.c); each --gcda NAME=DIR is a copy of the
guest's /sys/kernel/debug/gcov/ taken after one phase.  The data files are
matched to the notes by the object path at their end.  Every phase gets its own
report, and `both` (every phase summed) when there are two or more:

  DIR/<phase>/coverage.info   an lcov tracefile (lines, functions, branches)
  DIR/<phase>/html/           genhtml's report (lcov), when genhtml is installed
  DIR/summary.md              one line per file and phase: lines, functions, branches
  DIR/summary.json            the same as numbers
  DIR/unreached.md            the functions of fs/eventpoll.c no phase reached, each
                              with why (ci/coverage_reasons.py)

gcov (from gcc) reads the files; each data file is checked first (magic, version
and stamp against its notes, whole records), since gcov silently reads a cut one
as zero counts.  Exit status: 0 written, 2 bad input (a data file without notes,
a damaged or foreign data file, a missing directory), named in one line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# The files under test, as the coverage patch profiles them (patches/coverage/).
PROFILED = ("fs/eventpoll.c", "fs/file.c", "kernel/seccomp.c", "fs/select.c", "fs/signalfd.c",
            "io_uring/poll.c", "io_uring/rsrc.c")
GCDA_MAGIC, GCNO_MAGIC = 0x67636461, 0x67636e6f    # 'gcda', 'gcno'
PHASE_BOTH = "both"


class CoverageError(Exception):
    """Bad input (exit 2): one line for the user."""


# ---------------------------------------------------------------- the files

def _header(path: Path, magic: int) -> tuple[bytes, int, int]:
    """(the file's bytes, version, stamp) of a gcov notes or data file, or CoverageError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CoverageError(f"{path}: {exc.strerror}") from None
    if len(data) < 12 or struct.unpack_from("<I", data)[0] != magic:
        kind = "data (.gcda)" if magic == GCDA_MAGIC else "notes (.gcno)"
        raise CoverageError(f"{path}: not a gcov {kind} file")
    version, stamp = struct.unpack_from("<II", data, 4)
    return data, version, stamp


def gcc_major(version: int) -> int:
    """The GCC major version a gcov version word encodes ('B22*' is 12.2)."""
    text = version.to_bytes(4, "big").decode("latin-1")
    return (ord(text[0]) - ord("A")) * 10 + ord(text[1]) - ord("0")


def check_gcda(gcda: Path, gcno: Path) -> None:
    """Raise CoverageError unless gcda is a whole data file of the build gcno came from."""
    data, version, stamp = _header(gcda, GCDA_MAGIC)
    _, nversion, nstamp = _header(gcno, GCNO_MAGIC)
    if (version, stamp) != (nversion, nstamp):
        raise CoverageError(f"{gcda}: written by another build than {gcno} "
                            f"(version/stamp {version:#x}/{stamp:#x}, notes {nversion:#x}/{nstamp:#x})")
    unit = 1 if gcc_major(version) >= 12 else 4       # record lengths in bytes from GCC 12 on
    pos = 16 if gcc_major(version) >= 12 else 12       # GCC 12 added a checksum word
    while pos < len(data):
        if pos + 4 <= len(data) and struct.unpack_from("<I", data, pos)[0] == 0:
            break                # the end marker
        if pos + 8 > len(data):
            raise CoverageError(f"{gcda}: cut short in a record header at byte {pos}")
        tag, length = struct.unpack_from("<Ii", data, pos)
        pos += 8
        if length > 0:           # a negative length: that many bytes of zero counters, not stored
            pos += length * unit
        if pos > len(data):
            raise CoverageError(f"{gcda}: cut short in record {tag:#x} (needs {pos} bytes, has {len(data)})")


# ---------------------------------------------------------------- the counts

@dataclass
class FileCoverage:
    """One source file's counts: lines, functions (start, end, calls), branches per line."""
    source: str                                            # the object path's source, e.g. fs/eventpoll.c
    path: str = ""                                         # where the source text is, for the report
    lines: dict = field(default_factory=dict)              # line -> count
    functions: dict = field(default_factory=dict)          # name -> [start, end, count]
    branches: dict = field(default_factory=dict)           # line -> [count, ...]

    def add(self, other: "FileCoverage") -> None:
        for line, n in other.lines.items():
            self.lines[line] = self.lines.get(line, 0) + n
        for name, (start, end, n) in other.functions.items():
            mine = self.functions.setdefault(name, [start, end, 0])
            mine[2] += n
        for line, counts in other.branches.items():
            mine = self.branches.setdefault(line, [0] * len(counts))
            if len(mine) != len(counts):
                raise CoverageError(f"{self.source}:{line}: branch counts of different builds")
            self.branches[line] = [a + b for a, b in zip(mine, counts)]

    def totals(self) -> dict:
        taken = [c for counts in self.branches.values() for c in counts]
        return {"lines": [sum(1 for n in self.lines.values() if n), len(self.lines)],
                "functions": [sum(1 for f in self.functions.values() if f[2]), len(self.functions)],
                "branches": [sum(1 for c in taken if c), len(taken)]}


def _gcov_json(gcda: Path, gcno: Path) -> dict:
    """gcov's JSON for one data file, run on copies side by side in a scratch directory."""
    if shutil.which("gcov") is None:
        raise CoverageError("gcov is not installed (it comes with gcc)")
    with tempfile.TemporaryDirectory(prefix="fdr-gcov-") as tmp:
        base = Path(tmp) / gcno.stem
        shutil.copyfile(gcno, base.with_suffix(".gcno"))
        if gcda is not None:
            shutil.copyfile(gcda, base.with_suffix(".gcda"))
        proc = subprocess.run(["gcov", "--json-format", "--stdout", "--branch-probabilities", "--branch-counts",
                               base.with_suffix(".gcda").name], cwd=tmp, capture_output=True,
                              text=True, timeout=300)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise CoverageError(f"gcov failed on {gcda or gcno}: {(proc.stderr.strip() or 'no output')[:200]}")
    try:
        return json.loads(proc.stdout.splitlines()[0])
    except ValueError as exc:
        raise CoverageError(f"gcov gave no JSON for {gcda or gcno}: {exc}") from None


def parse_gcov(doc: dict, source: str, path: str = "") -> FileCoverage:
    """The counts of `source` (the main file, not the headers inlined in it) from gcov's JSON."""
    cov = FileCoverage(source, path)
    stem = source.rsplit("/", 1)[-1]
    for f in doc.get("files", []):
        name = f.get("file", "")
        if not (name == source or name.endswith("/" + source) or name == stem):
            continue
        for fn in f.get("functions", []):
            cov.functions[fn["name"]] = [fn["start_line"], fn["end_line"], fn["execution_count"]]
        for line in f.get("lines", []):
            n = line["line_number"]
            cov.lines[n] = cov.lines.get(n, 0) + line["count"]
            if line.get("branches"):
                counts = [b["count"] for b in line["branches"]]
                old = cov.branches.get(n)
                cov.branches[n] = counts if old is None else [a + b for a, b in zip(old, counts)]
    if not cov.lines:
        raise CoverageError(f"gcov found no lines of {source} in its notes")
    return cov


def notes_in(gcno_dir: Path) -> dict[str, Path]:
    """{'fs/eventpoll': its .gcno} for every notes file under the exported directory."""
    if not gcno_dir.is_dir():
        raise CoverageError(f"--gcno {gcno_dir}: no such directory (build the kernel with "
                            "ci/kconfig/gcov.config and the coverage patch)")
    found = {str(p.relative_to(gcno_dir).with_suffix("")): p for p in gcno_dir.rglob("*.gcno")}
    if not found:
        raise CoverageError(f"--gcno {gcno_dir}: no .gcno files there")
    return found


def match_data(gcda_dir: Path, notes: dict[str, Path]) -> dict[str, Path]:
    """{'fs/eventpoll': its .gcda} from a copy of the guest's gcov directory, matched to the
    notes by the object path at the end of each data file's path."""
    if not gcda_dir.is_dir():
        raise CoverageError(f"{gcda_dir}: no such directory of .gcda files")
    out = {}
    for p in sorted(gcda_dir.rglob("*.gcda")):
        rel = p.relative_to(gcda_dir).with_suffix("").as_posix()
        obj = next((o for o in notes if rel == o or rel.endswith("/" + o)), None)
        if obj is None:
            raise CoverageError(f"{p}: no notes file (.gcno) for it in the exported build")
        out[obj] = p
    return out


def load_phase(gcda_dir: Path, gcno_dir: Path) -> dict[str, FileCoverage]:
    """{source: FileCoverage} of every profiled object; one the guest never ran counts zero."""
    notes = notes_in(gcno_dir)
    data = match_data(gcda_dir, notes)
    out = {}
    for obj, gcno in sorted(notes.items()):
        gcda = data.get(obj)
        if gcda is not None:
            check_gcda(gcda, gcno)
        source = obj + ".c"
        text = gcno_dir / source
        out[source] = parse_gcov(_gcov_json(gcda, gcno), source, str(text) if text.exists() else "")
    return out


def merged(phases: list[dict[str, FileCoverage]]) -> dict[str, FileCoverage]:
    out: dict[str, FileCoverage] = {}
    for phase in phases:
        for source, cov in phase.items():
            if source not in out:
                out[source] = FileCoverage(source, cov.path)
            out[source].add(cov)
    return out


# ---------------------------------------------------------------- the reports

def lcov_info(files: dict[str, FileCoverage], test_name: str) -> str:
    """An lcov tracefile of these counts (what genhtml reads)."""
    out = []
    for source, cov in sorted(files.items()):
        out.append(f"TN:{test_name}\nSF:{cov.path or source}\n")
        for name, (start, _, n) in sorted(cov.functions.items(), key=lambda kv: kv[1][0]):
            out.append(f"FN:{start},{name}\n")
        for name, (_, _, n) in sorted(cov.functions.items(), key=lambda kv: kv[1][0]):
            out.append(f"FNDA:{n},{name}\n")
        t = cov.totals()
        out.append(f"FNF:{t['functions'][1]}\nFNH:{t['functions'][0]}\n")
        for line, counts in sorted(cov.branches.items()):
            for k, c in enumerate(counts):
                taken = c if cov.lines.get(line) else "-"
                out.append(f"BRDA:{line},0,{k},{taken}\n")
        out.append(f"BRF:{t['branches'][1]}\nBRH:{t['branches'][0]}\n")
        for line, n in sorted(cov.lines.items()):
            out.append(f"DA:{line},{n}\n")
        out.append(f"LF:{t['lines'][1]}\nLH:{t['lines'][0]}\nend_of_record\n")
    return "".join(out)


def genhtml(info: Path, out: Path, title: str) -> str:
    """genhtml's report of a tracefile into out/; '' when written, else why not."""
    if shutil.which("genhtml") is None:
        return "genhtml is not installed (Debian package lcov)"
    proc = subprocess.run(["genhtml", "--quiet", "--branch-coverage", "--function-coverage", "--ignore-errors", "source",
                           "--title", title, "--output-directory", str(out), str(info)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return f"genhtml failed: {(proc.stderr.strip() or proc.stdout.strip())[-300:]}"
    return ""


def _pct(hit_total) -> str:
    hit, total = hit_total
    return f"{hit}/{total} ({100.0 * hit / total:.1f}%)" if total else "0/0"


def summary_line(cov: FileCoverage) -> str:
    """'fs/eventpoll.c: lines 812/1000 (81.2%), functions ..., branches ...'"""
    t = cov.totals()
    return (f"{cov.source}: lines {_pct(t['lines'])}, functions {_pct(t['functions'])}, "
            f"branches {_pct(t['branches'])}")


def unreached(cov: FileCoverage) -> list[tuple[str, int, int]]:
    """(name, start, end) of the functions that never ran, by line."""
    return sorted(((n, s, e) for n, (s, e, c) in cov.functions.items() if not c), key=lambda f: f[1])


def reachable_lines(cov: FileCoverage, reasons: dict) -> tuple[int, int]:
    """(lines hit, lines user space can reach): the lines of functions marked unreachable from
    user space (by `reasons`) left out; lines outside every function count as reachable."""
    out_of_reach = [(s, e) for n, (s, e, _) in cov.functions.items()
                    if reasons.get(n, ("",))[0] == "unreachable"]
    lines = [(ln, n) for ln, n in cov.lines.items() if not any(s <= ln <= e for s, e in out_of_reach)]
    return sum(1 for _, n in lines if n), len(lines)


def unreached_md(cov: FileCoverage, reasons: dict) -> str:
    """The unreached functions of one file, each with its category and reason, and the line
    coverage against what user space can reach."""
    hit, reach = reachable_lines(cov, reasons)
    t = cov.totals()
    out = [f"# {cov.source}: functions nothing reached\n\n",
           f"Lines {_pct(t['lines'])}; of the {reach} lines user space can reach, {hit} "
           f"({100.0 * hit / reach if reach else 0:.1f}%) ran.\n\n",
           "| function | lines | category | why |\n|---|---|---|---|\n"]
    for name, start, end in unreached(cov):
        category, why = reasons.get(name, ("missing case", "no reason recorded yet"))
        out.append(f"| `{name}` | {start}-{end} | {category} | {why} |\n")
    return "".join(out)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def report(phases: dict[str, Path], gcno_dir: Path, out: Path) -> dict:
    """Every phase's (and, with two or more, their sum's) tracefile, HTML and summaries in out;
    returns summary.json's content.  Everything is read and checked before anything is written."""
    loaded = {name: load_phase(Path(d), gcno_dir) for name, d in phases.items()}
    if len(loaded) > 1:
        loaded[PHASE_BOTH] = merged(list(loaded.values()))
    from ci.coverage_reasons import REASONS
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"phases": {}, "html": {}}
    lines = ["# Kernel coverage of the files under test\n\n",
             "One line per file: lines, functions, branches hit of those gcov counts.\n"]
    for name, files in loaded.items():
        (out / name).mkdir(exist_ok=True)
        info = out / name / "coverage.info"
        _write(info, lcov_info(files, name))
        why_not = genhtml(info, out / name / "html", f"fd-replace suite: {name}")
        summary["html"][name] = why_not or f"{name}/html/index.html"
        summary["phases"][name] = {src: cov.totals() for src, cov in files.items()}
        lines.append(f"\n## {name}\n\n")
        lines += [f"- {summary_line(cov)}\n" for _, cov in sorted(files.items())]
        lines.append(f"\nHTML: {why_not or f'{name}/html/index.html'}\n")
    final = loaded[PHASE_BOTH if PHASE_BOTH in loaded else next(iter(loaded))]
    ep = final.get("fs/eventpoll.c")
    if ep is not None:
        _write(out / "unreached.md", unreached_md(ep, REASONS))
        hit, reach = reachable_lines(ep, REASONS)
        summary["eventpoll_reachable_lines"] = [hit, reach]
    _write(out / "summary.md", "".join(lines))
    _write(out / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def one_line(summary: dict, phase: str | None = None) -> list[str]:
    """The per-file lines of one phase (the last one, `both` when present) from summary.json."""
    phases = summary.get("phases", {})
    if not phases:
        return []
    name = phase or (PHASE_BOTH if PHASE_BOTH in phases else list(phases)[-1])
    out = []
    for src, t in sorted(phases[name].items()):
        out.append(f"{src}: lines {_pct(t['lines'])}, functions {_pct(t['functions'])}, "
                   f"branches {_pct(t['branches'])}")
    return out


# ---------------------------------------------------------------- CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CoverageError(message)


def main(argv=None) -> int:
    p = _Parser(prog="python -m ci.coverage", description=__doc__.splitlines()[0],
                epilog="\n".join(__doc__.splitlines()[2:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gcno", required=True, type=Path, help="the kernel build's exported notes (<build>/gcov)")
    p.add_argument("--gcda", action="append", required=True, metavar="PHASE=DIR",
                   help="a copy of the guest's gcov directory after one phase (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="the report's directory")
    try:
        args = p.parse_args(argv)
        phases = {}
        for item in args.gcda:
            name, sep, d = item.partition("=")
            if not sep or not name or name == PHASE_BOTH or name in phases:
                raise CoverageError(f"--gcda {item}: expected PHASE=DIR, a new phase name other than "
                                    f"'{PHASE_BOTH}'")
            phases[name] = Path(d)
        summary = report(phases, args.gcno, args.out)
    except CoverageError as exc:
        print(f"coverage: error: {exc}", file=sys.stderr)
        return 2
    for line in one_line(summary):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
