"""A fuzz campaign: random programs through the executor and the model until time runs out.

Each worker process runs its own seeded generator.  A program whose real trace
differs from the model's prediction is a divergence: it is shrunk, given the
model's prediction as its expected trace, and written out as a standalone C
reproducer.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import multiprocessing
import time

from native import program as P

PROGRESS_EVERY = 2.0


@dataclasses.dataclass
class Stats:
    programs: int = 0
    steps: int = 0
    seconds: float = 0.0
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    divergences: int = 0

    def add(self, other: "Stats"):
        self.programs += other.programs
        self.steps += other.steps
        self.kinds.update(other.kinds)
        self.divergences += other.divergences

    def line(self) -> str:
        rate = self.programs / self.seconds if self.seconds else 0.0
        ops = " ".join(f"{k}={v}" for k, v in sorted(self.kinds.items()))
        return (f"fuzz: programs={self.programs} steps={self.steps} programs/s={rate:.0f} "
                f"divergences={self.divergences} kinds[{len(self.kinds)}]: {ops}")


def count_kinds(program: P.Program, kinds: collections.Counter):
    for step in program.steps:
        kinds[step.op] += 1
        if step.op == "replace":
            kinds[f"via:{step.via}"] += 1
    kinds["multi_ref_replace"] += getattr(program, "meta", {}).get("multi_ref_replaces", 0)


def diverges(program: P.Program, profile: str, mutant: str | None):
    """(real trace, predicted outcomes) when they differ, else None."""
    from fuzz.model import predict
    from native.executor import run
    trace = run(program)
    predicted = predict(program, profile, mutant=mutant)
    if trace.failure is None and trace.outcomes == predicted:
        return None
    return trace, predicted


def worker(seed: int, seconds: float, profile: str, mutant: str | None, max_steps: int,
           progress=None):
    """Run programs for `seconds`; return (Stats, the first divergent program or None)."""
    from fuzz.generate import RandomChooser, generate
    chooser = RandomChooser(seed)
    stats = Stats()
    start = last = time.monotonic()
    while time.monotonic() - start < seconds:
        program = generate(chooser, max_steps, name=f"fuzz_seed{seed}_{stats.programs}")
        stats.programs += 1
        stats.steps += len(program.steps)
        count_kinds(program, stats.kinds)
        if diverges(program, profile, mutant):
            stats.divergences += 1
            stats.seconds = time.monotonic() - start
            return stats, program
        if progress and time.monotonic() - last > PROGRESS_EVERY:
            last = time.monotonic()
            stats.seconds = last - start
            progress(stats)
    stats.seconds = time.monotonic() - start
    return stats, None


def with_expectations(program: P.Program, profile: str, mutant: str | None) -> P.Program:
    """A copy whose expected trace, under `profile`, is the model's prediction."""
    from fuzz.model import predict
    p = program.copy()
    for step, outcome in zip(p.steps, predict(p, profile, mutant=mutant)):
        step.expected = {name: outcome for name in P.PROFILES}
    return p


def shrink_divergence(program: P.Program, profile: str, mutant: str | None) -> P.Program:
    from fuzz.shrink import shrink
    return shrink(program, lambda p: diverges(p, profile, mutant) is not None)


def run_campaign(seconds: float, profile: str, seed: int, jobs: int, mutant=None,
                 max_steps: int = 20, progress=None):
    """(Stats, first divergent program or None) over `jobs` worker processes."""
    total = Stats()
    found = None
    start = time.monotonic()
    if jobs <= 1:
        stats, found = worker(seed, seconds, profile, mutant, max_steps, progress)
        total.add(stats)
    else:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futures = [pool.submit(worker, seed + j, seconds, profile, mutant, max_steps)
                       for j in range(jobs)]
            for fut in concurrent.futures.as_completed(futures):
                stats, program = fut.result()
                total.add(stats)
                found = found or program
    total.seconds = time.monotonic() - start
    return total, found
