"""The fuzzer's generator and shrinker, independent of the model."""
from hypothesis import given, settings, HealthCheck

from fuzz.generate import RandomChooser, generate, programs
from fuzz.shrink import shrink, without
from native.executor import run
from native.program import DUP2, PIPE, Program


def test_generated_programs_run_to_completion():
    """Every generated program is valid and runs to its end in the executor (no hang, no crash)."""
    chooser = RandomChooser(7)
    for i in range(200):
        p = generate(chooser)
        trace = run(p)
        assert trace.failure is None, (i, trace.failure)
        assert len(trace.outcomes) == len(p.steps)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(max_steps=8))
def test_hypothesis_programs_are_valid(p):
    """The hypothesis strategy builds programs the executor runs to completion."""
    assert run(p).failure is None


def test_deleting_a_definition_deletes_its_uses():
    """Dropping the step that creates a handle drops every later step that uses it."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    k = p.dup(r, "k")
    p.read(k)
    p.wait(ep)
    q = without(p, {1})
    assert [s.describe() for s in q.steps] == ["ep = epoll_create()  [ep1]",
                                               "wait(ep, maxevents=16, timeout=0)"]
    assert [h.name for h in q.handles] == ["ep"]


def test_shrink_keeps_the_failure_and_drops_the_rest():
    """The shrinker ends at the smallest program that still shows the property."""
    p = Program()
    ep = p.epoll_create("ep")
    for _ in range(6):
        p.eventfd()
    a = p.pipe("a")
    b = p.pipe("b")
    p.wait(ep)
    p.replace(a, by=b, via=DUP2)
    p.wait(ep)
    has_dup2 = lambda q: any(s.op == "replace" and s.via == DUP2 for s in q.steps)
    small = shrink(p, has_dup2)
    assert [s.op for s in small.steps] == ["pipe", "pipe", "replace"]
    assert run(small).failure is None
