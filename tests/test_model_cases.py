"""The model's self-test: it predicts every conformance case's hand-written expectation.

Cases (cases/) and the model (fuzz/model.py) are two independent witnesses of
the same semantics; a disagreement is a bug in one of them.
"""
from __future__ import annotations

import pytest

from native.program import PROFILES
from native.trace import Trace, render_diff

# Case instances whose hand-written expectation the model disputes, with why
# (none now: a disagreement found here was a case bug, fixed in the case).
DISPUTED: dict = {}


def _instances():
    from cases.casekit import all_cases
    for case in all_cases().values():
        for test_id, program in case.instances():
            for profile in PROFILES:
                yield pytest.param(program, profile, id=f"{test_id}-{profile}",
                                   marks=_disputed(case.name, profile, test_id))


def _disputed(name, profile, test_id):
    for (case, prof, *params), why in DISPUTED.items():
        if case == name and prof == profile and all(p in test_id.split("[", 1)[-1].split("-")
                                                    for p in params):
            return [pytest.mark.xfail(reason=why, strict=False)]
    return []


@pytest.mark.parametrize("program,profile", list(_instances()))
def test_model_predicts_case(program, profile):
    from fuzz.model import Model
    missing = {s.op for s in program.steps} - Model.supported_ops()
    if missing:
        pytest.skip("not_modelled")
    model = Model(program, profile)
    predicted = model.run()
    expected = program.expected_trace(profile)
    wrong = [i for i, (a, b) in enumerate(zip(predicted, expected))
             if a != b and i not in model.ambiguous]
    assert not wrong and len(predicted) == len(expected), \
        render_diff(program.steps, expected, Trace(predicted), profile)
