"""The ADDFD..SEND window: what userspace sees while the target still sits in the
trapped syscall after the supervisor's ADDFD(SETFD) installed the new file.

The target itself runs the install (seccomp_handle_addfd -> receive_fd_replace),
so its fput of the old file is deferred (task_work) until it returns to user
space: in the window the old file's refcount is zero but it is not yet
released.  Its epoll entry is still listed and its pipe still takes writes,
while epoll no longer polls it (since 4efaa5acf0a1, "epoll: be better about
file lifetimes": a file whose refcount reached zero reports nothing).
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.kernel_facts import kernel_has
from native.program import (ADD, ADDFD_FLAG_SEND, ADDFD_FLAG_SETFD, ADDFD_SETFD, ERR, HUP, IN,
                            PIPE, Program)
from native.trace import FdinfoLine

OLD_ENTRY = FdinfoLine("r", IN | ERR | HUP, 0xD5, ino="old", sdev="pipefs")
NEW_ENTRY = FdinfoLine("r", IN | ERR | HUP, 0xD5, ino="new", sdev="pipefs")


def trapped(refs):
    """ep watches r ("old"); the target traps on r.  Returns (p, ep, r)."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if refs == "multi":
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.notify(r)
    p.addfd(r, by=PIPE, file="new")
    return p, ep, r


@case(params=matrix(refs=("single", "multi")))
def test_window_after_addfd_before_send(refs):
    """Between ADDFD(SETFD) and SEND the old file's entry is still listed and its pipe still
    takes a token; epoll reports it only if the old file has another reference (or, before
    4efaa5acf0a1, always)."""
    p, ep, r = trapped(refs)
    p.sup_fdinfo(ep).expect(stock=E(fdinfo=[OLD_ENTRY]), follow=E(fdinfo=[NEW_ENTRY]))
    p.sup_inject(p.file_named("old"))
    reported = refs == "multi" or not kernel_has("4efaa5acf0a1")
    p.sup_wait(ep).expect(stock=E(events=[(IN, 0xD5)] if reported else []), follow=E(events=[]))
    p.sup_kcmp(ep, r, against=r).expect(stock=E(1), follow=E(0))
    p.respond()
    return p


@case(params=matrix(refs=("single", "multi")))
def test_old_file_released_when_target_returns(refs):
    """A single-referenced old file goes (and its entry with it) when the target returns
    from the trapped syscall, not at ADDFD time."""
    p, ep, r = trapped(refs)
    p.sup_fdinfo(ep).expect(stock=E(fdinfo=[OLD_ENTRY]), follow=E(fdinfo=[NEW_ENTRY]))
    p.respond()
    if refs == "single":
        p.fdinfo(ep).expect(stock=E(fdinfo=[]), follow=E(fdinfo=[NEW_ENTRY]))
        p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    else:
        p.fdinfo(ep).expect(stock=E(fdinfo=[OLD_ENTRY]), follow=E(fdinfo=[NEW_ENTRY]))
    return p


@case()
def test_send_flag_ends_the_window_at_once():
    """ADDFD with SETFD|SEND answers the notification itself: the syscall returns the new
    fd, a later NOTIF_SEND finds nothing (ENOENT), and the old file is gone."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.notify(r).expect("r")
    p.addfd(r, by=PIPE, flags=ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND, file="new")
    p.respond().expect(-1, errno="ENOENT")
    p.fdinfo(ep).expect(stock=E(fdinfo=[]), follow=E(fdinfo=[NEW_ENTRY]))
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    return p
