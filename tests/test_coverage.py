"""ci.coverage on gcov data made here: a small C file built with --coverage as a kernel
object is."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ci import coverage, kbuild

SOURCE = """\
int twice(int x)
{
\treturn 2 * x;
}

int never(int x)
{
\treturn x - 1;
}

int main(int argc, char **argv)
{
\t(void)argv;
\tif (argc > 1)
\t\treturn twice(argc) == 4 ? 0 : 1;
\treturn 0;
}
"""

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("gcov") is None,
                                reason="gcc and gcov are needed to make gcov data")


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(SOURCE.splitlines(), 1) if text in line)


@pytest.fixture
def build(tmp_path):
    """An 'object tree' obj/fs/eventpoll.{o,gcno}, its program, and the notes exported as
    kbuild does."""
    obj = tmp_path / "obj"
    (obj / "fs").mkdir(parents=True)
    (obj / "fs" / "eventpoll.c").write_text(SOURCE)
    subprocess.run(["gcc", "--coverage", "-O0", "-c", "fs/eventpoll.c", "-o", "fs/eventpoll.o"],
                   cwd=obj, check=True)
    subprocess.run(["gcc", "--coverage", "fs/eventpoll.o", "-o", "prog"], cwd=obj, check=True)
    notes = tmp_path / "gcov"
    assert kbuild.export_gcov(obj, obj, notes) == 1
    return obj, notes


def run_phase(obj: Path, dest: Path, *args: str) -> Path:
    """Run the program (each run adds to obj/fs/eventpoll.gcda), then copy the data file
    under a long path, as the guest's /sys/kernel/debug/gcov/<obj tree>/ holds it."""
    (obj / "fs" / "eventpoll.gcda").unlink(missing_ok=True)
    for a in args:
        subprocess.run([str(obj / "prog"), *a.split()], cwd=obj, check=False)
    target = dest / "work" / "kbuild" / "trees" / "x" / "obj" / "fs" / "eventpoll.gcda"
    target.parent.mkdir(parents=True)
    shutil.copyfile(obj / "fs" / "eventpoll.gcda", target)
    return dest


def test_counts_lines_functions_and_branches_of_the_main_file(build, tmp_path):
    """One run without an argument: main ran once, twice and never not at all."""
    obj, notes = build
    cov = coverage.load_phase(run_phase(obj, tmp_path / "gate", ""), notes)["fs/eventpoll.c"]
    assert cov.functions["main"][2] == 1
    assert cov.functions["twice"][2] == 0 and cov.functions["never"][2] == 0
    assert cov.lines[line_of("return 2 * x")] == 0
    assert cov.lines[line_of("if (argc > 1)")] == 1
    assert cov.totals()["functions"] == [1, 3]
    assert coverage.summary_line(cov).startswith("fs/eventpoll.c: lines ")
    assert [f[0] for f in coverage.unreached(cov)] == ["twice", "never"]


def test_phases_sum_into_both(build, tmp_path):
    """Two phases (no argument; one argument twice) sum line by line, and `both` covers
    their union."""
    obj, notes = build
    gate = coverage.load_phase(run_phase(obj, tmp_path / "gate", ""), notes)
    fuzz = coverage.load_phase(run_phase(obj, tmp_path / "fuzz", "a", "b"), notes)
    both = coverage.merged([gate, fuzz])["fs/eventpoll.c"]
    assert fuzz["fs/eventpoll.c"].lines[line_of("return 2 * x")] == 2
    assert both.lines[line_of("if (argc > 1)")] == 3
    assert both.functions["main"][2] == 3 and both.functions["twice"][2] == 2
    assert both.totals()["functions"] == [2, 3]
    assert sum(both.branches[line_of("if (argc > 1)")]) == 3


def test_report_writes_every_phase_summaries_and_the_unreached_list(build, tmp_path):
    """The CLI writes gate, fuzz and both, the summaries and unreached.md with a reason per
    function."""
    obj, notes = build
    gate, fuzz = run_phase(obj, tmp_path / "gate", ""), run_phase(obj, tmp_path / "fuzz", "a")
    out = tmp_path / "report"
    assert coverage.main(["--gcno", str(notes), "--gcda", f"gate={gate}", "--gcda", f"fuzz={fuzz}",
                          "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["phases"]) == {"gate", "fuzz", "both"}
    assert summary["phases"]["gate"]["fs/eventpoll.c"]["functions"] == [1, 3]
    assert summary["phases"]["both"]["fs/eventpoll.c"]["functions"] == [2, 3]
    info = (out / "both" / "coverage.info").read_text()
    assert f"DA:{line_of('return 2 * x')},1\n" in info and "FNDA:0,never\n" in info
    assert "SF:" + str(notes / "fs" / "eventpoll.c") in info
    unreached = (out / "unreached.md").read_text()
    assert "| `never` | 6-9 | missing case | no reason recorded yet |" in unreached
    assert "`twice`" not in unreached
    html = out / "both" / "html" / "index.html"
    assert html.exists() == (shutil.which("genhtml") is not None)


def test_reachable_lines_leave_out_unreachable_functions(build, tmp_path):
    """Lines of a function marked unreachable from user space do not count as reachable."""
    obj, notes = build
    cov = coverage.load_phase(run_phase(obj, tmp_path / "gate", "a"), notes)["fs/eventpoll.c"]
    hit, total = coverage.reachable_lines(cov, {})
    hit2, total2 = coverage.reachable_lines(cov, {"never": ("unreachable", "boot only")})
    never = [ln for ln in cov.lines if 6 <= ln <= 9]
    assert (hit2, total2) == (hit, total - len(never))
    assert "| `never` | 6-9 | unreachable | boot only |" in coverage.unreached_md(
        cov, {"never": ("unreachable", "boot only")})


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:40], "cut short"),
    (lambda d: b"hello\n" * 4, "not a gcov data (.gcda) file"),
    (lambda d: d[:8] + bytes([d[8] ^ 1]) + d[9:], "written by another build"),
])
def test_a_damaged_data_file_is_bad_input(build, tmp_path, capsys, damage, message):
    """A cut, foreign or garbage .gcda is exit 2 with one line naming it, and nothing is written."""
    obj, notes = build
    gate = run_phase(obj, tmp_path / "gate", "")
    gcda = next(gate.rglob("*.gcda"))
    gcda.write_bytes(damage(gcda.read_bytes()))
    out = tmp_path / "report"
    assert coverage.main(["--gcno", str(notes), "--gcda", f"gate={gate}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(gcda) in err[0]
    assert not out.exists()


def test_data_without_notes_is_bad_input(build, tmp_path, capsys):
    """A .gcda whose .gcno the exported build lacks is named, not silently dropped."""
    obj, notes = build
    gate = run_phase(obj, tmp_path / "gate", "")
    stray = gate / "fs" / "select.gcda"
    stray.parent.mkdir(parents=True)
    shutil.copyfile(next(gate.rglob("eventpoll.gcda")), stray)
    assert coverage.main(["--gcno", str(notes), "--gcda", f"gate={gate}", "--out", str(tmp_path / "r")]) == 2
    assert "select.gcda: no notes file (.gcno)" in capsys.readouterr().err


def test_missing_notes_and_bad_phase_names_are_bad_input(tmp_path, capsys):
    """No notes directory, or a phase named `both` or given twice: exit 2, one line."""
    (tmp_path / "d").mkdir()
    for argv, message in ((["--gcno", str(tmp_path / "none"), "--gcda", f"gate={tmp_path / 'd'}"],
                           "no such directory"),
                          (["--gcno", str(tmp_path), "--gcda", f"both={tmp_path / 'd'}"], "PHASE=DIR"),
                          (["--gcno", str(tmp_path), "--gcda", f"g={tmp_path}", "--gcda", f"g={tmp_path}"],
                           "PHASE=DIR"),
                          (["--gcno", str(tmp_path / "d"), "--gcda", f"gate={tmp_path / 'd'}"],
                           "no .gcno files")):
        assert coverage.main([*argv, "--out", str(tmp_path / "r")]) == 2
        assert message in capsys.readouterr().err


def test_gcov_dir_exports_from_the_kept_tree_or_says_why_not(build, tmp_path):
    """An older build without gcov/ gets its notes exported from its tree; a tree without
    any is refused."""
    obj, _ = build
    out = tmp_path / "out"
    out.mkdir()
    tree = tmp_path / "tree"
    (tree / "obj").mkdir(parents=True)
    (out / "kernel.json").write_text(json.dumps({"tree": str(tree)}))
    with pytest.raises(kbuild.BadInput, match="no gcov notes"):
        kbuild.gcov_dir(out)
    shutil.copytree(obj, tree / "obj", dirs_exist_ok=True)
    (tree / "src").mkdir()
    assert kbuild.gcov_dir(out) == out / "gcov"
    assert (out / "gcov" / "fs" / "eventpoll.gcno").is_file()
    with pytest.raises(kbuild.BadInput, match="no kernel.json"):
        kbuild.gcov_dir(tmp_path / "nothing")
