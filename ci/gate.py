"""The gate: conformance cases, fuzz smoke and kernel health in one run (`python -m ci.gate`).

stdout carries KTAP: a header, one block per case family written as each family
completes (by ci.ktap_plugin inside pytest), then the gate's own families
`fuzz` (the smoke run), `gate` (profile detection, pytest itself) and
`kernel_health` (taint, kernel log), then kselftest's `# Totals:` line.
The results directory gets junit.xml, results.txt, summary.md, results.jsonl
and pytest.log, written under temporary names and renamed only at the end.

Exit status (--exit-convention): pass 0, fail 1, all skipped 4 (kselftest),
3 (fedora) or 77 (automake); 2 for a usage error, with nothing written (pytest's
own usage error and "no tests" count as such).  "All skipped" means no case and
no fuzz smoke passed; the `gate` and `kernel_health` checks can only fail it.
pytest ending any other way than 0/1 (crash, interrupt, ci/settings timeout)
fails the `gate.pytest` check.  A signal ends the run (ci.lifecycle): exit 128 + N.
A known failure (--known-failures) that fails is XFAIL and counts as a pass; one
that passes is XPASS and fails the gate, so a stale list gets noticed.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from ci import exitcodes, health, ktap, lifecycle, results
from ci.outcomes import ERROR, FAIL, PASS, SKIP, Result, parse_known_failures, read_jsonl

SUITE_VERSION = "0.1"
REPO = Path(__file__).resolve().parent.parent
SETTINGS = REPO / "ci" / "settings"
GATE_FAMILY = "gate"
SYNTHETIC_FAMILIES = ("fuzz", GATE_FAMILY, health.FAMILY)    # written after the case families
CHECK_FAMILIES = (GATE_FAMILY, health.FAMILY)                # do not count towards "something ran"
SLOW_SCALE = 5                                               # FDR_TIMEOUT_SCALE under KSFT_MACHINE_SLOW=yes
OUTPUT_FILES = ("junit.xml", "results.txt", "summary.md", "results.jsonl", "pytest.log")
MIN_NOFILE = 32                                              # RLIMIT_NOFILE the run needs (pytest, 2 workers)
NOFILE_PER_WORKER = 4                                        # fds an xdist worker costs its controller


class UsageError(Exception):
    """A bad invocation: reported as one line on stderr, exit 2, nothing written."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


_count.__name__ = "non-negative integer"      # argparse names the type in its error message


HELP_EPILOG = """\
output:
  stdout         KTAP: one block per case family as it completes, then the fuzz,
                 gate and kernel_health families, then kselftest's '# Totals:' line
  --results DIR  junit.xml, results.txt, summary.md, results.jsonl, pytest.log
                 (and fuzz/ for a fuzz failure's reproducer)

exit status: 0 pass, 1 fail, 4 all skipped (3 with --exit-convention fedora,
77 with automake), 2 usage error (nothing written), 128+N stopped by signal N
(SIGTERM, SIGINT, SIGHUP: every process of the run is ended and waited for,
the KTAP ends with 'Bail out!' and the totals so far).

A run first clears the previous run's files from DIR and leaves summary.md
saying INCOMPLETE until it ends (INTERRUPTED when stopped by a signal).

environment: KSFT_MACHINE_SLOW=yes multiplies the timeouts by 5
(FDR_TIMEOUT_SCALE=N by N); ci/settings holds the run's timeout in seconds.

kernel version: behaviours that changed with a known kernel commit are expected
by the kernel's upstream version (Debian: /proc/version, Ubuntu:
/proc/version_signature, else uname -r); the header's 'kernel version' line
says which was used and 'kernel commits' what follows from it.
  FDR_KERNEL_VERSION=X.Y.Z     use this upstream version instead
  FDR_KERNEL_COMMITS=+SHA,-SHA declare a backport the version does not show
                               (RHEL-style kernels), or its absence; known SHAs
                               are listed in native/kernel_facts.py

Offline: `ci/bundle` writes a tarball whose `run-gate` runs this gate on a
machine with only Python (same minor version), no compiler, venv or network.
"""


def prog_name() -> str:
    """How the user invoked us, for usage lines: ci/gate, the bundle's run-gate, fdr-gate."""
    if os.environ.get("FDR_GATE_PROG"):
        return os.environ["FDR_GATE_PROG"]
    return "fdr-gate" if Path(sys.argv[0]).name == "fdr-gate" else "ci/gate"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=prog_name(), epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Run the fd-replacement conformance cases, a fuzz smoke run and kernel "
                            "health checks\nagainst the running kernel; report KTAP on stdout and "
                            "result files in --results DIR.")
    p.add_argument("--list", action="store_true", help="list the cases by family and exit")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="select cases (pytest -k)")
    p.add_argument("--known-failures", metavar="FILE",
                   help="'family.test_name  reason' lines: such failures are XFAIL, passes XPASS")
    p.add_argument("--profile", choices=("stock", "follow"),
                   help="force the semantics profile instead of probing the kernel")
    p.add_argument("--seed", type=_count, metavar="N",
                   help="seed of the fuzz smoke run, FDR_SEED for the cases (default: random, "
                        "printed in the KTAP header)")
    p.add_argument("--results", default="results", metavar="DIR", help="output directory (default ./results)")
    p.add_argument("--fuzz-seconds", type=_count, default=5, metavar="N",
                   help="length of the fuzz smoke run (default 5, 0 to skip)")
    p.add_argument("--exit-convention", choices=tuple(exitcodes.CONVENTIONS), default="kselftest",
                   help="exit codes: kselftest (skip 4, default), fedora (skip 3), automake (skip 77)")
    p.add_argument("--timeout", type=_count, default=None, metavar="S",
                   help="the case run's limit in seconds before FDR_TIMEOUT_SCALE "
                        "(default: ci/settings' timeout, as kselftest's --override-timeout)")
    p.add_argument("--cases-dir", default=str(REPO / "cases"), help=argparse.SUPPRESS)
    return p


def read_settings(path: Path | None = None) -> dict[str, str]:
    """kselftest `settings` (default SETTINGS): `key=value` lines (timeout=NNN); ValueError
    when it cannot be read."""
    path = path or SETTINGS
    if not path.exists():
        return {}
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def positive(name: str, text: str) -> int:
    """An integer setting that must be >= 1 (ValueError naming it otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return value


def timeout_scale(env) -> int:
    """FDR_TIMEOUT_SCALE for the executor: SLOW_SCALE under KSFT_MACHINE_SLOW=yes, else as
    set, else 1."""
    if env.get("KSFT_MACHINE_SLOW") == "yes":
        return SLOW_SCALE
    return positive("FDR_TIMEOUT_SCALE (a factor)", env.get("FDR_TIMEOUT_SCALE", "1"))


def validate(args) -> None:
    """Check everything that can be checked before running anything (raises UsageError);
    sets args.timeout, the pytest run's limit in seconds from ci/settings."""
    if not Path(args.cases_dir).is_dir():
        raise UsageError(f"cases directory {args.cases_dir} does not exist")
    if Path(args.cases_dir) == REPO / "cases" and not (REPO / "conftest.py").exists():
        raise UsageError(f"{REPO} has cases/ but not the suite's conftest.py (an installed package?): "
                         "run the gate from a checkout (ci/gate) or a bundle (ci/bundle, run-gate)")
    if args.known_failures:
        try:
            parse_known_failures(Path(args.known_failures).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--known-failures {args.known_failures}: cannot read: {exc}") from None
        except ValueError as exc:
            raise UsageError(f"--known-failures {args.known_failures}: {exc}") from None
    if args.keyword:
        try:
            from _pytest.mark.expression import Expression
            Expression.compile(args.keyword)
        except ImportError:
            pass                                  # pytest itself will complain (exit 4 -> usage error)
        except SyntaxError as exc:
            raise UsageError(f"-k {args.keyword!r}: {exc.msg}") from None
    try:
        from native import kernel_facts
        kernel_facts.facts()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        timeout = int(read_settings().get("timeout", "300"))
        timeout_scale(os.environ)
    except ValueError as exc:
        raise UsageError(f"bad timeout setting (ci/settings or FDR_TIMEOUT_SCALE): {exc}") from None
    if timeout < 1:
        raise UsageError(f"bad timeout setting: timeout in {SETTINGS} must be a positive integer, got {timeout}")
    if nofile() < MIN_NOFILE:
        raise UsageError(f"the open-file limit (ulimit -n) is {nofile()}, below the {MIN_NOFILE} the "
                         "run needs: raise it")
    if not args.list:
        check_writable(Path(args.results))
    args.results = os.path.abspath(args.results)   # pytest and the fuzzer run in the suite's directory
    args.timeout = args.timeout or timeout


def nofile() -> int:
    """The soft RLIMIT_NOFILE: every process of the run inherits it."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def xdist_workers() -> str:
    """-n for pytest: 'auto' (one per CPU), fewer where the fd limit leaves no room for them."""
    room = max(1, (nofile() - MIN_NOFILE) // NOFILE_PER_WORKER + 2)
    return "auto" if room >= len(os.sched_getaffinity(0)) else str(room)


def check_writable(directory: Path) -> None:
    """A file can be made in the results directory, or (when it does not exist yet) the
    directory in its nearest existing ancestor; nothing is created here."""
    existing = Path(os.path.abspath(directory))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if existing != Path(os.path.abspath(directory)):
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                raise OSError(0, f"{existing} is not a writable directory")
            probe = tempfile.mkdtemp(dir=existing, prefix=".gate-probe-")
            os.rmdir(probe)
            return
        fd, name = tempfile.mkstemp(dir=directory, prefix=".gate-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UsageError(f"results directory {directory} is not writable: {exc.strerror or exc}") from None


class Outputs:
    """Output files written under temporary names in DIR; commit() renames them all.

    begin() clears the previous run's files and leaves a summary.md saying INCOMPLETE
    until commit() replaces it, so DIR never mixes two runs and always says whether
    its run finished.  scratch is the run's temporary directory (TMPDIR of pytest and
    the fuzzer), inside DIR and removed at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.tag = f".partial-{os.getpid()}"
        self.scratch = directory / f".tmp{self.tag}"

    def begin(self, info: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mark(results.summary_md([], info, "incomplete",
                                     ["this run has not finished: it is running, or it was killed"]))
        for name in OUTPUT_FILES:
            if name != "summary.md":
                (self.directory / name).unlink(missing_ok=True)
        shutil.rmtree(self.directory / "fuzz", ignore_errors=True)
        self.scratch.mkdir()

    def mark(self, summary: str) -> None:
        """Replace summary.md at once."""
        self.write("summary.md", summary)
        os.replace(self.tmp("summary.md"), self.directory / "summary.md")

    def interrupted(self, so_far, info: dict, why: str) -> None:
        """Keep the log and the results so far, and say in summary.md that the run was stopped."""
        for name in ("pytest.log", "results.jsonl"):
            if self.tmp(name).exists():
                os.replace(self.tmp(name), self.directory / name)
        self.mark(results.summary_md(so_far, info, f"interrupted ({why})",
                                     [f"the run was stopped by {why}: the results are those so far"]))

    def tmp(self, name: str) -> Path:
        return self.directory / f".{name}{self.tag}"

    def write(self, name: str, text: str) -> None:
        self.tmp(name).write_text(text)

    def commit(self) -> None:
        for name in OUTPUT_FILES:
            if self.tmp(name).exists():
                os.replace(self.tmp(name), self.directory / name)

    def discard(self) -> None:
        for name in OUTPUT_FILES:
            self.tmp(name).unlink(missing_ok=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


def child_env(seed: int) -> dict[str, str]:
    """The environment of pytest and the fuzzer: ci importable, seed and timeout scale exported."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    env["FDR_SEED"] = str(seed)
    env["FDR_TIMEOUT_SCALE"] = str(timeout_scale(os.environ))
    return env


def pytest_base(args) -> list[str]:
    """The pytest command line shared by --list and the run."""
    cmd = [sys.executable, "-m", "pytest", str(Path(args.cases_dir).resolve()), "-p", "no:cacheprovider"]
    if args.keyword:
        cmd += ["-k", args.keyword]
    if args.profile:
        cmd += [f"--fdr-profile={args.profile}"]
    return cmd


def pytest_error(rc: int, log: str) -> str:
    """pytest's usage error (exit 4) or empty selection (exit 5) as one line."""
    if rc == 5:
        return "no case selected (empty cases directory, or -k matched nothing)"
    lines = [line for line in log.splitlines() if "error" in line.lower()]
    return "pytest: " + (lines[-1].strip() if lines else f"usage error (exit {rc})")


def collect(args, env, **kw) -> tuple[subprocess.CompletedProcess, list[tuple[str, str]]]:
    """pytest --collect-only over the run's selection: the finished process, and (family,
    name) of every case it selects, in collection order."""
    proc = subprocess.run(pytest_base(args) + ["--collect-only", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, **kw)
    from ci.ktap_plugin import identify
    return proc, [identify(line.strip()) for line in proc.stdout.splitlines() if "::" in line]


def unreported(args, env, reported: list[Result], progress: list[Result], limit: int) -> list[Result]:
    """After pytest was killed at its limit: the cases of families that never completed,
    each with its verdict if it had one (progress), else as an ERROR (timeout), so a hung
    family shows up with its cases."""
    seen = {(r.family, r.name) for r in reported}
    known = {(r.family, r.name): r for r in progress}
    return [known.get((family, name)) or
            Result(family, name, ERROR, "timeout",
                   details=f"not reported when pytest was killed after the {limit} s limit")
            for family, name in collect(args, env)[1] if (family, name) not in seen]


def list_cases(args, env) -> int:
    """--list: the collected cases, grouped by family."""
    proc, cases = collect(args, env)
    if proc.returncode == 5:                        # nothing to list
        return 0
    if proc.returncode != 0:
        print(f"gate: error: {pytest_error(proc.returncode, proc.stdout + proc.stderr)}", file=sys.stderr)
        return exitcodes.USAGE if proc.returncode == 4 else 1
    families: dict[str, list[str]] = {}
    for family, name in cases:
        families.setdefault(family, []).append(name)
    for family, names in families.items():
        print(family)
        print("".join(f"  {name}\n" for name in names), end="")
    return 0


def run_cases(args, env, out: Outputs, extra_families: int) -> int | None:
    """pytest over the cases, KTAP blocks going straight to our stdout; its exit code,
    or None if it outran the settings timeout (then its process group is killed)."""
    cmd = pytest_base(args) + [
        "-p", "ci.ktap_plugin", "--continue-on-collection-errors", "-rfEX", "-o", "junit_suite_name=cases",
        "--ktap-jsonl", str(out.tmp("results.jsonl")), "--junitxml", str(out.tmp("junit-pytest.xml")),
        "--ktap-extra-families", str(extra_families), "--ktap-plan-file", str(out.tmp("plan"))]
    if args.known_failures:
        cmd += ["--ktap-known-failures", str(Path(args.known_failures).resolve())]
    if importlib.util.find_spec("xdist"):
        cmd += ["-n", xdist_workers(), "--dist", "loadfile"]
    sys.stdout.flush()
    ktap_fd = os.dup(sys.stdout.fileno())
    cmd += ["--ktap-fd", str(ktap_fd), "--basetemp", str(out.scratch / "pytest")]
    with open(out.tmp("pytest.log"), "w") as log:
        env = {**env, "TMPDIR": str(out.scratch), "FDR_GATE_PID": str(os.getpid())}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=(ktap_fd,), start_new_session=True)
        os.close(ktap_fd)
        try:
            return proc.wait(timeout=args.timeout * int(env["FDR_TIMEOUT_SCALE"]))
        except subprocess.TimeoutExpired:
            return None
        finally:                                    # timeout, signal: nothing of it outlives us
            lifecycle.stop_group(proc)


def run_fuzz(seconds: int, seed: int, profile: str | None, env, repo: Path = REPO,
             out_dir: Path | None = None) -> Result:
    """The fuzz smoke: `python -m fuzz --seconds N --seed S [--profile P] [--out DIR]`; exit
    0 passes, 4 skips."""
    if seconds == 0:
        return Result("fuzz", "smoke", SKIP, "disabled")
    if not (repo / "fuzz" / "__main__.py").exists():
        return Result("fuzz", "smoke", SKIP, "no_fuzzer")
    cmd = [sys.executable, "-m", "fuzz", "--seconds", str(seconds), "--seed", str(seed),
           "--shrink-seconds", "30"]
    cmd += ["--profile", profile] if profile else []
    cmd += ["--out", str(out_dir)] if out_dir else []
    limit = (seconds + 60) * int(env.get("FDR_TIMEOUT_SCALE", "1"))
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        return Result("fuzz", "smoke", ERROR, "timeout", details=f"no exit within {limit} s: {cmd}")
    finally:
        lifecycle.stop_group(proc)
    tail = "\n".join((stdout + stderr).splitlines()[-50:])
    if proc.returncode == 0:
        return Result("fuzz", "smoke", PASS)
    if proc.returncode == 4:
        return Result("fuzz", "smoke", SKIP, (stdout.split() or ["fuzz_skipped"])[-1])
    return Result("fuzz", "smoke", FAIL, details=f"exit {proc.returncode}\n{tail}")


def detect_profile(forced: str | None) -> tuple[str, Result]:
    """The semantics profile to report, and the gate.profile result.

    Forced: not probed.  native.probes missing: 'unknown', skipped.  A kernel
    without user notification or ADDFD: skipped with the feature's skip token.
    A kernel matching neither profile fails, with the probe's trace attached."""
    if forced:
        return f"{forced} (forced)", Result(GATE_FAMILY, "profile", SKIP, "forced")
    try:
        probes = importlib.import_module("native.probes")
    except ImportError as exc:
        return f"unknown ({exc})", Result(GATE_FAMILY, "profile", SKIP, "no_probe")
    try:
        lacking = probes.missing(("user_notif", "addfd")) if hasattr(probes, "missing") else None
        if lacking:
            return f"none ({lacking})", Result(GATE_FAMILY, "profile", SKIP, lacking)
        name, trace = probes.detect_profile()
    except Exception:
        return "error", Result(GATE_FAMILY, "profile", ERROR, "probe_failed", details=traceback.format_exc())
    if name is None:
        return "none", Result(GATE_FAMILY, "profile", FAIL, "no_profile_matches",
                              details=f"the kernel matches neither profile\n{trace}")
    return f"{name} (detected)", Result(GATE_FAMILY, "profile", PASS)


def kernel_version_info() -> dict[str, str]:
    """The header lines naming the upstream version used for version facts, where it was
    read, and which tracked commits follow from it (with FDR_KERNEL_COMMITS if set)."""
    from native import kernel_facts
    info = {"kernel version": str(kernel_facts.upstream_version()),
            "kernel commits": " ".join(f"{'+' if has else '-'}{sha}"
                                       for sha, has in kernel_facts.facts().items())}
    if kernel_facts.overrides_text():
        info["kernel commits"] += f" (FDR_KERNEL_COMMITS={kernel_facts.overrides_text()})"
    return info


def pytest_result(rc: int | None, timeout: int) -> Result:
    """gate.pytest: did pytest run to its end (exit 0 or 1)?"""
    if rc in (0, 1):
        return Result(GATE_FAMILY, "pytest", PASS)
    what = (f"killed after its {timeout} s limit (ci/settings timeout x FDR_TIMEOUT_SCALE)"
            if rc is None else f"exited {rc}")
    return Result(GATE_FAMILY, "pytest", ERROR, "timeout" if rc is None else f"exit_{rc}",
                  details=f"pytest {what}; see pytest.log")


def check_selection(args, env) -> None:
    """-k: does it select any case?  Asked before anything is printed or written (UsageError)."""
    proc, _ = collect(args, env, start_new_session=True)
    if proc.returncode in (4, 5):
        raise UsageError(pytest_error(proc.returncode, proc.stdout + proc.stderr))


def stale_known_failures(args, cases) -> list[str]:
    """Warnings for --known-failures entries that name no case of a full run (a stale
    baseline); none under -k, which leaves cases out on purpose."""
    if not args.known_failures or args.keyword:
        return []
    names = {f"{r.family}.{r.name}" for r in cases}
    known = parse_known_failures(Path(args.known_failures).read_text())
    return [f"--known-failures names {name}, which is no case of this suite (stale entry?)"
            for name in known if name not in names]


def bail_out(out: Outputs, info: dict, why: str) -> None:
    """An interrupted run: KTAP's `Bail out!` and the totals so far; summary.md says so."""
    so_far = read_jsonl(out.tmp("results.jsonl")) if out.tmp("results.jsonl").exists() else []
    try:
        print(f"\nBail out! interrupted by {why}\n" + ktap.totals_line(so_far), end="", flush=True)
    except OSError:
        pass                                        # nobody reads our stdout any more
    out.interrupted(so_far, info, why)


def main(argv=None) -> int:
    """The gate, stopped cleanly by SIGTERM, SIGINT or SIGHUP (one line, exit 128 + signal),
    and waiting for every process it started (see ci.lifecycle)."""
    try:
        with lifecycle.Lifecycle():
            return gate(argv)
    except lifecycle.Interrupted as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return exc.code


def gate(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        validate(args)
    except UsageError as exc:
        print(f"gate: error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except SystemExit as exc:                       # --help
        return int(exc.code or 0)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    env = child_env(seed)
    if args.list:
        return list_cases(args, env)
    try:
        if args.keyword:
            check_selection(args, env)
    except UsageError as exc:
        print(f"gate: error: {exc}", file=sys.stderr)
        return exitcodes.USAGE

    klog, taint_before = health.KernelLog(), health.read_taint()
    profile, profile_res = detect_profile(args.profile)
    info = {"suite": f"fd-replacement gate {SUITE_VERSION}", "seed": seed, "kernel": platform.release(),
            **kernel_version_info(), "profile": profile, "timeout scale": env["FDR_TIMEOUT_SCALE"]}
    out = Outputs(Path(args.results))
    try:
        out.begin(info)
        print(ktap.header(info), end="", flush=True)
        if klog.error:
            print(ktap.comment(f"kernel log not checked: {klog.error}"), end="")
        rc = run_cases(args, env, out, len(SYNTHETIC_FAMILIES))
        if rc in (4, 5):
            raise UsageError(pytest_error(rc, out.tmp("pytest.log").read_text()))
        cases = read_jsonl(out.tmp("results.jsonl"))
        limit = args.timeout * int(env["FDR_TIMEOUT_SCALE"])
        progress = read_jsonl(out.tmp("results.jsonl.progress"))
        hung = unreported(args, env, cases, progress, limit) if rc is None else []
        detected = profile.split()[0]
        fuzz = run_fuzz(args.fuzz_seconds, seed, detected if detected in ("stock", "follow") else None,
                        {**env, "TMPDIR": str(out.scratch)}, out_dir=Path(args.results) / "fuzz")
        kernel = health.health_results(taint_before, health.read_taint(), klog.read_new(), klog.error)
        synthetic = [fuzz, profile_res, pytest_result(rc, limit)] + kernel
        # A family's block is written when it completes: one with a case that never
        # reported was not, and is written now with every case it has.
        incomplete = {r.family for r in hung if r.outcome == ERROR and r.reason == "timeout"}
        cases += hung
        printed = len({r.family for r in cases} - incomplete)
        hung_families = results.by_family([r for r in cases if r.family in incomplete])
        if not out.tmp("plan").exists():          # pytest died before collection: the plan is ours
            print(ktap.plan(printed + len(hung_families) + len(SYNTHETIC_FAMILIES)), end="")
        emitter = ktap.FamilyEmitter(sys.stdout, first=printed + 1)
        for family, group in list(hung_families.items()) + list(results.by_family(synthetic).items()):
            emitter.family(family, group)
        everything = cases + synthetic
        stale = stale_known_failures(args, cases)
        print("".join(ktap.comment(f"warning: {text}") for text in stale), end="")
        print(ktap.totals_line(everything), end="", flush=True)

        verdict = exitcodes.verdict(everything, CHECK_FAMILIES)
        code = exitcodes.exit_code(verdict, args.exit_convention)
        info["verdict"] = f"{verdict} (exit {code}, {args.exit_convention} convention)"
        junit_tmp = out.tmp("junit-pytest.xml")
        pytest_xml = junit_tmp.read_text() if junit_tmp.exists() else None
        junit_tmp.unlink(missing_ok=True)
        props = {"kernel_release": info["kernel"], "profile": profile, "seed": seed}
        out.write("junit.xml", results.junit_xml_text(pytest_xml, synthetic, props))
        out.write("results.txt", results.results_txt(everything))
        notes = ([f"kernel log not checked: {klog.error}"] if klog.error else []) + stale
        out.write("summary.md", results.summary_md(everything, info, verdict, notes))
        out.commit()
        return code
    except UsageError as exc:
        print(f"gate: error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except lifecycle.Interrupted as exc:
        bail_out(out, info, exc.name)
        raise
    finally:
        out.discard()
        out.tmp("junit-pytest.xml").unlink(missing_ok=True)
        out.tmp("plan").unlink(missing_ok=True)
        out.tmp("results.jsonl.progress").unlink(missing_ok=True)
        klog.close()


if __name__ == "__main__":
    sys.exit(main())
