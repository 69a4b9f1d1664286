"""Run the ADDFD churn: many replaces of one registered fd against a busy epoll_wait.

    from native.churn import run_churn
    res = run_churn(5000)
    res.stale, res.adds, res.mods        # 0, 5001, 0 on a stock kernel

The engine is native/churn.c (built by `python -m native.build` as native._churn).
"""
from __future__ import annotations

import dataclasses
import errno as errno_mod

try:
    from native._churn import ffi, lib
except ImportError as exc:  # pragma: no cover - reported by the harness as a clear error
    raise ImportError(f"the churn engine is not built ({exc}); run ci/test or "
                      "`python -m native.build`") from exc

FIELDS = ("iterations", "waits", "events", "stale", "adds", "mods", "ctl_failures",
          "addfd_failures", "old_alive", "fds_before", "fds_after", "entries", "entry_fd",
          "entry_data")


class ChurnError(RuntimeError):
    """The churn could not be carried out: kind is "setup" or "timeout"."""

    def __init__(self, kind: str, detail: str, partial: "ChurnResult"):
        super().__init__(f"churn: {kind}: {detail}")
        self.kind, self.detail, self.partial = kind, detail, partial


@dataclasses.dataclass(frozen=True)
class ChurnResult:
    iterations: int
    waits: int
    events: int
    stale: int
    first_stale: str | None
    adds: int
    mods: int
    ctl_failures: int
    addfd_failures: int
    old_alive: int
    fds_before: int
    fds_after: int
    entries: int
    entry_fd: int
    entry_data: int

    def summary(self) -> str:
        return (f"churn: {self.iterations} replaces, {self.waits} waits, {self.events} events, "
                f"stale={self.stale}, adds={self.adds}, mods={self.mods}, "
                f"old_alive={self.old_alive}, fds {self.fds_before}->{self.fds_after}, "
                f"entries={self.entries}")


def run_churn(iterations: int, timeout_s: float = 60.0, keep_old: bool = False) -> ChurnResult:
    if not isinstance(iterations, int) or iterations <= 0:
        raise ValueError(f"iterations must be a positive int, not {iterations!r}")
    out = ffi.new("struct fdr_churn_result *")
    flags = lib.FDR_CHURN_F_KEEP_OLD if keep_old else 0
    if lib.fdr_churn(iterations, max(1, int(timeout_s * 1000)), flags, out) < 0:
        raise ValueError("fdr_churn refused its arguments")
    result = ChurnResult(first_stale=ffi.string(out.first_stale).decode() or None,
                         **{f: int(getattr(out, f)) for f in FIELDS})
    if out.status != lib.FDR_CHURN_OK:
        kind = "timeout" if out.status == lib.FDR_CHURN_TIMEOUT else "setup"
        detail = ffi.string(out.where).decode()
        if out.err:
            detail += f": {errno_mod.errorcode.get(out.err, out.err)}"
        raise ChurnError(kind, detail, result)
    return result
