"""The other epoll entry points: epoll_pwait, epoll_pwait2 and epoll_create(size).

epoll_pwait and epoll_pwait2 (timespec timeout) report what epoll_wait does, with
the caller's signal mask replaced by the step's for the wait.  Every signalfd
signal is blocked in the target and has a handler, so one the step's mask leaves
unblocked is delivered there: with no event ready and a timeout, ep_poll() says
EINTR and the handler takes one instance (the signalfd no longer sees it); events
ready win over a pending signal, and a zero timeout returns before signals are
looked at.  epoll_create(size) wants size > 0 (EINVAL otherwise) and then makes
the same epoll as epoll_create1(0).
"""
from cases.casekit import case, matrix
from native.program import ADD, IN, Program

PWAITS = matrix(op=("epoll_pwait", "epoll_pwait2"))


def pwait(p, op, *args, **kw):
    return getattr(p, op)(*args, **kw)


@case(PWAITS)
def test_pwait_reports_what_wait_reports(op):
    """A readable pipe registered with data 0x17 is reported by the pwait flavour as by
    epoll_wait, with an empty mask."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=0x17)
    pwait(p, op, ep).expect(events=[])
    p.inject(p.file_named("old"))
    pwait(p, op, ep, timeout_ms=50).expect(events=[(IN, 0x17)])
    p.wait(ep).expect(events=[(IN, 0x17)])
    p.read(r).expect(reached="old")
    return p


def pending_signal():
    """An epoll with nothing ready, and signalfd "sig" (not registered) whose signal is
    pending in the target."""
    p = Program()
    ep = p.epoll_create("ep")
    sfd = p.signalfd("sfd", file="sig")
    p.inject(p.file_named("sig"))
    return p, ep, sfd


@case(PWAITS)
def test_signal_blocked_by_the_mask_does_not_interrupt(op):
    """A pending signal the mask blocks leaves the wait to time out with no event, and stays
    pending for the signalfd."""
    p, ep, sfd = pending_signal()
    pwait(p, op, ep, sigmask=[sfd], timeout_ms=50).expect(events=[])
    p.read(sfd).expect(reached="sig")
    return p


@case(PWAITS)
def test_signal_the_mask_unblocks_interrupts(op):
    """A pending signal the mask leaves unblocked ends the wait with EINTR; its handler took
    it, so the signalfd then reads nothing."""
    p, ep, sfd = pending_signal()
    pwait(p, op, ep, timeout_ms=50).expect(-1, errno="EINTR")
    p.read(sfd).expect(-1, errno="EAGAIN")
    return p


@case(PWAITS)
def test_zero_timeout_returns_before_a_signal_is_seen(op):
    """With a zero timeout and nothing ready the wait returns 0 although an unblocked signal
    is pending, and the signal stays queued."""
    p, ep, sfd = pending_signal()
    pwait(p, op, ep, timeout_ms=0).expect(events=[])
    p.read(sfd).expect(reached="sig")
    return p


@case(PWAITS)
def test_ready_events_win_over_a_pending_signal(op):
    """The signalfd registered in the epoll is reported though its own signal is unblocked
    by the mask and pending; nothing is interrupted and the signal stays queued."""
    p, ep, sfd = pending_signal()
    p.epoll_ctl(ep, ADD, sfd, IN, data=0x5)
    pwait(p, op, ep, timeout_ms=50).expect(events=[(IN, 0x5)])
    p.read(sfd).expect(reached="sig")
    return p


@case()
def test_interrupt_takes_the_lowest_unblocked_signal():
    """Two signals pending, the first file's blocked by the mask: EINTR takes the second's,
    and the first stays pending."""
    p = Program()
    ep = p.epoll_create("ep")
    s1 = p.signalfd("s1", file="sig1")
    s2 = p.signalfd("s2", file="sig2")
    p.inject(p.file_named("sig2"))
    p.inject(p.file_named("sig1"))
    p.epoll_pwait(ep, sigmask=[s1], timeout_ms=50).expect(-1, errno="EINTR")
    p.read(s2).expect(-1, errno="EAGAIN")
    p.read(s1).expect(reached="sig1")
    return p


@case()
def test_pwait2_without_timeout_returns_ready_events():
    """epoll_pwait2 with no timeout (NULL timespec) returns at once when an entry is ready."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=0x9)
    p.inject(p.file_named("old"))
    p.epoll_pwait2(ep, timeout_ms=-1).expect(events=[(IN, 0x9)])
    return p


@case(matrix(size=(1, 4096)))
def test_epoll_create_with_a_size_makes_an_epoll(size):
    """epoll_create(size) with size > 0 makes an epoll that takes entries and reports them."""
    p = Program()
    ep = p.epoll_create_size("ep", size=size)
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=0x3)
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 0x3)])
    return p


@case(matrix(size=(0, -1, -2147483648)))
def test_epoll_create_refuses_a_size_below_one(size):
    """epoll_create(size) with size <= 0 is EINVAL and makes no descriptor."""
    p = Program()
    p.epoll_create_size("ep", size=size)
    p.steps[-1].expect(-1, errno="EINVAL")
    return p
