"""Signals to a target asleep in the seccomp notifier (seccomp_do_user_notification).

The target waits interruptibly for the supervisor's answer.  A signal ends the
wait with -ERESTARTSYS and drops the notification (its id is gone: ID_VALID,
ADDFD and SEND on it say ENOENT); what the target sees then is the signal
code's: a handler with SA_RESTART, or no handler at all (a job-control stop and
continue), restarts the syscall, which traps again as a new notification whose
id is the next one; a handler without SA_RESTART makes it fail with EINTR.
With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (c2aa2dfef243, 5.19) the wait turns
killable once the supervisor has received the notification: a signal that
comes then stays pending until the answer, and the handler runs after the call
returned the supervisor's value; before the receive it interrupts as without
the flag; a fatal signal (SIGTERM with its default action) always ends the
target, and the notification with it.

Each scenario runs natively (native/notif_signal.c) against a fresh target with
its order forced (the supervisor waits for the handler's byte, the signal shown
pending in /proc, or the stop), so each has one outcome.  The fd-replacement
profiles do not touch this path: stock and follow expect the same.
"""
import pytest

from native import probes
from native.kernel_facts import kernel_has

# The first id after the signal: dropped with the interrupted wait.
DROPPED = dict(old_valid="ENOENT", old_addfd="ENOENT", old_send="ENOENT")
# The live notification answered: ADDFD installs, the call returns 42, the target exits.
ANSWERED = dict(live_addfd=0, live_send=0, call_ret=42, call_errno=0)


def outcome(**kw):
    """The engine's full result: fields a scenario does not look at stay None."""
    from native.notif_signal import SignalResult
    base = dict(renotified=False, id_delta=None, old_valid=None, old_addfd=None, old_send=None,
                live_addfd=None, live_send=None, pending_after=False, call_ret=None,
                call_errno=None, handler_runs=None, term_signal=0, exit_status=0)
    return SignalResult(**{**base, **kw})


def run(scenario, killable=False):
    token = probes.missing(["user_notif", "addfd"])
    if token:
        pytest.skip(token)
    if killable and not kernel_has("c2aa2dfef243"):
        pytest.skip("no_wait_killable_recv")
    from native.notif_signal import run_signal
    return run_signal(scenario)


def test_sa_restart_handler_renotifies_under_a_new_id():
    """A signal with an SA_RESTART handler drops the received notification (ENOENT for ADDFD
    on its id) and the restarted syscall traps again under the next id, then returns the
    answer."""
    assert run("restart") == outcome(renotified=True, id_delta=1, **DROPPED, **ANSWERED,
                                     handler_runs=1)


def test_handler_without_sa_restart_fails_the_call_with_eintr():
    """A signal with a handler lacking SA_RESTART makes the trapped syscall fail with EINTR;
    its notification is gone and no new one comes."""
    assert run("norestart") == outcome(**DROPPED, call_ret=-1, call_errno="EINTR",
                                       handler_runs=1)


def test_stop_and_continue_renotify_without_a_handler():
    """SIGSTOP then SIGCONT, no handler involved, interrupt the wait too: the syscall
    restarts as a new notification with the next id, the first id is ENOENT."""
    assert run("stop_cont") == outcome(renotified=True, id_delta=1, **DROPPED, **ANSWERED,
                                       handler_runs=0)


def test_wait_killable_recv_holds_a_signal_off_once_received():
    """With WAIT_KILLABLE_RECV a signal after the receive stays pending: the id stays valid,
    ADDFD and the answer reach the same call, and the handler runs after it returned."""
    assert run("killable", killable=True) == outcome(old_valid=0, **ANSWERED, handler_runs=1)


def test_wait_killable_recv_does_not_protect_before_the_receive():
    """With WAIT_KILLABLE_RECV a signal before the supervisor received the notification
    still interrupts: the SA_RESTART handler runs and the call traps again."""
    assert run("killable_before_recv", killable=True) == outcome(renotified=True, **ANSWERED,
                                                                 handler_runs=1)


def test_wait_killable_recv_yields_to_a_fatal_signal():
    """With WAIT_KILLABLE_RECV a fatal signal (SIGTERM, default action) after the receive
    ends the target; its notification goes with it (ENOENT)."""
    assert run("killable_fatal", killable=True) == outcome(**DROPPED, term_signal=15,
                                                           exit_status=None)
