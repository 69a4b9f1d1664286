"""A low RLIMIT_NOFILE: fd numbers come from the limit; too low gives a skip token or exit
2, never a FAIL."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def limited(limit: int, code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run Python code in the suite's directory with RLIMIT_NOFILE set to `limit` (soft and
    hard)."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_race_runs_under_a_limit_of_100():
    """With RLIMIT_NOFILE 100 the race engine puts its fd below the limit and the race runs
    clean."""
    proc = limited(100, "from native.race import run_race\n"
                        "r = run_race('two_dup2', 200)\n"
                        "print(r.iterations, r.violations, sum(r.counts.values()))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "200 0 200\n"


def test_race_skips_with_fd_limit_when_there_is_no_room():
    """Below the race engine's room the race is skipped with the token fd_limit."""
    proc = limited(24, "from native import probes\nfrom native.race import needs\n"
                       "print(probes.missing(needs('two_dup2')))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "fd_limit\n"


def test_gate_refuses_a_limit_too_low_to_run(tmp_path):
    """Below what pytest needs the gate says so in one line, exit 2, writing nothing."""
    results = tmp_path / "out"
    proc = limited(16, "import runpy, sys\n"
                       f"sys.argv = ['ci/gate', '--results', {str(results)!r}, '--fuzz-seconds', '0']\n"
                       "runpy.run_module('ci.gate', run_name='__main__')")
    assert proc.returncode == 2
    assert proc.stderr == ("gate: error: the open-file limit (ulimit -n) is 16, below the 32 the run "
                           "needs: raise it\n")
    assert proc.stdout == "" and not results.exists()
