"""Unit tests of the reference model (fuzz/model.py) on small hand-built programs.

Each SCENARIO builds a program and states its outcomes by hand, reasoned from
the kernel source (fs/eventpoll.c, fs/file.c, fs/pipe.c, fs/eventfd.c,
fs/signalfd.c, net/unix/af_unix.c); the comments name the kernel behaviour
each step shows.  test_scenario checks the model against the hand-written
outcomes; test_scenario_on_this_kernel runs the same programs through the real
executor, so the hand reasoning, the model and the kernel are three witnesses.
"""
from __future__ import annotations

import pytest

from fuzz import model as M
from fuzz.model import MUTANTS, Model, Profile, predict
from native import kernel_facts
from native import program as P
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, ERR, ET,
                            EXCLUSIVE, HUP, IN, MOD, ONESHOT, OUT, RDHUP, VIAS, Program)
from native.trace import FdinfoLine, Outcome as O

EH = ERR | HUP            # ADD and MOD always OR these into the stored events
NVAL = 0x20
SCENARIOS = {}
# The scenarios state what upstream Linux does today, whatever kernel runs the tests.
UPSTREAM = dict.fromkeys(kernel_facts.COMMITS, True)


def scenario(fn):
    """Register a builder returning (program, stock outcomes, follow outcomes or None)."""
    SCENARIOS[fn.__name__] = fn
    return fn


def ev(*pairs):
    return O(ret=len(pairs), events=tuple(pairs))


def line(tfd, events, data, ino, sdev):
    return FdinfoLine(tfd=tfd, events=events, data=data, pos=0, ino=ino, sdev=sdev)


def fdinfo(*lines):
    return O(ret=len(lines), fdinfo=tuple(sorted(lines, key=FdinfoLine.sort_key)))


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


# -- actors: fork, threads, blocking calls in the background ----------------------

@scenario
def fork_shares_the_epoll():
    """fork copies the fd table: the child's close drops its own slot's reference only,
    the epoll instance is one file, so a DEL by either side removes the shared entry."""
    p = Program("fork_shares")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    c = p.fork("child")
    with p.on(c):
        p.close(r)
        p.wait(ep)
    p.inject(p.file_named("P"))
    with p.on(c):
        p.wait(ep)                                  # LT: re-queued for the parent too
        p.epoll_ctl(ep, DEL, r)                     # closed in the child
        p.fdinfo(ep)                                # tfd: a number no open handle holds
    p.epoll_ctl(ep, DEL, r)
    with p.on(c):
        p.fdinfo(ep)                                # the parent's DEL shows in the child
    p.wait(ep)
    stock = [O("ep"), O("r"), O(0), O(0), O(0), ev(), O(8), ev((IN, 1)), O(-1, errno="EBADF"),
             fdinfo(line("4", IN | EH, 1, "P", "pipefs")), O(0), fdinfo(), ev()]
    return p, stock, None


@scenario
def signalfd_queue_of_the_registering_process():
    """A signalfd entry hooks the sighand of the process that added it and is evaluated
    against the pending signals of whoever waits: the child's signal neither wakes the
    parent's entry nor shows to the parent; a SIGKILL wakes the victim's queue."""
    p = Program("sighand")
    ep = p.epoll_create("ep")
    s = p.signalfd("s", file="S")
    p.epoll_ctl(ep, ADD, s, IN, data=1)
    c = p.fork("child")
    with p.on(c):
        p.inject(p.file_named("S"))               # the child's own signal: no wake-up
        p.wait(ep)
        p.read(s)                                 # the child's pending signal
    p.inject(p.file_named("S"))                   # wakes the parent's queue: linked
    with p.on(c):
        p.wait(ep)                                # polled in the child: empty, dropped
    p.wait(ep)
    with p.on(c):
        p.epoll_ctl(ep, DEL, s)
        p.epoll_ctl(ep, ADD, s, IN, data=2)       # now on the child's queue
    p.inject(p.file_named("S"))                   # the parent's queue: nobody there
    p.wait(ep)
    p.kill(c)                                     # SIGKILL wakes the child's queue
    p.wait(ep)                                    # the parent's signal is pending
    p.read(s)
    stock = [O("ep"), O("s"), O(0), O(0), O(0), ev(), O(128, reached="S", count=1), O(0),
             ev(), ev(), O(0), O(0), O(0), ev(), O(0), ev((IN, 2)),
             O(256, reached="S", count=2)]
    return p, stock, None


def _two_sleepers(et):
    p = Program(f"sleepers_{'et' if et else 'lt'}")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN | (ET if et else 0), data=1)
    t1, t2 = p.thread("t1"), p.thread("t2")
    with p.on(t1):
        w1 = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t2):
        w2 = p.wait(ep, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    p.join(w2)
    p.join(w1)
    # The newest sleeper is woken first; with LT, ep_done_scan wakes the next one.
    stock = [O("ep"), O("r"), O(0), O(0), O(0), O("blocked"), O("blocked"), O(8),
             ev((IN, 1)), ev() if et else ev((IN, 1))]
    return p, stock, None


for _et in (False, True):
    SCENARIOS[f"two_sleepers_{'et' if _et else 'lt'}"] = lambda et=_et: _two_sleepers(et)


@scenario
def exclusive_wake_one():
    """EPOLLEXCLUSIVE: a callback that wakes an epoll_wait sleeper ends the wake-up walk,
    so the other instance's exclusive entry is never queued."""
    p = Program("exclusive")
    ep1, ep2 = p.epoll_create("ep1"), p.epoll_create("ep2")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep1, ADD, r, IN | EXCLUSIVE, data=1)
    p.epoll_ctl(ep2, ADD, r, IN | EXCLUSIVE, data=2)
    t = p.thread("t")
    with p.on(t):
        w = p.wait(ep1, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    p.join(w)
    p.wait(ep2)
    stock = [O("ep1"), O("ep2"), O("r"), O(0), O(0), O(0), O("blocked"), O(8), ev((IN, 1)),
             ev()]
    return p, stock, None


@scenario
def sleeping_select_keeps_the_old_file():
    """A sleeping select holds a reference on each file it hooked: the replaced file (and
    its stale entry) lives until the call returns; a wake-up on the old file makes it
    look again, at the number's new file."""
    p = Program("select_ref")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="A")
    b = p.pipe("b", file="B")
    p.epoll_ctl(ep, ADD, r, IN, data=7)
    t = p.thread("t")
    with p.on(t):
        w = p.select([r], timeout_ms=300, background=True)
    p.inject(p.file_named("B"))                   # not hooked: no wake-up
    p.dup2(b, r)
    p.fdinfo(ep)
    p.inject(p.file_named("A"))                   # wakes the select: r is B now, ready
    p.fdinfo(ep)                                  # it returned: A's last reference gone
    p.join(w)
    stock = [O("ep"), O("r"), O("b"), O(0), O(0), O("blocked"), O(8), O("r"),
             fdinfo(line("r", IN | EH, 7, "A", "pipefs")), O(8), fdinfo(),
             O(1, events=((IN, 0),))]
    return p, stock, None


@scenario
def poll_looks_again_at_its_timeout():
    """Nothing wakes a poll whose number now holds a ready file, but its timeout makes one
    last pass; a closed number polls NVAL."""
    p = Program("poll_timeout")
    r = p.pipe("r", file="A")
    b = p.pipe("b", file="B")
    c = p.pipe("c", file="C")
    t = p.thread("t")
    with p.on(t):
        w = p.poll([r, c], IN, timeout_ms=200, background=True)
    p.inject(p.file_named("B"))
    p.dup2(b, r)
    p.close(c)
    p.join(w)
    stock = [O("r"), O("b"), O("c"), O(0), O("blocked"), O(8), O("r"), O(0),
             O(2, events=((IN, 0), (NVAL, 1)))]
    return p, stock, None


@scenario
def poll_and_select_now():
    """poll() masks with the asked events plus ERR|HUP (a memfd has no ->poll: IN|OUT);
    select counts each number once however often it is listed; a closed number is NVAL
    for poll and EBADF for select."""
    p = Program("poll_now")
    m = p.memfd("m")
    r = p.pipe("r", file="P")
    p.poll([m, r], IN | OUT)
    p.select([m, r])
    p.inject(p.file_named("P"))
    p.select([r, r])
    p.poll([r, r], IN | OUT)
    p.close(r)
    p.poll([r, m], IN)
    p.select([r, m])
    stock = [O("m"), O("r"), O(1, events=((IN | OUT, 0),)), O(1, events=((IN, 0),)), O(8),
             O(1, events=((IN, 0), (IN, 1))), O(2, events=((IN, 0), (IN, 1))), O(0),
             O(2, events=((NVAL, 0), (IN, 1))), O(-1, errno="EBADF")]
    return p, stock, None


@scenario
def sleeping_select_finds_a_closed_number_ready():
    """A number closed under a sleeping select polls as DEFAULT_POLLMASK in do_select
    (no file, no ->poll): at its timeout the select returns it as readable."""
    p = Program("select_closed")
    ep = p.epoll_create("ep")
    e = p.eventfd("e")
    t = p.thread("t")
    w = p.select([e, ep], timeout_ms=100, background=True)
    with p.on(t):
        p.close(ep)
    p.join(w)
    stock = [O("ep"), O("e"), O(0), O("blocked"), O(0), O(1, events=((IN, 1),))]
    return p, stock, None


@scenario
def background_call_joined_at_once():
    """A call reads "returned" when it returned before the next step: at once when
    another actor's step comes next, and always when its own join does."""
    p = Program("joined_at_once")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    t = p.thread("t")
    p.inject(p.file_named("P"))
    w = p.wait(ep, timeout_ms=300, background=True)
    p.join(w)
    w = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t):
        p.drain(r)
    p.join(w)
    stock = [O("ep"), O("r"), O(0), O(0), O(8), O("returned"), ev((IN, 1)), O("returned"),
             O(8, reached="P", count=1), ev((IN, 1))]
    return p, stock, None


# -- io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c) ----------------------------

def cq(reap, *cqes):
    """A reap's outcome (a background one's join's): its CQEs as (submitting step, res[,
    more[, reached[, count]]])."""
    return P.expected_outcome(reap, cqes=cqes, joined=reap.background)


@scenario
def uring_poll_result_is_the_wake_up_key():
    """A poll woken once completes with the wake-up's key even if the data is gone by the
    reap; a multishot poll woken twice polls again and posts nothing for an empty pipe."""
    p = Program("uring_poll_key")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="P")
    one = p.uring_poll(ring, r, IN)
    multi = p.uring_poll(ring, r, IN | OUT, multishot=True)
    p.inject(p.file_named("P"))
    p.drain(r)
    first = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    p.inject(p.file_named("P"))
    p.drain(r)
    second = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    third = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O(0), O(0), O(8), O(8, reached="P", count=1),
             cq(first, (one, IN), (multi, IN, True)),      # key IN|RDNORM & asked events
             O(8), O(8), O(16, reached="P", count=2),
             cq(second),                                   # two wake-ups: polled again, empty
             O(8), cq(third, (multi, IN, True)), O(0)]
    return p, stock, None


@scenario
def uring_reads_newest_first():
    """Two reads armed on one pipe are woken newest first: the newer takes the token, the
    older arms again and later takes every token there is; after the hangup a read completes
    at once with 0."""
    p = Program("uring_reads")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="P")
    k = p.dup(r, "k")
    e = p.dup(r, "e")
    older = p.uring_read(ring, r)
    newer = p.uring_read(ring, k)
    p.inject(p.file_named("P"))
    first = p.uring_reap(ring)
    p.inject(p.file_named("P"))
    p.inject(p.file_named("P"))
    second = p.uring_reap(ring)
    p.hangup(p.file_named("P"))
    eof = p.uring_read(ring, e)
    third = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O("k"), O("e"), O(0), O(0), O(8),
             cq(first, (newer, 8, False, "P")),
             O(8), O(8), cq(second, (older, 16, False, "P", 2)),
             O(0), O(0), cq(third, (eof, 0)), O(0)]
    return p, stock, None


@scenario
def uring_cancel_keeps_the_file_until_the_reap():
    """Cancelling a pending read posts the cancel's CQE at once and the read's -ECANCELED at
    the next reap, which is when the read lets its file go; cancelling it again finds
    nothing."""
    p = Program("uring_cancel")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    read = p.uring_read(ring, r)
    p.close(r)
    cancel = p.uring_cancel(ring, read)
    p.inject(p.file_named("old"))
    first = p.uring_reap(ring)
    p.inject(p.file_named("old"))
    again = p.uring_cancel(ring, read)
    second = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("r"), O(0), O(0), O(0), O(8),
             cq(first, (read, -125), (cancel, 0)),         # -ECANCELED
             O(-1, errno="EPIPE"), O(0),
             cq(second, (again, -2)),                      # -ENOENT
             O(0)]
    return p, stock, None


@scenario
def uring_socket_keys_and_hangup():
    """A socket's data wake-up (IN|PRI|RDNORM|RDBAND) wakes a pending read but not a poll
    for RDHUP alone; the hangup (no key) makes both look again: the poll sees HUP|RDHUP and
    the read its end of file."""
    p = Program("uring_socket")
    ring = p.uring_setup("ring")
    s = p.socketpair("s", file="S")
    t = p.dup(s, "t")
    rdhup = p.uring_poll(ring, s, RDHUP)
    out = p.uring_poll(ring, s, OUT)
    read = p.uring_read(ring, s)
    p.inject(p.file_named("S"))
    first = p.uring_reap(ring)
    again = p.uring_read(ring, t)
    p.hangup(p.file_named("S"))
    second = p.uring_reap(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("s"), O("t"), O(0), O(0), O(0), O(8),
             cq(first, (out, OUT), (read, 8, False, "S")),
             O(0), O(0), cq(second, (rdhup, HUP | RDHUP), (again, 0)), O(0)]
    return p, stock, None


@scenario
def uring_errors_fixed_files_and_memfd():
    """Unregistering nothing is ENXIO and registering twice EBUSY; a fixed read without a
    file, and a poll of a closed number, complete with -EBADF; a memfd (no ->poll) completes
    a poll at once, with -EINVAL when none of the asked events is there."""
    p = Program("uring_errors")
    ring = p.uring_setup("ring")
    m = p.memfd("m")
    r = p.pipe("r", file="P")
    p.uring_unregister(ring)
    fixed = p.uring_read(ring, fixed=True)
    p.uring_register(ring, r)
    p.uring_register(ring, m)
    pin = p.uring_poll(ring, m, IN)
    pbad = p.uring_poll(ring, m, RDHUP)
    p.close(m)
    pclosed = p.uring_poll(ring, m, OUT)
    reap = p.uring_reap(ring)
    p.uring_unregister(ring)
    p.uring_exit(ring)
    stock = [O("ring"), O("m"), O("r"), O(-1, errno="ENXIO"), O(0), O(0),
             O(-1, errno="EBUSY"), O(0), O(0), O(0), O(0),
             cq(reap, (fixed, -9), (pin, IN), (pbad, -22), (pclosed, -9)),
             O(0), O(0)]
    return p, stock, None


@scenario
def uring_background_reap():
    """A reap in the background runs the pending task work first and returns at once when
    that posts a CQE; otherwise it sleeps through wake-ups whose key its requests do not ask
    for and returns when one it asks for completes."""
    p = Program("uring_background")
    s = p.socketpair("s", file="S")
    t = p.thread("t")
    with p.on(t):
        ring = p.uring_setup("ring")
        multi = p.uring_poll(ring, s, OUT | RDHUP, multishot=True)
        first = p.uring_reap(ring, timeout_ms=300, background=True)
    p.getfd(s)
    p.join(first)
    with p.on(t):
        second = p.uring_reap(ring, timeout_ms=300, background=True)
    p.inject(p.file_named("S"))
    p.getfd(s)
    p.hangup(p.file_named("S"))
    p.join(second)
    with p.on(t):
        p.uring_exit(ring)
    stock = [O("s"), O(0), O("ring"), O(0), O("returned"), O(0),
             cq(first, (multi, OUT, True)), O("blocked"), O(8), O(0), O(0),
             cq(second, (multi, OUT | HUP | RDHUP, True)), O(0)]
    return p, stock, None


@scenario
def uring_ring_lives_in_a_forked_child():
    """After io_uring_queue_exit the ring lives on in a child forked meanwhile, and so does
    the pending poll's reference to the old file."""
    p = Program("uring_fork")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    p.uring_poll(ring, r, IN)
    p.fork("c")
    p.replace(r, by=P.PIPE, via=DUP2, file="new")
    p.uring_exit(ring)
    p.inject(p.file_named("old"))
    stock = [O("ring"), O("r"), O(0), O(0), O("r"), O(0), O(8)]
    return p, stock, None


# -- the tests ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("profile", P.PROFILES)
def test_scenario(name, profile):
    program, stock, follow = SCENARIOS[name]()
    want = stock if profile == "stock" or follow is None else follow
    assert predict(program, profile, facts=UPSTREAM) == want


@pytest.mark.parametrize("end", ("exit", "kill"))
def test_filter_released_only_when_reaped_before_bfafe5efa975(end):
    """Before bfafe5efa975 a dead, unreaped target keeps the filter in use: the listener
    shows nothing and NOTIF_RECV would block (EAGAIN from the executor), not HUP/ENOENT."""
    program, stock, _ = _target_ends(end)
    old = predict(program, "stock", facts=dict(UPSTREAM, bfafe5efa975=False))
    assert old[-6:-4] == [ev(), O(-1, errno="EAGAIN")]
    assert old[:-6] + old[-4:] == stock[:-6] + stock[-4:]


def test_nesting_limit_before_f2e467a48287():
    """Before f2e467a48287 an over-deep nest is EINVAL and only the path below counts."""
    p = Program("nest")
    eps = [p.epoll_create(f"e{i}") for i in range(1, 7)]
    for i in range(1, 5):
        p.epoll_ctl(eps[i - 1], ADD, eps[i], IN, data=i)
    p.epoll_ctl(eps[4], ADD, eps[5], IN, data=5)
    top = p.epoll_create("top")
    p.epoll_ctl(top, ADD, eps[0], IN, data=6)
    new = predict(p, "stock", facts=UPSTREAM)
    old = predict(p, "stock", facts=dict(UPSTREAM, f2e467a48287=False))
    assert (new[10], new[12]) == (O(-1, errno="ELOOP"), O(-1, errno="ELOOP"))
    assert (old[10], old[12]) == (O(0), O(-1, errno="EINVAL"))


def test_sigpipe_ends_the_run():
    model = Model(SCENARIOS["hangup_and_sigpipe"]()[0])
    model.run()
    assert model.failure == "crashed" and len(model.outcomes) == 16


def test_kcmp_with_two_entries_under_one_number_is_flagged_ambiguous():
    """Entries under one number are ordered by file pointer: toff picks an unknown one."""
    p = Program("ambiguous")
    ep = p.epoll_create("ep")
    a = p.eventfd("a")
    k = p.dup(a, "k")
    p.epoll_ctl(ep, ADD, a, IN, data=1)
    p.replace(a, by=P.EVENTFD, via=ADDFD_SETFD)
    p.epoll_ctl(ep, ADD, a, IN, data=2)
    p.kcmp_epoll_tfd(ep, a, k, toff=0)
    p.kcmp_epoll_tfd(ep, a, k, toff=2)
    model = Model(p)
    out = model.run()
    assert model.ambiguous == [6] and out[7] == O(-1, errno="ENOENT")


def test_profiles_are_data():
    """A profile that also follows dup2 replaces needs no code, only a Profile."""
    program, _, follow = SCENARIOS["follow_addfd_setfd"]()
    dup2_program, _, _ = SCENARIOS["follow_dup2"]()
    everything = Profile("follow_all", follow=True, follow_vias=frozenset(VIAS))
    assert predict(dup2_program, everything)[6:] == follow[6:]
    assert predict(dup2_program, "follow") == predict(dup2_program, "stock")
    assert set(M.PROFILES) == set(P.PROFILES)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_is_caught_by_some_scenario(mutant):
    """Each deliberately broken model mispredicts at least one scenario."""
    for name, build in SCENARIOS.items():
        program = build()[0]
        for profile in P.PROFILES:
            if predict(program, profile, mutant=mutant) != predict(program, profile):
                return
    pytest.fail(f"no scenario tells mutant {mutant!r} from the model")


def test_unknown_mutant_and_profile_are_refused():
    program = SCENARIOS["design_example"]()[0]
    with pytest.raises(ValueError):
        predict(program, "stock", mutant="no_such_mutant")
    with pytest.raises(KeyError):
        predict(program, "no_such_profile")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_on_this_kernel(name):
    """The real kernel (stock) agrees with the model, step by step."""
    from native import probes
    missing = probes.missing(["user_notif", "addfd", "addfd_send", "kcmp"])
    if missing:
        pytest.skip(missing)
    from native.executor import run
    from native.trace import render_diff
    program, stock, _ = SCENARIOS[name]()
    model = Model(program, "stock")
    model.run()
    trace = run(program)
    at = model.divergence(trace)
    shown = program.steps[:len(model.outcomes)]
    assert at is None, render_diff(shown, model.outcomes, trace, "stock")


def test_calls_woken_together_are_flagged_ambiguous():
    """An epoll_wait and a poll of the same instance woken by one step run concurrently:
    whether the poll still sees the ET entry depends on who runs first."""
    p = Program("together")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    p.epoll_ctl(ep, ADD, r, IN | ET, data=1)
    t1, t2 = p.thread("t1"), p.thread("t2")
    with p.on(t1):
        w = p.wait(ep, timeout_ms=300, background=True)
    with p.on(t2):
        q = p.poll([ep], IN, timeout_ms=300, background=True)
    p.inject(p.file_named("P"))
    jw = p.join(w)
    jq = p.join(q)
    model = Model(p)
    model.run()
    assert {p.steps.index(jw), p.steps.index(jq)} <= set(model.ambiguous)


def test_closed_number_under_a_background_select_is_flagged_ambiguous():
    """The executor's next step opens a /proc file for a moment at the lowest free number:
    a background select watching that (closed) number may not see EBADF."""
    p = Program("transient")
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    p.close(r)
    t = p.thread("t")
    w = p.select([ep, r], timeout_ms=100, background=True)
    with p.on(t):
        p.getfd(ep)
    j = p.join(w)
    model = Model(p)
    out = model.run()
    assert out[p.steps.index(j)] == O(-1, errno="EBADF")
    assert {p.steps.index(w), p.steps.index(j)} <= set(model.ambiguous)


def test_a_torn_down_ring_lets_go_at_a_moment_of_its_own():
    """After io_uring_queue_exit, whether the old file its pending poll held is gone (its
    pipe, its epoll entry) and whether a sleeping epoll_wait of the ring's task is
    interrupted are flagged ambiguous."""
    p = Program("uring_limbo")
    ep = p.epoll_create("ep")
    ring = p.uring_setup("ring")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.uring_poll(ring, r, IN)
    p.replace(r, by=P.PIPE, via=DUP2, file="new")
    p.uring_exit(ring)
    steps = [p.inject(p.file_named("old")), p.fdinfo(ep)]
    t = p.thread("t")
    w = p.wait(ep, timeout_ms=100, background=True)
    with p.on(t):
        p.getfd(ep)
    steps += [w, p.join(w)]
    model = Model(p)
    out = model.run()
    assert {p.steps.index(s) for s in steps} <= set(model.ambiguous)
    assert out[p.steps.index(steps[0])] == O(-1, errno="EPIPE")


def test_what_the_model_leaves_to_others_is_refused():
    """A ring used by another actor than its creator, a ring's own fd in a plain step, and a
    trap of a task whose ring's teardown may interrupt it raise NotModelled."""
    def others_ring(p, ring, r):
        with p.on(p.thread("t")):
            p.uring_poll(ring, r, IN)

    def ring_fd(p, ring, r):
        p.dup(ring)

    def trap_after_exit(p, ring, r):
        p.uring_exit(ring)
        p.notify(r)
        p.respond()

    for build in (others_ring, ring_fd, trap_after_exit):
        p = Program(build.__name__)
        ring = p.uring_setup("ring")
        build(p, ring, p.pipe("r"))
        with pytest.raises(M.NotModelled):
            predict(p)
