"""Run a command the way a CI lab's init does, and report what it left behind.

    python tests/subreaper_run.py OUT SIGNAL TRIGGER -- CMD...

Becomes a child subreaper (as systemd, tini and container inits are), starts CMD
in its own process group with stdout to the file OUT, and, unless SIGNAL is
`none`, sends SIGNAL to CMD once OUT contains the text TRIGGER.  After CMD exits
it waits 2 s, then prints one JSON line: CMD's exit status, OUT's size when CMD
exited and 2 s later, and every process still its child (orphans of the run come
here: alive, or zombies nobody waited for), which it then kills and reaps.
Every wait is bounded; the harness leaves nothing behind.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
TRIGGER_BOUND_S = 120
EXIT_BOUND_S = 60
AFTER_EXIT_S = 2


def children() -> list[int]:
    kids = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            kids += [int(pid) for pid in f.read().split()]
    return kids


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return f"{pid} (gone)"
    comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return f"{pid} {comm} {state}"


def reap_everything() -> None:
    deadline = time.monotonic() + 10
    while children() and time.monotonic() < deadline:
        for pid in children():
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    os.kill(pid, signal.SIGKILL)
            except (ChildProcessError, ProcessLookupError):
                pass
        time.sleep(0.01)


def main() -> int:
    out, sig, trigger, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, __doc__
    assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    with open(out, "w") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, process_group=0)
    report = {"triggered": sig == "none"}
    if sig != "none":
        deadline = time.monotonic() + TRIGGER_BOUND_S
        while time.monotonic() < deadline and proc.poll() is None:
            with open(out) as f:
                if trigger in f.read():
                    os.kill(proc.pid, getattr(signal, sig))
                    report["triggered"] = True
                    break
            time.sleep(0.02)
    try:
        report["rc"] = proc.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        report["rc"] = "no exit"
    report["size_at_exit"] = os.path.getsize(out)
    time.sleep(AFTER_EXIT_S)
    report["size_after"] = os.path.getsize(out)
    report["left"] = [describe(pid) for pid in children()]
    if proc.returncode is None:
        os.killpg(proc.pid, signal.SIGKILL)
    reap_everything()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
