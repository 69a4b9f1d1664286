"""The listener's life: once no task uses the filter it reports EPOLLHUP, through
epoll too, and NOTIF_RECV fails with ENOENT.

"No task uses it" changed with bfafe5efa975 (6.11): a task's filters are released
in do_exit(); before, only in release_task(), once the task is reaped.  The
executor reaps no target process before the run ends, so on older kernels the
listener of a dead target shows nothing and NOTIF_RECV would block (the executor
answers EAGAIN instead of calling it).
"""
from cases.casekit import case, matrix
from native.kernel_facts import kernel_has
from native.program import HUP, IN, MAIN, OUT, Program

RELEASED_AT_EXIT = kernel_has("bfafe5efa975")


def expect_hangup(p):
    """The listener after the last process of the filter ended: EPOLLHUP and ENOENT, or,
    before bfafe5efa975 (released when reaped), nothing and a NOTIF_RECV that would block."""
    p.listener_wait(IN, data=0x11).expect(events=[(HUP, 0x11)] if RELEASED_AT_EXIT else [])
    p.notif_recv().expect(-1, errno="ENOENT" if RELEASED_AT_EXIT else "EAGAIN")


@case(params=matrix(end=("exit", "kill")))
def test_listener_hangs_up_when_target_is_gone(end):
    """After the target exits or is killed, epoll on the listener reports EPOLLHUP (with no
    notification pending) and NOTIF_RECV fails with ENOENT (before bfafe5efa975: only once
    the target is reaped)."""
    p = Program()
    r = p.pipe("r")
    if end == "exit":
        p.exit_target()
    else:
        p.notify(r)
        p.kill_target()
    expect_hangup(p)
    return p


@case(params=matrix(last=("child", "parent"), end=("exit", "kill")))
def test_listener_hangs_up_only_when_every_process_of_the_filter_is_gone(last, end):
    """A forked child inherits the filter: with one of the two processes gone (exited or
    SIGKILLed by the other) the listener reports no EPOLLHUP during a hold of the other (only
    OUT for the notification being answered), and reports it once that one exits too (before
    bfafe5efa975: once both are reaped)."""
    p = Program()
    r = p.pipe("r")
    child = p.fork("child")
    first, second = (MAIN, child) if last == "child" else (child, MAIN)
    if end == "exit":
        with p.on(first):
            p.exit_target()
    else:
        with p.on(second):
            p.kill(first)
    with p.on(second):
        p.notify(r)
    p.listener_wait(IN | OUT, data=0x11).expect(events=[(OUT, 0x11)])
    p.respond()
    with p.on(second):
        p.exit_target()
    expect_hangup(p)
    return p
