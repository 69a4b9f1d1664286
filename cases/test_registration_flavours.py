"""Registration flavours across a replace: LT, ET, ONESHOT, EXCLUSIVE, RDHUP, 64-bit data.

Each case registers the fd, keeps the old file alive with a dup (multi-reference),
replaces the file, and checks how the stale entry behaves in that flavour; the
last one drops the dup (single reference), where only follow keeps an entry.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, ERR, ET, EXCLUSIVE,
                            HUP, IN, MOD, ONESHOT, OUT, PIPE, RDHUP, SOCKET, Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, DUP2)
DATA = 0xD5


def watched(events, old=PIPE, data=DATA):
    """ep watches r (the file "old", kept alive by a dup) with the given events."""
    p = Program()
    ep = p.epoll_create("ep")
    r = (p.pipe if old == PIPE else p.socketpair)("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, events, data=data)
    return p, ep, r


def fdline(events, name="old", data=DATA, kind=PIPE):
    return FdinfoLine("r", events, data, ino=name, sdev="pipefs" if kind == PIPE else "sockfs")


@case(params=matrix(via=VIAS))
def test_level_triggered_stale_entry_reports_until_drained(via):
    """A level-triggered stale entry reports the old file at every wait until the old file
    is drained through the dup."""
    p, ep, r = watched(IN)
    p.replace(r, by=SOCKET, via=via, file="new")
    p.inject(p.file_named("old"))
    for _ in range(2):
        expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    p.drain(p.handles[2]).expect(reached="old")
    p.wait(ep).expect(events=[])
    return p


@case(params=matrix(via=VIAS))
def test_edge_triggered_stale_entry_fires_once_per_write(via):
    """An edge-triggered stale entry fires once per write to the old file, never again for
    data already there."""
    p, ep, r = watched(IN | ET)
    p.replace(r, by=SOCKET, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    p.wait(ep).expect(events=[])
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    return p


@case(params=matrix(via=VIAS))
def test_oneshot_stale_entry_can_never_be_rearmed(via):
    """A ONESHOT stale entry that fired stays disarmed for good: MOD through the fd finds
    the new file, not the entry."""
    p, ep, r = watched(IN | ONESHOT)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    p.wait(ep).expect(events=[])
    # A fired ONESHOT entry keeps only its private bits.
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[fdline(ONESHOT)]),
                         follow=E(fdinfo=[fdline(IN | ONESHOT | ERR | HUP, "new")]))
    expect_after_replace(p.epoll_ctl(ep, MOD, r, IN | ONESHOT, data=DATA), via,
                         stock=E(-1, errno="ENOENT"), follow=E(0))
    p.epoll_ctl(ep, MOD, p.handles[2], IN | ONESHOT, data=DATA).expect(-1, errno="ENOENT")
    p.wait(ep).expect(events=[])
    return p


@case(params=matrix(via=VIAS))
def test_exclusive_stale_entry_mod_and_del(via):
    """On an EXCLUSIVE stale entry, MOD and DEL through the replaced fd find nothing
    (ENOENT) on a stock kernel; a followed entry refuses MOD (EINVAL) and accepts DEL."""
    p, ep, r = watched(IN | EXCLUSIVE)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    expect_after_replace(p.epoll_ctl(ep, MOD, r, IN, data=DATA), via,
                         stock=E(-1, errno="ENOENT"), follow=E(-1, errno="EINVAL"))
    expect_after_replace(p.epoll_ctl(ep, DEL, r), via, stock=E(-1, errno="ENOENT"), follow=E(0))
    return p


@case(params=matrix(via=VIAS))
def test_rdhup_on_stale_socket_entry(via):
    """When the old socket's peer hangs up, the stale entry reports IN|RDHUP|HUP under the
    replaced fd's data."""
    p, ep, r = watched(IN | RDHUP, old=SOCKET)
    p.replace(r, by=SOCKET, via=via, file="new")
    p.hangup(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN | HUP | RDHUP, DATA)]),
                         follow=E(events=[]))
    p.read(r).expect(-1, errno="EAGAIN")
    p.read(p.handles[2]).expect(0)
    return p


@case(params=matrix(via=VIAS))
def test_full_64bit_data_is_kept_on_stale_entry(via):
    """The stale entry keeps all 64 bits of its data, in epoll_wait and in fdinfo."""
    data = 0xFFFF_FFFF_0000_0001
    p, ep, r = watched(IN, data=data)
    p.replace(r, by=PIPE, via=via, file="new")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, data)]), follow=E(events=[]))
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[fdline(IN | ERR | HUP, data=data)]),
                         follow=E(fdinfo=[fdline(IN | ERR | HUP, "new", data=data)]))
    return p


@case(params=matrix(via=VIAS, refs=("single", "multi")))
def test_event_on_ready_list_at_replace(via, refs):
    """An event already queued when the file is replaced is still reported if the old file
    lives (level-triggered), and dropped with the old file otherwise."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if refs == "multi":
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=DATA)
    p.inject(p.file_named("old"))
    p.replace(r, by=PIPE, via=via, file="new")
    if refs == "multi":
        expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, DATA)]), follow=E(events=[]))
    else:
        p.wait(ep).expect(events=[])
    return p


@case(params=matrix(flavour=("ET", "ONESHOT"), via=(ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2)))
def test_edge_and_oneshot_entries_of_a_single_reference(flavour, via):
    """When the fd was the old file's only reference, an ET or ONESHOT entry goes with it on
    a stock kernel; under follow it moves to the new file and fires once for its data, as
    that flavour does."""
    bits = ET if flavour == "ET" else ONESHOT
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN | bits, data=DATA)
    p.replace(r, by=PIPE, via=via, file="new")
    moved = fdline(IN | ERR | HUP | bits, "new")
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=[moved]))
    p.inject(p.file_named("old")).expect(-1, errno="EPIPE")
    p.inject(p.file_named("new"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA)]))
    p.wait(ep).expect(events=[])
    fired = fdline(ONESHOT, "new") if bits == ONESHOT else moved   # ONESHOT keeps its private bits
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[]), follow=E(fdinfo=[fired]))
    expect_after_replace(p.epoll_ctl(ep, MOD, r, IN | bits, data=DATA + 1), via,
                         stock=E(-1, errno="ENOENT"), follow=E(0))
    expect_after_replace(p.wait(ep), via, stock=E(events=[]), follow=E(events=[(IN, DATA + 1)]))
    p.read(r).expect(reached="new")
    return p
