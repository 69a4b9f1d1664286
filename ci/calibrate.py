"""How much slower is this machine than a reference one?  The timeout scale, measured.

The lane runs `measure()` on the host before booting and again in the guest;
`scale()` turns the ratio into FDR_TIMEOUT_SCALE.  What is timed is what the
suite's waits wait for: process creation (fork, exec, exit, wait: every target
and actor), and plain interpreter work (the gate's own Python and the
executor's steps).  The interpreter ratio counts in full, the process-creation
ratio at half (under TCG an exec's page faults are far slower than the
syscalls a step's bound waits for), and the larger of the two, with a margin,
is the scale: a bound sized on the host still holds in a TCG guest where
everything is 10-20 times slower, and a sleeper that is meant to run out does
not wait many times longer than it must.

    python -m ci.calibrate                  # prints this machine's figure in ms
    python -m ci.calibrate --against S,P    # the scale against a reference machine's figures,
                                            # then this machine's
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

MARGIN = 1.5          # a bound may wait half as long again as the measured slowdown
WEIGHT = {"spawn_ms": 0.5, "python_ms": 1.0}
MAX_SCALE = 200


def _spawn_ms(rounds: int = 31) -> float:
    """Median milliseconds to fork, exec /bin/true and reap it."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(["/bin/true"], check=False)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def _python_ms(rounds: int = 9) -> float:
    """Median milliseconds of a fixed piece of interpreter work."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for i in range(100_000):
            total += i * i % 7
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def measure() -> dict[str, float]:
    """This machine's figures: {'spawn_ms': ..., 'python_ms': ...}."""
    return {"spawn_ms": round(_spawn_ms(), 3), "python_ms": round(_python_ms(), 3)}


def scale(here: dict[str, float], reference: dict[str, float]) -> int:
    """FDR_TIMEOUT_SCALE for `here` against `reference`: the worse weighted ratio times
    MARGIN, at least 1."""
    ratio = max(WEIGHT[k] * here[k] / reference[k] for k in reference if reference[k] > 0)
    return max(1, min(MAX_SCALE, math.ceil(ratio * MARGIN)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ci.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("--against", metavar="SPAWN_MS,PYTHON_MS",
                    help="a reference machine's figures: print the timeout scale for this one")
    args = ap.parse_args(argv)
    here = measure()
    if not args.against:
        print(f"{here['spawn_ms']},{here['python_ms']}")
        return 0
    try:
        spawn, python = (float(x) for x in args.against.split(","))
    except ValueError:
        print(f"calibrate: error: --against wants SPAWN_MS,PYTHON_MS, got {args.against!r}",
              file=sys.stderr)
        return 2
    print(scale(here, {"spawn_ms": spawn, "python_ms": python}), f"{here['spawn_ms']},{here['python_ms']}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
