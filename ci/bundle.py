"""The offline bundle: the gate, ready to run on a test machine with only Python (`ci/bundle`).

    ci/bundle [--out FILE] [--wheelhouse DIR]

Writes one tarball (default ./fd-replace-gate-<version>-<arch>.tar.gz) holding a
directory fd-replace-gate-<version>-<arch>/ with:

  run-gate            POSIX sh launcher: `python3 -m ci.gate "$@"` with PYTHONPATH set
                      to the bundle and vendor/; refuses (exit 2, one line) a Python of
                      another minor version or another architecture
  native/ cases/ ci/ fuzz/ conftest.py pyproject.toml
                      the suite's Python sources, and native/_executor*.so prebuilt here
  vendor/             the runtime dependencies (pyproject's `dependencies`), installed
                      with `pip install --target`, at the versions of the running venv
  sitecustomize.py    takes the test machine's site-packages off sys.path, so its own
                      pytest plugins and packages stay out of the run
  BUNDLE-INFO         what it was built from and for (Python minor, ABI tag, arch, commit),
                      and a manifest: `files: N`, then `file: SHA256 PATH` per file; run-gate
                      checks it first (exit 2, one line naming the first missing or damaged file)

The test machine needs no venv, compiler or network: only the same Python minor
version (the cffi-built module and _cffi_backend are specific to it).

Wheels are kept in --wheelhouse (default build/wheelhouse): a later build with
the same versions installs from there without touching the network.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("native", "cases", "ci", "fuzz")
TOP_FILES = ("conftest.py", "pyproject.toml")
CI_DATA = ("settings", "config")              # non-Python files in ci/ that the gate reads
NOT_PINNED = {"pip", "setuptools", "wheel"}   # never constrained from the running environment

RUN_GATE = r"""#!/bin/sh
# fd-replace gate, offline bundle {version} for {arch}, Python {pyver}.
# Runs `python3 -m ci.gate "$@"` (see `run-gate --help`) from this directory's
# sources and vendored packages: no venv, compiler or network needed.
# FDR_PYTHON names another interpreter than python3.
need={pyver}
arch={arch}
# Empty or relative PATH entries mean the caller's directory: never look there.
clean=
set -f
IFS_=$IFS IFS=:
for d in $PATH; do
	case $d in /*) clean=${{clean:+$clean:}}$d ;; esac
done
IFS=$IFS_
set +f
PATH=${{clean:-/usr/local/bin:/usr/bin:/bin}}
export PATH
# This directory, found without PATH (no dirname), never the caller's.
case $0 in */*) here=${{0%/*}} ;; *) here=. ;; esac
here=$(CDPATH= cd -- "$here" && pwd -P) || exit 2
py=${{FDR_PYTHON:-python3}}
if ! command -v "$py" >/dev/null 2>&1; then
	echo "run-gate: $py not found: this bundle needs Python $need" >&2
	exit 2
fi
have=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
if [ "$have" != "$need" ]; then
	echo "run-gate: this bundle needs Python $need (its native module is built for it), $py is ${{have:-unusable}}" >&2
	exit 2
fi
machine=$(uname -m 2>/dev/null)
if [ -n "$machine" ] && [ "$machine" != "$arch" ]; then
	echo "run-gate: this bundle is built for $arch, this machine is $machine" >&2
	exit 2
fi
# Every file as BUNDLE-INFO lists it: a half-extracted or cut tarball is not a kernel failure.
"$py" -I -S - "$here" <<'CHECK' || exit 2
{check}CHECK
# The bundle and vendor/ lead sys.path (its sitecustomize.py then drops the interpreter's
# site-packages), the caller's directory stays off it, and nothing is written into the bundle.
PYTHONPATH="$here:$here/vendor"
PYTHONSAFEPATH=1
PYTHONDONTWRITEBYTECODE=1
PYTHONNOUSERSITE=1
FDR_GATE_PROG=run-gate
export PYTHONPATH PYTHONSAFEPATH PYTHONDONTWRITEBYTECODE PYTHONNOUSERSITE FDR_GATE_PROG
exec "$py" -m ci.gate "$@"
"""

# run-gate's manifest check (stdlib only, isolated mode): exit 2 and one line on the first problem.
CHECK_MANIFEST = """\
import hashlib, os, sys
here = sys.argv[1]
def bad(what):
    sys.stderr.write("run-gate: the bundle is incomplete or damaged: %s (extract the tarball again)\\n" % what)
    sys.exit(2)
try:
    with open(os.path.join(here, "BUNDLE-INFO"), encoding="utf-8") as f:
        lines = f.read().splitlines()
except (OSError, UnicodeDecodeError):
    bad("BUNDLE-INFO is missing or unreadable")
files = [line.split(" ", 2)[1:] for line in lines if line.startswith("file: ")]
if ["files: %d" % len(files)] != [line for line in lines if line.startswith("files: ")]:
    bad("BUNDLE-INFO is cut short")
for digest, rel in files:
    try:
        with open(os.path.join(here, rel), "rb") as f:
            got = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        bad(rel + " is missing")
    if got != digest:
        bad(rel + " is damaged")
"""

# Imported at every interpreter start-up in the bundle (its directory leads PYTHONPATH): the
# test machine's own site-packages leave sys.path, so neither their pytest plugins (found by
# entry point) nor their module versions get into the run; the bundle's python is the
# standard library, the suite and vendor/ only.
SITECUSTOMIZE = """\
\"\"\"fd-replace gate bundle: drop the interpreter's site-packages from sys.path (see run-gate).\"\"\"
import site as _site
import sys as _sys

_drop = {*_site.getsitepackages(), _site.getusersitepackages()}
_sys.path[:] = [_p for _p in _sys.path if _p not in _drop]
del _site, _sys, _drop
"""


class BundleError(Exception):
    """Reported as one line, exit 2."""


def project() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def bundle_name(version: str, arch: str) -> str:
    return f"fd-replace-gate-{version}-{arch}"


# What `python -m native.build` makes, and the sources each is made from.
NATIVE_BUILT = (("_executor{ext}", ("fdr_common.h", "executor.h", "executor.c")),
                ("_race{ext}", ("fdr_common.h", "race.h", "race.c", "race_target.c",
                                "race_supervisor.c", "race_scenarios.c",
                                "race_scenarios_vs.c", "failnth.h",
                                "failnth.c")),
                ("_notif_signal{ext}", ("fdr_common.h", "notif_signal.h", "notif_signal.c")),
                ("_churn{ext}", ("fdr_common.h", "churn.h", "churn.c")),
                ("fdr-zygote", ("fdr_common.h", "executor.h", "executor.c", "zygote.c")))


def native_modules() -> list[Path]:
    """The built native modules for this interpreter, and the zygote helper."""
    out = []
    for pattern, sources in NATIVE_BUILT:
        built = REPO / "native" / pattern.format(ext=sysconfig.get_config_var("EXT_SUFFIX"))
        if not built.exists():
            raise BundleError(f"{built.relative_to(REPO)} is missing: build it with "
                              "`python -m native.build` (ci/bundle does so through ci/bootstrap)")
        stale = [n for n in sources if (REPO / "native" / n).exists()
                 and (REPO / "native" / n).stat().st_mtime > built.stat().st_mtime]
        if stale:
            raise BundleError(f"{built.name} is older than {', '.join(stale)}: rebuild with "
                              "`python -m native.build`")
        out.append(built)
    return out


def source_files() -> list[Path]:
    """The suite's files that go into the bundle, relative to REPO."""
    files = [Path(name) for name in TOP_FILES]
    for top in SOURCE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files.append(path.relative_to(REPO))
    files += [Path("ci") / name for name in CI_DATA if (REPO / "ci" / name).exists()]
    files += [p.relative_to(REPO) for p in native_modules()]
    return files


def constraints() -> str:
    """name==version for every distribution of the running environment: the bundle vendors
    exactly what the venv's gate runs were made with."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in NOT_PINNED:
            pins[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(sorted(pins.values())) + "\n"


def pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def vendor(target: Path, deps: list[str], wheelhouse: Path, work: Path) -> None:
    """pip install --target: from the wheelhouse alone when it has everything, else
    after downloading the missing wheels into it."""
    pins = work / "constraints.txt"
    pins.write_text(constraints())
    common = ["--only-binary", ":all:", "-c", str(pins), *deps]
    wheelhouse.mkdir(parents=True, exist_ok=True)
    offline = ["install", "--target", str(target), "--no-index", "--find-links", str(wheelhouse), *common]
    if pip(*offline).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        got = pip("download", "--dest", str(wheelhouse), *common)
        if got.returncode != 0:
            raise BundleError("pip download failed: " + (got.stderr.strip().splitlines() or ["?"])[-1])
        done = pip(*offline)
        if done.returncode != 0:
            raise BundleError("pip install --target failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    shutil.rmtree(target / "bin", ignore_errors=True)    # console scripts naming the build machine's python


def git_describe() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def manifest(stage: Path) -> str:
    """BUNDLE-INFO's manifest: `files: N`, then `file: SHA256 PATH` for every file but itself."""
    files = sorted(p for p in stage.rglob("*") if p.is_file() and p.name != "BUNDLE-INFO")
    lines = [f"file: {hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(stage)}\n" for p in files]
    return f"files: {len(lines)}\n" + "".join(lines)


def bundle_info(version: str, arch: str, vendored: Path) -> str:
    pkgs = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions(path=[str(vendored)]))
    lines = {
        "suite": f"fd-replace-suite {version}",
        "python": "%d.%d" % sys.version_info[:2],
        "built-with": f"{platform.python_implementation()} {platform.python_version()}",
        "abi": sysconfig.get_config_var("SOABI"),
        "arch": arch,
        "commit": git_describe(),
        "built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vendor": " ".join(pkgs),
    }
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def build(out: Path, wheelhouse: Path) -> Path:
    proj = project()
    version, arch = proj["version"], platform.machine()
    name = bundle_name(version, arch)
    files = source_files()
    with tempfile.TemporaryDirectory(prefix="fdr-bundle-") as tmp:
        work = Path(tmp)
        stage = work / name
        for rel in files:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, stage / rel)
        vendor(stage / "vendor", list(proj.get("dependencies", [])), wheelhouse, work)
        launcher = stage / "run-gate"
        launcher.write_text(RUN_GATE.format(version=version, arch=arch, pyver="%d.%d" % sys.version_info[:2],
                                            check=CHECK_MANIFEST))
        launcher.chmod(0o755)
        (stage / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (stage / "BUNDLE-INFO").write_text(bundle_info(version, arch, stage / "vendor") + manifest(stage))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
                tar.add(stage, arcname=name, filter=_normalize)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ci/bundle", description=__doc__.split("\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", metavar="FILE",
                    help="the tarball to write (default: see below)")
    ap.add_argument("--wheelhouse", metavar="DIR", default=str(REPO / "build" / "wheelhouse"),
                    help="wheel cache for the vendored packages (default build/wheelhouse)")
    args = ap.parse_args(argv)
    out = Path(args.out or bundle_name(project()["version"], platform.machine()) + ".tar.gz")
    try:
        path = build(out.resolve(), Path(args.wheelhouse).resolve())
    except (BundleError, OSError) as exc:
        print(f"bundle: error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
