"""ci.kbuild without building a kernel: the cache key, the fragment check, tree preparation
and bad input."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci import kbuild

REPO = Path(__file__).resolve().parent.parent
KCONFIG = kbuild.KCONFIG

PATCH_OK = """\
diff --git a/fs/a.c b/fs/a.c
--- a/fs/a.c
+++ b/fs/a.c
@@ -1,3 +1,3 @@
 int a(void)
 {
-\treturn 1;
+\treturn 2;
"""

PATCH_BAD = PATCH_OK.replace("-\treturn 1;", "-\treturn 42;")


@pytest.fixture
def tree(tmp_path):
    """A fake kernel tree: enough for source_of() and patch -p1, nothing make could build."""
    root = tmp_path / "linux"
    (root / "fs").mkdir(parents=True)
    (root / "Makefile").write_text("all:\n\tfalse\n")
    (root / "Kconfig").write_text("")
    (root / "fs" / "a.c").write_text("int a(void)\n{\n\treturn 1;\n}\n")
    (root / "fs" / "b.c").write_text("int b;\n")
    return root


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cache_key_is_stable_and_tracks_every_input(tree, tmp_path):
    """The key is the same for the same inputs and changes with the source, a patch, a
    fragment or their order."""
    src = kbuild.source_of(tree)
    p1 = _write(tmp_path / "1.patch", PATCH_OK)
    f1 = _write(tmp_path / "a.config", "CONFIG_A=y\n")
    f2 = _write(tmp_path / "b.config", "CONFIG_B=y\n")
    key = kbuild.cache_key(src, [p1], [f1, f2])
    assert key == kbuild.cache_key(kbuild.source_of(tree), [p1], [f1, f2])
    assert key != kbuild.cache_key(src, [], [f1, f2])
    assert key != kbuild.cache_key(src, [p1], [f2, f1])
    f2.write_text("CONFIG_B=n\n")
    assert key != kbuild.cache_key(src, [p1], [f1, f2])
    time.sleep(0.01)
    (tree / "fs" / "b.c").write_text("int b = 1;\n")
    assert kbuild.source_of(tree).identity != src.identity
    assert kbuild.source_of(tree).lineage == src.lineage


def test_fragment_check_names_dropped_options(tmp_path):
    """check_config names each option the final .config lacks, with the fragment that asked
    for it."""
    frag = _write(tmp_path / "lane.config", "CONFIG_EPOLL=y\nCONFIG_PVH=y\n# CONFIG_MODULES is not set\n"
                                            "CONFIG_LOG_BUF_SHIFT=14\n")
    config = _write(tmp_path / ".config", "CONFIG_EPOLL=y\n# CONFIG_PVH is not set\nCONFIG_MODULES=y\n"
                                          "CONFIG_LOG_BUF_SHIFT=17\n")
    with pytest.raises(kbuild.BadInput) as e:
        kbuild.check_config(config, [frag])
    msg = str(e.value)
    assert "CONFIG_PVH=y (got not set) [lane.config]" in msg
    assert "CONFIG_MODULES=n (got y)" in msg
    assert "CONFIG_LOG_BUF_SHIFT=14 (got 17)" in msg
    assert "CONFIG_EPOLL" not in msg
    config.write_text("CONFIG_EPOLL=y\nCONFIG_PVH=y\nCONFIG_LOG_BUF_SHIFT=14\n")
    kbuild.check_config(config, [frag])


def test_later_fragment_wins(tmp_path):
    """When two fragments set one option, the later one is what the .config must hold."""
    a = _write(tmp_path / "a.config", "CONFIG_KASAN=y\n")
    b = _write(tmp_path / "b.config", "# CONFIG_KASAN is not set\n")
    kbuild.check_config(_write(tmp_path / ".config", "# CONFIG_KASAN is not set\n"), [a, b])


@pytest.mark.parametrize("name", ["lane.config", "debug.config"])
def test_suite_fragments_want_everything_built_in(name):
    """The suite's own fragments parse and ask for options built in or off, never modules."""
    wanted = kbuild.parse_fragment((KCONFIG / name).read_text())
    assert wanted and set(wanted.values()) <= {"y", "n"}


def test_lane_fragment_has_the_options_the_lane_needs():
    """lane.config asks for what NOTES.md lists for the QEMU lane."""
    wanted = kbuild.parse_fragment(kbuild.LANE_FRAGMENT.read_text())
    for opt in ("SECCOMP_FILTER", "EPOLL", "SIGNALFD", "TIMERFD", "EVENTFD", "IO_URING", "KCMP", "UNIX", "INET",
                "NET_9P", "9P_FS", "NET_9P_VIRTIO", "VIRTIO_PCI", "DEVTMPFS", "PROC_FS", "TMPFS", "BINFMT_ELF",
                "BINFMT_SCRIPT", "SERIAL_8250_CONSOLE", "MULTIUSER", "FUTEX", "SMP", "ACPI", "PVH"):
        assert wanted.get(f"CONFIG_{opt}") == "y", opt


def test_patched_paths_reads_git_and_plain_diffs():
    """patched_paths gives the -p1 paths of a diff, new files included, /dev/null left out."""
    text = PATCH_OK + "--- /dev/null\n+++ b/fs/new.c\n@@ -0,0 +1 @@\n+int n;\n"
    assert kbuild.patched_paths(text) == {"fs/a.c", "fs/new.c"}


def test_prepare_tree_patches_a_copy_and_resyncs_only_changes(tree, tmp_path):
    """The tree gets the patched file, the source stays; after touching one source file only
    that file is rewritten."""
    patch = _write(tmp_path / "1.patch", PATCH_OK)
    dest = tmp_path / "work" / "src"
    kbuild.prepare_tree(tree, dest, [patch])
    assert "return 2;" in (dest / "fs" / "a.c").read_text()
    assert "return 1;" in (tree / "fs" / "a.c").read_text()
    a_mtime = (dest / "fs" / "a.c").stat().st_mtime_ns
    time.sleep(0.01)
    (tree / "fs" / "b.c").write_text("int b = 2;\n")
    (tree / "fs" / "c.c").write_text("int c;\n")
    kbuild.prepare_tree(tree, dest, [patch])
    assert (dest / "fs" / "b.c").read_text() == "int b = 2;\n"
    assert (dest / "fs" / "c.c").exists()
    assert (dest / "fs" / "a.c").stat().st_mtime_ns == a_mtime


def test_prepare_tree_follows_a_changed_patch_set(tree, tmp_path):
    """Dropping a patch restores the file it changed, with an mtime newer than before, so
    make rebuilds it."""
    patch = _write(tmp_path / "1.patch", PATCH_OK)
    dest = tmp_path / "work" / "src"
    kbuild.prepare_tree(tree, dest, [patch])
    patched_mtime = (dest / "fs" / "a.c").stat().st_mtime_ns
    time.sleep(0.01)
    kbuild.prepare_tree(tree, dest, [])
    assert (dest / "fs" / "a.c").read_text() == (tree / "fs" / "a.c").read_text()
    assert (dest / "fs" / "a.c").stat().st_mtime_ns > patched_mtime


def test_a_patch_that_does_not_apply_leaves_the_tree_alone(tree, tmp_path):
    """A failing patch raises BadInput before the kept tree is touched."""
    dest = tmp_path / "work" / "src"
    kbuild.prepare_tree(tree, dest, [_write(tmp_path / "1.patch", PATCH_OK)])
    with pytest.raises(kbuild.BadInput, match="does not apply"):
        kbuild.prepare_tree(tree, dest, [_write(tmp_path / "bad.patch", PATCH_BAD)])
    assert "return 2;" in (dest / "fs" / "a.c").read_text()


def test_cached_output_returns_without_building(tree, tmp_path):
    """A second call with the same inputs returns the cached directory without running make."""
    cache = tmp_path / "cache"
    key = kbuild.cache_key(kbuild.source_of(tree), [], [])
    (cache / key).mkdir(parents=True)
    (cache / key / "kernel.json").write_text("{}")
    assert kbuild.build(tree, cache=cache) == cache / key
    assert not (cache / "trees").exists()


def _cli(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ci.kbuild", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, words", [
    (["--source", "/nonexistent/linux"], "no such file or directory"),
    (["--source", "{tmp}"], "not a kernel tree"),
    (["--source", "{tree}", "--patches", "/nonexistent.patch"], "no such file or directory"),
    (["--source", "{tree}", "--fragment", "/nonexistent.config"], "no such file"),
    (["--source", "{tree}", "--patches", "{bad}"], "does not apply"),
    ([], "required: --source"),
])
def test_bad_input_is_one_line_and_exit_2(tree, tmp_path, args, words):
    """Bad input (missing source, patch or fragment, a patch that does not apply) is one
    stderr line and exit 2."""
    bad = _write(tmp_path / "bad.patch", PATCH_BAD)
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path / "empty", tree=tree, bad=bad) for a in args]
    proc = _cli(*args, "--out", str(tmp_path / "cache"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kbuild: ") and words in lines[0], proc.stderr
    assert not (tmp_path / "cache" / "trees" / "src").exists()


def test_make_failure_is_one_line_naming_the_log_and_exit_1(tree, tmp_path):
    """A make that fails (here the fake tree has no tinyconfig) is exit 1 with one line
    naming the kept log."""
    proc = _cli("--source", str(tree), "--out", str(tmp_path / "cache"))
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "make tinyconfig failed" in line
    log = Path(line.rsplit("see ", 1)[1])
    assert log.is_file() and "No rule to make target" in log.read_text()
    assert not list((tmp_path / "cache").glob("*/kernel.json"))
