"""What this process holds: open fds and child processes (for leak checks)."""
from __future__ import annotations

import os


def open_fds() -> dict[int, str]:
    """fd -> what it refers to (its /proc/self/fd link)."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass   # the directory's own fd, closed already
    return fds


def children() -> set[int]:
    """The pids of this process's children (of every thread)."""
    kids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                kids.update(int(pid) for pid in f.read().split())
        except OSError:
            pass
    return kids
