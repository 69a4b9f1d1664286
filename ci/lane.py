"""The kernel lane: the gate and a fuzz campaign on other kernels, under QEMU, and the matrix.

    ci/lane --kernel debian:linux-image-6.1.0-57-amd64-unsigned \\
            --kernel debian:linux-image-6.12.107+deb12-amd64-unsigned --kernel host

Each kernel boots in its own guest (ci.guest: the host's root read-only with a
tmpfs overlay, 2 CPUs, KVM when usable, TCG otherwise), measures how much
slower it is than the host (ci.calibrate) and scales every timeout by that,
runs the gate, then a fuzz campaign, and writes its results under
--results DIR/<kernel>/.  `host` runs the same on the running kernel without a
guest.  At the end DIR/matrix.md and DIR/matrix.html show every case by family
against every kernel (ci.matrix).

Exit status: 0 every kernel passed, 1 a kernel failed (a case, the fuzz
campaign, kernel health, or the guest itself), 2 bad input (nothing booted).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ci import calibrate, guest, kernels, matrix

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "build" / "lane-cache"
USAGE = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=os.environ.get("FDR_LANE_PROG", "ci/lane"), description=__doc__.split("\n\n")[0],
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel", action="append", metavar="SPEC", required=True,
                   help="debian:PACKAGE, a vmlinux/bzImage path, src:DIR, or host (repeatable)")
    p.add_argument("--modules", metavar="DIR", help="modules directory for a kernel image path")
    p.add_argument("--patches", metavar="DIR", help="patches applied to src: kernels (patch -p1, in order)")
    p.add_argument("--fragment", action="append", default=[], metavar="FILE",
                   help="extra config fragment for src: kernels (repeatable)")
    p.add_argument("--results", default="results/lane", metavar="DIR",
                   help="results directory (default results/lane)")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), metavar="DIR",
                   help="downloaded and built kernels (default build/lane-cache)")
    p.add_argument("--fuzz-seconds", type=int, default=60, metavar="N",
                   help="the fuzz campaign per kernel (default 60, 0 to skip)")
    p.add_argument("--profile", choices=("stock", "follow"),
                   help="force the semantics profile (default: detected per kernel)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="select cases (the gate's -k)")
    p.add_argument("--mutants", metavar="EXPR",
                   help="after the campaign, the mutation check (tests/test_mutants.py) for the "
                        "mutants that -k EXPR selects, e.g. no_follow")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="the gate's and fuzzer's seed")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="kernels booted at once (default: cores / 2, at least 1)")
    p.add_argument("--timeout", type=int, default=5400, metavar="S",
                   help="bound on one guest, boot to power-off (default 5400)")
    p.add_argument("--cpus", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument("--memory", type=int, default=3072, metavar="MB", help="guest memory (default 3072)")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--coverage", action="store_true",
                   help="gcov of the files under test after the gate, the campaign and both "
                        "(a kernel ci.kbuild built with ci/kconfig/gcov.config and patches/coverage/)")
    p.add_argument("--guided", action="store_true",
                   help="the campaign prefers programs that reach new KCOV edges (fuzz --guided; "
                        "a kernel with ci/kconfig/kcov.config)")
    p.add_argument("--guided-bench", type=int, default=0, metavar="N",
                   help="after the campaign, bench/fuzz_guided.py with N programs a side "
                        "(KCOV edges, guided against unguided) into fuzz/guided.txt and guided.json")
    p.add_argument("--tcg", choices=("multi", "single"), default="multi",
                   help="TCG threading without KVM (default multi; Debian's PREEMPT_RT 6.12 "
                        "oopses at boot under multi-threaded TCG: use single)")
    return p


EPILOG = """\
results (per kernel, under DIR/<kernel>/):
  gate/          the gate's junit.xml, results.txt, summary.md, results.jsonl,
                 pytest.log and ktap.txt
  fuzz/          the campaign's directory (reproducers of divergences) and fuzz.log
  mutants.log    with --mutants: the mutation check's pytest output; mutants/ its
                 campaigns' directories (reproducers)
  lane.json      spec, release, upstream version, profile, timeout scale, exit codes,
                 seconds spent booting, in the gate and in the campaign, and with
                 --coverage the per-file coverage lines
  coverage/      with --coverage: gate/ and fuzz/ (the guest's .gcda files after each
                 phase) and report/ (python -m ci.coverage: summary.md, unreached.md,
                 per phase and both an lcov tracefile and genhtml's HTML)
  console.log, guest.log, dmesg.txt   the guest's console, its script's output, its kernel log
and DIR/matrix.md, DIR/matrix.html: cases by family against kernels.

exit status: 0 every kernel passed, 1 one failed, 2 bad input (nothing booted).
"""


@dataclass
class Run:
    """One kernel's lane run, as lane.json records it."""
    spec: str
    label: str
    directory: str
    release: str = ""
    kernel_version: str = ""
    profile: str = ""
    timeout_scale: int = 1
    calibration: str = ""          # 'SCALE SPAWN_MS,PYTHON_MS' measured in the guest
    reference: str = ""            # the host's 'SPAWN_MS,PYTHON_MS'
    kernel_commits: str = ""       # the tracked commits the gate took as present (+) or absent (-)
    gate_exit: int | None = None
    fuzz_exit: int | None = None
    mutants_exit: int | None = None   # --mutants: pytest's exit code (5: nothing selected)
    guest_error: str = ""
    seconds: dict = field(default_factory=dict)
    health: list = field(default_factory=list)
    taint: int | None = None
    coverage: list = field(default_factory=list)   # one line per file under test (gate and fuzz summed)
    coverage_error: str = ""

    @property
    def passed(self) -> bool:
        return (not self.guest_error and not self.coverage_error and self.gate_exit in (0, 4)
                and self.fuzz_exit in (0, 4, None) and self.mutants_exit in (0, None)
                and not self.health)


GUEST_SCRIPT = r"""
set -u
export HOME=/tmp CI=true PYTHONDONTWRITEBYTECODE=1 PYTHONPATH={repo} TMPDIR=/tmp
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd {repo}
now() {{ cut -d' ' -f1 /proc/uptime; }}
echo "boot $(now)" > /lane/times
uname -r > /lane/release
dmesg > /lane/dmesg-boot.txt 2>&1
{python} -m ci.calibrate --against {reference} > /lane/calibration || echo "20 unmeasured" > /lane/calibration
scale=$(cut -d' ' -f1 /lane/calibration)
echo "$scale" > /lane/scale
echo "calibrated $(now)" >> /lane/times
# The gate and the campaign write on the guest's own disk, copied to /lane at the end: 9p
# cannot read a file once it is unlinked, and pytest's capture works on such files.
mkdir -p /lane/gate /lane/fuzz /var/tmp/lane-gate /var/tmp/lane-fuzz
{debugfs}
{coverage_reset}
FDR_TIMEOUT_SCALE=$scale {python} -m ci.gate --results /var/tmp/lane-gate --fuzz-seconds 0 {gate_args} \
	> /lane/gate/ktap.txt 2> /lane/gate/stderr.txt
echo $? > /lane/gate.rc
cp -r /var/tmp/lane-gate/. /lane/gate/
{coverage_copy_gate}
echo "gate $(now)" >> /lane/times
if [ {fuzz_seconds} -gt 0 ]; then
	profile=$(sed -n 's/^# profile: \([a-z]*\).*/\1/p' /lane/gate/ktap.txt | head -n1)
	case "$profile" in stock|follow) ;; *) profile=stock ;; esac
	FDR_TIMEOUT_SCALE=$scale {python} -m fuzz --seconds {fuzz_seconds} --profile {fuzz_profile} \
		--seed {seed} --out /var/tmp/lane-fuzz {fuzz_args} > /lane/fuzz/fuzz.log 2>&1
	echo $? > /lane/fuzz.rc
	cp -r /var/tmp/lane-fuzz/. /lane/fuzz/
	{coverage_copy_fuzz}
fi
if [ {guided_bench} -gt 0 ]; then
	{python} bench/fuzz_guided.py --programs {guided_bench} --seed {seed} --json /lane/fuzz/guided.json \
		> /lane/fuzz/guided.txt 2>&1
fi
echo "fuzz $(now)" >> /lane/times
if [ -n {mutants} ]; then
	FDR_TIMEOUT_SCALE=$scale {python} -m pytest -q -n 0 -m mutants tests/test_mutants.py \
		-k {mutants} --basetemp /var/tmp/lane-mutants > /lane/mutants.log 2>&1
	echo $? > /lane/mutants.rc
	mkdir -p /lane/mutants && cp -r /var/tmp/lane-mutants/. /lane/mutants/   # any reproducer
fi
echo "mutants $(now)" >> /lane/times
dmesg > /lane/dmesg.txt 2>&1
cat /proc/sys/kernel/tainted > /lane/tainted
"""


# gcov in the guest: the counters are zeroed before each phase and the data files copied out
# after it (by cat: debugfs reports them as empty files), through the guest's disk.
DEBUGFS = "mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug"
COVERAGE_RESET = """echo 1 > /sys/kernel/debug/gcov/reset || echo "coverage: cannot reset the gcov counters" >&2"""
COVERAGE_COPY = """( cd /sys/kernel/debug/gcov && find . -name '*.gcda' | while read -r f; do
	mkdir -p "/var/tmp/lane-cov/{phase}/${{f%/*}}" && cat "$f" > "/var/tmp/lane-cov/{phase}/$f"; done )
mkdir -p /lane/coverage && cp -r /var/tmp/lane-cov/{phase} /lane/coverage/
echo 1 > /sys/kernel/debug/gcov/reset"""


def guest_script(args, reference: dict, seed: int) -> str:
    gate_args = [f"--seed {seed}"]
    if args.keyword:
        gate_args.append("-k " + _shq(args.keyword))
    if args.profile:
        gate_args.append(f"--profile {args.profile}")
    return GUEST_SCRIPT.format(
        repo=REPO, python=_venv_python(), reference=f"{reference['spawn_ms']},{reference['python_ms']}",
        gate_args=" ".join(gate_args), fuzz_seconds=args.fuzz_seconds, seed=seed,
        fuzz_profile=args.profile or "$profile", fuzz_args="--guided" if args.guided else "",
        coverage_reset=COVERAGE_RESET if args.coverage else "", guided_bench=args.guided_bench,
        debugfs=DEBUGFS if args.coverage or args.guided or args.guided_bench else "",
        coverage_copy_gate=COVERAGE_COPY.format(phase="gate") if args.coverage else "",
        coverage_copy_fuzz=COVERAGE_COPY.format(phase="fuzz") if args.coverage else "",
        mutants=_shq(args.mutants or ""))


def _shq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _venv_python() -> str:
    venv = Path(os.environ.get("FDR_VENV", REPO / ".venv"))
    return str(venv / "bin" / "python") if (venv / "bin" / "python").exists() else sys.executable


def label_of(kernel: kernels.Kernel, taken: set) -> str:
    label = re.sub(r"[^A-Za-z0-9._+-]", "_", kernel.label) or "kernel"
    base, n = label, 2
    while label in taken:
        label, n = f"{base}-{n}", n + 1
    taken.add(label)
    return label


class Progress:
    """One line per event on stderr: which kernel, which phase, which family."""

    def __init__(self):
        self.lock = threading.Lock()

    def say(self, label: str, text: str) -> None:
        with self.lock:
            print(f"lane [{label}] {text}", file=sys.stderr, flush=True)


def follow_ktap(path: Path, label: str, progress: Progress, stop: threading.Event) -> None:
    """Report each family's verdict line as the guest writes the gate's KTAP."""
    seen = 0
    while not stop.wait(2.0):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines[seen:]:
            if re.match(r"(not )?ok \d+ ", line):
                progress.say(label, "gate: " + line)
        seen = len(lines)


def run_guest(kernel: kernels.Kernel, run: Run, args, reference: dict, seed: int,
              progress: Progress, stop: threading.Event) -> None:
    share = Path(run.directory)
    initrd = guest.make_initramfs(Path(args.cache) / f"initrd-{run.label}.cpio", kernel.modules)
    progress.say(run.label, f"booting {kernel.image.name} ({'kvm' if guest.kvm_usable() else 'tcg'}, "
                            f"{args.cpus} CPUs)")
    watcher_stop = threading.Event()
    watcher = threading.Thread(target=follow_ktap, args=(share / "gate" / "ktap.txt", run.label,
                                                          progress, watcher_stop), daemon=True)
    watcher.start()
    try:
        res = guest.boot(kernel.image, initrd, share, guest_script(args, reference, seed),
                         timeout=args.timeout, cpus=args.cpus, memory_mb=args.memory,
                         append=args.append, stop=stop, tcg=args.tcg)
    finally:
        watcher_stop.set()
        watcher.join()
    run.seconds["guest"] = round(res.seconds, 1)
    if res.exit_code is None:
        run.guest_error = res.reason
        (share / "guest-error.txt").write_text(f"{res.reason}\n\n{res.console_tail}")
    read_guest_files(share, run)
    if args.coverage and not run.guest_error:
        coverage_report(kernel, share, run, progress)


def coverage_report(kernel: kernels.Kernel, share: Path, run: Run, progress: Progress) -> None:
    """The guest's gcov data of each phase turned into share/coverage/report (ci.coverage)."""
    from ci import coverage, kbuild
    phases = {name: share / "coverage" / name for name in ("gate", "fuzz")
              if (share / "coverage" / name).is_dir()}
    if not phases:
        run.coverage_error = "the guest copied no gcov data (no /sys/kernel/debug/gcov?)"
        return
    try:
        summary = coverage.report(phases, kbuild.gcov_dir(kernel.image.parent), share / "coverage" / "report")
    except (coverage.CoverageError, kbuild.BadInput) as exc:
        run.coverage_error = str(exc)
        return
    run.coverage = coverage.one_line(summary)
    for line in run.coverage:
        progress.say(run.label, "coverage: " + line)


def read_guest_files(share: Path, run: Run) -> None:
    """What the guest left in the shared directory: release, scale, exit codes, times, health."""
    def text(name):
        try:
            return (share / name).read_text().strip()
        except OSError:
            return ""
    run.release = text("release") or run.release
    run.timeout_scale = int(text("scale") or 1)
    run.calibration = text("calibration")
    if text("gate.rc"):                      # the guest's (the host run sets its own)
        run.gate_exit = int(text("gate.rc"))
    if text("fuzz.rc"):
        run.fuzz_exit = int(text("fuzz.rc"))
    if text("mutants.rc"):
        run.mutants_exit = int(text("mutants.rc"))
    marks = dict(line.split() for line in text("times").splitlines() if len(line.split()) == 2)
    order = ["boot", "calibrated", "gate", "fuzz", "mutants"]
    for a, b in zip(order, order[1:]):
        if a in marks and b in marks:
            run.seconds[b if b != "calibrated" else "calibrate"] = round(float(marks[b]) - float(marks[a]), 1)
    if "boot" in marks:
        run.seconds["boot"] = round(float(marks["boot"]), 1)
    run.taint = int(text("tainted")) if text("tainted").isdigit() else None
    from ci import health
    # What the kernel logged while the suite ran (the boot's own lines are in dmesg-boot.txt).
    booted = len(text("dmesg-boot.txt").splitlines())
    run.health = health.scan_log("\n".join(text("dmesg.txt").splitlines()[booted:]))
    if run.taint:
        run.health.append(f"kernel tainted: {health.taint_letters(run.taint)}")
    header = text("gate/ktap.txt").splitlines()[:12]
    for line in header:
        if line.startswith("# kernel version: "):
            run.kernel_version = line.split(": ", 1)[1]
        if line.startswith("# profile: "):
            run.profile = line.split(": ", 1)[1]
        if line.startswith("# kernel commits: "):
            run.kernel_commits = line.split(": ", 1)[1]


def run_host(run: Run, args, seed: int, progress: Progress) -> None:
    """`--kernel host`: the same gate and campaign on the running kernel, no guest."""
    share = Path(run.directory)
    (share / "gate").mkdir(parents=True, exist_ok=True)
    (share / "fuzz").mkdir(parents=True, exist_ok=True)
    progress.say(run.label, "running on the host kernel")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    cmd = [_venv_python(), "-m", "ci.gate", "--results", str(share / "gate"), "--fuzz-seconds", "0",
           "--seed", str(seed)]
    cmd += ["-k", args.keyword] if args.keyword else []
    cmd += ["--profile", args.profile] if args.profile else []
    deadline = time.monotonic() + args.timeout          # the same bound a guest gets
    start = time.monotonic()
    try:
        with open(share / "gate" / "ktap.txt", "w") as out:
            run.gate_exit = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.DEVNULL,
                                           timeout=args.timeout).returncode
        run.seconds["gate"] = round(time.monotonic() - start, 1)
        read_guest_files(share, run)
        if args.fuzz_seconds > 0:
            profile = args.profile or (run.profile.split() or ["stock"])[0]
            profile = profile if profile in ("stock", "follow") else "stock"
            start = time.monotonic()
            with open(share / "fuzz" / "fuzz.log", "w") as log:
                run.fuzz_exit = subprocess.run(
                    [_venv_python(), "-m", "fuzz", "--seconds", str(args.fuzz_seconds), "--profile", profile,
                     "--seed", str(seed), "--out", str(share / "fuzz")], cwd=REPO, env=env, stdout=log,
                    stderr=subprocess.STDOUT, timeout=max(1.0, deadline - time.monotonic())).returncode
            run.seconds["fuzz"] = round(time.monotonic() - start, 1)
        if args.mutants:
            start = time.monotonic()
            with open(share / "mutants.log", "w") as log:
                run.mutants_exit = subprocess.run(
                    [_venv_python(), "-m", "pytest", "-q", "-n", "0", "-m", "mutants", "tests/test_mutants.py",
                     "-k", args.mutants], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                    timeout=max(1.0, deadline - time.monotonic())).returncode
            run.seconds["mutants"] = round(time.monotonic() - start, 1)
    except subprocess.TimeoutExpired as exc:
        run.guest_error = f"timeout after {args.timeout} s in {' '.join(map(str, exc.cmd[1:4]))}"
    run.release = os.uname().release


def one_kernel(spec: str, kernel, run: Run, args, reference, seed, progress, stop) -> Run:
    """Run one kernel into a fresh directory, swapped into place only when it is complete
    (an interrupted lane leaves the previous results of that kernel untouched)."""
    final = Path(run.directory)
    work = final.with_name(f".{final.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run.directory = str(work)
    try:
        if spec == "host":
            run_host(run, args, seed, progress)
        else:
            run_guest(kernel, run, args, reference, seed, progress, stop)
    finally:
        run.directory = str(final)
    (work / "lane.json").write_text(json.dumps(asdict(run), indent=1, sort_keys=True) + "\n")
    if stop.is_set():
        shutil.rmtree(work, ignore_errors=True)
        return run
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(work, final)
    shutil.rmtree(old, ignore_errors=True)
    verdict = "PASS" if run.passed else "FAIL"
    detail = run.guest_error or f"gate exit {run.gate_exit}, fuzz exit {run.fuzz_exit}"
    progress.say(run.label, f"{verdict}: {detail}; seconds {run.seconds}")
    return run


def check_coverage_kernels(resolved) -> None:
    """--coverage: every kernel must be a ci.kbuild build with gcov notes (UsageError if not)."""
    from ci import kbuild
    for spec, kernel in resolved:
        if kernel is None:
            raise UsageError("--coverage: the host kernel has no gcov data to collect; "
                             "give ci.kbuild-built kernels only")
        try:
            kbuild.gcov_dir(kernel.image.parent)
        except kbuild.BadInput as exc:
            raise UsageError(f"--coverage: {spec}: {exc}") from None


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.jobs is not None and not 1 <= args.jobs <= 16:
            raise UsageError(f"--jobs must be 1..16, got {args.jobs}")
        if (args.fuzz_seconds < 0 or args.guided_bench < 0 or args.timeout <= 0 or args.cpus < 1
                or args.memory < 256):
            raise UsageError("--fuzz-seconds >= 0, --guided-bench >= 0, --timeout > 0, --cpus >= 1 "
                             "and --memory >= 256")
        cache = Path(args.cache)
        cache.mkdir(parents=True, exist_ok=True)
        patches = sorted(Path(args.patches).glob("*.patch")) if args.patches else []
        if args.patches and not patches:
            raise UsageError(f"--patches {args.patches}: no *.patch files there")
        resolved = []
        for spec in args.kernel:
            if spec == "host":
                resolved.append((spec, None))
                continue
            resolved.append((spec, kernels.resolve(spec, cache, Path(args.modules) if args.modules else None,
                                                   patches, [Path(f) for f in args.fragment])))
        if args.coverage:
            check_coverage_kernels(resolved)
        if any(k is not None for _, k in resolved):
            guest.find_qemu()
            guest.make_initramfs(cache / "initrd-check.cpio", [])
    except (UsageError, kernels.SpecError, guest.GuestError) as exc:
        print(f"lane: error: {exc}", file=sys.stderr)
        return USAGE
    except SystemExit as exc:
        return int(exc.code or 0)

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    reference = calibrate.measure()
    progress = Progress()
    progress.say("lane", f"seed {seed}; host reference {reference}; results in {results}")
    taken: set = set()
    runs = []
    for spec, kernel in resolved:
        label = "host-" + os.uname().release if kernel is None else kernel.label
        label = label_of(kernels.Kernel(spec, label, Path()), taken)
        runs.append((spec, kernel, Run(spec, label, str(results / label), release=kernel.release if kernel else "",
                                       reference=f"{reference['spawn_ms']},{reference['python_ms']}")))
    stop = threading.Event()
    jobs = args.jobs or max(1, (os.cpu_count() or 2) // max(1, args.cpus))
    done: list[Run] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one_kernel, spec, kernel, run, args, reference, seed, progress, stop)
                       for spec, kernel, run in runs]
            try:
                for f in futures:
                    done.append(f.result())
            except KeyboardInterrupt:
                stop.set()
                for f in futures:
                    f.cancel()
                raise
    except KeyboardInterrupt:
        print("lane: interrupted; every guest stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    matrix.write(results, [Path(r.directory) for r in done])
    progress.say("lane", f"matrix: {results / 'matrix.md'}, {results / 'matrix.html'}")
    return 0 if all(r.passed for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
