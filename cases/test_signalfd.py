"""signalfd in epoll: whose signals, whose wait queue.

signalfd_poll() hooks the entry onto current->sighand->signalfd_wqh and tests
current's pending signals: an epoll entry is woken through the wait queue of the
process that registered it (EPOLL_CTL_ADD polls in the caller's context), and
whether it is ready is decided by the process that calls epoll_wait (which
polls again in its own context).  fork() gives the child a sighand of its own,
so an epoll inherited across fork hears only the registering process's
signals; and ep_send_events() drops an item whose poll says "not ready" from
the ready list.  An entry registered by a process that has exited is never woken
again: its queue belonged to that process.  (signalfd_cleanup() unhooks it with
POLLFREE once the process is reaped, and that wakeup queues the entry once;
the executor reaps no actor before the run ends, so the traces here are those
of an exited, unreaped registrar.)
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, DEL, DUP2, DUP3, ADDFD_SETFD, ADDFD_SETFD_SEND, IN, MOD,
                            SIGNALFD, Program)

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)


def registered_then_forked():
    """The parent makes ep and a signalfd (file "sig"), ADDs it with data 5, and forks."""
    p = Program()
    ep = p.epoll_create("ep")
    sfd = p.signalfd("sfd", file="sig")
    p.epoll_ctl(ep, ADD, sfd, IN, data=5)
    child = p.fork("child")
    return p, ep, sfd, child


@case()
def test_child_signal_is_not_reported_by_the_inherited_epoll():
    """A signal of the child's own is not reported by the epoll the parent registered the
    signalfd in, while poll() and read() on the signalfd in the child see it."""
    p, ep, sfd, child = registered_then_forked()
    sig = p.file_named("sig")
    with p.on(child):
        p.inject(sig)                                  # raised in the child
        p.wait(ep).expect(events=[])                   # the wakeup went to the child's queue
        p.poll([sfd]).expect(events=[(IN, 0)])
        p.read(sfd).expect(reached="sig")
    p.wait(ep).expect(events=[])
    p.poll([sfd]).expect(events=[])                    # never pending in the parent
    p.inject(sig)                                      # the parent's own signal is heard
    p.wait(ep).expect(events=[(IN, 5)])
    p.read(sfd).expect(reached="sig")
    return p


@case()
def test_child_wait_on_the_shared_epoll_loses_the_parents_wakeup():
    """The parent's signal queues the entry; a wait in the child polls it in the child's
    context, finds nothing and drops it, so the parent's next wait reports nothing although
    its signal is pending, until another signal wakes the entry."""
    p, ep, sfd, child = registered_then_forked()
    sig = p.file_named("sig")
    p.inject(sig)
    with p.on(child):
        p.wait(ep).expect(events=[])
    p.wait(ep).expect(events=[])                       # the lost wakeup
    p.poll([sfd]).expect(events=[(IN, 0)])             # still pending in the parent
    p.inject(sig)
    p.wait(ep).expect(events=[(IN, 5)])
    p.read(sfd).expect(reached="sig", count=2)
    p.wait(ep).expect(events=[])
    return p


@case()
def test_parents_wakeup_reports_the_childs_signal_to_the_child():
    """Once the parent's signal has queued the entry, a wait in the child reports it for the
    child's own pending signal, which its read() then takes; the child's next wait drops the
    entry and the parent's wait reports nothing."""
    p, ep, sfd, child = registered_then_forked()
    sig = p.file_named("sig")
    with p.on(child):
        p.inject(sig)
        p.wait(ep).expect(events=[])                   # nothing queued the entry yet
    p.inject(sig)                                      # queues it, through the parent's queue
    with p.on(child):
        p.wait(ep).expect(events=[(IN, 5)])            # polled in the child's context
        p.read(sfd).expect(reached="sig")              # the child's own signal
        p.wait(ep).expect(events=[])
    p.wait(ep).expect(events=[])
    p.read(sfd).expect(reached="sig")                  # the parent's signal was pending all along
    return p


@case()
def test_fresh_epoll_in_the_child_hears_the_childs_signals():
    """An epoll the child makes and registers the inherited signalfd in reports the child's
    signals, and not the parent's."""
    p, ep, sfd, child = registered_then_forked()
    sig = p.file_named("sig")
    with p.on(child):
        ep2 = p.epoll_create("ep2")
        p.epoll_ctl(ep2, ADD, sfd, IN, data=6)
        p.inject(sig)
        p.wait(ep2).expect(events=[(IN, 6)])
        p.wait(ep).expect(events=[])
        p.read(sfd).expect(reached="sig")
    p.inject(sig)
    p.wait(ep).expect(events=[(IN, 5)])
    with p.on(child):
        p.wait(ep2).expect(events=[])
    p.read(sfd).expect(reached="sig")
    return p


@case()
def test_parent_exit_leaves_the_child_a_deaf_entry():
    """After the parent exits, its registration in the inherited epoll never fires for the
    child: only a MOD (which polls once in the child's context) or a DEL and re-ADD (which
    hooks the entry onto the child's queue) make the child's signals reported."""
    p, ep, sfd, child = registered_then_forked()
    sig = p.file_named("sig")
    p.exit_target()
    with p.on(child):
        p.inject(sig)
        p.wait(ep).expect(events=[])
        p.poll([sfd]).expect(events=[(IN, 0)])
        p.epoll_ctl(ep, MOD, sfd, IN, data=7)
        p.wait(ep).expect(events=[(IN, 7)])
        p.read(sfd).expect(reached="sig")
        p.wait(ep).expect(events=[])
        p.inject(sig)
        p.wait(ep).expect(events=[])                   # MOD did not re-hook the entry
        p.epoll_ctl(ep, DEL, sfd)
        p.epoll_ctl(ep, ADD, sfd, IN, data=8)
        p.read(sfd).expect(reached="sig")
        p.inject(sig)
        p.wait(ep).expect(events=[(IN, 8)])
        p.read(sfd).expect(reached="sig")
    return p


@case()
def test_child_registration_in_the_shared_epoll_goes_deaf_when_the_child_exits():
    """An entry the child registered in the shared epoll stays after the child exits but is
    never woken again: the parent's signals are not reported through it, while poll() sees
    them."""
    p = Program()
    ep = p.epoll_create("ep")
    sfd = p.signalfd("sfd", file="sig")
    sig = p.file_named("sig")
    child = p.fork("child")
    with p.on(child):
        p.epoll_ctl(ep, ADD, sfd, IN, data=5)
        p.inject(sig)
        p.wait(ep).expect(events=[(IN, 5)])
        p.read(sfd).expect(reached="sig")
        p.wait(ep).expect(events=[])                   # off the ready list
        p.exit_target()
    p.inject(sig)
    p.wait(ep).expect(events=[])
    p.poll([sfd]).expect(events=[(IN, 0)])
    p.epoll_ctl(ep, MOD, sfd, IN, data=6)              # polls in the parent's context once
    p.wait(ep).expect(events=[(IN, 6)])
    p.read(sfd).expect(reached="sig")
    return p


@case(params=matrix(refs=("single", "multi"), via=VIAS))
def test_signalfd_replaced_by_another_signalfd(refs, via):
    """After a signalfd is replaced by one for another signal, the entry reports the old
    signalfd's signal while a dup keeps it alive, and not the new one's on a stock kernel;
    read() reaches the new signalfd."""
    p = Program()
    ep = p.epoll_create("ep")
    sfd = p.signalfd("sfd", file="old")
    keep = p.dup(sfd, "keep") if refs == "multi" else None
    p.epoll_ctl(ep, ADD, sfd, IN, data=5)
    p.replace(sfd, by=SIGNALFD, via=via, file="new")
    p.inject(p.file_named("old"))
    old_reported = [(IN, 5)] if refs == "multi" else []
    expect_after_replace(p.wait(ep), via, stock=E(events=old_reported), follow=E(events=[]))
    p.read(sfd).expect(-1, errno="EAGAIN")             # the new signalfd's signal is not pending
    if keep is not None:
        p.read(keep).expect(reached="old")
    p.inject(p.file_named("new"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, 5)]))
    p.read(sfd).expect(reached="new")
    p.wait(ep).expect(events=[])
    return p
