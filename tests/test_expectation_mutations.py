"""Every expected field of every core case is load-bearing.

Each core case program runs once; then each field of each step's expected
outcome is changed in turn, and the comparison must reject the changed
expectation and point at that step and field in its step-by-step diff.
"""
import dataclasses

import pytest

from cases import test_replace_core
from native.executor import run
from native.trace import FdinfoLine, Outcome, render_diff

CORE = [c for c in (getattr(test_replace_core, n) for n in dir(test_replace_core))
        if hasattr(c, "case")]


def mutations(outcome: Outcome):
    """(field, changed outcome) for every field of an outcome."""
    def other(value):
        if isinstance(value, bool) or value is None:
            return "EIO"
        if isinstance(value, int):
            return value + 1
        return f"{value}_x"
    for f in dataclasses.fields(Outcome):
        value = getattr(outcome, f.name)
        if f.name == "events":
            new = ((1, 0xBAD),) if not value else value[:-1]
        elif f.name == "fdinfo":
            new = (FdinfoLine("r", 1, 0xBAD),) if not value else value[:-1]
        elif f.name == "cqes":
            new = (("#0", 1, False, None, None),) if not value else value[:-1]
        elif f.name == "count":
            new = 1 if value is None else value + 1
        else:
            new = other(value)
        yield f.name, dataclasses.replace(outcome, **{f.name: new})


@pytest.mark.parametrize("test", CORE, ids=[t.__name__ for t in CORE])
def test_every_expected_field_is_checked(test, profile):
    """Changing any one expected field of any step makes the core case fail, with that step
    and field marked."""
    checked = 0
    for _, program in test.case.instances():
        expected = program.expected_trace(profile)
        trace = run(program)
        assert trace == expected, render_diff(program.steps, expected, trace, profile)
        for i, outcome in enumerate(expected):
            for field, changed in mutations(outcome):
                wrong = expected[:i] + [changed] + expected[i + 1:]
                assert trace != wrong, f"step {i} field {field} of {program.name} is not compared"
                diff = render_diff(program.steps, wrong, trace, profile)
                marked = [ln for ln in diff.splitlines() if ln.startswith(f"!! {i:2d} ")]
                assert marked, diff
                assert f"differs:  " in diff and field in diff.split(marked[0], 1)[1].splitlines()[2]
                checked += 1
    assert checked > 100
