"""Unit tests of the reference model (fuzz/model.py) on small hand-built programs.

Each scenario (tests/model_scenarios_files.py, tests/model_scenarios_actors.py)
builds a program and states its outcomes by hand, reasoned from
the kernel source (fs/eventpoll.c, fs/file.c, fs/pipe.c, fs/eventfd.c,
fs/signalfd.c, net/unix/af_unix.c); the comments name the kernel behaviour
each step shows.  test_scenario checks the model against the hand-written
outcomes; test_scenario_on_this_kernel runs the same programs through the real
executor, so the hand reasoning, the model and the kernel are three witnesses.
"""
from __future__ import annotations

import pytest

from fuzz import model as M
from fuzz.model import MUTANTS, Model, Profile, predict
from native import program as P
from native.program import ADD, ADDFD_SETFD, DUP2, ET, IN, VIAS, Program
from native.trace import Outcome as O
from model_kit import SCENARIOS, UPSTREAM, ev
from model_scenarios_files import _target_ends
import model_scenarios_actors  # noqa: F401 (registers its scenarios, as the line above does)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("profile", P.PROFILES)
def test_scenario(name, profile):
    program, stock, follow = SCENARIOS[name]()
    want = stock if profile == "stock" or follow is None else follow
    assert predict(program, profile, facts=UPSTREAM) == want


@pytest.mark.parametrize("end", ("exit", "kill"))
def test_filter_released_only_when_reaped_before_bfafe5efa975(end):
    """Before bfafe5efa975 a dead, unreaped target keeps the filter in use: the listener
    shows nothing and NOTIF_RECV would block (EAGAIN from the executor), not HUP/ENOENT."""
    program, stock, _ = _target_ends(end)
    old = predict(program, "stock", facts=dict(UPSTREAM, bfafe5efa975=False))
    assert old[-6:-4] == [ev(), O(-1, errno="EAGAIN")]
    assert old[:-6] + old[-4:] == stock[:-6] + stock[-4:]


def test_nesting_limit_before_f2e467a48287():
    """Before f2e467a48287 an over-deep nest is EINVAL and only the path below counts."""
    p = Program("nest")
    eps = [p.epoll_create(f"e{i}") for i in range(1, 7)]
    for i in range(1, 5):
        p.epoll_ctl(eps[i - 1], ADD, eps[i], IN, data=i)
    p.epoll_ctl(eps[4], ADD, eps[5], IN, data=5)
    top = p.epoll_create("top")
    p.epoll_ctl(top, ADD, eps[0], IN, data=6)
    new = predict(p, "stock", facts=UPSTREAM)
    old = predict(p, "stock", facts=dict(UPSTREAM, f2e467a48287=False))
    assert (new[10], new[12]) == (O(-1, errno="ELOOP"), O(-1, errno="ELOOP"))
    assert (old[10], old[12]) == (O(0), O(-1, errno="EINVAL"))


def test_sigpipe_ends_the_run():
    model = Model(SCENARIOS["hangup_and_sigpipe"]()[0])
    model.run()
    assert model.failure == "crashed" and len(model.outcomes) == 16


def test_kcmp_with_two_entries_under_one_number_is_flagged_ambiguous():
    """Entries under one number are ordered by file pointer: toff picks an unknown one."""
    p = Program("ambiguous")
    ep = p.epoll_create("ep")
    a = p.eventfd("a")
    k = p.dup(a, "k")
    p.epoll_ctl(ep, ADD, a, IN, data=1)
    p.replace(a, by=P.EVENTFD, via=ADDFD_SETFD)
    p.epoll_ctl(ep, ADD, a, IN, data=2)
    p.kcmp_epoll_tfd(ep, a, k, toff=0)
    p.kcmp_epoll_tfd(ep, a, k, toff=2)
    model = Model(p)
    out = model.run()
    assert model.ambiguous == [6] and out[7] == O(-1, errno="ENOENT")


def test_profiles_are_data():
    """A profile that also follows dup2 replaces needs no code, only a Profile."""
    program, _, follow = SCENARIOS["follow_addfd_setfd"]()
    dup2_program, _, _ = SCENARIOS["follow_dup2"]()
    everything = Profile("follow_all", follow=True, follow_vias=frozenset(VIAS))
    assert predict(dup2_program, everything)[6:] == follow[6:]
    assert predict(dup2_program, "follow") == predict(dup2_program, "stock")
    assert set(M.PROFILES) == set(P.PROFILES)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_is_caught_by_some_scenario(mutant):
    """Each deliberately broken model mispredicts at least one scenario."""
    for name, build in SCENARIOS.items():
        program = build()[0]
        for profile in P.PROFILES:
            if predict(program, profile, mutant=mutant) != predict(program, profile):
                return
    pytest.fail(f"no scenario tells mutant {mutant!r} from the model")


def test_unknown_mutant_and_profile_are_refused():
    program = SCENARIOS["design_example"]()[0]
    with pytest.raises(ValueError):
        predict(program, "stock", mutant="no_such_mutant")
    with pytest.raises(KeyError):
        predict(program, "no_such_profile")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_on_this_kernel(name):
    """The real kernel (stock) agrees with the model, step by step."""
    from native import probes
    missing = probes.missing(["user_notif", "addfd", "addfd_send", "kcmp"])
    if missing:
        pytest.skip(missing)
    from native.executor import run
    from native.trace import render_diff
    program, stock, _ = SCENARIOS[name]()
    model = Model(program, "stock")
    model.run()
    trace = run(program)
    at = model.divergence(trace)
    shown = program.steps[:len(model.outcomes)]
    assert at is None, render_diff(shown, model.outcomes, trace, "stock")


def test_calls_woken_together_are_flagged_ambiguous():
    """An epoll_wait and a poll of the same instance woken by one step run concurrently:
    whether the poll still sees the ET entry depends on who runs first."""
    p = Program("together")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN | ET, data=1)
    t1, t2 = p.thread("t1"), p.thread("t2")
    with p.on(t1):
        w = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t2):
        q = p.poll([ep], IN, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    jw = p.join(w)
    jq = p.join(q)
    model = Model(p)
    model.run()
    assert {p.steps.index(jw), p.steps.index(jq)} <= set(model.ambiguous)


def test_closed_number_under_a_background_select_is_flagged_ambiguous():
    """The executor's next step opens a /proc file for a moment at the lowest free number:
    a background select watching that (closed) number may not see EBADF."""
    p = Program("transient")
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    p.close(r)
    t = p.thread("t")
    w = p.select([ep, r], timeout_ms=100, background=True)
    with p.on(t):
        p.getfd(ep)
    j = p.join(w)
    model = Model(p)
    out = model.run()
    assert out[p.steps.index(j)] == O(-1, errno="EBADF")
    assert {p.steps.index(w), p.steps.index(j)} <= set(model.ambiguous)


def test_a_torn_down_ring_lets_go_at_a_moment_of_its_own():
    """After io_uring_queue_exit, whether the old file its pending poll held is gone (its
    pipe, its epoll entry) and whether a sleeping epoll_wait of the ring's task is
    interrupted are flagged ambiguous."""
    p = Program("uring_limbo")
    ep = p.epoll_create("ep")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.uring_poll(ring, r, IN)
    p.replace(r, by=P.PIPE, via=DUP2, file="new")
    p.uring_exit(ring)
    steps = [p.inject(p.file_named("old")), p.fdinfo(ep)]
    t = p.thread("t")
    w = p.wait(ep, timeout_ms=100, background=True)
    with p.on(t):
        p.getfd(ep)
    steps += [w, p.join(w)]
    model = Model(p)
    out = model.run()
    assert {p.steps.index(s) for s in steps} <= set(model.ambiguous)
    assert out[p.steps.index(steps[0])] == O(-1, errno="EPIPE")


def test_what_the_model_leaves_to_others_is_refused():
    """A ring used by another actor than its creator, a ring's own fd in a plain step, and a
    trap of a task whose ring's teardown may interrupt it raise NotModelled."""
    def others_ring(p, ring, r):
        with p.on(p.thread("t")):
            p.uring_poll(ring, r, IN)

    def ring_fd(p, ring, r):
        p.dup(ring)

    def trap_after_exit(p, ring, r):
        p.uring_exit(ring)
        p.notify(r)
        p.respond()

    for build in (others_ring, ring_fd, trap_after_exit):
        p = Program(build.__name__)
        ring = p.uring_setup("ring")
        build(p, ring, p.pipe("r"))
        with pytest.raises(M.NotModelled):
            predict(p)
