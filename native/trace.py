"""Traces: what the kernel did at each step, in handle and file names, never raw numbers.

An Outcome is exact: every field that applies to its step is compared, none is
a wildcard.  Traces compare equal from run to run and print readably, so a
mismatch shows step by step what was expected and what happened.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

EPOLL_BITS = (
    ("IN", 0x001), ("PRI", 0x002), ("OUT", 0x004), ("ERR", 0x008), ("HUP", 0x010),
    ("NVAL", 0x020), ("RDNORM", 0x040), ("RDBAND", 0x080), ("WRNORM", 0x100),
    ("WRBAND", 0x200), ("MSG", 0x400), ("RDHUP", 0x2000),
    ("EXCLUSIVE", 1 << 28), ("WAKEUP", 1 << 29), ("ONESHOT", 1 << 30), ("ET", 1 << 31),
)
_BIT = dict(EPOLL_BITS)


def mask_value(names: str) -> int:
    """'IN|ET' -> the epoll bits."""
    value = 0
    for name in names.split("|"):
        name = name.strip().removeprefix("EPOLL")
        if name not in _BIT:
            raise ValueError(f"unknown epoll bit {name!r}")
        value |= _BIT[name]
    return value


def mask_names(mask: int) -> str:
    """The epoll bits as 'IN|ET'; bits without a name print as hex; 0 prints as 0."""
    parts = [name for name, bit in EPOLL_BITS if mask & bit]
    rest = mask & ~sum(bit for _, bit in EPOLL_BITS if mask & bit)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) if parts else "0"


@dataclass(frozen=True)
class FdinfoLine:
    """One tfd line of an epoll fdinfo, with tfd as a handle and ino/sdev as file/fs names."""
    tfd: str
    events: int
    data: int
    pos: int = 0
    ino: str = "?"
    sdev: str = "?"

    def sort_key(self):
        """fdinfo lists entries in rbtree order, by kernel pointer: traces sort them by this."""
        return (self.tfd, self.ino, self.data, self.events)

    def __str__(self):
        return (f"tfd={self.tfd} events={mask_names(self.events)} data={self.data:#x} "
                f"pos={self.pos} ino={self.ino} sdev={self.sdev}")


@dataclass(frozen=True)
class Outcome:
    """The exact outcome of one step.  None means the field does not apply to the step."""
    ret: int | str
    errno: str | None = None
    events: tuple | None = None          # ((mask, data), ...) in the order epoll_wait gave them
    reached: str | None = None           # the file whose token a read/drain consumed
    count: int | None = None             # how many tokens it consumed
    fdinfo: tuple | None = None          # (FdinfoLine, ...)
    sysret: int | str | None = None      # replace via ADDFD: what the trapped syscall returned
    cqes: tuple | None = None            # io_uring reap: ((step, res, more, reached), ...)

    def __str__(self):
        text = str(self.ret)
        if self.errno is not None:
            text += f" {self.errno}"
        if self.events is not None:
            text += " [" + ", ".join(f"{mask_names(m)} {d:#x}" for m, d in self.events) + "]"
        if self.reached is not None:
            text += f" reached={self.reached} x{self.count}"
        if self.fdinfo is not None:
            text += " {" + "; ".join(str(line) for line in self.fdinfo) + "}"
        if self.sysret is not None:
            text += f" sys={self.sysret}"
        if self.cqes is not None:
            text += " cqes[" + ", ".join(_cqe_text(c) for c in self.cqes) + "]"
        return text

    def differing_fields(self, other: "Outcome") -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def _cqe_text(cqe) -> str:
    """'#5 res=IN|RDNORM more' or '#7 res=8 reached=old x1' or '#7 res=-EAGAIN'."""
    step, res, more, reached, count = cqe
    text = f"{step} res={res}"
    if more:
        text += " more"
    if reached is not None:
        text += f" reached={reached} x{count}"
    return text


@dataclass
class RunFailure:
    """The target did not run to its end: it hung (and was killed) or died."""
    kind: str                 # "timeout", "crashed", "setup"
    step: int                 # index of the step it was at (-1 before the first)
    detail: str = ""          # errno of a failed setup call, the signal, /proc/<pid>/stack

    def __str__(self):
        where = f"at step {self.step}" if self.step >= 0 else "before the first step"
        return f"target {self.kind} {where}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Trace:
    """The outcomes of a run, one per step executed, and how the run ended."""
    outcomes: list
    failure: RunFailure | None = None
    # Background calls (step indices) whose timeout ran out before their join's turn:
    # the steps in between did not all run while they slept (the machine was slower
    # than the timeouts allowed).  Not part of the comparison.
    expired: tuple = ()

    def __eq__(self, other):
        if isinstance(other, list):
            return self.failure is None and self.outcomes == other
        if isinstance(other, Trace):
            return self.outcomes == other.outcomes and self.failure == other.failure
        return NotImplemented


def render_diff(steps, expected: list, actual: Trace, profile: str) -> str:
    """A step-by-step comparison: each step, what was expected, what the kernel did."""
    lines = [f"trace mismatch under the {profile!r} profile (!! marks a differing step):"]
    width = max((len(s.describe()) for s in steps), default=10)
    for i, step in enumerate(steps):
        exp = expected[i]
        act = actual.outcomes[i] if i < len(actual.outcomes) else None
        same = act is not None and act == exp
        mark = "  " if same else "!!"
        lines.append(f"{mark} {i:2d} {step.describe():<{width}}  expected: {exp}")
        if not same:
            got = "(not executed)" if act is None else str(act)
            lines.append(f"   {'':2} {'':<{width}}  actual:   {got}")
            if act is not None:
                lines.append(f"   {'':2} {'':<{width}}  differs:  {', '.join(exp.differing_fields(act))}")
    if actual.failure is not None:
        lines.append(f"!! {actual.failure}")
    for i in getattr(actual, "expired", ()):
        lines.append(f"!! step {i}'s timeout ran out before its join (a timing assumption "
                     "broke, not necessarily the kernel: raise that timeout)")
    return "\n".join(lines)
