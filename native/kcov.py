"""KCOV for the executor: the PCs of the code under test that one run's target thread reached.

    from native import kcov
    reason = kcov.missing()         # None where /sys/kernel/debug/kcov can be used
    kcov.open()                     # from now on every run of native.executor is traced
    trace = native.executor.run(program)
    pcs = kcov.collect()            # the PCs of that run, in the order they were reached

While open, runs fork their targets here rather than through the zygote (only a
child of this process shares the trace buffer).  Only kernel files built with
KCOV_INSTRUMENT log PCs (patches/coverage/ marks the files under test).
"""
from __future__ import annotations

import os

from native._executor import ffi, lib

DEVICE = "/sys/kernel/debug/kcov"
ENTRIES = 1 << 18            # PCs one run may log; a run past that loses its tail


def missing() -> str | None:
    """Why KCOV cannot be used here, or None."""
    if not os.path.exists(DEVICE):
        return f"{DEVICE} is absent (a kernel without CONFIG_KCOV, or debugfs not mounted)"
    if not os.access(DEVICE, os.R_OK | os.W_OK):
        return f"{DEVICE} is not readable and writable by this user"
    return None


def open(entries: int = ENTRIES) -> None:
    """Trace every following run; OSError when the kernel refuses."""
    err = lib.fdr_kcov_open(entries)
    if err < 0:
        raise OSError(-err, f"kcov: {os.strerror(-err)} ({DEVICE})")


def close() -> None:
    lib.fdr_kcov_close()


_buf = None


def collect() -> list[int]:
    """The PCs the last run's target thread reached (empty when nothing is open)."""
    global _buf
    if _buf is None:
        _buf = ffi.new("uint64_t[]", ENTRIES)
    n = lib.fdr_kcov_collect(_buf, ENTRIES)
    if n < 0:
        return []
    return list(ffi.unpack(_buf, min(n, ENTRIES)))


def edges(pcs: list[int]) -> set[int]:
    """The run's edges: each pair of consecutive PCs (low 32 bits of each), and its first PC."""
    low = [pc & 0xFFFFFFFF for pc in pcs]
    out = {(a << 32) | b for a, b in zip(low, low[1:])}
    if low:
        out.add(low[0])
    return out

