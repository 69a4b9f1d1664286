"""Run a Program for real and return its Trace, in handle and file names.

    from native.executor import run
    trace = run(program)          # Trace(outcomes=[Outcome, ...], failure=None)

The heavy lifting is native/executor.c (built by `python -m native.build`);
this module serialises the program and names what came back.
"""
from __future__ import annotations

import atexit
import dataclasses
import errno as errno_mod
import os
import signal

from native import program as P
from native import steps as step_table
from native.trace import FdinfoLine, Outcome, RunFailure, Trace

try:
    from native._executor import ffi, lib
except ImportError as exc:  # pragma: no cover - reported by the harness as a clear error
    raise ImportError(f"the native executor is not built ({exc}); run ci/test or "
                      "`python -m native.build`") from exc

OPCODES = {k.op: k.code for k in step_table.KINDS}     # checked against lib.FDR_OP_* by tests
KIND_CODES = {
    P.PIPE: lib.FDR_KIND_PIPE, P.SOCKET: lib.FDR_KIND_SOCKET, P.EVENTFD: lib.FDR_KIND_EVENTFD,
    P.EPOLL: lib.FDR_KIND_EPOLL, P.SIGNALFD: lib.FDR_KIND_SIGNALFD, P.TIMERFD: lib.FDR_KIND_TIMERFD,
    P.MEMFD: lib.FDR_KIND_MEMFD, P.URING: lib.FDR_KIND_URING, P.LISTENER: lib.FDR_KIND_LISTENER,
}
VIA_CODES = {
    P.ADDFD_SETFD: lib.FDR_VIA_ADDFD_SETFD, P.ADDFD_SETFD_SEND: lib.FDR_VIA_ADDFD_SETFD_SEND,
    P.DUP2: lib.FDR_VIA_DUP2, P.DUP3: lib.FDR_VIA_DUP3,
    P.ADDFD_SETFD_FIXUP: lib.FDR_VIA_ADDFD_SETFD_FIXUP,
    P.ADDFD_SETFD_SEND_FIXUP: lib.FDR_VIA_ADDFD_SETFD_SEND_FIXUP,
}
CTL_CODES = {P.ADD: 1, P.DEL: 2, P.MOD: 3}   # EPOLL_CTL_ADD, _DEL, _MOD
FAILURE_KINDS = {lib.FDR_RUN_TIMEOUT: "timeout", lib.FDR_RUN_CRASHED: "crashed",
                 lib.FDR_RUN_SETUP: "setup"}
DEFAULT_TIMEOUT_MS = 10_000


def timeout_scale() -> float:
    """FDR_TIMEOUT_SCALE (set by the gate for slow machines) stretches every timeout."""
    try:
        return max(1.0, float(os.environ.get("FDR_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def errname(err: int) -> str:
    return errno_mod.errorcode.get(err, f"E{err}")


def serialize(program: P.Program):
    """The program as the C executor's step array, plus its files' kinds."""
    if len(program.steps) > lib.FDR_MAX_STEPS:
        raise P.ProgramError(f"{len(program.steps)} steps; the executor runs at most {lib.FDR_MAX_STEPS}")
    if len(program.handles) > lib.FDR_MAX_HANDLES or len(program.files) > lib.FDR_MAX_FILES:
        raise P.ProgramError("too many handles or files for the executor")
    program.check_structure()
    hidx = {h: i for i, h in enumerate(program.handles)}
    fidx = {f: i for i, f in enumerate(program.files)}
    sidx = {id(s): i for i, s in enumerate(program.steps)}
    joins = {id(s.of): i for i, s in enumerate(program.steps) if s.op == "join"}
    steps = ffi.new("struct fdr_step[]", max(1, len(program.steps)))
    for c, s in zip(steps, program.steps):
        c.op = OPCODES[s.op]
        c.actor = s.actor.index
        if s.other is not None:
            c.aux = s.other.index
        elif s.op in ("join", "uring_cancel"):
            c.aux = sidx[id(s.of)]
        elif s.background:
            # Its join's outcome slot; a call whose actor is killed in it has
            # none, and its own slot takes what it never returns.
            c.aux = joins.get(id(s), sidx[id(s)])
            c.flags |= lib.FDR_F_BACKGROUND
        if s.multishot:
            c.flags |= lib.FDR_F_MULTISHOT
        if s.fixed:
            c.flags |= lib.FDR_F_FIXED
        c.nhs = len(s.hs)
        for k, h in enumerate(s.hs):
            c.hs[k] = hidx[h]
        c.h = hidx[s.h] if s.h is not None else -1
        c.h2 = hidx[s.h2] if s.h2 is not None else -1
        c.ep = hidx[s.ep] if s.ep is not None else -1
        c.file = fidx[s.file] if s.file is not None else -1
        c.kind = KIND_CODES[s.file.kind] if s.file is not None else 0
        c.flags |= (lib.FDR_F_KEEP if s.keep else 0) | (lib.FDR_F_CLOEXEC if s.flags & P.O_CLOEXEC else 0)
        c.timeout_ms = s.timeout_ms
        c.events = s.events & 0xFFFFFFFF
        c.data = s.data
        kind = step_table.KIND[s.op]
        if kind.supervisor:
            c.flags |= lib.FDR_F_SUP
        if kind.arg is not None:
            ARG_FILL[kind.arg](c, s)
    kinds = ffi.new("int32_t[]", [KIND_CODES[f.kind] | (lib.FDR_KIND_BLOCKING if f.blocking else 0)
                                  | (lib.FDR_KIND_WRITE_END if f.write_end else 0)
                                  for f in program.files] or [0])
    return steps, kinds


def _arg_ctl(c, s: P.Step):
    c.arg = CTL_CODES[s.ctl] if isinstance(s.ctl, str) else s.ctl   # int: unknown op


def _arg_error(c, s: P.Step):
    c.arg = s.error
    c.events = s.flags                  # NOTIF_SEND's flags


def _serialize_addfd(c, s: P.Step):
    a = s.addfd
    c.arg = a["flags"]
    c.events = a["newfd_flags"]
    c.timeout_ms = a["size"] or 0
    if a["newfd"] == "rlimit":
        c.flags |= lib.FDR_F_NEWFD_RLIMIT
    elif a["newfd"] is not None:
        c.flags |= lib.FDR_F_NEWFD_RAW
        c.data = a["newfd"] & 0xFFFFFFFF
    if s.file is None and s.h2 is None:
        c.flags |= lib.FDR_F_BADSRC
    if a["tail_nonzero"]:
        c.flags |= lib.FDR_F_TAIL_NONZERO
    if a.get("fill_table"):
        c.flags |= lib.FDR_F_FILL_TABLE
    c.flags |= {"current": 0, "stale": lib.FDR_F_ID_STALE, "next": lib.FDR_F_ID_NEXT,
                "pending": lib.FDR_F_PENDING}[a["id"]]


# How each row's arg (native/steps.py) goes into struct fdr_step.
def _arg_sigmask(c, s: P.Step):
    """maxevents in arg; the blocked signalfd files as bits of data, by file index."""
    c.arg = s.maxevents
    c.data = sum(1 << s.program.files.index(f) for f in set(s.sigmask))


def _arg_params(c, s: P.Step):
    """EPIOCSPARAMS: arg 1, data the struct's bytes (usecs, budget, prefer, pad); GET: 0."""
    if s.params is not None:
        usecs, budget, prefer, pad = s.params
        c.arg = 1
        c.data = usecs | budget << 32 | prefer << 48 | pad << 56


ARG_FILL = {
    step_table.ARG_CTL: _arg_ctl,
    step_table.ARG_VIA: lambda c, s: setattr(c, "arg", VIA_CODES[s.via]),
    step_table.ARG_MAXEVENTS: lambda c, s: setattr(c, "arg", s.maxevents),
    step_table.ARG_WAIT_NR: lambda c, s: setattr(c, "arg", s.wait_nr),
    step_table.ARG_TOFF: lambda c, s: setattr(c, "arg", s.toff),
    step_table.ARG_ERROR: _arg_error,
    step_table.ARG_ADDFD: _serialize_addfd,
    step_table.ARG_SIGMASK: _arg_sigmask,
    step_table.ARG_SIZE: lambda c, s: setattr(c, "arg", s.size),
    step_table.ARG_PARAMS: _arg_params,
}


ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fdr-zygote")
_zygote_tried: set = set()


def stop_zygote() -> None:
    """End this process's zygote and wait for it: at exit, else a subreaper init (systemd,
    tini) would inherit it as a zombie nobody waits for."""
    pid = lib.fdr_zygote_pid()
    if pid > 0:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


atexit.register(stop_zygote)


def start_zygote() -> bool:
    """Start this process's zygote (native/fdr-zygote), which forks targets far
    cheaper than this process can.  Once per process; False when it is missing,
    refused (FDR_NO_ZYGOTE=1) or failed to start: targets are then forked here."""
    pid = os.getpid()
    if pid not in _zygote_tried:
        _zygote_tried.add(pid)
        if os.environ.get("FDR_NO_ZYGOTE") != "1" and os.access(ZYGOTE, os.X_OK):
            lib.fdr_zygote_start(ZYGOTE.encode())
    return lib.fdr_zygote_pid() > 0


def run(program: P.Program, timeout_ms: int | None = None, step_scale: float | None = None) -> Trace:
    """Execute the program in a fresh target under a supervisor; return its Trace.

    step_scale stretches the steps' own wait bounds (default FDR_TIMEOUT_SCALE); the
    run's deadline always takes FDR_TIMEOUT_SCALE."""
    start_zygote()
    steps, kinds = serialize(program)
    n = len(program.steps)
    scale_step_timeouts(program, steps, timeout_scale() if step_scale is None else step_scale)
    out = ffi.new("struct fdr_outcome[]", max(1, n))
    res = ffi.new("struct fdr_result *")
    timeout = int((timeout_ms or DEFAULT_TIMEOUT_MS) * timeout_scale())
    if lib.fdr_run(steps, n, len(program.handles), len(program.files), kinds, timeout, out, res) < 0:
        err = ffi.errno
        raise OSError(err, f"fdr_run: {os.strerror(err)}")
    outcomes = []
    killed = any(s.op == "kill_target" and out[i].done for i, s in enumerate(program.steps))
    for i, step in enumerate(program.steps):
        if out[i].done:
            outcomes.append(_outcome(program, i, step, out[i]))
        elif killed and step.op == "notify":
            outcomes.append(Outcome(ret="killed"))   # it never returned: the hold killed it
        else:
            break
    failure = None
    if res.status != lib.FDR_RUN_OK:
        failure = _failure(res)
    expired = tuple(i for i, step in enumerate(program.steps[:len(outcomes)])
                    if step.background and out[i].expired)
    return Trace(outcomes, failure, expired)


# Steps whose timeout_ms is a bound on a wait (not a size): stretched on slow machines.
SCALED_TIMEOUT_OPS = step_table.ops(scaled_timeout=True)


def step_scales() -> list[float]:
    """The rungs a case's step bounds are stretched in while a sleeper ran out before its
    join (Trace.expired): 1, then 8, then FDR_TIMEOUT_SCALE, none above the latter."""
    full = timeout_scale()
    return sorted({x for x in (1.0, 8.0, full) if x <= full})


def scale_step_timeouts(program: P.Program, steps, scale: float) -> None:
    """Multiply the steps' wait bounds by FDR_TIMEOUT_SCALE: a sleeper's timeout or a
    reap's bound sized for this machine still holds on one 20 times slower (a TCG
    guest).  Outcomes do not depend on the value, only on what happens within it."""
    if scale == 1:
        return
    for i, s in enumerate(program.steps):
        if s.op in SCALED_TIMEOUT_OPS and s.timeout_ms > 0:
            steps[i].timeout_ms = int(s.timeout_ms * scale)


def _failure(res) -> RunFailure:
    kind = FAILURE_KINDS.get(res.status, f"status {res.status}")
    if res.status == lib.FDR_RUN_SETUP:
        detail = f"{ffi.string(res.where).decode()} failed: {errname(res.err)}"
    elif res.status == lib.FDR_RUN_CRASHED:
        detail = (f"killed by signal {res.signal}" if res.signal else f"exit code {res.exit_code}")
    else:
        detail = "stack:\n" + ffi.string(res.stack).decode(errors="replace")
    return RunFailure(kind, res.step, detail)


def _handle_name(program: P.Program, idx: int):
    return program.handles[idx].name if idx >= 0 else None


def _outcome(program: P.Program, i: int, step: P.Step, o) -> Outcome:
    if step.background:
        return Outcome(ret="blocked" if o.ret == 0 else "returned")
    if step.op == "join":
        step = dataclasses.replace(step.of, background=False)
    op = step.op
    sysret = None
    if op == "replace" and step.via in P.ADDFD_VIAS:
        if o.sysret < 0:
            sysret = f"-1 {errname(o.syserr)}"
        elif step.via in P.SEND_VIAS and o.sysret_handle >= 0:
            sysret = _handle_name(program, o.sysret_handle)
        else:
            sysret = o.sysret
    if o.ret < 0 and not (op == "notify" and o.err == 0):   # a reply below -4095 is a value
        return Outcome(ret=o.ret, errno=errname(o.err), sysret=sysret)
    ret = o.ret
    show = step_table.KIND[op].show
    if step_table.KIND[op].returns_fd and o.ret_handle >= 0:
        ret = _handle_name(program, o.ret_handle)
    elif op == "notify" and o.ret_handle >= 0 and P.sends_in_hold(program, i):
        ret = _handle_name(program, o.ret_handle)
    elif op == "replace" and step.via in P.ADDFD_VIAS and o.ret == o.target_fd:
        ret = step.h.name     # ADDFD returned the number the target asked for
    if show == step_table.SHOW_EVENTS:
        events = tuple((o.ev[k].events, o.ev[k].data) for k in range(o.nevents))
        return Outcome(ret=ret, events=events)
    if show == step_table.SHOW_CQES:
        return Outcome(ret=ret, cqes=_cqes(program, o))
    if show == step_table.SHOW_READ:
        if o.ret == 0:
            return Outcome(ret=0)
        reached = program.files[o.reached].name if o.reached >= 0 else "?"
        return Outcome(ret=ret, reached=reached, count=o.count)
    if show == step_table.SHOW_FDINFO:
        lines = sorted((_fdinfo_line(program, o.line[k]) for k in range(o.nlines)),
                       key=FdinfoLine.sort_key)
        return Outcome(ret=ret, fdinfo=tuple(lines))
    return Outcome(ret=ret, sysret=sysret)


def _cqes(program: P.Program, o) -> tuple:
    """The reaped CQEs, named as traces name them, in submission order."""
    cqes = []
    for k in range(o.nevents):
        e = o.ev[k]
        step_index, flags = e.data & 0xFFFFFFFF, e.data >> 32
        res = e.events - (1 << 32) if e.events >= 1 << 31 else e.events
        if step_index >= len(program.steps):
            cqes.append((f"#{step_index}", res, False, None, None))
            continue
        reached = program.files[e.reached].name if e.reached >= 0 else None
        cqes.append(P.cqe_outcome(program, program.steps[step_index], res,
                                  more=bool(flags & 2),   # IORING_CQE_F_MORE
                                  reached=reached, count=e.count if reached else None))
    return tuple(sorted(cqes, key=P.cqe_order))


def _fdinfo_line(program: P.Program, line) -> FdinfoLine:
    tfd = _handle_name(program, line.tfd_handle) or str(line.tfd)
    if line.fields < 6:
        return FdinfoLine(tfd=tfd, events=line.events, data=line.data)
    if line.ino_file == lib.FDR_ANON:
        ino, sdev = "anon_inode", "anon_inodefs"
    elif line.ino_file >= 0:
        f = program.files[line.ino_file]
        ino = f.name
        sdev = P.FS_OF_KIND.get(f.kind, "anon_inodefs")
    else:
        ino, sdev = "?", "?"
    return FdinfoLine(tfd=tfd, events=line.events, data=line.data, pos=line.pos, ino=ino, sdev=sdev)
