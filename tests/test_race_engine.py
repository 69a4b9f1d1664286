"""The race engine's own contract: arguments, accounting, timeouts, and verdicts that can fail."""
import os

import pytest

from native import probes
from native import race
from native.holdings import children
from native.race import RaceError, RaceResult, run_race


@pytest.fixture(scope="module", autouse=True)
def probed():
    """Probe the kernel's features before any test's leak check: the probes run the
    executor, whose helpers may outlive the first test that happens to start them."""
    return probes.features()


def need(name):
    token = probes.missing(race.needs(name))
    if token:
        pytest.skip(token)


def test_unknown_scenario_is_a_clear_error():
    """An unknown scenario name raises ValueError naming the known ones."""
    with pytest.raises(ValueError, match="unknown race scenario 'nope'.*two_addfd"):
        run_race("nope", 10)


@pytest.mark.parametrize("iterations", [0, -1, True, 2.5, "10"])
def test_bad_iteration_counts_are_rejected(iterations):
    """Zero, negative and non-int iteration counts are rejected before anything runs."""
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        run_race("two_dup2", iterations)


def test_c_entry_point_rejects_bad_arguments():
    """fdr_race() itself refuses bad scenarios, counts, timeouts and flags with EINVAL."""
    out = race.ffi.new("struct fdr_race_result *")
    for args in [(-1, 10, 1000, 0), (race.lib.FDR_RACE_NSCENARIOS, 10, 1000, 0),
                 (0, 0, 1000, 0), (0, 10, 0, 0), (0, 10, 1000, 0x100)]:
        assert race.lib.fdr_race(*args, out) == -1, args
        assert race.ffi.errno == 22, args   # EINVAL


def test_scenarios_and_classes_come_from_the_engine():
    """Every scenario has at least two distinct class names; unknown names have none."""
    assert set(race.SCENARIOS) == {"two_addfd", "two_dup2", "addfd_vs_ctl_add", "addfd_vs_ctl_del",
                                   "addfd_vs_wait", "addfd_vs_close", "addfd_vs_exit",
                                   "addfd_vs_signal", "two_listeners"}
    for name in race.SCENARIOS:
        names = race.classes(name)
        assert len(names) >= 2 and len(set(names)) == len(names), name
    assert race.needs("two_dup2") == ["fds"]
    assert race.needs("two_addfd") == ["fds", "user_notif", "addfd"]
    with pytest.raises(ValueError):
        race.classes("nope")


@pytest.mark.parametrize("name,iterations", [("two_dup2", 100), ("two_addfd", 60),
                                             ("addfd_vs_ctl_add", 60), ("addfd_vs_ctl_del", 60),
                                             ("addfd_vs_wait", 60), ("addfd_vs_close", 60),
                                             ("addfd_vs_exit", 10), ("addfd_vs_signal", 60),
                                             ("two_listeners", 60)])
def test_every_iteration_lands_in_one_class(name, iterations, profile):
    """A short run of each scenario carries out every iteration, and its class counts sum to
    them."""
    need(name)
    result = run_race(name, iterations, profile=profile if name == "two_listeners" else "stock")
    assert result.iterations == iterations
    assert sum(result.counts.values()) == iterations
    assert list(result.counts) == race.classes(name)
    assert result.violations == 0, result.first_violation
    assert result.first_violation is None
    assert result.elapsed_s > 0


def test_fewer_iterations_than_calibration_still_run():
    """A run shorter than the calibration phase runs undelayed and reports no sweep window."""
    result = run_race("two_dup2", 5)
    assert result.iterations == 5 and result.window_ns == 0


def test_calibrated_sweep_is_reported():
    """After calibration the run reports its operations' median durations and a window
    covering both."""
    result = run_race("two_dup2", 200)
    assert result.window_ns >= result.op_ns[0] + result.op_ns[1] > 0


def test_deadline_ends_the_run_as_a_timeout():
    """A run that cannot finish by its deadline is killed and raised as a timeout, partial
    counts attached, nothing leaked."""
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(RaceError) as info:
        run_race("two_dup2", 5_000_000, timeout_s=0.5)
    assert info.value.kind == "timeout"
    assert info.value.detail.startswith("deadline passed waiting for")
    assert 0 < info.value.partial.iterations < 5_000_000
    assert sum(info.value.partial.counts.values()) >= info.value.partial.iterations
    assert len(os.listdir("/proc/self/fd")) == before


def test_killed_target_is_reported_as_a_crash():
    """A target killed from outside mid-run ends the run at once as a crash, reaped, not as
    a timeout."""
    import signal
    import threading
    import time
    box = {}

    def runner():
        try:
            run_race("two_dup2", 5_000_000, timeout_s=20)
        except RaceError as exc:
            box["error"] = exc

    before = children()
    thread = threading.Thread(target=runner)
    started = time.monotonic()
    thread.start()
    while not children() - before and thread.is_alive() and time.monotonic() - started < 10:
        time.sleep(0.01)        # the test polls for the target to appear; the engine never sleeps
    for pid in children() - before:
        os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert not thread.is_alive()
    assert box["error"].kind == "crashed", box["error"]
    assert "target died" in box["error"].detail
    assert time.monotonic() - started < 15
    assert not children() - before


@pytest.mark.parametrize("name,iterations", [("two_dup2", 50), ("two_addfd", 50),
                                             ("addfd_vs_close", 200), ("addfd_vs_exit", 10),
                                             ("addfd_vs_signal", 200), ("two_listeners", 50)])
def test_sabotage_is_caught(name, iterations):
    """With the engine's own copies of the racing files kept open (a leak), the verdicts
    report violations."""
    need(name)
    result = run_race(name, iterations, sabotage=True)
    assert result.violations > 0
    assert result.first_violation.startswith("iteration ")


def test_the_other_profiles_verdicts_fail(profile):
    """two_listeners judged by the profile this kernel does not have reports violations."""
    need("two_listeners")
    other = "follow" if profile == "stock" else "stock"
    result = run_race("two_listeners", 50, profile=other)
    assert result.violations > 0
    assert result.first_violation.startswith(f"iteration 0: {other}, ")


def test_unknown_profile_is_a_clear_error():
    """A verdict profile other than stock and follow raises ValueError before anything runs."""
    with pytest.raises(ValueError, match="profile must be 'stock' or 'follow'"):
        run_race("two_listeners", 10, profile="fixup")


def test_shortfalls_name_the_classes_below_their_minimum():
    """shortfalls() lists each class observed fewer times than stated, and refuses unknown
    classes."""
    r = RaceResult(name="x", iterations=30, counts={"a": 25, "b": 5}, violations=0,
                   first_violation=None, elapsed_s=0.1, window_ns=0, flip_ns=0, op_ns=(0, 0))
    assert r.shortfalls({"a": 20, "b": 5}) == []
    assert r.shortfalls({"a": 20, "b": 6}) == ["b observed 5 times, fewer than 6"]
    with pytest.raises(ValueError, match="no class 'c'"):
        r.shortfalls({"c": 1})
    assert "a=25 b=5" in r.summary()
