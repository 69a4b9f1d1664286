"""Focused templates: short scenarios where one subtle kernel behaviour decides the
outcome (wake-up order, edge-triggering, requeueing, nested wake-ups and wakeup
paths, signalfd queues, deferred fput, fork sharing, io_uring requests across a
replace), with random details.  fuzz/generate.py starts a share of its programs
(TEMPLATE_SHARE) from one of these, then adds random steps.
"""
from __future__ import annotations

from native import program as P
from fuzz.generate import BG_TIMEOUT_MS, CREATE, FILE_KINDS, Gen, GenRing, URING_READ_KINDS


def _two_files(g: Gen):
    """An epoll and two pollable files of a kind injected through the driver (or eventfd)."""
    p = g.p
    ep = p.epoll_create("ep")
    kind = g.c.choice((P.PIPE, P.SOCKET))
    a = CREATE[kind](p, "a")
    b = CREATE[kind](p, "b")
    return ep, a, b


def t_edge_triggered(g: Gen):
    """ET reports once per wake-up; LT again and again."""
    p = g.p
    ep, a, _ = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN | P.ET, data=0xA)
    p.inject(p.file_of(a))
    p.wait(ep)
    p.wait(ep)


def t_oneshot(g: Gen):
    """ONESHOT disarms an entry once it reported, until a MOD re-arms it."""
    p = g.p
    ep, a, _ = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN | P.ONESHOT, data=0xA)
    p.inject(p.file_of(a))
    p.wait(ep)
    p.inject(p.file_of(a))
    p.wait(ep)


def t_stale_entry_ctl(g: Gen):
    """After a replace the old file lives on (a dup): DEL/MOD on the number look up the new
    file's entry, which does not exist; kcmp tells the files apart."""
    p = g.p
    ep, a, b = _two_files(g)
    keep = p.dup(a, "keep")
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=0xA)
    p.replace(a, by=g.c.choice((b, g.c.choice(FILE_KINDS))), via=g.c.choice(P.VIAS))
    look = g.c.choice(("del", "mod", "kcmp"))
    if look == "kcmp":
        p.kcmp_epoll_tfd(ep, a, g.c.choice((a, keep)))
    else:
        p.epoll_ctl(ep, P.DEL if look == "del" else P.MOD, a, P.IN | P.OUT, data=0xAA)
    p.fdinfo(ep)


def t_requeue_order(g: Gen):
    """LT items go back at the tail after reporting: maxevents=1 takes turns."""
    p = g.p
    ep, a, b = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=0xA)
    p.epoll_ctl(ep, P.ADD, b, P.IN, data=0xB)
    p.inject(p.file_of(a))
    p.inject(p.file_of(b))
    p.wait(ep, maxevents=1)
    p.wait(ep, maxevents=1)


def t_queued_keeps_place(g: Gen):
    """A wake-up of an item already on the ready list leaves it where it is."""
    p = g.p
    ep, a, b = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=0xA)
    p.epoll_ctl(ep, P.ADD, b, P.IN, data=0xB)
    p.inject(p.file_of(a))
    p.inject(p.file_of(b))
    p.inject(p.file_of(a))
    p.wait(ep, maxevents=1)


def t_wake_order(g: Gen):
    """Two entries on one file's queue: the newest is woken (and reported) first."""
    p = g.p
    ep, a, _ = _two_files(g)
    a2 = p.dup(a, "a2")
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=1)
    p.epoll_ctl(ep, P.ADD, a2, P.IN, data=2)
    p.inject(p.file_of(a))
    p.wait(ep)


def t_nested_wakeup(g: Gen):
    """An inner epoll turning ready wakes the outer epoll's entry for it."""
    p = g.p
    ep, a, _ = _two_files(g)
    inner = p.epoll_create("inner")
    p.epoll_ctl(ep, P.ADD, inner, P.IN, data=0x1E)
    p.epoll_ctl(inner, P.ADD, a, P.IN, data=0xA)
    p.inject(p.file_of(a))
    p.wait(ep)


def t_replace_by_ready(g: Gen):
    """A registered fd replaced by a file already readable: an entry that follows the
    replace (the follow profile, the userspace fixup's re-add) reports it at once."""
    p = g.p
    ep, a, b = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=0xA)
    p.inject(p.file_of(b))
    p.replace(a, by=b, via=g.c.choice(P.VIAS))
    p.wait(ep)


def t_wakeup_paths(g: Gen):
    """A pipe reaching the top of a nest through paths of five epolls, around their limit
    of ten (reverse_path_check: EINVAL past it); a replace may cut paths before one more."""
    p = g.p
    leaf = p.pipe("leaf")
    chain = [p.epoll_create(f"c{i}") for i in range(1, 5)]      # c1 <- c2 <- c3 <- c4
    for i in range(1, len(chain)):
        p.epoll_ctl(chain[i], P.ADD, chain[i - 1], P.IN, data=0x100 + i)
    fans = []
    for i in range(g.c.integer(8, 11)):
        fans.append(p.epoll_create(f"a{i}"))
        p.epoll_ctl(fans[-1], P.ADD, leaf, P.IN, data=i)
        p.epoll_ctl(chain[0], P.ADD, fans[-1], P.IN, data=i)
    if g.c.chance(0.5):
        p.replace(g.c.choice((leaf, g.c.choice(fans))), by=g.c.choice((P.PIPE, P.EPOLL)),
                  via=g.c.choice(P.VIAS))
    last = p.epoll_create("a_last")
    p.epoll_ctl(last, P.ADD, leaf, P.IN, data=0xFF)
    p.epoll_ctl(chain[0], P.ADD, last, P.IN, data=0xFF)
    if p.file_of(leaf).kind == P.PIPE:
        p.inject(p.file_of(leaf))
    p.wait(chain[-1])
    p.wait(chain[0])


def t_eventfd_out(g: Gen):
    """Reading an eventfd wakes its EPOLLOUT watchers (an ET one reports again)."""
    p = g.p
    ep = p.epoll_create("ep")
    e = p.eventfd("e")
    p.epoll_ctl(ep, P.ADD, e, P.OUT | P.ET, data=0xE)
    p.wait(ep)
    p.inject(p.file_of(e), through=e)
    p.read(e)
    p.wait(ep)


def t_signalfd_shared_queue(g: Gen):
    """Any signal wakes every signalfd entry of the process (one sighand queue)."""
    p = g.p
    ep = p.epoll_create("ep")
    s1 = p.signalfd("s1")
    s2 = p.signalfd("s2")
    p.epoll_ctl(ep, P.ADD, s2, P.IN | P.ET, data=2)
    p.inject(p.file_of(s2))
    p.wait(ep)
    p.inject(p.file_of(s1))
    p.wait(ep)


def t_deferred_fput(g: Gen):
    """Inside a hold, the file ADDFD replaced is put by the trapped target only when it
    returns: its entry is still there for the supervisor to see."""
    p = g.p
    ep = p.epoll_create("ep")
    kind = g.c.choice((P.PIPE, P.SOCKET, P.EVENTFD))
    r = CREATE[kind](p, "r")
    p.epoll_ctl(ep, P.ADD, r, P.IN | P.OUT, data=0xD5)
    p.notify(r)
    p.addfd(r, by=g.c.choice((P.PIPE, P.EVENTFD)))
    p.sup_fdinfo(ep)
    p.respond()


def t_fork_shares(g: Gen):
    """The child's epoll is the parent's: a DEL (or ADD, or MOD) there is seen here."""
    p = g.p
    ep, a, b = _two_files(g)
    p.epoll_ctl(ep, P.ADD, a, P.IN, data=0xA)
    child = p.fork()
    g.alive.append(child)
    g.p.meta["forks"] += 1
    with p.on(child):
        what = g.c.choice(("del", "add", "mod"))
        if what == "del":
            p.epoll_ctl(ep, P.DEL, a)
        elif what == "add":
            p.epoll_ctl(ep, P.ADD, b, P.IN, data=0xB)
        else:
            p.epoll_ctl(ep, P.MOD, a, P.IN | P.OUT, data=0xAA)
    p.fdinfo(ep)


def _uring_request(g: Gen, ring: GenRing, h: P.Handle) -> P.Step:
    """A poll (one-shot or multishot) or a read of h, pending until h's file is ready."""
    p = g.p
    what = g.c.choice(("poll", "multishot", "read"))
    if what == "read" and p.file_of(h).kind in URING_READ_KINDS:
        step = p.uring_read(ring.handle, h)
    else:
        step = p.uring_poll(ring.handle, h, P.IN, multishot=what == "multishot")
    ring.requests.append(step)
    ring.submits += 1
    return step


def _wake_old_and_new(g: Gen, old: P.File, new: P.File, ring: GenRing | None):
    """The new file's readiness, then the old file's (or the other way round), each maybe
    followed by a reap."""
    for f in g.c.choice(((new, old), (old, new))):
        g.p.inject(f)
        if ring is not None and g.c.chance(0.5):
            g.p.uring_reap(ring.handle)


def t_uring_across_replace(g: Gen):
    """A request submitted before a replace holds the old file: the new file's readiness
    does not complete it, the old file's does, and the old file lives until then."""
    p = g.p
    kind = g.c.choice(P.PEER_KINDS)
    ring = g.new_ring("ring")
    r = CREATE[kind](p, "r", blocking=g.c.chance(0.5))
    _uring_request(g, ring, r)
    old = p.file_of(r)
    p.replace(r, by=g.c.choice(P.PEER_KINDS), via=g.c.choice(P.VIAS))
    _wake_old_and_new(g, old, p.file_of(r), ring)
    p.uring_reap(ring.handle)
    p.inject(old)


def t_uring_blocked_reap(g: Gen):
    """A thread asleep reaping its ring, with a request on a number another actor then
    replaces, is woken by the old file only."""
    p = g.p
    r = CREATE[g.c.choice(P.PEER_KINDS)](p, "r")
    t = p.thread("t")
    g.alive.append(t)
    with p.on(t):
        ring = g.new_ring("ring")
        _uring_request(g, ring, r)
    old = p.file_of(r)
    p.replace(r, by=g.c.choice(P.PEER_KINDS), via=g.c.choice(P.VIAS))
    with p.on(t):
        g.busy[t] = p.uring_reap(ring.handle, timeout_ms=BG_TIMEOUT_MS, background=True)
    _wake_old_and_new(g, old, p.file_of(r), None)


def t_uring_wakeup_key(g: Gen):
    """A poll's task work takes the one wake-up's key as its result (the data may be gone
    by the reap); after two wake-ups it polls the file again."""
    p = g.p
    ring = g.new_ring("ring")
    r = CREATE[g.c.choice(P.PEER_KINDS)](p, "r")
    poll = p.uring_poll(ring.handle, r, g.c.choice((P.IN, P.IN | P.OUT)),
                        multishot=g.c.chance(0.5))
    ring.requests.append(poll)
    ring.submits += 1
    for _ in range(g.c.integer(1, 2)):
        p.inject(p.file_of(r))
    if g.c.chance(0.7):
        p.drain(r)
    p.uring_reap(ring.handle)


def t_uring_fixed_file(g: Gen):
    """Fixed file 0 stays the old file after a replace: a fixed read reaches it, a read
    through the number the new one; unregistering lets the old file go."""
    p = g.p
    kind = g.c.choice(URING_READ_KINDS)
    ring = g.new_ring("ring")
    r = CREATE[kind](p, "r")
    p.uring_register(ring.handle, r)
    ring.registered, ring.fixed = True, kind
    old = p.file_of(r)
    p.replace(r, by=kind, via=g.c.choice(P.VIAS))
    _wake_old_and_new(g, old, p.file_of(r), None)
    ring.requests += [p.uring_read(ring.handle, fixed=True), p.uring_read(ring.handle, r)]
    ring.submits += 2
    ring.fixed_read = True
    p.uring_reap(ring.handle)
    if g.c.chance(0.5):
        # The fixed read found the old file's token at submission and is done, so the
        # unregister never waits for it (ring.fixed_read), on any kernel.
        p.uring_unregister(ring.handle)
        ring.registered, ring.fixed = False, None
    p.inject(old)


TEMPLATES = {
    "edge_triggered": t_edge_triggered, "oneshot": t_oneshot, "requeue_order": t_requeue_order,
    "queued_keeps_place": t_queued_keeps_place, "wake_order": t_wake_order,
    "nested_wakeup": t_nested_wakeup, "wakeup_paths": t_wakeup_paths,
    "replace_by_ready": t_replace_by_ready,
    "eventfd_out": t_eventfd_out,
    "signalfd_shared_queue": t_signalfd_shared_queue, "deferred_fput": t_deferred_fput,
    "fork_shares": t_fork_shares, "stale_entry_ctl": t_stale_entry_ctl,
    "uring_across_replace": t_uring_across_replace, "uring_blocked_reap": t_uring_blocked_reap,
    "uring_fixed_file": t_uring_fixed_file, "uring_wakeup_key": t_uring_wakeup_key,
}
