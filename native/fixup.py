"""The userspace fixup from Python: native/fixup.c through the executor's cffi module.

    from native.fixup import Fixup
    fx = Fixup(pid, pidfd)                  # one per target; tracked=True remembers its epolls
    fx.addfd(listener, notif_id, srcfd, newfd)       # ADDFD(SETFD) with the fixup around it

or in two halves around an install the caller makes itself:

    with fx.prepare(fd) as plan:            # before: find (fd, old) entries, hold the old file
        ...install...
        plan.apply(newfile)                 # after: (fd, new) with the same mask and data

A Plan says what was found and done: .entries (epoll copy, mask, data, add/del
errno), .moved, .kept, .scanned, .epolls.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from native._executor import ffi, lib

SETFD = 1      # SECCOMP_ADDFD_FLAG_SETFD
SEND = 2       # SECCOMP_ADDFD_FLAG_SEND


@dataclass(frozen=True)
class Entry:
    events: int
    data: int
    add_err: int
    del_err: int


class Plan:
    """The entries keyed (fd, old file) found before an install; apply() moves them."""

    def __init__(self, c):
        self._c = c

    @property
    def entries(self) -> list[Entry]:
        return [Entry(e.events, e.data, e.add_err, e.del_err)
                for e in self._c.e[0:self._c.n]]

    moved = property(lambda self: self._c.moved)
    kept = property(lambda self: self._c.kept)
    scanned = property(lambda self: self._c.scanned)
    epolls = property(lambda self: self._c.epolls)

    def apply(self, newfile: int) -> int:
        """After the install: the entries follow newfile (the caller's fd of it)."""
        r = lib.fdr_fixup_apply(self._c, newfile)
        if r < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))
        return r

    def release(self):
        lib.fdr_fixup_release(self._c)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


class Fixup:
    """The fixup for one target (a process: pid and a pidfd on it)."""

    def __init__(self, pid: int, pidfd: int, tracked: bool = False, naive: bool = False):
        self.pid, self.pidfd = pid, pidfd
        self.mode = lib.FDR_FIXUP_NAIVE if naive else lib.FDR_FIXUP_SCAN
        self._ctx = ffi.new("struct fdr_fixup_ctx *")
        if tracked:
            self.mode = lib.FDR_FIXUP_TRACKED
            self.track()

    def track(self):
        """(Re)learn the target's epolls: one scan of its fds; call it again when the
        target may have gained an epoll."""
        if lib.fdr_fixup_track(self._ctx, self.pid, self.pidfd) < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))

    def epoll_create(self, listener: int, notif_id: int, flags: int = 0) -> int:
        """Answer a trapped epoll_create1(flags) (epoll_create: flags 0): make the epoll,
        install it in the target (ADDFD with SEND) and track it; the target's new fd."""
        r = lib.fdr_fixup_epoll_create(self._ctx, listener, notif_id, flags)
        if r < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))
        self.mode = lib.FDR_FIXUP_TRACKED
        return r

    def close(self):
        lib.fdr_fixup_untrack(self._ctx)

    def prepare(self, fd: int) -> Plan:
        """Before the install at fd: find every epoll entry keyed (fd, the file there)."""
        c = ffi.new("struct fdr_fixup_plan *")
        if lib.fdr_fixup_prepare(self.mode, self._ctx, self.pid, self.pidfd, fd, c) < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))
        return Plan(c)

    def addfd(self, listener: int, notif_id: int, srcfd: int, newfd: int, flags: int = SETFD,
              newfd_flags: int = 0) -> tuple[int, Plan]:
        """SECCOMP_IOCTL_NOTIF_ADDFD(flags, with SETFD) with the fixup around it: ADDFD's
        return value and the (released) plan."""
        c = ffi.new("struct fdr_fixup_plan *")
        r = lib.fdr_fixup_addfd(listener, notif_id, srcfd, newfd, flags, newfd_flags,
                                self.pid, self.pidfd, self.mode, self._ctx, c)
        if r < 0:
            raise OSError(ffi.errno, os.strerror(ffi.errno))
        return r, Plan(c)
