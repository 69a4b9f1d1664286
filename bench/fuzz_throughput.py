"""Benchmark: programs checked per second on one core, end to end and bare.

    python bench/fuzz_throughput.py [--programs N] [--seed S]

End to end = generate + execute + model prediction + compare (the campaign's
inner loop); bare = the same programs through the executor alone.  Prints
both rates and their ratio.  A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from fuzz.generate import RandomChooser, generate  # noqa: E402
from native.executor import run  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    except OSError:
        pass
    chooser = RandomChooser(args.seed)
    programs = [generate(chooser) for _ in range(args.programs)]
    steps = sum(len(p.steps) for p in programs)

    t0 = time.perf_counter()
    for p in programs:
        run(p)
    bare = args.programs / (time.perf_counter() - t0)
    print(f"bare executor: {bare:.0f} programs/s ({bare * steps / args.programs:.0f} steps/s), "
          f"{steps / args.programs:.1f} steps/program")
    try:
        from fuzz.model import predict
    except ImportError:
        print("end to end: fuzz.model is not available")
        return 0
    chooser = RandomChooser(args.seed)
    t0 = time.perf_counter()
    for _ in range(args.programs):
        p = generate(chooser)
        _ = run(p).outcomes == predict(p, "stock")
    e2e = args.programs / (time.perf_counter() - t0)
    print(f"end to end:    {e2e:.0f} programs/s; ratio {e2e / bare:.0%} of the bare executor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
