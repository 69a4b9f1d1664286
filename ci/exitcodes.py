"""The gate's exit status: a verdict (pass, fail, skip) mapped by a named convention.

pytest's own exit codes never leave the gate; ci.gate maps them to a verdict
or to USAGE.
"""
from __future__ import annotations

from ci.outcomes import FAILING, PASS, XFAIL

USAGE = 2   # bad option, unwritable results directory, unreadable file: nothing was run

# verdict -> exit code, per convention.
CONVENTIONS = {
    "kselftest": {"pass": 0, "fail": 1, "skip": 4},
    "fedora": {"pass": 0, "fail": 1, "skip": 3},
    "automake": {"pass": 0, "fail": 1, "skip": 77},
}


def verdict(results, checks=()) -> str:
    """'fail' if any result fails (FAIL, XPASS, ERROR); else 'skip' if no test outside the
    `checks` families (the gate's own health checks) passed or xfailed; else 'pass'."""
    if any(r.outcome in FAILING for r in results):
        return "fail"
    if not any(r.outcome in (PASS, XFAIL) for r in results if r.family not in checks):
        return "skip"
    return "pass"


def exit_code(verdict_: str, convention: str = "kselftest") -> int:
    return CONVENTIONS[convention][verdict_]
