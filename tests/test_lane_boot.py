"""The kernel lane end to end: a packaged Debian 6.1 kernel booted under QEMU runs two families.

Debian's 6.1 is the kernel where the suite first met real differences: the
listener hangs up only once a dead target is reaped (bfafe5efa975 is missing)
and pipe reads go through io-wq (afed6271f5b0 is missing).  Both families must
pass there with the expectations the version facts give, inside a guest the
lane booted, with its results, matrix and exit code brought back through the
shared directory.  Needs root (QEMU's 9p export of /, apt-get download) and a
few minutes under TCG, best with nothing else running: like the mutation check
it runs as its own step (`ci/test -m lane tests/test_lane_boot.py`, as .ci/run
does), not inside the parallel run.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "linux-image-6.1.0-57-amd64-unsigned"
BOUND_S = 1500


pytestmark = pytest.mark.lane


@pytest.fixture
def lane_ok(request):
    selected = "lane" in (request.config.getoption("markexpr", "") or "").replace("not lane", "")
    if os.environ.get("FDR_NO_LANE") == "1" or not (selected or os.environ.get("FDR_LANE") == "1"):
        pytest.skip("lane: select with -m lane (or FDR_LANE=1)")
    if os.geteuid() != 0:
        pytest.skip("not_root")


def test_debian_61_runs_the_notifier_and_io_uring_families(lane_ok, tmp_path):
    """ci/lane boots Debian's 6.1 kernel, the notifier_lifecycle and io_uring families pass
    there by its version facts, and lane.json, the gate's files and the matrix come back."""
    results = tmp_path / "lane"
    proc = subprocess.run(
        [str(ROOT / "ci" / "lane"), "--kernel", f"debian:{KERNEL}", "-k", "notifier_lifecycle or io_uring",
         "--fuzz-seconds", "5", "--results", str(results), "--cache", str(ROOT / "build" / "lane-cache"),
         "--timeout", str(BOUND_S - 60)],
        cwd=ROOT, capture_output=True, text=True, timeout=BOUND_S)
    [run_dir] = [d for d in results.iterdir() if d.is_dir()]
    record = json.loads((run_dir / "lane.json").read_text())
    detail = f"{proc.stderr[-3000:]}\n{(run_dir / 'gate' / 'ktap.txt').read_text()[-4000:]}"
    assert proc.returncode == 0, detail
    assert record["release"] == "6.1.0-57-amd64"
    assert record["kernel_version"].startswith("6.1.192 (from /proc/version (Debian))")
    assert (record["gate_exit"], record["fuzz_exit"], record["guest_error"]) == (0, 0, ""), detail
    ktap = (run_dir / "gate" / "ktap.txt").read_text()
    assert "# kernel commits: +4efaa5acf0a1 +f2e467a48287 -bfafe5efa975 -afed6271f5b0" in ktap
    assert "ok 1 notifier_lifecycle" in ktap or "ok 2 notifier_lifecycle" in ktap, ktap[-2000:]
    matrix = (results / "matrix.md").read_text()
    assert "test_listener_hangs_up_when_target_is_gone[exit] | pass |" in matrix
