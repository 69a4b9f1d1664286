"""The harness itself: the run_program fixture's diff, and the leak checks."""
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
@pytest.fixture
def suite(pytester, monkeypatch):
    """A pytester directory with the suite's own conftest, importing the suite's packages."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    return pytester


def test_wrong_expectation_fails_with_step_diff(suite):
    """A case whose expected trace is wrong fails and prints expected and actual for the
    differing step."""
    suite.makepyfile(test_wrong="""
        from native.program import Program, IN, ADD
        def test_wrong(run_program):
            p = Program()
            ep = p.epoll_create("ep")
            r = p.pipe("r")
            p.epoll_ctl(ep, ADD, r, IN, data=1)
            p.inject(p.file_of(r))
            p.wait(ep).expect(events=[])
            run_program(p)
    """)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*!!  4 wait(ep, maxevents=16, timeout=0)*expected: 0 [[][]]",
        "*actual:   1 [[]IN 0x1[]]",
        "*differs:  ret, events",
    ])


def test_leaked_fd_fails_the_test(suite):
    """A test that leaves an fd open fails with the fd named."""
    suite.makepyfile(test_leak="""
        import os
        KEEP = []
        def test_leaks_fd():
            KEEP.append(os.open("/dev/null", os.O_RDONLY))
    """)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test leaked fds {*: '/dev/null'}*"])


def test_leaked_child_fails_the_test(suite):
    """A test that leaves a child process (running or a zombie) fails, and the child is reaped."""
    suite.makepyfile(test_leak="""
        import os
        def test_leaks_zombie():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
    """)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*child processes [[]*[]]*"])


@pytest.mark.parametrize("scale, rungs", [("1", [1.0]), ("3", [1.0, 3.0]), ("8", [1.0, 8.0]),
                                          ("40", [1.0, 8.0, 40.0])])
def test_step_bounds_stretch_in_rungs_up_to_the_machine_scale(monkeypatch, scale, rungs):
    """A case runs first with its steps' own bounds and, only while a sleeper ran out before
    its join, again with longer ones, up to FDR_TIMEOUT_SCALE."""
    from native.executor import step_scales
    monkeypatch.setenv("FDR_TIMEOUT_SCALE", scale)
    assert step_scales() == rungs

