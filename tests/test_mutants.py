"""Mutation check of the fuzzer: each deliberately broken model is caught by a campaign.

For every mutant in fuzz.model.MUTANTS a 10-second campaign (one job) runs the
real executor against the broken model; the mutant is caught when the campaign's
verdict differs from the one the correct model gives on this kernel:

* every mutant but no_follow, under the kernel's own profile: the correct model
  agrees with the kernel, so the campaign must find a divergence, and the program
  it found must agree with the correct model (the catch is the mutant's fault);
  the fixup_* mutants break the userspace fixup, which has nothing to do on a
  kernel that follows (the kernel moved the entries first): skipped there;
* no_follow ("the follow profile behaves as stock"), under the follow profile: on
  a kernel that follows (the patched kernels of patches/follow/), the same; on a
  stock kernel (no fixup) the correct follow model diverges within seconds
  (python -m fuzz --profile follow must find one), and the mutant, predicting
  stock, finds none: its campaign passes where it must fail.

Each takes up to 10 s (times FDR_TIMEOUT_SCALE: in a TCG guest, see ci/lane
--mutants), so the module is left out unless selected:
`pytest -m mutants tests/test_mutants.py` (or FDR_MUTANTS=1).
"""
from __future__ import annotations

import os
import time

import pytest

from fuzz.model import MUTANTS

BUDGET_S = 10.0
pytestmark = pytest.mark.mutants


@pytest.fixture(autouse=True)
def _selected(request):
    selected = "mutants" in (request.config.getoption("markexpr", "") or "").replace(
        "not mutants", "")
    if not (selected or os.environ.get("FDR_MUTANTS") == "1"):
        pytest.skip("mutants: select with -m mutants (or FDR_MUTANTS=1)")
    from native import probes
    token = probes.missing(["user_notif", "addfd", "addfd_send", "kcmp"])
    if token:
        pytest.skip(token)


def _kernel_profile() -> str:
    from native import probes
    profile, _ = probes.detect_profile()
    return profile or "stock"


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught_within_budget(mutant, tmp_path):
    """A campaign with this broken model reaches a verdict the correct model would not,
    within 10 s (scaled on a slow machine)."""
    from fuzz.campaign import check, run_campaign
    from native.executor import timeout_scale
    kernel = _kernel_profile()
    if kernel == "follow" and mutant.startswith("fixup_"):
        pytest.skip("fixup_on_follow_kernel")
    profile = "follow" if mutant == "no_follow" else kernel
    must_diverge = profile == kernel            # else the correct model diverges here
    budget = BUDGET_S * timeout_scale()
    start = time.monotonic()
    stats, found, _ = run_campaign(budget, profile, seed=1, jobs=1, mutant=mutant,
                                   out=tmp_path)
    took = time.monotonic() - start
    print(f"mutant {mutant}: {stats.programs} programs, "
          f"{'caught' if (found is not None) == must_diverge else 'NOT caught'} in {took:.1f} s")
    if must_diverge:
        assert found is not None, f"{mutant} not caught in {budget:g} s ({stats.line()})"
        verdict, _, _ = check(found, profile, None)
        assert verdict is None, f"the correct model diverges on {found.name} too: a model bug"
    else:
        if found is not None:
            verdict, _, _ = check(found, kernel, None)
            assert verdict is None, (
                f"the correct {kernel} model diverges on this kernel too ({found.name}, "
                f"reproducer under {tmp_path}): a model bug or a kernel difference, not the mutant's")
        assert found is None, f"{mutant} diverged under {profile} on a {kernel} kernel"
        correct, found_ok, _ = run_campaign(budget, profile, seed=1, jobs=1, out=tmp_path / "ok")
        assert found_ok is not None, \
            f"the correct {profile} model found no divergence on this {kernel} kernel either"
