"""Kernel feature probes and semantics-profile detection.

Features are probed, never inferred from version numbers.  Each missing
feature maps to a short fixed skip token, since CI parsers fold the skip
reason into the test's name.
"""
from __future__ import annotations

import functools
import os
import resource
import threading

from native import program as P

# Feature name -> the skip token used when it is missing.
SKIP_TOKENS = {
    "user_notif": "no_user_notif",
    "addfd": "no_addfd",
    "addfd_send": "no_addfd_send",
    "kcmp": "no_kcmp",
    "io_uring": "io_uring_disabled",
    "defer_taskrun": "no_defer_taskrun",
    "liburing": "no_liburing",
    "root": "not_root",
    "fds": "fd_limit",
    "fail_nth": "no_fail_nth",      # CONFIG_FAULT_INJECTION: /proc/<pid>/task/<tid>/fail-nth
    "failslab": "no_failslab",      # CONFIG_FAILSLAB's debugfs knobs (checked by the case itself)
}
URING_FEATURES = ["liburing", "io_uring", "defer_taskrun"]   # what any io_uring step needs
FDS_NEEDED = 32     # RLIMIT_NOFILE below this: no room for the fds the race engine and executor use

def _replace_works(via: str) -> bool:
    """Does an ADDFD of this flavour install a file?  (ENOTTY/EINVAL: the kernel lacks it.)"""
    from native.executor import run
    p = P.Program("probe")
    r = p.pipe("r")
    p.replace(r, by=P.PIPE, via=via)
    trace = run(p)
    return trace.failure is None and len(trace.outcomes) == 2 and trace.outcomes[1].errno is None


def _io_uring() -> bool:
    from native._executor import lib
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                return False
    except FileNotFoundError:
        pass
    return bool(lib.fdr_probe_io_uring())


@functools.lru_cache(maxsize=None)
def features() -> dict[str, bool]:
    """Every probed feature, once per process."""
    from native._executor import lib
    have = {"user_notif": bool(lib.fdr_probe_user_notif()), "root": os.geteuid() == 0,
            "kcmp": bool(lib.fdr_probe_kcmp()), "io_uring": _io_uring(),
            "liburing": bool(lib.fdr_have_liburing()),
            "fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= FDS_NEEDED}
    have["defer_taskrun"] = have["io_uring"] and bool(lib.fdr_probe_defer_taskrun())
    have["addfd"] = have["user_notif"] and _replace_works(P.ADDFD_SETFD)
    have["addfd_send"] = have["addfd"] and _replace_works(P.ADDFD_SETFD_SEND)
    have["fail_nth"] = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/fail-nth")
    return have


def missing(needed) -> str | None:
    """The skip token of the first needed feature this kernel lacks, or None."""
    have = features()
    for name in needed:
        if not have[name]:
            return SKIP_TOKENS[name]
    return None


def program_needs(program: P.Program) -> list[str]:
    """The features a program needs, read off its steps."""
    needs = ["user_notif"]
    for s in program.steps:
        if s.op == "replace" and s.via in P.ADDFD_VIAS:
            needs.append("addfd")
            if s.via in P.SEND_VIAS:
                needs.append("addfd_send")
            if s.via in P.FIXUP_VIAS:
                needs.append("kcmp")
        if s.op in ("kcmp_epoll_tfd", "sup_kcmp"):
            needs.append("kcmp")
        if s.op in P.URING_OPS:
            needs += URING_FEATURES
    return list(dict.fromkeys(needs))


def profile_probe() -> P.Program:
    """Multi-reference ADDFD replace: whose readiness does epoll report under the fd's data?"""
    p = P.Program("profile_probe")
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    p.dup(r, "keep")
    p.epoll_ctl(ep, P.ADD, r, P.IN, data=0xD5)
    p.replace(r, by=P.PIPE, via=P.ADDFD_SETFD, file="new")
    p.inject(p.file_named("old"))
    p.wait(ep).expect(stock=P.E(events=[(P.IN, 0xD5)]), follow=P.E(events=[]))
    p.drain(p.handles[2]).expect(reached="old")
    p.inject(p.file_named("new"))
    p.wait(ep).expect(stock=P.E(events=[]), follow=P.E(events=[(P.IN, 0xD5)]))
    return p


def detect_profile() -> tuple[str | None, str]:
    """The profile the running kernel matches, and the probe's trace as text.

    None when it matches no profile: callers must fail, never pick the nearest.
    """
    from native.executor import run
    if not features()["addfd"]:
        return None, "ADDFD is not available: no profile can be probed"
    p = profile_probe()
    trace = run(p)
    text = "\n".join(f"{s.describe()} -> {o}" for s, o in zip(p.steps, trace.outcomes))
    if trace.failure:
        text += f"\n{trace.failure}"
    for profile in P.PROFILES:
        if trace == p.expected_trace(profile):
            return profile, text
    return None, text
