"""The executor's own contract: timeouts, handle bookkeeping, bad programs."""
import pytest

from native.executor import run
from native.program import (ADD, ADDFD_SETFD, IN, PIPE, Program, ProgramError)


def test_hung_target_is_killed_and_reported():
    """A step that blocks past the run's deadline ends the run as a timeout at that step,
    with the target's stack."""
    p = Program()
    ep = p.epoll_create("ep")
    p.wait(ep, timeout_ms=60_000)
    trace = run(p, timeout_ms=300)
    assert [str(o) for o in trace.outcomes] == ["ep"]
    assert trace.failure.kind == "timeout"
    assert trace.failure.step == 1
    assert "stack" in trace.failure.detail


def test_closed_handle_keeps_its_number_until_reused():
    """dup2 onto a closed handle reopens its number; once the number is reused the closed
    handle has none (EBADF)."""
    p = Program()
    a = p.pipe("a")
    b = p.pipe("b")
    p.close(b)
    p.dup2(a, b).expect("b")
    p.close(b)
    c = p.eventfd("c")          # takes b's freed number
    p.close(b).expect(-1, errno="EBADF")
    p.read(c).expect(-1, errno="EAGAIN")
    assert run(p) == p.expected_trace()


def test_replace_installs_at_the_handle_number():
    """An ADDFD replace returns the handle's own number and the handle then reaches the new file."""
    p = Program()
    r = p.pipe("r")
    p.replace(r, by=PIPE, via=ADDFD_SETFD, file="new")
    p.inject(p.file_named("new"))
    p.read(r).expect(reached="new")
    assert run(p) == p.expected_trace()


@pytest.mark.parametrize("build, message", [
    (lambda p: p.epoll_ctl(p.epoll_create(), "ADDX", p.pipe()), "epoll_ctl op"),
    (lambda p: p.replace(p.pipe(), by="fifo", via=ADDFD_SETFD), "by must be"),
    (lambda p: p.replace(p.pipe(), by=PIPE, via="splice"), "via must be"),
    (lambda p: p.inject(p.file_of(p.eventfd())), "through a handle"),
    (lambda p: p.wait(p.epoll_create(), maxevents=0), "maxevents"),
    (lambda p: (p.pipe("x"), p.pipe("x")), "already used"),
    (lambda p: p.epoll_ctl(p.epoll_create(), ADD, p.pipe(), IN, data=-1), "64-bit"),
])
def test_bad_programs_are_rejected_when_built(build, message):
    """A program that cannot mean anything is refused at build time with a clear error."""
    with pytest.raises(ProgramError, match=message):
        build(Program())


def test_profile_dependent_step_states_both_profiles():
    """A step expectation given per profile must name every profile."""
    from native.program import E
    p = Program()
    ep = p.epoll_create()
    with pytest.raises(ProgramError, match="both"):
        p.wait(ep).expect(stock=E(events=[]))
