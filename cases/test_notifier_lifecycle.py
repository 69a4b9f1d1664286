"""The listener's life: once no task uses the filter it reports EPOLLHUP, through
epoll too, and NOTIF_RECV fails with ENOENT.
"""
from cases.casekit import case, matrix
from native.program import HUP, IN, Program


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
