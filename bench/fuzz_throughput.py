"""Benchmark: programs checked per second on one core, end to end and bare, and the
campaign's rate with 1 and 2 jobs.

    python bench/fuzz_throughput.py [--programs N] [--seed S] [--profile P]
                                    [--jobs-seconds S] [--jobs 1,2]

End to end = the campaign's inner loop (fuzz.campaign.worker's one()): generate,
fit the background timeouts to the model's prediction, execute, predict, compare
with Model.divergence; bare = the same programs through the executor alone.
Prints both rates, their ratio, and where the end-to-end time goes, in wall time
and, for the generator and the model, in CPU time (which other processes on a
loaded machine disturb far less).  That part is pinned to one core (the target
and the supervisor share it).  Then whole campaigns (fuzz.campaign.run_campaign,
no hypothesis phase, no output directory) run for --jobs-seconds each with every
--jobs count, on the cores this process may use, one after the other: programs
per second while the workers run (and over the wall time, which includes starting
them), and each count's rate over the first's.  The load
average is printed before and after: other work on the machine shows there.  A
benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from fuzz.campaign import check, predict, run_campaign, seeded_program  # noqa: E402
from native.executor import run  # noqa: E402

CHUNK = 50


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="stock")
    ap.add_argument("--jobs-seconds", type=float, default=10.0,
                    help="length of each whole campaign (0: none)")
    ap.add_argument("--jobs", default="1,2", help="job counts of the whole campaigns")
    args = ap.parse_args(argv)
    cores = os.sched_getaffinity(0)
    print(f"load average: {load()}; {len(cores)} core(s) usable, {os.cpu_count()} online")
    try:
        os.sched_setaffinity(0, {min(cores)})   # one core
    except OSError:
        pass
    one_core(args)
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        pass
    if args.jobs_seconds > 0:
        campaigns(args)
    print(f"load average: {load()}")
    return 0


def one_core(args):
    n = args.programs
    seeds = [f"{args.seed}:{i}" for i in range(n)]
    t_gen = t_model = t_bare = t_e2e = 0.0
    cpu_gen = cpu_model = 0.0
    steps = forks = flaky = 0
    # Bare and end-to-end alternate in chunks of CHUNK programs, so that a change in the
    # machine's load (other jobs) hits both alike.
    for lo in range(0, n, CHUNK):
        chunk = seeds[lo:lo + CHUNK]
        t0, c0 = time.perf_counter(), time.process_time()
        ready = [seeded_program(s, 20, args.profile)[0] for s in chunk]
        t_gen += time.perf_counter() - t0
        cpu_gen += time.process_time() - c0
        steps += sum(len(p.steps) for p in ready)
        forks += sum(s.op == "fork" for p in ready for s in p.steps)
        t0, c0 = time.perf_counter(), time.process_time()
        for p in ready:
            predict(p, args.profile, None)
        t_model += time.perf_counter() - t0
        cpu_model += time.process_time() - c0
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
    print(f"CPU time:      generate+fit {1000 * cpu_gen / n:.2f} ms, model {1000 * cpu_model / n:.2f} ms"
          " per program (fit includes a prediction)")
    print(f"fixed cost:    an empty program takes {empty_run_us():.0f} us in the executor "
          "(a target forked, filtered, handed over, killed and reaped)")


def campaigns(args):
    counts = [int(j) for j in args.jobs.split(",")]
    if max(counts) > len(os.sched_getaffinity(0)):
        print(f"campaigns: only {len(os.sched_getaffinity(0))} core(s) usable (taskset?): "
              "the jobs share them")
    rates = []
    for jobs in counts:
        stats, _, _ = run_campaign(args.jobs_seconds, args.profile, args.seed, jobs,
                                   hypothesis=False, out=None, first=False)
        # Each worker runs for --jobs-seconds from its own start: programs over that is
        # the rate once running; over the wall time it includes starting the workers.
        rates.append(stats.programs / args.jobs_seconds)
        print(f"campaign, {jobs} job(s): {rates[-1]:.0f} programs/s while running "
              f"({stats.programs / stats.seconds:.0f}/s over the {stats.seconds:.1f} s wall time "
              f"with start-up; {stats.programs} programs, {stats.divergences} divergences, "
              f"{stats.flaky} flaky)"
              + (f"; {rates[-1] / rates[0]:.2f}x the {counts[0]}-job rate" if len(rates) > 1 else ""))


def load() -> str:
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


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
