"""Races: a replace against a concurrent replace, epoll_ctl, epoll_wait, close and exit.

Each test runs one scenario of the race engine (native/race.c) for many
iterations: fresh files, a spin barrier between the two racing parties, a
delay swept across both orders and the overlap (calibrated at the start of
the run), the two operations, then a verdict read off what the kernel left
behind.  Every iteration lands in one interleaving class; the test fails on
any invariant violation, and also when a class the race exists for was
observed fewer times than stated, so a race that never happened cannot pass.

The counts are printed and recorded as the test's user properties
(race_summary, race_<class>; pytest's JUnit writer emits them with
junit_family=legacy or xunit1) for notes to cite.

On a slow machine (FDR_TIMEOUT_SCALE > 1: a TCG guest, KSFT_MACHINE_SLOW) a run
that could not gather its interleavings within its budget (a class short of its
minimum, or the deadline reached) without a single violation is skipped with
`race_not_exercised`: that says something about the machine, not the kernel.
A violation always fails.  With one CPU there is no race to speak of: `one_cpu`.

two_listeners states both profiles.  After both replaces returned and the
supervisors dropped their copies: on `stock` the epoll holds exactly one
entry, (fd, old file), and reports the old file's readiness under the fd's
data while the fd holds the winner's file (classes A_last, B_last); on
`follow` it holds (fd, winner's file), silent while only the old file is
readable and reporting the winner's (A_last, B_last), or no entry at all
(A_last_unwatched, B_last_unwatched: the earlier replace moved the entry
onto a file the later one had already replaced, and it died with that
file; decision 15 in patches/follow/README.md).  Never an entry on a file
the fd does not hold, never an event for one.

Each test's comment draws its scenario's timeline (the left column is side 0,
the right side 1, racing from the barrier ====); CLASSES names what each
interleaving class means.  native/race_scenarios*.c have the same drawings
above the code, and the engine's class names must be these.
"""
import os

import pytest

from native import probes


@pytest.fixture(scope="module", autouse=True)
def probed():
    """Probe the kernel's features before any test's leak check: the probes run the
    executor, whose helpers may outlive the first test that happens to start them."""
    return probes.features()


# Scenario -> its interleaving classes, in the engine's order, and what each means.
CLASSES = {
    "two_addfd": {"A_last": "A's install came last: the fd reads A, B's file is gone",
                  "B_last": "B's install came last: the fd reads B, A's file is gone",
                  "inconsistent": "both files alive or both gone (a violation)"},
    "two_dup2": {"A_last": "dup2(A) came last: the fd reads A, B's file is gone",
                 "B_last": "dup2(B) came last: the fd reads B, A's file is gone",
                 "inconsistent": "both files alive or both gone (a violation)"},
    "addfd_vs_ctl_add": {"add_saw_old": "ADD registered the old file: its entry died with it",
                         "add_saw_new": "ADD registered the new file: reported with its data",
                         "add_failed": "ADD failed (a violation)",
                         "inconsistent": "anything else (a violation)"},
    "addfd_vs_ctl_del": {"del_first": "DEL removed (fd, old file): 0, no entry left",
                         "replace_first": "DEL looked up (fd, new file): ENOENT, the stale "
                                          "entry stays until the old file's last close",
                         "inconsistent": "anything else (a violation)"},
    "addfd_vs_wait": {"blocked_before": "the waiter slept before the ADDFD began",
                      "blocked_during": "it went to sleep while the ADDFD ran",
                      "blocked_after": "it went to sleep after the ADDFD"},
    "addfd_vs_close": {"close_first": "close took the old file: the fd holds the new one",
                       "replace_first": "close took the new file: the fd ends closed",
                       "inconsistent": "anything else (a violation)"},
    "addfd_vs_exit": {"addfd_first": "installed before the exit: ADDFD returned the fd",
                      "exit_during_addfd": "queued, the target went first: ESRCH",
                      "exit_first": "the notification was gone: ENOENT",
                      "inconsistent": "any other return (a violation)"},
    "addfd_vs_signal": {"addfd_first": "installed before the signal: the fd reads the new file",
                        "signal_during_addfd": "queued, dropped by the interrupted wait: ESRCH",
                        "signal_first": "the notification went with the signal: ENOENT",
                        "inconsistent": "any other return (a violation)"},
    "two_listeners": {"A_last": "A's install came last; stock: the entry stays with the old "
                                "file, follow: it is A's",
                      "B_last": "B's install came last; likewise",
                      "A_last_unwatched": "follow only: A came last and no entry is left",
                      "B_last_unwatched": "follow only: B came last and no entry is left",
                      "inconsistent": "both files alive or both gone (a violation)"},
}


def run(name, iterations, minimums, request, profile=None, verdicts="stock"):
    """Run a scenario; check it against its invariants and minimum class counts."""
    from native.race import needs, run_race
    token = probes.missing(needs(name))
    if token:
        pytest.skip(token)
    if profile is not None and profile != verdicts:
        # The verdicts state stock semantics (the entry stays with the old file).
        pytest.skip("stock_only")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one_cpu")
    from native.race import RaceError, timeout_scale
    slow = timeout_scale() > 1
    try:
        result = run_race(name, iterations, profile=verdicts)
    except RaceError as exc:
        if exc.kind == "timeout" and slow and exc.partial.violations == 0:
            print(f"not exercised on this slow machine: {exc}")
            pytest.skip("race_not_exercised")
        raise
    print(result.summary())
    assert list(result.counts) == list(CLASSES[name]), "the engine's classes are not CLASSES'"
    # user_properties directly: the record_property fixture warns under xunit2.
    request.node.user_properties.append(("race_summary", result.summary()))
    for cls, n in result.counts.items():
        request.node.user_properties.append((f"race_{cls}", n))
    assert result.iterations == iterations
    assert sum(result.counts.values()) == iterations
    assert result.violations == 0, f"{result.violations} violations; first: {result.first_violation}"
    short = result.shortfalls(minimums)
    if short and slow:
        print(f"not exercised on this slow machine: {'; '.join(short)}")
        pytest.skip("race_not_exercised")
    assert not short, f"the race was not exercised: {'; '.join(short)} ({result.summary()})"
    return result


# target w0: ioctl(fd) ~trap~> supervisor      w1: ioctl(fd) ~trap~> 2nd supervisor
#                              ============== fz_meet ==============
#                              ADDFD(A -> fd)        ADDFD(B -> fd)
def test_two_addfd_same_fd(request):
    """Two supervisors ADDFD(SETFD) their own files at one fd concurrently: the fd ends
    holding the last installer's file; the loser's and the old file are freed."""
    run("two_addfd", 2000, {"A_last": 50, "B_last": 50}, request)


# target w0                    target w1
# ============ fz_meet ============
# dup2(A, fd)                  dup2(B, fd)
def test_two_dup2_same_fd(request):
    """Two target threads dup2 different files onto one fd concurrently: the fd ends
    holding one of them; the other and the old file are freed."""
    run("two_dup2", 2000, {"A_last": 50, "B_last": 50}, request)


# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      epoll_ctl(ep, ADD, fd)
def test_addfd_vs_ctl_add(request, profile):
    """EPOLL_CTL_ADD racing an ADDFD replace registers either the old file (whose entry
    dies with it: nothing is ever reported) or the new file (reported under the data)."""
    result = run("addfd_vs_ctl_add", 2000, {"add_saw_old": 50, "add_saw_new": 50},
                 request, profile)
    assert result.counts["add_failed"] == 0


# fd registered in ep; the old file also kept by a dup
# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      epoll_ctl(ep, DEL, fd)
def test_addfd_vs_ctl_del(request, profile):
    """EPOLL_CTL_DEL racing an ADDFD replace either removes the old file's entry (0) or
    looks up the new file and fails with ENOENT, leaving the stale entry until the old
    file's last close."""
    run("addfd_vs_ctl_del", 2000, {"del_first": 50, "replace_first": 50}, request, profile)


# fd registered in ep; the old file also kept by a dup
# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      epoll_wait(ep) sleeps
def test_addfd_vs_wait(request, profile):
    """A thread asleep in epoll_wait, or going to sleep, while the fd is replaced is not
    woken by the never-registered new file, and reports the old file's readiness with
    the registered data."""
    run("addfd_vs_wait", 2000, {"blocked_before": 50, "blocked_during": 50, "blocked_after": 50},
        request, profile)


# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      close(fd)
def test_addfd_vs_close(request):
    """close() racing an ADDFD replace of the fd: ADDFD returns the fd either way; closed
    first, the fd ends open with the new file; replaced first, close frees the new file
    and the fd ends closed."""
    run("addfd_vs_close", 2000, {"close_first": 50, "replace_first": 50}, request)


# a fresh target per iteration
# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      exit_group(0)
def test_addfd_vs_exit(request):
    """An ADDFD racing the target's exit_group returns the fd (installed, then freed with
    the target) or fails with ENOENT (the notification is gone) or ESRCH (queued as the
    target died); the new file never outlives the target."""
    run("addfd_vs_exit", 200, {"addfd_first": 20, "exit_first": 20}, request)


# a SIGUSR1 handler without SA_RESTART in the target
# target w0: ioctl(fd) ~trap~> supervisor      target w1
#                              ============== fz_meet ==============
#                              ADDFD(new -> fd)      tgkill(w0, SIGUSR1)
def test_addfd_vs_signal(request):
    """An ADDFD racing a signal (handler without SA_RESTART) to the trapped thread installs
    the file or fails with ENOENT (the notification went with the interrupted wait) or
    ESRCH (queued, then dropped by it); the call always fails with EINTR and a refused
    file is never installed."""
    run("addfd_vs_signal", 2000, {"addfd_first": 50, "signal_first": 50}, request)


# fd registered in ep; each worker traps to a listener of its own
# target w0: ioctl(fd) ~trap~> supervisor      w1: ioctl(fd) ~trap~> 2nd supervisor
#                              ============== fz_meet ==============
#                              ADDFD(A -> fd)        ADDFD(B -> fd)
def test_two_listeners_same_fd(request, profile):
    """Two threads, each trapped to its own listener, get the registered fd replaced
    concurrently: stock leaves the entry on the old file, follow on the fd's file or
    nowhere, and no event reports a file the fd no longer holds."""
    run("two_listeners", 2000, {"A_last": 50, "B_last": 50}, request, profile, profile)
