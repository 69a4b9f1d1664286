"""Build a kernel for the QEMU lane: `python -m ci.kbuild --source DIR|TARBALL [--patches P] [--fragment F]`.

The kernel is `make tinyconfig` plus the config fragments (in order, later ones
win), with the patches applied by `patch -p1` in order; everything is built in.
Each build is cached under a key, the hash of (source identity, fragments,
patches): a second call with the same inputs returns the cached output at once.

Source identity: a tarball (a Debian linux-source-*.tar.xz, say) is named by
its SHA-256; a directory by its real path and the size and mtime of every file
in it.  A tarball is extracted once under CACHE/sources/.

Layout under CACHE:
  <key>/                   the output: vmlinux (ELF, boots by QEMU's PVH entry
                           with -kernel), bzImage, .config, build.log, kernel.json
                           {release, source, patches, fragments, key, tree};
                           with CONFIG_GCOV_KERNEL also gcov/: every .gcno of the
                           object tree and its source, under the object's path
                           (what ci.coverage reads)
  trees/<lineage>/src      the patched copy of the source (never edit it: it is
                           re-synced from the source); trees/<lineage>/obj the
                           object tree (make O=...).  The lineage is the source's
                           path or tarball hash with the fragments, not the
                           patches: after touching a file of a source directory,
                           or changing a patch, the next call rewrites the files
                           that changed alone and make rebuilds in seconds (a
                           patch to a widely included header costs more).  Builds
                           of one lineage take turns in its tree.  `--rebuild`
                           re-runs make in a kept tree.

Every option a fragment sets must end up that way in the final .config
(olddefconfig silently drops options whose dependencies are missing, and a
select forces options on): if not,
the build stops naming them.

Exit status: 0 built (the output directory is the last line of stdout), 1 the
build failed (make's error; the log is named), 2 bad input (a missing source,
patch or fragment, a patch that does not apply, a fragment option that does not
hold), each as one line on stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("FDR_KBUILD_CACHE",
                                    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fdr-kbuild"))
TARBALL_SUFFIXES = (".tar", ".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar.zst")
PATCH_SUFFIXES = (".patch", ".diff")
ARCH = "x86_64"
KCONFIG = Path(__file__).resolve().parent / "kconfig"
LANE_FRAGMENT = KCONFIG / "lane.config"       # what every lane kernel needs: pass it first
DEBUG_FRAGMENT = KCONFIG / "debug.config"     # KASAN, lockdep, hung tasks, fault injection: after LANE_FRAGMENT
LOCK_TIMEOUT = 3 * 3600          # seconds to wait for another build of the same tree
KEY_VERSION = "kbuild-1"         # bump when the way a kernel is built changes
_FRAGMENT_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_NOT_SET_LINE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class BadInput(Exception):
    """Bad input (exit 2): reported as one line."""


class BuildFailed(Exception):
    """make failed (exit 1): reported as one line naming the log."""


# ---------------------------------------------------------------- inputs

@dataclass(frozen=True)
class Source:
    path: Path          # the directory or tarball as given, resolved
    kind: str           # "dir" or "tarball"
    identity: str       # what the cache key hashes
    lineage: str        # what the kept tree is keyed by


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _walk(root: Path):
    """(relative path, size, mtime_ns) of every regular file and symlink under root, sorted;
    .git skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out.append((os.path.relpath(full, root), st.st_size, st.st_mtime_ns))
    out.sort()
    return out


def source_of(path) -> Source:
    """Classify and identify a kernel source: a tree (Makefile and Kconfig at its top) or a
    tarball."""
    p = Path(path).expanduser()
    if not p.exists():
        raise BadInput(f"source {path}: no such file or directory")
    p = p.resolve()
    if p.is_dir():
        if not (p / "Makefile").is_file() or not (p / "Kconfig").is_file():
            raise BadInput(f"source {path}: not a kernel tree (no Makefile and Kconfig at its top)")
        listing = hashlib.sha256(json.dumps(_walk(p)).encode()).hexdigest()
        return Source(p, "dir", f"dir:{p}:{listing}", f"dir:{p}")
    if not p.name.endswith(TARBALL_SUFFIXES):
        raise BadInput(f"source {path}: neither a directory nor a tarball ({', '.join(TARBALL_SUFFIXES)})")
    digest = _sha256(p)
    return Source(p, "tarball", f"tarball:{digest}", f"tarball:{digest}")


def patch_files(patches) -> list[Path]:
    """The patch files in application order: each argument a file, or a directory's
    *.patch/*.diff sorted by name."""
    out = []
    for item in patches:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.name.endswith(PATCH_SUFFIXES))
            if not found:
                raise BadInput(f"patches {item}: no *.patch or *.diff in the directory")
            out.extend(q.resolve() for q in found)
        elif p.is_file():
            out.append(p.resolve())
        else:
            raise BadInput(f"patch {item}: no such file or directory")
    return out


def fragment_files(fragments) -> list[Path]:
    out = []
    for item in fragments:
        p = Path(item).expanduser()
        if not p.is_file():
            raise BadInput(f"fragment {item}: no such file")
        out.append(p.resolve())
    return out


def parse_fragment(text: str) -> dict[str, str]:
    """A config fragment's settings: {CONFIG_X: value}, with 'n' for `# CONFIG_X is not set`."""
    wanted = {}
    for line in text.splitlines():
        line = line.strip()
        m = _FRAGMENT_LINE.match(line)
        if m:
            wanted[m.group(1)] = m.group(2)
            continue
        m = _NOT_SET_LINE.match(line)
        if m:
            wanted[m.group(1)] = "n"
    return wanted


def unmet_options(wanted: dict[str, str], config_text: str) -> list[str]:
    """The options of `wanted` whose value the final .config does not hold, as
    'CONFIG_X=want (got)' strings."""
    final = parse_fragment(config_text)
    unmet = []
    for name, want in wanted.items():
        got = final.get(name, "n")
        if want != got:
            unmet.append(f"{name}={want} (got {'not set' if got == 'n' else got})")
    return unmet


def cache_key(source: Source, patches, fragments) -> str:
    """The hash of (source identity, patch names and contents, fragment names and contents),
    in order."""
    h = hashlib.sha256()
    h.update(KEY_VERSION.encode() + b"\0" + ARCH.encode() + b"\0" + source.identity.encode() + b"\0")
    for kind, files in (("patch", patches), ("fragment", fragments)):
        for f in files:
            h.update(f"{kind}:{Path(f).name}\0".encode())
            h.update(Path(f).read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _lineage_key(source: Source, fragments) -> str:
    """The kept tree's key: the source's path or tarball hash and the fragments (the patches
    are synced)."""
    return cache_key(Source(source.path, source.kind, source.lineage, source.lineage), (), fragments)


# ---------------------------------------------------------------- the tree

def patched_paths(patch_text: str) -> set[str]:
    """The paths (patch -p1) a unified diff touches, /dev/null left out."""
    paths = set()
    for line in patch_text.splitlines():
        if line.startswith(("--- ", "+++ ")):
            name = line[4:].split("\t")[0].strip()
            if name != "/dev/null" and "/" in name:
                paths.add(name.split("/", 1)[1])
    return paths


def _run_patch(patch: Path, cwd: Path) -> None:
    proc = subprocess.run(["patch", "-p1", "--batch", "--forward", "--silent", "-i", str(patch)],
                          cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if proc.returncode != 0:
        first = next((line for line in proc.stdout.splitlines() if line.strip()), f"exit {proc.returncode}")
        raise BadInput(f"patch {patch} does not apply: {first.strip()}")


def _extract(tarball: Path, sources: Path, digest: str) -> Path:
    """The tarball's tree, extracted once under `sources`: its single top directory, or the
    whole."""
    dest = sources / digest[:20]
    if (dest / ".complete").exists():
        return _top(dest)
    sources.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=sources))
    try:
        proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
        if proc.returncode != 0:
            raise BadInput(f"source {tarball}: tar failed: {proc.stdout.strip().splitlines()[-1:]}")
        (tmp / ".complete").touch()
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    top = _top(dest)
    if not (top / "Makefile").is_file():
        raise BadInput(f"source {tarball}: the tarball holds no kernel tree")
    return top


def _top(dest: Path) -> Path:
    entries = [e for e in dest.iterdir() if e.name != ".complete"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def prepare_tree(root: Path, tree: Path, patches) -> None:
    """Make `tree` the source under `root` with the patches applied, rewriting only files whose content changed.

    Files no patch touches are copied when their size or mtime differs from the
    last sync (kept in tree/../manifest.json), or when the last sync patched them;
    the patched files are computed in a scratch directory and written only when
    they differ, so make rebuilds only what really changed.  A patch that does not
    apply raises BadInput and leaves the tree alone.
    """
    manifest_path = tree.parent / "manifest.json"
    old, was_patched = {}, set()
    if tree.is_dir() and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        old = {rel: (size, mtime) for rel, size, mtime in manifest["files"]}
        was_patched = set(manifest["patched"])
    else:
        shutil.rmtree(tree, ignore_errors=True)
    touched = set()
    for patch in patches:
        touched |= patched_paths(Path(patch).read_text(errors="replace"))

    # The patched files first (in scratch), so a patch that does not apply leaves the tree alone.
    overlay = {}
    if patches:
        with tempfile.TemporaryDirectory(prefix="kbuild-patch-") as scratch:
            scratch = Path(scratch)
            for rel in touched:
                if (root / rel).is_file():
                    (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(root / rel, scratch / rel)
            for patch in patches:
                _run_patch(Path(patch), scratch)
            for rel in touched:
                if (scratch / rel).is_file():
                    overlay[rel] = (scratch / rel).read_bytes()

    listing = _walk(root)
    now = {rel for rel, _, _ in listing}
    if not old:
        tree.parent.mkdir(parents=True, exist_ok=True)
        tmp = tree.with_name(tree.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["cp", "-a", "--", f"{root}/.", str(tmp)], check=True, timeout=1800)
        shutil.rmtree(tmp / ".git", ignore_errors=True)
        os.rename(tmp, tree)
    else:
        for rel in set(old) - now - set(overlay):
            with contextlib.suppress(FileNotFoundError):
                (tree / rel).unlink()
        for rel, size, mtime in listing:
            if rel not in touched and (old.get(rel) != (size, mtime) or rel in was_patched):
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    (tree / rel).unlink()
                # A fresh mtime: a file restored from a patched version must look newer than its object.
                shutil.copy(root / rel, tree / rel, follow_symlinks=False)
    for rel, data in overlay.items():
        dest = tree / rel
        if not dest.is_file() or dest.read_bytes() != data:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    for rel in (touched - set(overlay)) | (was_patched - touched - now):    # deleted or created by a patch
        with contextlib.suppress(FileNotFoundError):
            (tree / rel).unlink()
    manifest_path.write_text(json.dumps({"files": listing, "patched": sorted(touched)}))


# ---------------------------------------------------------------- the build

@contextlib.contextmanager
def _locked(path: Path, timeout: float = LOCK_TIMEOUT):
    """An exclusive flock on `path`, waiting at most `timeout` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildFailed(f"{path}: still locked by another build after {timeout:.0f} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _make(src: Path, obj: Path, log, *targets, jobs: int = 1, timeout: float = 4 * 3600) -> None:
    cmd = ["nice", "-n", "19", "make", "-C", str(src), f"O={obj}", f"ARCH={ARCH}", f"-j{jobs}", *targets]
    env = dict(os.environ, KBUILD_BUILD_USER="fdr", KBUILD_BUILD_HOST="kbuild")
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    try:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"make {' '.join(targets)} took over {timeout:.0f} s; see {log.name}") from None
    if proc.returncode != 0:
        raise BuildFailed(f"make {' '.join(targets)} failed (exit {proc.returncode}); see {log.name}")


def configure(src: Path, obj: Path, fragments, log) -> None:
    """tinyconfig, the fragments appended in order, olddefconfig; then every fragment option
    must hold."""
    config = obj / ".config"
    if not config.exists():
        obj.mkdir(parents=True, exist_ok=True)
        _make(src, obj, log, "tinyconfig")
        with open(config, "a") as f:
            for frag in fragments:
                f.write(f"\n# ---- {frag}\n" + Path(frag).read_text())
        _make(src, obj, log, "olddefconfig")
    check_config(config, fragments)


def check_config(config: Path, fragments) -> None:
    """Raise BadInput naming every fragment option the final .config lacks (the last
    fragment setting it wins)."""
    wanted, origin = {}, {}
    for frag in fragments:
        for name, value in parse_fragment(Path(frag).read_text()).items():
            wanted[name] = value
            origin[name] = Path(frag).name
    unmet = unmet_options(wanted, config.read_text())
    if unmet:
        named = ", ".join(f"{u} [{origin[u.split('=')[0]]}]" for u in unmet)
        raise BadInput(f"{config}: fragment options that olddefconfig did not keep (a missing dependency, or a select forcing one on): {named}")


def build(source, patches=(), fragments=(), cache: Path = DEFAULT_CACHE, *, jobs: int = 2,
          rebuild: bool = False, log_to=None) -> Path:
    """Build (or find cached) the kernel from `source` with `patches` and `fragments`;
    return the output directory."""
    src = source_of(source)
    patches = patch_files(patches)
    fragments = fragment_files(fragments)
    cache = Path(cache).expanduser().resolve()
    key = cache_key(src, patches, fragments)
    out = cache / key
    if (out / "kernel.json").exists() and not rebuild:
        return out

    lineage = _lineage_key(src, fragments)
    work = cache / "trees" / lineage
    with _locked(cache / "trees" / f"{lineage}.lock"):
        root = _extract(src.path, cache / "sources", src.identity.split(":")[1]) if src.kind == "tarball" else src.path
        tmp_out = cache / f".{key}.tmp"
        shutil.rmtree(tmp_out, ignore_errors=True)
        tmp_out.mkdir(parents=True)
        log_path = tmp_out / "build.log"
        start = time.monotonic()
        with open(log_path, "w") as log:
            log.write(f"# source {src.path} ({src.identity[:80]})\n# key {key}\n# tree {work}\n")
            for p in patches:
                log.write(f"# patch {p}\n")
            for f in fragments:
                log.write(f"# fragment {f}\n")
            log.flush()
            prepare_tree(root, work / "src", patches)
            configure(work / "src", work / "obj", fragments, log)
            if log_to:
                log_to.write(f"kbuild: building in {work} (log {log_path})\n")
            _make(work / "src", work / "obj", log, "bzImage", jobs=jobs)
            log.write(f"# built in {time.monotonic() - start:.0f} s\n")
        obj = work / "obj"
        for name, dest in (("vmlinux", "vmlinux"), ("arch/x86/boot/bzImage", "bzImage"), (".config", ".config")):
            shutil.copy2(obj / name, tmp_out / dest)
        export_gcov(obj, work / "src", tmp_out / "gcov")
        release = (obj / "include" / "config" / "kernel.release").read_text().strip()
        meta = {"release": release, "source": str(src.path), "patches": [str(p) for p in patches],
                "fragments": [str(f) for f in fragments], "key": key, "tree": str(work)}
        (tmp_out / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp_out, out)
    return out


def export_gcov(obj: Path, src: Path, dest: Path) -> int:
    """Copy every gcov notes file (.gcno) of the object tree, and the source beside it, to dest
    under the object's path (fs/eventpoll.gcno, fs/eventpoll.c); how many.  A kernel built
    without CONFIG_GCOV_KERNEL has none, and dest is not created."""
    count = 0
    for gcno in sorted(Path(obj).rglob("*.gcno")):
        rel = gcno.relative_to(obj)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(gcno, dest / rel)
        source = Path(src) / rel.with_suffix(".c")
        if source.is_file():
            shutil.copy2(source, dest / rel.with_suffix(".c"))
        count += 1
    return count


def gcov_dir(build_dir: Path) -> Path:
    """A built kernel's exported gcov notes (BUILD/gcov), exported now from its kept tree when
    an older build left none; BadInput when there are none (a kernel without gcov)."""
    build_dir = Path(build_dir)
    dest = build_dir / "gcov"
    if dest.is_dir() and any(dest.rglob("*.gcno")):
        return dest
    try:
        meta = json.loads((build_dir / "kernel.json").read_text())
    except (OSError, ValueError):
        raise BadInput(f"{build_dir}: no kernel.json: not a kernel ci.kbuild built") from None
    tree = Path(meta.get("tree", ""))
    if not (tree / "obj").is_dir() or export_gcov(tree / "obj", tree / "src", dest) == 0:
        raise BadInput(f"{build_dir}: no gcov notes (.gcno) in its build tree {tree}: built "
                       "without ci/kconfig/gcov.config and patches/coverage/, or the tree is gone")
    return dest


# ---------------------------------------------------------------- CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BadInput(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m ci.kbuild", description=__doc__.splitlines()[0],
                epilog="\n".join(__doc__.splitlines()[2:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="a kernel tree or a tarball (e.g. /usr/src/linux-source-6.1.tar.xz)")
    p.add_argument("--patches", action="append", default=[], metavar="P",
                   help="a patch file, or a directory whose *.patch/*.diff apply in name order (repeatable)")
    p.add_argument("--fragment", action="append", default=[], metavar="FILE",
                   help="a config fragment merged over tinyconfig, in order (repeatable)")
    p.add_argument("--out", type=Path, default=DEFAULT_CACHE, metavar="CACHE",
                   help=f"the cache directory (default {DEFAULT_CACHE}, or $FDR_KBUILD_CACHE)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="make -j (default 2; make runs under nice 19)")
    p.add_argument("--rebuild", action="store_true", help="run make again in the kept tree even if cached")
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        out = build(args.source, args.patches, args.fragment, args.out, jobs=args.jobs,
                    rebuild=args.rebuild, log_to=sys.stderr)
    except BadInput as e:
        print(f"kbuild: {e}", file=sys.stderr)
        return 2
    except BuildFailed as e:
        print(f"kbuild: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
