"""Model scenarios of one process: fd tables, epoll, replaces, the supervisor's holds
(registered in model_kit.SCENARIOS, run by tests/test_model.py).
"""
from __future__ import annotations

from native import program as P
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, ERR, ET,
                            EXCLUSIVE, HUP, IN, MOD, ONESHOT, OUT, RDHUP, VIAS, Program)
from native.trace import Outcome as O
from model_kit import EH, SCENARIOS, ev, fdinfo, line, scenario


@scenario
def design_example():
    """The README's example program: stock keeps the entry on the old file, follow moves it."""
    p = Program("design")
    ep = p.epoll_create("ep", file="E")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.replace(r, by=P.SOCKET, via=ADDFD_SETFD, file="new")
    p.inject(p.file_named("old"))
    p.wait(ep)
    p.read(r)
    p.epoll_ctl(ep, DEL, r)
    p.fdinfo(ep)
    p.close(keep)
    p.fdinfo(ep)
    head = [O("ep"), O("r"), O("keep"), O(0), O("r", sysret=0), O(8)]
    stock = head + [ev((IN, 0xD5)),                # the stale (r, old) entry reports old's data
                    O(-1, errno="EAGAIN"),         # but read(r) reaches the new socket
                    O(-1, errno="ENOENT"),         # DEL looks up (r, new): not registered
                    fdinfo(line("r", IN | EH, 0xD5, "old", "pipefs")),
                    O(0), fdinfo()]                # old's last fput removes the entry
    follow = head + [ev(), O(-1, errno="EAGAIN"), O(0), fdinfo(), O(0), fdinfo()]
    return p, stock, follow


@scenario
def wakeup_order_newest_first():
    """Wake-ups visit the newest entry first (add_wait_queue inserts at the head); LT
    items re-queue at the tail; untransferred items stay at the head."""
    p = Program("order")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    r2 = p.dup(r, "r2")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.epoll_ctl(ep, ADD, r2, IN, data=2)
    p.inject(p.file_named("P"))
    p.wait(ep)
    p.wait(ep, maxevents=1)
    p.wait(ep, maxevents=1)
    p.drain(r)
    p.wait(ep)                                     # both poll empty: dropped from the list
    p.inject(p.file_named("P"))
    p.wait(ep)
    stock = [O("ep"), O("r"), O("r2"), O(0), O(0), O(8),
             ev((IN, 2), (IN, 1)), ev((IN, 2)), ev((IN, 1)),
             O(8, reached="P", count=1), ev(), O(8), ev((IN, 2), (IN, 1))]
    return p, stock, None


@scenario
def queued_item_keeps_its_place():
    """An item queued, drained and woken again keeps its old place (ep_poll_callback
    only appends items not already linked)."""
    p = Program("place")
    ep = p.epoll_create("ep")
    a = p.pipe("a", file="A")
    b = p.pipe("b", file="B")
    p.epoll_ctl(ep, ADD, a, IN, data=0xA)
    p.epoll_ctl(ep, ADD, b, IN, data=0xB)
    for f in ("A", "B"):
        p.inject(p.file_named(f))
    p.drain(a)
    p.inject(p.file_named("A"))
    p.wait(ep)
    stock = [O("ep"), O("a"), O("b"), O(0), O(0), O(8), O(8),
             O(8, reached="A", count=1), O(8), ev((IN, 0xA), (IN, 0xB))]
    return p, stock, None


@scenario
def edge_triggered_and_oneshot():
    """ET reports once per wake-up (every pipe write wakes); ONESHOT disarms the item to
    its private bits (visible in fdinfo) until MOD re-arms it."""
    p = Program("et")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN | ET, data=1)
    for _ in range(2):
        p.inject(p.file_named("P"))
        p.wait(ep)
        p.wait(ep)
    p.epoll_ctl(ep, MOD, r, IN | ONESHOT, data=2)  # ready: ep_modify queues it
    p.wait(ep)
    p.wait(ep)
    p.inject(p.file_named("P"))                    # a disarmed item ignores wake-ups
    p.wait(ep)
    p.fdinfo(ep)
    p.epoll_ctl(ep, MOD, r, IN, data=3)
    p.wait(ep)
    stock = [O("ep"), O("r"), O(0),
             O(8), ev((IN, 1)), ev(), O(8), ev((IN, 1)), ev(),
             O(0), ev((IN, 2)), ev(), O(8), ev(),
             fdinfo(line("r", ONESHOT, 2, "P", "pipefs")),
             O(0), ev((IN, 3))]
    return p, stock, None


@scenario
def eventfd_read_wakes_writers():
    """eventfd_read wakes its queue with EPOLLOUT, so an ET OUT watcher fires again."""
    p = Program("efd")
    ep = p.epoll_create("ep")
    e = p.eventfd("e", file="E")
    p.epoll_ctl(ep, ADD, e, IN | OUT | ET, data=7)
    p.wait(ep)
    p.wait(ep)
    p.inject(p.file_named("E"), through=e)
    p.inject(p.file_named("E"), through=e)
    p.wait(ep)
    p.read(e)                                      # one 8-byte counter: two injections
    p.wait(ep)
    stock = [O("ep"), O("e"), O(0), ev((OUT, 7)), ev(), O(8), O(8), ev((IN | OUT, 7)),
             O(8, reached="E", count=2), ev((OUT, 7))]
    return p, stock, None


@scenario
def fixup_readd_polls_a_ready_new_file():
    """The userspace fixup's re-add polls the new file at once: readiness it had before
    the install is reported (edge-triggered too), under every profile."""
    p = Program("fixup_ready")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    n = p.pipe("n", file="N")
    p.inject(p.file_named("N"))
    p.epoll_ctl(ep, ADD, r, IN | ET, data=5)
    p.replace(r, by=n, via=P.ADDFD_SETFD_FIXUP)
    p.wait(ep)
    p.wait(ep)
    stock = [O("ep"), O("r"), O("n"), O(8), O(0), O("r", sysret=0), ev((IN, 5)), ev()]
    return p, stock, stock


@scenario
def dup2_leaves_a_stale_entry():
    """dup2 onto a registered fd: the entry stays on the old file while it lives (under
    every profile: only ADDFD replaces follow), beside a new entry for the new file."""
    p = Program("dup2")
    ep = p.epoll_create("ep")
    x = p.pipe("x", file="X")
    keep = p.dup(x, "keep")
    y = p.pipe("y", file="Y")
    p.epoll_ctl(ep, ADD, x, IN, data=0x18)
    p.dup2(y, x)
    p.inject(p.file_named("X"))
    p.wait(ep)
    p.epoll_ctl(ep, DEL, x)
    p.epoll_ctl(ep, ADD, x, IN, data=0x19)
    p.fdinfo(ep)
    p.close(keep)
    p.fdinfo(ep)
    p.inject(p.file_named("X"))                   # X is gone: the peer write fails
    stock = [O("ep"), O("x"), O("keep"), O("y"), O(0), O("x"), O(8), ev((IN, 0x18)),
             O(-1, errno="ENOENT"), O(0),
             fdinfo(line("x", IN | EH, 0x18, "X", "pipefs"),
                    line("x", IN | EH, 0x19, "Y", "pipefs")),
             O(0), fdinfo(line("x", IN | EH, 0x19, "Y", "pipefs")), O(-1, errno="EPIPE")]
    return p, stock, None


def _follow_by_via(via):
    p = Program(f"follow_{via}")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=5)
    p.replace(r, by=P.PIPE, via=via, file="new")
    p.inject(p.file_named("new"))
    p.wait(ep)
    p.fdinfo(ep)
    rep = O("r", sysret="r" if via in P.SEND_VIAS else 0) if via in P.ADDFD_VIAS else O("r")
    head = [O("ep"), O("r"), O("keep"), O(0), rep, O(8)]
    stock = head + [ev(), fdinfo(line("r", IN | EH, 5, "old", "pipefs"))]
    follow = head + [ev((IN, 5)), fdinfo(line("r", IN | EH, 5, "new", "pipefs"))]
    if via in P.FIXUP_VIAS:         # the supervisor's fixup gives follow on a stock kernel
        return p, follow, follow
    return p, stock, follow if via in P.ADDFD_VIAS else None


for _via in VIAS:
    SCENARIOS[f"follow_{_via}"] = lambda via=_via: _follow_by_via(via)


@scenario
def epoll_ctl_errors():
    """do_epoll_ctl's checks, in its order: EBADF, EPERM, EINVAL, ELOOP, EEXIST/ENOENT."""
    p = Program("ctl")
    ep = p.epoll_create("ep")
    e2 = p.epoll_create("e2")
    r = p.pipe("r")
    r2 = p.dup(r, "r2")
    m = p.memfd("m")
    c = p.pipe("c")
    p.close(c)
    steps = [(ep, ADD, r, IN), (ep, ADD, r, IN), (ep, ADD, c, IN), (c, ADD, r, IN),
             (ep, MOD, m, IN), (m, ADD, m, IN), (ep, ADD, ep, IN), (r, ADD, r2, IN),
             (ep, DEL, e2, 0), (ep, MOD, r, IN | EXCLUSIVE), (ep, ADD, e2, IN | EXCLUSIVE),
             (ep, ADD, r2, IN | EXCLUSIVE | ONESHOT), (ep, ADD, r2, IN | EXCLUSIVE),
             (ep, MOD, r2, IN), (ep, ADD, e2, IN), (e2, ADD, ep, IN)]
    for epfd, op, h, events in steps:
        p.epoll_ctl(epfd, op, h, events)
    errs = [None, "EEXIST", "EBADF", "EBADF", "EPERM", "EPERM", "EINVAL", "EINVAL",
            "ENOENT", "EINVAL", "EINVAL", "EINVAL", None, "EINVAL", None, "ELOOP"]
    stock = [O("ep"), O("e2"), O("r"), O("r2"), O("m"), O("c"), O(0)]
    stock += [O(0) if e is None else O(-1, errno=e) for e in errs]
    return p, stock, None


@scenario
def signalfd_wakeups_are_shared():
    """Raising any signal wakes every signalfd watcher of the process (one shared
    signalfd_wqh, no key); RT signals queue, one 128-byte siginfo each."""
    p = Program("sig")
    ep = p.epoll_create("ep")
    s1 = p.signalfd("s1", file="S1")
    s2 = p.signalfd("s2", file="S2")
    p.epoll_ctl(ep, ADD, s1, IN | ET, data=1)
    p.inject(p.file_named("S1"))
    p.wait(ep)
    p.wait(ep)
    p.inject(p.file_named("S2"))                  # wakes s1's ET item: S1 is still pending
    p.wait(ep)
    p.inject(p.file_named("S1"))
    p.read(s1)
    p.read(s2)
    p.read(s2)
    stock = [O("ep"), O("s1"), O("s2"), O(0), O(0), ev((IN, 1)), ev(), O(0), ev((IN, 1)),
             O(0), O(256, reached="S1", count=2), O(128, reached="S2", count=1),
             O(-1, errno="EAGAIN")]
    return p, stock, None


@scenario
def nested_epoll():
    """An inner epoll's callback wakes its watchers with EPOLLIN every time, even when
    its item was already queued; the inner's own LT re-queue wakes nobody."""
    p = Program("nest")
    outer = p.epoll_create("outer")
    inner = p.epoll_create("inner")
    r = p.pipe("r", file="P")
    p.epoll_ctl(inner, ADD, r, IN, data=1)
    p.epoll_ctl(outer, ADD, inner, IN | ET, data=2)
    p.wait(outer)
    p.inject(p.file_named("P"))
    p.wait(outer)
    p.wait(outer)
    p.inject(p.file_named("P"))
    p.wait(outer)
    p.wait(inner)
    p.wait(outer)
    p.drain(r)
    p.fdinfo(outer)
    stock = [O("outer"), O("inner"), O("r"), O(0), O(0), ev(), O(8), ev((IN, 2)), ev(), O(8),
             ev((IN, 2)), ev((IN, 1)), ev(), O(16, reached="P", count=2),
             fdinfo(line("inner", IN | ET | EH, 2, "anon_inode", "anon_inodefs"))]
    return p, stock, None


@scenario
def hangup_and_sigpipe():
    """The driver closing a peer wakes with no key: the pipe reader polls HUP and reads
    EOF; the socket polls IN|RDHUP|HUP (+ERR and one ECONNRESET if it had sent data)."""
    p = Program("hup")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    s = p.socketpair("s", file="S")
    p.eventfd("e", file="E")
    p.epoll_ctl(ep, ADD, r, IN | ET, data=1)
    p.epoll_ctl(ep, ADD, s, IN | RDHUP, data=2)
    p.inject(p.file_named("S"))
    p.inject(p.file_named("E"), through=s)        # a write to the socket goes to its peer
    p.hangup(p.file_named("P"))
    p.hangup(p.file_named("S"))
    p.wait(ep)
    p.read(r)
    p.drain(s)
    p.read(s)
    p.inject(p.file_named("P"))
    p.hangup(p.file_named("P"))
    p.inject(p.file_named("E"), through=s)        # EPIPE and SIGPIPE: the target dies
    p.read(r)
    sock = IN | RDHUP | ERR | HUP
    stock = [O("ep"), O("r"), O("s"), O("e"), O(0), O(0), O(8), O(8), O(0), O(0),
             ev((sock, 2), (HUP, 1)), O(0), O(-1, errno="ECONNRESET"), O(0),
             O(-1, errno="EBADF"), O(-1, errno="EBADF")]
    return p, stock, None


@scenario
def kcmp_epoll_tfd():
    """KCMP_EPOLL_TFD compares the file of the toff-th entry under a number."""
    p = Program("kcmp")
    ep = p.epoll_create("ep")
    a = p.eventfd("a")
    k = p.dup(a, "k")
    p.epoll_ctl(ep, ADD, a, IN, data=1)
    p.kcmp_epoll_tfd(ep, a, k)
    p.replace(a, by=P.EVENTFD, via=ADDFD_SETFD)
    p.kcmp_epoll_tfd(ep, a, a)
    p.kcmp_epoll_tfd(ep, a, k)
    p.kcmp_epoll_tfd(ep, a, k, toff=1)
    p.kcmp_epoll_tfd(ep, k, k)
    p.close(k)
    p.kcmp_epoll_tfd(ep, a, a)
    p.kcmp_epoll_tfd(ep, a, k)
    p.kcmp_epoll_tfd(a, a, a)
    stock = [O("ep"), O("a"), O("k"), O(0), O(0), O("a", sysret=0), O(1), O(0),
             O(-1, errno="ENOENT"), O(-1, errno="ENOENT"), O(0), O(-1, errno="ENOENT"),
             O(-1, errno="EBADF"), O(-1, errno="EINVAL")]
    follow = stock[:6] + [O(0), O(1), O(-1, errno="ENOENT"), O(-1, errno="ENOENT"), O(0),
                          O(0), O(-1, errno="EBADF"), O(-1, errno="EINVAL")]
    return p, stock, follow


@scenario
def numbers_are_reused():
    """A closed handle keeps its number until the lowest-free allocation hands it out
    again; fdinfo names an entry by the handle open at its number, else the number."""
    p = Program("numbers")
    ep = p.epoll_create("ep")                     # fd 3
    a = p.pipe("a", file="A")                     # fd 4
    k = p.dup(a, "k")                             # fd 5
    p.epoll_ctl(ep, ADD, a, IN, data=7)
    p.close(a)
    p.fdinfo(ep)
    p.pipe("b", file="B")                         # takes fd 4: a loses its number
    p.fdinfo(ep)
    p.read(a)
    p.epoll_ctl(ep, DEL, k)                       # (5, A) was never registered
    stock = [O("ep"), O("a"), O("k"), O(0), O(0),
             fdinfo(line("4", IN | EH, 7, "A", "pipefs")), O("b"),
             fdinfo(line("b", IN | EH, 7, "A", "pipefs")),
             O(-1, errno="EBADF"), O(-1, errno="ENOENT")]
    return p, stock, None


@scenario
def replace_errors():
    """dup3 onto itself is EINVAL, dup2 onto itself a no-op; replacing from a closed
    handle is EBADF (ADDFD relays the supervisor's failure to the trapped syscall)."""
    p = Program("replace_errors")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    c = p.pipe("c")
    p.close(c)
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.replace(r, by=r, via=DUP3)
    p.replace(r, by=r, via=DUP2)
    p.replace(r, by=c, via=ADDFD_SETFD)
    p.replace(r, by=c, via=DUP2)
    p.replace(r, by=r, via=ADDFD_SETFD_SEND)     # same file: net references unchanged
    p.inject(p.file_named("P"))
    p.wait(ep)
    stock = [O("ep"), O("r"), O("c"), O(0), O(0), O(-1, errno="EINVAL"), O("r"),
             O(-1, errno="EBADF", sysret="-1 EBADF"), O(-1, errno="EBADF"),
             O("r", sysret="r"), O(8), ev((IN, 1))]
    return p, stock, None


def _held(refs):
    p = Program(f"window_{refs}")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    if refs == "multi":
        p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.notify(r)
    p.addfd(r, by=P.PIPE, file="new")
    p.sup_fdinfo(ep)
    p.sup_inject(p.file_named("old"))
    p.sup_wait(ep)
    p.sup_kcmp(ep, r, against=r)
    p.respond()
    p.fdinfo(ep)
    p.inject(p.file_named("old"))
    old = line("r", IN | EH, 0xD5, "old", "pipefs")
    new = line("r", IN | EH, 0xD5, "new", "pipefs")
    head = [O("ep"), O("r")] + ([O("keep")] if refs == "multi" else []) + [O(0), O(0), O("r")]
    alive = refs == "multi"
    stock = head + [fdinfo(old), O(8), ev((IN, 0xD5)) if alive else ev(), O(1), O(0),
                    fdinfo(old) if alive else fdinfo(), O(8) if alive else O(-1, errno="EPIPE")]
    follow = head + [fdinfo(new), O(8), ev(), O(0), O(0), fdinfo(new),
                     O(8) if alive else O(-1, errno="EPIPE")]
    return p, stock, follow


for _refs in ("single", "multi"):
    SCENARIOS[f"addfd_window_{_refs}"] = lambda refs=_refs: _held(refs)
    SCENARIOS[f"addfd_window_{_refs}"].__doc__ = """Between ADDFD(SETFD) and the answer the
    trapped target has not yet run its deferred fput: the old file keeps its entry and
    takes writes, but a file whose refcount is zero polls empty (epi_fget fails)."""


@scenario
def addfd_send_and_arguments():
    """seccomp_notify_addfd's argument checks in order; SEND answers the syscall with
    the new fd (a later NOTIF_SEND finds nothing); newfd_flags sets FD_CLOEXEC."""
    p = Program("addfd_args")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.notify(r)
    p.addfd(r, by=P.PIPE, size=16)
    p.addfd(r, by=P.PIPE, size=32, tail_nonzero=True)
    p.addfd(r, by=P.PIPE, newfd_flags=1)
    p.addfd(r, by=P.PIPE, flags=4)
    p.addfd(None, by=P.PIPE, flags=0, newfd=9, name="x")
    p.addfd(r, by="bad")
    p.addfd(r, by=P.PIPE, id="stale")
    p.addfd(r, by=P.PIPE, newfd="rlimit")
    p.addfd(None, by=P.EVENTFD, flags=0, newfd_flags=P.O_CLOEXEC, name="n", file="E")
    p.addfd(r, by=P.PIPE, flags=P.ADDFD_FLAG_SETFD | P.ADDFD_FLAG_SEND, size=32, file="new")
    p.respond(val=7)
    p.getfd(r)
    p.getfd(p.handles[-1])
    p.fdinfo(ep)
    p.inject(p.file_named("old"))
    bad = [O(-1, errno=e) for e in ("EINVAL", "E2BIG", "EINVAL", "EINVAL", "EINVAL", "EBADF",
                                    "ENOENT", "EBADF")]
    stock = [O("ep"), O("r"), O(0), O("r")] + bad + [O("n"), O("r"), O(-1, errno="ENOENT"),
                                                     O(0), O(1), fdinfo(), O(-1, errno="EPIPE")]
    follow = stock[:-2] + [fdinfo(line("r", IN | EH, 1, "new", "pipefs")), O(-1, errno="EPIPE")]
    return p, stock, follow


@scenario
def respond_values():
    """NOTIF_SEND's val is what the trapped syscall returns, its error the errno."""
    p = Program("respond")
    r = p.pipe("r")
    p.notify(r)
    p.respond(val=7)
    p.notify(r)
    p.respond(error=1)
    p.notify(r)
    p.respond(val=-2 & (1 << 64) - 1)               # a negative val reads as an errno
    return p, [O("r"), O(7), O(0), O(-1, errno="EPERM"), O(0), O(-1, errno="ENOENT"), O(0)], None


def _target_ends(end):
    p = Program(f"end_{end}")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    if end == "exit":
        p.exit_target()
    else:
        p.notify(r)
        p.listener_wait(IN | OUT, data=2)
        p.kill_target()
    p.listener_wait(IN, data=3)
    p.notif_recv()
    p.sup_wait(ep)
    p.sup_fdinfo(ep)
    p.sup_inject(p.file_named("P"))
    p.respond()
    head = [O("ep"), O("r"), O(0)]
    head += [O(0)] if end == "exit" else [O("killed"), ev((OUT, 2)), O(0)]
    stock = head + [ev((HUP, 3)), O(-1, errno="ENOENT"), O(-1, errno="ESRCH"),
                    O(-1, errno="ENOENT"), O(-1, errno="EPIPE"), O(-1, errno="ENOENT")]
    return p, stock, None


for _end in ("exit", "kill"):
    SCENARIOS[f"target_ends_{_end}"] = lambda end=_end: _target_ends(end)


