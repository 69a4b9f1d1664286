"""Run a race scenario for real and return what it observed.

    from native.race import run_race
    result = run_race("two_addfd", 2000)
    result.counts            # {"A_last": 1011, "B_last": 989, "inconsistent": 0}
    result.violations        # 0; else result.first_violation says what and when

The engine is native/race.c (built by `python -m native.build` as native._race):
one target process per run (per iteration for addfd_vs_exit), racing threads
on both sides, fuzzy-sync barriers and a calibrated delay sweep.  Every
iteration lands in exactly one of its scenario's interleaving classes, read
off the state the kernel left behind, so the counts sum to the iterations run.
"""
from __future__ import annotations

import dataclasses
import errno as errno_mod
import os

from native.executor import timeout_scale   # FDR_TIMEOUT_SCALE stretches the deadline too

try:
    from native._race import ffi, lib
except ImportError as exc:  # pragma: no cover - reported by the harness as a clear error
    raise ImportError(f"the native race engine is not built ({exc}); run ci/test or "
                      "`python -m native.build`") from exc

DEFAULT_TIMEOUT_S = 20.0
FAILURE_KINDS = {lib.FDR_RACE_TIMEOUT: "timeout", lib.FDR_RACE_CRASHED: "crashed",
                 lib.FDR_RACE_SETUP: "setup"}


class RaceError(RuntimeError):
    """The run could not be carried out: it timed out, its target crashed, or set-up failed."""

    def __init__(self, name: str, kind: str, detail: str, partial: "RaceResult"):
        super().__init__(f"race {name}: {kind}: {detail}")
        self.name, self.kind, self.detail, self.partial = name, kind, detail, partial


@dataclasses.dataclass(frozen=True)
class RaceResult:
    name: str
    iterations: int                 # iterations carried out to the end
    counts: dict[str, int]          # interleaving class -> iterations that landed in it
    violations: int                 # invariant violations over all iterations
    first_violation: str | None
    elapsed_s: float
    window_ns: int                  # half-range of the calibrated delay sweep
    flip_ns: int                    # start offset where the order flipped (narrow sweep centre)
    op_ns: tuple[int, int]          # median durations of the two racing operations

    def shortfalls(self, minimums: dict[str, int]) -> list[str]:
        """Each class observed fewer times than its stated minimum, as text."""
        for cls in minimums:
            if cls not in self.counts:
                raise ValueError(f"{self.name} has no class {cls!r}; it has {', '.join(self.counts)}")
        return [f"{cls} observed {self.counts[cls]} times, fewer than {n}"
                for cls, n in minimums.items() if self.counts[cls] < n]

    def summary(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        text = (f"{self.name}: {self.iterations} iterations in {self.elapsed_s:.2f}s; {counts}; "
                f"window +-{self.window_ns / 1000:.1f}us, flip {self.flip_ns / 1000:+.1f}us, ops {self.op_ns[0] / 1000:.1f}us/"
                f"{self.op_ns[1] / 1000:.1f}us; violations={self.violations}")
        if self.first_violation:
            text += f" (first: {self.first_violation})"
        return text


def _names() -> dict[str, int]:
    out = {}
    for i in range(lib.FDR_RACE_NSCENARIOS):
        out[ffi.string(lib.fdr_race_name(i)).decode()] = i
    return out


SCENARIOS: dict[str, int] = _names()


def _index(name: str) -> int:
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown race scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def classes(name: str) -> list[str]:
    """The scenario's interleaving classes, in the engine's order."""
    i = _index(name)
    out = []
    for c in range(lib.FDR_RACE_MAX_CLASSES):
        p = lib.fdr_race_class(i, c)
        if p == ffi.NULL:
            break
        out.append(ffi.string(p).decode())
    return out


def needs(name: str) -> list[str]:
    """The probed features (native.probes names) the scenario needs."""
    return ["fds"] + (["user_notif", "addfd"] if lib.fdr_race_needs_addfd(_index(name)) else [])



def run_race(name: str, iterations: int, timeout_s: float | None = None, *,
             sabotage: bool = False, profile: str = "stock") -> RaceResult:
    """Run `iterations` iterations of scenario `name`; raise RaceError if the run was cut short.

    sabotage=True (for self-tests) makes the engine keep its own copies of the
    racing files open through each verdict: a deliberate leak that two_addfd,
    two_dup2, addfd_vs_close, addfd_vs_exit, addfd_vs_signal and two_listeners must
    report as violations.  profile ("stock" or "follow") names the semantics the
    verdicts of two_listeners state; the other scenarios state stock's.
    """
    if profile not in ("stock", "follow"):
        raise ValueError(f"profile must be 'stock' or 'follow', not {profile!r}")
    index = _index(name)
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations <= 0:
        raise ValueError(f"iterations must be a positive int, not {iterations!r}")
    if timeout_s is None:
        timeout_s = DEFAULT_TIMEOUT_S * timeout_scale()
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
    out = ffi.new("struct fdr_race_result *")
    flags = (lib.FDR_RACE_F_SABOTAGE if sabotage else 0) | \
        (lib.FDR_RACE_F_FOLLOW if profile == "follow" else 0)
    if lib.fdr_race(index, iterations, max(1, int(timeout_s * 1000)), flags, out) < 0:
        err = ffi.errno
        raise OSError(err, f"fdr_race({name}, {iterations}): {os.strerror(err)}")
    names = classes(name)
    result = RaceResult(
        name=name, iterations=out.iterations,
        counts={c: int(out.counts[i]) for i, c in enumerate(names)},
        violations=int(out.violations),
        first_violation=ffi.string(out.first_violation).decode(errors="replace") or None,
        elapsed_s=out.elapsed_ns / 1e9, window_ns=int(out.window_ns), flip_ns=int(out.flip_ns),
        op_ns=(int(out.op_ns[0]), int(out.op_ns[1])))
    if out.status != lib.FDR_RACE_OK:
        detail = ffi.string(out.where).decode(errors="replace")
        if out.err:
            detail += f": {errno_mod.errorcode.get(out.err, out.err)}"
        detail += f" (after {out.iterations} of {iterations} iterations)"
        raise RaceError(name, FAILURE_KINDS.get(out.status, str(out.status)), detail, result)
    return result
