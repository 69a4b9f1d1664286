"""What userspace can see of a replace: fdinfo, kcmp(KCMP_EPOLL_TFD) and the EEXIST identity check.

fdinfo names the registered fd number and an inode; eventfd, epoll, signalfd and
timerfd files share one anonymous inode, so fdinfo cannot tell an old eventfd from
its replacement.  kcmp can: it compares the registered struct file itself.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, DUP2, ERR, EVENTFD, HUP, IN, PIPE, Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, DUP2)
REG = IN | ERR | HUP


def anon(tfd, data):
    return FdinfoLine(tfd, REG, data, ino="anon_inode", sdev="anon_inodefs")


@case()
def test_fdinfo_inode_of_each_file_kind():
    """fdinfo names a pipe's or socket's own inode, but one shared anonymous inode for
    eventfd, epoll, signalfd and timerfd."""
    p = Program()
    ep = p.epoll_create("ep")
    handles = [p.pipe("pipe", file="p"), p.socketpair("sock", file="s"), p.eventfd("efd"),
               p.epoll_create("inner"), p.signalfd("sfd"), p.timerfd("tfd")]
    for data, h in enumerate(handles, 1):
        p.epoll_ctl(ep, ADD, h, IN, data=data)
    p.fdinfo(ep).expect(fdinfo=[
        FdinfoLine("pipe", REG, 1, ino="p", sdev="pipefs"),
        FdinfoLine("sock", REG, 2, ino="s", sdev="sockfs"),
        anon("efd", 3), anon("inner", 4), anon("sfd", 5), anon("tfd", 6)])
    return p


@case(params=matrix(via=VIAS))
def test_fdinfo_cannot_tell_replaced_eventfd_but_kcmp_can(via):
    """After an eventfd is replaced by another eventfd, fdinfo looks unchanged while kcmp
    shows the entry still holds the old file."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.eventfd("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=5)
    p.fdinfo(ep).expect(fdinfo=[anon("r", 5)])
    p.replace(r, by=EVENTFD, via=via, file="new")
    p.fdinfo(ep).expect(fdinfo=[anon("r", 5)])
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=keep), via, stock=E(0), follow=E(1))
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=r), via, stock=E(1), follow=E(0))
    return p


@case(params=matrix(via=VIAS, refs=("single", "multi")))
def test_kcmp_epoll_tfd_answers_around_a_replace(via, refs):
    """kcmp(KCMP_EPOLL_TFD) says equal before a replace, then names the old file while it
    lives and ENOENT once it is gone."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    other = p.pipe("other")
    keep = p.dup(r, "keep") if refs == "multi" else None
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.kcmp_epoll_tfd(ep, r, against=r).expect(0)
    p.kcmp_epoll_tfd(ep, r, against=other).expect(1)
    p.kcmp_epoll_tfd(ep, r, against=r, toff=1).expect(-1, errno="ENOENT")
    p.replace(r, by=PIPE, via=via, file="new")
    if refs == "multi":
        expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=keep), via, stock=E(0), follow=E(1))
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=r), via,
                         stock=E(1) if refs == "multi" else E(-1, errno="ENOENT"), follow=E(0))
    return p


@case()
def test_kcmp_epoll_tfd_errors():
    """kcmp(KCMP_EPOLL_TFD) fails with EBADF for a closed file or epoll fd, EINVAL when the
    epoll fd is not an epoll, ENOENT for an unregistered fd."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    gone = p.pipe("gone")
    p.close(gone)
    p.kcmp_epoll_tfd(ep, r, against=r).expect(-1, errno="ENOENT")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.kcmp_epoll_tfd(ep, r, against=gone).expect(-1, errno="EBADF")
    p.kcmp_epoll_tfd(r, r, against=r).expect(-1, errno="EINVAL")
    p.close(ep)
    p.kcmp_epoll_tfd(ep, r, against=r).expect(-1, errno="EBADF")
    return p


@case(params=matrix(via=VIAS))
def test_eexist_on_re_add_tells_whether_the_file_changed(via):
    """Re-ADD of a registered fd gives EEXIST exactly while the fd holds the registered
    file: a replace by the same file keeps it, a replace by another file ends it."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    same = p.dup(r, "same")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.epoll_ctl(ep, ADD, r, IN, data=1).expect(-1, errno="EEXIST")
    p.replace(r, by=same, via=via)
    p.epoll_ctl(ep, ADD, r, IN, data=1).expect(-1, errno="EEXIST")
    p.replace(r, by=PIPE, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=1), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    return p
