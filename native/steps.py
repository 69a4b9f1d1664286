"""The step kinds: one row per operation of the program IR, the rest derives from it.

    from native.steps import KINDS, kind_of
    kind_of("wait").show        # "events": how its outcome is decoded and printed

A row says everything the suite's parts need to know about one kind of step:
its op number in the C executor (`FDR_OP_*` in native/executor.h), how its
argument goes into `struct fdr_step.arg`, how its outcome comes back (`show`),
whether it returns a descriptor, runs in the supervisor or may run in the
background, whether its expectation may name a semantics profile, how it
reads to a person (describe), and which part of the model (fuzz/kernel/)
predicts it, whether the generator draws it and whether a reproducer can
hold it.  tests/test_step_table.py checks each row against the C enum and
dispatch, the model, the generator and the reproducer, and names any place a
kind is missing from.

Adding a step kind: a row here, a builder in native/program.py, its
`FDR_OP_*` and `case` in native/executor.h/.c, its `_op_<name>` in the model
module the row names and, if `generated`, a draw in fuzz/generate.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from native.trace import mask_names

O_CLOEXEC = 0o2000000

# How a step's outcome is decoded (native/executor.py) and printed (the reproducer).
SHOW_RET = "ret"            # a return value (or a handle name), errno, ADDFD's syscall return
SHOW_EVENTS = "events"      # epoll_wait's (events, data), or poll/select's (revents, position)
SHOW_READ = "read"          # which file's tokens a read reached, and how many
SHOW_FDINFO = "fdinfo"      # parsed epoll fdinfo lines
SHOW_CQES = "cqes"          # io_uring completions, named by the submitting step

# How the step's argument goes into struct fdr_step.arg (native/executor.py serialize()).
ARG_CTL = "ctl"             # EPOLL_CTL_* (or an unknown int as given)
ARG_VIA = "via"             # FDR_VIA_*
ARG_MAXEVENTS = "maxevents"
ARG_WAIT_NR = "wait_nr"
ARG_TOFF = "toff"           # KCMP_EPOLL_TFD's toff
ARG_ERROR = "error"         # NOTIF_SEND's error (its flags go in events)
ARG_ADDFD = "addfd"         # ADDFD's raw parameters (flags, newfd_flags, size, newfd, id)
ARG_SIGMASK = "sigmask"     # epoll_pwait/pwait2: maxevents, and the blocked signalfd files as bits
ARG_SIZE = "size"           # epoll_create(size)'s size
ARG_PARAMS = "params"       # EPIOCSPARAMS (arg 1, the params packed in data) or EPIOCGPARAMS

# The model's modules (fuzz/kernel/), named after the kernel file each mirrors.
M_FILE = "file"             # fs/file.c: fd tables, file references, the files' own state
M_EPOLL = "eventpoll"       # fs/eventpoll.c
M_SELECT = "select"         # fs/select.c: poll(), select(), the background calls
M_SIGNALFD = "signalfd"     # fs/signalfd.c and the processes (fork, exit, kill)
M_URING = "io_uring"        # io_uring/
M_SECCOMP = "seccomp"       # kernel/seccomp.c: the notifier, ADDFD, the supervisor's view


@dataclass(frozen=True)
class StepKind:
    """One kind of step, as every part of the suite sees it."""
    op: str                         # the IR's name (Step.op)
    code: int                       # FDR_OP_* in native/executor.h
    cname: str                      # that macro's name
    describe: Callable              # step -> the text a person reads (without actor or " &")
    model: str | None               # the fuzz/kernel/ module whose _op_<op> predicts it
    show: str = SHOW_RET
    arg: str | None = None
    returns_fd: bool = False        # its return value is a descriptor, named by its handle
    supervisor: bool = False        # run by the supervisor (FDR_F_SUP)
    blocking: bool = False          # may run in the background
    scaled_timeout: bool = False    # timeout_ms bounds a wait: stretched on slow machines
    profiled: bool = False          # its expectation may differ between stock and follow
    generated: bool = True          # fuzz/generate.py draws it
    reproducer: bool = True         # a C reproducer can hold it
    creates: str | None = None      # a file-making step: the kind of file it makes
    builder: str = ""               # native.program.Program's method (default: op)

    @property
    def method(self) -> str:
        return self.builder or self.op


# -- how each kind reads -------------------------------------------------------

def _d_create(s) -> str:
    mode = "blocking" if s.file.blocking else ""
    if s.file.write_end:
        mode = ", ".join(m for m in (mode, "write end") if m)
    return f"{s.h} = {s.op}({mode})  [{s.file}]"


def _d_dup23(s) -> str:
    extra = ", O_CLOEXEC" if s.flags & O_CLOEXEC else (", 0" if s.op == "dup3" else "")
    return f"{s.op}({s.h2}, {s.h}{extra})"


def _d_ctl(s) -> str:
    tail = "" if s.ctl == "DEL" else f", {mask_names(s.events)}, data={s.data:#x}"
    return f"epoll_ctl({s.ep}, {s.ctl}, {s.h}{tail})"


def _d_inject(s) -> str:
    through = f" through {s.h}" if s.h is not None else ""
    wait = f", wait_release={s.timeout_ms}ms" if s.timeout_ms else ""
    return f"inject({s.file}{through}{wait})"


def _d_pollsel(s) -> str:
    hs = ", ".join(str(h) for h in s.hs)
    ev = f", {mask_names(s.events)}" if s.op == "poll" else ""
    return f"{s.op}([{hs}]{ev}, timeout={s.timeout_ms})"


def _d_replace(s) -> str:
    by = s.h2 if s.h2 is not None else f"new {s.file.kind}"
    extra = ", keep" if s.keep else ""
    extra += ", O_CLOEXEC" if s.flags & O_CLOEXEC else ""
    return f"replace({s.h}, by={by} [{s.file}], via={s.via}{extra})"


def _d_addfd(s) -> str:
    by = s.h2 if s.h2 is not None else (f"new {s.file.kind}" if s.file else "bad srcfd")
    params = ", ".join(f"{k}={v}" for k, v in s.addfd.items() if v not in (None, False))
    return f"  sup: addfd({s.h}, by={by}, {params})"


def _d_respond(s) -> str:
    flags = f", flags={s.flags}" if s.flags else ""
    return f"  sup: respond(val={s.data}, error={s.error}{flags})"


def _d_kcmp(s, who="") -> str:
    return f"{who}kcmp_epoll_tfd({s.ep}, tfd={s.h}, toff={s.toff}, against={s.h2})"


def _d_uring_poll(s) -> str:
    kind = "poll_multishot" if s.multishot else "poll_add"
    return f"uring({s.ep}): {kind}({s.h}, {mask_names(s.events)})"


def _d_pwait(s) -> str:
    mask = ", ".join(f.name for f in s.sigmask)
    return f"{s.op}({s.ep}, maxevents={s.maxevents}, timeout={s.timeout_ms}, sigmask=[{mask}])"


def _d_params(s) -> str:
    if s.params is None:
        return f"ioctl({s.ep}, EPIOCGPARAMS)"
    names = ("busy_poll_usecs", "busy_poll_budget", "prefer_busy_poll", "__pad")
    return f"ioctl({s.ep}, EPIOCSPARAMS, " + ", ".join(
        f"{n}={v}" for n, v in zip(names, s.params)) + ")"


def _d_uring_reap(s) -> str:
    nr = f", wait_nr={s.wait_nr}" if s.wait_nr > 1 else ""
    return f"uring({s.ep}): reap(timeout={s.timeout_ms}{nr})"


def step_index(program, step) -> int:
    """Where this very step is in the program (list.index would compare fields, and two
    identical requests would share a label)."""
    for i, s in enumerate(program.steps):
        if s is step:
            return i
    from native.program import ProgramError
    raise ProgramError(f"step {step.op} is not in program {program.name!r}")


def describe_bare(step) -> str:
    """The step's own text, without its actor or background mark."""
    return KIND[step.op].describe(step)


def _create(op, code, cname, kind) -> StepKind:
    return StepKind(op, code, cname, _d_create, M_FILE, returns_fd=True, creates=kind)


# -- the table ----------------------------------------------------------------
# In the order of program.OPS: files, fd table and epoll, actors, io_uring, supervisor.

KINDS: tuple[StepKind, ...] = (
    _create("pipe", 1, "FDR_OP_PIPE", "pipe"),
    _create("socketpair", 2, "FDR_OP_SOCKETPAIR", "socket"),
    _create("eventfd", 3, "FDR_OP_EVENTFD", "eventfd"),
    _create("epoll_create", 4, "FDR_OP_EPOLL", "epoll"),
    _create("signalfd", 5, "FDR_OP_SIGNALFD", "signalfd"),
    _create("timerfd", 6, "FDR_OP_TIMERFD", "timerfd"),
    _create("memfd", 20, "FDR_OP_MEMFD", "memfd"),
    StepKind("epoll_create_size", 51, "FDR_OP_EPOLL_SIZE",
             lambda s: f"{s.h} = epoll_create({s.size})  [{s.file}]", M_FILE, arg=ARG_SIZE,
             returns_fd=True, creates="epoll"),
    StepKind("dup", 7, "FDR_OP_DUP", lambda s: f"{s.h} = dup({s.h2})", M_FILE,
             returns_fd=True),
    StepKind("dup2", 8, "FDR_OP_DUP2", _d_dup23, M_FILE, returns_fd=True),
    StepKind("dup3", 9, "FDR_OP_DUP3", _d_dup23, M_FILE, returns_fd=True),
    StepKind("close", 10, "FDR_OP_CLOSE", lambda s: f"close({s.h})", M_FILE),
    StepKind("epoll_ctl", 11, "FDR_OP_CTL", _d_ctl, M_EPOLL, arg=ARG_CTL, profiled=True),
    StepKind("inject", 12, "FDR_OP_INJECT", _d_inject, M_FILE, scaled_timeout=True),
    StepKind("drain", 13, "FDR_OP_DRAIN", lambda s: f"drain({s.h})", M_FILE, show=SHOW_READ,
             profiled=True),
    StepKind("wait", 14, "FDR_OP_WAIT",
             lambda s: f"wait({s.ep}, maxevents={s.maxevents}, timeout={s.timeout_ms})",
             M_EPOLL, show=SHOW_EVENTS, arg=ARG_MAXEVENTS, blocking=True,
             scaled_timeout=True, profiled=True),
    StepKind("epoll_pwait", 49, "FDR_OP_PWAIT", _d_pwait, M_EPOLL, show=SHOW_EVENTS,
             arg=ARG_SIGMASK, scaled_timeout=True, profiled=True),
    StepKind("epoll_pwait2", 50, "FDR_OP_PWAIT2", _d_pwait, M_EPOLL, show=SHOW_EVENTS,
             arg=ARG_SIGMASK, scaled_timeout=True, profiled=True),
    StepKind("epoll_params", 52, "FDR_OP_EPOLL_PARAMS", _d_params, M_EPOLL, arg=ARG_PARAMS),
    StepKind("poll", 28, "FDR_OP_POLL", _d_pollsel, M_SELECT, show=SHOW_EVENTS,
             arg=ARG_MAXEVENTS, blocking=True, scaled_timeout=True, profiled=True),
    StepKind("select", 29, "FDR_OP_SELECT", _d_pollsel, M_SELECT, show=SHOW_EVENTS,
             arg=ARG_MAXEVENTS, blocking=True, scaled_timeout=True, profiled=True),
    StepKind("join", 27, "FDR_OP_JOIN", lambda s: f"join: {describe_bare(s.of)}", M_SELECT,
             profiled=True),
    StepKind("read", 15, "FDR_OP_READ", lambda s: f"read({s.h})", M_FILE, show=SHOW_READ,
             profiled=True),
    StepKind("replace", 16, "FDR_OP_REPLACE", _d_replace, M_FILE, arg=ARG_VIA,
             returns_fd=True, profiled=True),
    StepKind("fdinfo", 17, "FDR_OP_FDINFO", lambda s: f"fdinfo({s.ep})", M_EPOLL,
             show=SHOW_FDINFO, profiled=True),
    StepKind("kcmp_epoll_tfd", 18, "FDR_OP_KCMP_TFD", _d_kcmp, M_EPOLL, arg=ARG_TOFF,
             profiled=True),
    StepKind("hangup", 19, "FDR_OP_HANGUP", lambda s: f"hangup({s.file})", M_FILE),
    StepKind("notify", 21, "FDR_OP_NOTIFY", lambda s: f"notify({s.h})  [target traps]",
             M_SECCOMP, profiled=True),
    StepKind("getfd", 23, "FDR_OP_GETFD", lambda s: f"fcntl({s.h}, F_GETFD)", M_FILE),
    StepKind("fork", 24, "FDR_OP_FORK", lambda s: f"{s.other} = fork()", M_SIGNALFD),
    StepKind("thread", 25, "FDR_OP_THREAD", lambda s: f"{s.other} = thread()", M_SIGNALFD),
    StepKind("kill_actor", 26, "FDR_OP_KILL_ACTOR", lambda s: f"kill({s.other}, SIGKILL)",
             M_SIGNALFD, builder="kill"),
    StepKind("exit_target", 22, "FDR_OP_EXIT", lambda s: "exit()", M_SIGNALFD),
    StepKind("uring_setup", 30, "FDR_OP_URING_SETUP",
             lambda s: f"{s.h} = io_uring_queue_init()  [{s.file}]", M_URING, returns_fd=True),
    StepKind("uring_poll", 31, "FDR_OP_URING_POLL", _d_uring_poll, M_URING),
    StepKind("uring_read", 32, "FDR_OP_URING_READ",
             lambda s: f"uring({s.ep}): read({'fixed 0' if s.fixed else s.h})", M_URING),
    StepKind("uring_register", 33, "FDR_OP_URING_REGISTER",
             lambda s: f"uring({s.ep}): register_files([{s.h}])", M_URING),
    StepKind("uring_unregister", 34, "FDR_OP_URING_UNREGISTER",
             lambda s: f"uring({s.ep}): unregister_files()", M_URING),
    StepKind("uring_cancel", 37, "FDR_OP_URING_CANCEL",
             lambda s: f"uring({s.ep}): cancel(#{step_index(s.program, s.of)})", M_URING),
    StepKind("uring_reap", 35, "FDR_OP_URING_REAP", _d_uring_reap, M_URING, show=SHOW_CQES,
             arg=ARG_WAIT_NR, blocking=True, scaled_timeout=True, profiled=True),
    StepKind("uring_exit", 36, "FDR_OP_URING_EXIT", lambda s: f"io_uring_queue_exit({s.ep})",
             M_URING),
    StepKind("addfd", 40, "FDR_OP_ADDFD", _d_addfd, M_SECCOMP, arg=ARG_ADDFD,
             returns_fd=True, supervisor=True, profiled=True),
    StepKind("respond", 41, "FDR_OP_RESPOND", _d_respond, M_SECCOMP, arg=ARG_ERROR,
             supervisor=True),
    StepKind("sup_fdinfo", 42, "FDR_OP_SUP_FDINFO", lambda s: f"  sup: fdinfo({s.ep})",
             M_SECCOMP, show=SHOW_FDINFO, supervisor=True, profiled=True),
    StepKind("sup_wait", 43, "FDR_OP_SUP_WAIT", lambda s: f"  sup: wait({s.ep})", M_SECCOMP,
             show=SHOW_EVENTS, arg=ARG_MAXEVENTS, supervisor=True, scaled_timeout=True,
             profiled=True),
    StepKind("sup_kcmp", 44, "FDR_OP_SUP_KCMP", lambda s: _d_kcmp(s, "  sup: "), M_SECCOMP,
             arg=ARG_TOFF, supervisor=True, profiled=True),
    StepKind("sup_inject", 45, "FDR_OP_SUP_INJECT", lambda s: f"  sup: inject({s.file})",
             M_SECCOMP, supervisor=True),
    StepKind("kill_target", 46, "FDR_OP_KILL", lambda s: "  sup: kill_target()", M_SECCOMP,
             supervisor=True),
    StepKind("listener_wait", 47, "FDR_OP_LISTENER_WAIT",
             lambda s: f"  sup: epoll_wait(listener, {mask_names(s.events)})", M_SECCOMP,
             show=SHOW_EVENTS, arg=ARG_MAXEVENTS, supervisor=True, scaled_timeout=True,
             profiled=True),
    StepKind("notif_recv", 48, "FDR_OP_NOTIF_RECV", lambda s: "  sup: notif_recv()",
             M_SECCOMP, supervisor=True),
)
KIND: dict[str, StepKind] = {k.op: k for k in KINDS}


def kind_of(op: str) -> StepKind:
    return KIND[op]


def ops(**where) -> tuple[str, ...]:
    """The ops whose rows have these field values, in table order: ops(show=SHOW_EVENTS)."""
    return tuple(k.op for k in KINDS if all(getattr(k, f) == v for f, v in where.items()))
