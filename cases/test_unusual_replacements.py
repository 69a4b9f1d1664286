"""Unusual replacements: a non-pollable new file, the same file, an epoll file,
the very epoll the fd is registered in, and the supervisor's own listener.

Under the follow profile an entry follows the new file only where that file
could be added to the epoll itself (it is pollable and is not that epoll);
otherwise it stays with the old file, as on a stock kernel (the rule of the
RFC v7 eventpoll_replace_file() patch).
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, ERR,
                            HUP, IN, LISTENER, MEMFD, Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, DUP2)
REG = IN | ERR | HUP


def watched():
    """ep watches r (file "old", kept alive by a dup) with data 9."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=9)
    return p, ep, r, keep


@case(params=matrix(via=VIAS))
def test_replace_by_non_pollable_file(via):
    """Replaced by a regular file, the fd keeps its stale entry in every profile; epoll_ctl
    on it fails with EPERM whatever the op."""
    p, ep, r, keep = watched()
    p.replace(r, by=MEMFD, via=via, file="new")
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 9)])
    p.epoll_ctl(ep, ADD, r, IN, data=1).expect(-1, errno="EPERM")
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="EPERM")
    p.read(r).expect(reached="new")
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("r", REG, 9, ino="old", sdev="pipefs")])
    return p


@case(params=matrix(via=VIAS, refs=("single", "multi")))
def test_replace_by_the_same_file(via, refs):
    """Replacing a file by itself changes nothing epoll can see: the entry stays, reports,
    and DEL finds it."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if refs == "multi":
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=9)
    p.replace(r, by=r, via=via)
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 9)])
    p.read(r).expect(reached="old")
    p.epoll_ctl(ep, DEL, r)
    return p


@case(params=matrix(via=VIAS))
def test_replace_by_another_epoll(via):
    """Replaced by another epoll file, the fd's stale entry still reports the old file; a
    re-ADD nests the new epoll."""
    p, ep, r, keep = watched()
    inner = p.epoll_create("inner")
    p.replace(r, by=inner, via=via)
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 9)]), follow=E(events=[]))
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=1), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    p.read(r).expect(-1, errno="EINVAL")
    return p


@case(params=matrix(via=VIAS))
def test_replace_by_the_epoll_it_is_registered_in(via):
    """Replaced by the very epoll it is registered in, the fd keeps its stale entry in every
    profile, and every epoll_ctl on it is EINVAL."""
    p, ep, r, keep = watched()
    p.replace(r, by=ep, via=via)
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 9)])
    p.epoll_ctl(ep, ADD, r, IN, data=1).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="EINVAL")
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("r", REG, 9, ino="old", sdev="pipefs")])
    return p


@case(params=matrix(via=(ADDFD_SETFD, ADDFD_SETFD_SEND)))
def test_replace_by_the_listener_itself(via):
    """Replaced by the supervisor's own listener, the fd keeps its stale entry on stock; the
    listener in the target is pollable (a re-ADD works, nothing is pending) and unreadable
    (EINVAL)."""
    p, ep, r, keep = watched()
    p.replace(r, by=LISTENER, via=via, file="lst")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 9)]), follow=E(events=[]))
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=1), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    p.poll([r]).expect(events=[])
    p.read(r).expect(-1, errno="EINVAL")
    p.drain(keep).expect(reached="old")
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[
        FdinfoLine("r", REG, 9, ino="old", sdev="pipefs"),
        FdinfoLine("r", REG, 1, ino="anon_inode", sdev="anon_inodefs")]),
        follow=E(fdinfo=[FdinfoLine("r", REG, 9, ino="anon_inode", sdev="anon_inodefs")]))
    return p


@case(params=matrix(via=(ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2)))
def test_replace_by_an_epoll_of_a_single_reference(via):
    """Replacing the only reference of a registered pipe by another epoll drops the entry on
    a stock kernel (a re-ADD then nests the epoll); under follow the entry moves to the
    epoll and reports its readiness."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=9)
    inner = p.epoll_create("inner", file="inner")
    leaf = p.pipe("leaf", file="leaf")
    p.epoll_ctl(inner, ADD, leaf, IN, data=5)
    p.replace(r, by=inner, via=via)
    nested = FdinfoLine("r", REG, 9, ino="anon_inode", sdev="anon_inodefs")
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=[nested]))
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    p.inject(p.file_named("leaf"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, 9)]))
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=1), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1)]), follow=E(events=[(IN, 9)]))
    p.wait(r).expect(events=[(IN, 5)])                 # r is the inner epoll now
    return p
