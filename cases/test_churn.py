"""Churn: thousands of ADDFD(SETFD) replaces of one registered fd while a thread of the
target spins in epoll_wait, the property the seeds argue about checked in bulk.

Each replace installs a fresh pipe at the fd, whose old file was made readable
just before and had the fd as its only reference; the target then registers
the fd again under the iteration's data (ADD on a stock kernel, where the entry
died with the old file; MOD under follow, where the ADD finds the entry that
moved to the new file).  No epoll_wait call begun after a replace returned may
report the replaced file; every replaced file is released (its pipe's write end
polls POLLERR within a bound); the target ends with the fds and the single
entry it began with.  The engine is native/churn.c; its self-test (the
supervisor keeping each old file: stale entries) is in tests/test_churn_engine.py.
A run that cannot finish in its budget on a slow machine skips with
`churn_not_exercised`, as does one whose busy thread saw too few events.
"""
import pytest

from native import probes

ITERATIONS = 5000
MIN_EVENTS = 1000        # the busy thread saw the churn, not an idle epoll
CHURN_FD = 50            # native/churn.c's fd under churn


def test_replaced_single_reference_files_are_never_reported(profile):
    """Across 5000 replaces no wait begun after a replace reports the replaced file, every
    old file is released, and the fds and the one entry are as before; stock re-ADDs each
    time, follow MODs."""
    token = probes.missing(["user_notif", "addfd", "fds"])
    if token:
        pytest.skip(token)
    from native.churn import ChurnError, run_churn
    from native.race import timeout_scale
    try:
        res = run_churn(ITERATIONS, timeout_s=60 * timeout_scale())
    except ChurnError as exc:
        if exc.kind == "timeout" and exc.partial.stale == 0:
            pytest.skip("churn_not_exercised")
        raise
    print(res.summary())
    assert res.stale == 0, res.first_stale
    if res.events < MIN_EVENTS:
        pytest.skip("churn_not_exercised")
    expected_ctl = ({"adds": ITERATIONS + 1, "mods": 0} if profile == "stock"
                    else {"adds": 1, "mods": ITERATIONS})
    assert {"adds": res.adds, "mods": res.mods} == expected_ctl
    assert (res.iterations, res.ctl_failures, res.addfd_failures, res.old_alive) == \
        (ITERATIONS, 0, 0, 0)
    assert res.fds_after == res.fds_before
    assert (res.entries, res.entry_fd, res.entry_data) == (1, CHURN_FD, ITERATIONS)
