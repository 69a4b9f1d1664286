"""ADDFD(SETFD) with an allocation failure injected into the install (fail-nth).

The install runs in the trapped target thread (seccomp_handle_addfd() is
called by the target, woken by the supervisor's ioctl), so fail-nth is set on
the notification's thread, /proc/<pid>/task/<tid>/fail-nth, not on the
supervisor's.  A stock kernel allocates nothing there (the fd table is large
enough); the follow patch allocates, in this order, its array of epoll
instances, then in ep_insert() the new epitem, the new file's epitems head
(a fresh file is in no epoll yet) and the wait-queue hook that polling it
queues.  Wherever the fault lands, ADDFD succeeds
and the entry stays with the old file as on stock (decision 6 in
patches/follow/README.md); with no fault left to fire, follow moves it.
Needs CONFIG_FAULT_INJECTION and CONFIG_FAILSLAB with its debugfs knobs
(ci/kconfig/debug.config): failslab skips allocations that may sleep unless
its ignore-gfp-wait is off, which the fixture does for the test's duration.
"""
import os
import subprocess

import pytest

from native import probes

MAX_NTH = 8
PATCH_ALLOCATIONS = [1, 2, 3, 4]    # eps array, epitem, epitems head, wait-queue hook


@pytest.fixture
def failslab():
    """failslab's ignore-gfp-wait off for the test (debugfs mounted if it is not)."""
    from native.failnth import FAILSLAB
    token = probes.missing(["user_notif", "addfd", "fail_nth"])
    if token:
        pytest.skip(token)
    if not os.path.isdir(FAILSLAB) and os.path.isdir("/sys/kernel/debug") and os.geteuid() == 0:
        subprocess.run(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"],
                       capture_output=True, timeout=10)
    knob = os.path.join(FAILSLAB, "ignore-gfp-wait")
    if not os.path.exists(knob):
        pytest.skip(probes.SKIP_TOKENS["failslab"])
    with open(knob) as f:
        before = f.read().strip()
    with open(knob, "w") as f:
        f.write("N")
    yield
    with open(knob, "w") as f:
        f.write(before)


def check_outcome(r, expect: str):
    """ADDFD installed, nothing leaked, and the one entry keyed to the file `expect`."""
    assert r.addfd_ret == r.fd
    assert r.fds_after == r.fds_before, "the replace changed the target's fd count"
    assert r.entry_on() == expect
    assert (r.events, r.data) == (0x19, 0xFA117000)   # EPOLLIN|EPOLLERR|EPOLLHUP, data kept
    assert (r.nev_old, r.nev_both) == ((1, 1) if expect == "old" else (0, 1))
    assert (r.ev_events, r.ev_data) == (0x1, 0xFA117000)
    assert not r.old_alive, "the old file outlived the target: a reference leaked"
    assert not r.new_alive, "the new file outlived the target: a reference leaked"


def test_injected_allocation_failure_leaves_the_entry_as_stock(profile, failslab):
    """Failing the n-th allocation of the trapped thread's install, for each n that fires,
    leaves the entry on the old file with nothing leaked; the first n that does not fire
    gives the profile's outcome."""
    from native.failnth import replace_with_failure
    fired = []
    for nth in range(1, MAX_NTH + 1):
        r = replace_with_failure(nth)
        print(f"fail-nth {nth} on thread {r.trapped_tid}: "
              f"{'fired' if r.fired else f'{r.nth_left} left'}, entry on {r.entry_on()}")
        if not r.fired:
            check_outcome(r, "new" if profile == "follow" else "old")
            break
        check_outcome(r, "old")
        fired.append(nth)
    else:
        pytest.fail(f"every fail-nth up to {MAX_NTH} fired: the install allocates more than thought")
    # Stock's install allocates nothing here; the patch's four allocations are the faults.
    assert fired == (PATCH_ALLOCATIONS if profile == "follow" else [])


def test_replace_without_injection_gives_the_profiles_outcome(profile):
    """The same replace with fail-nth 0 (no injection, any kernel) gives the profile's
    entry and leaks nothing: the baseline the injected runs are judged against."""
    from native.failnth import replace_with_failure
    token = probes.missing(["user_notif", "addfd"])
    if token:
        pytest.skip(token)
    check_outcome(replace_with_failure(0), "new" if profile == "follow" else "old")
