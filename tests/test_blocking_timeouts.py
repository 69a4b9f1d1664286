"""timeout_ms=-1 means "no timeout" for every blocking step: wait, poll, select and uring_reap."""
import pytest

from native.program import ADD, IN, Program, ProgramError


def sleeper(call: str):
    """A thread sleeps in `call` with no timeout on a pipe (file "f"); main makes f readable."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="f")
    p.epoll_ctl(ep, ADD, r, IN, data=7)
    with p.on(p.thread("t")):
        if call == "wait":
            bg = p.wait(ep, timeout_ms=-1, background=True)
        elif call == "poll":
            bg = p.poll([r], IN, timeout_ms=-1, background=True)
        else:
            bg = p.select([r], timeout_ms=-1, background=True)
    p.inject(p.file_named("f"))
    return p, bg


@pytest.mark.parametrize("call", ["wait", "poll", "select"])
def test_minus_one_sleeps_until_woken(run_program, call):
    """wait, poll and select with timeout -1 sleep until the file is ready, then report it."""
    p, bg = sleeper(call)
    p.join(bg).expect(events=[(IN, 7 if call == "wait" else 0)])
    run_program(p)


def test_minus_one_reap_sleeps_until_a_completion(run_program):
    """uring_reap with timeout -1 sleeps until a completion is posted, then collects it."""
    p = Program()
    r = p.pipe("r", file="f")
    t = p.thread("t")
    with p.on(t):
        ring = p.uring_setup("ring")
        poll = p.uring_poll(ring, r, IN)
        reap = p.uring_reap(ring, timeout_ms=-1, background=True).expect("blocked")
    p.inject(p.file_named("f"))
    with p.on(t):
        p.join(reap).expect(cqes=[(poll, IN)])
        p.uring_exit(ring)
    run_program(p)


def test_timeouts_below_minus_one_are_refused():
    """A blocking step's timeout below -1 is a ProgramError, not a kernel EINVAL."""
    p = Program()
    r = p.pipe("r")
    with pytest.raises(ProgramError, match="timeout_ms must be -1"):
        p.select([r], timeout_ms=-2)
