"""ADDFD's reply side and its limits: SECCOMP_ADDFD_FLAG_SEND with and without SETFD,
every way a SEND can fail and leave the notification answerable, NOTIF_SEND's own
values and its CONTINUE flag, and ADDFD into a full fd table.

A SEND makes the ADDFD the reply: seccomp_notify_addfd() marks the notification
replied before the target installs, and seccomp_handle_addfd() puts it back to
SENT when the install fails, so a failed SEND (refused by the ioctl's checks or
by the target's install) leaves it answerable; once a SEND succeeded the target
is gone from the syscall and nothing else can answer.  NOTIF_SEND checks its
flags first: CONTINUE with a value or an error, or an unknown flag, is EINVAL
and answers nothing.  The syscall returns the error when one is given, else the
value, as the raw return: libc turns only -4095..-1 into errno.
"""
import errno

from cases.casekit import E, case, matrix
from native.kernel_facts import kernel_has
from native.program import (ADD, ADDFD_FLAG_SEND, ADDFD_FLAG_SETFD, EPOLL, IN, MEMFD, PIPE,
                            Program, USER_NOTIF_FLAG_CONTINUE)

SETFD, SEND, CONTINUE = ADDFD_FLAG_SETFD, ADDFD_FLAG_SEND, USER_NOTIF_FLAG_CONTINUE


def held():
    """The target holds r and x and waits in the trapped syscall on r."""
    p = Program()
    r = p.pipe("r")
    x = p.pipe("x")
    return p, r, x


@case()
def test_send_without_setfd_answers_with_the_fd_picked():
    """ADDFD with SEND but not SETFD installs at the lowest free fd and the trapped syscall
    returns that fd; a NOTIF_SEND after it finds nothing (ENOENT)."""
    p, r, x = held()
    p.notify(r).expect("y")
    y = p.addfd(None, by=PIPE, flags=SEND, name="y", file="picked").h
    p.respond(val=42).expect(-1, errno="ENOENT")
    p.inject(p.file_named("picked"))
    p.read(y).expect(reached="picked")
    return p


@case()
def test_plain_addfd_then_send():
    """A plain ADDFD followed by an ADDFD with SETFD|SEND in one hold: both files are
    installed and the syscall returns the second's fd."""
    p, r, x = held()
    p.notify(r).expect("x")
    y = p.addfd(None, by=PIPE, flags=0, name="y", file="first").h
    p.addfd(x, by=PIPE, flags=SETFD | SEND, file="second")
    p.respond().expect(-1, errno="ENOENT")
    p.inject(p.file_named("first"))
    p.read(y).expect(reached="first")
    p.inject(p.file_named("second"))
    p.read(x).expect(reached="second")
    return p


@case()
def test_nothing_answers_after_a_send():
    """After a successful ADDFD with SEND, another ADDFD and a NOTIF_SEND (plain or
    CONTINUE) on the notification fail with ENOENT."""
    p, r, x = held()
    p.notify(r).expect("x")
    p.addfd(x, by=PIPE, flags=SETFD | SEND, file="sent")
    p.addfd(None, by=PIPE, flags=0, name="y").expect(-1, errno="ENOENT")
    p.respond(flags=CONTINUE).expect(-1, errno="ENOENT")
    p.respond(val=7).expect(-1, errno="ENOENT")
    p.read(x).expect(-1, errno="EAGAIN")
    return p


FAILED_SEND = {
    "unknown_flag": dict(flags=SETFD | SEND | 4, errno="EINVAL"),
    "next_id": dict(flags=SETFD | SEND, id="next", errno="ENOENT"),
    "stale_id": dict(flags=SETFD | SEND, id="stale", errno="ENOENT"),
    "newfd_at_rlimit": dict(flags=SETFD | SEND, newfd="rlimit", errno="EBADF"),
    "newfd_without_setfd": dict(flags=SEND, newfd=7, errno="EINVAL"),
}


@case(params=matrix(why=tuple(FAILED_SEND)))
def test_failed_send_leaves_the_notification_answerable(why):
    """An ADDFD with SEND that fails (an unknown flag, a wrong id, newfd without SETFD, or
    newfd at the target's RLIMIT_NOFILE, which fails in the target's own install) answers
    nothing: NOTIF_SEND still can."""
    a = dict(FAILED_SEND[why])
    err = a.pop("errno")
    p, r, x = held()
    p.notify(r).expect(42)
    target = None if "newfd" in a else x
    p.addfd(target, by=PIPE, **a).expect(-1, errno=err)
    p.respond(val=42)
    p.read(x).expect(-1, errno="EAGAIN")      # x still holds its own pipe
    return p


# -- NOTIF_SEND's values and flags ---------------------------------------------------

REPLIES = {
    "error_wins": (7, errno.ECONNREFUSED, E(-1, errno="ECONNREFUSED")),
    "negative_val": (-errno.EPERM, 0, E(-1, errno="EPERM")),
    "positive_error_field": (0, -5, E(5)),
    "error_beyond_errno_range": (0, 5000, E(-5000)),
}


@case(params=matrix(reply=tuple(REPLIES)))
def test_reply_values_reach_the_syscall_raw(reply):
    """NOTIF_SEND's error wins over its value, and the syscall's raw return is the error
    (negated) or the value: -4095..-1 reach userspace as an errno, anything else as a plain
    return value."""
    val, err, outcome = REPLIES[reply]
    p = Program()
    r = p.pipe("r")
    p.notify(r).expect(*outcome.args, **outcome.kw)
    p.respond(val=val, error=err)
    return p


@case()
def test_continue_refused_with_a_value_an_error_or_an_unknown_flag():
    """NOTIF_SEND with CONTINUE and a value or an error, or with an unknown flag, fails with
    EINVAL and answers nothing: a later NOTIF_SEND does."""
    p, r, x = held()
    p.notify(r).expect(9)
    p.respond(val=1, flags=CONTINUE).expect(-1, errno="EINVAL")
    p.respond(error=errno.EPERM, flags=CONTINUE).expect(-1, errno="EINVAL")
    p.respond(flags=2).expect(-1, errno="EINVAL")
    p.respond(val=9)
    return p


@case()
def test_continue_runs_the_syscall_and_keeps_what_addfd_installed():
    """After a plain ADDFD, NOTIF_SEND with CONTINUE lets the trapped ioctl run for real (a
    pipe answers the unknown request with ENOTTY), and the installed file stays."""
    p, r, x = held()
    p.notify(r).expect(-1, errno="ENOTTY")
    p.addfd(x, by=MEMFD, file="installed")
    p.respond(flags=CONTINUE)
    p.read(x).expect(reached="installed")
    p.read(r).expect(-1, errno="EAGAIN")
    return p


# -- a full fd table ----------------------------------------------------------------

@case()
def test_full_table():
    """With no fd free below the target's RLIMIT_NOFILE, ADDFD without SETFD fails with
    EMFILE (with SEND too, leaving the notification answerable), SETFD at the limit with
    EBADF, and SETFD onto an open fd below it replaces that file."""
    p = Program()
    r = p.pipe("r")
    x = p.pipe("x")
    p.notify(r).expect(42)
    p.addfd(None, by=PIPE, flags=0, name="y", fill_table=True).expect(-1, errno="EMFILE")
    p.addfd(None, by=PIPE, flags=SEND, name="z").expect(-1, errno="EMFILE")
    p.addfd(None, by=PIPE, flags=SETFD, newfd="rlimit").expect(-1, errno="EBADF")
    p.addfd(x, by=PIPE, flags=SETFD, file="new")
    p.respond(val=42)
    p.dup(x, "d")
    p.steps[-1].expect(-1, errno="EMFILE")          # the target's own table is full too
    p.inject(p.file_named("new"))
    p.read(x).expect(reached="new")
    return p


@case()
def test_send_replace_in_a_full_table():
    """In a full table, ADDFD with SETFD|SEND onto a registered fd replaces it and answers
    as anywhere: the epoll entry stays with the old file while a dup keeps it (stock) or
    follows the new file (follow)."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.notify(r).expect("r")
    p.addfd(r, by=PIPE, flags=SETFD | SEND, file="new", fill_table=True)
    p.respond().expect(-1, errno="ENOENT")
    p.inject(p.file_named("old"))
    p.wait(ep).expect(stock=E(events=[(IN, 1)]), follow=E(events=[]))
    p.read(r).expect(-1, errno="EAGAIN")
    return p


# An epoll answers an unknown ioctl request with EINVAL since this commit, ENOTTY before.
EPOLL_IOCTL = "EINVAL" if kernel_has("18e2bf0edf4d") else "ENOTTY"


@case(params=matrix(trapped=(PIPE, EPOLL)))
def test_continue_runs_on_the_file_the_fd_holds_now(trapped):
    """With CONTINUE the trapped ioctl runs on the file its fd number holds when it runs,
    not the one it trapped on: after an ADDFD replaced a pipe by an epoll it gets the
    epoll's answer (EINVAL since 18e2bf0edf4d, ENOTTY before), after an epoll was replaced
    by a pipe the pipe's (ENOTTY)."""
    p = Program()
    h = p.pipe("h") if trapped == PIPE else p.epoll_create("h")
    p.notify(h).expect(-1, errno=EPOLL_IOCTL if trapped == PIPE else "ENOTTY")
    p.addfd(h, by=EPOLL if trapped == PIPE else PIPE, file="new")
    p.respond(flags=CONTINUE)
    return p
