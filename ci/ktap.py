"""KTAP writer (Documentation/dev-tools/ktap.rst, kselftest.h flavour).

Top level: `TAP version 13`, header comments, plan `1..N` (N families), one
nested block per family, and kselftest's `# Totals:` line at the end.  Each
nested block is indented two spaces and has its own version line and plan.
"""
from __future__ import annotations

from ci.outcomes import ERROR, FAIL, FAILING, OUTCOMES, PASS, SKIP, XFAIL, XPASS, Result, tally

DETAIL_LINES = 20   # at most this many lines of failure text go into the KTAP as comments


def header(comments: dict[str, object]) -> str:
    """The top-level version line and one `# key: value` comment per item."""
    return "TAP version 13\n" + "".join(f"# {key}: {value}\n" for key, value in comments.items())


def plan(count: int) -> str:
    return f"1..{count}\n"


def comment(text: str, indent: str = "") -> str:
    """Every line of text as a KTAP diagnostic line."""
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in text.splitlines())


def result_line(number: int, name: str, outcome: str, reason: str = "") -> str:
    """One `ok|not ok N name # DIRECTIVE reason` line."""
    directive = {PASS: "", FAIL: "", SKIP: "SKIP", XFAIL: "XFAIL", XPASS: "XPASS", ERROR: "ERROR"}[outcome]
    status = "not ok" if outcome in FAILING else "ok"
    suffix = " # " + " ".join(filter(None, (directive, " ".join(reason.split())))) if directive else ""
    return f"{status} {number} {name}{suffix}\n"


def family_outcome(results: list[Result]) -> str:
    """A family fails if any test fails, is skipped if all tests skipped, else passes."""
    if any(r.outcome in FAILING for r in results):
        return FAIL
    if all(r.outcome == SKIP for r in results):
        return SKIP
    return PASS


def family_block(number: int, family: str, results: list[Result]) -> str:
    """The nested block of one family, followed by its own result line at top level."""
    ind = "  "
    out = [f"{ind}KTAP version 1\n", f"{ind}# Subtest: {family}\n", ind + plan(len(results))]
    for index, result in enumerate(results, 1):
        if result.outcome in FAILING and result.details:
            out.append(comment("\n".join(result.details.splitlines()[-DETAIL_LINES:]), ind))
        out.append(ind + result_line(index, result.name, result.outcome, result.reason))
    outcome = family_outcome(results)
    out.append(result_line(number, family, outcome, "" if outcome != SKIP else "all_skipped"))
    return "".join(out)


def totals_line(results) -> str:
    """kselftest.h's closing line: `# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N`."""
    counts = tally(results)
    return "# Totals: " + " ".join(f"{key}:{counts[key]}" for key in OUTCOMES) + "\n"


class FamilyEmitter:
    """Writes family blocks to a stream as they complete, numbering them from `first`."""

    def __init__(self, stream, first: int = 1):
        self.stream = stream
        self.next_number = first

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def family(self, family: str, results: list[Result]) -> None:
        self.write(family_block(self.next_number, family, results))
        self.next_number += 1
