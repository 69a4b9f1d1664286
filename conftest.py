"""pytest harness: the program-running fixture, feature skips, the profile, leak checks.

    --fdr-profile=auto|stock|follow   which semantics profile expectations are checked
                                      against (auto: probe the running kernel once)
"""
from __future__ import annotations

import os
import platform

import pytest

from native import probes
from native.holdings import children, open_fds
from native import program as P


def pytest_addoption(parser):
    parser.addoption("--fdr-profile", default="auto", choices=("auto",) + P.PROFILES,
                     help="semantics profile to check expectations against (default: probe)")


_PROFILE: dict = {}


def session_profile(config) -> tuple[str | None, str]:
    """The forced profile, or the probed one (probed once per process)."""
    forced = config.getoption("--fdr-profile")
    if forced != "auto":
        return forced, "forced on the command line"
    if "value" not in _PROFILE:
        _PROFILE["value"] = probes.detect_profile() if probes.features()["user_notif"] else (
            None, "no seccomp user notification")
    return _PROFILE["value"]


def pytest_report_header(config):
    have = probes.features()
    profile, _ = session_profile(config)
    feats = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(have.items()))
    return [f"kernel: {platform.release()}  profile: {profile or 'matches none'}",
            f"features: {feats}"]


@pytest.fixture(scope="session")
def profile(request) -> str:
    name, trace = session_profile(request.config)
    if name is None:
        if not probes.features()["user_notif"]:
            pytest.skip(probes.SKIP_TOKENS["user_notif"])
        pytest.fail("the running kernel matches no semantics profile; probe trace:\n" + trace,
                    pytrace=False)
    return name


@pytest.fixture
def run_program(profile):
    """Run a Program for real and assert its trace equals the expected one, step by step."""
    from native.executor import run, step_scales
    from native.trace import render_diff

    def check(program: P.Program):
        token = probes.missing(probes.program_needs(program))
        if token:
            pytest.skip(token)
        expected = program.expected_trace(profile)
        # A sleeper whose timeout ran out before its join (Trace.expired) proves nothing:
        # the run is repeated with longer step bounds, up to the machine's full scale.
        # On a slow machine most cases pass at the first, short rung, so a sleeper
        # meant to run out does not wait the whole scaled bound every time.
        for step_scale in step_scales():
            trace = run(program, step_scale=step_scale)
            if not trace.expired:
                break
        if trace != expected:
            pytest.fail(render_diff(program.steps, expected, trace, profile), pytrace=False)
        return trace

    return check


# -- leak checks -------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves fds, child processes or zombies behind."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    fds_before, kids_before = open_fds(), children()
    yield
    leaked_fds = {fd: path for fd, path in open_fds().items()
                  if fd not in fds_before or fds_before[fd] != path}
    leaked_kids = children() - kids_before
    if leaked_fds or leaked_kids:
        for pid in leaked_kids:   # reap, so one leak does not fail every later test
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        pytest.fail(f"test leaked fds {leaked_fds or '{}'} and child processes "
                    f"{sorted(leaked_kids) or '[]'}", pytrace=False)


pytest_plugins = ["pytester"]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: the test manages processes itself")
    # The zygote (a child process and a socket) lives as long as this process:
    # start it before any test takes its fd and child snapshot.
    try:
        from native.executor import start_zygote
    except ImportError:
        return      # not built: the first test that runs a program says so
    start_zygote()
