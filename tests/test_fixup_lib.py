"""The userspace fixup's library from Python (native/fixup.py over native/fixup.c).

This process plays both parts: the target whose epoll entries move and the
supervisor that moves them; a dup2 stands in for ADDFD's install (both go
through the kernel's do_dup2).  The ADDFD path itself runs in every fixup
case (cases/test_fixup_*.py); the C driver of bench/fixup_latency.py, run here
small, checks fdr_fixup_addfd in every mode and fdr_fixup_epoll_create.
"""
from __future__ import annotations

import contextlib
import errno
import os
import select
import subprocess
import sys

import pytest

from native import probes
from native._executor import lib

IN, OUT, ERR, HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP


@pytest.fixture(autouse=True)
def _kcmp():
    token = probes.missing(["kcmp"])
    if token:
        pytest.skip(token)


@contextlib.contextmanager
def watched(events=IN):
    """An epoll watching the read end r of a pipe (Python sets the low half of the data
    to r), the old file kept alive by a dup, and a second pipe to install at r's number."""
    from native.fixup import Fixup
    ep = select.epoll()
    r, w = os.pipe2(os.O_NONBLOCK)
    keep = os.dup(r)
    nr, nw = os.pipe2(os.O_NONBLOCK)
    pidfd = os.pidfd_open(os.getpid())
    ep.register(r, events)
    fx = Fixup(os.getpid(), pidfd)
    try:
        yield fx, ep, r, w, keep, nr, nw
    finally:
        fx.close()
        ep.close()
        for fd in (r, w, keep, nr, nw, pidfd):
            os.close(fd)


def fdinfo_lines(ep) -> list[tuple[int, int, int]]:
    """(tfd, events, data) of each entry, from this process's fdinfo of ep."""
    with open(f"/proc/self/fdinfo/{ep.fileno()}") as f:
        return [(int(p[1]), int(p[3], 16), int(p[5], 16))
                for p in (line.split() for line in f) if p and p[0] == "tfd:"]


@pytest.mark.parametrize("tracked", [False, True], ids=["scan", "tracked"])
def test_entry_follows_the_new_file(tracked):
    """After prepare, the install and apply, the entry reports the new file under the old
    mask and data and no longer the old file."""
    with watched() as (fx, ep, r, w, keep, nr, nw):
        if tracked:
            fx.mode = lib.FDR_FIXUP_TRACKED
            fx.track()
        before = fdinfo_lines(ep)
        with fx.prepare(r) as plan:
            os.dup2(nr, r)
            assert plan.apply(nr) == 1 and plan.kept == 0
            assert [(r, e.events, e.data) for e in plan.entries] == before
        os.write(w, b"old")
        assert ep.poll(0) == []
        os.write(nw, b"new")
        assert ep.poll(0) == [(r, IN)]
        assert fdinfo_lines(ep) == before == [(r, IN | ERR | HUP, before[0][2])]


def test_a_file_no_epoll_takes_leaves_the_entry():
    """A new file that is not pollable (a regular file) is not added: the entry stays with
    the old file, as follow says."""
    with watched() as (fx, ep, r, w, keep, nr, nw):
        reg = os.open("/proc/self/status", os.O_RDONLY)
        try:
            with fx.prepare(r) as plan:
                os.dup2(reg, r)
                assert plan.apply(reg) == 0 and plan.kept == 1
                assert plan.entries[0].add_err == errno.EPERM
            os.write(w, b"old")
            assert ep.poll(0) == [(r, IN)]                   # the old file, kept by keep
        finally:
            os.close(reg)


def test_ctl_between_prepare_and_apply_is_undone():
    """An epoll_ctl MOD made between prepare and apply (another target thread during the
    fixup) is lost: apply re-adds the mask and data prepare read."""
    with watched() as (fx, ep, r, w, keep, nr, nw):
        before = fdinfo_lines(ep)
        with fx.prepare(r) as plan:
            ep.modify(r, OUT)
            os.dup2(nr, r)
            plan.apply(nr)
        assert fdinfo_lines(ep) == before == [(r, IN | ERR | HUP, before[0][2])]


def test_the_same_file_again_leaves_the_entry_alone():
    """Installing the file that is there already changes nothing: a disarmed ONESHOT entry
    stays disarmed (no DEL+ADD)."""
    with watched(IN | select.EPOLLONESHOT) as (fx, ep, r, w, keep, nr, nw):
        os.write(w, b"old")
        assert ep.poll(0) == [(r, IN)]                       # reported once: disarmed
        before = fdinfo_lines(ep)
        with fx.prepare(r) as plan:
            os.dup2(keep, r)                                 # the same open file
            assert plan.apply(keep) == 1
        assert fdinfo_lines(ep) == before == [(r, select.EPOLLONESHOT, before[0][2])]
        assert ep.poll(0) == []


def test_bench_driver_moves_every_entry_in_every_mode(tmp_path):
    """The bench's seccomp target (epolls made through its trapped epoll_create1, then ADDFD
    replaces with the fixup in each mode) ends with every epoll holding the new file after
    every replace."""
    from bench.fixup_latency import build
    exe = build(tmp_path)
    done = subprocess.run([str(exe), "200", "3", "8"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert [line.split()[0] for line in done.stdout.splitlines()[1:]] == \
        ["scan", "tracked", "naive", "none"]


TARGET = r"""
import os, select, sys
n = int(sys.argv[1])
ep = select.epoll()
r, w = os.pipe2(os.O_NONBLOCK)
os.dup2(r, n)
os.close(r)
nr, nw = os.pipe2(os.O_NONBLOCK)
ep.register(n, select.EPOLLIN)
print(ep.fileno(), nr, nw, flush=True)
sys.stdin.readline()
os.dup2(nr, n)
print("installed", flush=True)
sys.stdin.readline()
"""


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """The fd of another process, copied here (Python 3.11 has no os.pidfd_getfd)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(438, pidfd, fd, 0)          # __NR_pidfd_getfd (same number everywhere)
    if r < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    return r


def test_another_process_with_its_fd_number_free_here():
    """A target in another process whose fd number is free in the supervisor: the fixup
    works on that number in place (no helper child) and leaves it free again."""
    from native.fixup import Fixup
    n = max(int(fd) for fd in os.listdir("/proc/self/fd")) + 100
    proc = subprocess.Popen([sys.executable, "-c", TARGET, str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    pidfd = os.pidfd_open(proc.pid)
    copies = []
    try:
        epfd, nr, nw = (int(x) for x in proc.stdout.readline().split())
        fx = Fixup(proc.pid, pidfd)
        with fx.prepare(n) as plan:
            proc.stdin.write("install\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "installed\n"
            copies = [pidfd_getfd(pidfd, fd) for fd in (nr, nw, epfd)]
            assert plan.apply(copies[0]) == 1
        with pytest.raises(OSError):
            os.fstat(n)                           # free again here
        os.write(copies[1], b"new")
        ep = select.epoll.fromfd(copies.pop())
        try:
            assert [(d & 0xFFFFFFFF, e) for d, e in ep.poll(0)] == [(n, IN)]
        finally:
            ep.close()
    finally:
        for fd in copies + [pidfd]:
            os.close(fd)
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()
