"""The seccomp notifier and the supervisor's view (kernel/seccomp.c).

A notify step opens a hold in which ADDFD (every argument check, SETFD or
not, SEND), NOTIF_SEND and the supervisor's fdinfo/epoll_wait/kcmp/inject run
while the target is trapped; a file the trapped target puts is released only
when it returns (task_work), and meanwhile polls empty (epi_fget); the
target's end (exit, SIGKILL) closes its table, the listener then polls HUP.

Not modelled: the listener's own wake-ups when it is installed in the target
(it polls empty there), blocking calls woken while a hold's supervisor steps
run: flagged ambiguous.
"""
from __future__ import annotations

import errno as errno_mod
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from native import program as P
from native.trace import Outcome
from fuzz.kernel.base import ERR, Errno, FIRST_FD, HUP, NotModelled, OUT, WRNORM

if TYPE_CHECKING:
    from fuzz.kernel.base import OFile, Process

ADDFD_SIZE_VER0 = 24         # sizeof(struct seccomp_notif_addfd)


@dataclass
class Hold:
    """A trapped notify step: the seccomp notification the supervisor is answering."""
    index: int                                 # the notify step
    sends: bool                                # the hold has an ADDFD with SEND (naming)
    proc: Process | None = None                # the trapped actor's process
    state: str = "sent"                        # sent, or gone once the target returned
    outcome: Outcome | None = None             # what the trapped syscall returned


class Seccomp:
    """Holds, ADDFD, NOTIF_SEND, the listener, and the supervisor's own view."""

    def _replace_addfd(self, proc, step):
        """The supervisor's copy (new, or pidfd_getfd of h2) is installed at h's number."""
        self.bound = proc
        dst = self.num(proc, step.h)
        if step.h2 is not None:
            src = proc.fdt.get(self.num(proc, step.h2))
            if src is None:
                return P.expected_outcome(step, errno="EBADF", sysret="-1 EBADF")
        else:
            src = self.new_file(step.file)
        src.refs += 1                                # the supervisor's descriptor
        try:
            if dst < 0:
                return P.expected_outcome(step, errno="EBADF", sysret="-1 EBADF")
            self.replace_entries(proc, dst, src, replacing=step.via)
            self.install(proc, dst, src, cloexec=bool(step.flags & P.O_CLOEXEC))
            self.set_handle(proc, step.h, dst)
            if step.h2 is None:
                self.known.add(step.file.name)
            sysret = self.handle_of(proc, dst) if step.via in P.SEND_VIAS else 0
            return P.expected_outcome(step, ret=step.h.name, sysret=sysret)
        finally:
            if step.keep:
                self.driver_refs.append(src)
            else:
                self.fput(src)

    # -- a notification held by the supervisor (kernel/seccomp.c) ------------------
    def _op_notify(self, proc, step):
        """The target traps; the supervisor steps that follow run until it is answered."""
        self.hold = Hold(self.index, P.sends_in_hold(self.program, self.index), proc)
        self.bound = proc
        return None                               # filled in when the target returns

    def answer(self, proc: Process, val: int, error: int = 0, now: bool = True):
        """The trapped syscall returns (val, or -error); deferred fputs run on its way out:
        at once (now), or, after an ADDFD with SEND, while the supervisor goes on with the
        hold (the steps it runs meanwhile race with them: Model.ambiguous)."""
        hold = self.hold
        r = -error if error else (val - (1 << 64) if val >= 1 << 63 else val)
        if -4095 <= r < 0:
            hold.outcome = Outcome(ret=-1, errno=errno_mod.errorcode.get(-r, f"E{-r}"))
        else:
            name = self.handle_of(proc, r)
            hold.outcome = Outcome(ret=name if hold.sends and isinstance(name, str) else r)
        hold.state = "gone"
        if now:
            self.answer_deferred()

    def answer_deferred(self):
        for f in self.deferred:
            f.dying = False
            self.release(f)
        self.deferred = []

    def end_hold(self):
        if self.hold.state == "sent":             # the executor answers an unanswered hold
            self.answer(self.hold.proc, 0)
        self.answer_deferred()
        self.outcomes[self.hold.index] = self.hold.outcome
        self.hold = None

    def _op_respond(self, proc, step):
        """SECCOMP_IOCTL_NOTIF_SEND with val and error (step.data, step.error)."""
        # seccomp_notify_send(): the flags are checked before the notification is
        # looked up; a refused reply leaves it answerable (the hold goes on).
        if step.flags & ~P.USER_NOTIF_FLAG_CONTINUE or (step.flags and (step.data or step.error)):
            raise Errno("EINVAL")
        if self.hold is None:
            raise Errno("ENOENT")                  # after the target's end
        if self.hold.state != "sent":
            raise Errno("ENOENT" if self.hold.state == "gone" else "EINPROGRESS")
        if step.flags:                             # CONTINUE: the syscall runs for real
            self.answer_continued(proc)
        else:
            self.answer(proc, step.data, step.error)
        return P.expected_outcome(step)

    def answer_continued(self, proc: Process):
        """The trapped ioctl runs on the file its fd number holds now (vfs_ioctl): every
        file the IR makes answers an unknown request with ENOTTY, but an epoll since
        18e2bf0edf4d (ep_eventpoll_ioctl: EINVAL); the listener's is not modelled."""
        step = self.program.steps[self.hold.index]
        f = proc.fdt.get(self.num(proc, step.h))
        if f is not None and f.kind == P.LISTENER:
            raise NotModelled("a continued ioctl on the listener")
        err = errno_mod.EBADF if f is None else errno_mod.ENOTTY
        if f is not None and f.kind == P.EPOLL and self.facts["18e2bf0edf4d"]:
            err = errno_mod.EINVAL
        self.answer(proc, 0, err)

    def _op_addfd(self, proc, step):
        """SECCOMP_IOCTL_NOTIF_ADDFD as the step spells it, checked as seccomp_notify_addfd."""
        a = step.addfd
        src = None
        if a.get("fill_table"):                   # prlimit: the lowest free fd is the limit
            proc.nofile = next(fd for fd in itertools.count(FIRST_FD) if fd not in proc.fdt)
        if step.h2 is not None:                   # pidfd_getfd: fails before any ioctl
            src = self.pidfd_getfd(proc, self.num(proc, step.h2))
        elif step.file is not None:
            src = self.new_file(step.file)
            self.known.add(step.file.name)
        if src is not None:
            src.refs += 1                          # the supervisor's descriptor
        try:
            return P.expected_outcome(step, ret=self.addfd(proc, step, a, src))
        finally:
            if src is not None:
                if step.keep:
                    self.driver_refs.append(src)
                else:
                    self.fput(src)

    def addfd(self, proc: Process, step: P.Step, a: dict, src: OFile | None):
        size, flags = a["size"] or ADDFD_SIZE_VER0, a["flags"]
        setfd = flags & P.ADDFD_FLAG_SETFD
        if a["newfd"] == "rlimit":
            newfd = proc.nofile
        elif a["newfd"] is not None:
            newfd = a["newfd"] & 0xFFFFFFFF
        else:
            newfd = self.num(proc, step.h) & 0xFFFFFFFF if setfd and step.h is not None else 0
        if size < ADDFD_SIZE_VER0:
            raise Errno("EINVAL")
        if size > ADDFD_SIZE_VER0 and a["tail_nonzero"]:
            raise Errno("E2BIG")                   # copy_struct_from_user
        if a["newfd_flags"] & ~P.O_CLOEXEC or flags & ~(P.ADDFD_FLAG_SETFD | P.ADDFD_FLAG_SEND):
            raise Errno("EINVAL")
        if newfd and not setfd:
            raise Errno("EINVAL")
        if src is None:
            raise Errno("EBADF")
        if self.hold is None:
            raise Errno("ENOENT")                  # after the target's end
        if a["id"] == "pending":                   # issued, not yet received: state INIT
            raise Errno("EINPROGRESS")
        if a["id"] == "next" and self.hold.state == "gone":
            self.ambiguous.append(self.index)       # the target's next trap may exist by now
            raise Errno("EINPROGRESS")
        if a["id"] != "current" or self.hold.state == "gone":
            raise Errno("ENOENT")
        if self.hold.state != "sent":
            raise Errno("EINPROGRESS")
        cloexec = bool(a["newfd_flags"] & P.O_CLOEXEC)
        if not setfd:                             # receive_fd: the lowest free number
            fd = self.alloc_fd(proc)
            self.install(proc, fd, src, cloexec=cloexec)
        elif newfd >= proc.nofile:                # replace_fd; a failed SEND stays answerable
            raise Errno("EBADF")
        else:
            fd = newfd
            self.replace_entries(proc, fd, src, replacing=P.ADDFD_SETFD)
            self.deferring = True                 # the target installs, then waits on
            try:
                self.install(proc, fd, src, cloexec=cloexec)
            finally:
                self.deferring = False
        if step.h is not None:
            self.set_handle(proc, step.h, fd)
        if flags & P.ADDFD_FLAG_SEND:
            self.answer(proc, fd, now=False)
        return self.handle_of(proc, fd)

    def _op_sup_wait(self, proc, step):
        """epoll_wait on the supervisor's pidfd_getfd copy: items poll in its context."""
        ep = self.pidfd_getfd(proc, self.num(proc, step.ep))
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        return P.expected_outcome(step, events=self.send_events(self.sup, ep, step.maxevents))

    def pidfd_getfd(self, proc: Process, fd: int) -> OFile:
        """The supervisor's copy of the target's fd (the caller counts its reference)."""
        if not proc.alive:
            raise Errno("ESRCH")                   # __pidfd_fget on an exited task
        return self.lookup(proc, fd)

    def _op_sup_inject(self, proc, step):
        return P.expected_outcome(step, ret=self.peer_write(proc, self.files[step.file.name]))

    def _op_sup_fdinfo(self, proc, step):
        """/proc/<target>/fdinfo/<ep>: what the target's own fdinfo step reads."""
        return self._op_fdinfo(proc, step)

    def _op_sup_kcmp(self, proc, step):
        """kcmp(KCMP_EPOLL_TFD) on the target, from the supervisor: the same answer."""
        return self._op_kcmp_epoll_tfd(proc, step)

    def _op_kill_target(self, proc, step):
        """SIGKILL inside a hold: the trapped syscall never returns."""
        if self.hold is not None:
            self.outcomes[self.hold.index] = Outcome(ret="killed")
            self.answer_deferred()
            self.hold = None
        for victim in [p for p in self.procs.values() if p.alive]:
            self.wake(victim.sig_wq, 0)
        for victim in [p for p in self.procs.values() if p.alive]:
            self.proc_ends(victim)
        return P.expected_outcome(step)

    def filter_released(self) -> bool:
        """No task uses the filter any more: the target is gone and, before bfafe5efa975,
        reaped too (the executor reaps no process before the run ends)."""
        return self.gone and self.facts["bfafe5efa975"]

    def _op_listener_wait(self, proc, step):
        """The listener in a fresh epoll: IN for a notification not yet received, OUT for
        one received and unanswered, HUP once no task uses the filter."""
        if self.filter_released():
            mask = HUP
        elif self.gone:
            mask = 0                               # dead but unreaped: the filter is in use
        elif self.hold is not None and self.hold.state == "sent":
            mask = OUT | WRNORM
        else:
            mask = 0
            self.ambiguous.append(self.index)      # the target's next trap races us
        revents = mask & (step.events | ERR | HUP)
        return P.expected_outcome(step, events=[(revents, step.data)] if revents else [])

    def _op_notif_recv(self, proc, step):
        """ENOENT once the filter is released; the executor says EAGAIN rather than block."""
        if not self.gone:
            raise NotModelled("NOTIF_RECV while the target lives would block")
        raise Errno("ENOENT" if self.filter_released() else "EAGAIN")
