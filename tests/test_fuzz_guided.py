"""fuzz.guided without KCOV: programs as lists of numbers, their replay and mutation, and
the skip."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.generate import generate
from fuzz.guided import Choices, Guide, mutate
from native import kcov

ROOT = Path(__file__).resolve().parent.parent


def describe(program) -> list[str]:
    return [s.describe() for s in program.steps]


def test_recorded_numbers_replay_the_same_program():
    """A program drawn fresh and the program of the numbers it used are step for step the same."""
    first = Choices([], random.Random(7))
    a = generate(first, 20, name="a")
    again = Choices(first.used(), random.Random(99))
    b = generate(again, 20, name="a")
    assert describe(a) == describe(b)
    assert again.used() == first.used()


def test_every_decision_maps_a_number_into_range():
    """choice, weighted, integer and chance take any number in [0, 1) to a valid answer, 0
    and just below 1 included."""
    for u in (0.0, 0.5, 0.9999999999):
        c = Choices([u] * 4, random.Random(1))
        assert c.choice(["x", "y", "z"]) == ["x", "y", "z"][int(u * 3)]
        assert c.weighted({"p": 1, "q": 3}) == ("p" if u < 0.25 else "q")
        assert c.integer(2, 5) == 2 + int(u * 4)
        assert c.chance(0.5) == (u < 0.5)


def test_mutations_stay_programs():
    """Mutated number lists (redrawn, cut, spliced, grown) still give valid programs of
    bounded size."""
    rng = random.Random(3)
    base = Choices([], random.Random(5))
    generate(base, 20, name="base")
    numbers = base.used()
    changed = 0
    for k in range(40):
        m = mutate(numbers, rng, numbers[::-1])
        changed += m != numbers
        p = generate(Choices(m, random.Random(k)), 20, name=f"m{k}")
        p.check_structure()
    assert changed >= 35


def test_unguided_guide_ignores_its_corpus():
    """Guide(guided=False) draws fresh programs whatever its corpus holds; names count up."""
    plain, loaded = Guide(1, 12, "stock", guided=False), Guide(1, 12, "stock", guided=False)
    loaded.corpus.append([0.1] * 50)
    a = [plain.next()[0] for _ in range(3)]
    b = [loaded.next()[0] for _ in range(3)]
    assert [describe(p) for p in a] == [describe(p) for p in b]
    assert [p.name for p in a] == ["fuzz_guided_1_0", "fuzz_guided_1_1", "fuzz_guided_1_2"]


def test_guided_guide_mutates_its_corpus():
    """Guide(guided=True) draws most programs from its corpus: their numbers are mostly the
    kept ones."""
    guided = Guide(1, 12, "stock", guided=True)
    guided.corpus.append([0.1] * 50)
    from_corpus = 0
    for _ in range(20):
        guided.next()
        from_corpus += guided._last.count(0.1) >= 5
    assert 10 <= from_corpus < 20


@pytest.mark.skipif(kcov.missing() is None, reason="this kernel has KCOV: the skip cannot be seen")
def test_guided_campaign_skips_with_a_reason_without_kcov(tmp_path):
    """python -m fuzz --guided on a kernel without /sys/kernel/debug/kcov exits 4 naming it."""
    proc = subprocess.run([sys.executable, "-m", "fuzz", "--seconds", "1", "--guided", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    assert proc.stdout.strip().splitlines()[-1].startswith("fuzz: skipped: --guided needs KCOV: "
                                                           "/sys/kernel/debug/kcov is absent")
