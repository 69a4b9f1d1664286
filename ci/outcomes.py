"""Per-test results as the gate sees them: one record per test, whatever produced it.

A Result comes from a pytest item (written as a JSON line by ci.ktap_plugin) or
from a synthetic check of the gate (fuzz smoke, profile, kernel health).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

PASS, FAIL, SKIP, XFAIL, XPASS, ERROR = "pass", "fail", "skip", "xfail", "xpass", "error"
OUTCOMES = (PASS, FAIL, XFAIL, XPASS, SKIP, ERROR)   # the order of kselftest's Totals line
# XPASS counts as a failure: a listed known failure that passes means the list is stale
# (kselftest's ksft_finished() and pytest's xfail_strict agree).
FAILING = (FAIL, XPASS, ERROR)

_KTAP_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\[\]-]")


def ktap_name(name: str) -> str:
    """A test name fit for a KTAP line: characters outside [A-Za-z0-9_.:[]-] become '_'."""
    return _KTAP_UNSAFE.sub("_", name) or "_"


def family_of(path: str) -> str:
    """The family of a case file: 'cases/test_epoll_basic.py' -> 'epoll_basic'."""
    return Path(path).stem.removeprefix("test_")


@dataclass
class Result:
    """The outcome of one test; `reason` is the skip token or the xfail/xpass reason."""
    family: str
    name: str                 # KTAP-safe test name (function name plus param id)
    outcome: str              # one of OUTCOMES
    reason: str = ""
    duration: float = 0.0
    details: str = ""         # failure text (pytest longrepr, kernel log lines, ...)
    nodeid: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def read_jsonl(path: Path) -> list[Result]:
    """Results from a JSON lines file written by ci.ktap_plugin; a missing file has none."""
    if not path.exists():
        return []
    return [Result(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def tally(results) -> dict[str, int]:
    """Counts per outcome, every outcome present (zero when absent)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts


def parse_known_failures(text: str) -> dict[str, str]:
    """'family.test_name  reason' lines -> {'family.test_name': reason}.

    Blank lines and '#' comments are ignored; a line needs a name and a reason.
    Raises ValueError naming the first bad line.
    """
    known = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or "." not in parts[0]:
            raise ValueError(f"line {number}: expected 'family.test_name  reason', got {line!r}")
        known[parts[0]] = parts[1].strip()
    return known
