"""The C reproducer writer: every reproducer compiles alone and tells the executor's story.

Each reproducer is compiled with `gcc -Wall -Werror` (nothing but libc and
uapi headers), run, and its printed per-step outcomes must equal the native
executor's trace of the same program, line for line; it must exit 0 when the
kernel matched its expected trace and 1, naming the step, when it did not.

Core cases: a deterministic sample (every case, then every k-th instance),
compiled in parallel; FDR_REPRO_ALL=1 compiles every instance instead.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from native import program as P
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, EVENTFD, EPOLL,
                            IN, MOD, O_CLOEXEC, OUT, ET, PIPE, SIGNALFD, SOCKET, TIMERFD, Program)
from native.trace import Outcome

from fuzz.reproducer import SUPPORTED_OPS, main as reproducer_main, write_reproducer

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = 64                     # core case instances compiled by default (at least 40)
GCC = ["gcc", "-Wall", "-Werror"]
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")


def _needs_user_notif():
    from native import probes
    token = probes.missing(["user_notif", "addfd", "addfd_send"])
    if token:
        pytest.skip(token)


# -- helpers -----------------------------------------------------------------

def compile_many(sources: dict[str, str], outdir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write and compile every (name -> C text) in parallel; returns name -> binary."""
    def build(item):
        name, text = item
        src = outdir / f"{name}.c"
        exe = outdir / name
        src.write_text(text)
        uring = ["-luring"] if "#define FDR_HAVE_LIBURING 1" in text else []
        r = subprocess.run(GCC + ["-o", str(exe), str(src)] + uring, capture_output=True, text=True)
        return name, exe, r
    out = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as ex:
        for name, exe, r in ex.map(build, sources.items()):
            assert r.returncode == 0, f"{name} does not compile:\n{r.stderr[:4000]}"
            out[name] = exe
    return out


def run_repro(exe: pathlib.Path, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)


def step_lines(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if ln.startswith("step ")]


def executor_lines(program: Program) -> list[str]:
    """The executor's trace of program, in the reproducer's line format."""
    from native.executor import run
    trace = run(program)
    assert trace.failure is None, trace.failure
    return [f"step {i}: {s.describe()} -> {o}"
            for i, (s, o) in enumerate(zip(program.steps, trace.outcomes))]


def safe_name(i: int, ident: str) -> str:
    return f"r{i:03d}_" + re.sub(r"[^A-Za-z0-9_]", "_", ident)[:60]


def core_instances():
    """(id, program) for every instance of every registered case, in registry order."""
    from cases.casekit import all_cases
    out = []
    for _, case in all_cases().items():
        for ident, program in case.instances():
            out.append((ident, program))
    return out


def core_sample():
    """A deterministic sample: the first instance of every case, then every k-th of the rest."""
    from native import probes
    items = [(ident, p) for ident, p in core_instances()
             if not probes.missing(probes.program_needs(p))]
    if os.environ.get("FDR_REPRO_ALL") == "1" or len(items) <= SAMPLE:
        return items
    chosen, seen = {}, set()
    for i, (ident, _) in enumerate(items):
        name = ident.split("[", 1)[0]
        if name not in seen:
            seen.add(name)
            chosen[i] = items[i]
    stride = max(1, len(items) // max(1, SAMPLE - len(chosen)))
    for i in range(0, len(items), stride):
        if len(chosen) >= max(SAMPLE, len(seen)):
            break
        chosen.setdefault(i, items[i])
    return [chosen[i] for i in sorted(chosen)]


# -- core cases --------------------------------------------------------------

def test_core_case_reproducers_print_the_executors_trace(tmp_path, profile):
    """Every sampled core case's reproducer compiles with -Wall -Werror, prints exactly the
    executor's per-step outcomes, and exits 0 when they match the expectation."""
    sample = core_sample()
    assert len(sample) >= 40
    names = {safe_name(i, ident): (ident, program) for i, (ident, program) in enumerate(sample)}
    exes = compile_many({n: write_reproducer(p, profile, title=ident)
                         for n, (ident, p) in names.items()}, tmp_path)
    for n, (ident, program) in names.items():
        r = run_repro(exes[n])
        want = executor_lines(program)
        got = step_lines(r.stdout)
        assert got == want, f"{ident}: reproducer output\n{r.stdout}\nexecutor:\n" + "\n".join(want)
        matched = [str(o) for o in program.expected_trace(profile)] == [ln.split(" -> ", 1)[1] for ln in want]
        assert r.returncode == (0 if matched else 1), f"{ident}: exit {r.returncode}\n{r.stdout}"
        lines = r.stdout.splitlines()
        assert lines[:2] == ["TAP version 13", "1..1"]
        assert lines[-2] == f"{'ok' if matched else 'not ok'} 1 {program.name}"
        assert lines[-1].startswith(f"# Totals: pass:{int(matched)} fail:{int(not matched)} ")


def test_mutated_expectation_fails_and_names_the_step(tmp_path, profile):
    """Changing one step's expected outcome makes the reproducer print that step's
    expectation and exit 1."""
    items = core_instances()
    picks = [items[0], items[len(items) // 3], items[2 * len(items) // 3], items[-1]]
    sources, cases = {}, {}
    for j, (ident, program) in enumerate(picks):
        mutant = program.copy()
        k = (3 * j + 2) % len(mutant.steps)
        old = mutant.steps[k].expected[profile]
        wrong = dataclasses.replace(old, ret="nonsense" if old.ret != "nonsense" else 0)
        mutant.steps[k].expected = dict(mutant.steps[k].expected, **{profile: wrong})
        name = safe_name(j, ident)
        sources[name] = write_reproducer(mutant, profile, title=ident)
        cases[name] = (mutant, k, wrong)
    exes = compile_many(sources, tmp_path)
    for name, (mutant, k, wrong) in cases.items():
        r = run_repro(exes[name])
        assert r.returncode == 1, r.stdout
        assert f"# step {k} expected: {wrong}" in r.stdout.splitlines(), r.stdout
        assert f"not ok 1 {mutant.name}" in r.stdout.splitlines()
        assert "# Totals: pass:0 fail:1 " in r.stdout
        assert step_lines(r.stdout) == executor_lines(mutant)


# -- hand-built programs covering every op kind -------------------------------

def expect_actual(program: Program) -> Program:
    """Set every step's expectation (all profiles) to what the executor does."""
    from native.executor import run
    trace = run(program)
    assert trace.failure is None, trace.failure
    for s, o in zip(program.steps, trace.outcomes):
        s.expected = {p: o for p in P.PROFILES}
    return program


def prog_signalfd_timerfd():
    p = Program("signalfd_timerfd")
    ep = p.epoll_create("ep")
    s1 = p.signalfd("s1")
    s2 = p.signalfd("s2")
    t = p.timerfd("t")
    for h, d in ((s1, 1), (s2, 2), (t, 3)):
        p.epoll_ctl(ep, ADD, h, IN, data=d)
    p.inject(p.file_of(s2))
    p.inject(p.file_of(t), through=t)
    p.wait(ep)
    p.read(s2)
    p.read(s1)
    p.drain(t)
    p.inject(p.file_of(s1), through=s1)
    p.inject(p.file_of(s1))
    p.drain(s1)
    p.fdinfo(ep)
    return p


def prog_kcmp_fdinfo():
    p = Program("kcmp_fdinfo")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    e = p.eventfd("e")
    p.epoll_ctl(ep, ADD, r, IN | ET, data=0xFFFFFFFFFFFFFFFF)
    p.epoll_ctl(ep, ADD, e, IN | OUT, data=0)
    p.replace(r, by=SOCKET, via=ADDFD_SETFD, file="new")
    p.kcmp_epoll_tfd(ep, r, keep)
    p.kcmp_epoll_tfd(ep, r, r)
    p.kcmp_epoll_tfd(ep, e, e, toff=1)
    p.fdinfo(ep)
    p.close(keep)
    p.fdinfo(ep)
    p.epoll_ctl(ep, MOD, e, IN, data=7)
    p.epoll_ctl(ep, DEL, e)
    p.epoll_ctl(ep, DEL, e)
    p.fdinfo(ep)
    return p


def prog_dup3_cloexec_and_by_handle():
    p = Program("dup3_cloexec_by_handle")
    ep = p.epoll_create("ep")
    a = p.pipe("a", file="fa")
    b = p.socketpair("b", file="fb")
    c = p.eventfd("c", file="fc")
    p.epoll_ctl(ep, ADD, a, IN, data=0xA)
    p.dup3(b, a, O_CLOEXEC)
    p.dup3(c, a, 0)
    p.dup2(b, a)
    p.dup2(a, a)
    p.replace(c, by=b, via=ADDFD_SETFD, flags=O_CLOEXEC)
    p.replace(a, by=c, via=ADDFD_SETFD_SEND)
    p.inject(p.file_named("fb"))
    p.wait(ep)
    p.read(c)
    p.read(a)
    p.fdinfo(ep)
    p.epoll_ctl(ep, ADD, c, IN, data=0xC)             # the userspace fixup moves this entry
    p.replace(c, by=P.PIPE, via=P.ADDFD_SETFD_FIXUP, file="fd")
    p.replace(c, by=P.SOCKET, via=P.ADDFD_SETFD_SEND_FIXUP, file="fe")
    p.fdinfo(ep)
    return p


def prog_keep_and_new_kinds():
    p = Program("keep_and_kinds")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.replace(r, by=PIPE, via=ADDFD_SETFD, keep=True, file="n1")
    p.inject(p.file_named("n1"))
    p.drain(r)
    p.replace(r, by=EVENTFD, via=ADDFD_SETFD_SEND, keep=True, file="n2")
    p.inject(p.file_named("n2"), through=r)
    p.inject(p.file_named("n2"), through=r)
    p.drain(r)
    p.replace(r, by=SIGNALFD, via=ADDFD_SETFD, file="n3")
    p.inject(p.file_named("n3"))
    p.read(r)
    p.replace(r, by=TIMERFD, via=DUP2, keep=True, file="n4")
    p.inject(p.file_named("n4"), through=r)
    p.read(r)
    p.replace(r, by=SOCKET, via=DUP3, keep=True, flags=O_CLOEXEC, file="n5")
    p.inject(p.file_named("n5"))
    p.drain(r)
    p.replace(r, by=EPOLL, via=ADDFD_SETFD_SEND, file="n6")
    p.replace(r, by=SIGNALFD, via=DUP2, file="n7")
    p.replace(r, by=PIPE, via=DUP3, file="n8")
    p.inject(p.file_named("n8"))
    p.inject(p.file_named("n8"))
    p.drain(r)
    p.read(r)
    p.fdinfo(ep)
    p.wait(ep, maxevents=1)
    return p


def prog_closed_handles():
    """Closed handles keep their number until reused; stale fdinfo entries show raw numbers."""
    p = Program("closed_handles")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.close(r)
    p.fdinfo(ep)                  # the stale entry's tfd: a number no handle holds
    p.dup2(keep, r)               # r's number is still free: reopened
    p.fdinfo(ep)
    p.close(r)
    x = p.eventfd("x")            # takes r's number: r has none now
    p.close(r)
    p.dup2(keep, r)
    p.close(keep)
    p.read(keep)
    p.replace(keep, by=PIPE, via=ADDFD_SETFD, file="late")
    p.inject(p.file_of(r))
    p.drain(r)
    p.inject(p.file_named("late"))
    p.read(keep)
    p.read(x)
    p.fdinfo(ep)
    p.wait(ep)
    return p


def prog_memfd_hangup():
    p = Program("memfd_hangup")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="pp")
    s = p.socketpair("s", file="ss")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.epoll_ctl(ep, ADD, s, IN | P.RDHUP, data=2)
    if hasattr(p, "hangup"):
        p.hangup(p.file_named("pp"))
        p.hangup(p.file_named("ss"))
        p.hangup(p.file_named("ss"))
    p.inject(p.file_named("pp"))
    p.wait(ep)
    if hasattr(p, "memfd"):
        m = p.memfd("m", file="mm")
        p.epoll_ctl(ep, ADD, m, IN, data=3)
        p.read(m)
        p.read(m)
        p.replace(r, by=P.MEMFD, via=ADDFD_SETFD, file="mm2")
        p.read(r)
        p.replace(s, by=P.MEMFD, via=DUP2, file="mm3")
        p.read(s)
        p.replace(s, by=m, via=ADDFD_SETFD_SEND)
        p.fdinfo(ep)
    return p


def prog_holds():
    """notify holds: raw ADDFDs good and bad, the supervisor's own views, SEND, a kill
    inside a hold."""
    p = Program("holds")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=0xD5)
    p.notify(r)
    p.sup_inject(p.file_named("old"))
    p.sup_wait(ep)
    p.listener_wait()             # the held notification is received: nothing pending
    p.addfd(r, by=SOCKET, newfd_flags=O_CLOEXEC, keep=True, file="new")
    p.sup_kcmp(ep, r, keep)
    p.sup_kcmp(ep, r, r)
    p.sup_fdinfo(ep)
    p.addfd(None, by=keep, flags=0, name="x")           # no SETFD: the kernel picks a number
    p.addfd(r, by="bad")
    p.addfd(r, by=PIPE, id="stale", file="n2")
    p.addfd(r, by=PIPE, id="next", file="n3")
    p.addfd(r, by=PIPE, newfd="rlimit", file="n4")
    p.addfd(r, by=PIPE, size=32, tail_nonzero=True, file="n5")
    p.addfd(r, by=PIPE, size=32, file="n6")
    p.addfd(r, by=PIPE, flags=8, file="n7")
    p.respond(val=5)
    p.getfd(r)
    p.getfd(keep)
    p.notify(keep)
    p.addfd(keep, by=EVENTFD, flags=P.ADDFD_FLAG_SETFD | P.ADDFD_FLAG_SEND, file="e")
    p.respond(error=1)
    p.read(keep)
    if "pending" in getattr(P, "ADDFD_IDS", ()):
        p.notify(keep)
        p.addfd(keep, by=PIPE, id="pending", file="early")
        p.addfd(r, by=keep, id="pending")
        p.respond()
    p.notify(r)
    p.kill_target()
    p.sup_fdinfo(ep)
    p.notif_recv()
    return p


def prog_after_exit():
    """The supervisor's steps after the target exits on its own."""
    p = Program("after_exit")
    ep = p.epoll_create("ep")
    r = p.socketpair("r", file="s")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.notify(r)
    p.addfd(r, by=r, newfd=2000)  # r moves to 2000
    p.addfd(r, by=r, flags=P.ADDFD_FLAG_SETFD | P.ADDFD_FLAG_SEND)
    p.respond()                   # answered already by the SEND
    p.getfd(r)
    p.exit_target()
    p.sup_fdinfo(ep)
    p.sup_wait(ep)
    p.sup_kcmp(ep, r, r)
    p.sup_inject(p.file_named("s"))
    p.addfd(r, by=PIPE, file="late")
    p.respond()
    p.listener_wait(IN, data=0x11)
    p.notif_recv()
    p.kill_target()
    return p


def prog_actors():
    """A child with a copy of the table, threads, background calls woken by other actors,
    poll and select, a kill."""
    p = Program("actors")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="P")
    s = p.signalfd("s", file="S")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.epoll_ctl(ep, ADD, s, IN | ET, data=2)
    child = p.fork("child")
    t = p.thread("t")
    with p.on(t):
        w = p.wait(ep, timeout_ms=2000, background=True)
    with p.on(child):
        p.inject(p.file_named("P"))
        ps = p.poll([r, s], IN | OUT, timeout_ms=2000, background=True)
    p.inject(p.file_named("S"))
    p.join(w)
    p.select([r, s, ep])
    p.replace(r, by=SOCKET, via=ADDFD_SETFD, file="new")
    p.fdinfo(ep)
    p.join(ps)
    with p.on(t):
        p.exit_target()
    with p.on(child):
        p.poll([r], IN)
    p.kill(child)
    p.wait(ep)
    return p


def prog_epoll_variants():
    """epoll_pwait and epoll_pwait2 with a mask (one interrupted), epoll_create(size) taken
    and refused, and the busy-poll params set and read back."""
    p = Program("epoll variants")
    ep = p.epoll_create_size("ep", size=8)
    p.epoll_create_size("bad", size=0)
    r = p.pipe("r", file="P")
    s = p.signalfd("s", file="S")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    p.inject(p.file_named("P"))
    p.epoll_pwait(ep, sigmask=[s])
    p.read(r)
    p.inject(p.file_named("S"))
    p.epoll_pwait2(ep, sigmask=[s], timeout_ms=5)
    p.epoll_pwait2(ep, timeout_ms=5)
    p.epoll_params(ep, usecs=9, budget=3, prefer=1)
    p.epoll_params(ep)
    return p


HAND_BUILT = [prog_epoll_variants, prog_actors, prog_signalfd_timerfd, prog_kcmp_fdinfo, prog_dup3_cloexec_and_by_handle,
              prog_keep_and_new_kinds, prog_closed_handles, prog_memfd_hangup]
if hasattr(Program, "notify"):
    HAND_BUILT += [prog_holds, prog_after_exit]


def test_hand_built_programs_cover_every_op(tmp_path):
    """Programs using every step op, file kind, replace flavour and flag: the reproducer
    prints the executor's trace and passes against it."""
    _needs_user_notif()
    programs = {f.__name__: expect_actual(f()) for f in HAND_BUILT}
    used_ops = {s.op for p in programs.values() for s in p.steps}
    supported = {op for op in set(SUPPORTED_OPS) & set(P.OPS) if not op.startswith("uring_")}
    assert used_ops >= supported, f"ops not covered: {supported - used_ops}"
    vias = {(s.via, s.h2 is None, s.keep, bool(s.flags)) for p in programs.values()
            for s in p.steps if s.op == "replace"}
    assert {v[0] for v in vias} == set(P.VIAS) and any(v[2] for v in vias) and any(v[3] for v in vias)
    exes = compile_many({n: write_reproducer(p) for n, p in programs.items()}, tmp_path)
    for name, program in programs.items():
        r = run_repro(exes[name])
        assert step_lines(r.stdout) == executor_lines(program), r.stdout
        assert r.returncode == 0, r.stdout
        assert r.stdout.splitlines()[-2] == f"ok 1 {program.name}"


def test_reproducer_is_the_executor_plus_the_program():
    """The C file is native/executor.c (executor.h pasted in) verbatim, then the program's
    step array, each step under its describe() comment, in order; the head comment lists the
    steps with their expected outcomes."""
    from fuzz.reproducer import executor_text
    program = prog_kcmp_fdinfo()
    text = write_reproducer(program, title="kcmp and fdinfo")
    assert executor_text() in text
    header = (ROOT / "native" / "executor.h").read_text()
    source = (ROOT / "native" / "executor.c").read_text()
    from fuzz.reproducer import fixup_text, kcov_text
    source = source.replace('#include "fixup.c"\n', fixup_text(), 1)
    source = source.replace('#include "kcov.c"\n', kcov_text(), 1)
    assert header in text and source.split('#include "executor.h"', 1)[1] in text
    assert '#include "' not in text and "FDR_HAVE_LIBURING 1" not in text
    array = text.split("static const struct fdr_step steps[NSTEPS_ALLOC] = {", 1)[1].split("\n};", 1)[0]
    pos = 0
    for i, s in enumerate(program.steps):
        at = array.find(f"/* step {i}: {s.describe()} */", pos)
        assert at >= pos, f"step {i} missing or out of order"
        pos = at
    head = text.split("*/", 1)[0]
    assert "gcc -o repro repro.c" in head and "kcmp and fdinfo" in head and "-luring" not in head
    for i, o in enumerate(program.expected_trace("stock")):
        assert f"step {i}: {program.steps[i].describe()} -> {o}" in head


def test_io_uring_programs_define_liburing():
    """A program with io_uring steps gets #define FDR_HAVE_LIBURING 1 ahead of the executor
    and asks for -luring."""
    from fuzz.reproducer import build_command
    if not hasattr(Program, "uring_setup") or "uring_setup" not in SUPPORTED_OPS:
        pytest.skip("no io_uring steps in this tree")
    p = Program("ring")
    ring = p.uring_setup("ring")
    r = p.pipe("r")
    p.uring_poll(ring, r)
    text = write_reproducer(p)
    assert text.index("#define FDR_HAVE_LIBURING 1") < text.index("native/executor.h")
    assert build_command(p) == "gcc -o repro repro.c -luring"
    assert "gcc -o repro repro.c -luring" in text.split("*/", 1)[0]


def test_timeout_kills_the_target_and_fails(tmp_path):
    """A target that blocks past the reproducer's timeout is killed (its process group) and
    reported; the run exits 1."""
    _needs_user_notif()
    p = Program("hang")
    ep = p.epoll_create("ep")
    p.wait(ep, timeout_ms=120_000)
    p.close(ep)
    exes = compile_many({"hang": write_reproducer(p, timeout_s=1)}, tmp_path)
    r = run_repro(exes["hang"], timeout=30)
    assert r.returncode == 1, r.stdout
    lines = r.stdout.splitlines()
    assert "step 0: ep = epoll_create()  [ep1] -> ep" in lines
    assert any(ln.startswith("# timeout: the target hung at step 1") for ln in lines), r.stdout
    assert "# step 2 not executed, expected: 0" in lines
    assert "not ok 1 hang" in lines


def test_reproducer_runs_unprivileged(tmp_path):
    """As an ordinary user (no_new_privs, no capabilities) the reproducer gives the same trace."""
    _needs_user_notif()
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to a user")
    program = expect_actual(prog_dup3_cloexec_and_by_handle())
    outdir = pathlib.Path(tmp_path) / "pub"
    outdir.mkdir()
    exes = compile_many({"unpriv": write_reproducer(program)}, outdir)
    for d in (exes["unpriv"], *exes["unpriv"].parents):
        if d == pathlib.Path("/"):
            break
        if d.is_dir():
            d.chmod(d.stat().st_mode | 0o011)   # searchable, so nobody can reach it
    exes["unpriv"].chmod(0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(exes["unpriv"])], capture_output=True, text=True, timeout=60)
    assert step_lines(r.stdout) == executor_lines(program), r.stdout + r.stderr
    assert r.returncode == 0


def test_profile_selects_the_expected_trace(tmp_path):
    """The follow profile embeds the follow expectations, and the reproducer checks against
    them; an unknown profile is refused."""
    for ident, program in core_instances():
        stock = [str(o) for o in program.expected_trace("stock")]
        follow = [str(o) for o in program.expected_trace("follow")]
        if stock != follow:
            break
    else:
        pytest.skip("no profile-dependent case")
    text = write_reproducer(program, "follow")
    for o in follow:
        assert '"' + o.replace("\\", "\\\\").replace('"', '\\"') + '",' in text
    assert 'under the "follow" profile' in text
    with pytest.raises(P.ProgramError, match="unknown profile"):
        write_reproducer(program, "sideways")
    # Run it: it passes exactly when the kernel gives the follow trace.
    _needs_user_notif()
    exes = compile_many({"follow": text}, tmp_path)
    r = run_repro(exes["follow"])
    want = executor_lines(program)
    assert step_lines(r.stdout) == want
    differ = [i for i, (w, o) in enumerate(zip(want, follow)) if w.split(" -> ", 1)[1] != o]
    assert r.returncode == (1 if differ else 0), r.stdout
    for i in differ:
        assert f"# step {i} expected: {follow[i]}" in r.stdout.splitlines()


# -- command line -------------------------------------------------------------

def test_cli_writes_a_case_reproducer(tmp_path, capsys):
    """python -m fuzz.reproducer --case ID -o FILE writes that instance's reproducer; a bare
    name with many instances lists them (exit 2)."""
    ident, program = core_instances()[0]
    out = tmp_path / "repro.c"
    assert reproducer_main(["--case", ident, "-o", str(out)]) == 0
    text = out.read_text()
    assert text == write_reproducer(program, "stock", title=ident,
                                    description=_doc_of(ident))
    assert reproducer_main(["--case", ident, "--profile", "follow"]) == 0
    assert 'under the "follow" profile' in capsys.readouterr().out
    name = ident.split("[", 1)[0]
    if "[" in ident:
        assert reproducer_main(["--case", name]) == 2
        assert ident in capsys.readouterr().err
    assert reproducer_main(["--case", "no_such_case"]) == 2
    assert reproducer_main(["--list"]) == 0
    assert ident in capsys.readouterr().out.splitlines()


def _doc_of(ident):
    from cases.casekit import all_cases
    name = ident.split("[", 1)[0]
    return next(c.doc for c in all_cases().values() if c.name == name)


def test_cli_as_a_module(tmp_path):
    """`python -m fuzz.reproducer` runs as a module and its output compiles."""
    ident, _ = core_instances()[-1]
    out = tmp_path / "m.c"
    r = subprocess.run([sys.executable, "-m", "fuzz.reproducer", "--case", ident, "-o", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert "gcc -o repro" in r.stderr and out.exists()


def test_generated_programs_match_the_executor(tmp_path):
    """Random programs from the fuzzer's generator (closed handles, stale entries, every
    replace flavour, forked children, threads, background calls, poll and select): the
    reproducer prints the executor's trace."""
    _needs_user_notif()
    from fuzz.campaign import fit_timeouts
    gen = pytest.importorskip("fuzz.generate")
    programs, seen = {}, set()
    actor_ops = {"fork", "thread", "kill_actor", "exit_target", "join", "poll", "select"}
    for seed in range(200):
        p = gen.generate(gen.RandomChooser(seed), max_steps=40, name=f"fuzz{seed}")
        ops = {s.op for s in p.steps}
        if len(programs) >= 8 and not (ops & actor_ops) - seen:
            continue
        fitted, _ = fit_timeouts(p, "stock", None)
        for step in fitted.steps:      # two separate runs must agree: no 3 ms sleeper under load
            if step.background and step.timeout_ms > 0:
                step.timeout_ms *= 30
        programs[p.name] = fitted
        seen |= ops
        if len(programs) >= 16 and seen >= actor_ops:
            break
    assert seen >= actor_ops, actor_ops - seen
    exes = compile_many({n: write_reproducer(p) for n, p in programs.items()}, tmp_path)
    for name, program in programs.items():
        r = run_repro(exes[name])
        want = executor_lines(program)
        assert step_lines(r.stdout) == want, r.stdout
        matched = [str(o) for o in program.expected_trace("stock")] == [w.split(" -> ", 1)[1] for w in want]
        assert r.returncode == (0 if matched else 1), r.stdout


def test_unsupported_op_is_refused_clearly():
    """A step op the writer does not know is refused at write time, naming the op."""
    p = Program("odd")
    ep = p.epoll_create("ep")
    p.wait(ep).op = "teleport"
    with pytest.raises(P.ProgramError, match="does not support step op 'teleport'"):
        write_reproducer(p)
