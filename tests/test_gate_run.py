"""The gate end to end, as a subprocess, over the fake cases in tests/gate_fixtures.

Every run forces --profile stock (no kernel probe) and --fuzz-seconds 0, so the
outcome depends only on the fixtures: alpha all pass, beta pass/fail/skip/xfail,
gamma all skip.
"""
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import junitparser
import pytest
from tap.parser import Parser

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "gate_fixtures"
OUTPUT_FILES = {"junit.xml", "results.txt", "summary.md", "results.jsonl", "pytest.log"}


def run_gate(results: Path, *args, fixtures=True):
    """Run `python -m ci.gate` and return the CompletedProcess."""
    cmd = [sys.executable, "-m", "ci.gate", "--results", str(results), *args]
    if fixtures:
        cmd += ["--cases-dir", str(FIXTURES), "--profile", "stock", "--fuzz-seconds", "0"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def split_ktap(text: str) -> tuple[str, list[str]]:
    """Top-level lines, and each nested block dedented by two spaces."""
    top, blocks = [], []
    for line in text.splitlines():
        if line.startswith("  "):
            if line.strip() == "KTAP version 1":
                blocks.append([])
            blocks[-1].append(line[2:])
        else:
            top.append(line)
    return "\n".join(top) + "\n", ["\n".join(block) + "\n" for block in blocks]


def parse(text: str) -> dict:
    """tap.py's view of one TAP stream: version, plan, test lines, diagnostics."""
    parser = Parser()
    lines = []
    for raw in text.splitlines():
        line = parser.parse_line(raw)
        assert line.category != "unknown" or raw.startswith("KTAP version 1"), raw
        lines.append(line)
    return {"plans": [line.expected_tests for line in lines if line.category == "plan"],
            "tests": [line for line in lines if line.category == "test"],
            "version": [line.version for line in lines if line.category == "version"],
            "diagnostics": [line.text for line in lines if line.category == "diagnostic"]}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("full")
    return run_gate(results, "--seed", "1234"), results


def test_full_run_fails_because_beta_fails(full_run):
    proc, _ = full_run
    assert proc.returncode == 1, proc.stderr


def test_ktap_parses_with_a_tap_parser(full_run):
    proc, _ = full_run
    top, blocks = split_ktap(proc.stdout)
    outer = parse(top)
    assert outer["version"] == [13]
    names = [t.description for t in outer["tests"]]
    # case families in the order they completed, then the gate's own
    assert sorted(names[:3]) == ["alpha", "beta", "gamma"] and names[3:] == ["fuzz", "gate", "kernel_health"]
    assert outer["plans"] == [len(names)] and [t.number for t in outer["tests"]] == list(range(1, 7))
    assert [t.ok for t in outer["tests"] if t.description == "beta"] == [False]
    assert len(blocks) == 6
    for block in blocks:
        inner = parse(block)
        assert inner["plans"] == [len(inner["tests"])]
        assert [t.number for t in inner["tests"]] == list(range(1, len(inner["tests"]) + 1))


def test_ktap_lines_and_header(full_run):
    proc, _ = full_run
    out = proc.stdout
    assert out.startswith("TAP version 13\n")
    for comment in ("# suite: fd-replacement gate", "# seed: 1234", f"# kernel: {platform.release()}",
                    "# profile: stock (forced)"):
        assert comment in out
    for line in ("  ok 3 test_param[with_space_slash]", "  not ok 2 test_broken",
                 "  ok 3 test_needs_notif # SKIP no_user_notif", "  ok 4 test_expected_failure # XFAIL stale epoll entry",
                 "  ok 1 test_uring # SKIP io_uring_disabled", "  ok 2 test_root_only # SKIP not_root",
                 "  ok 1 smoke # SKIP disabled", "  # E       AssertionError: arithmetic is broken"):
        assert line + "\n" in out
    assert out.endswith("# Totals: pass:9 fail:1 xfail:1 xpass:0 skip:5 error:0\n")


def test_junit_has_cases_fuzz_and_properties(full_run):
    _, results = full_run
    xml = junitparser.JUnitXml.fromfile(str(results / "junit.xml"))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"cases", "fuzz", "gate", "kernel_health"}
    for suite in suites.values():
        props = {p.name: p.value for p in suite.properties()}
        assert props["kernel_release"] == platform.release()
        assert props["profile"] == "stock (forced)"
    cases = {case.name: case for case in suites["cases"]}
    assert len(cases) == 11
    assert isinstance(cases["test_broken"].result[0], junitparser.Failure)
    assert [r.message for r in cases["test_uring"].result] == ["io_uring_disabled"]
    assert [r.message for r in next(iter(suites["fuzz"])).result] == ["disabled"]


def test_results_txt(full_run):
    _, results = full_run
    lines = set((results / "results.txt").read_text().splitlines())
    assert {"alpha.test_param_with_space_slash_ pass", "beta.test_broken fail", "beta.test_needs_notif skip",
            "beta.test_expected_failure pass", "gamma.test_root_only skip", "fuzz.smoke skip",
            "kernel_health.kernel_log pass"} <= lines
    assert len(lines) == 11 + 1 + 2 + 2


def test_summary_md(full_run):
    _, results = full_run
    text = (results / "summary.md").read_text()
    assert text.startswith("# fd-replacement gate: FAIL")
    assert f"| kernel | {platform.release()} |" in text and "| profile | stock (forced) |" in text
    assert "| beta | 1 | 1 | 1 | 1 | test_broken |" in text
    assert "| alpha | 5 | 0 | 0 | 0 |  |" in text
    assert "### beta.test_broken: fail" in text


def test_only_final_files_are_left(full_run):
    _, results = full_run
    assert {p.name for p in results.iterdir()} == OUTPUT_FILES


@pytest.mark.parametrize("selection, convention, verdict, code", [
    ("alpha", "kselftest", "pass", 0), ("alpha", "automake", "pass", 0),
    ("gamma", "kselftest", "skip", 4), ("gamma", "fedora", "skip", 3), ("gamma", "automake", "skip", 77),
    ("beta", "fedora", "fail", 1), ("beta", "automake", "fail", 1),
])
def test_exit_conventions(tmp_path, selection, convention, verdict, code):
    proc = run_gate(tmp_path, "-k", selection, "--exit-convention", convention)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert f"| verdict | {verdict} (exit {code}, {convention} convention) |" in (tmp_path / "summary.md").read_text()


def test_known_failures_turn_failures_into_xfail(tmp_path):
    known = tmp_path / "known"
    known.write_text("beta.test_broken  kernel bug 1234\n")
    proc = run_gate(tmp_path / "out", "-k", "beta", "--known-failures", str(known))
    assert proc.returncode == 0, proc.stdout
    assert "  ok 2 test_broken # XFAIL kernel bug 1234\n" in proc.stdout
    assert "beta.test_broken pass" in (tmp_path / "out" / "results.txt").read_text()
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "out" / "junit.xml"))
    broken = [case for suite in xml for case in suite if case.name == "test_broken"]
    assert [r.message for r in broken[0].result] == ["kernel bug 1234"]


def test_stale_known_failure_is_reported_as_a_warning(tmp_path):
    """A --known-failures entry naming no case is a warning in the KTAP and in summary.md;
    the verdict stays."""
    known = tmp_path / "known"
    known.write_text("beta.test_broken  kernel bug 1234\nbeta.test_gone  fixed long ago\n")
    proc = run_gate(tmp_path / "out", "--known-failures", str(known))
    assert proc.returncode == 0, proc.stdout
    warning = "--known-failures names beta.test_gone, which is no case of this suite (stale entry?)"
    assert f"\n# warning: {warning}\n" in proc.stdout
    assert f"- {warning}\n" in (tmp_path / "out" / "summary.md").read_text()
    assert "test_broken, which" not in proc.stdout


def test_known_failure_that_passes_is_xpass_and_fails_the_gate(tmp_path):
    known = tmp_path / "known"
    known.write_text("alpha.test_one  was broken on 6.1\n")
    proc = run_gate(tmp_path / "out", "-k", "alpha", "--known-failures", str(known))
    assert proc.returncode == 1
    assert "  not ok 1 test_one # XPASS was broken on 6.1\n" in proc.stdout
    assert "test_one (xpass)" in (tmp_path / "out" / "summary.md").read_text()


BAD_INVOCATIONS = {
    "seed": ["--seed", "x"],
    "negative_fuzz": ["--fuzz-seconds", "-1"],
    "profile": ["--profile", "sideways"],
    "convention": ["--exit-convention", "tap"],
    "unknown_option": ["--frobnicate"],
    "bad_k": ["-k", "alpha and ("],
    "known_missing": ["--known-failures", "/nonexistent/known"],
    "cases_missing": ["--cases-dir", "/nonexistent/cases"],
    "k_matches_nothing": ["-k", "no_such_test"],
}


@pytest.mark.parametrize("args", BAD_INVOCATIONS.values(), ids=BAD_INVOCATIONS.keys())
def test_bad_invocation_exits_2_and_writes_nothing(tmp_path, args):
    results = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ci.gate", "--results", str(results),
                           "--cases-dir", str(FIXTURES), "--fuzz-seconds", "0", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("gate: error: ")
    assert proc.stdout == "" and not results.exists()


def test_bad_known_failures_line(tmp_path):
    known = tmp_path / "known"
    known.write_text("beta.test_broken  reason\njust_a_name\n")
    proc = run_gate(tmp_path / "out", "--known-failures", str(known))
    assert proc.returncode == 2 and "line 2" in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("make", ["file", "readonly_fs"])
def test_unwritable_results_directory(tmp_path, make):
    target = tmp_path / "a_file" if make == "file" else Path("/proc/gate-results")
    if make == "file":
        target.write_text("")
    proc = run_gate(target)
    assert proc.returncode == 2 and "not writable" in proc.stderr and proc.stdout == ""


def test_list_groups_cases_by_family(tmp_path):
    proc = run_gate(tmp_path / "out", "--list")
    assert proc.returncode == 0
    assert proc.stdout.startswith(textwrap.dedent("""\
        alpha
          test_one
          test_param[plain]
          test_param[with_space_slash]
        """))
    assert "gamma\n  test_uring\n  test_root_only\n" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_relative_results_directory_is_the_callers(tmp_path):
    """pytest and the fuzzer run in the suite's directory; the results still land where the
    caller is."""
    proc = subprocess.run([sys.executable, "-m", "ci.gate", "--results", "rel", "--cases-dir", str(FIXTURES),
                           "--profile", "stock", "--fuzz-seconds", "0", "-k", "alpha"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONSAFEPATH": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert OUTPUT_FILES <= {p.name for p in (tmp_path / "rel").iterdir()}
    assert not (REPO / "rel").exists()


def test_help_names_outputs_exit_codes_and_the_bundle():
    proc = subprocess.run([sys.executable, "-m", "ci.gate", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ci/gate ")
    for text in ("--results DIR", "exit status:", "4 all skipped", "2 usage error", "KSFT_MACHINE_SLOW",
                 "ci/bundle"):
        assert text in proc.stdout, text
    proc = subprocess.run([sys.executable, "-m", "ci.gate", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "FDR_GATE_PROG": "run-gate"})
    assert proc.stdout.startswith("usage: run-gate ")


def test_pytest_dying_before_collection_still_gives_a_plan(tmp_path):
    """An INTERNALERROR before the plugin's plan: the gate writes the plan, and gate.pytest
    errors."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "conftest.py").write_text(textwrap.dedent("""\
        def pytest_addoption(parser):
            parser.addoption("--fdr-profile")

        def pytest_collection(session):
            raise RuntimeError("boom")
        """))
    (cases / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = run_gate(tmp_path / "out", "--cases-dir", str(cases), "--profile", "stock", "--fuzz-seconds", "0",
                    fixtures=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    top, blocks = split_ktap(proc.stdout)
    outer = parse(top)
    assert outer["plans"] == [3] and [t.description for t in outer["tests"]] == ["fuzz", "gate", "kernel_health"]
    assert "  not ok 2 pytest # ERROR exit_3\n" in proc.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} <= OUTPUT_FILES


def test_a_family_cut_off_by_the_limit_is_reported_with_its_cases(tmp_path):
    """pytest killed at the gate's limit: the family that never completed still appears, its
    finished case with its verdict and the unfinished one as ERROR timeout, and gate.pytest
    names the real (scaled) limit."""
    results = tmp_path / "out"
    cmd = [sys.executable, "-m", "ci.gate", "--results", str(results), "--cases-dir",
           str(REPO / "tests" / "gate_fixtures_hang"), "--profile", "stock", "--fuzz-seconds", "0",
           "--timeout", "4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FDR_FIXTURE_HANG": "1", "FDR_TIMEOUT_SCALE": "2"})
    assert proc.returncode == 1, proc.stderr
    top, blocks = split_ktap(proc.stdout)
    outer = parse(top)
    assert [t.description for t in outer["tests"]] == ["delta", "fuzz", "gate", "kernel_health"]
    assert outer["plans"] == [4]
    assert "  ok 1 test_quick\n" in proc.stdout, proc.stdout
    assert "  # not reported when pytest was killed after the 8 s limit\n" \
           "  not ok 2 test_hangs # ERROR timeout\n" in proc.stdout, proc.stdout
    summary = (results / "summary.md").read_text()
    assert "killed after its 8 s limit" in summary
    assert "| delta | 1 | 1 |" in summary
