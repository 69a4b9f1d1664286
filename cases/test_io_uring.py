"""io_uring across a replace: a request holds its own reference to the file it
was submitted for, so it keeps acting on the old file after the fd number
moves on, and the old file lives until the request lets go.

Whether the old file is gone is read off its pipe: a write through the
driver's peer fails with EPIPE once no reader is left.  Rings are set up with
IORING_SETUP_DEFER_TASKRUN (and so SINGLE_ISSUER): completions, and the file
references they drop, happen when the ring's thread reaps, never as task work
interrupting whatever it sleeps in.  Every profile agrees:
the proposed eventpoll_replace_file() concerns epoll only.

Reads of pipes changed with afed6271f5b0 (6.4, pipes accept IOCB_NOWAIT).  Before
it, io_uring cannot try a pipe read without blocking, so once the pipe is ready the
read is punted to an io-wq worker: the worker posts the completion, and its
reference on the file goes only when it lets go of the request afterwards
(io_wq_free_work), so a reap can see the CQE while the old file still lives.  What
is guaranteed there is that the file is released soon after: those cases wait for
the release (bounded) before they look, and reaps that expect several completions
wait for all of them.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.kernel_facts import kernel_has
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3, IN, OUT, PIPE,
                            SOCKET, Program)

# Since afed6271f5b0 a completed pipe read has let go of its file by the time it is
# reaped; before it the io-wq worker does so at a moment of its own, shortly after.
RELEASE_WAIT_MS = 0 if kernel_has("afed6271f5b0") else 2000

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
PIPE_IN = IN      # a poll CQE carries the ready events masked by those asked for

# Since 3af0356c162c (6.5) a ring's task work runs in the order it was queued; before
# it, newest first.
TW_IN_ORDER = kernel_has("3af0356c162c")
# Before ef67fcb41de6 (6.2) io_uring_register() ran the ring's pending task work first.
REGISTER_RUNS_TW = not kernel_has("ef67fcb41de6")


def ring_and_pipe(blocking=False):
    p = Program()
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old", blocking=blocking)
    return p, ring, r


@case(params=matrix(via=VIAS))
def test_pending_poll_completes_for_the_old_file(via):
    """A single-shot poll submitted before the replace ignores the new file, completes when
    the old file becomes readable, and its completion frees the old file."""
    p, ring, r = ring_and_pipe()
    poll = p.uring_poll(ring, r, IN)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.uring_reap(ring).expect(cqes=[])
    p.inject(p.file_named("old")).expect(8)
    p.uring_reap(ring).expect(cqes=[(poll, PIPE_IN)])
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    p.read(r).expect(reached="new")
    p.uring_exit(ring)
    return p


@case(params=matrix(via=VIAS))
def test_multishot_poll_keeps_the_old_file_until_cancelled(via):
    """A multishot poll keeps completing for the old file (never the new one) and keeps it
    alive until it is cancelled."""
    p, ring, r = ring_and_pipe()
    poll = p.uring_poll(ring, r, IN, multishot=True)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.inject(p.file_named("old"))
    p.uring_reap(ring).expect(cqes=[(poll, PIPE_IN, True)])
    p.inject(p.file_named("old")).expect(8)
    p.uring_reap(ring).expect(cqes=[(poll, PIPE_IN, True)])
    cancel = p.uring_cancel(ring, poll)
    p.uring_reap(ring).expect(cqes=[(poll, -125), (cancel, 0)])   # -ECANCELED
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    p.uring_exit(ring)
    return p


@case(params=matrix(via=VIAS))
def test_in_flight_read_reads_the_old_file(via):
    """A read in flight across the replace completes with the old file's data, not the new
    file's, and then frees the old file (before afed6271f5b0: soon after its completion)."""
    p, ring, r = ring_and_pipe(blocking=True)
    read = p.uring_read(ring, r)
    p.uring_reap(ring).expect(cqes=[])
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.uring_reap(ring).expect(cqes=[])
    p.inject(p.file_named("old"))
    p.uring_reap(ring, timeout_ms=2000).expect(cqes=[(read, 8, False, "old")])
    p.inject(p.file_named("old"), wait_release_ms=RELEASE_WAIT_MS).expect(-1, errno="EPIPE")
    p.read(r).expect(reached="new")
    p.uring_exit(ring)
    return p


@case(params=matrix(via=VIAS))
def test_registered_file_stays_the_old_file(via):
    """A fixed file registered before the replace is still the old file: a fixed read
    reaches it while a read through the fd reaches the new one, and unregistering frees it."""
    p, ring, r = ring_and_pipe()
    p.uring_register(ring, r)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    p.inject(p.file_named("new"))
    fixed = p.uring_read(ring, fixed=True)
    by_fd = p.uring_read(ring, r)
    p.uring_reap(ring, timeout_ms=2000, wait_nr=2).expect(
        cqes=[(fixed, 8, False, "old"), (by_fd, 8, False, "new")])
    p.inject(p.file_named("old")).expect(8)
    p.uring_unregister(ring)
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    p.uring_exit(ring)
    return p


@case(params=matrix(via=(ADDFD_SETFD, DUP2)))
def test_blocked_reap_is_woken_by_the_old_file_only(via):
    """A thread blocked reaping its ring, with a poll pending on an fd another thread then
    replaces, sleeps through the new file's readiness and wakes for the old file's."""
    p = Program()
    r = p.pipe("r", file="old")
    t = p.thread("t")
    with p.on(t):                            # the ring's single issuer
        ring = p.uring_setup("ring")
        poll = p.uring_poll(ring, r, IN)
    p.replace(r, by=PIPE, via=via, file="new")
    with p.on(t):
        reap = p.uring_reap(ring, timeout_ms=5000, background=True).expect("blocked")
    p.inject(p.file_named("new"))
    p.getfd(r).expect(0)                     # the reaper sleeps on
    p.inject(p.file_named("old"))
    with p.on(t):
        p.join(reap).expect(cqes=[(poll, PIPE_IN)])
        p.uring_exit(ring)
    return p


@case(params=matrix(via=VIAS))
def test_requests_on_a_multi_referenced_old_file(via):
    """With a dup keeping the old file, a poll pending across the replace completes for it
    and an epoll entry stays with it (stock), the file outliving the completion until the
    dup is closed."""
    p, ring, r = ring_and_pipe()
    keep = p.dup(r, "keep")
    ep = p.epoll_create("ep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    poll = p.uring_poll(ring, r, IN)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    p.uring_reap(ring).expect(cqes=[(poll, PIPE_IN)])
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 0xD5)]), follow=E(events=[]))
    p.inject(p.file_named("old")).expect(8)            # the dup keeps the old file
    by_dup = p.uring_read(ring, keep)
    p.uring_reap(ring, timeout_ms=2000).expect(cqes=[(by_dup, 16, False, "old", 2)])
    p.read(r).expect(-1, errno="EAGAIN")               # the new pipe is empty
    p.close(keep)
    p.inject(p.file_named("old"), wait_release_ms=RELEASE_WAIT_MS).expect(-1, errno="EPIPE")
    p.wait(ep).expect(events=[])
    p.uring_exit(ring)
    return p


@case(params=matrix(via=(ADDFD_SETFD, DUP2)))
def test_task_work_order_decides_what_a_multishot_poll_sees(via):
    """A read and then a multishot poll pending on the old socket are woken by one write:
    run in queueing order the poll sees the data still there (IN|OUT), newest first
    (before 3af0356c162c) the read has taken it and the poll sees OUT."""
    p = Program()
    ring = p.uring_setup("ring")
    s = p.socketpair("s", file="old")
    read = p.uring_read(ring, s)
    poll = p.uring_poll(ring, s, IN | OUT, multishot=True)
    p.replace(s, by=SOCKET, via=via, file="new")
    p.inject(p.file_named("old"))
    seen = IN | OUT if TW_IN_ORDER else OUT
    p.uring_reap(ring, timeout_ms=2000, wait_nr=2).expect(
        cqes=[(read, 8, False, "old"), (poll, seen, True)])
    p.read(s).expect(-1, errno="EAGAIN")               # the new socket is empty
    p.uring_exit(ring)
    return p


@case(params=matrix(via=(ADDFD_SETFD, DUP2)))
def test_register_runs_a_woken_read_only_before_6_2(via):
    """A read pending on the old socket and woken by its data stays pending through a
    file registration, so a dup still reads the data; before ef67fcb41de6 the
    registration ran the read first, and the dup finds the socket empty."""
    p = Program()
    ring = p.uring_setup("ring")
    s = p.socketpair("s", file="old")
    keep = p.dup(s, "keep")
    read = p.uring_read(ring, s)
    p.replace(s, by=SOCKET, via=via, file="new")
    p.inject(p.file_named("old"))
    p.uring_register(ring, p.pipe("other"))
    if REGISTER_RUNS_TW:
        p.read(keep).expect(-1, errno="EAGAIN")
        p.uring_reap(ring, timeout_ms=200).expect(cqes=[(read, 8, False, "old")])
    else:
        p.read(keep).expect(reached="old")
        p.uring_reap(ring, timeout_ms=200).expect(cqes=[])   # it found nothing, re-armed
    p.uring_exit(ring)
    return p
