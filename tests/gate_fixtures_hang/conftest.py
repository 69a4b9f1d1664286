"""The fake cases' conftest (tests/gate_fixtures/conftest.py), for this directory: the
gate runs it as its own rootdir, and the repository's test run does not collect it."""
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_gate_fixtures_conftest",
                                               HERE.parent / "gate_fixtures" / "conftest.py")
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
pytest_addoption = _base.pytest_addoption


def pytest_ignore_collect(collection_path, config):
    """Collect these files only when this directory is the rootdir (a gate self-test run)."""
    if config.rootpath != HERE:
        return True
    return None
