"""Benchmark: wall time of a whole gate run, without the fuzz smoke.

    python bench/gate_walltime.py [--runs N] [--gate CMD] [-- extra gate arguments]

Runs `ci/gate --results <tmp> --fuzz-seconds 0` N times (default 3; --gate names
another launcher, e.g. an unpacked bundle's run-gate) and prints the min and
median wall time and the number of cases (from the KTAP '# Totals:' line, less
the gate's own fuzz, gate and kernel_health tests).  Each ci/gate run includes
ci/bootstrap's (quick) checks.  A benchmark, not a test: nothing is asserted, a gate
that does not exit 0 is reported.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GATE_OWN = re.compile(r"^  # Subtest: (fuzz|gate|kernel_health)\n  1\.\.(\d+)$", re.M)


def cases_in(ktap: str) -> int | None:
    """Tests in the Totals line, less those of the gate's own families."""
    totals = re.search(r"^# Totals: (.*)$", ktap, re.M)
    if not totals:
        return None
    counted = sum(int(n) for n in re.findall(r":(\d+)", totals[1]))
    return counted - sum(int(m[2]) for m in GATE_OWN.finditer(ktap))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="gate runs (default 3)")
    ap.add_argument("--gate", default=str(REPO / "ci" / "gate"), help="the gate launcher (default ci/gate)")
    ap.add_argument("extra", nargs="*", help="more gate arguments (after --)")
    args = ap.parse_args(argv)
    times, cases = [], None
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="fdr-bench-") as results:
            cmd = [args.gate, "--results", results, "--fuzz-seconds", "0", *args.extra]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
        times.append(elapsed)
        cases = cases_in(proc.stdout)
        note = "" if proc.returncode == 0 else f"  (exit {proc.returncode}: {proc.stderr.strip()[-200:]})"
        print(f"run {run}: {elapsed:.2f} s{note}", flush=True)
    print(f"gate wall time over {len(times)} runs: min {min(times):.2f} s, median {statistics.median(times):.2f} s; "
          f"{cases if cases is not None else '?'} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
