"""The gate's files for machines and people: results.txt, summary.md, junit.xml.

Each function returns text; ci.gate writes it (to a temporary name, renamed at the end).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import junit_xml

from ci.outcomes import ERROR, FAIL, FAILING, PASS, SKIP, XFAIL, XPASS, tally

_LAVA_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# results.txt knows pass, fail and skip: a known failure passes, a stale one fails.
LAVA_RESULT = {PASS: "pass", XFAIL: "pass", SKIP: "skip", FAIL: "fail", XPASS: "fail", ERROR: "fail"}


def lava_name(family: str, name: str) -> str:
    """'beta', 'test_x[a b]' -> 'beta.test_x_a_b_' (characters outside [A-Za-z0-9_.-] become
    '_')."""
    return _LAVA_UNSAFE.sub("_", f"{family}.{name}")


def results_txt(results) -> str:
    """LAVA-style `name pass|fail|skip` lines, one per test."""
    return "".join(f"{lava_name(r.family, r.name)} {LAVA_RESULT[r.outcome]}\n" for r in results)


def by_family(results) -> dict[str, list]:
    """Results grouped by family, families in first-seen order."""
    groups: dict[str, list] = {}
    for result in results:
        groups.setdefault(result.family, []).append(result)
    return groups


def summary_md(results, info: dict[str, object], verdict: str, notes=()) -> str:
    """The page a person reads first: run facts, a per-family table, then each failure's text."""
    counts = tally(results)
    out = [f"# fd-replacement gate: {verdict.upper()}\n\n", "| | |\n|---|---|\n"]
    out += [f"| {key} | {value} |\n" for key, value in info.items()]
    out.append("| totals | " + " ".join(f"{k}:{v}" for k, v in counts.items()) + " |\n")
    out += ["\n"] + [f"- {note}\n" for note in notes]
    out.append("\n| family | pass | fail | skip | xfail | failing tests |\n|---|---|---|---|---|---|\n")
    for family, group in by_family(results).items():
        c = tally(group)
        failing = ", ".join(r.name if r.outcome == FAIL else f"{r.name} ({r.outcome})"
                            for r in group if r.outcome in FAILING)
        out.append(f"| {family} | {c[PASS]} | {c[FAIL] + c[XPASS] + c[ERROR]} | {c[SKIP]} | "
                   f"{c[XFAIL]} | {failing} |\n")
    failures = [r for r in results if r.outcome in FAILING]
    if failures:
        out.append("\n## Failures\n")
    for r in failures:
        reason = f" ({r.reason})" if r.reason else ""
        out.append(f"\n### {r.family}.{r.name}: {r.outcome}{reason}\n\n```\n{r.details.strip()}\n```\n")
    return "".join(out)


def junit_suite(family: str, results, properties: dict[str, object]) -> junit_xml.TestSuite:
    """A JUnit testsuite (junit-xml package) for one of the gate's own families."""
    cases = []
    for r in results:
        case = junit_xml.TestCase(r.name, classname=family, elapsed_sec=r.duration)
        if r.outcome == SKIP:
            case.add_skipped_info(r.reason)
        elif r.outcome == ERROR:
            case.add_error_info(r.reason or "error", r.details)
        elif r.outcome in FAILING:
            case.add_failure_info(r.reason or r.outcome, r.details)
        cases.append(case)
    return junit_xml.TestSuite(family, cases, properties={k: str(v) for k, v in properties.items()})


def junit_xml_text(pytest_xml: str | None, extra_results, properties: dict[str, object]) -> str:
    """pytest's --junitxml report with `properties` added to every testsuite, plus one
    testsuite per family of `extra_results` (the fuzz smoke and the gate's checks)."""
    root = ET.fromstring(pytest_xml) if pytest_xml else ET.Element("testsuites")
    if root.tag == "testsuite":
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        root = wrapper
    for suite in root.iter("testsuite"):
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        for key, value in properties.items():
            ET.SubElement(props, "property", name=key, value=str(value))
    suites = [junit_suite(family, group, properties) for family, group in by_family(extra_results).items()]
    if suites:
        root.extend(ET.fromstring(junit_xml.to_xml_report_string(suites)).iter("testsuite"))
    for element in root.iter():                # junit-xml pretty-prints; re-indent the whole
        if element.text is not None and not element.text.strip():
            element.text = None
        element.tail = None
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
