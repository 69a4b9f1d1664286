"""A family whose tests all pass (one parametrized with an id that needs escaping)."""
import pytest


def test_one():
    """Passes."""


@pytest.mark.parametrize("n", [1, 2], ids=["plain", "with space/slash"])
def test_param(n):
    """Passes twice."""
    assert n in (1, 2)


def test_profile_option_arrives(request):
    """The gate's --profile reaches pytest as --fdr-profile."""
    assert request.config.getoption("fdr_profile") in (None, "stock", "follow")


def test_gate_environment():
    """The gate exports the seed and the timeout scale the executor reads."""
    import os
    assert os.environ["FDR_SEED"].isdigit()
    assert os.environ["FDR_TIMEOUT_SCALE"].isdigit()
