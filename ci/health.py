"""Kernel health around a run: taint flags before/after and new kernel log lines.

scan_log() is the pure part (tested on sample text); KernelLog reads the lines
the kernel logged after it was opened, from /dev/kmsg (needs root or
kernel.dmesg_restrict=0).
"""
from __future__ import annotations

import errno
import os
import re

from ci.outcomes import FAIL, PASS, SKIP, Result

FAMILY = "kernel_health"

# What in a kernel log line means the kernel is unhappy.
BAD_LINE = re.compile(
    r"WARNING:|BUG:|KASAN|UBSAN:|KFENCE:|Oops|general protection fault|Kernel panic"
    r"|possible circular locking|INFO: possible recursive locking"
    r"|hung_task|blocked for more than")

# /proc/sys/kernel/tainted bits, as Documentation/admin-guide/tainted-kernels.rst letters.
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
TAINTED = "/proc/sys/kernel/tainted"


def scan_log(text: str) -> list[str]:
    """The lines of kernel log text that report a warning, bug, sanitizer or lockdep splat,
    or hang."""
    return [line for line in text.splitlines() if BAD_LINE.search(line)]


def read_taint(path: str = TAINTED) -> int | None:
    """The kernel's taint mask, or None when it cannot be read."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def taint_letters(mask: int) -> str:
    """Taint bits as letters ('W' for bit 9), unknown bits as 'bitN'."""
    return " ".join(TAINT_LETTERS[bit] if bit < len(TAINT_LETTERS) else f"bit{bit}"
                    for bit in range(mask.bit_length()) if mask >> bit & 1)


def kmsg_text(record: str) -> str:
    """The message of one /dev/kmsg record 'prio,seq,usec,flags;message' (continuations dropped)."""
    head, _, message = record.partition(";")
    return message.split("\n", 1)[0] if _ else record


class KernelLog:
    """The kernel log lines emitted after construction; `.error` says why none can be read."""

    def __init__(self, path: str = "/dev/kmsg"):
        self.fd, self.error = None, None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            self.error = f"cannot read {path}: {exc.strerror}"

    def read_new(self) -> str:
        """Every line logged since construction (or the last call), one per line."""
        lines = []
        while self.fd is not None:
            try:
                record = os.read(self.fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EPIPE:      # records overwritten before we read them
                    lines.append("(kernel log records were lost: ring buffer overrun)")
                    continue
                if exc.errno != errno.EAGAIN:
                    self.error = f"reading the kernel log failed: {exc.strerror}"
                break
            if not record:
                break
            lines.append(kmsg_text(record.decode(errors="replace")))
        return "\n".join(lines)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def health_results(taint_before: int | None, taint_after: int | None,
                   log_text: str | None, log_error: str | None) -> list[Result]:
    """The synthetic tests of the kernel_health family: `taint` and `kernel_log`."""
    if taint_before is None or taint_after is None:
        taint = Result(FAMILY, "taint", SKIP, "no_taint_file")
    elif taint_after & ~taint_before:
        new = taint_after & ~taint_before
        taint = Result(FAMILY, "taint", FAIL, details=(
            f"kernel taint went from {taint_before} to {taint_after}: new flags {taint_letters(new)}"))
    else:
        taint = Result(FAMILY, "taint", PASS)
    if log_error is not None:
        log = Result(FAMILY, "kernel_log", SKIP, "no_kernel_log", details=log_error)
    else:
        bad = scan_log(log_text or "")
        log = Result(FAMILY, "kernel_log", FAIL, details="\n".join(bad)) if bad else \
            Result(FAMILY, "kernel_log", PASS)
    return [taint, log]
