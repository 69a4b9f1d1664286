"""The model's self-test: it predicts every conformance case's hand-written expectation.

Cases (cases/) and the model (fuzz/model.py) are two independent witnesses of
the same semantics; a disagreement is a bug in one of them.  Steps the model
flags as ambiguous (their outcome depends on kernel pointer order or on timing
the executor does not pin) are not compared.  Every case program is predicted,
io_uring ones included: a case using an operation the model does not cover
fails.  Conformance tests that assert invariants rather than a trace are listed
in EXCLUDED, by name, with the reason.
"""
from __future__ import annotations

import importlib
import pathlib

import pytest

from native.program import PROFILES
from native.trace import Trace, render_diff

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Case instances whose hand-written expectation the model disputes, with why
# (none now: a disagreement found here was a case bug, fixed in the case).
DISPUTED: dict = {}

# Conformance tests without a program and trace (so nothing to predict): test name -> why.
_RACES = ("races between two parties, run many times by the race engine (native/race.c); "
          "they assert invariants over interleaving classes, not one trace")
EXCLUDED = {
    "test_two_addfd_same_fd": _RACES,
    "test_two_dup2_same_fd": _RACES,
    "test_addfd_vs_ctl_add": _RACES,
    "test_addfd_vs_ctl_del": _RACES,
    "test_addfd_vs_wait": _RACES,
    "test_addfd_vs_close": _RACES,
    "test_addfd_vs_exit": _RACES,
    "test_addfd_vs_signal": _RACES,
    "test_replaced_single_reference_files_are_never_reported": (
        "a churn of thousands of replaces (native/churn.c) checked against invariants, "
        "not one trace"),
    **dict.fromkeys((
        "test_sa_restart_handler_renotifies_under_a_new_id",
        "test_handler_without_sa_restart_fails_the_call_with_eintr",
        "test_stop_and_continue_renotify_without_a_handler",
        "test_wait_killable_recv_holds_a_signal_off_once_received",
        "test_wait_killable_recv_does_not_protect_before_the_receive",
        "test_wait_killable_recv_yields_to_a_fatal_signal"),
        "signals to a target asleep in the notifier, run by native/notif_signal.c: no "
        "program step delivers a signal, so there is no trace to predict"),
    "test_two_listeners_same_fd": _RACES,
    "test_injected_allocation_failure_leaves_the_entry_as_stock":
        "allocation failures injected into the kernel (fail-nth): no model of fault injection",
    "test_replace_without_injection_gives_the_profiles_outcome":
        "the fault-injection case's baseline, asserted on its own result record; the same "
        "replace is predicted as a program in test_replace_core",
    "test_replace_case_through_fixup": "the cases above again, through the userspace fixup: "
                                       "predicted by test_model_predicts_fixup_variant",
}


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
    assert not missing, f"the model does not cover {sorted(missing)}"
    model = Model(program, profile)
    predicted = model.run()
    expected = program.expected_trace(profile)
    wrong = [i for i, (a, b) in enumerate(zip(predicted, expected))
             if a != b and i not in model.ambiguous]
    assert not wrong and len(predicted) == len(expected), \
        render_diff(program.steps, expected, Trace(predicted), profile)


def _fixup_variants():
    from cases.test_fixup_every_replace import variants
    for param in variants():
        for profile in PROFILES:
            yield pytest.param(param.values[0], profile, id=f"{param.id}-{profile}")


@pytest.mark.parametrize("program,profile", list(_fixup_variants()))
def test_model_predicts_fixup_variant(program, profile):
    """The model predicts each case's run through the userspace fixup: follow's outcome."""
    test_model_predicts_case(program, profile)


def test_every_conformance_test_is_a_case_or_excluded():
    """Each test in cases/ is a registered case (its program is predicted above) or is
    excluded by name with a reason; an excluded name that no longer exists is stale."""
    from cases.casekit import all_cases
    registered = {case.name for case in all_cases().values()}
    tests = set()
    for path in sorted((ROOT / "cases").glob("test_*.py")):
        module = importlib.import_module(f"cases.{path.stem}")
        tests |= {name for name in vars(module) if name.startswith("test_")
                  and callable(getattr(module, name))}
    unexplained = tests - registered - set(EXCLUDED)
    assert not unexplained, f"conformance tests neither predicted nor excluded: {sorted(unexplained)}"
    assert not set(EXCLUDED) - tests, f"stale exclusions: {sorted(set(EXCLUDED) - tests)}"
