"""Semantic changes that came with known kernel commits, decided by kernel version.

A behaviour that changed with a commit is asserted against the running
kernel's version, never probed by running the behaviour under test.  Stable
series that took a backport are listed with their first fixed release; a
distro kernel that carries a backport the table does not know can say so with
FDR_KERNEL_COMMITS=+<commit>[,-<commit>...].
"""
from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass


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
)}


def release_tuple(release: str | None = None) -> tuple:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release or platform.release())
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return tuple(int(x or 0) for x in m.groups())


def _overrides() -> dict:
    out = {}
    for item in filter(None, os.environ.get("FDR_KERNEL_COMMITS", "").split(",")):
        out[item.strip()[1:]] = item.strip()[0] == "+"
    return out


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
