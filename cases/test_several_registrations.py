"""Several registrations of one fd number: in several epoll instances, twice in one
instance after a re-ADD, and how long a stale entry lives wherever the old file's
last reference is.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, ERR, EVENTFD, HUP, IN,
                            MOD, OUT, PIPE, Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, DUP2)
REG = IN | ERR | HUP


def line(data, ino, tfd="r", events=REG):
    return FdinfoLine(tfd, events, data, ino=ino, sdev="pipefs")


@case(params=matrix(via=VIAS))
def test_same_fd_in_two_epoll_instances(via):
    """A replaced fd registered in two epoll instances leaves a stale entry in each, each
    reporting the old file under its own data."""
    p = Program()
    ep1, ep2 = p.epoll_create("ep1"), p.epoll_create("ep2")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep1, ADD, r, IN, data=1)
    p.epoll_ctl(ep2, ADD, r, IN, data=2)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep1), via, stock=E(events=[(IN, 1)]), follow=E(events=[]))
    expect_after_replace(p.wait(ep2), via, stock=E(events=[(IN, 2)]), follow=E(events=[]))
    expect_after_replace(p.epoll_ctl(ep1, DEL, r), via, stock=E(-1, errno="ENOENT"), follow=E(0))
    expect_after_replace(p.fdinfo(ep2), via, stock=E(fdinfo=[line(2, "old")]),
                         follow=E(fdinfo=[line(2, "new")]))
    p.close(keep)
    expect_after_replace(p.fdinfo(ep1), via, stock=E(fdinfo=[]), follow=E(fdinfo=[]))
    expect_after_replace(p.fdinfo(ep2), via, stock=E(fdinfo=[]), follow=E(fdinfo=[line(2, "new")]))
    return p


def two_entries(via):
    """After a replace and a re-ADD, ep holds (r, old) with data 1 and (r, new) with data 2."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=PIPE, via=via, file="new")
    return p, ep, r


@case()
def test_re_add_makes_two_entries_under_one_fd():
    """After a replace, ADD of the same fd number makes a second entry; both report, each
    under its own data, in the order they became ready."""
    p, ep, r = two_entries(DUP2)
    p.epoll_ctl(ep, ADD, r, IN, data=2)
    p.fdinfo(ep).expect(fdinfo=[line(1, "old"), line(2, "new")])
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 1)])
    p.inject(p.file_named("new"))
    p.wait(ep).expect(events=[(IN, 1), (IN, 2)])
    p.read(r).expect(reached="new")
    p.wait(ep).expect(events=[(IN, 1)])
    return p


@case()
def test_del_and_mod_touch_the_entry_of_the_current_file():
    """With two entries under one fd number, MOD and DEL act on the entry of the file the fd
    holds now; the old one is out of reach."""
    p, ep, r = two_entries(DUP2)
    p.epoll_ctl(ep, ADD, r, IN, data=2)
    p.epoll_ctl(ep, MOD, r, IN | OUT, data=3)
    p.fdinfo(ep).expect(fdinfo=[line(1, "old"), line(3, "new", events=IN | OUT | ERR | HUP)])
    p.epoll_ctl(ep, DEL, r)
    p.fdinfo(ep).expect(fdinfo=[line(1, "old")])
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
    p.epoll_ctl(ep, MOD, r, IN, data=4).expect(-1, errno="ENOENT")
    p.fdinfo(ep).expect(fdinfo=[line(1, "old")])
    return p


@case(params=matrix(via=VIAS))
def test_stale_entry_lives_while_the_driver_keeps_the_old_file(via):
    """The stale entry lives as long as any reference to the old file, even one held only by
    the supervisor."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    spare = p.eventfd("spare")
    p.replace(spare, by=r, via=ADDFD_SETFD, keep=True)   # the supervisor keeps a copy of "old"
    p.close(spare)
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1)]), follow=E(events=[]))
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[line(1, "old")]),
                         follow=E(fdinfo=[line(1, "new")]))
    return p


@case(params=matrix(via=VIAS))
def test_stale_eventfd_entry_outlives_replace_through_dup(via):
    """An eventfd's stale entry reports injections made through the dup that keeps it alive,
    under the replaced fd's data."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.eventfd("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=7)
    p.replace(r, by=EVENTFD, via=via, file="new")
    p.inject(p.file_named("old"), through=keep)
    p.inject(p.file_named("old"), through=keep)
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 7)]), follow=E(events=[]))
    p.read(keep).expect(reached="old", count=2)
    p.read(r).expect(-1, errno="EAGAIN")
    return p


@case(params=matrix(via=(ADDFD_SETFD, ADDFD_SETFD_SEND)))
def test_re_add_after_an_addfd_replace_makes_two_entries(via):
    """After an ADDFD replace of a pipe kept by a dup, a re-ADD of the fd makes a second
    entry on a stock kernel, each reporting its own file under its own data; under follow
    the entry moved and the ADD is EEXIST."""
    p, ep, r = two_entries(via)
    expect_after_replace(p.epoll_ctl(ep, ADD, r, IN, data=2), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[line(1, "old"), line(2, "new")]),
                         follow=E(fdinfo=[line(1, "new")]))
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1)]), follow=E(events=[]))
    p.inject(p.file_named("new"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1), (IN, 2)]),
                         follow=E(events=[(IN, 1)]))
    p.read(r).expect(reached="new")
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1)]), follow=E(events=[]))
    p.epoll_ctl(ep, DEL, r)
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[line(1, "old")]), follow=E(fdinfo=[]))
    return p
