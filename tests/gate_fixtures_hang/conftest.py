"""Stand-in for the repository conftest.py while the gate self-tests run these fake cases
(a copy of gate_fixtures/conftest.py: each fixture directory must be its own rootdir).

The gate runs this directory on its own (its pytest.ini makes it the rootdir).
Seen from the repository's own test run instead, these fake cases (some fail on
purpose) are not collected.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser):
    try:
        parser.addoption("--fdr-profile", default=None, choices=("stock", "follow"))
    except ValueError:        # loaded by the repository's test run, whose conftest.py has it
        pass


def pytest_ignore_collect(collection_path, config):
    """Collect these files only when this directory is the rootdir (a gate self-test run)."""
    if config.rootpath != HERE:
        return True
    return None
