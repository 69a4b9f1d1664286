"""The gate's processes: a signal ends the whole run at once, and every process is waited for.

CI labs stop a job with SIGTERM (then SIGKILL), a terminal with SIGINT or SIGHUP.
`Lifecycle` turns those into an `Interrupted` exception in the main thread, so
the gate unwinds through its `finally` blocks; it makes the gate a child
subreaper, so every process the run starts (pytest, its workers, the zygotes,
the targets) comes back to the gate when its parent dies; and `close()` kills
and reaps every child the gate did not have when the run started.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

from native.holdings import children

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_CHILD_SUBREAPER = 36
REAP_BOUND_S = 5.0       # killed processes are gone long before this, unless stuck in the kernel


class Interrupted(Exception):
    """The run was stopped by a signal; `code` is the shell's 128 + signal number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.code = 128 + signum
        super().__init__(f"interrupted by {self.name}")


def _raise(signum, frame):
    for sig in SIGNALS:          # one signal is enough: the rest are ignored while the run unwinds
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (started with start_new_session) and wait for it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _set_subreaper(on: int) -> bool:
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) == 0


class Lifecycle:
    """Signal handlers and subreaping for the duration of a run (a context manager)."""

    def __enter__(self):
        self.before = children()
        self.handlers = {sig: signal.signal(sig, _raise) for sig in SIGNALS}
        self.subreaper = _set_subreaper(1)
        return self

    def __exit__(self, *exc):
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            self.reap()
        finally:
            if self.subreaper:
                _set_subreaper(0)
            for sig, handler in self.handlers.items():
                signal.signal(sig, handler)
        return False

    def reap(self) -> bool:
        """SIGKILL and wait for every child that came during the run (its zygotes, orphans
        handed to us), until none is left; False if some outlived REAP_BOUND_S."""
        deadline = time.monotonic() + REAP_BOUND_S
        while True:
            ours = children() - self.before
            for pid in ours:
                try:
                    pid_done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if not pid_done:
                    os.kill(pid, signal.SIGKILL)    # our child, unreaped: the pid is still ours
            if not ours:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
