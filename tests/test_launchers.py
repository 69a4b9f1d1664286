"""The checkout's launchers (ci/gate and friends): found without PATH, honest about an
unusable venv."""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_gate_with_an_empty_path_runs_only_the_checkout(tmp_path):
    """With PATH empty ci/gate neither fails (127) nor runs the caller's bash, dirname or
    python3."""
    for name in ("bash", "dirname", "python3", "id", "sha256sum"):
        (tmp_path / name).write_text("#!/bin/sh\necho EVIL\n")
        (tmp_path / name).chmod(0o755)
    proc = subprocess.run([str(REPO / "ci" / "gate"), "--help"], cwd=tmp_path, env={"PATH": ""},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ci/gate ") and "EVIL" not in proc.stdout + proc.stderr


def test_venv_another_user_made_is_named_as_such():
    """A venv whose interpreter this user cannot run: exit 2, one line saying so and what to do
    (not 'missing: python3-venv')."""
    if os.geteuid() != 0:
        pytest.skip("not_root")
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="fdr-venv-", dir="/tmp"))    # tmp_path is root-only
    try:
        base.chmod(0o755)
        (base / "private").mkdir(mode=0o700)
        os.symlink(shutil.which("python3"), base / "private" / "python3")
        (base / "venv" / "bin").mkdir(parents=True)
        os.symlink(base / "private" / "python3", base / "venv" / "bin" / "python")
        proc = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                               "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin", f"FDR_VENV={base / 'venv'}",
                               str(REPO / "ci" / "gate"), "--help"],
                              cwd=base, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(base)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "cannot run it" in proc.stderr and "run-gate" in proc.stderr and "FDR_VENV=" in proc.stderr
    assert "python3-venv" not in proc.stderr
