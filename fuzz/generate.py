"""Random valid programs, from one generator with two sources of choices.

The generator asks a Chooser for every decision.  RandomChooser (random.Random)
is the fast source for long campaigns; DrawChooser draws from hypothesis's
st.data(), so hypothesis can shrink a failing program by shrinking its choices.
Every program it builds is valid for the IR (no ProgramError), and uses only
what the model covers.

Programs have actors: the target's first process forks children (each with a
copy of its fd table) and starts threads (sharing their process's table); every
step is run by one live actor; children and threads end by exit or SIGKILL.
Blocking calls (epoll_wait, poll, select, an io_uring reap) run in the
background, joined a few steps later, so steps in between can wake them.

io_uring rings are used only by the actor that set them up (SINGLE_ISSUER),
and their fds only by io_uring steps.  Requests go to pipes, sockets and
eventfds (polls; reads: pipes and sockets), only through handles whose file
the program's static view knows for sure (a handle whose install may have
failed at run time is left alone); a ring holds a bounded number of requests,
so its CQ ring never overflows.  Foreground reaps wait 0 ms, background ones
the usual BG_TIMEOUT_MS.

A share of the programs starts from a focused template (fuzz/templates.py): a short
scenario where one subtle kernel behaviour decides the outcome (wake-up order,
edge-triggering, requeueing, nested wake-ups, signalfd queues, deferred fput,
fork sharing, io_uring requests across a replace), with random details, followed
by random steps.  Random programs alone reach those corners too rarely for a
short campaign.
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
import random

from native.kernel_facts import kernel_has
from native import program as P
from fuzz.kernel.io_uring import URING_POLL_KINDS   # what the model covers

CTL_EVENTS = (P.IN, P.OUT, P.IN | P.OUT, P.IN | P.ET, P.IN | P.ONESHOT, P.IN | P.RDHUP,
              P.IN | P.EXCLUSIVE, P.OUT | P.ET)
POLL_EVENTS = (P.IN, P.IN | P.OUT, P.OUT, P.IN | P.RDHUP)
URING_POLL_EVENTS = (P.IN, P.IN, P.IN | P.OUT, P.OUT, P.IN | P.RDHUP, P.RDHUP)
# Before afed6271f5b0 a pipe read completes from an io-wq worker at no fixed moment
# (the model refuses it): on such kernels only sockets are read through io_uring.
URING_READ_KINDS = (P.PIPE, P.SOCKET) if kernel_has("afed6271f5b0") else (P.SOCKET,)
URING_FIXED_KINDS = (P.PIPE, P.SOCKET, P.EVENTFD)
MAX_RINGS = 2
MAX_URING_SUBMITS = 12    # per ring: its CQEs never outgrow the CQ ring (16 entries)
RING_SHARE = 0.3          # the share of random programs that set a ring up first
BLOCKING_SHARE = 0.25     # pipes and sockets made without O_NONBLOCK
FILE_KINDS = (P.PIPE, P.SOCKET, P.EVENTFD, P.SIGNALFD, P.TIMERFD,
              P.PIPE, P.SOCKET, P.EVENTFD, P.SIGNALFD, P.TIMERFD, P.MEMFD)   # memfd: rarely
CREATE = P.BUILDER_OF_KIND    # file kind -> the Program method that makes one
MAX_SIGNALFDS = 8         # each takes a real-time signal of its own
MAX_FILES = 40
MAX_FORKS = 3             # each fork costs about a millisecond
EPOLL_SIZES = (1, 1, 64, 0, -1)   # epoll_create(size): below 1 is EINVAL
PWAIT_TIMEOUTS = (0, 0, 5)        # ms: a foreground pwait with no event sleeps this long
EPOLL_PARAMS = ((0, 0, 0, 0), (50, 8, 1, 0), (0x7FFF_FFFF, 64, 0, 0), (1, 65, 1, 0),
                (0x8000_0000, 0, 0, 0), (1, 0, 2, 0), (1, 0, 0, 1))   # the last three: EINVAL
DATA = (0xD5, 0x1, 0xFFFF_FFFF_0000_0001)
# A background call's timeout: long enough that no step in between outlives it.
# The campaign fits it to what the model predicts (fit_timeouts).
BG_TIMEOUT_MS = 400
# Step kinds and their weights.
STEP_WEIGHTS = {
    "create": 4, "dup": 3, "dup2": 1, "dup3": 1, "close": 2, "epoll_ctl": 6,
    "inject": 6, "drain": 1, "wait": 5, "read": 3, "replace": 5, "fdinfo": 2,
    "kcmp_epoll_tfd": 1, "epoll_create": 1, "epoll_pwait": 2, "epoll_params": 1,
    "hold": 2,
    "fork": 2, "thread": 1, "poll": 2, "select": 1, "background": 4, "join": 3,
    "kill": 2, "exit": 2, "getfd": 1, "hangup": 1,
    "uring_setup": 1, "uring_poll": 4, "uring_read": 3, "uring_register": 1,
    "uring_unregister": 2, "uring_cancel": 3, "uring_reap": 4, "uring_exit": 1,
}
TEMPLATE_SHARE = 0.35     # the share of programs that start from a template


_CUMULATIVE: dict = {}      # id(weights) -> (weights, keys, cumulative weights, total)


class RandomChooser:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def choice(self, options):
        return options[self.rng.randrange(len(options))]

    def weighted(self, weights: dict):
        cached = _CUMULATIVE.get(id(weights))
        if cached is None or cached[0] is not weights:
            keys = list(weights)
            cum = list(itertools.accumulate(weights.values()))
            cached = _CUMULATIVE[id(weights)] = (weights, keys, cum, cum[-1])
        _, keys, cum, total = cached
        return keys[bisect.bisect_right(cum, self.rng.random() * total)]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class DrawChooser:
    """Choices drawn by a hypothesis strategy; shrinking favours early options."""

    def __init__(self, draw):
        from hypothesis import strategies as st
        self.draw, self.st = draw, st

    def choice(self, options):
        return self.draw(self.st.sampled_from(list(options)))

    def weighted(self, weights: dict):
        return self.choice(list(weights))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        return self.draw(self.st.booleans())


class _Skip(Exception):
    """The chosen step kind has nothing to act on yet."""


@dataclasses.dataclass
class GenRing:
    """A ring as the generator sees it: who may use it, what it holds."""
    handle: P.Handle
    owner: P.Actor
    fixed: str | None = None          # the kind of fixed file 0, once registered
    registered: bool = False
    requests: list = dataclasses.field(default_factory=list)   # poll/read steps submitted
    submits: int = 0                  # poll, read and cancel submissions so far
    exited: bool = False
    # A fixed read was submitted: no unregister from then on.  Before 6.13, unregistering
    # waits for every request using the table (io_rsrc_ref_quiesce), so with a fixed read
    # still pending the step would hang there on those kernels.
    fixed_read: bool = False


class Gen:
    """The state of one program being generated: who is alive, who is busy."""

    def __init__(self, choose, name: str):
        self.c = choose
        self.p = P.Program(name)
        self.p.meta = {"template": None, "forks": 0}
        self.alive: list[P.Actor] = [P.MAIN]
        self.busy: dict[P.Actor, P.Step] = {}     # actor -> its background call
        self.ended = False                        # no process left: supervisor steps only
        self.rings: dict[str, GenRing] = {}       # ring handle name -> the ring
        # Owners of an exited ring: its exit work interrupts them at a moment of its own
        # (no holds, no ADDFD replaces, no background epoll_wait/poll/select for them).
        self.nagged: set = set()
        # (table, handle) whose file at run time may not be what the static view says: an
        # install onto it (dup2, replace) may have failed.
        self.unsure: set = set()
        self.uring = True                         # io_uring steps may be generated

    # -- who runs the next step ---------------------------------------------------------
    def free(self) -> list[P.Actor]:
        return [a for a in self.alive if a not in self.busy]

    def processes(self) -> list[P.Actor]:
        return [a for a in self.alive if a.kind == "process"]

    def members(self, proc: P.Actor) -> list[P.Actor]:
        return [a for a in self.alive if a.table == proc.table]

    def pick_actor(self) -> P.Actor:
        free = self.free()
        if not free:
            raise _Skip
        if P.MAIN in free and self.c.chance(0.6):
            return P.MAIN
        return self.c.choice(free)

    # -- what a step acts on (in the acting actor's table) -------------------------------
    def pick(self, options):
        options = list(options)
        if not options:
            raise _Skip
        return self.c.choice(options)

    def handles(self):
        """Every handle but the rings' (their fds are for io_uring steps only)."""
        return [h for h in self.p.handles if h.name not in self.rings]

    def open(self):
        return [h for h in self.handles() if self.p.file_of(h) is not None]

    # -- what the static view knows for sure --------------------------------------------
    def table(self) -> str:
        return self.p._actor.table

    def sure(self, h: P.Handle) -> bool:
        return (self.table(), h.name) not in self.unsure

    def installed(self, h: P.Handle, certain: bool):
        """h's file changed as the static view says, certainly or maybe."""
        key = (self.table(), h.name)
        (self.unsure.discard if certain else self.unsure.add)(key)

    def known(self, kinds) -> list:
        """Open handles whose file is surely of one of these kinds."""
        return [h for h in self.open() if self.sure(h) and self.p.file_of(h).kind in kinds]

    def epolls(self):
        return [h for h in self.open() if self.p.file_of(h).kind == P.EPOLL]

    def kind(self):
        kind = self.c.choice(FILE_KINDS)
        if kind == P.SIGNALFD and sum(f.kind == P.SIGNALFD for f in self.p.files) >= MAX_SIGNALFDS:
            raise _Skip
        if len(self.p.files) >= MAX_FILES:
            raise _Skip
        return kind

    # -- steps ------------------------------------------------------------------------
    def step(self, kind: str):
        if self.ended:
            raise _Skip
        if kind == "join":
            return self.join()
        if kind.startswith("uring_") and not self.uring:
            raise _Skip
        if kind.startswith("uring_") and kind != "uring_setup":
            ring = self.pick(r for r in self.live_rings() if r.owner not in self.busy)
            with self.p.on(ring.owner):
                return getattr(self, "s_" + kind)(ring)
        actor = self.pick_actor()
        with self.p.on(actor):
            getattr(self, "s_" + kind)(actor)

    def s_create(self, actor):
        kind = self.kind()
        if kind in P.PEER_KINDS and self.c.chance(BLOCKING_SHARE):
            CREATE[kind](self.p, blocking=True)
        else:
            CREATE[kind](self.p)

    def s_dup(self, actor):
        old = self.pick(self.open())
        self.installed(self.p.dup(old), self.sure(old))

    def s_dup2(self, actor, three=False):
        old, new = self.pick(self.open()), self.pick(self.handles())
        # onto a closed handle: its number may be gone (EBADF)
        certain = self.sure(old) and (old == new or self.p.file_of(new) is not None)
        if three:
            self.p.dup3(old, new, self.c.choice((0, P.O_CLOEXEC)))
        else:
            self.p.dup2(old, new)
        self.installed(new, certain and self.sure(new))

    def s_dup3(self, actor):
        self.s_dup2(actor, three=True)

    def s_close(self, actor):
        h = self.pick(self.handles())
        self.p.close(h)
        self.installed(h, True)                 # closed at run time too, whatever it held

    def s_epoll_ctl(self, actor):
        targets = self.handles()            # epoll handles too: nesting, loops and self-adds
        self.p.epoll_ctl(self.pick(self.epolls()), self.c.choice(P.CTL_OPS), self.pick(targets),
                         self.c.choice(CTL_EVENTS), data=self.c.choice(DATA))

    def s_inject(self, actor):
        files = [f for f in self.p.files if f.kind in P.PEER_KINDS + (P.SIGNALFD,)]
        through = [(self.p.file_of(h), h) for h in self.open()
                   if self.p.file_of(h).kind in P.HANDLE_INJECT_KINDS]
        options = [(f, None) for f in files] + through
        f, h = self.pick(options)
        self.p.inject(f, through=h)

    def s_wait(self, actor):
        self.p.wait(self.pick(self.epolls()), maxevents=self.c.choice((16, 1, 2, 1)))

    def s_read(self, actor, drain=False):
        h = self.pick(self.handles())
        self.p.drain(h) if drain else self.p.read(h)

    def s_drain(self, actor):
        self.s_read(actor, drain=True)

    def s_replace(self, actor):
        h = self.pick(self.handles())
        via = self.c.choice((P.DUP2, P.DUP3) if actor in self.nagged else P.VIAS)
        keep = self.c.choice((False, True))
        certain = self.p.file_of(h) is not None and self.sure(h)
        by_handle = [b for b in self.open() if b != h and self.p.file_of(b).kind != P.EPOLL]
        if by_handle and self.c.choice((False, True)):
            by = self.pick(by_handle)
            certain = certain and self.sure(by)
            self.p.replace(h, by=by, via=via, keep=keep)
        else:
            self.p.replace(h, by=self.kind(), via=via, keep=keep)
        self.installed(h, certain)

    def s_hold(self, actor):
        """The target traps on h; the supervisor ADDFDs a new file there, looks, answers.
        Not while a background call sleeps: it would race the supervisor's steps."""
        if self.busy or actor in self.nagged:
            raise _Skip
        h = self.pick(self.open())
        kind = self.kind()
        p = self.p
        p.notify(h)
        send = self.c.choice((False, False, True))
        p.addfd(h, by=kind, flags=P.ADDFD_FLAG_SETFD | (P.ADDFD_FLAG_SEND if send else 0))
        if not send:
            for _ in range(self.c.integer(0, 2)):
                look = self.c.choice(("wait", "fdinfo", "inject", "kcmp"))
                if look == "inject":
                    files = [f for f in p.files if f.kind in P.PEER_KINDS]
                    if files:
                        p.sup_inject(self.c.choice(files))
                elif look == "kcmp" and self.epolls():
                    p.sup_kcmp(self.c.choice(self.epolls()), h, self.c.choice(self.open()))
                elif self.epolls():
                    (p.sup_wait if look == "wait" else p.sup_fdinfo)(self.c.choice(self.epolls()))
            if self.c.chance(0.1):              # refused (EINVAL): the hold goes on
                p.respond(val=1, flags=P.USER_NOTIF_FLAG_CONTINUE)
        if self.c.chance(0.08):
            p.kill_target()                     # SIGKILL inside the hold: the target is gone
            self.alive = []
            self.ended = True
            self.after_end()
            return
        # CONTINUE: the trapped ioctl runs on the new file.
        cont = not send and self.c.chance(0.1)
        p.respond(flags=P.USER_NOTIF_FLAG_CONTINUE if cont else 0)

    def s_getfd(self, actor):
        self.p.getfd(self.pick(self.handles()))

    def s_hangup(self, actor):
        self.p.hangup(self.pick([f for f in self.p.files if f.kind in P.PEER_KINDS]))

    def s_fdinfo(self, actor):
        self.p.fdinfo(self.pick(self.epolls()))

    def s_kcmp_epoll_tfd(self, actor):
        self.p.kcmp_epoll_tfd(self.pick(self.epolls()), self.pick(self.handles()),
                              self.pick(self.open()), toff=self.c.choice((0, 0, 1)))

    def s_epoll_create(self, actor):
        if len(self.p.files) >= MAX_FILES or len(self.epolls()) >= 3:
            raise _Skip
        if self.c.chance(0.7):
            self.p.epoll_create()
        else:
            self.p.epoll_create_size(size=self.c.choice(EPOLL_SIZES))

    def s_epoll_pwait(self, actor):
        """epoll_pwait or epoll_pwait2 with some of the signalfd signals blocked, and now
        and then a short timeout (a pending unblocked signal then interrupts it)."""
        ep = self.pick(self.epolls())
        mask = [f for f in self.p.files if f.kind == P.SIGNALFD and self.c.chance(0.5)]
        op = self.c.choice((self.p.epoll_pwait, self.p.epoll_pwait2))
        op(ep, sigmask=mask, maxevents=self.c.choice((16, 1)),
           timeout_ms=self.c.choice(PWAIT_TIMEOUTS))

    def s_epoll_params(self, actor):
        """EPIOCGPARAMS, or EPIOCSPARAMS with valid or invalid busy-poll parameters."""
        ep = self.pick(self.epolls())
        if self.c.chance(0.5):
            self.p.epoll_params(ep)
        else:
            usecs, budget, prefer, pad = self.c.choice(EPOLL_PARAMS)
            self.p.epoll_params(ep, usecs=usecs, budget=budget, prefer=prefer, pad=pad)

    def watched(self):
        n = self.c.integer(1, 3)
        return [self.pick(self.handles()) for _ in range(n)]

    def s_poll(self, actor):
        self.p.poll(self.watched(), self.c.choice(POLL_EVENTS))

    def s_select(self, actor):
        self.p.select(self.watched())

    def s_fork(self, actor):
        if len(self.p.actors) >= P.MAX_ACTORS or self.p.meta["forks"] >= MAX_FORKS:
            raise _Skip
        child = self.p.fork()
        self.unsure |= {(child.table, name) for table, name in self.unsure
                        if table == actor.table}
        self.alive.append(child)
        self.p.meta["forks"] += 1

    def s_thread(self, actor):
        if len(self.p.actors) >= P.MAX_ACTORS:
            raise _Skip
        self.alive.append(self.p.thread())

    def s_background(self, actor):
        """A blocking call another actor's steps can wake; somebody must be left to act
        (a thread is started for it if need be)."""
        owned = [r for r in self.live_rings() if r.owner == actor]
        ops = () if actor in self.nagged else ("wait", "wait", "poll", "select")
        op = self.pick(ops + (("reap",) * 2 if owned else ()))
        if len(self.free()) < 2:
            if len(self.p.actors) >= P.MAX_ACTORS:
                raise _Skip
            self.alive.append(self.p.thread())
        if op == "reap":
            step = self.p.uring_reap(self.c.choice(owned).handle, timeout_ms=BG_TIMEOUT_MS,
                                     background=True)
        elif op == "wait":
            step = self.p.wait(self.pick(self.epolls()), maxevents=self.c.choice((16, 1)),
                               timeout_ms=BG_TIMEOUT_MS, background=True)
        elif op == "poll":
            step = self.p.poll(self.watched(), self.c.choice(POLL_EVENTS),
                               timeout_ms=BG_TIMEOUT_MS, background=True)
        else:
            step = self.p.select(self.watched(), timeout_ms=BG_TIMEOUT_MS, background=True)
        self.busy[actor] = step

    # -- io_uring ------------------------------------------------------------------------
    def live_rings(self) -> list[GenRing]:
        """Rings their owner can still use."""
        return [r for r in self.rings.values() if not r.exited and r.owner in self.alive]

    def s_uring_setup(self, actor):
        if len(self.live_rings()) >= MAX_RINGS or len(self.p.files) >= MAX_FILES:
            raise _Skip
        self.new_ring()

    def new_ring(self, name=None) -> GenRing:
        h = self.p.uring_setup(name)
        ring = self.rings[h.name] = GenRing(h, self.p._actor)
        return ring

    def submit(self, ring: GenRing, step_of) -> P.Step:
        """A poll, read or cancel submission, within the ring's bound."""
        if ring.submits >= MAX_URING_SUBMITS:
            raise _Skip
        ring.submits += 1
        return step_of()

    def s_uring_poll(self, ring: GenRing):
        h = self.pick(self.known(URING_POLL_KINDS))
        multishot = self.c.chance(0.3)
        step = self.submit(ring, lambda: self.p.uring_poll(
            ring.handle, h, self.c.choice(URING_POLL_EVENTS), multishot=multishot))
        ring.requests.append(step)

    def s_uring_read(self, ring: GenRing):
        if ring.fixed in URING_READ_KINDS and self.c.chance(0.4):
            step = self.submit(ring, lambda: self.p.uring_read(ring.handle, fixed=True))
            ring.fixed_read = True
        else:
            h = self.pick(self.known(URING_READ_KINDS))
            step = self.submit(ring, lambda: self.p.uring_read(ring.handle, h))
        ring.requests.append(step)

    def s_uring_register(self, ring: GenRing):
        if ring.registered and not self.c.chance(0.2):
            raise _Skip                          # EBUSY now and then
        h = self.pick(self.known(URING_FIXED_KINDS))
        self.p.uring_register(ring.handle, h)
        if not ring.registered:
            ring.registered, ring.fixed = True, self.p.file_of(h).kind

    def s_uring_unregister(self, ring: GenRing):
        if ring.fixed_read or not ring.registered and not self.c.chance(0.2):
            raise _Skip                          # ENXIO now and then
        self.p.uring_unregister(ring.handle)
        ring.registered, ring.fixed = False, None

    def s_uring_cancel(self, ring: GenRing):
        target = self.pick(ring.requests)
        self.submit(ring, lambda: self.p.uring_cancel(ring.handle, target))

    def s_uring_reap(self, ring: GenRing):
        self.p.uring_reap(ring.handle)

    def s_uring_exit(self, ring: GenRing):
        self.p.uring_exit(ring.handle)
        ring.exited = True
        self.nagged.add(ring.owner)

    def join(self, actor=None):
        """Join a background call; never another's right after a background step (that
        step's "blocked" would wait on the other's timeout)."""
        if not self.busy:
            raise _Skip
        last = self.p.steps[-1]
        if last.background and self.busy.get(last.actor) is last:
            actor = last.actor
        actor = actor or self.pick(list(self.busy))
        self.p.join(self.busy.pop(actor))

    def threads_busy(self, proc: P.Actor) -> bool:
        """Is a thread of this process asleep in a background call?  (The executor lets a
        process actor be killed in its call, not a thread it takes along.)"""
        return any(m in self.busy for m in self.members(proc) if m.kind == "thread")

    def s_kill(self, actor):
        """SIGKILL another process (its threads die too; a call it sleeps in ends)."""
        victims = [a for a in self.processes() if a.table != actor.table
                   and not self.threads_busy(a)]
        victim = self.pick(victims)
        self.p.kill(victim)
        self.end(victim)

    def s_exit(self, actor):
        if actor.kind == "process":
            if self.threads_busy(actor):
                raise _Skip
            if actor == P.MAIN and not self.c.chance(0.2):
                raise _Skip                     # main rarely ends early
        self.p.exit_target()
        self.end(actor)

    def end(self, actor: P.Actor):
        gone = [actor] if actor.kind == "thread" else self.members(actor)
        self.alive = [a for a in self.alive if a not in gone]
        for a in gone:
            self.busy.pop(a, None)              # a call it slept in ends with it: no join
        if not self.processes():
            self.ended = True
            self.after_end()

    def after_end(self):
        """Supervisor steps after the target's end."""
        p = self.p
        for _ in range(self.c.integer(0, 2)):
            look = self.c.choice(("listener", "fdinfo", "wait", "recv"))
            if look == "listener":
                p.listener_wait()
            elif look == "recv":
                p.notif_recv()
            elif self.handles():
                (p.sup_fdinfo if look == "fdinfo" else p.sup_wait)(self.c.choice(self.handles()))

    def finish(self) -> P.Program:
        while self.busy:
            self.join()
        return self.p


def uring_missing() -> str | None:
    """Why io_uring steps cannot run here (the probes' skip token: no_liburing,
    io_uring_disabled, no_defer_taskrun), or None."""
    from native import probes
    return probes.missing(probes.URING_FEATURES)


def generate(choose, max_steps: int = 20, name: str = "fuzz", templates: bool = True,
             uring: bool | None = None) -> P.Program:
    """A random program of up to max_steps steps after its first epoll and file (or a
    template's steps).  uring: may it have io_uring steps (default: where they can run)."""
    g = Gen(choose, name)
    g.uring = uring_missing() is None if uring is None else uring
    template = None
    from fuzz.templates import TEMPLATES          # they build on Gen: imported once here
    if templates and choose.chance(TEMPLATE_SHARE):
        template = choose.choice(sorted(t for t in TEMPLATES if g.uring or not t.startswith("uring_")))
    if template:
        g.p.meta["template"] = template
        TEMPLATES[template](g)
    else:
        g.p.epoll_create("ep")
        try:
            g.s_create(P.MAIN)
        except _Skip:
            pass
        if g.uring and choose.chance(RING_SHARE):
            g.new_ring()
    for _ in range(choose.integer(1, max_steps)):
        kind = choose.weighted(STEP_WEIGHTS)
        try:
            g.step(kind)
        except _Skip:
            pass
    return g.finish()


def programs(max_steps: int = 20):
    """A hypothesis strategy for programs (shrinks by shrinking the generator's choices)."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        return generate(DrawChooser(draw), max_steps)
    return strategy()
