"""Run one signal scenario against a target asleep in the seccomp notifier.

    from native.notif_signal import run_signal
    res = run_signal("restart")
    res.renotified, res.id_delta, res.old_addfd     # True, 1, "ENOENT"

The engine is native/notif_signal.c (built by `python -m native.build` as
native._notif_signal).  Errno fields come back as names ("ENOENT"), 0 for
success, and None where the scenario does not look.
"""
from __future__ import annotations

import dataclasses
import errno as errno_mod

try:
    from native._notif_signal import ffi, lib
except ImportError as exc:  # pragma: no cover - reported by the harness as a clear error
    raise ImportError(f"the notifier signal engine is not built ({exc}); run ci/test or "
                      "`python -m native.build`") from exc

SCENARIOS = {}
i = 0
while (name := lib.fdr_notif_signal_name(i)) != ffi.NULL:
    SCENARIOS[ffi.string(name).decode()] = i
    i += 1
del i, name


class SignalRunError(RuntimeError):
    """The scenario could not be carried out (a set-up call failed or a wait ran out)."""


@dataclasses.dataclass(frozen=True)
class SignalResult:
    renotified: bool
    id_delta: int | None
    old_valid: str | int | None
    old_addfd: str | int | None
    old_send: str | int | None
    live_addfd: str | int | None
    live_send: str | int | None
    pending_after: bool
    call_ret: int | None
    call_errno: str | int | None
    handler_runs: int | None
    term_signal: int
    exit_status: int | None


def _errno(v: int):
    if v == lib.FDR_SIG_UNSET:
        return None
    return errno_mod.errorcode.get(v, v) if v else 0


def _plain(v: int):
    return None if v == lib.FDR_SIG_UNSET else v


def run_signal(scenario: str, timeout_ms: int = 5000) -> SignalResult:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    out = ffi.new("struct fdr_sig_result *")
    if lib.fdr_notif_signal(SCENARIOS[scenario], timeout_ms, out) < 0:
        raise ValueError(f"scenario {scenario!r} refused")
    if out.status != lib.FDR_SIG_OK:
        kind = "timeout" if out.status == lib.FDR_SIG_TIMEOUT else "setup"
        err = f" ({errno_mod.errorcode.get(out.err, out.err)})" if out.err else ""
        raise SignalRunError(f"{scenario}: {kind}: {ffi.string(out.where).decode()}{err}")
    return SignalResult(
        renotified=bool(out.renotified), id_delta=_plain(out.id_delta),
        old_valid=_errno(out.old_valid), old_addfd=_errno(out.old_addfd),
        old_send=_errno(out.old_send), live_addfd=_errno(out.live_addfd),
        live_send=_errno(out.live_send), pending_after=bool(out.pending_after),
        call_ret=_plain(out.call_ret), call_errno=_errno(out.call_errno),
        handler_runs=_plain(out.handler_runs), term_signal=out.term_signal,
        exit_status=_plain(out.exit_status))
