"""The churn engine's own checks: its verdict can fail, and it refuses bad arguments."""
import pytest

from native import probes


def need():
    token = probes.missing(["user_notif", "addfd", "fds"])
    if token:
        pytest.skip(token)


def test_kept_old_files_show_as_stale_events():
    """When the supervisor keeps each replaced file (a multi-referenced replace), the stale
    entries report files already replaced: the verdict the churn case relies on can fail."""
    need()
    from native.churn import run_churn
    res = run_churn(300, keep_old=True)
    assert res.stale > 0
    assert res.first_stale.startswith("a wait begun after replace ")


def test_bad_arguments_are_refused():
    """Zero iterations, a zero timeout or an unknown flag are refused with EINVAL."""
    from native._churn import ffi, lib
    out = ffi.new("struct fdr_churn_result *")
    for args in [(0, 1000, 0), (10, 0, 0), (10, 1000, 2)]:
        assert lib.fdr_churn(*args, out) == -1
        assert ffi.errno == 22
