"""The fuzzer on a machine lacking a feature, and with broken state in its output directory."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from native import probes

ROOT = Path(__file__).resolve().parent.parent


def fuzz_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_no_io_uring_steps_where_io_uring_cannot_run(monkeypatch, tmp_path, capsys):
    """Without liburing the campaign generates no io_uring step, passes, and says what it
    skipped."""
    from fuzz import __main__ as cli
    from fuzz.generate import RandomChooser, generate
    from native.program import URING_OPS
    without = {**probes.features(), "liburing": False}
    monkeypatch.setattr(probes, "features", lambda: without)
    ops = {s.op for i in range(300) for s in generate(RandomChooser(f"u:{i}")).steps}
    assert not ops & set(URING_OPS)
    assert cli.main(["--seconds", "2", "--out", str(tmp_path), "--no-hypothesis"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(" skipped: io_uring steps (no_liburing)"), line


def test_io_uring_steps_are_generated_where_they_run():
    """Where io_uring works, the generator keeps producing io_uring steps."""
    from fuzz.generate import RandomChooser, generate
    from native.program import URING_OPS
    if probes.missing(probes.URING_FEATURES):
        pytest.skip(probes.missing(probes.URING_FEATURES))
    ops = {s.op for i in range(300) for s in generate(RandomChooser(f"u:{i}")).steps}
    assert ops & set(URING_OPS) == set(URING_OPS)


@pytest.mark.parametrize("state", ["corpus_not_utf8", "corpus_is_a_directory", "database_is_a_file"])
def test_broken_state_is_bad_input(tmp_path, state):
    """A corrupt corpus.txt or example database exits 2 with one line naming the file,
    before fuzzing."""
    name = {"corpus_not_utf8": "corpus.txt", "corpus_is_a_directory": "corpus.txt",
            "database_is_a_file": "hypothesis"}[state]
    path = tmp_path / name
    if state == "corpus_is_a_directory":
        path.mkdir()
    else:
        path.write_bytes(os.urandom(64) + b"\xff\xfe")
    r = fuzz_cli("--seconds", "1", "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"fuzz: --out: {path}")


def test_jobs_has_an_upper_bound(tmp_path):
    """--jobs above the bound is refused (exit 2) rather than forking thousands of workers."""
    r = fuzz_cli("--jobs", "100000", "--out", str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith("fuzz: --seconds must be > 0, --jobs 1..64")


def test_campaign_leaves_no_process_to_its_subreaper(tmp_path):
    """Run under a subreaper init, a campaign waits for every process it started (its zygote
    too)."""
    import json
    harness = ROOT / "tests" / "subreaper_run.py"
    r = subprocess.run([sys.executable, str(harness), str(tmp_path / "stdout"), "none", "", "--",
                        sys.executable, "-m", "fuzz", "--seconds", "1", "--no-hypothesis",
                        "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    report = json.loads(r.stdout)
    assert report["rc"] == 0 and report["left"] == []


def test_campaign_with_an_executor_built_without_liburing(tmp_path):
    """A copy of the suite built with FDR_NO_LIBURING=1: the campaign passes, generating no
    io_uring step, and says so."""
    import shutil
    copy = tmp_path / "suite"
    for top in ("native", "fuzz"):
        shutil.copytree(ROOT / top, copy / top, ignore=shutil.ignore_patterns("_*.so", "_*.c", "_*.o",
                                                                             "fdr-zygote*", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    env = {**os.environ, "FDR_NO_LIBURING": "1", "FDR_NO_ZYGOTE": "1", "PYTHONPATH": str(copy),
           "PYTHONSAFEPATH": "1"}
    subprocess.run([sys.executable, "-c", "from native.build import _compile, make_builder\n"
                    "_compile(make_builder())"], cwd=copy, env=env, check=True, timeout=300,
                   capture_output=True)
    r = subprocess.run([sys.executable, "-m", "fuzz", "--seconds", "2", "--no-hypothesis",
                        "--out", str(tmp_path / "out")], cwd=copy, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.endswith(" skipped: io_uring steps (no_liburing)") and " uring_setup=" not in line, line
