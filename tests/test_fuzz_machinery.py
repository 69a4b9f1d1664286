"""The fuzzer's generator, shrinker and campaign command, independent of the model's details."""
import os
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given, settings, HealthCheck

from fuzz.generate import RandomChooser, generate, programs
from fuzz.templates import TEMPLATES
from fuzz.shrink import shrink, without
from native.executor import run
from native.program import ADD, DUP2, IN, PIPE, Program

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_programs_run_to_completion():
    """Every generated program is valid and runs to its end in the executor (no hang, no
    crash); actors, background calls and templates all occur."""
    from fuzz.campaign import fit_timeouts
    fitter = RandomChooser("fit")
    ops, templates = set(), set()
    for i in range(150):
        p = generate(RandomChooser(f"7:{i}"))
        p, _ = fit_timeouts(p, "stock", None, fitter)
        trace = run(p)
        assert trace.failure is None, (i, trace.failure)
        assert len(trace.outcomes) == len(p.steps)
        ops |= {s.op for s in p.steps} | {"background" for s in p.steps if s.background}
        templates.add(p.meta["template"])
    assert ops >= {"fork", "thread", "kill_actor", "exit_target", "join", "poll", "select",
                   "background", "replace", "notify"}, ops
    assert len(templates - {None}) >= len(TEMPLATES) // 2


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(max_steps=8))
def test_hypothesis_programs_are_valid(p):
    """The hypothesis strategy builds programs the executor runs to completion."""
    from fuzz.campaign import fit_timeouts
    p, _ = fit_timeouts(p, "stock", None)
    assert run(p).failure is None


def test_deleting_a_definition_deletes_its_uses():
    """Dropping the step that creates a handle drops every later step that uses it."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    k = p.dup(r, "k")
    p.read(k)
    p.wait(ep)
    q = without(p, {1})
    assert [s.describe() for s in q.steps] == ["ep = epoll_create()  [ep1]",
                                               "wait(ep, maxevents=16, timeout=0)"]
    assert [h.name for h in q.handles] == ["ep"]


def test_deleting_an_actor_or_a_call_takes_what_depends_on_it():
    """Dropping a fork drops the child's steps (and the kill of it); dropping a join drops
    its call, and a call its join."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    c = p.fork("c")
    t = p.thread("t")
    with p.on(c):
        p.close(r)
    with p.on(t):
        w = p.poll([r], IN, timeout_ms=50, background=True)
    p.wait(ep)
    p.join(w)
    p.kill(c)
    q = without(p, {2})
    assert [s.op for s in q.steps] == ["epoll_create", "pipe", "thread", "poll", "wait", "join"]
    assert [a.name for a in q.actors] == ["main", "t"]
    assert q.steps[-1].of is q.steps[3]
    q.check_structure()
    for drop in ({5}, {7}):
        q = without(p, drop)
        assert [s.op for s in q.steps] == ["epoll_create", "pipe", "fork", "thread", "close",
                                           "wait", "kill_actor"]
        q.check_structure()
    assert run(without(p, {7})).failure is None


def test_shrink_keeps_the_failure_and_drops_the_rest():
    """The shrinker ends at the smallest program that still shows the property."""
    p = Program()
    ep = p.epoll_create("ep")
    for _ in range(6):
        p.eventfd()
    a = p.pipe("a")
    b = p.pipe("b")
    p.wait(ep)
    p.replace(a, by=b, via=DUP2)
    p.wait(ep)
    has_dup2 = lambda q: any(s.op == "replace" and s.via == DUP2 for s in q.steps)
    small = shrink(p, has_dup2)
    assert [s.op for s in small.steps] == ["pipe", "pipe", "replace"]
    assert run(small).failure is None


def test_fitted_timeouts_and_moved_joins():
    """A background call nothing wakes has its join moved right after it (timeout 0) or
    keeps its place with a short timeout (SLEEP_TIMEOUT_MS); a call something wakes keeps
    its long timeout."""
    from fuzz.campaign import SLEEP_TIMEOUT_MS, fit_timeouts
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r")
    quiet = p.pipe("quiet")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    t = p.thread("t")
    with p.on(t):
        woken = p.wait(ep, timeout_ms=400, background=True)
    p.inject(p.file_of(r))
    p.join(woken)
    with p.on(t):
        sleeper = p.select([quiet], timeout_ms=400, background=True)
    p.wait(ep)
    p.fdinfo(ep)
    p.join(sleeper)
    kept, model = fit_timeouts(p, "stock", None)
    assert [s.timeout_ms for s in kept.steps if s.background] == [400, SLEEP_TIMEOUT_MS]
    assert [w.step.op for w in model.timed_out] == ["select"]

    class Never:
        def chance(self, p):
            return False
    moved, model = fit_timeouts(p, "stock", None, Never())
    assert [s.op for s in moved.steps][8:] == ["select", "join", "wait", "fdinfo"]
    assert [s.timeout_ms for s in moved.steps if s.background] == [400, 0]
    assert run(moved).outcomes == model.outcomes


def sleeper_program(timeout_ms):
    p = Program()
    quiet = p.pipe("quiet")
    t = p.thread("t")
    with p.on(t):
        call = p.poll([quiet], IN, timeout_ms=timeout_ms, background=True)
    p.getfd(quiet)
    p.join(call)
    return p


def test_a_call_that_times_out_before_its_join_is_reported_expired():
    """A background call whose timeout runs out before its join's turn is listed in
    Trace.expired; one still asleep at its join is not."""
    assert run(sleeper_program(0)).expired == (2,)
    assert run(sleeper_program(2000)).expired == ()


def test_check_stretches_a_sleeper_that_ran_out_early():
    """check() gives a sleeper that ran out before its join a longer timeout and runs the
    program again, instead of reporting a divergence."""
    from fuzz.campaign import STRETCH, check
    p = sleeper_program(0)
    verdict, trace, _ = check(p, "stock", None)
    assert verdict is None and trace.expired == ()
    assert p.steps[2].timeout_ms >= STRETCH and p.meta["stretched"] >= 1


def fuzz_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def test_cli_refuses_bad_input_with_exit_2(tmp_path):
    """Bad arguments exit 2 with a one-line reason."""
    for args in (["--seconds", "-1"], ["--profile", "sideways"], ["--mutant", "no_such"],
                 ["--jobs", "0"], ["--out", "/proc/self/nope"]):
        r = fuzz_cli(*args, "--out", str(tmp_path)) if "--out" not in args else fuzz_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("fuzz: ")


def test_campaign_exit_codes_statistics_and_its_own_database(tmp_path):
    """No divergence: exit 0 and a statistics line with counts; a caught mutant: exit 1, a
    reproducer, its failing example saved in DIR/hypothesis even under CI=true (hypothesis's
    ci profile has no database), and replayed first next time."""
    r = fuzz_cli("--seconds", "3", "--out", str(tmp_path / "ok"), env={"CI": "true"})
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    for field in ("programs=", "steps=", "programs/s=", "divergences=0", "forks=", "threads=",
                  "multi_ref_replaces=", "vias[addfd_setfd=", "kinds["):
        assert field in line, line
    assert "fuzz:" in r.stderr and "programs=" in r.stderr          # progress
    out = tmp_path / "bad"
    r = fuzz_cli("--seconds", "5", "--mutant", "no_errhup", "--first", "--out", str(out),
                 env={"CI": "true"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "divergences=1 " in r.stdout
    [repro] = out.glob("*.c")
    assert repro.name.startswith("fuzz_hypothesis_"), repro    # found in the hypothesis phase
    saved = [f for f in (out / "hypothesis").rglob("*") if f.is_file()]
    assert saved, "the failing example was not saved in DIR/hypothesis"
    r = fuzz_cli("--seconds", "5", "--mutant", "no_errhup", "--first", "--out", str(out),
                 env={"CI": "true"})
    assert r.returncode == 1 and "hypothesis=1 " in r.stdout, r.stdout      # replayed first


def test_campaign_goes_on_after_a_known_divergence_and_groups_them(tmp_path):
    """A campaign whose model disagrees with the kernel in several ways (follow on a stock
    kernel) does not stop at the first divergence: it counts them in groups by signature,
    shrinks and writes one reproducer per group, and lists the groups in buckets.txt."""
    from native import probes
    if probes.detect_profile()[0] != "stock":
        pytest.skip("needs a stock kernel")
    out = tmp_path / "many"
    r = fuzz_cli("--seconds", "4", "--profile", "follow", "--no-hypothesis", "--shrink-seconds", "20",
                 "--out", str(out), env={"CI": "true"}, timeout=240)
    assert r.returncode == 1, r.stdout + r.stderr
    line = r.stdout.strip().splitlines()[-1]
    divergences = int(line.split("divergences=")[1].split()[0])
    buckets = int(line.split("buckets=")[1].split()[0])
    assert buckets >= 2 and divergences > buckets, line
    listed = [x for x in (out / "buckets.txt").read_text().splitlines() if not x.startswith("#")]
    assert len(listed) == buckets
    assert sum(int(x.split("\t")[0]) for x in listed) == divergences
    assert {x.split("\t")[2] for x in listed} == {c.name for c in out.glob("*.c")}
