"""epoll_ctl's own contract: every error do_epoll_ctl() returns, in its order, and
the same checks made through a replaced fd.

do_epoll_ctl() looks up epfd, then fd (EBADF), refuses a target that cannot be
polled (EPERM), drops EPOLLWAKEUP from ADD/MOD when the caller may not keep it,
refuses an epfd that is fd or is no epoll (EINVAL), refuses EPOLLEXCLUSIVE with
MOD, on an epoll target or with bits outside EPOLLEXCLUSIVE_OK_BITS (EINVAL),
checks ADD of an epoll for loops and depth (ELOOP; EINVAL before f2e467a48287),
and only then looks the (fd, file) pair up: EEXIST for ADD, ENOENT for MOD and
DEL, EINVAL for MOD of an entry added with EPOLLEXCLUSIVE and for an unknown op.
DEL carries no event, so its event bits are never checked.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.kernel_facts import epollwakeup_kept, kernel_has
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, EPOLL,
                            ERR, ET, EVENTFD, EXCLUSIVE, HUP, IN, MEMFD, MOD, ONESHOT, OUT,
                            PIPE, PRI, RDHUP, Program)
from native.trace import FdinfoLine, mask_value

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
REG = IN | ERR | HUP
WAKEUP = mask_value("WAKEUP")
RDNORM = mask_value("RDNORM")
# The nesting checks count the path above the instance joined, with ELOOP, since this commit.
BOTH_WAYS = kernel_has("f2e467a48287")
NEST_ERRNO = "ELOOP" if BOTH_WAYS else "EINVAL"
# Without CONFIG_PM_SLEEP, or without CAP_BLOCK_SUSPEND, ADD and MOD drop EPOLLWAKEUP.
KEPT_WAKEUP = WAKEUP if epollwakeup_kept() else 0


def registered(events=IN, keep=False):
    """ep watches the pipe r (file "old") with data 1; keep: a dup holds "old" too."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if keep:
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, events, data=1)
    return p, ep, r


def old_line(events=REG, data=1):
    return FdinfoLine("r", events, data, ino="old", sdev="pipefs")


# -- EPOLLEXCLUSIVE ------------------------------------------------------------

@case()
def test_exclusive_with_mod_is_refused_before_the_lookup():
    """MOD with EPOLLEXCLUSIVE fails with EINVAL on a registered fd and on an fd never added
    (the check comes before the lookup that would say ENOENT); the entry is unchanged."""
    p, ep, r = registered()
    p.epoll_ctl(ep, MOD, r, IN | EXCLUSIVE, data=2).expect(-1, errno="EINVAL")
    x = p.pipe("x")
    p.epoll_ctl(ep, MOD, x, IN | EXCLUSIVE, data=3).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, MOD, x, IN, data=3).expect(-1, errno="ENOENT")
    p.fdinfo(ep).expect(fdinfo=[old_line()])
    return p


@case(params=matrix(bit=("ONESHOT", "RDHUP", "PRI", "RDNORM")))
def test_exclusive_with_a_bit_outside_the_allowed_set(bit):
    """ADD with EPOLLEXCLUSIVE and any bit outside EPOLLEXCLUSIVE_OK_BITS (ONESHOT, RDHUP,
    PRI, RDNORM) fails with EINVAL and adds nothing; the same bit without EXCLUSIVE is
    accepted."""
    extra = {"ONESHOT": ONESHOT, "RDHUP": RDHUP, "PRI": PRI, "RDNORM": RDNORM}[bit]
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN | EXCLUSIVE | extra, data=1).expect(-1, errno="EINVAL")
    p.fdinfo(ep).expect(fdinfo=[])
    p.epoll_ctl(ep, ADD, r, IN | extra, data=1)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG | extra)])
    return p


@case()
def test_exclusive_accepts_every_allowed_bit():
    """ADD with EPOLLEXCLUSIVE and every bit of EPOLLEXCLUSIVE_OK_BITS (IN, OUT, ERR, HUP,
    WAKEUP, ET) succeeds; the entry shows them, WAKEUP only where the caller may keep it."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN | OUT | ERR | HUP | WAKEUP | ET | EXCLUSIVE, data=1)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG | OUT | ET | EXCLUSIVE | KEPT_WAKEUP)])
    return p


@case()
def test_exclusive_on_an_epoll_target_is_refused():
    """ADD with EPOLLEXCLUSIVE of an epoll fd fails with EINVAL; the same ADD without it
    nests the instance."""
    p = Program()
    ep = p.epoll_create("ep")
    inner = p.epoll_create("inner")
    p.epoll_ctl(ep, ADD, inner, IN | EXCLUSIVE, data=1).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, ADD, inner, IN, data=1)
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("inner", REG, 1, ino="anon_inode",
                                           sdev="anon_inodefs")])
    return p


@case()
def test_entry_added_exclusive_refuses_mod_but_not_del():
    """An entry added with EPOLLEXCLUSIVE refuses every MOD (EINVAL, entry unchanged), is
    found by ADD (EEXIST) and removed by DEL, after which the fd can be added again."""
    p, ep, r = registered(IN | EXCLUSIVE)
    p.epoll_ctl(ep, MOD, r, IN | OUT, data=2).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, ADD, r, IN, data=3).expect(-1, errno="EEXIST")
    p.fdinfo(ep).expect(fdinfo=[old_line(REG | EXCLUSIVE)])
    p.epoll_ctl(ep, DEL, r)
    p.epoll_ctl(ep, ADD, r, IN, data=4)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG, 4)])
    return p


@case()
def test_del_ignores_its_event_bits():
    """DEL carries no event: EXCLUSIVE and ONESHOT in its mask neither fail it nor change
    what it removes."""
    p, ep, r = registered()
    p.epoll_ctl(ep, DEL, r, IN | EXCLUSIVE | ONESHOT | PRI, data=7)
    p.fdinfo(ep).expect(fdinfo=[])
    p.epoll_ctl(ep, DEL, r, IN | EXCLUSIVE).expect(-1, errno="ENOENT")
    return p


@case(params=matrix(via=VIAS))
def test_exclusive_checks_through_a_replaced_fd(via):
    """Through an fd whose EXCLUSIVE entry stayed with the old file, MOD with EXCLUSIVE
    still fails with EINVAL in every profile, and ADD with EXCLUSIVE|ONESHOT or of a new
    epoll too: the checks precede the lookup."""
    p, ep, r = registered(IN | EXCLUSIVE, keep=True)
    p.replace(r, by=PIPE, via=via, file="new")
    p.epoll_ctl(ep, MOD, r, IN | EXCLUSIVE, data=2).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, ADD, r, IN | EXCLUSIVE | ONESHOT, data=3).expect(-1, errno="EINVAL")
    p.replace(r, by=EPOLL, via=via, file="nest")
    p.epoll_ctl(ep, ADD, r, IN | EXCLUSIVE, data=4).expect(-1, errno="EINVAL")
    # A followed entry went with "new" (no EXCLUSIVE entry may watch an epoll) and
    # with its last reference.
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[old_line(REG | EXCLUSIVE)]),
                         follow=E(fdinfo=[]))
    return p


# -- EPERM and EINVAL: the target and the epfd ----------------------------------

@case(params=matrix(op=(ADD, MOD, DEL)))
def test_non_pollable_target_is_eperm_first(op):
    """A regular file (memfd) as the target fails with EPERM for every op, before the epfd
    is checked: also when epfd is that memfd or a pipe."""
    p = Program()
    ep = p.epoll_create("ep")
    m = p.memfd("m")
    r = p.pipe("r")
    p.epoll_ctl(ep, op, m, IN, data=1).expect(-1, errno="EPERM")
    p.epoll_ctl(m, op, m, IN, data=1).expect(-1, errno="EPERM")
    p.epoll_ctl(r, op, m, IN, data=1).expect(-1, errno="EPERM")
    p.epoll_ctl(m, op, r, IN, data=1).expect(-1, errno="EINVAL")
    return p


@case(params=matrix(kind=(PIPE, EVENTFD, MEMFD), op=(ADD, MOD, DEL)))
def test_epfd_that_is_not_an_epoll(kind, op):
    """An epfd that is no epoll (a pipe, an eventfd, a memfd) fails with EINVAL for every op
    on a pollable target, and an epfd equal to a pollable fd does too."""
    p = Program()
    bad = {PIPE: p.pipe, EVENTFD: p.eventfd, MEMFD: p.memfd}[kind]("bad")
    r = p.pipe("r")
    p.epoll_ctl(bad, op, r, IN, data=1).expect(-1, errno="EINVAL")
    p.epoll_ctl(r, op, r, IN, data=1).expect(-1, errno="EINVAL")
    return p


@case(params=matrix(by=(PIPE, MEMFD, EPOLL), via=VIAS))
def test_replaced_epfd(by, via):
    """Once epfd's number holds another file, epoll_ctl goes to that file: EINVAL for a
    pipe, EPERM first for a memfd target, and a new epoll knows none of the old instance's
    entries (ENOENT, then ADD succeeds there) in every profile."""
    p, ep, r = registered()
    keep = p.dup(ep, "keep")
    m = p.memfd("m")
    p.replace(ep, by=by, via=via, file="new")
    if by == EPOLL:
        p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
        p.epoll_ctl(ep, ADD, r, IN, data=2)
        p.fdinfo(ep).expect(fdinfo=[old_line(REG, 2)])
    else:
        p.epoll_ctl(ep, DEL, r).expect(-1, errno="EINVAL")
        p.epoll_ctl(ep, ADD, r, IN, data=2).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, ADD, m, IN, data=3).expect(-1, errno="EPERM")
    p.fdinfo(keep).expect(fdinfo=[old_line()])
    return p


# -- EEXIST, ENOENT, EBADF ------------------------------------------------------

@case()
def test_eexist_and_enoent_follow_the_fd_and_file_pair():
    """ADD of a registered fd fails with EEXIST whatever its mask; another fd of the same
    file is a new entry; MOD and DEL of an fd never added, or after DEL, fail with ENOENT."""
    p, ep, r = registered()
    p.epoll_ctl(ep, ADD, r, IN | OUT | ET, data=2).expect(-1, errno="EEXIST")
    d = p.dup(r, "d")
    p.epoll_ctl(ep, ADD, d, IN, data=3)
    x = p.pipe("x")
    p.epoll_ctl(ep, MOD, x, IN, data=4).expect(-1, errno="ENOENT")
    p.epoll_ctl(ep, DEL, x).expect(-1, errno="ENOENT")
    p.epoll_ctl(ep, DEL, r)
    p.epoll_ctl(ep, MOD, r, IN, data=5).expect(-1, errno="ENOENT")
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
    p.fdinfo(ep).expect(fdinfo=[FdinfoLine("d", REG, 3, ino="old", sdev="pipefs")])
    return p


@case(params=matrix(op=(ADD, MOD, DEL), where=("epfd", "fd", "both")))
def test_ebadf_in_each_position(op, where):
    """A closed epfd, a closed fd, or both fail with EBADF, before any other check: a closed
    epfd with a memfd target is EBADF, not EPERM."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    m = p.memfd("m")
    gone = p.pipe("gone")
    p.close(gone)
    epfd = gone if where in ("epfd", "both") else ep
    fd = gone if where in ("fd", "both") else r
    p.epoll_ctl(epfd, op, fd, IN, data=1).expect(-1, errno="EBADF")
    if where == "epfd":
        p.epoll_ctl(gone, op, m, IN, data=1).expect(-1, errno="EBADF")
    return p


@case(params=matrix(via=VIAS))
def test_closed_replaced_fd_is_ebadf_while_its_stale_entry_reports(via):
    """After the replaced fd is closed, every op through it fails with EBADF, while the
    stale entry of the old file (alive through a dup) still reports under the old number's
    data."""
    p, ep, r = registered(keep=True)
    p.replace(r, by=PIPE, via=via, file="new")
    p.close(r)
    for op in (ADD, MOD, DEL):
        p.epoll_ctl(ep, op, r, IN, data=2).expect(-1, errno="EBADF")
    p.inject(p.file_named("old"))
    expect_after_replace(p.wait(ep), via, stock=E(events=[(IN, 1)]), follow=E(events=[]))
    return p


# -- nesting ----------------------------------------------------------------------

@case(params=matrix(via=VIAS))
def test_stale_entry_still_closes_a_loop(via):
    """A stale entry for a replaced epoll fd still links the old instance into the graph:
    adding the registering epoll to the old instance fails with ELOOP on a stock kernel, and
    succeeds where the entry followed a new pipe."""
    p = Program()
    a = p.epoll_create("a")
    b = p.epoll_create("b", file="old")
    keep = p.dup(b, "keep")
    p.epoll_ctl(a, ADD, b, IN, data=1)
    p.replace(b, by=PIPE, via=via, file="new")
    expect_after_replace(p.epoll_ctl(keep, ADD, a, IN, data=2), via,
                         stock=E(-1, errno="ELOOP"), follow=E(0))
    return p


@case(params=matrix(via=VIAS))
def test_stale_link_counts_in_the_depth_limit(via):
    """A stale entry for a replaced epoll fd in the middle of a four-link chain still counts
    toward the depth limit: hanging a fifth link under the bottom fails (ELOOP since
    f2e467a48287, which counts the path above); where the entry followed a new pipe the
    chain is broken and it succeeds."""
    p = Program()
    eps = [p.epoll_create(f"e{i}", file=f"e{i}") for i in range(1, 7)]
    keep = p.dup(eps[2], "keep")
    for i in range(1, 5):                          # e1 -> e2 -> e3 -> e4 -> e5
        p.epoll_ctl(eps[i - 1], ADD, eps[i], IN, data=i)
    p.replace(eps[2], by=PIPE, via=via, file="new")  # e2's entry for e3 goes stale
    last = p.epoll_ctl(eps[4], ADD, eps[5], IN, data=5)
    if BOTH_WAYS:
        expect_after_replace(last, via, stock=E(-1, errno="ELOOP"), follow=E(0))
    p.close(keep)
    return p


@case()
def test_nesting_errnos_by_version():
    """A loop fails with ELOOP on every kernel; a chain one link too deep over a pipe fails
    with ELOOP since f2e467a48287 and with EINVAL (reverse_path_check) before."""
    p = Program()
    leaf = p.pipe("leaf")
    eps = [p.epoll_create(f"e{i}") for i in range(1, 7)]
    p.epoll_ctl(eps[0], ADD, leaf, IN, data=0)
    for i in range(1, 5):
        p.epoll_ctl(eps[i], ADD, eps[i - 1], IN, data=i)
    p.epoll_ctl(eps[0], ADD, eps[4], IN, data=9).expect(-1, errno="ELOOP")
    p.epoll_ctl(eps[5], ADD, eps[4], IN, data=5).expect(-1, errno=NEST_ERRNO)
    return p


# -- EPOLLWAKEUP ------------------------------------------------------------------

@case()
def test_epollwakeup_is_dropped_silently_without_the_right():
    """ADD and MOD with EPOLLWAKEUP succeed; the entry keeps the bit only with
    CONFIG_PM_SLEEP and CAP_BLOCK_SUSPEND (kernel_facts.epollwakeup_kept), and otherwise
    loses it without an error."""
    p, ep, r = registered(IN | WAKEUP)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG | KEPT_WAKEUP)])
    p.epoll_ctl(ep, MOD, r, IN | OUT | WAKEUP, data=2)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG | OUT | KEPT_WAKEUP, 2)])
    p.epoll_ctl(ep, MOD, r, IN, data=3)
    p.fdinfo(ep).expect(fdinfo=[old_line(REG, 3)])
    return p


@case(params=matrix(via=VIAS))
def test_epollwakeup_through_a_replaced_fd(via):
    """MOD with EPOLLWAKEUP through a replaced fd finds no entry on a stock kernel (ENOENT);
    where the entry followed the new file it succeeds and the bit is kept or dropped as for
    any entry."""
    p, ep, r = registered(keep=True)
    p.replace(r, by=PIPE, via=via, file="new")
    expect_after_replace(p.epoll_ctl(ep, MOD, r, IN | WAKEUP, data=2), via,
                         stock=E(-1, errno="ENOENT"), follow=E(0))
    moved = FdinfoLine("r", REG | KEPT_WAKEUP, 2, ino="new", sdev="pipefs")
    expect_after_replace(p.fdinfo(ep), via, stock=E(fdinfo=[old_line()]), follow=E(fdinfo=[moved]))
    return p


@case()
def test_unknown_op():
    """An op other than ADD, MOD and DEL fails with EINVAL, after the EBADF and EPERM
    checks, and touches no entry."""
    p, ep, r = registered()
    m = p.memfd("m")
    gone = p.pipe("gone")
    p.close(gone)
    for op in (0, 4, -1):
        p.epoll_ctl(ep, op, r, IN | OUT, data=2).expect(-1, errno="EINVAL")
    p.epoll_ctl(ep, 4, m, IN).expect(-1, errno="EPERM")
    p.epoll_ctl(ep, 4, gone, IN).expect(-1, errno="EBADF")
    p.fdinfo(ep).expect(fdinfo=[old_line()])
    return p
