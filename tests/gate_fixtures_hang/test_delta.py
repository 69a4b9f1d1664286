"""A family that hangs when FDR_FIXTURE_HANG=1 (the gate must report it by its cases)."""
import os
import time


def test_quick():
    """Passes."""


def test_hangs():
    """Sleeps far beyond any gate limit when asked to, else passes."""
    if os.environ.get("FDR_FIXTURE_HANG") == "1":
        time.sleep(3600)
