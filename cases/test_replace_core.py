"""Core replace semantics: one fd registered in epoll, its file replaced.

The matrix: the old file single- or multi-referenced (a dup keeps it alive),
replaced by ADDFD(SETFD), ADDFD(SETFD|SEND), dup2 or dup3, with pipe, socket
and eventfd as old and new files.  epoll keys its entry by (fd, file) and holds
no reference: on a stock kernel the entry stays with the old file, reporting
its readiness under the fd's data while it lives, and vanishing with it.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, DEL, DUP2, DUP3, ADDFD_SETFD, ADDFD_SETFD_SEND, EVENTFD,
                            HUP, ERR, IN, PIPE, SOCKET, Program)
from native.trace import FdinfoLine

DATA = 0xD5
REFS = ("single", "multi")
VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
OLD = (PIPE, SOCKET, EVENTFD)
NEW = (PIPE, SOCKET, EVENTFD)
CREATE = {PIPE: Program.pipe, SOCKET: Program.socketpair, EVENTFD: Program.eventfd}
MATRIX = matrix(refs=REFS, via=VIAS, old=OLD, new=NEW)
REGISTERED = IN | ERR | HUP          # epoll_ctl ADD always adds ERR and HUP


def registered(refs, old):
    """ep watches r for IN with DATA; r's file is then replaced.  Returns (p, ep, r, keep)."""
    p = Program()
    ep = p.epoll_create("ep")
    r = CREATE[old](p, "r", file="old")
    keep = p.dup(r, "keep") if refs == "multi" else None
    p.epoll_ctl(ep, ADD, r, IN, data=DATA)
    return p, ep, r, keep


def ino(kind, name):
    """What fdinfo's ino shows: the file for pipes and sockets, the shared anon inode otherwise."""
    return ("anon_inode", "anon_inodefs") if kind == EVENTFD else (
        name, "pipefs" if kind == PIPE else "sockfs")


def line(kind, name):
    i, sdev = ino(kind, name)
    return FdinfoLine(tfd="r", events=REGISTERED, data=DATA, ino=i, sdev=sdev)


def inject_old(p, old, keep):
    """Make the old file readable: through the driver's peer, or (eventfd) through keep."""
    return p.inject(p.file_named("old"), through=keep if old == EVENTFD else None)


@case(params=MATRIX)
def test_old_file_readiness_after_replace(refs, via, old, new):
    """After a replace, epoll reports the old file's readiness under the fd's data while a
    dup keeps the old file alive, and nothing once it is gone."""
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=new, via=via, file="new")
    if refs == "multi":
        inject_old(p, old, keep)
        expect_after_replace(p.wait(ep), via,
                             stock=E(events=[(IN, DATA)]), follow=E(events=[]))
        expect_after_replace(p.fdinfo(ep), via,
                             stock=E(fdinfo=[line(old, "old")]), follow=E(fdinfo=[line(new, "new")]))
    else:
        if old != EVENTFD:   # the driver's peer outlives the file: the write finds no reader
            inject_old(p, old, keep).expect(-1, errno="EPIPE")
        p.wait(ep).expect(events=[])
        expect_after_replace(p.fdinfo(ep), via,
                             stock=E(fdinfo=[]), follow=E(fdinfo=[line(new, "new")]))
    return p


@case(params=MATRIX)
def test_new_file_readiness_after_replace(refs, via, old, new):
    """After a replace, the new file's readiness is not reported on a stock kernel, and
    read() on the fd reaches the new file."""
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=new, via=via, file="new")
    p.inject(p.file_named("new"), through=r if new == EVENTFD else None)
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA)]))
    p.read(r).expect(reached="new")
    return p


@case(params=matrix(refs=REFS, via=VIAS, old=OLD))
def test_read_after_replace_reaches_new_file_only(refs, via, old):
    """With both files readable, read() on the replaced fd consumes the new file's token,
    never the old one's."""
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=PIPE, via=via, file="new")
    if refs == "multi":
        inject_old(p, old, keep)
    p.inject(p.file_named("new"))
    p.read(r).expect(reached="new")
    p.read(r).expect(-1, errno="EAGAIN")
    return p


@case(params=matrix(refs=REFS, via=VIAS, old=OLD, new=NEW))
def test_del_on_replaced_fd(refs, via, old, new):
    """EPOLL_CTL_DEL on a replaced fd looks up (fd, new file): ENOENT on a stock kernel, and
    the stale entry stays."""
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=new, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, DEL, r), via, stock=E(-1, errno="ENOENT"), follow=E(0))
    stale = [line(old, "old")] if refs == "multi" else []
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=stale), follow=E(fdinfo=[]))
    return p


@case(params=matrix(refs=REFS, via=VIAS, old=OLD, new=NEW))
def test_mod_on_replaced_fd(refs, via, old, new):
    """EPOLL_CTL_MOD on a replaced fd finds no (fd, new file) entry on a stock kernel: ENOENT."""
    from native.program import MOD, OUT
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=new, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, MOD, r, IN | OUT, data=DATA), via,
                         stock=E(-1, errno="ENOENT"), follow=E(0))
    return p


@case(params=matrix(refs=REFS, via=VIAS, old=OLD, new=NEW))
def test_add_on_replaced_fd(refs, via, old, new):
    """EPOLL_CTL_ADD of a replaced fd succeeds on a stock kernel, leaving two entries under
    one fd number while the old file lives."""
    p, ep, r, keep = registered(refs, old)
    p.replace(r, by=new, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=DATA), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    both = [line(old, "old"), line(new, "new")] if refs == "multi" else [line(new, "new")]
    # Under follow the entry already moved to the new file: the ADD was refused.
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=both), follow=E(fdinfo=[line(new, "new")]))
    return p


@case(params=matrix(via=VIAS, old=OLD))
def test_stale_entry_dies_with_last_reference(via, old):
    """The stale entry left by a replace lives exactly as long as the old file: closing the
    last dup removes it."""
    p, ep, r, keep = registered("multi", old)
    p.replace(r, by=PIPE, via=via, file="new")
    expect_after_replace(p.fdinfo(ep), via,
                         stock=E(fdinfo=[line(old, "old")]), follow=E(fdinfo=[line(PIPE, "new")]))
    p.close(keep)
    expect_after_replace(p.fdinfo(ep), via,
                         stock=E(fdinfo=[]), follow=E(fdinfo=[line(PIPE, "new")]))
    if old != EVENTFD:
        inject_old(p, old, None).expect(-1, errno="EPIPE")
    p.wait(ep).expect(events=[])
    return p


@case(params=matrix(via=VIAS, old=OLD, new=NEW))
def test_re_add_after_a_single_reference_replace_reports_the_new_file(via, old, new):
    """After the fd's only reference to the old file is replaced, a re-ADD on a stock kernel
    makes the one entry, and it reports the new file's readiness (follow: the moved entry
    already does, and the ADD is EEXIST)."""
    p, ep, r, keep = registered("single", old)
    p.replace(r, by=new, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=DATA + 1), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    p.wait(ep).expect(events=[])
    p.inject(p.file_named("new"), through=r if new == EVENTFD else None)
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA + 1)]),
                         follow=E(events=[(IN, DATA)]))
    p.read(r).expect(reached="new")
    p.wait(ep).expect(events=[])
    return p
