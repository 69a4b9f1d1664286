"""Self-tests of the gate's pure parts: KTAP lines, health scanner, exit codes, reports."""
import json
import os
import sys
import types
import xml.etree.ElementTree as ET

import pytest
from tap.parser import Parser

from ci import exitcodes, gate, health, ktap, results
from ci.outcomes import (ERROR, FAIL, PASS, SKIP, XFAIL, XPASS, Result, family_of, ktap_name,
                         parse_known_failures, tally)

SAMPLE_LOG = """\
[  100.000001] epoll: loaded
[  101.123456] ------------[ cut here ]------------
[  101.123457] WARNING: CPU: 1 PID: 4242 at fs/eventpoll.c:1234 ep_remove+0x5/0x10
[  101.123458] Modules linked in: kvm
[  102.000000] BUG: KASAN: slab-use-after-free in ep_poll_callback+0x1c/0x40
[  103.000000] WARNING: possible circular locking dependency detected
[  104.000000] INFO: possible recursive locking detected
[  105.000000] INFO: task fdr-target:999 blocked for more than 120 seconds.
[  105.000001] hung_task: some detail
[  106.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008
[  107.000000] audit: type=1326 audit(1.0:2): seccomp user notification
[  108.000000] a WARNING without the colon, and warnings: plural
"""


def test_scan_log_finds_every_kind_of_splat():
    bad = health.scan_log(SAMPLE_LOG)
    assert [line.split("] ", 1)[1][:16] for line in bad] == [
        "WARNING: CPU: 1 ", "BUG: KASAN: slab", "WARNING: possibl", "INFO: possible r",
        "INFO: task fdr-t", "hung_task: some ", "BUG: kernel NULL"]


def test_scan_log_clean_text():
    assert health.scan_log("[ 1.0] eth0: link up\n[ 2.0] random: crng init done\n") == []
    assert health.scan_log("") == []


def test_kmsg_record_text():
    assert health.kmsg_text("4,1234,5678,-;WARNING: CPU: 0 PID: 1\n SUBSYSTEM=x\n") == "WARNING: CPU: 0 PID: 1"
    assert health.kmsg_text("no separator") == "no separator"


def test_taint_letters():
    assert health.taint_letters(1 << 9) == "W"
    assert health.taint_letters(1 | 1 << 12) == "P O"
    assert health.taint_letters(1 << 40) == "bit40"


def test_health_results():
    clean = health.health_results(0, 0, "[ 1.0] all fine", None)
    assert [(r.name, r.outcome) for r in clean] == [("taint", PASS), ("kernel_log", PASS)]
    bad = health.health_results(0, 1 << 9, SAMPLE_LOG, None)
    assert [r.outcome for r in bad] == [FAIL, FAIL]
    assert "new flags W" in bad[0].details and "KASAN" in bad[1].details
    assert health.health_results(512, 512, "", None)[0].outcome == PASS   # old taint is not new
    unreadable = health.health_results(None, None, None, "cannot read /dev/kmsg: Permission denied")
    assert [(r.outcome, r.reason) for r in unreadable] == [(SKIP, "no_taint_file"), (SKIP, "no_kernel_log")]


def test_unreadable_kernel_log_is_reported_not_raised():
    log = health.KernelLog("/nonexistent/kmsg")
    assert log.error.startswith("cannot read /nonexistent/kmsg") and log.read_new() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="not_root")
def test_kernel_log_reads_only_new_lines():
    log = health.KernelLog()
    assert log.error is None
    marker = f"ci-gate self-test marker {os.getpid()}"
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"<6>{marker}\n")
    try:
        assert marker in log.read_new()
        assert marker not in log.read_new()
    finally:
        log.close()


def test_names():
    assert ktap_name("test_x[with space/slash]") == "test_x[with_space_slash]"
    assert ktap_name("test_y[a:b-c.d]") == "test_y[a:b-c.d]"
    assert family_of("cases/test_epoll_basic.py") == "epoll_basic"
    assert results.lava_name("beta", "test_x[a b]") == "beta.test_x_a_b_"


def test_ktap_result_lines():
    assert ktap.result_line(1, "t", PASS) == "ok 1 t\n"
    assert ktap.result_line(2, "t", FAIL) == "not ok 2 t\n"
    assert ktap.result_line(3, "t", SKIP, "no_user_notif") == "ok 3 t # SKIP no_user_notif\n"
    assert ktap.result_line(4, "t", XFAIL, "stale\nentry") == "ok 4 t # XFAIL stale entry\n"
    assert ktap.result_line(5, "t", XPASS, "r") == "not ok 5 t # XPASS r\n"
    assert ktap.result_line(6, "t", ERROR) == "not ok 6 t # ERROR\n"


def test_family_block_parses_as_tap():
    block = ktap.family_block(7, "fam", [Result("fam", "a", PASS), Result("fam", "b", FAIL, details="E boom"),
                                         Result("fam", "c", SKIP, "not_root")])
    lines = block.splitlines()
    assert lines[-1] == "not ok 7 fam"
    assert all(line.startswith("  ") for line in lines[:-1])
    parsed = list(Parser().parse_text("\n".join(line[2:] for line in lines[:-1]) + "\n"))
    tests = [p for p in parsed if p.category == "test"]
    assert [p.category for p in parsed if p.category == "plan"] == ["plan"]
    assert [(t.number, t.ok, t.skip) for t in tests] == [(1, True, False), (2, False, False), (3, True, True)]
    assert "# E boom" in block


def test_all_skipped_family_and_totals():
    assert ktap.family_block(1, "f", [Result("f", "a", SKIP, "x")]).endswith("ok 1 f # SKIP all_skipped\n")
    everything = [Result("f", "a", PASS), Result("f", "b", XFAIL), Result("f", "c", XPASS), Result("f", "d", ERROR)]
    assert ktap.totals_line(everything) == "# Totals: pass:1 fail:0 xfail:1 xpass:1 skip:0 error:1\n"
    assert tally([]) == dict.fromkeys(("pass", "fail", "xfail", "xpass", "skip", "error"), 0)


@pytest.mark.parametrize("outcomes, expected", [
    ([PASS, SKIP], "pass"),
    ([XFAIL, SKIP], "pass"),
    ([PASS, FAIL], "fail"),
    ([PASS, XPASS], "fail"),
    ([PASS, ERROR], "fail"),
    ([SKIP, SKIP], "skip"),
    ([], "skip"),
])
def test_verdict(outcomes, expected):
    assert exitcodes.verdict([Result("f", str(i), o) for i, o in enumerate(outcomes)]) == expected


def test_verdict_ignores_passing_checks_but_not_failing_ones():
    cases = [Result("f", "a", SKIP, "not_root")]
    assert exitcodes.verdict(cases + [Result("gate", "x", PASS)], ("gate",)) == "skip"
    assert exitcodes.verdict(cases + [Result("gate", "x", FAIL)], ("gate",)) == "fail"


@pytest.mark.parametrize("convention, codes", [
    ("kselftest", (0, 1, 4)), ("fedora", (0, 1, 3)), ("automake", (0, 1, 77))])
def test_exit_codes(convention, codes):
    assert tuple(exitcodes.exit_code(v, convention) for v in ("pass", "fail", "skip")) == codes


def test_known_failures_file():
    text = "# comment\n\nbeta.test_broken   arithmetic is broken\nalpha.test_x[p_1] flaky\n"
    assert parse_known_failures(text) == {"beta.test_broken": "arithmetic is broken",
                                          "alpha.test_x[p_1]": "flaky"}
    with pytest.raises(ValueError, match="line 2"):
        parse_known_failures("a.b reason\nno_reason_here\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_known_failures("nofamily reason\n")


def test_junit_gets_properties_and_extra_suites():
    pytest_xml = ('<testsuites><testsuite name="cases" tests="1">'
                  '<testcase classname="test_a" name="test_one"/></testsuite></testsuites>')
    extra = [Result("fuzz", "smoke", SKIP, "no_fuzzer"), Result("kernel_health", "kernel_log", FAIL,
                                                                 details="BUG: x")]
    root = ET.fromstring(results.junit_xml_text(pytest_xml, extra, {"kernel_release": "6.1.0", "profile": "stock"}))
    assert [s.get("name") for s in root.iter("testsuite")] == ["cases", "fuzz", "kernel_health"]
    for suite in root.iter("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props == {"kernel_release": "6.1.0", "profile": "stock"}
    assert root.find(".//testcase[@name='kernel_log']/failure").text == "BUG: x"
    assert root.find(".//testcase[@name='smoke']/skipped").get("message") == "no_fuzzer"


def test_summary_lists_failing_tests():
    rs = [Result("a", "t1", PASS), Result("a", "t2", FAIL, details="boom"), Result("b", "t3", XPASS, "stale")]
    text = results.summary_md(rs, {"kernel": "6.1.0", "profile": "stock"}, "fail", ["a note"])
    assert "| kernel | 6.1.0 |" in text and "- a note" in text
    assert "| a | 1 | 1 | 0 | 0 | t2 |" in text
    assert "| b | 0 | 1 | 0 | 0 | t3 (xpass) |" in text
    assert "### a.t2: fail" in text and "boom" in text


def test_results_txt():
    rs = [Result("a", "t[x y]", PASS), Result("a", "u", XFAIL), Result("b", "v", XPASS), Result("b", "w", SKIP)]
    assert results.results_txt(rs) == "a.t_x_y_ pass\na.u pass\nb.v fail\nb.w skip\n"


def test_profile_detection(monkeypatch):
    assert gate.detect_profile("follow") == ("follow (forced)", Result("gate", "profile", SKIP, "forced"))
    monkeypatch.setitem(sys.modules, "native.probes", None)          # import fails
    name, result = gate.detect_profile(None)
    assert name.startswith("unknown") and (result.outcome, result.reason) == (SKIP, "no_probe")
    fake = types.ModuleType("native.probes")
    fake.detect_profile = lambda: (None, "step 3: wait -> []")
    monkeypatch.setitem(sys.modules, "native.probes", fake)
    name, result = gate.detect_profile(None)
    assert (name, result.outcome) == ("none", FAIL) and "step 3" in result.details
    fake.detect_profile = lambda: ("stock", "")
    assert gate.detect_profile(None) == ("stock (detected)", Result("gate", "profile", PASS))
    fake.missing = lambda needed: "no_user_notif"
    assert gate.detect_profile(None) == ("none (no_user_notif)", Result("gate", "profile", SKIP, "no_user_notif"))
    fake.missing = lambda needed: 1 / 0
    assert gate.detect_profile(None)[1].outcome == ERROR


def test_fuzz_smoke(tmp_path):
    env = dict(os.environ, FDR_TIMEOUT_SCALE="1")
    assert gate.run_fuzz(0, 1, None, env, tmp_path).reason == "disabled"
    assert gate.run_fuzz(5, 1, None, env, tmp_path).reason == "no_fuzzer"
    (tmp_path / "fuzz").mkdir()
    (tmp_path / "fuzz" / "__init__.py").write_text("")   # a regular package, found before the suite's
    main = tmp_path / "fuzz" / "__main__.py"
    main.write_text("import sys\nassert sys.argv[1:] == ['--seconds', '1', '--seed', '7', '--shrink-seconds', '30', "
                    "'--profile', 'stock']\n")
    assert gate.run_fuzz(1, 7, "stock", env, tmp_path).outcome == PASS
    main.write_text("raise SystemExit('divergence at step 4')\n")
    failed = gate.run_fuzz(1, 7, None, env, tmp_path)
    assert failed.outcome == FAIL and "divergence at step 4" in failed.details


def test_timeout_scale_and_settings():
    assert gate.timeout_scale({"KSFT_MACHINE_SLOW": "yes"}) == gate.SLOW_SCALE
    assert gate.timeout_scale({}) == 1
    assert gate.timeout_scale({"FDR_TIMEOUT_SCALE": "3"}) == 3
    assert int(gate.read_settings()["timeout"]) > 0


def test_kernel_config_fragment_names_the_needed_options():
    lines = (gate.REPO / "ci" / "config").read_text().split()
    assert {line.split("=")[0] for line in lines} >= {
        "CONFIG_SECCOMP", "CONFIG_SECCOMP_FILTER", "CONFIG_EPOLL", "CONFIG_SIGNALFD", "CONFIG_TIMERFD",
        "CONFIG_EVENTFD", "CONFIG_CHECKPOINT_RESTORE", "CONFIG_IO_URING", "CONFIG_UNIX"}
    assert all(line.endswith("=y") for line in lines)



def fake_report(nodeid, when, outcome="passed", longrepr=None):
    """Just enough of a pytest TestReport for KtapReporter."""
    return types.SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, passed=outcome == "passed",
                                 failed=outcome == "failed", skipped=outcome == "skipped", duration=0.5,
                                 longrepr=longrepr, longreprtext=str(longrepr or ""))


def test_plugin_writes_a_family_as_soon_as_it_completes(tmp_path):
    from ci.ktap_plugin import KtapReporter
    read_fd, write_fd = os.pipe()
    options = {"ktap_fd": write_fd, "ktap_jsonl": str(tmp_path / "r.jsonl"), "ktap_extra_families": 3}
    config = types.SimpleNamespace(getoption=options.get,
                                   pluginmanager=types.SimpleNamespace(hasplugin=lambda name: True))
    reporter = KtapReporter(config)
    reporter.pytest_xdist_node_collection_finished(None, ["test_a.py::t1", "test_b.py::t2", "test_a.py::t3"])
    for nodeid, call in (("test_a.py::t3", "passed"), ("test_b.py::t2", "failed")):
        for when, outcome in (("setup", "passed"), ("call", call), ("teardown", "passed")):
            reporter.pytest_runtest_logreport(fake_report(nodeid, when, outcome))
    reporter.pytest_runtest_logreport(fake_report("test_a.py::t1", "setup", "skipped", ("f", 1, "Skipped: not_root")))
    assert os.read(read_fd, 65536).decode() == "1..5\n" + ktap.family_block(
        1, "b", [Result("b", "t2", FAIL)])                   # b is complete, a still waits for t1
    reporter.pytest_runtest_logreport(fake_report("test_a.py::t1", "teardown"))
    reporter.pytest_sessionfinish(None)
    assert os.read(read_fd, 65536).decode().endswith("ok 2 a\n")
    os.close(read_fd)
    os.close(write_fd)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["t2", "t1", "t3"]     # collection order within a
    assert json.loads(lines[1])["reason"] == "not_root" and json.loads(lines[0])["duration"] == 1.5


def test_installed_without_conftest_is_a_usage_error(tmp_path, monkeypatch, capsys):
    """A pip-installed suite (cases/ but no conftest.py beside it) says so in one line, exit 2."""
    (tmp_path / "cases").mkdir()
    monkeypatch.setattr(gate, "REPO", tmp_path)
    assert gate.main(["--results", str(tmp_path / "out"), "--fuzz-seconds", "0"]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "conftest.py" in err and not (tmp_path / "out").exists()
