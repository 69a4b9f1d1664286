"""Benchmark: programs checked per second on one core, end to end and bare.

    python bench/fuzz_throughput.py [--programs N] [--seed S] [--profile P]

End to end = the campaign's inner loop (fuzz.campaign.worker's one()): generate,
fit the background timeouts to the model's prediction, execute, predict, compare
with Model.divergence; bare = the same programs through the executor alone.
Prints both rates, their ratio, and where the end-to-end time goes.  The process
is pinned to one core (the target and the supervisor share it).  A benchmark,
not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from fuzz.campaign import check, predict, seeded_program  # noqa: E402
from native.executor import run  # noqa: E402

CHUNK = 50


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="stock")
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    except OSError:
        pass
    n = args.programs
    seeds = [f"{args.seed}:{i}" for i in range(n)]
    t_gen = t_model = t_bare = t_e2e = 0.0
    steps = forks = flaky = 0
    # Bare and end-to-end alternate in chunks of CHUNK programs, so that a change in the
    # machine's load (other jobs) hits both alike.
    for lo in range(0, n, CHUNK):
        chunk = seeds[lo:lo + CHUNK]
        t0 = time.perf_counter()
        ready = [seeded_program(s, 20, args.profile)[0] for s in chunk]
        t_gen += time.perf_counter() - t0
        steps += sum(len(p.steps) for p in ready)
        forks += sum(s.op == "fork" for p in ready for s in p.steps)
        t0 = time.perf_counter()
        for p in ready:
            predict(p, args.profile, None)
        t_model += time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in ready:
            run(p)
        t_bare += time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in chunk:             # the campaign's inner loop, from the seed on
            program, model = seeded_program(s, 20, args.profile)
            verdict, _, _ = check(program, args.profile, None, model=model)
            flaky += verdict is not None
        t_e2e += time.perf_counter() - t0
    bare, e2e = n / t_bare, n / t_e2e
    print(f"bare executor: {bare:.0f} programs/s ({steps / t_bare:.0f} steps/s), "
          f"{steps / n:.1f} steps and {forks / n:.2f} forks per program")
    print(f"end to end:    {e2e:.0f} programs/s; ratio {e2e / bare:.0%} of the bare executor"
          f" ({flaky} not agreeing at once: run again)")
    print(f"per program:   generate+fit {1000 * t_gen / n:.2f} ms, model {1000 * t_model / n:.2f} ms,"
          f" executor {1000 * t_bare / n:.2f} ms, end to end {1000 * t_e2e / n:.2f} ms")
    print(f"fixed cost:    an empty program takes {empty_run_us():.0f} us in the executor "
          "(a target forked, filtered, handed over, killed and reaped)")
    return 0


def empty_run_us(runs: int = 200) -> float:
    from native.program import Program
    empty = Program("empty")
    run(empty)
    t0 = time.perf_counter()
    for _ in range(runs):
        run(empty)
    return 1e6 * (time.perf_counter() - t0) / runs


if __name__ == "__main__":
    sys.exit(main())
