"""Where the supervisor's userspace fixup cannot match the kernel patch, pinned.

Each case replaces through the fixup (native/fixup.c, via addfd_setfd_fixup).
`stock` states what the fixup achieves on a stock kernel, `follow` what a
kernel with eventpoll_replace_file() gives (it moved every entry itself, and
the fixup then finds none).  The README's section for runtime authors names
each difference; cases/test_fixup_every_replace.py lists the case instances
these explain.  One detail where the fixup does match is pinned too: an
EPOLLEXCLUSIVE entry.
"""
from cases.casekit import E, case, matrix
from native.program import (ADD, ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND_FIXUP, ERR, EXCLUSIVE,
                            HUP, IN, MOD, ONESHOT, PIPE, SIGNALFD, SOCKET, Program)
from native.trace import FdinfoLine

FIXUP_VIAS = (ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND_FIXUP)
DATA = 0xD5


@case(params=matrix(via=FIXUP_VIAS))
def test_epoll_held_only_by_another_process(via):
    """An epoll the replacing process has closed but a forked child still holds keeps its
    entry on the old file: the fixup only sees the replacing process's fds."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=DATA)
    child = p.fork("child")
    p.close(ep)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    with p.on(child):
        p.wait(ep).expect(stock=E(events=[]), follow=E(events=[(IN, DATA)]))
        p.fdinfo(ep).expect(
            stock=E(fdinfo=[FdinfoLine("r", IN | ERR | HUP, DATA, ino="old", sdev="pipefs")]),
            follow=E(fdinfo=[FdinfoLine("r", IN | ERR | HUP, DATA, ino="new", sdev="pipefs")]))
    return p


@case(params=matrix(via=FIXUP_VIAS))
def test_new_signalfd_entry_stays_with_the_old_file(via):
    """A signalfd installed by the fixup is not re-added (from the supervisor its ADD would
    watch the supervisor's signals): the entry stays with the old signalfd and goes with it."""
    p = Program()
    ep = p.epoll_create("ep")
    sfd = p.signalfd("sfd", file="old")
    p.epoll_ctl(ep, ADD, sfd, IN, data=5)
    p.replace(sfd, by=SIGNALFD, via=via, file="new")
    p.inject(p.file_named("new"))
    p.wait(ep).expect(stock=E(events=[]), follow=E(events=[(IN, 5)]))
    p.fdinfo(ep).expect(stock=E(fdinfo=[]), follow=E(fdinfo=[
        FdinfoLine("sfd", IN | ERR | HUP, 5, ino="anon_inode", sdev="anon_inodefs")]))
    p.read(sfd).expect(reached="new")
    return p


@case(params=matrix(via=FIXUP_VIAS))
def test_disarmed_oneshot_comes_back_armed_for_errhup(via):
    """A disarmed EPOLLONESHOT entry comes back from the fixup's EPOLL_CTL_ADD armed for ERR
    and HUP (ADD always adds them), so the new file's hang-up is reported; the kernel patch
    keeps it disarmed."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.socketpair("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN | ONESHOT, data=7)
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 7)])             # reported once: disarmed now
    p.replace(r, by=SOCKET, via=via, file="new")
    p.fdinfo(ep).expect(
        stock=E(fdinfo=[FdinfoLine("r", ONESHOT | ERR | HUP, 7, ino="new", sdev="sockfs")]),
        follow=E(fdinfo=[FdinfoLine("r", ONESHOT, 7, ino="new", sdev="sockfs")]))
    p.hangup(p.file_named("new"))
    p.wait(ep).expect(stock=E(events=[(HUP, 7)]), follow=E(events=[]))
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("r", ONESHOT, 7, ino="new", sdev="sockfs")])
    return p


@case(params=matrix(via=FIXUP_VIAS))
def test_nested_epoll_the_target_cannot_see(via):
    """An inner epoll nested in the target's outer epoll, its fd closed and held only by a
    forked child, is invisible to the fixup: its entry stays with the old file, so the outer
    epoll does not see the new file's readiness."""
    p = Program()
    outer = p.epoll_create("outer")
    inner = p.epoll_create("inner")
    r = p.pipe("r", file="old")
    p.epoll_ctl(inner, ADD, r, IN, data=DATA)
    p.epoll_ctl(outer, ADD, inner, IN, data=0x11)
    p.fork("child")
    p.close(inner)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.wait(outer).expect(stock=E(events=[]), follow=E(events=[(IN, 0x11)]))
    return p


@case(params=matrix(via=FIXUP_VIAS))
def test_exclusive_entry_keeps_its_flag_and_its_sleeper(via):
    """An EPOLLEXCLUSIVE entry comes back exclusive (MOD still refused) and a thread asleep
    in epoll_wait across the fixup is woken by the new file only: here the fixup matches the
    kernel patch."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN | EXCLUSIVE, data=0x33)
    t = p.thread("t")
    with p.on(t):
        sleeper = p.wait(ep, timeout_ms=5000, background=True)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    p.inject(p.file_named("new"))
    p.join(sleeper).expect(events=[(IN, 0x33)])
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("r", IN | ERR | HUP | EXCLUSIVE, 0x33, ino="new",
                                           sdev="pipefs")])
    p.epoll_ctl(ep, MOD, r, IN, data=1).expect(-1, errno="EINVAL")
    return p
