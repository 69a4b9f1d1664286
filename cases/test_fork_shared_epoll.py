"""An epoll instance shared by fork: the child's copy of the fd table names the same
epoll file and the same registered files, so parent and child see one interest list.

An entry is keyed by (fd number, file) in the instance, not by process: a DEL from
either side removes it for both; a close() removes nothing while the other
process still holds the file (epoll drops an entry only at the file's last
fput); an exit or SIGKILL is a close of everything the process held.  A replace
in one process changes only that process's table: on a stock kernel the entry
stays with the old file, which the other process still holds.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, DEL, DUP2, DUP3, ADDFD_SETFD, ADDFD_SETFD_SEND, ERR, EVENTFD,
                            HUP, IN, MAIN, MOD, PIPE, SOCKET, Program)
from native.trace import FdinfoLine

DATA = 0xD5
REG = IN | ERR | HUP
VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
KINDS = (PIPE, SOCKET, EVENTFD)
CREATE = {PIPE: Program.pipe, SOCKET: Program.socketpair, EVENTFD: Program.eventfd}
SDEV = {PIPE: "pipefs", SOCKET: "sockfs"}


def line(kind, name, data=DATA, tfd="r"):
    if kind == EVENTFD:
        return FdinfoLine(tfd, REG, data, ino="anon_inode", sdev="anon_inodefs")
    return FdinfoLine(tfd, REG, data, ino=name, sdev=SDEV[kind])


#   main's fd table              child's fd table (a copy made by fork)
#     ep --+                       ep --+
#     r  --|--+                    r  --|--+
#          v  v                         |  |
#        [ep1]  [f] <-------------------+--+   one epoll file, one file f:
#          |     ^                              both tables refer to them
#          +-----+ entry (r's number, f), data DATA
# shared(): a DEL in either process removes the one entry; a close in one
# leaves it while the other still holds f; a replace changes one table only.
def shared(kind=PIPE):
    """ep watches r (file "f") with DATA, then the target forks.  Returns (p, ep, r, child)."""
    p = Program()
    ep = p.epoll_create("ep")
    r = CREATE[kind](p, "r", file="f")
    p.epoll_ctl(ep, ADD, r, IN, data=DATA)
    child = p.fork("child")
    return p, ep, r, child


def inject(p, kind, name, through):
    """Make a file readable: through the driver's peer, or (eventfd) through a handle."""
    return p.inject(p.file_named(name), through=through if kind == EVENTFD else None)


@case(params=matrix(kind=KINDS))
def test_child_del_removes_the_parents_entry(kind):
    """EPOLL_CTL_DEL in the child removes the entry from the shared instance: the parent's
    epoll no longer reports the file, though the file itself is untouched."""
    p, ep, r, child = shared(kind)
    with p.on(child):
        p.epoll_ctl(ep, DEL, r)
    p.fdinfo(ep).expect(fdinfo=[])
    inject(p, kind, "f", r)
    p.wait(ep).expect(events=[])
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
    p.read(r).expect(reached="f")
    return p


@case(params=matrix(kind=KINDS))
def test_child_close_leaves_the_parents_entry(kind):
    """close() in the child removes nothing while the parent holds the file: both processes'
    waits on the shared instance still report it, and only the parent can still DEL it."""
    p, ep, r, child = shared(kind)
    with p.on(child):
        p.close(r)
    p.fdinfo(ep).expect(fdinfo=[line(kind, "f")])
    inject(p, kind, "f", r)
    with p.on(child):
        p.wait(ep).expect(events=[(IN, DATA)])     # reported to a process without the fd
        p.epoll_ctl(ep, DEL, r).expect(-1, errno="EBADF")
    p.wait(ep).expect(events=[(IN, DATA)])
    p.epoll_ctl(ep, DEL, r)
    p.fdinfo(ep).expect(fdinfo=[])
    return p


@case(params=matrix(end=("exit", "kill")))
def test_child_end_leaves_the_parents_epoll_untouched(end):
    """When the child exits or is SIGKILLed, the shared instance loses only the entries of
    files the child alone held; what the child changed in the parent's entries (a MOD)
    stays."""
    p, ep, r, child = shared()
    with p.on(child):
        mine = p.pipe("mine", file="mine")
        p.epoll_ctl(ep, ADD, mine, IN, data=2)
        p.epoll_ctl(ep, MOD, r, IN, data=3)
        p.fdinfo(ep).expect(fdinfo=[line(PIPE, "f", data=3), line(PIPE, "mine", data=2, tfd="mine")])
    p.inject(p.file_named("f"))
    p.inject(p.file_named("mine"))
    if end == "exit":
        with p.on(child):
            p.exit_target()
    else:
        p.kill(child)
    p.fdinfo(ep).expect(fdinfo=[line(PIPE, "f", data=3)])
    p.wait(ep).expect(events=[(IN, 3)])
    p.inject(p.file_named("mine")).expect(-1, errno="EPIPE")   # the child's pipe died with it
    return p


@case()
def test_child_killed_asleep_in_the_shared_epoll_leaves_it_working():
    """A child SIGKILLed while asleep in epoll_wait on the shared instance takes nothing
    with it: the parent's next wait reports the entry the child slept on."""
    p, ep, r, child = shared()
    with p.on(child):
        p.wait(ep, timeout_ms=5000, background=True).expect("blocked")
    p.kill(child)
    p.inject(p.file_named("f"))
    p.wait(ep).expect(events=[(IN, DATA)])
    p.fdinfo(ep).expect(fdinfo=[line(PIPE, "f")])
    return p


@case(params=matrix(kind=KINDS))
def test_child_takes_the_loop_over_when_the_parent_exits(kind):
    """After the parent exits, the child's inherited epoll keeps the entry and reports it;
    the child can drain and DEL it."""
    p, ep, r, child = shared(kind)
    p.exit_target()
    with p.on(child):
        p.fdinfo(ep).expect(fdinfo=[line(kind, "f")])
        inject(p, kind, "f", r)
        p.wait(ep).expect(events=[(IN, DATA)])
        p.read(r).expect(reached="f")
        p.wait(ep).expect(events=[])
        p.epoll_ctl(ep, DEL, r)
        p.fdinfo(ep).expect(fdinfo=[])
    return p


@case(params=matrix(who=("parent", "child"), via=VIAS))
def test_replace_of_an_fd_registered_before_the_fork(who, via):
    """A replace in one process of an fd registered before the fork leaves the shared entry
    with the old file, which the other process still holds: it reports the old file, only
    the other process can DEL it, and read() in each process reaches its own file."""
    p, ep, r, child = shared()
    actor, other = (child, MAIN) if who == "child" else (MAIN, child)
    with p.on(actor):
        p.replace(r, by=PIPE, via=via, file="new")    # ADDFD: this actor makes the trapped call
    p.inject(p.file_named("f"))
    with p.on(other):
        expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
        p.read(r).expect(reached="f")
    p.inject(p.file_named("new"))
    with p.on(actor):
        expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA)]))
        p.read(r).expect(reached="new")
        expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[line(PIPE, "f")]),
                             follow=E(fdinfo=[line(PIPE, "new")]))
        expect_after_replace(p.epoll_ctl(ep, DEL, r), via,
                             stock=E(-1, errno="ENOENT"), follow=E(0))
    with p.on(other):
        expect_after_replace(p.epoll_ctl(ep, DEL, r), via,
                             stock=E(0), follow=E(-1, errno="ENOENT"))
        p.fdinfo(ep).expect(fdinfo=[])
    return p


@case(params=matrix(via=VIAS))
def test_child_replace_of_the_last_reference_removes_the_parents_entry(via):
    """When the parent has closed its copy, a replace in the child drops the old file's last
    reference and with it the entry of the shared instance, as if the parent had never
    registered it."""
    p, ep, r, child = shared()
    p.close(r)
    with p.on(child):
        p.replace(r, by=PIPE, via=via, file="new")
        expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=[line(PIPE, "new")]))
    p.inject(p.file_named("f")).expect(-1, errno="EPIPE")
    p.inject(p.file_named("new"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA)]))
    return p


@case(params=matrix(closer=("parent", "child"), kind=(PIPE, SOCKET)))
def test_one_process_closes_and_the_other_ends(closer, kind):
    """When one process closes its copy of the fd and the other then ends, the file's last
    reference goes and the shared instance drops the entry for the survivor."""
    p, ep, r, child = shared(kind)
    survivor, ender = (MAIN, child) if closer == "parent" else (child, MAIN)
    with p.on(survivor):
        p.close(r)
    with p.on(ender):
        p.fdinfo(ep).expect(fdinfo=[line(kind, "f")])   # the entry lives on the ender's copy
        p.exit_target()
    with p.on(survivor):
        p.fdinfo(ep).expect(fdinfo=[])
        inject(p, kind, "f", None).expect(-1, errno="EPIPE")
        p.wait(ep).expect(events=[])
        p.epoll_ctl(ep, ADD, r, IN, data=DATA).expect(-1, errno="EBADF")
    return p


@case(params=matrix(via=VIAS))
def test_takeover_after_the_parent_closed_the_fd_and_the_epoll(via):
    """A parent that closes both the fd and the epoll before exiting leaves the child sole
    owner of both; the child's replace of the fd is then a single-reference replace,
    dropping the entry on a stock kernel."""
    p, ep, r, child = shared()
    p.close(r)
    p.close(ep)
    p.exit_target()
    with p.on(child):
        p.fdinfo(ep).expect(fdinfo=[line(PIPE, "f")])
        p.inject(p.file_named("f"))
        p.wait(ep).expect(events=[(IN, DATA)])
        p.replace(r, by=PIPE, via=via, file="new")
        expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=[line(PIPE, "new")]))
        p.inject(p.file_named("f")).expect(-1, errno="EPIPE")
        p.inject(p.file_named("new"))
        expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA)]))
        p.read(r).expect(reached="new")
    return p
