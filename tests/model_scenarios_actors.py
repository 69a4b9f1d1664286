"""Model scenarios with actors, background calls and io_uring (registered in
model_kit.SCENARIOS, run by tests/test_model.py).
"""
from __future__ import annotations

from native import program as P
from native.program import ADD, DEL, DUP2, ET, EXCLUSIVE, HUP, IN, OUT, RDHUP, Program
from native.trace import Outcome as O
from model_kit import EH, NVAL, SCENARIOS, ev, fdinfo, line, scenario


# -- actors: fork, threads, blocking calls in the background ----------------------

@scenario
def fork_shares_the_epoll():
    """fork copies the fd table: the child's close drops its own slot's reference only,
    the epoll instance is one file, so a DEL by either side removes the shared entry."""
    p = Program("fork_shares")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    c = p.fork("child")
    with p.on(c):
        p.close(r)
        p.wait(ep)
    p.inject(p.file_named("P"))
    with p.on(c):
        p.wait(ep)                                  # LT: re-queued for the parent too
        p.epoll_ctl(ep, DEL, r)                     # closed in the child
        p.fdinfo(ep)                                # tfd: a number no open handle holds
    p.epoll_ctl(ep, DEL, r)
    with p.on(c):
        p.fdinfo(ep)                                # the parent's DEL shows in the child
    p.wait(ep)
    stock = [O("ep"), O("r"), O(0), O(0), O(0), ev(), O(8), ev((IN, 1)), O(-1, errno="EBADF"),
             fdinfo(line("4", IN | EH, 1, "P", "pipefs")), O(0), fdinfo(), ev()]
    return p, stock, None


@scenario
def signalfd_queue_of_the_registering_process():
    """A signalfd entry hooks the sighand of the process that added it and is evaluated
    against the pending signals of whoever waits: the child's signal neither wakes the
    parent's entry nor shows to the parent; a SIGKILL wakes the victim's queue."""
    p = Program("sighand")
    ep = p.epoll_create("ep")
    s = p.signalfd("s", file="S")
    p.epoll_ctl(ep, ADD, s, IN, data=1)
    c = p.fork("child")
    with p.on(c):
        p.inject(p.file_named("S"))               # the child's own signal: no wake-up
        p.wait(ep)
        p.read(s)                                 # the child's pending signal
    p.inject(p.file_named("S"))                   # wakes the parent's queue: linked
    with p.on(c):
        p.wait(ep)                                # polled in the child: empty, dropped
    p.wait(ep)
    with p.on(c):
        p.epoll_ctl(ep, DEL, s)
        p.epoll_ctl(ep, ADD, s, IN, data=2)       # now on the child's queue
    p.inject(p.file_named("S"))                   # the parent's queue: nobody there
    p.wait(ep)
    p.kill(c)                                     # SIGKILL wakes the child's queue
    p.wait(ep)                                    # the parent's signal is pending
    p.read(s)
    stock = [O("ep"), O("s"), O(0), O(0), O(0), ev(), O(128, reached="S", count=1), O(0),
             ev(), ev(), O(0), O(0), O(0), ev(), O(0), ev((IN, 2)),
             O(256, reached="S", count=2)]
    return p, stock, None


def _two_sleepers(et):
    p = Program(f"sleepers_{'et' if et else 'lt'}")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN | (ET if et else 0), data=1)
    t1, t2 = p.thread("t1"), p.thread("t2")
    with p.on(t1):
        w1 = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t2):
        w2 = p.wait(ep, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    p.join(w2)
    p.join(w1)
    # The newest sleeper is woken first; with LT, ep_done_scan wakes the next one.
    stock = [O("ep"), O("r"), O(0), O(0), O(0), O("blocked"), O("blocked"), O(8),
             ev((IN, 1)), ev() if et else ev((IN, 1))]
    return p, stock, None


for _et in (False, True):
    SCENARIOS[f"two_sleepers_{'et' if _et else 'lt'}"] = lambda et=_et: _two_sleepers(et)


@scenario
def exclusive_wake_one():
    """EPOLLEXCLUSIVE: a callback that wakes an epoll_wait sleeper ends the wake-up walk,
    so the other instance's exclusive entry is never queued."""
    p = Program("exclusive")
    ep1, ep2 = p.epoll_create("ep1"), p.epoll_create("ep2")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep1, ADD, r, IN | EXCLUSIVE, data=1)
    p.epoll_ctl(ep2, ADD, r, IN | EXCLUSIVE, data=2)
    t = p.thread("t")
    with p.on(t):
        w = p.wait(ep1, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    p.join(w)
    p.wait(ep2)
    stock = [O("ep1"), O("ep2"), O("r"), O(0), O(0), O(0), O("blocked"), O(8), ev((IN, 1)),
             ev()]
    return p, stock, None


@scenario
def sleeping_select_keeps_the_old_file():
    """A sleeping select holds a reference on each file it hooked: the replaced file (and
    its stale entry) lives until the call returns; a wake-up on the old file makes it
    look again, at the number's new file."""
    p = Program("select_ref")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="A")
    b = p.pipe("b", file="B")
    p.epoll_ctl(ep, ADD, r, IN, data=7)
    t = p.thread("t")
    with p.on(t):
        w = p.select([r], timeout_ms=300, background=True)
    p.inject(p.file_named("B"))                   # not hooked: no wake-up
    p.dup2(b, r)
    p.fdinfo(ep)
    p.inject(p.file_named("A"))                   # wakes the select: r is B now, ready
    p.fdinfo(ep)                                  # it returned: A's last reference gone
    p.join(w)
    stock = [O("ep"), O("r"), O("b"), O(0), O(0), O("blocked"), O(8), O("r"),
             fdinfo(line("r", IN | EH, 7, "A", "pipefs")), O(8), fdinfo(),
             O(1, events=((IN, 0),))]
    return p, stock, None


@scenario
def poll_looks_again_at_its_timeout():
    """Nothing wakes a poll whose number now holds a ready file, but its timeout makes one
    last pass; a closed number polls NVAL."""
    p = Program("poll_timeout")
    r = p.pipe("r", file="A")
    b = p.pipe("b", file="B")
    c = p.pipe("c", file="C")
    t = p.thread("t")
    with p.on(t):
        w = p.poll([r, c], IN, timeout_ms=200, background=True)
    p.inject(p.file_named("B"))
    p.dup2(b, r)
    p.close(c)
    p.join(w)
    stock = [O("r"), O("b"), O("c"), O(0), O("blocked"), O(8), O("r"), O(0),
             O(2, events=((IN, 0), (NVAL, 1)))]
    return p, stock, None


@scenario
def poll_and_select_now():
    """poll() masks with the asked events plus ERR|HUP (a memfd has no ->poll: IN|OUT);
    select counts each number once however often it is listed; a closed number is NVAL
    for poll and EBADF for select."""
    p = Program("poll_now")
    m = p.memfd("m")
    r = p.pipe("r", file="P")
    p.poll([m, r], IN | OUT)
    p.select([m, r])
    p.inject(p.file_named("P"))
    p.select([r, r])
    p.poll([r, r], IN | OUT)
    p.close(r)
    p.poll([r, m], IN)
    p.select([r, m])
    stock = [O("m"), O("r"), O(1, events=((IN | OUT, 0),)), O(1, events=((IN, 0),)), O(8),
             O(1, events=((IN, 0), (IN, 1))), O(2, events=((IN, 0), (IN, 1))), O(0),
             O(2, events=((NVAL, 0), (IN, 1))), O(-1, errno="EBADF")]
    return p, stock, None


@scenario
def sleeping_select_finds_a_closed_number_ready():
    """A number closed under a sleeping select polls as DEFAULT_POLLMASK in do_select
    (no file, no ->poll): at its timeout the select returns it as readable."""
    p = Program("select_closed")
    ep = p.epoll_create("ep")
    e = p.eventfd("e")
    t = p.thread("t")
    w = p.select([e, ep], timeout_ms=100, background=True)
    with p.on(t):
        p.close(ep)
    p.join(w)
    stock = [O("ep"), O("e"), O(0), O("blocked"), O(0), O(1, events=((IN, 1),))]
    return p, stock, None


@scenario
def background_call_joined_at_once():
    """A call reads "returned" when it returned before the next step: at once when
    another actor's step comes next, and always when its own join does."""
    p = Program("joined_at_once")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    t = p.thread("t")
    p.inject(p.file_named("P"))
    w = p.wait(ep, timeout_ms=300, background=True)
    p.join(w)
    w = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t):
        p.drain(r)
    p.join(w)
    stock = [O("ep"), O("r"), O(0), O(0), O(8), O("returned"), ev((IN, 1)), O("returned"),
             O(8, reached="P", count=1), ev((IN, 1))]
    return p, stock, None


# -- io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c) ----------------------------

def cq(reap, *cqes):
    """A reap's outcome (a background one's join's): its CQEs as (submitting step, res[,
    more[, reached[, count]]])."""
    return P.expected_outcome(reap, cqes=cqes, joined=reap.background)


@scenario
def uring_poll_result_is_the_wake_up_key():
    """A poll woken once completes with the wake-up's key even if the data is gone by the
    reap; a multishot poll woken twice polls again and posts nothing for an empty pipe."""
    p = Program("uring_poll_key")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="P")
    one = p.uring_poll(ring, r, IN)
    multi = p.uring_poll(ring, r, IN | OUT, multishot=True)
    p.inject(p.file_named("P"))
    p.drain(r)
    first = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    p.inject(p.file_named("P"))
    p.drain(r)
    second = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    third = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O(0), O(0), O(8), O(8, reached="P", count=1),
             cq(first, (one, IN), (multi, IN, True)),      # key IN|RDNORM & asked events
             O(8), O(8), O(16, reached="P", count=2),
             cq(second),                                   # two wake-ups: polled again, empty
             O(8), cq(third, (multi, IN, True)), O(0)]
    return p, stock, None


@scenario
def uring_reads_newest_first():
    """Two reads armed on one pipe are woken newest first: the newer takes the token, the
    older arms again and later takes every token there is; after the hangup a read completes
    at once with 0."""
    p = Program("uring_reads")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="P")
    k = p.dup(r, "k")
    e = p.dup(r, "e")
    older = p.uring_read(ring, r)
    newer = p.uring_read(ring, k)
    p.inject(p.file_named("P"))
    first = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    p.inject(p.file_named("P"))
    second = p.uring_reap(ring)
    p.hangup(p.file_named("P"))
    eof = p.uring_read(ring, e)
    third = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O("k"), O("e"), O(0), O(0), O(8),
             cq(first, (newer, 8, False, "P")),
             O(8), O(8), cq(second, (older, 16, False, "P", 2)),
             O(0), O(0), cq(third, (eof, 0)), O(0)]
    return p, stock, None


@scenario
def uring_cancel_keeps_the_file_until_the_reap():
    """Cancelling a pending read posts the cancel's CQE at once and the read's -ECANCELED at
    the next reap, which is when the read lets its file go; cancelling it again finds
    nothing."""
    p = Program("uring_cancel")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    read = p.uring_read(ring, r)
    p.close(r)
    cancel = p.uring_cancel(ring, read)
    p.inject(p.file_named("old"))
    first = p.uring_reap(ring)
    p.inject(p.file_named("old"))
    again = p.uring_cancel(ring, read)
    second = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O(0), O(0), O(0), O(8),
             cq(first, (read, -125), (cancel, 0)),         # -ECANCELED
             O(-1, errno="EPIPE"), O(0),
             cq(second, (again, -2)),                      # -ENOENT
             O(0)]
    return p, stock, None


@scenario
def uring_socket_keys_and_hangup():
    """A socket's data wake-up (IN|PRI|RDNORM|RDBAND) wakes a pending read but not a poll
    for RDHUP alone; the hangup (no key) makes both look again: the poll sees HUP|RDHUP and
    the read its end of file."""
    p = Program("uring_socket")
    ring = p.uring_setup("ring")
    s = p.socketpair("s", file="S")
    t = p.dup(s, "t")
    rdhup = p.uring_poll(ring, s, RDHUP)
    out = p.uring_poll(ring, s, OUT)
    read = p.uring_read(ring, s)
    p.inject(p.file_named("S"))
    first = p.uring_reap(ring)
    again = p.uring_read(ring, t)
    p.hangup(p.file_named("S"))
    second = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("s"), O("t"), O(0), O(0), O(0), O(8),
             cq(first, (out, OUT), (read, 8, False, "S")),
             O(0), O(0), cq(second, (rdhup, HUP | RDHUP), (again, 0)), O(0)]
    return p, stock, None


@scenario
def uring_errors_fixed_files_and_memfd():
    """Unregistering nothing is ENXIO and registering twice EBUSY; a fixed read without a
    file, and a poll of a closed number, complete with -EBADF; a memfd (no ->poll) completes
    a poll at once, with -EINVAL when none of the asked events is there."""
    p = Program("uring_errors")
    ring = p.uring_setup("ring")
    m = p.memfd("m")
    r = p.pipe("r", file="P")
    p.uring_unregister(ring)
    fixed = p.uring_read(ring, fixed=True)
    p.uring_register(ring, r)
    p.uring_register(ring, m)
    pin = p.uring_poll(ring, m, IN)
    pbad = p.uring_poll(ring, m, RDHUP)
    p.close(m)
    pclosed = p.uring_poll(ring, m, OUT)
    reap = p.uring_reap(ring)
    p.uring_unregister(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("m"), O("r"), O(-1, errno="ENXIO"), O(0), O(0),
             O(-1, errno="EBUSY"), O(0), O(0), O(0), O(0),
             cq(reap, (fixed, -9), (pin, IN), (pbad, -22), (pclosed, -9)),
             O(0), O(0)]
    return p, stock, None


@scenario
def uring_background_reap():
    """A reap in the background runs the pending task work first and returns at once when
    that posts a CQE; otherwise it sleeps through wake-ups whose key its requests do not ask
    for and returns when one it asks for completes."""
    p = Program("uring_background")
    s = p.socketpair("s", file="S")
    t = p.thread("t")
    with p.on(t):
        ring = p.uring_setup("ring")
        multi = p.uring_poll(ring, s, OUT | RDHUP, multishot=True)
        first = p.uring_reap(ring, timeout_ms=300, background=True)
    p.getfd(s)
    p.join(first)
    with p.on(t):
        second = p.uring_reap(ring, timeout_ms=300, background=True)
    p.inject(p.file_named("S"))
    p.getfd(s)
    p.hangup(p.file_named("S"))
    p.join(second)
    with p.on(t):
        p.uring_exit(ring)
    stock = [O("s"), O(0), O("ring"), O(0), O("returned"), O(0),
             cq(first, (multi, OUT, True)), O("blocked"), O(8), O(0), O(0),
             cq(second, (multi, OUT | HUP | RDHUP, True)), O(0)]
    return p, stock, None


@scenario
def uring_ring_lives_in_a_forked_child():
    """After io_uring_queue_exit the ring lives on in a child forked meanwhile, and so does
    the pending poll's reference to the old file."""
    p = Program("uring_fork")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    p.uring_poll(ring, r, IN)
    p.fork("c")
    p.replace(r, by=P.PIPE, via=DUP2, file="new")
    p.uring_exit(ring)
    p.inject(p.file_named("old"))
    stock = [O("ring"), O("r"), O(0), O(0), O("r"), O(0), O(8)]
    return p, stock, None


