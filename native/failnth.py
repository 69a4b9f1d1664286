"""One ADDFD(SETFD) replace with an allocation failure injected into the install.

    from native.failnth import replace_with_failure
    r = replace_with_failure(1)     # fail the 1st allocation of the trapped thread
    r.fired                         # True: the fault was injected (its fail-nth ran down)

The C side is native/failnth.c (built into native._race).  fail-nth needs
CONFIG_FAULT_INJECTION (/proc/<pid>/task/<tid>/fail-nth); slab allocations
that may sleep fail only with failslab's ignore-gfp-wait off (debugfs).
"""
from __future__ import annotations

import dataclasses
import errno as errno_mod
import os

from native._race import ffi, lib

DATA = lib.FDR_FAILNTH_DATA
FAILSLAB = "/sys/kernel/debug/failslab"


@dataclasses.dataclass(frozen=True)
class Outcome:
    fd: int
    trapped_tid: int
    addfd_ret: int           # ADDFD's return, or -errno
    nth_left: int            # the trapped thread's fail-nth after the ADDFD (0: fired)
    fds_before: int
    fds_after: int
    lines: int               # entries in the target's epoll after the ADDFD
    tfd: int
    events: int
    data: int
    ino: int
    old_ino: int
    new_ino: int
    nev_old: int             # events with only the old file readable
    nev_both: int            # with the new file readable too
    ev_events: int
    ev_data: int
    old_alive: bool          # a file still referenced after the target was reaped
    new_alive: bool

    @property
    def fired(self) -> bool:
        return self.nth_left == 0

    def entry_on(self) -> str:
        """Which file the fd's one entry is keyed to: "old", "new", or what else is there."""
        if self.lines != 1 or self.tfd != self.fd:
            return f"{self.lines} entries (first fd {self.tfd})"
        return {self.old_ino: "old", self.new_ino: "new"}.get(self.ino, f"ino {self.ino}")


class FailNthError(RuntimeError):
    pass


def replace_with_failure(nth: int, timeout_s: float = 10.0) -> Outcome:
    """Run one replace with fail-nth = nth (0: none) on the trapped target thread."""
    if not isinstance(nth, int) or nth < 0:
        raise ValueError(f"nth must be an int >= 0, not {nth!r}")
    out = ffi.new("struct fdr_failnth_result *")
    if lib.fdr_failnth(nth, max(1, int(timeout_s * 1000)), out) < 0:
        raise OSError(ffi.errno, os.strerror(ffi.errno))
    if out.status != lib.FDR_FAILNTH_OK:
        where = ffi.string(out.where).decode(errors="replace")
        err = errno_mod.errorcode.get(out.err, out.err) if out.err else ""
        raise FailNthError(f"fail-nth {nth}: {where}{': ' + str(err) if err else ''}")
    fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(Outcome)}
    fields["old_alive"], fields["new_alive"] = bool(out.old_alive), bool(out.new_alive)
    return Outcome(**fields)
