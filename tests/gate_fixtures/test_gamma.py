"""A family whose tests all skip."""
import pytest


def test_uring():
    """Skips."""
    pytest.skip("io_uring_disabled")


@pytest.mark.skip(reason="not_root")
def test_root_only():
    """Skips by marker."""
