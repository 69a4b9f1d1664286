"""The gate under a CI lab's timeout and a subreaper init (tests/subreaper_run.py runs it).

The cases are made up here: a family that passes at once, and one that sleeps until
stopped; their conftest starts the executor's zygote in pytest and in every worker,
as the suite's own does.  Every run's processes are bounded by the harness.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HARNESS = Path(__file__).resolve().parent / "subreaper_run.py"
CONFTEST = """\
    def pytest_addoption(parser):
        parser.addoption("--fdr-profile")

    def pytest_configure(config):
        from native.executor import start_zygote
        start_zygote()
    """


def make_cases(root: Path, sleep: int) -> Path:
    cases = root / "cases"
    cases.mkdir()
    (cases / "pytest.ini").write_text("[pytest]\n")
    (cases / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (cases / "test_quick.py").write_text("def test_quick():\n    pass\n")
    (cases / "test_slow.py").write_text(f"import time\n\ndef test_slow():\n    time.sleep({sleep})\n")
    return cases


def under_subreaper(tmp_path: Path, sig: str, *gate_args: str, sleep: int = 120,
                    trigger: str = "# Subtest: quick") -> dict:
    """Run the gate under the harness, signalled once `trigger` is in its KTAP; its report."""
    cmd = [sys.executable, str(HARNESS), str(tmp_path / "ktap"), sig, trigger, "--",
           sys.executable, "-m", "ci.gate", "--results", str(tmp_path / "out"), "--profile", "stock",
           "--cases-dir", str(make_cases(tmp_path, sleep)), *gate_args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr
    return json.loads(stdout) | {"stderr": stderr}


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_stops_the_whole_run(tmp_path, sig):
    """A signal stops the gate and everything it started at once: exit 128+N, one line,
    KTAP ending in `Bail out!` and the totals, nothing written or alive after exit."""
    report = under_subreaper(tmp_path, sig, "--fuzz-seconds", "0")
    assert report["triggered"]
    assert report["rc"] == 128 + getattr(signal, sig)
    assert report["left"] == []
    assert report["size_after"] == report["size_at_exit"]
    ktap = (tmp_path / "ktap").read_text()
    assert ktap.endswith(f"\nBail out! interrupted by {sig}\n"
                         "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n"), ktap
    assert report["stderr"] == f"gate: interrupted by {sig}\n"


def test_interrupted_run_replaces_the_previous_results(tmp_path):
    """An interrupted run leaves no earlier run's files: summary.md says INTERRUPTED, with
    its seed."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.md", "results.txt", "junit.xml"):
        (out / name).write_text("# fd-replacement gate: PASS\n| seed | 1 |\n")
    (out / "fuzz").mkdir()
    report = under_subreaper(tmp_path, "SIGTERM", "--fuzz-seconds", "0", "--seed", "4242")
    assert report["rc"] == 128 + signal.SIGTERM
    assert sorted(p.name for p in out.iterdir()) == ["pytest.log", "results.jsonl", "summary.md"]
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# fd-replacement gate: INTERRUPTED (SIGTERM)\n")
    assert "| seed | 4242 |" in summary


def test_a_run_leaves_no_process_to_its_subreaper(tmp_path):
    """Under a subreaper init, a whole run (pytest, workers, zygotes, the fuzzer) leaves no process,
    alive or zombie, and no temporary directory outside its results."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env_args = ["env", f"TMPDIR={tmp}"]
    cmd = [sys.executable, str(HARNESS), str(tmp_path / "ktap"), "none", "", "--", *env_args,
           sys.executable, "-m", "ci.gate", "--results", str(tmp_path / "out"), "--profile", "stock",
           "--cases-dir", str(make_cases(tmp_path, 0)), "--fuzz-seconds", "1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    report = json.loads(proc.stdout)
    assert report["rc"] == 0, (tmp_path / "out" / "summary.md").read_text()
    assert report["left"] == []
    assert list(tmp.iterdir()) == []
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_sigkill_leaves_nothing_writing(tmp_path):
    """A gate killed outright (a lab's SIGKILL) takes its pytest along: nothing writes to its
    stdout after it died, and no process of the run is left 2 s later."""
    report = under_subreaper(tmp_path, "SIGKILL", "--fuzz-seconds", "0")
    assert report["rc"] == -signal.SIGKILL
    assert report["size_after"] == report["size_at_exit"]
    assert [p for p in report["left"] if not p.endswith(" Z")] == []    # zombies: the init's to reap


def test_signal_during_the_fuzz_smoke(tmp_path):
    """A signal after the cases, while the fuzz smoke runs, ends the fuzzer and its
    processes too."""
    report = under_subreaper(tmp_path, "SIGTERM", "--fuzz-seconds", "60", sleep=0, trigger="# Subtest: slow")
    assert report["rc"] == 128 + signal.SIGTERM
    assert report["left"] == []
    assert report["size_after"] == report["size_at_exit"]
    assert (tmp_path / "ktap").read_text().endswith(
        "\nBail out! interrupted by SIGTERM\n# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0\n")
