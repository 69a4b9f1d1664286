"""The kernel lane's parts that need no guest: specs, images, the initramfs, calibration,
the matrix."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci import calibrate, guest, kernels, lane, matrix

ROOT = Path(__file__).resolve().parent.parent
ELF = b"\x7fELF" + b"\x02\x01\x01" + bytes(9) + b"fake kernel body " * 64


def test_vmlinux_is_found_inside_a_compressed_image(tmp_path):
    """extract_vmlinux finds the ELF behind a gzip payload that sits after a header and
    before trailing bytes, as in a bzImage."""
    image = tmp_path / "bzImage"
    image.write_bytes(b"MZ" + bytes(600) + gzip.compress(ELF) + b"trailing junk")
    out = kernels.extract_vmlinux(image, tmp_path / "vmlinux")
    assert out.read_bytes() == ELF


def test_an_image_without_a_kernel_is_refused(tmp_path):
    """A file with no ELF inside is a SpecError naming the file, not a guest that never boots."""
    junk = tmp_path / "junk"
    junk.write_bytes(b"MZ" + os.urandom(4096))
    with pytest.raises(kernels.SpecError, match="junk"):
        kernels.extract_vmlinux(junk, tmp_path / "vmlinux")
    with pytest.raises(kernels.SpecError, match="neither a vmlinux"):
        kernels.from_image(junk, None)
    with pytest.raises(kernels.SpecError, match="no such kernel image"):
        kernels.from_image(tmp_path / "missing", None)


def test_a_bad_debian_package_name_is_refused_before_any_download(tmp_path):
    """debian:SPEC must name a linux-image package; anything else is refused at once."""
    for bad in ("bash", "linux-image-6.1;rm -rf /", ""):
        with pytest.raises(kernels.SpecError, match="not a Debian kernel image package"):
            kernels.fetch_debian(bad, tmp_path)


def test_module_order_puts_dependencies_first(tmp_path):
    """The guest's modules are loaded dependencies first, each once, built-in ones left out."""
    moddir = tmp_path / "lib/modules/6.1.0-test"
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n")
    order = [p.name for p in kernels.module_order(moddir)]
    assert order == ["9pnet.ko", "virtio_ring.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko"]


def test_cpio_archive_is_newc_that_cpio_reads(tmp_path):
    """The initramfs writer makes a newc archive the cpio tool lists entry by entry."""
    path = tmp_path / "x.cpio"
    guest.write_cpio(path, [("bin", 0o40755, b""), ("bin/hello", 0o100755, b"#!/bin/sh\necho hi\n"),
                            ("bin/sh", 0o120777, "busybox")])
    listing = subprocess.run(["cpio", "-t"], input=path.read_bytes(), capture_output=True)
    if listing.returncode != 0 and b"not found" in listing.stderr:
        pytest.skip("no_cpio")
    assert listing.stdout.decode().split() == ["bin", "bin/hello", "bin/sh"]


def test_timeout_scale_is_the_worse_ratio_with_a_margin():
    """The scale follows the slower of interpreter work and (at half weight) process
    creation, with a margin, at least 1."""
    ref = {"spawn_ms": 1.0, "python_ms": 10.0}
    assert calibrate.scale({"spawn_ms": 1.0, "python_ms": 10.0}, ref) == 2          # 1 x 1.5
    assert calibrate.scale({"spawn_ms": 40.0, "python_ms": 20.0}, ref) == 30        # 40 / 2 x 1.5
    assert calibrate.scale({"spawn_ms": 4.0, "python_ms": 100.0}, ref) == 15        # 10 x 1.5
    assert calibrate.scale({"spawn_ms": 0.5, "python_ms": 5.0}, ref) == 1
    assert calibrate.scale({"spawn_ms": 1e6, "python_ms": 1.0}, ref) == calibrate.MAX_SCALE


def _fake_run(root: Path, label: str, outcomes: dict, **meta) -> Path:
    d = root / label
    (d / "gate").mkdir(parents=True)
    lines = [json.dumps({"family": fam, "name": name, "outcome": out, "reason": reason, "duration": 0.0,
                         "details": "", "nodeid": ""})
             for (fam, name), (out, reason) in outcomes.items()]
    (d / "gate" / "results.jsonl").write_text("\n".join(lines) + "\n")
    record = dict(spec=label, label=label, directory=str(d), release=label, kernel_version="6.1.192",
                  profile="stock (detected)", timeout_scale=20, gate_exit=0, fuzz_exit=0, guest_error="",
                  seconds={}, health=[], taint=0)
    record.update(meta)
    (d / "lane.json").write_text(json.dumps(record))
    return d


def test_matrix_marks_rows_that_differ_and_links_failures(tmp_path):
    """Rows whose cells differ between kernels are marked; a failing cell links to its
    kernel's summary; the lane's own rows (fuzz, health, guest) come last."""
    a = _fake_run(tmp_path, "6.1", {("nested", "t_same"): ("pass", ""), ("nested", "t_diff"): ("fail", "")})
    b = _fake_run(tmp_path, "6.12", {("nested", "t_same"): ("pass", ""),
                                     ("nested", "t_diff"): ("skip", "no_kcmp")},
                  health=["WARNING: at fs/eventpoll.c"])
    matrix.write(tmp_path, [a, b])
    md = (tmp_path / "matrix.md").read_text()
    assert "|  | t_same | pass | pass |" in md
    assert "| ≠ | t_diff | [FAIL](6.1/gate/summary.md) | skip (no_kcmp) |" in md
    assert md.index("t_diff") < md.index("fuzz_campaign") < md.index("kernel_health")
    assert "| ≠ | kernel_health | pass | [FAIL (WARNING: at fs/eventpoll.c)](6.12/gate/summary.md) |" in md
    page = (tmp_path / "matrix.html").read_text()
    assert "<tr class=diff><td class=name>t_diff" in page and "<tr class=same><td class=name>t_same" in page


def test_matrix_cli_refuses_a_directory_without_results(tmp_path):
    """python -m ci.matrix on a directory with no lane results exits 2 with one line."""
    r = subprocess.run([sys.executable, "-m", "ci.matrix", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no kernel results" in r.stderr


@pytest.mark.parametrize("argv, message", [
    (["--kernel", "debian:bash"], "not a Debian kernel image package"),
    (["--kernel", "/nonexistent/vmlinux"], "no such kernel image"),
    (["--kernel", "host", "--jobs", "0"], "--jobs must be 1..16"),
    (["--kernel", "host", "--fuzz-seconds", "-1"], "--fuzz-seconds >= 0"),
    ([], "required: --kernel"),
])
def test_lane_refuses_bad_input_with_exit_2(argv, message, tmp_path, capsys):
    """A bad spec or option is one line on stderr and exit 2, before anything boots."""
    assert lane.main(argv + ["--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_guest_script_passes_the_gate_options_and_the_calibration(tmp_path):
    """The guest's script runs the gate with the seed, -k and profile asked for, under the
    scale measured in the guest against the host's figures."""
    args = lane.build_parser().parse_args(["--kernel", "host", "-k", "io_uring or 'x'", "--profile", "follow",
                                           "--fuzz-seconds", "7"])
    script = lane.guest_script(args, {"spawn_ms": 1.5, "python_ms": 12.0}, 42)
    assert "-m ci.calibrate --against 1.5,12.0" in script
    assert "--seed 42 -k 'io_uring or '\\''x'\\''' --profile follow" in script
    assert "--seconds 7 --profile follow" in script
    assert "if [ -n '' ]; then" in script        # no --mutants: the check is left out


def test_guest_script_runs_the_mutation_check_asked_for():
    """--mutants EXPR runs the mutation check in the guest for the mutants EXPR selects,
    under the guest's scale, and the run fails unless pytest passed."""
    args = lane.build_parser().parse_args(["--kernel", "host", "--mutants", "no_follow"])
    script = lane.guest_script(args, {"spawn_ms": 1.5, "python_ms": 12.0}, 42)
    assert "if [ -n 'no_follow' ]; then" in script
    assert "-m pytest -q -n 0 -m mutants tests/test_mutants.py" in script
    assert "-k 'no_follow' --basetemp /var/tmp/lane-mutants > /lane/mutants.log" in script
    run = lane.Run("host", "host", "/nonexistent", gate_exit=0, fuzz_exit=0, mutants_exit=1)
    assert not run.passed
    run.mutants_exit = 0
    assert run.passed


def test_guest_script_collects_gcov_around_each_phase_only_with_coverage():
    """--coverage resets the counters before the gate and copies the data out after the gate and
    after the campaign; --guided and --guided-bench reach the campaign and the benchmark."""
    plain = lane.guest_script(lane.build_parser().parse_args(["--kernel", "host"]), {"spawn_ms": 1, "python_ms": 1}, 3)
    assert "gcov" not in plain and "debugfs" not in plain and "--guided" not in plain
    args = lane.build_parser().parse_args(["--kernel", "host", "--coverage", "--guided", "--guided-bench", "50"])
    script = lane.guest_script(args, {"spawn_ms": 1, "python_ms": 1}, 3)
    reset, gate = script.index("/sys/kernel/debug/gcov/reset"), script.index("-m ci.gate")
    copy_gate, fuzz = script.index("/var/tmp/lane-cov/gate"), script.index("-m fuzz")
    copy_fuzz, bench = script.index("/var/tmp/lane-cov/fuzz"), script.index("bench/fuzz_guided.py --programs 50")
    assert script.index("mount -t debugfs") < reset < gate < copy_gate < fuzz < copy_fuzz < bench
    assert "--out /var/tmp/lane-fuzz --guided" in script


def test_coverage_refuses_kernels_without_gcov_notes(tmp_path, capsys):
    """--coverage with the host kernel, or an image no ci.kbuild gcov build made, is exit 2
    before booting."""
    assert lane.main(["--kernel", "host", "--coverage", "--results", str(tmp_path / "r"),
                      "--cache", str(tmp_path / "c")]) == 2
    assert "--coverage: the host kernel has no gcov data" in capsys.readouterr().err
    image = tmp_path / "vmlinux"
    image.write_bytes(b"\x7fELF" + b"\0" * 64)
    assert lane.main(["--kernel", str(image), "--coverage", "--results", str(tmp_path / "r"),
                      "--cache", str(tmp_path / "c")]) == 2
    assert "no kernel.json: not a kernel ci.kbuild built" in capsys.readouterr().err
