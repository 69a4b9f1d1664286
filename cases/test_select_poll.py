"""select() and poll() asleep in another thread while the fd they watch is replaced,
beside epoll_wait in the same situation.

select/poll look an fd up afresh on every scan (fdget), but hook onto wait
queues only on the first scan (__pollwait takes a reference on each file it
hooks onto, and do_select/do_poll clear the poll table's _qproc after the first
pass).  So a sleeper stays hooked to the old file and keeps it open until it
returns: the old file's readiness wakes it, but its rescan polls the new file;
the new file's readiness does not wake it; the scan after the timeout reports
whatever the new file has then.  epoll_wait sleeps on the epoll instance: it
holds no reference on the old file (a single-referenced old file goes at the
replace, and its entry with it), is woken by the old file's readiness only
while the stale entry lives, and never by the new file's on a stock kernel.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, EPOLL, IN, PIPE,
                            Program)

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
CALLS = ("select", "poll")
TIMEOUT = 100          # ms: what a sleeper that is never woken costs


def asleep_on(call):
    """A thread sleeps in select/poll on r (file "old"); main then replaces r by a new pipe."""
    p = Program()
    r = p.pipe("r", file="old")
    t = p.thread("t")
    with p.on(t):
        if call == "select":
            bg = p.select([r], timeout_ms=TIMEOUT, background=True)
        else:
            bg = p.poll([r], IN, timeout_ms=TIMEOUT, background=True)
    return p, r, bg


@case(params=matrix(call=CALLS, via=VIAS))
def test_sleeper_keeps_the_old_file_open(call, via):
    """A thread asleep in select/poll keeps the single-referenced old file open across the
    replace (its pipe still takes writes) until the call returns at its timeout with
    nothing."""
    p, r, bg = asleep_on(call)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))                      # not EPIPE: the sleeper holds the reader
    p.read(r).expect(-1, errno="EAGAIN")               # the fd reaches the empty new pipe
    p.join(bg).expect(events=[])
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    return p


@case(params=matrix(call=CALLS, via=VIAS))
def test_old_file_readiness_wakes_the_sleeper_which_reports_the_new_file(call, via):
    """The old file's readiness wakes a thread asleep in select/poll; its rescan polls the
    new file and returns it as ready if it is, at once and before the timeout."""
    p, r, bg = asleep_on(call)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))                      # no wakeup: not hooked onto the new pipe
    p.inject(p.file_named("old"))                      # wakes it; the rescan finds "new" ready
    p.read(r).expect(reached="new")                    # runs only once the call has returned
    p.join(bg).expect(events=[(IN, 0)])
    return p


@case(params=matrix(call=CALLS, via=VIAS))
def test_new_file_readiness_does_not_wake_the_sleeper(call, via):
    """The new file's readiness does not wake a thread asleep in select/poll: a read()
    consumes the token first, and the call returns nothing at its timeout."""
    p, r, bg = asleep_on(call)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.read(r).expect(reached="new")
    p.join(bg).expect(events=[])
    return p


@case(params=matrix(call=CALLS, via=VIAS))
def test_sleeper_reports_the_new_file_at_its_timeout(call, via):
    """A thread asleep in select/poll that nothing wakes returns at its timeout with what
    the final scan finds: the new file, ready since the replace."""
    p, r, bg = asleep_on(call)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.join(bg).expect(events=[(IN, 0)])
    p.read(r).expect(reached="new")
    return p


@case(params=matrix(refs=("single", "multi"), via=VIAS, which=("old", "new")))
def test_epoll_wait_asleep_across_a_replace(refs, via, which):
    """A thread asleep in epoll_wait holds no reference on the old file: the old file's
    readiness wakes it only while a dup keeps the stale entry alive, and the new file's
    readiness does not wake it on a stock kernel."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if refs == "multi":
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    t = p.thread("t")
    with p.on(t):
        bg = p.wait(ep, timeout_ms=TIMEOUT, background=True)
    p.replace(r, by=PIPE, via=via, file="new")
    if which == "old":
        if refs == "multi":
            p.inject(p.file_named("old"))
            expect_after_replace(p.join(bg), via, stock=E(events=[(IN, 0xD5)]), follow=E(events=[]))
        else:
            p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
            p.join(bg).expect(events=[])
        p.read(r).expect(-1, errno="EAGAIN")
    else:
        p.inject(p.file_named("new"))
        p.read(r).expect(reached="new")                # follow: only after the woken wait returned
        expect_after_replace(p.join(bg), via, stock=E(events=[]), follow=E(events=[(IN, 0xD5)]))
    return p


@case(params=matrix(via=VIAS, by=(PIPE, EPOLL)))
def test_epoll_wait_asleep_on_an_epoll_fd_that_is_replaced(via, by):
    """A thread asleep in epoll_wait holds its own reference on the epoll it looked up:
    replacing the epoll fd (its only other reference) changes nothing for it, so the old
    instance's entry still wakes it; the fd then names the new file."""
    p = Program()
    ep = p.epoll_create("ep", file="old_ep")
    r = p.pipe("r", file="f")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    t = p.thread("t")
    with p.on(t):
        bg = p.wait(ep, timeout_ms=5000, background=True)
    p.replace(ep, by=by, via=via, file="new")
    p.inject(p.file_named("f"))
    p.join(bg).expect(events=[(IN, 0xD5)])
    if by == EPOLL:
        p.wait(ep).expect(events=[])                   # the new instance watches nothing
        p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
    else:
        p.wait(ep).expect(-1, errno="EINVAL")          # not an epoll any more
    p.read(r).expect(reached="f")
    return p
