"""Semantic changes that came with known kernel commits, decided by kernel version.

A behaviour that changed with a commit is asserted against the running
kernel's real upstream version, never probed by running the behaviour under
test.  Stable series that took a backport are listed with their first fixed
release; a distro kernel that carries a backport the table does not know (a
RHEL-style kernel whose version says nothing about its backports) says so with
FDR_KERNEL_COMMITS=+<commit>[,-<commit>...].

The upstream version is not `uname -r` on every distribution: Debian's release
is an ABI name (6.1.0-57-amd64, patch level 0) and the stable level is in
/proc/version ("Debian 6.1.192-3"); Ubuntu puts it last in
/proc/version_signature ("Ubuntu 5.15.0-91.101-generic 5.15.131"); Fedora and
Arch use the plain version.  FDR_KERNEL_VERSION=X.Y.Z overrides all of them.
"""
from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Commit:
    sha: str
    title: str
    mainline: tuple          # first mainline release carrying it
    stable: dict             # (major, minor) -> first stable patch level carrying it


COMMITS = {c.sha: c for c in (
    # ep_item_poll() takes a reference first (epi_fget) and reports nothing for a
    # file whose last reference is already gone but whose __fput() has not run.
    # Backported to stable as the fix for CVE-2024-38580.  6.1.93 and 6.8.12 are
    # confirmed by Debian's changelogs (the stable ChangeLog each came with).
    Commit("4efaa5acf0a1", "epoll: be better about file lifetimes", (6, 10),
           {(6, 9): 4, (6, 8): 12, (6, 6): 33, (6, 1): 93, (5, 15): 161, (5, 10): 219}),
    # Exceeding the nesting depth limit became ELOOP instead of EINVAL (CVE-2025-38614).
    # 6.1.149 and 6.12.43 are confirmed by Debian's changelogs; other stable series
    # took it too but are not in this table: declare them with FDR_KERNEL_COMMITS.
    Commit("f2e467a48287", "eventpoll: Fix semi-unbounded recursion", (6, 17),
           {(6, 12): 43, (6, 1): 149}),
    # A task's seccomp filters are released in do_exit(), not in release_task() when it
    # is reaped: the listener's EPOLLHUP (and NOTIF_RECV's ENOENT) come once the last
    # user has exited, not once it has been reaped.  Not in a stable series we know of.
    Commit("bfafe5efa975", "seccomp: release task filters when the task exits", (6, 11), {}),
    # Pipes support IOCB_NOWAIT (FMODE_NOWAIT): io_uring reads a pipe inline and arms a
    # poll when it is empty, instead of punting a blocking read to an io-wq worker whose
    # file reference is dropped when the worker lets go of the request, after the
    # completion is already visible.
    Commit("afed6271f5b0", "pipe: set FMODE_NOWAIT on pipes", (6, 4), {}),
    # epoll files answer ioctl() (EPIOCSPARAMS/EPIOCGPARAMS): any other request gets
    # EINVAL from ep_eventpoll_ioctl() instead of the ENOTTY of a file without one.
    # Some distributions carry it on older series: declare them with FDR_KERNEL_COMMITS.
    Commit("18e2bf0edf4d", "eventpoll: Add epoll ioctl for epoll_params", (6, 9), {}),
    # SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the supervisor has received a
    # notification, only a fatal signal interrupts the target's wait for the answer.
    # Before it the flag is unknown and seccomp(2) refuses it with EINVAL.
    # io_uring_register() no longer runs the ring's pending task work before it does its
    # job; before it, registering or unregistering files ran it first (the DEFER_TASKRUN
    # ring's local work included), so a read woken before the register completed there.
    Commit("ef67fcb41de6", "io_uring: do not always force run task_work in io_uring_register",
           (6, 2), {}),
    # DEFER_TASKRUN rings run their queued task work in the order it was queued; before
    # it the lock-less list was run as it stands, newest first (io_uring/io_uring.c,
    # __io_run_local_work).  Seen on Debian's 6.1.192: a socket read and a multishot
    # poll woken by one write run read-first there, so the poll finds the data gone.
    Commit("3af0356c162c", "io_uring: maintain ordering for DEFER_TASKRUN tw list",
           (6, 5), {}),
    Commit("c2aa2dfef243", "seccomp: Add wait_killable semantic to seccomp user notifier",
           (5, 19), {}),
)}


@dataclass(frozen=True)
class Version:
    """The kernel's upstream version and where it was read from (for the gate's header)."""
    release: tuple
    source: str

    def __str__(self) -> str:
        return f"{'.'.join(map(str, self.release))} (from {self.source})"


def release_tuple(release: str | None = None) -> tuple:
    """(major, minor, patch) of a version string; the running kernel's upstream version
    when none is given."""
    if release is None:
        return upstream_version().release
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return tuple(int(x or 0) for x in m.groups())


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


_PROC_TEXT: dict = {}


def _running_kernel(path: str) -> str:
    """A /proc file naming the running kernel, read once per process (the kernel a
    process runs on does not change; the model asks for every program it predicts)."""
    text = _PROC_TEXT.get(path)
    if text is None:
        text = _PROC_TEXT[path] = _read(path)
    return text


def upstream_version(uname: str | None = None, proc_version: str | None = None,
                     signature: str | None = None, env=None) -> Version:
    """The running kernel's upstream version: FDR_KERNEL_VERSION, else Ubuntu's
    /proc/version_signature, else Debian's stable version in /proc/version, else uname."""
    env = os.environ if env is None else env
    if env.get("FDR_KERNEL_VERSION"):
        return Version(release_tuple(env["FDR_KERNEL_VERSION"]), "FDR_KERNEL_VERSION")
    uname = platform.release() if uname is None else uname
    signature = _running_kernel("/proc/version_signature") if signature is None else signature
    if signature.strip():
        # "Ubuntu 5.15.0-91.101-generic 5.15.131": the last field is the upstream version.
        m = re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s*$", signature)
        if m:
            return Version(release_tuple(m.group(1)), "/proc/version_signature")
    proc_version = _running_kernel("/proc/version") if proc_version is None else proc_version
    # "... (gcc-12 (Debian 12.2.0-14) 12.2.0, ...) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)":
    # the compiler's version comes first, the kernel's after the build number.
    m = re.search(r"#\d+ [^#]*\bDebian (\d+\.\d+(?:\.\d+)?)[-~+ ]", proc_version)
    if m:
        return Version(release_tuple(m.group(1)), "/proc/version (Debian)")
    return Version(release_tuple(uname), "uname -r")


def overrides_text(env=None) -> str:
    """FDR_KERNEL_COMMITS as set, for the gate's header and summary ('' when unset)."""
    return (os.environ if env is None else env).get("FDR_KERNEL_COMMITS", "")


def _overrides() -> dict:
    out = {}
    for item in filter(None, (i.strip() for i in overrides_text().split(","))):
        if item[0] not in "+-" or item[1:] not in COMMITS:
            raise ValueError(f"FDR_KERNEL_COMMITS: {item!r} is not +<commit> or -<commit> "
                             f"of a known commit ({', '.join(COMMITS)})")
        out[item[1:]] = item[0] == "+"
    return out


_FACTS: dict = {}


def facts(release: str | None = None) -> dict[str, bool]:
    """Every tracked commit and whether the kernel carries it: what the model and the
    cases consult, and what the gate prints.  Worked out once per release and
    environment (FDR_KERNEL_VERSION, FDR_KERNEL_COMMITS); a fresh dict every call."""
    key = (release, os.environ.get("FDR_KERNEL_VERSION"), overrides_text())
    known = _FACTS.get(key)
    if known is None:
        known = _FACTS[key] = {sha: kernel_has(sha, release) for sha in COMMITS}
    return dict(known)


def kernel_has(sha: str, release: str | None = None) -> bool:
    """Does the kernel carry this commit (by version, or as FDR_KERNEL_COMMITS says)?"""
    commit = COMMITS[sha]
    forced = _overrides()
    if sha in forced:
        return forced[sha]
    major, minor, patch = release_tuple(release)
    if (major, minor) >= commit.mainline:
        return True
    first = commit.stable.get((major, minor))
    return first is not None and patch >= first


def epollwakeup_kept() -> bool:
    """Does EPOLL_CTL_ADD/MOD keep EPOLLWAKEUP in an entry's events on this machine?

    Not a commit but the configuration and the caller's credentials:
    ep_take_care_of_epollwakeup() clears the bit always without CONFIG_PM_SLEEP,
    and with it for a caller lacking CAP_BLOCK_SUSPEND.  /sys/power/wakeup_count
    exists exactly with CONFIG_PM_SLEEP; the executor's target keeps this
    process's capabilities.  FDR_EPOLLWAKEUP=kept|dropped overrides both.
    """
    forced = os.environ.get("FDR_EPOLLWAKEUP")
    if forced in ("kept", "dropped"):
        return forced == "kept"
    if not Path("/sys/power/wakeup_count").exists():
        return False
    return _capable(36)                                   # CAP_BLOCK_SUSPEND


def _capable(cap: int) -> bool:
    """Is capability number cap in this process's effective set (the target keeps it)?"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def epoll_busy_poll() -> bool:
    """Do EPIOCSPARAMS/EPIOCGPARAMS reach the busy-poll parameters (else EOPNOTSUPP)?

    Configuration, not a commit: ep_eventpoll_bp_ioctl() is real only with
    CONFIG_NET_RX_BUSY_POLL, which is also what gives /proc/sys/net/core/busy_poll.
    FDR_EPOLL_BUSY_POLL=yes|no overrides.
    """
    forced = os.environ.get("FDR_EPOLL_BUSY_POLL")
    if forced in ("yes", "no"):
        return forced == "yes"
    return Path("/proc/sys/net/core/busy_poll").exists()


def cap_net_admin() -> bool:
    """May EPIOCSPARAMS raise busy_poll_budget above NAPI_POLL_WEIGHT (64), else EPERM?
    The caller's CAP_NET_ADMIN; FDR_CAP_NET_ADMIN=yes|no overrides."""
    forced = os.environ.get("FDR_CAP_NET_ADMIN")
    if forced in ("yes", "no"):
        return forced == "yes"
    return _capable(12)
