"""Random valid programs, from one generator with two sources of choices.

The generator asks a Chooser for every decision.  RandomChooser (random.Random)
is the fast source for long campaigns; DataChooser draws from hypothesis's
st.data(), so hypothesis can shrink a failing program by shrinking its choices.
Every program it builds is valid for the IR (no ProgramError), and uses only
what the model covers.
"""
from __future__ import annotations

import random

from native import program as P

CTL_EVENTS = (P.IN, P.OUT, P.IN | P.OUT, P.IN | P.ET, P.IN | P.ONESHOT, P.IN | P.RDHUP,
              P.IN | P.EXCLUSIVE)
FILE_KINDS = (P.PIPE, P.SOCKET, P.EVENTFD, P.SIGNALFD, P.TIMERFD)
CREATE = {P.PIPE: P.Program.pipe, P.SOCKET: P.Program.socketpair,
          P.EVENTFD: P.Program.eventfd, P.SIGNALFD: P.Program.signalfd,
          P.TIMERFD: P.Program.timerfd}
MAX_SIGNALFDS = 8         # each takes a real-time signal of its own
# Step kinds and their weights.
STEP_WEIGHTS = {
    "create": 4, "dup": 3, "dup2": 1, "dup3": 1, "close": 2, "epoll_ctl": 6,
    "inject": 6, "drain": 1, "wait": 5, "read": 3, "replace": 5, "fdinfo": 2,
    "kcmp_epoll_tfd": 1, "epoll_create": 1, "hold": 2,
}
MAX_FILES = 40


class RandomChooser:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def choice(self, options):
        return options[self.rng.randrange(len(options))]

    def weighted(self, weights: dict):
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


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


def generate(choose, max_steps: int = 20, name: str = "fuzz") -> P.Program:
    """A random program of up to max_steps steps after its first epoll and file."""
    p = P.Program(name)
    p.meta = {"multi_ref_replaces": 0}
    p.epoll_create("ep")
    _create(p, choose)
    for _ in range(choose.integer(1, max_steps)):
        kind = choose.weighted(STEP_WEIGHTS)
        try:
            _STEP[kind](p, choose)
        except _Skip:
            pass
    return p


class _Skip(Exception):
    """The chosen step kind has nothing to act on yet."""


def _pick(choose, options):
    options = list(options)
    if not options:
        raise _Skip
    return choose.choice(options)


def _open(p: P.Program):
    return [h for h in p.handles if p.file_of(h) is not None]


def _epolls(p: P.Program):
    return [h for h in _open(p) if p.file_of(h).kind == P.EPOLL]


def _kind(p, choose):
    kind = choose.choice(FILE_KINDS)
    if kind == P.SIGNALFD and sum(f.kind == P.SIGNALFD for f in p.files) >= MAX_SIGNALFDS:
        raise _Skip
    if len(p.files) >= MAX_FILES:
        raise _Skip
    return kind


def _create(p, choose):
    CREATE[_kind(p, choose)](p)


def _dup(p, choose):
    p.dup(_pick(choose, _open(p)))


def _dup2(p, choose, three=False):
    old, new = _pick(choose, _open(p)), _pick(choose, p.handles)
    if three:
        p.dup3(old, new, choose.choice((0, P.O_CLOEXEC)))
    else:
        p.dup2(old, new)


def _close(p, choose):
    p.close(_pick(choose, p.handles))


def _ctl(p, choose):
    targets = list(p.handles)      # epoll handles too: nesting, loops and self-adds
    p.epoll_ctl(_pick(choose, _epolls(p)), choose.choice(P.CTL_OPS), _pick(choose, targets),
                choose.choice(CTL_EVENTS), data=choose.choice((0xD5, 0x1, 0xFFFF_FFFF_0000_0001)))


def _inject(p, choose):
    files = [f for f in p.files if f.kind in P.PEER_KINDS + (P.SIGNALFD,)]
    through = [(p.file_of(h), h) for h in _open(p) if p.file_of(h).kind in P.HANDLE_INJECT_KINDS]
    options = [(f, None) for f in files] + through
    if options:
        f, h = choose.choice(options)
        p.inject(f, through=h)


def _wait(p, choose):
    p.wait(_pick(choose, _epolls(p)), maxevents=choose.choice((16, 1, 2, 1)))


def _read(p, choose, drain=False):
    h = _pick(choose, p.handles)
    p.drain(h) if drain else p.read(h)


def _replace(p, choose):
    h = _pick(choose, p.handles)
    old = p.file_of(h)
    if old is not None and sum(p.file_of(o) == old for o in p.handles) > 1:
        p.meta["multi_ref_replaces"] += 1
    via = choose.choice(P.VIAS)
    keep = choose.choice((False, True))
    by_handle = [b for b in _open(p) if b != h and p.file_of(b).kind != P.EPOLL]
    if by_handle and choose.choice((False, True)):
        p.replace(h, by=_pick(choose, by_handle), via=via, keep=keep)
    else:
        p.replace(h, by=_kind(p, choose), via=via, keep=keep)


def _hold(p, choose):
    """The target traps on h; the supervisor ADDFDs a new file there, looks, answers."""
    h = _pick(choose, _open(p))
    kind = _kind(p, choose)
    p.notify(h)
    send = choose.choice((False, False, True))
    p.addfd(h, by=kind, flags=P.ADDFD_FLAG_SETFD | (P.ADDFD_FLAG_SEND if send else 0))
    if not send:
        for _ in range(choose.integer(0, 2)):
            look = choose.choice(("wait", "fdinfo", "inject"))
            if look == "inject":
                files = [f for f in p.files if f.kind in P.PEER_KINDS]
                if files:
                    p.sup_inject(choose.choice(files))
            elif _epolls(p):
                (p.sup_wait if look == "wait" else p.sup_fdinfo)(choose.choice(_epolls(p)))
    p.respond()


def _fdinfo(p, choose):
    p.fdinfo(_pick(choose, _epolls(p)))


def _kcmp(p, choose):
    p.kcmp_epoll_tfd(_pick(choose, _epolls(p)), _pick(choose, p.handles),
                     _pick(choose, _open(p)), toff=choose.choice((0, 0, 1)))


def _epoll_create(p, choose):
    if len(p.files) < MAX_FILES and len(_epolls(p)) < 3:
        p.epoll_create()


_STEP = {
    "create": _create, "dup": _dup, "dup2": _dup2, "dup3": lambda p, c: _dup2(p, c, True),
    "close": _close, "epoll_ctl": _ctl, "inject": _inject, "drain": lambda p, c: _read(p, c, True),
    "wait": _wait, "read": _read, "replace": _replace, "fdinfo": _fdinfo,
    "kcmp_epoll_tfd": _kcmp, "epoll_create": _epoll_create, "hold": _hold,
}


def programs(max_steps: int = 20):
    """A hypothesis strategy for programs (shrinks by shrinking the generator's choices)."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        return generate(DrawChooser(draw), max_steps)
    return strategy()
