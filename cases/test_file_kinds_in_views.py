"""Every file kind the IR makes, as fdinfo and kcmp(KCMP_EPOLL_TFD) show it, and
as the new file of a replace.

fdinfo prints an entry's inode: a pipe's or a socket's own, but one anonymous
inode shared by eventfd, epoll, signalfd and timerfd files, so fdinfo cannot
tell those apart; kcmp compares the registered struct file itself and can.  A
memfd is a regular file: it can be a replace's new file, never an entry.  A
pipe's write end (the driver holds the read end) is always writable and in error
once its reader is gone; both ends of a pipe share its inode.

Replaced by a file of any kind, a registered pipe fd keeps its entry with the
old file while another reference holds it and loses it with the last one
(stock); under follow the entry moves to the new file when that file could be
added itself (every kind here but the memfd).
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3, EPOLL, ERR,
                            EVENTFD, HUP, IN, MEMFD, OUT, PIPE, SIGNALFD, SOCKET, TIMERFD,
                            Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
REG = IN | ERR | HUP
NEW_KINDS = (PIPE, SOCKET, EVENTFD, EPOLL, SIGNALFD, TIMERFD, MEMFD)
OWN_INODE = {PIPE: "pipefs", SOCKET: "sockfs"}      # kinds with an inode of their own


def line(tfd, data, ino, kind):
    if kind in OWN_INODE:
        return FdinfoLine(tfd, REG, data, ino=ino, sdev=OWN_INODE[kind])
    return FdinfoLine(tfd, REG, data, ino="anon_inode", sdev="anon_inodefs")


@case()
def test_kcmp_tells_apart_the_kinds_on_the_anonymous_inode():
    """kcmp(KCMP_EPOLL_TFD) finds each registered file of every pollable kind equal to
    itself and different from every other, two eventfds and the epoll, signalfd and timerfd
    files that fdinfo shows on one inode included."""
    p = Program()
    ep = p.epoll_create("ep")
    hs = [p.eventfd("efd1"), p.eventfd("efd2"), p.epoll_create("inner"), p.signalfd("sfd"),
          p.timerfd("tfd"), p.pipe("pipe"), p.socketpair("sock")]
    for data, h in enumerate(hs, 1):
        p.epoll_ctl(ep, ADD, h, IN, data=data)
    for h in hs:
        for against in hs:
            p.kcmp_epoll_tfd(ep, h, against=against).expect(0 if h == against else 1)
    return p


@case()
def test_memfd_is_never_an_entry():
    """A memfd cannot be registered (EPERM), so fdinfo lists nothing for it and kcmp finds
    no entry under its number (ENOENT), while a dup of the memfd compares as the same file."""
    p = Program()
    ep = p.epoll_create("ep")
    m = p.memfd("m")
    d = p.dup(m, "d")
    p.epoll_ctl(ep, ADD, m, IN, data=1).expect(-1, errno="EPERM")
    p.fdinfo(ep).expect(fdinfo=[])
    p.kcmp_epoll_tfd(ep, m, against=d).expect(-1, errno="ENOENT")
    return p


@case(params=matrix(by=NEW_KINDS, second=("none", "old", "new"), via=VIAS))
def test_replace_by_each_kind(by, second, via):
    """A registered pipe fd replaced by a file of each kind, with no second reference, a dup
    of the old file, or the driver's copy of the new one: fdinfo and kcmp show the old entry
    exactly while the old file lives (stock), or the entry moved to any new file but a memfd
    (follow); once the fd is closed, kcmp finds an entry only where a second reference holds
    its file."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep") if second == "old" else None
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=by, via=via, file="new", keep=second == "new")
    old = [line("r", 1, "old", PIPE)] if second == "old" else []
    follows = by != MEMFD
    moved = [line("r", 1, "new", by)] if follows else old
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=old), follow=E(fdinfo=moved))
    gone = E(1) if second == "old" else E(-1, errno="ENOENT")
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=r), via, stock=gone,
                         follow=E(0) if follows else gone)
    if keep is not None:
        expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=keep), via, stock=E(0),
                             follow=E(1) if follows else E(0))
    # Closed, r's number still names the entry kcmp looks for: is one left, and on what?
    p.close(r)
    against = keep if second == "old" else ep
    stock = E(0) if second == "old" else E(-1, errno="ENOENT")
    follow = E(1) if second == "new" else E(-1, errno="ENOENT")
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=against), via, stock=stock,
                         follow=follow if follows else stock)
    return p


@case(params=matrix(by=NEW_KINDS, via=VIAS))
def test_re_add_after_replace_by_each_kind(by, via):
    """A re-ADD of a pipe fd replaced by a file of each kind while a dup keeps the old file
    adds the new file beside the old entry, fdinfo then listing both under one number (EPERM
    for a memfd); where the entry followed, the re-ADD finds it (EEXIST)."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=by, via=via, file="new")
    add = p.epoll_ctl(ep, ADD, r, IN, data=2)
    if by == MEMFD:
        add.expect(-1, errno="EPERM")
        return p
    expect_after_replace(add, via, stock=E(0), follow=E(-1, errno="EEXIST"))
    expect_after_replace(p.fdinfo(ep), via,
                         stock=E(fdinfo=[line("r", 1, "old", PIPE), line("r", 2, "new", by)]),
                         follow=E(fdinfo=[line("r", 1, "new", by)]))
    return p


OLD_MAKERS = {PIPE: Program.pipe, SOCKET: Program.socketpair, EVENTFD: Program.eventfd,
              EPOLL: Program.epoll_create, SIGNALFD: Program.signalfd, TIMERFD: Program.timerfd}


@case(params=matrix(old=tuple(OLD_MAKERS), via=VIAS))
def test_stale_entry_of_each_kind(old, via):
    """A registered fd of each pollable kind replaced by a pipe while a dup keeps the old
    file: fdinfo shows the stale entry on the old file's inode (the shared anonymous one for
    eventfd, epoll, signalfd and timerfd), kcmp finds it equal to the dup, and both lose it
    with the dup (stock); under follow the entry is on the new pipe from the replace on."""
    p = Program()
    ep = p.epoll_create("ep")
    r = OLD_MAKERS[old](p, "r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=PIPE, via=via, file="new")
    stale, moved = [line("r", 1, "old", old)], [line("r", 1, "new", PIPE)]
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=stale), follow=E(fdinfo=moved))
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=keep), via, stock=E(0), follow=E(1))
    p.close(keep)
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=moved))
    expect_after_replace(p.kcmp_epoll_tfd(ep, r, against=r), via,
                         stock=E(-1, errno="ENOENT"), follow=E(0))
    return p


@case()
def test_pipe_write_end_in_the_views():
    """A pipe's write end polls writable (OUT) and, once its reader is gone, in error too
    (OUT|ERR, never HUP) in epoll and poll, select counting the error as readable; fdinfo
    shows the pipe's inode, kcmp the file, and read fails with EBADF."""
    p = Program()
    ep = p.epoll_create("ep")
    w = p.pipe("w", file="w", write_end=True)
    p.epoll_ctl(ep, ADD, w, IN | OUT, data=1)
    p.wait(ep).expect(events=[(OUT, 1)])
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("w", REG | OUT, 1, ino="w", sdev="pipefs")])
    p.kcmp_epoll_tfd(ep, w, against=w).expect(0)
    p.poll([w], IN | OUT).expect(events=[(OUT, 0)])
    p.select([w]).expect(events=[])
    p.read(w).expect(-1, errno="EBADF")
    p.hangup(p.file_named("w"))
    p.wait(ep).expect(events=[(OUT | ERR, 1)])
    p.poll([w], IN).expect(events=[(ERR, 0)])
    p.select([w]).expect(events=[(IN, 0)])
    return p


@case(params=matrix(second=("none", "old"), via=VIAS))
def test_write_end_replaced_by_a_read_end(second, via):
    """A registered pipe write end replaced by an empty pipe's read end: on a stock kernel
    the stale entry keeps reporting OUT (then OUT|ERR once its reader is gone) under the
    fd's data while a dup keeps the write end, though a read of the fd now reaches the new
    pipe; under follow the entry watches the empty read end and reports nothing."""
    p = Program()
    ep = p.epoll_create("ep")
    w = p.pipe("w", file="old", write_end=True)
    if second == "old":
        p.dup(w, "keep")
    p.epoll_ctl(ep, ADD, w, IN | OUT, data=1)
    p.replace(w, by=PIPE, via=via, file="new")
    live = second == "old"
    expect_after_replace(p.wait(ep), via, stock=E(events=[(OUT, 1)] if live else []),
                         follow=E(events=[]))
    p.read(w).expect(-1, errno="EAGAIN")
    if live:
        p.hangup(p.file_named("old"))
        expect_after_replace(p.wait(ep), via, stock=E(events=[(OUT | ERR, 1)]), follow=E(events=[]))
    return p


@case(params=matrix(via=VIAS))
def test_read_end_replaced_by_a_write_end(via):
    """A registered pipe read end replaced by a write end already in the table: the stale
    entry of the read end stays silent while a dup keeps it (stock), and a re-ADD of the fd
    watches the write end, ready at once (OUT); under follow the entry moves to the write
    end and reports OUT under the old data."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    w = p.pipe("w", file="w", write_end=True)
    p.epoll_ctl(ep, ADD, r, IN | OUT, data=1)
    p.replace(r, by=w, via=via)
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(OUT, 1)]))
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN | OUT, data=2), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(OUT, 2)]), follow=E(events=[(OUT, 1)]))
    return p
