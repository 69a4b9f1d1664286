"""The offline bundle (ci/bundle) end to end: build it, extract it into an empty
directory and run its `run-gate` the way a test machine would, with a PATH
holding no compiler and no venv; then, as root, once more as `nobody` with
Debian's own python3 (the unprivileged run: root-only cases skip by token,
nothing errors, the kernel log's absence is a skip).
"""
from __future__ import annotations

import os
import platform
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

import pytest

from native.probes import SKIP_TOKENS

REPO = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
NAME = f"fd-replace-gate-{VERSION}-{platform.machine()}"
# Skip reasons the gate may give besides the feature tokens: its own synthetic tests'.
GATE_SKIPS = {"disabled", "all_skipped", "no_kernel_log", "no_taint_file", "forced", "no_fuzzer"}
TOOLS = ("sh", "env", "uname")                     # all run-gate needs besides python3
DEBIAN_PYTHON = Path("/usr/bin/python3")


def bundle_python() -> Path:
    """The interpreter the bundle was built with, symlinks resolved (the venv's base python)."""
    venv = REPO / ".venv" / "bin" / "python"
    return Path(os.path.realpath(venv if venv.exists() else sys.executable))


def extract(tarball: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return into / NAME


def bare_bin(directory: Path, python: Path) -> Path:
    """A PATH directory with python3 and the few tools run-gate uses, and nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "python3").symlink_to(python)
    for tool in TOOLS:
        (directory / tool).symlink_to(shutil.which(tool))
    for compiler in ("gcc", "cc", "clang"):
        assert shutil.which(compiler, path=str(directory)) is None
    return directory


def bare_env(path: Path, home: Path) -> dict[str, str]:
    """No PYTHONPATH, no VIRTUAL_ENV, no compiler on PATH."""
    return {"PATH": str(path), "HOME": str(home), "LANG": "C.UTF-8"}


def snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(tree)): (p.stat().st_mtime_ns, p.stat().st_size) for p in tree.rglob("*")}


def parse_ktap(text: str) -> dict[str, list[tuple[bool, str, str]]]:
    """Check the gate's KTAP (version, plans, numbering, totals) and return
    family -> [(ok, test name, directive)]."""
    lines = text.splitlines()
    assert lines[0] == "TAP version 13", lines[:3]
    top = [line for line in lines if not line.startswith("  ")]
    plans = [line for line in top if re.fullmatch(r"1\.\.\d+", line)]
    assert len(plans) == 1, plans
    verdicts = [re.fullmatch(r"(not ok|ok) (\d+) (\S+)( # .*)?", line) for line in top
                if line.startswith(("ok ", "not ok "))]
    assert all(verdicts), top
    assert [int(m[2]) for m in verdicts] == list(range(1, int(plans[0][3:]) + 1)), top
    assert all(line.startswith("#") or line == "TAP version 13" or line in plans or
               line.startswith(("ok ", "not ok ")) for line in top), top
    assert top[-1].startswith("# Totals: pass:"), top[-1]

    families, block = {}, None
    for line in lines:
        if line == "  KTAP version 1":
            block = []
        elif line.startswith("  ") and block is not None:
            block.append(line[2:])
        elif block is not None:
            name = re.fullmatch(r"(?:not ok|ok) \d+ (\S+)( # .*)?", line)[1]
            assert block[0] == f"# Subtest: {name}", block[:2]
            tests = [re.fullmatch(r"(not ok|ok) (\d+) (\S+)(?: # (.*))?", b) for b in block
                     if b.startswith(("ok ", "not ok "))]
            assert all(tests), block
            assert block[1] == f"1..{len(tests)}", block[:3]
            assert [int(m[2]) for m in tests] == list(range(1, len(tests) + 1))
            families[name] = [(m[1] == "ok", m[3], m[4] or "") for m in tests]
            block = None
    assert len(families) == len(verdicts)
    return families


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    """`ci/bundle` run in an empty directory: the tarball under its default name."""
    where = tmp_path_factory.mktemp("build")
    proc = subprocess.run([str(REPO / "ci" / "bundle")], cwd=where, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = where / f"{NAME}.tar.gz"
    assert out.is_file(), sorted(os.listdir(where))
    return out


def test_bundle_contents(tarball):
    with tarfile.open(tarball) as tar:
        members = {m.name.removeprefix(NAME + "/"): m for m in tar.getmembers()}
        info = tar.extractfile(f"{NAME}/BUNDLE-INFO").read().decode()
    assert all(name == NAME or name.startswith(NAME + "/") for name in
               (m.name for m in members.values()))
    for needed in ("run-gate", "sitecustomize.py", "conftest.py", "pyproject.toml", "ci/gate.py",
                   "ci/settings", "native/probes.py", "cases/test_replace_core.py", "fuzz/__main__.py",
                   "vendor/pytest/__init__.py", "vendor/xdist/__init__.py", "vendor/execnet/__init__.py",
                   "vendor/hypothesis/__init__.py", "vendor/cffi/__init__.py", "vendor/junit_xml/__init__.py"):
        assert needed in members, needed
    assert members["run-gate"].mode & 0o111
    assert any(re.fullmatch(r"native/_executor\..*\.so", n) for n in members)
    assert any(re.fullmatch(r"vendor/_cffi_backend\..*\.so", n) for n in members)
    assert not any(n.startswith("vendor/bin/") or n.endswith((".c", ".o")) for n in members)
    fields = dict(line.split(": ", 1) for line in info.splitlines())
    assert fields["python"] == _minor(bundle_python()) and fields["arch"] == platform.machine(), info


def test_run_gate_without_compiler_venv_or_network(tarball, tmp_path):
    tree = extract(tarball, tmp_path / "unpacked")
    before = snapshot(tree)
    work = tmp_path / "work"
    work.mkdir()
    env = bare_env(bare_bin(tmp_path / "bin", bundle_python()), tmp_path)
    # As root, in a network namespace of its own (only a down loopback): no network, provably.
    offline = [shutil.which("unshare"), "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []
    proc = subprocess.run([*offline, str(tree / "run-gate"), "--results", "R", "--fuzz-seconds", "0",
                           "-k", "core"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    families = parse_ktap(proc.stdout)
    assert "replace_core" in families and all(ok for ok, _, _ in families["replace_core"])
    assert set(families) == {"replace_core", "fuzz", "gate", "kernel_health"}
    for name in ("junit.xml", "results.txt", "summary.md", "results.jsonl", "pytest.log"):
        assert (work / "R" / name).is_file(), name      # --results is relative to the caller's directory
    plugins = re.search(r"^plugins: (.*)$", (work / "R" / "pytest.log").read_text(), re.M)[1]
    assert {p.rsplit("-", 1)[0] for p in plugins.split(", ")} <= {"hypothesis", "xdist"}, plugins
    assert snapshot(tree) == before, "the run wrote into the bundle"


def fake_python(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fake = directory / "python3"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    for tool in TOOLS:
        (directory / tool).symlink_to(shutil.which(tool))
    return directory


def test_run_gate_refuses_another_python_minor(tarball, tmp_path):
    tree = extract(tarball, tmp_path / "unpacked")
    env = bare_env(fake_python(tmp_path / "bin", "3.99"), tmp_path)
    proc = subprocess.run([str(tree / "run-gate"), "--results", "R"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "needs Python 3." in proc.stderr and "3.99" in proc.stderr
    env["FDR_PYTHON"] = "no-such-python"
    proc = subprocess.run([str(tree / "run-gate")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "R").exists()


def _minor(python: Path) -> str | None:
    try:
        return subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30).stdout.strip() or None
    except OSError:
        return None


def test_run_gate_as_nobody(tarball):
    """The whole case set as nobody: exit 0, failing nothing, every skip a known token."""
    if os.geteuid() != 0:
        pytest.skip("not_root")
    wanted = _minor(bundle_python())
    if _minor(DEBIAN_PYTHON) != wanted:
        pytest.skip(f"{DEBIAN_PYTHON} is not Python {wanted} (apt-get install python3)")
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="fdr-bundle-nobody-", dir="/tmp"))   # tmp_path is root-only
    try:
        base.chmod(0o755)
        tree = extract(tarball, base / "unpacked")
        for path in [base / "unpacked", *(base / "unpacked").rglob("*")]:    # readable, never writable
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode):
                path.chmod(mode & ~0o022 | 0o444 | (0o111 if stat.S_ISDIR(mode) or mode & 0o100 else 0))
        results = base / "R"
        results.mkdir()
        os.chown(results, nobody.pw_uid, nobody.pw_gid)
        env = bare_env(bare_bin(base / "bin", DEBIAN_PYTHON.resolve()), Path("/nonexistent"))
        setpriv = shutil.which("setpriv")
        drop = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"] if setpriv \
            else [shutil.which("runuser"), "-u", "nobody", "--"]
        proc = subprocess.run([*drop, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                               str(tree / "run-gate"), "--results", str(results), "--fuzz-seconds", "0"],
                              cwd=base, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
        families = parse_ktap(proc.stdout)
        tests = [(family, *t) for family, group in families.items() for t in group]
        assert all(ok for _, ok, _, _ in tests), [t for t in tests if not t[1]]
        skips = {re.sub(r"^SKIP ?", "", d) for _, _, _, d in tests if d.startswith("SKIP")}
        assert skips <= set(SKIP_TOKENS.values()) | GATE_SKIPS, skips
        assert sum(1 for _, _, _, d in tests if not d) > 1          # cases ran and passed
        assert (results / "junit.xml").stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(base, ignore_errors=True)


def evil_directory(where: Path) -> Path:
    """A caller's directory full of look-alikes (python3, sh tools, ci/gate.py) that print EVIL."""
    where.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "dirname", "uname", "bash", "sh", "env"):
        (where / name).write_text("#!/bin/sh\necho EVIL\n")
        (where / name).chmod(0o755)
    (where / "ci").mkdir()
    (where / "ci" / "gate.py").write_text("print('EVIL')\n")
    return where


def test_run_gate_with_an_empty_path_runs_only_its_own_files(tarball, tmp_path):
    """With PATH empty run-gate finds itself and python3 without the caller's directory,
    never running its files."""
    if _minor(DEBIAN_PYTHON) != _minor(bundle_python()):
        pytest.skip(f"{DEBIAN_PYTHON} is not Python {_minor(bundle_python())}")
    tree = extract(tarball, tmp_path / "unpacked")
    proc = subprocess.run([str(tree / "run-gate"), "--help"], cwd=evil_directory(tmp_path / "caller"),
                          env={"PATH": ""}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: run-gate ") and "EVIL" not in proc.stdout + proc.stderr


BROKEN = {
    "missing": lambda tree: (tree / "vendor" / "pytest" / "__init__.py").unlink(),
    "damaged": lambda tree: (tree / "ci" / "gate.py").write_text("# truncated\n"),
    "info_cut": lambda tree: (tree / "BUNDLE-INFO").write_text(
        "".join((tree / "BUNDLE-INFO").read_text().splitlines(True)[:-5])),
}
NAMED = {"missing": "vendor/pytest/__init__.py is missing", "damaged": "ci/gate.py is damaged",
         "info_cut": "BUNDLE-INFO is cut short"}


@pytest.mark.parametrize("how", BROKEN, ids=BROKEN.keys())
def test_run_gate_refuses_a_broken_bundle(tarball, tmp_path, how):
    """A missing or damaged file, or a cut manifest: exit 2, one line naming it, nothing run
    or written."""
    tree = extract(tarball, tmp_path / "unpacked")
    BROKEN[how](tree)
    proc = subprocess.run([str(tree / "run-gate"), "--results", "R"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"run-gate: the bundle is incomplete or damaged: {NAMED[how]} "
                           "(extract the tarball again)\n")
    assert not (tmp_path / "R").exists()


def test_run_gate_refuses_a_tarball_cut_between_members(tarball, tmp_path):
    """A tarball cut at a member boundary extracts cleanly (tar exits 0); run-gate names the
    first file it lacks, exit 2."""
    cut = tmp_path / "cut.tar"
    with tarfile.open(tarball) as full, tarfile.open(cut, "w") as part:
        members = full.getmembers()
        for member in members[:len(members) * 3 // 4]:
            part.addfile(member, full.extractfile(member) if member.isfile() else None)
    (tmp_path / "unpacked").mkdir()
    subprocess.run(["tar", "-xf", str(cut), "-C", str(tmp_path / "unpacked")], check=True, timeout=60)
    tree = tmp_path / "unpacked" / NAME
    listed = [line.split(" ", 2)[2] for line in (tree / "BUNDLE-INFO").read_text().splitlines()
              if line.startswith("file: ")]
    first_missing = next(rel for rel in listed if not (tree / rel).exists())
    proc = subprocess.run([str(tree / "run-gate"), "--results", "R"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "R").exists()
    assert proc.stderr == (f"run-gate: the bundle is incomplete or damaged: {first_missing} is missing "
                           "(extract the tarball again)\n")
