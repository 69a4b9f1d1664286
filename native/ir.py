"""The program IR's vocabulary: file kinds, vias, event bits, steps and their
expected outcomes.  native/program.py builds programs out of these (and
re-exports every name here, so `from native.program import IN, Step` works).

A Step is one operation over handles and files; its expected outcome per
profile is an Outcome (native/trace.py), derived by expected_outcome() from
what the author states, never from a run.  What each step kind is to the rest
of the suite (its op number, argument layout, outcome form) is in
native/steps.py.
"""
from __future__ import annotations

import errno as errno_mod
from dataclasses import dataclass, field

from native import steps
from native.steps import step_index
from native.trace import Outcome, FdinfoLine, mask_names, mask_value

O_CLOEXEC = steps.O_CLOEXEC

# File kinds.
PIPE = "pipe"
SOCKET = "socket"
EVENTFD = "eventfd"
EPOLL = "epoll"
SIGNALFD = "signalfd"
TIMERFD = "timerfd"
MEMFD = "memfd"          # a regular file: not pollable; its token is its content
URING = "uring"          # an io_uring instance (made by uring_setup, not by a replace)
LISTENER = "listener"    # the supervisor's own seccomp listener (installed by ADDFD only)
KINDS = (PIPE, SOCKET, EVENTFD, EPOLL, SIGNALFD, TIMERFD, MEMFD)
# Kinds whose readiness is injected by the driver through a peer end it holds.
PEER_KINDS = (PIPE, SOCKET)
# Kinds injected through a handle of the program (no peer exists).
HANDLE_INJECT_KINDS = (EVENTFD, TIMERFD)
# Kinds that live on the shared anonymous inode (fdinfo's ino cannot tell them apart).
ANON_KINDS = (EVENTFD, EPOLL, SIGNALFD, TIMERFD, URING, LISTENER)
FILE_PREFIX = {PIPE: "pipe", SOCKET: "sock", EVENTFD: "efd", EPOLL: "ep",
               SIGNALFD: "sfd", TIMERFD: "tfd", MEMFD: "mem", URING: "ring",
               LISTENER: "listener"}
# The filesystem fdinfo's sdev names for a file of each kind (anon_inodefs for the rest).
FS_OF_KIND = {PIPE: "pipefs", SOCKET: "sockfs", MEMFD: "tmpfs"}

# Ways to replace the file behind a descriptor.
ADDFD_SETFD = "addfd_setfd"            # ADDFD(SETFD), then NOTIF_SEND val=0
ADDFD_SETFD_SEND = "addfd_setfd_send"  # one ADDFD(SETFD|SEND) answers the notification
DUP2 = "dup2"
DUP3 = "dup3"
# The same ADDFDs with the supervisor's userspace fixup (native/fixup.c) around the
# install: on a stock kernel, epoll entries follow the new file as `follow` says.
ADDFD_SETFD_FIXUP = "addfd_setfd_fixup"
ADDFD_SETFD_SEND_FIXUP = "addfd_setfd_send_fixup"
VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3, ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND_FIXUP)
ADDFD_VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND_FIXUP)
SEND_VIAS = (ADDFD_SETFD_SEND, ADDFD_SETFD_SEND_FIXUP)
FIXUP_VIAS = (ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND_FIXUP)
FIXUP_OF = {ADDFD_SETFD: ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND: ADDFD_SETFD_SEND_FIXUP}

# epoll_ctl operations.
ADD = "ADD"
MOD = "MOD"
DEL = "DEL"
CTL_OPS = (ADD, MOD, DEL)

# epoll event bits, as names; Outcome and steps carry masks as ints.
IN = mask_value("IN")
OUT = mask_value("OUT")
PRI = mask_value("PRI")
ERR = mask_value("ERR")
HUP = mask_value("HUP")
RDHUP = mask_value("RDHUP")
RDNORM = mask_value("RDNORM")
EXCLUSIVE = mask_value("EXCLUSIVE")
ONESHOT = mask_value("ONESHOT")
ET = mask_value("ET")

PROFILES = ("stock", "follow")

# Step operations, grouped as native/steps.py's table says.
CREATE_OPS = tuple(k.op for k in steps.KINDS if k.creates)
FD_RETURNING_OPS = steps.ops(returns_fd=True)
# Steps the supervisor runs: inside a notify hold, or after the target is gone.
SUPERVISOR_OPS = steps.ops(supervisor=True)
# io_uring steps (liburing): a ring, poll and read requests, a fixed file, reaping.
URING_OPS = steps.ops(model=steps.M_URING)
# Steps that make or end actors (processes and threads of the target).
ACTOR_OPS = ("fork", "thread", "kill_actor", "exit_target")
OPS = tuple(steps.KIND)
# ADDFD flags, as the uapi spells them.
ADDFD_FLAG_SETFD = 1
ADDFD_FLAG_SEND = 2
# NOTIF_SEND flag: the trapped syscall runs for real (val and error must be 0).
USER_NOTIF_FLAG_CONTINUE = 1
ADDFD_IDS = ("current", "stale", "next", "pending")
# Steps whose outcome is an event list: epoll_wait's (events, data), or
# poll/select's (revents, position in the handle list).
WAIT_OPS = steps.ops(show=steps.SHOW_EVENTS)
# Steps that may run in the background (the next step runs once they sleep).
BLOCKING_OPS = steps.ops(blocking=True)
MAX_POLL = 8
FDINFO_OPS = steps.ops(show=steps.SHOW_FDINFO)
OP_KIND = {k.op: k.creates for k in steps.KINDS if k.creates}


class ProgramError(ValueError):
    """A program that cannot be built as asked (an unknown handle, a bad argument)."""


@dataclass(frozen=True)
class Actor:
    """Who runs a step: the target's first process, a process forked, or a thread.

    Processes have fd tables of their own (a fork copies its parent's); a
    thread shares the table of the process that started it (table names it).
    """
    name: str
    kind: str            # "process" or "thread"
    index: int
    table: str

    def __str__(self):
        return self.name


MAIN = Actor("main", "process", 0, "main")
MAX_ACTORS = 8


@dataclass(frozen=True)
class Handle:
    """A slot in the target's fd table; the executor maps it to a real number."""
    name: str

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class File:
    """An open file description, recognised at run time by its token."""
    name: str
    kind: str
    blocking: bool = False   # a pipe or socket made without O_NONBLOCK
    write_end: bool = False  # a pipe's write end (the driver holds the read end)

    def __str__(self):
        return self.name


@dataclass
class Step:
    """One operation.  Fields not used by an op stay None."""
    op: str
    h: Handle | None = None          # subject handle (the fd operated on / created)
    h2: Handle | None = None         # second handle: dup source, ctl target, by, against
    ep: Handle | None = None         # epoll handle for epoll_ctl, wait, fdinfo, kcmp
    file: File | None = None         # file created, injected, or installed by a replace
    ctl: str | None = None           # ADD / MOD / DEL
    events: int = 0
    data: int = 0
    via: str | None = None
    keep: bool = False               # replace: the driver keeps its copy of the new file
    flags: int = 0                   # dup3 / replace: O_CLOEXEC
    maxevents: int = 16
    timeout_ms: int = 0
    toff: int = 0                    # kcmp: which entry under the number
    error: int = 0                   # respond: NOTIF_SEND's error
    addfd: dict | None = None        # addfd's raw parameters: flags, newfd_flags, size, ...
    actor: Actor = MAIN              # who runs it
    other: Actor | None = None       # fork/thread: the new actor; kill_actor: the victim
    hs: tuple = ()                   # poll/select: the handles watched
    background: bool = False         # a blocking call the next step does not wait for
    multishot: bool = False          # uring_poll: a multishot poll
    fixed: bool = False              # uring_read: the ring's registered file 0
    wait_nr: int = 1                 # uring_reap: completions to wait for (within timeout_ms)
    sigmask: tuple = ()              # epoll_pwait/pwait2: signalfd files blocked in the wait
    size: int = 0                    # epoll_create_size: epoll_create's size
    params: tuple | None = None      # epoll_params: EPIOCSPARAMS's (usecs, budget, prefer,
                                     # pad); None: EPIOCGPARAMS
    of: "Step | None" = field(default=None, repr=False, compare=False)  # join: its call
    expected: dict = field(default_factory=dict)   # profile name -> Outcome
    program: object = field(default=None, repr=False, compare=False)  # for file look-ups

    def expect(self, *args, stock=None, follow=None, **kw):
        """State the exact outcome of this step.

        expect(ret, errno=..., events=..., reached=..., count=..., fdinfo=..., cqes=...)
        holds for every profile (cqes: (submitting step, res[, more[, reached]])
        tuples); stock=E(...) and follow=E(...) state per-profile outcomes, for the
        step kinds whose outcome may depend on the profile (native/steps.py: profiled).
        Derived fields (wait's ret from its events, read's ret from its count) are
        computed from the expectation, never from a run.
        """
        if args or kw:
            if stock is not None or follow is not None:
                raise ProgramError("give either a profile-independent outcome or stock=/follow=")
            out = self._outcome(*args, **kw)
            self.expected = {p: out for p in PROFILES}
        else:
            if stock is None or follow is None:
                raise ProgramError("a profile-dependent step states both stock= and follow=")
            expected = {"stock": self._outcome(*stock.args, **stock.kw),
                        "follow": self._outcome(*follow.args, **follow.kw)}
            if expected["stock"] != expected["follow"] and not steps.KIND[self.op].profiled:
                raise ProgramError(f"a {self.op} step's outcome does not depend on the profile")
            self.expected = expected
        return self

    def _outcome(self, ret=None, errno=None, events=None, reached=None, count=None,
                 fdinfo=None, sysret=None, cqes=None):
        return expected_outcome(self, ret=ret, errno=errno, events=events, reached=reached,
                                count=count, fdinfo=fdinfo, sysret=sysret, cqes=cqes)

    def describe(self) -> str:
        """The step as a person reads it: wait(ep), replace(r, by=sock2, via=dup2).

        Steps of an actor other than the target's first process name it: [child] close(r).
        """
        text = steps.describe_bare(self)
        if self.background:
            text += " &"
        if self.actor != MAIN and self.op not in SUPERVISOR_OPS:
            text = f"[{self.actor}] {text}"
        return text


class _ActorScope:
    """Program.on()'s context: the steps added inside are the actor's."""
    __slots__ = ("program", "actor", "saved")

    def __init__(self, program, actor):
        self.program, self.actor = program, actor

    def __enter__(self):
        self.saved, self.program._actor = self.program._actor, self.actor
        return self.actor

    def __exit__(self, *exc):
        self.program._actor = self.saved
        return False


@dataclass(frozen=True)
class E:
    """A per-profile expectation: E(events=[(IN, 0xd5)]) or E(-1, errno='ENOENT')."""
    args: tuple
    kw: dict

    def __init__(self, *args, **kw):
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kw", kw)


def expected_outcome(step: Step, *, ret=None, errno=None, events=None, reached=None,
                     count=None, fdinfo=None, sysret=None, cqes=None, joined=False) -> Outcome:
    """The Outcome a step is expected to have, with derived fields filled in.

    A background step's own outcome is "blocked" (it slept before the next step
    ran) or "returned"; its call's outcome is stated on its join step.
    """
    op = step.op
    if step.background and not joined and errno is None:
        # The call's result belongs to its join; this step says whether it slept.
        return Outcome(ret="blocked" if ret is None else ret)
    if op == "join":
        return expected_outcome(step.of, ret=ret, errno=errno, events=events, reached=reached,
                                count=count, fdinfo=fdinfo, sysret=sysret, cqes=cqes,
                                joined=True)
    if errno is not None:
        return Outcome(ret=-1 if ret is None else ret, errno=errno,
                       sysret=sysret if op == "replace" and step.via in ADDFD_VIAS else None)
    if op in WAIT_OPS:
        evs = tuple((int(m), int(d)) for m, d in (events or ()))
        return Outcome(ret=len(evs) if ret is None else ret, events=evs)
    if op == "uring_reap":
        cqes = tuple(sorted((c if isinstance(c[0], str) else cqe_outcome(step.program, *c)
                             for c in (cqes or ())), key=cqe_order))
        return Outcome(ret=len(cqes) if ret is None else ret, cqes=cqes)
    if op in ("read", "drain"):
        n = count if count is not None else (1 if reached is not None else 0)
        if ret is None:
            ret = _bytes_read(step, reached, n)
        return Outcome(ret=ret, reached=reached,
                       count=n if reached is not None else None)
    if op in FDINFO_OPS:
        lines = tuple(sorted(fdinfo or (), key=FdinfoLine.sort_key))
        for line in lines:
            if not isinstance(line, FdinfoLine):
                raise ProgramError(f"fdinfo expects FdinfoLine entries, got {line!r}")
        return Outcome(ret=len(lines) if ret is None else ret, fdinfo=lines)
    if op == "replace":
        if ret is None:
            ret = step.h.name
        if step.via in ADDFD_VIAS and step.via not in SEND_VIAS:
            sysret = 0 if sysret is None else sysret
        elif step.via in SEND_VIAS:
            sysret = step.h.name if sysret is None else sysret
        return Outcome(ret=ret, sysret=sysret)
    if op in FD_RETURNING_OPS:
        return plain_outcome((step.h.name if step.h is not None else 0) if ret is None else ret)
    if op in ("inject", "sup_inject"):
        return plain_outcome(_inject_size(step) if ret is None else ret)
    return plain_outcome(0 if ret is None else ret)


_PLAIN: dict = {}


def plain_outcome(ret) -> Outcome:
    """Outcome(ret=ret), made once per value (Outcomes are immutable): most steps of
    every program have one, and the fuzzer makes and predicts a thousand a second."""
    if type(ret) not in (int, str):
        return Outcome(ret=ret)
    out = _PLAIN.get((type(ret), ret))
    if out is None:
        out = Outcome(ret=ret)
        if len(_PLAIN) < 4096:
            _PLAIN[type(ret), ret] = out
    return out


def cqe_outcome(program, step: Step, res, more: bool = False, reached=None, count=None) -> tuple:
    """A CQE as traces show it: (submitting step's label, res, more, reached, count).

    res is the poll mask's names for a poll, bytes for a read, '-ENAME' for an error.
    """
    label = f"#{step_index(program, step)}"
    if isinstance(res, int) and res < 0:
        res = "-" + errno_mod.errorcode.get(-res, str(-res))
    elif step.op == "uring_poll" and isinstance(res, int):
        res = mask_names(res)
    if reached is not None and count is None:
        count = 1
    return (label, res, bool(more), reached, count)


def sends_in_hold(program, i: int) -> bool:
    """Does the hold opened by notify step i contain an ADDFD with SEND?  (Its
    outcome then names the fd the SEND answered with by its handle.)"""
    for s in program.steps[i + 1:]:
        if s.op not in SUPERVISOR_OPS:
            return False
        if s.op == "addfd" and s.addfd["flags"] & ADDFD_FLAG_SEND:
            return True
    return False


def cqe_order(cqe) -> int:
    """CQEs are compared in submission order (completion order among requests is not pinned)."""
    return int(cqe[0][1:])


def _inject_size(step: Step) -> int:
    # Tokens are 8 bytes; eventfd writes an 8-byte counter; timerfd/signalfd return 0.
    return 8 if step.file.kind in (PIPE, SOCKET, EVENTFD) else 0


def _bytes_read(step: Step, reached, n: int) -> int:
    """What read() returns for n tokens of the named file."""
    if reached is None:
        return 0
    kind = step.program.file_named(reached).kind if step.program is not None else PIPE
    if kind in (EVENTFD, TIMERFD):
        return 8            # one counter, however many injections it sums
    if kind == SIGNALFD:
        return 128 * n      # one siginfo per signal
    return 8 * n
