"""The SECCOMP_IOCTL_NOTIF_ADDFD contract: every error it documents, and what
SETFD, SEND and newfd_flags do.

All checks run inside one held notification (the target waits in the trapped
syscall), so a failed ADDFD must leave the notification usable: the final
NOTIF_SEND answers it and the target's syscall returns that answer.
"""
import errno

from cases.casekit import case
from native.program import (ADDFD_FLAG_SEND, ADDFD_FLAG_SETFD, O_CLOEXEC, PIPE, Program)

SETFD, SEND = ADDFD_FLAG_SETFD, ADDFD_FLAG_SEND
VER0_SIZE = 24        # sizeof(struct seccomp_notif_addfd), SECCOMP_NOTIFY_ADDFD_SIZE_VER0


def held():
    """The target holds r and x and waits in the trapped syscall on r."""
    p = Program()
    r = p.pipe("r")
    x = p.pipe("x")
    p.notify(r).expect(42)
    return p, r, x


@case()
def test_addfd_argument_errors():
    """ADDFD refuses unknown flags, newfd without SETFD, bad newfd_flags and a too small
    struct (EINVAL), a non-zero tail (E2BIG), a bad srcfd (EBADF)."""
    p, r, x = held()
    p.addfd(r, by=PIPE, flags=SETFD | 4).expect(-1, errno="EINVAL")
    p.addfd(None, by=PIPE, flags=0, newfd=5).expect(-1, errno="EINVAL")
    p.addfd(r, by=PIPE, newfd_flags=0o1).expect(-1, errno="EINVAL")
    p.addfd(r, by=PIPE, size=VER0_SIZE - 8).expect(-1, errno="EINVAL")
    p.addfd(r, by=PIPE, size=VER0_SIZE + 8, tail_nonzero=True).expect(-1, errno="E2BIG")
    p.addfd(r, by="bad").expect(-1, errno="EBADF")
    p.respond(val=42)
    p.read(r).expect(-1, errno="EAGAIN")      # r still holds its own pipe
    return p


@case()
def test_addfd_larger_struct_with_zero_tail_is_accepted():
    """A struct larger than the kernel's, with a zero tail, is accepted (extensible-struct rule)."""
    p, r, x = held()
    p.addfd(r, by=PIPE, size=VER0_SIZE + 8, file="new")
    p.respond(val=42)
    p.inject(p.file_named("new"))
    p.read(r).expect(reached="new")
    return p


@case()
def test_addfd_newfd_out_of_range():
    """A negative newfd, and a newfd at the target's RLIMIT_NOFILE, fail with EBADF in the
    target's install."""
    p, r, x = held()
    p.addfd(None, by=PIPE, newfd=-1).expect(-1, errno="EBADF")
    p.addfd(None, by=PIPE, newfd="rlimit").expect(-1, errno="EBADF")
    p.respond(val=42)
    return p


@case()
def test_addfd_notification_ids():
    """ADDFD on a notification not yet received fails with EINPROGRESS; on the id of an
    answered one, or on an id never issued, with ENOENT."""
    p = Program()
    r = p.pipe("r")
    p.pipe("x")
    p.notify(r).expect(42)
    p.addfd(r, by=PIPE, id="pending").expect(-1, errno="EINPROGRESS")
    p.addfd(r, by=PIPE, id="stale").expect(-1, errno="ENOENT")
    p.addfd(r, by=PIPE, id="next").expect(-1, errno="ENOENT")
    p.respond(val=42)
    return p


@case()
def test_addfd_setfd_returns_newfd_and_honours_cloexec():
    """ADDFD(SETFD) returns newfd and installs there; without SETFD the kernel picks a free
    fd; O_CLOEXEC in newfd_flags sets FD_CLOEXEC."""
    p, r, x = held()
    p.addfd(x, by=PIPE, newfd_flags=O_CLOEXEC, file="cloexec")
    y = p.addfd(None, by=PIPE, flags=0, name="y", file="picked").h
    p.respond(val=42)
    p.getfd(x).expect(1)
    p.getfd(y).expect(0)
    p.inject(p.file_named("cloexec"))
    p.read(x).expect(reached="cloexec")
    p.inject(p.file_named("picked"))
    p.read(y).expect(reached="picked")
    return p


@case()
def test_failed_send_leaves_notification_usable():
    """An ADDFD with SEND that fails (bad srcfd) does not answer the notification:
    NOTIF_SEND still can, and the syscall returns its value."""
    p, r, x = held()
    p.addfd(r, by="bad", flags=SETFD | SEND).expect(-1, errno="EBADF")
    p.respond(val=42)
    return p


@case()
def test_respond_with_error_reaches_the_syscall():
    """NOTIF_SEND with an error makes the trapped syscall fail with that errno."""
    p = Program()
    r = p.pipe("r")
    p.notify(r).expect(-1, errno="ECONNREFUSED")
    p.respond(error=errno.ECONNREFUSED)
    return p


@case()
def test_addfd_after_target_killed():
    """Once the trapped target is killed, ADDFD and NOTIF_SEND on its notification fail with
    ENOENT."""
    p = Program()
    r = p.pipe("r")
    p.notify(r)
    p.kill_target()
    p.addfd(r, by=PIPE).expect(-1, errno="ENOENT")
    p.respond().expect(-1, errno="ENOENT")
    return p
