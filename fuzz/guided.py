"""Coverage-guided program choice: keep the programs that reached new KCOV edges and mutate them.

The fast generator draws every decision from a seeded random source.  Here each
decision is one recorded uniform number in [0, 1), so a program is its list of
numbers (Choices): replaying the list gives the same program, and changing some
numbers gives a near neighbour (the generator maps any list to a valid program).
Guide.next() returns a fresh program or, once the corpus holds programs that
reached new edges, mostly a mutation of one of them; Guide.observe() reads the
run's KCOV trace (native.kcov) and keeps the program when it reached an edge
never seen before.  Guide(guided=False) draws fresh programs only, traced the
same way: the baseline a comparison needs (bench/fuzz_guided.py).
"""
from __future__ import annotations

import bisect
import itertools
import random
import time

GUIDED_SHARE = 0.8           # of programs mutated from the corpus once it is not empty
MAX_MUTATIONS = 4            # numbers changed per mutation, at most


class Choices:
    """A generator chooser whose every decision is the next recorded number (fresh past the end)."""

    def __init__(self, numbers, rng: random.Random):
        self.numbers, self.rng, self.pos = list(numbers), rng, 0

    def _u(self) -> float:
        if self.pos >= len(self.numbers):
            self.numbers.append(self.rng.random())
        u = self.numbers[self.pos]
        self.pos += 1
        return u

    def choice(self, options):
        return options[min(int(self._u() * len(options)), len(options) - 1)]

    def weighted(self, weights: dict):
        keys = list(weights)
        cum = list(itertools.accumulate(weights.values()))
        return keys[min(bisect.bisect_right(cum, self._u() * cum[-1]), len(keys) - 1)]

    def integer(self, lo: int, hi: int) -> int:
        return lo + min(int(self._u() * (hi - lo + 1)), hi - lo)

    def chance(self, p: float) -> bool:
        return self._u() < p

    def used(self) -> list[float]:
        """The numbers the program consumed (what replays it)."""
        return self.numbers[:self.pos]


def mutate(numbers: list[float], rng: random.Random, other: list[float] | None = None) -> list[float]:
    """A neighbour: a few numbers redrawn, or the tail cut (regrown fresh), or another's tail spliced."""
    out = list(numbers)
    kind = rng.random()
    if kind < 0.6 or not out:
        for _ in range(rng.randint(1, MAX_MUTATIONS)):
            if out:
                out[rng.randrange(len(out))] = rng.random()
    elif kind < 0.8:
        del out[rng.randrange(len(out)):]
    elif other:
        cut = rng.randrange(len(out))
        out = out[:cut] + other[rng.randrange(len(other)):]
    else:
        out.insert(rng.randrange(len(out) + 1), rng.random())
    return out


class Guide:
    """Where the next program comes from, and what the runs so far reached."""

    def __init__(self, seed, max_steps: int, profile: str, mutant=None, guided: bool = True):
        self.rng = random.Random(f"guide:{seed}")
        self.max_steps, self.profile, self.mutant, self.guided = max_steps, profile, mutant, guided
        self.seed = seed
        self.corpus: list[list[float]] = []
        self.seen: set[int] = set()
        self.count = 0
        self.history: list[tuple[int, float, int]] = []    # (programs, seconds, edges) at each growth
        self.start = time.monotonic()
        self._last: list[float] | None = None

    def next(self):
        """(program, its run Model) to run next, timeouts fitted (fuzz.campaign.fit_timeouts)."""
        from fuzz.campaign import fit_timeouts
        from fuzz.generate import RandomChooser, generate
        numbers: list[float] = []
        if self.guided and self.corpus and self.rng.random() < GUIDED_SHARE:
            parent = self.rng.choice(self.corpus)
            numbers = mutate(parent, self.rng, self.rng.choice(self.corpus))
        chooser = Choices(numbers, self.rng)
        name = f"fuzz_guided_{self.seed}_{self.count}".replace("-", "m")
        self.count += 1
        program = generate(chooser, self.max_steps, name=name)
        self._last = chooser.used()
        return fit_timeouts(program, self.profile, self.mutant, RandomChooser(f"fit:{name}"), in_place=True)

    def observe(self) -> int:
        """Read the last run's KCOV trace; how many edges it reached first (kept in the corpus if any)."""
        from native import kcov
        new = kcov.edges(kcov.collect()) - self.seen
        if new:
            self.seen |= new
            if self._last is not None:
                self.corpus.append(self._last)
            self.history.append((self.count, round(time.monotonic() - self.start, 2), len(self.seen)))
        return len(new)
