"""The listener's life: once no task uses the filter it reports EPOLLHUP, through
epoll too, and NOTIF_RECV fails with ENOENT.
"""
from cases.casekit import case, matrix
from native.program import HUP, IN, MAIN, OUT, Program


@case(params=matrix(end=("exit", "kill")))
def test_listener_hangs_up_when_target_is_gone(end):
    """After the target exits or is killed, epoll on the listener reports EPOLLHUP (with no notification pending) and NOTIF_RECV fails with ENOENT."""
    p = Program()
    r = p.pipe("r")
    if end == "exit":
        p.exit_target()
    else:
        p.notify(r)
        p.kill_target()
    p.listener_wait(IN, data=0x11).expect(events=[(HUP, 0x11)])
    p.notif_recv().expect(-1, errno="ENOENT")
    return p


@case(params=matrix(last=("child", "parent"), end=("exit", "kill")))
def test_listener_hangs_up_only_when_every_process_of_the_filter_is_gone(last, end):
    """A forked child inherits the filter: with one of the two processes gone (exited or SIGKILLed by the other) the listener reports no EPOLLHUP during a hold of the other (only OUT for the notification being answered), and reports it once that one exits too."""
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
    p.listener_wait(IN, data=0x11).expect(events=[(HUP, 0x11)])
    p.notif_recv().expect(-1, errno="ENOENT")
    return p
