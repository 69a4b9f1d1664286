"""The program IR: a short sequence of fd/epoll steps over symbolic handles.

A program never names fd numbers.  It names *handles* (slots in the target's
fd table, mapped to real numbers by the executor) and *files* (open file
descriptions, identified at run time by the token each injection writes).
The same Program object is executed (native.executor), predicted (fuzz.model)
and written out as C (fuzz.reproducer).

Each step carries its expected outcome, per semantics profile.  A step built
without .expect() expects plain success, so setup steps are checked too.
"""
from __future__ import annotations

import dataclasses

from native import steps
from native.trace import Outcome
# The IR's vocabulary (native/ir.py), re-exported: cases and tools import it from here.
from native.ir import (
    O_CLOEXEC, _ActorScope, Actor, ACTOR_OPS, ADD, ADDFD_FLAG_SEND, ADDFD_FLAG_SETFD, ADDFD_IDS,
    ADDFD_SETFD, ADDFD_SETFD_FIXUP, ADDFD_SETFD_SEND, ADDFD_SETFD_SEND_FIXUP, ADDFD_VIAS,
    ANON_KINDS, BLOCKING_OPS, cqe_order, cqe_outcome, CREATE_OPS, CTL_OPS, DEL, DUP2, DUP3,
    E, EPOLL, ERR, ET, EVENTFD, EXCLUSIVE, expected_outcome, FD_RETURNING_OPS, FDINFO_OPS,
    File, FILE_PREFIX, FIXUP_OF, FIXUP_VIAS, FS_OF_KIND, Handle, HANDLE_INJECT_KINDS, HUP,
    IN, KINDS, LISTENER, MAIN, MAX_ACTORS, MAX_POLL, MEMFD, MOD, ONESHOT, OP_KIND, OPS,
    OUT, PEER_KINDS, PIPE, PRI, PROFILES, ProgramError, RDHUP, RDNORM, SEND_VIAS,
    sends_in_hold, SIGNALFD, SOCKET, Step, SUPERVISOR_OPS, TIMERFD, URING, URING_OPS,
    USER_NOTIF_FLAG_CONTINUE, VIAS, WAIT_OPS)


class Program:
    """A builder for programs.  Every method appends one Step and returns it (or its handle)."""

    def __init__(self, name: str = "program"):
        self.name = name
        self.steps: list[Step] = []
        self.handles: list[Handle] = []
        self.files: list[File] = []
        self.actors: list[Actor] = [MAIN]
        self._actor = MAIN                            # who runs the steps being added
        # Per process actor: handle -> file at build time (a static view).
        self._tables: dict[str, dict[str, File | None]] = {"main": {}}
        self._counts: dict[str, int] = {}

    @property
    def _current(self) -> dict[str, File | None]:
        """The handle table of the actor whose steps are being added."""
        return self._tables[self._actor.table]

    # -- naming ---------------------------------------------------------------
    def _new_handle(self, name: str | None) -> Handle:
        """Handles are named by the program's author, or fd1, fd2, ... by default."""
        if name is None:
            n = len(self.handles) + 1
            while any(h.name == f"fd{n}" for h in self.handles):
                n += 1
            name = f"fd{n}"
        if any(h.name == name for h in self.handles):
            raise ProgramError(f"handle name {name!r} already used")
        h = Handle(name)
        self.handles.append(h)
        for table in self._tables.values():
            table[name] = None
        return h

    def _new_file(self, kind: str, name: str | None, blocking: bool = False,
                  write_end: bool = False) -> File:
        prefix = FILE_PREFIX[kind]
        if name is None:
            n = self._counts[prefix] = self._counts.get(prefix, 0) + 1
            name = f"{prefix}{n}"
            while any(f.name == name for f in self.files):
                n = self._counts[prefix] = n + 1
                name = f"{prefix}{n}"
        if any(f.name == name for f in self.files):
            raise ProgramError(f"file name {name!r} already used")
        f = File(name, kind, blocking, write_end)
        self.files.append(f)
        return f

    def _known(self, h: Handle) -> Handle:
        if not isinstance(h, Handle) or h not in self.handles:
            raise ProgramError(f"unknown handle {h!r}")
        return h

    def file_of(self, h: Handle) -> File | None:
        """The file a handle refers to at this point of the program, as built."""
        return self._current[self._known(h).name]

    def _add(self, step: Step) -> Step:
        if step.op in BLOCKING_OPS and not (isinstance(step.timeout_ms, int) and step.timeout_ms >= -1):
            raise ProgramError(f"timeout_ms must be -1 (no timeout) or >= 0, not {step.timeout_ms!r}")
        step.program = self
        step.actor = self._actor
        self.steps.append(step)
        default = expected_outcome(step)           # the same for every profile
        step.expected = dict.fromkeys(PROFILES, default)
        return step

    # -- creating files -------------------------------------------------------
    def _create(self, op: str, name, file, blocking: bool = False,
                write_end: bool = False) -> Handle:
        kind = OP_KIND[op]
        h = self._new_handle(name)
        f = self._new_file(kind, file, blocking, write_end)
        self._add(Step(op, h=h, file=f))
        self._current[h.name] = f
        return h

    def pipe(self, name=None, file=None, blocking: bool = False, write_end: bool = False) -> Handle:
        """The read end of a new pipe; the driver holds the write end (the peer).

        blocking: made without O_NONBLOCK (io_uring then reads it in flight); the
        executor's own read() on it says EAGAIN instead of blocking.  write_end: the
        target gets the write end and the driver the read end; such a file is
        writable (OUT) and, once hung up, in error (ERR); it cannot be injected.
        """
        return self._create("pipe", name, file, blocking, write_end)

    def socketpair(self, name=None, file=None, blocking: bool = False) -> Handle:
        """One end of a new AF_UNIX stream socketpair; the driver holds the other."""
        return self._create("socketpair", name, file, blocking)

    def eventfd(self, name=None, file=None) -> Handle:
        return self._create("eventfd", name, file)

    def epoll_create(self, name=None, file=None) -> Handle:
        return self._create("epoll_create", name, file)

    def epoll_create_size(self, name=None, size: int = 1, file=None) -> Handle:
        """epoll_create(size), the old call: size must be above 0 (else EINVAL), no flags."""
        h = self._create("epoll_create_size", name, file)
        self.steps[-1].size = int(size)
        return h

    def signalfd(self, name=None, file=None) -> Handle:
        """A signalfd for a signal of its own (its token), blocked in the target."""
        return self._create("signalfd", name, file)

    def timerfd(self, name=None, file=None) -> Handle:
        return self._create("timerfd", name, file)

    def memfd(self, name=None, file=None) -> Handle:
        """A memfd holding its token: a regular file, which epoll refuses (EPERM)."""
        return self._create("memfd", name, file)

    # -- descriptor table -----------------------------------------------------
    def dup(self, old: Handle, name=None) -> Handle:
        self._known(old)
        h = self._new_handle(name)
        self._add(Step("dup", h=h, h2=old))
        self._current[h.name] = self._current[old.name]
        return h

    def dup2(self, old: Handle, new: Handle) -> Step:
        """dup2(old, new): new must be a handle that has had a number."""
        self._known(old), self._known(new)
        step = self._add(Step("dup2", h=new, h2=old))
        if old != new:
            self._current[new.name] = self._current[old.name]
        return step

    def dup3(self, old: Handle, new: Handle, flags: int = 0) -> Step:
        self._known(old), self._known(new)
        step = self._add(Step("dup3", h=new, h2=old, flags=flags))
        if old != new:
            self._current[new.name] = self._current[old.name]
        return step

    def close(self, h: Handle) -> Step:
        step = self._add(Step("close", h=self._known(h)))
        self._current[h.name] = None
        return step

    # -- epoll ----------------------------------------------------------------
    def epoll_ctl(self, ep: Handle, op, h: Handle, events: int = 0, data: int = 0) -> Step:
        """op is ADD, MOD or DEL, or an int other than their codes (1..3): an unknown op."""
        if op not in CTL_OPS and not (type(op) is int and op not in (1, 2, 3)):
            raise ProgramError(f"epoll_ctl op must be one of {CTL_OPS} or an unknown int, not {op!r}")
        if not 0 <= data < 1 << 64:
            raise ProgramError("epoll data is an unsigned 64-bit value")
        return self._add(Step("epoll_ctl", ep=self._known(ep), h=self._known(h), ctl=op,
                              events=int(events), data=int(data)))

    def wait(self, ep: Handle, maxevents: int = 16, timeout_ms: int = 0,
             background: bool = False) -> Step:
        """epoll_wait.  In the background, the next step runs once the caller sleeps
        in it; the call's outcome is stated on join(step)."""
        if not 1 <= maxevents <= 32:
            raise ProgramError("maxevents must be 1..32")
        return self._add(Step("wait", ep=self._known(ep), maxevents=maxevents,
                              timeout_ms=timeout_ms, background=background))

    def epoll_pwait(self, ep: Handle, sigmask=(), maxevents: int = 16,
                    timeout_ms: int = 0) -> Step:
        """epoll_pwait with sigmask (signalfd handles or files: their signals) as the
        caller's mask during the wait; every other signalfd signal is unblocked then, and
        one pending interrupts a wait that has no event and a timeout (EINTR)."""
        return self._pwait("epoll_pwait", ep, sigmask, maxevents, timeout_ms)

    def epoll_pwait2(self, ep: Handle, sigmask=(), maxevents: int = 16,
                     timeout_ms: int = 0) -> Step:
        """epoll_pwait2: epoll_pwait with a timespec timeout (-1: none)."""
        return self._pwait("epoll_pwait2", ep, sigmask, maxevents, timeout_ms)

    def epoll_params(self, ep: Handle, usecs=None, budget: int = 0, prefer: int = 0,
                     pad: int = 0) -> Step:
        """ioctl EPIOCSPARAMS with these busy-poll parameters, or with usecs=None
        EPIOCGPARAMS, whose ret is then params_word() of what it read."""
        if usecs is None:
            return self._add(Step("epoll_params", ep=self._known(ep)))
        bounds = ((usecs, 32), (budget, 16), (prefer, 8), (pad, 8))
        if not all(isinstance(v, int) and 0 <= v < 1 << bits for v, bits in bounds):
            raise ProgramError("epoll_params: usecs is a u32, budget a u16, prefer and pad u8")
        return self._add(Step("epoll_params", ep=self._known(ep),
                              params=(usecs, budget, prefer, pad)))

    def _pwait(self, op, ep, sigmask, maxevents, timeout_ms) -> Step:
        if not 1 <= maxevents <= 32:
            raise ProgramError("maxevents must be 1..32")
        if not (isinstance(timeout_ms, int) and timeout_ms >= -1):
            raise ProgramError(f"timeout_ms must be -1 (no timeout) or >= 0, not {timeout_ms!r}")
        files = []
        for x in sigmask:
            f = self._current[self._known(x).name] if isinstance(x, Handle) else x
            if not isinstance(f, File) or f.kind != SIGNALFD:
                raise ProgramError(f"{op}'s sigmask names signalfd files, not {x!r}")
            files.append(f)
        return self._add(Step(op, ep=self._known(ep), maxevents=maxevents,
                              timeout_ms=timeout_ms, sigmask=tuple(files)))

    def poll(self, handles, events: int = IN, timeout_ms: int = 0,
             background: bool = False) -> Step:
        """poll() on the handles; the outcome lists (revents, position) of the ready ones."""
        return self._add(Step("poll", hs=self._handle_list(handles), events=int(events),
                              timeout_ms=timeout_ms, background=background))

    def select(self, handles, timeout_ms: int = 0, background: bool = False) -> Step:
        """select() with the handles as the read set; the outcome lists (IN, position)."""
        return self._add(Step("select", hs=self._handle_list(handles), timeout_ms=timeout_ms,
                              background=background))

    def _handle_list(self, handles) -> tuple:
        hs = tuple(self._known(h) for h in handles)
        if not 1 <= len(hs) <= MAX_POLL:
            raise ProgramError(f"poll/select watch 1..{MAX_POLL} handles")
        return hs

    def join(self, call: Step) -> Step:
        """The actor of a background call is back: state the call's outcome here."""
        if not isinstance(call, Step) or not call.background or not any(s is call for s in self.steps):
            raise ProgramError("join() takes a background step of this program")
        if any(s.op == "join" and s.of is call for s in self.steps):
            raise ProgramError("that background step is joined already")
        with self.on(call.actor):
            return self._add(Step("join", of=call))

    # -- io_uring -------------------------------------------------------------
    def uring_setup(self, name=None, file=None) -> Handle:
        """io_uring_queue_init(): a ring owned by the current actor's process."""
        h = self._new_handle(name)
        f = self._new_file(URING, file)
        self._add(Step("uring_setup", h=h, file=f))
        self._current[h.name] = f
        return h

    def uring_poll(self, ring: Handle, h: Handle, events: int = IN, multishot: bool = False) -> Step:
        """Submit IORING_OP_POLL_ADD on h (multishot: IORING_POLL_ADD_MULTI)."""
        return self._add(Step("uring_poll", ep=self._known(ring), h=self._known(h),
                              events=int(events), multishot=multishot))

    def uring_read(self, ring: Handle, h: Handle | None = None, fixed: bool = False) -> Step:
        """Submit IORING_OP_READ of up to 256 bytes from h, or from fixed file 0."""
        if (h is None) != fixed:
            raise ProgramError("uring_read reads a handle, or the fixed file (fixed=True)")
        return self._add(Step("uring_read", ep=self._known(ring),
                              h=self._known(h) if h is not None else None, fixed=fixed))

    def uring_register(self, ring: Handle, h: Handle) -> Step:
        """io_uring_register_files([h]): h's file becomes fixed file 0."""
        return self._add(Step("uring_register", ep=self._known(ring), h=self._known(h)))

    def uring_unregister(self, ring: Handle) -> Step:
        return self._add(Step("uring_unregister", ep=self._known(ring)))

    def uring_cancel(self, ring: Handle, request: Step) -> Step:
        """Submit IORING_OP_ASYNC_CANCEL for an earlier request (by its user_data)."""
        if not isinstance(request, Step) or request.op not in ("uring_poll", "uring_read") \
                or not any(s is request for s in self.steps):
            raise ProgramError("uring_cancel takes an earlier uring_poll or uring_read step")
        return self._add(Step("uring_cancel", ep=self._known(ring), of=request))

    def uring_reap(self, ring: Handle, timeout_ms: int = 0, background: bool = False,
                   wait_nr: int = 1) -> Step:
        """Wait up to timeout_ms for wait_nr completions, then collect every CQE posted."""
        if wait_nr < 1 or (wait_nr > 1 and (background or timeout_ms <= 0)):
            raise ProgramError("wait_nr > 1 needs a foreground reap with a timeout")
        return self._add(Step("uring_reap", ep=self._known(ring), timeout_ms=timeout_ms,
                              background=background, wait_nr=wait_nr))

    def uring_exit(self, ring: Handle) -> Step:
        """io_uring_queue_exit(): unmap the ring and close its fd."""
        step = self._add(Step("uring_exit", ep=self._known(ring)))
        self._current[ring.name] = None
        return step

    # -- actors ---------------------------------------------------------------
    def on(self, actor: Actor):
        """`with p.on(child): ...` adds the steps inside as the actor's."""
        if actor not in self.actors:
            raise ProgramError(f"unknown actor {actor!r}")
        return _ActorScope(self, actor)

    def _new_actor(self, name: str | None, kind: str) -> Actor:
        if len(self.actors) >= MAX_ACTORS:
            raise ProgramError(f"at most {MAX_ACTORS} actors")
        name = name or f"{'child' if kind == 'process' else 'thread'}{len(self.actors)}"
        if any(a.name == name for a in self.actors):
            raise ProgramError(f"actor name {name!r} already used")
        index = len(self.actors)
        table = name if kind == "process" else self._actor.table
        actor = Actor(name, kind, index, table)
        self.actors.append(actor)
        return actor

    def fork(self, name: str | None = None) -> Actor:
        """fork() in the current actor: a new process with a copy of its fd table
        (same files, same numbers), sharing its epoll instances."""
        actor = self._new_actor(name, "process")
        self._add(Step("fork", other=actor))
        self._tables[actor.name] = dict(self._current)
        return actor

    def thread(self, name: str | None = None) -> Actor:
        """A new thread of the current actor's process (same fd table)."""
        actor = self._new_actor(name, "thread")
        self._add(Step("thread", other=actor))
        return actor

    def kill(self, victim: Actor) -> Step:
        """SIGKILL a process actor and wait until its end is complete."""
        if victim not in self.actors or victim.kind != "process":
            raise ProgramError("kill() takes a process actor")
        if victim.table == self._actor.table:
            raise ProgramError("an actor cannot kill its own process: use exit_target()")
        return self._add(Step("kill_actor", other=victim))

    def fdinfo(self, ep: Handle) -> Step:
        return self._add(Step("fdinfo", ep=self._known(ep)))

    def kcmp_epoll_tfd(self, ep: Handle, tfd: Handle, against: Handle, toff: int = 0) -> Step:
        """Is the file registered in ep under tfd's number (toff-th entry) the file at against?"""
        return self._add(Step("kcmp_epoll_tfd", ep=self._known(ep), h=self._known(tfd),
                              h2=self._known(against), toff=toff))

    # -- readiness and reading ------------------------------------------------
    def inject(self, file: File, through: Handle | None = None, wait_release_ms: int = 0) -> Step:
        """Make a file readable with its token.

        Pipes and sockets are written through the peer the driver holds (no handle,
        no reference to the subject file).  eventfd and timerfd have no peer and are
        injected through a handle the program names; a signalfd's signal is raised
        in the target.  wait_release_ms > 0 (pipes and sockets): the driver first
        waits up to that long for the file to be released (its peer shows the other
        end gone), for a release the kernel does at a moment of its own.
        """
        if wait_release_ms and file.kind not in PEER_KINDS:
            raise ProgramError("wait_release_ms is for pipes and sockets")
        if file not in self.files:
            raise ProgramError(f"unknown file {file!r}")
        if file.kind in PEER_KINDS and through is not None:
            raise ProgramError(f"{file.kind} files are injected through the driver's peer")
        if file.kind in HANDLE_INJECT_KINDS and through is None:
            raise ProgramError(f"{file.kind} files are injected through a handle: inject(f, through=h)")
        if file.kind in (EPOLL, MEMFD) or file.write_end:
            raise ProgramError(f"a {file.kind} file cannot be injected"
                               + (" through its write end" if file.write_end else ""))
        return self._add(Step("inject", file=file, timeout_ms=wait_release_ms,
                              h=self._known(through) if through is not None else None))

    def hangup(self, file: File) -> Step:
        """The driver closes its peer of a pipe or socket (the reader sees HUP / RDHUP)."""
        if file not in self.files or file.kind not in PEER_KINDS:
            raise ProgramError(f"hangup needs a pipe or socket file, not {file!r}")
        return self._add(Step("hangup", file=file))

    def drain(self, h: Handle) -> Step:
        """Read until EAGAIN; the outcome says whose tokens were consumed."""
        return self._add(Step("drain", h=self._known(h)))

    def read(self, h: Handle) -> Step:
        """One read(); the outcome names the file reached, by token, or the errno."""
        return self._add(Step("read", h=self._known(h)))

    # -- replacing ------------------------------------------------------------
    def replace(self, h: Handle, by, via: str, keep: bool = False, flags: int = 0,
                file: str | None = None) -> Step:
        """Replace the file at h's number.

        by is a file kind (a new file is made: by the supervisor for ADDFD, by the
        target for dup2/dup3), LISTENER (ADDFD only: the supervisor's listener) or an
        existing handle (ADDFD: the supervisor takes its
        own copy with pidfd_getfd).  The driver's copy is closed right after the
        install unless keep is set.
        """
        self._known(h)
        if via not in VIAS:
            raise ProgramError(f"via must be one of {VIAS}, not {via!r}")
        if isinstance(by, Handle):
            self._known(by)
            if file is not None:
                raise ProgramError("file= names a new file; by=<handle> installs an existing one")
            new = self._current[by.name]
            step = Step("replace", h=h, h2=by, file=new, via=via, keep=keep, flags=flags)
        elif by in KINDS or (by == LISTENER and via in ADDFD_VIAS):
            new = self._new_file(by, file)
            step = Step("replace", h=h, file=new, via=via, keep=keep, flags=flags)
        else:
            raise ProgramError(f"by must be a handle or one of {KINDS} (or {LISTENER!r} "
                               f"via ADDFD), not {by!r}")
        self._add(step)
        self._current[h.name] = new
        return step

    # -- the supervisor's view: holds, raw ADDFD, the target's end ----------
    def notify(self, h: Handle) -> Step:
        """The target makes the intercepted syscall on h (think connect(h)) and waits.

        The supervisor steps that follow run while it waits, up to respond() or
        kill_target(); notify's outcome is what the syscall returned.
        """
        return self._add(Step("notify", h=self._known(h)))

    def addfd(self, h: Handle | None = None, by=None, flags: int = ADDFD_FLAG_SETFD,
              newfd_flags: int = 0, newfd=None, size: int | None = None,
              tail_nonzero: bool = False, id: str = "current", keep: bool = False,
              file: str | None = None, name: str | None = None,
              fill_table: bool = False) -> Step:
        """SECCOMP_IOCTL_NOTIF_ADDFD as given, good or bad, inside a hold.

        With SETFD, newfd is h's number (or newfd: an int, or "rlimit" for the
        target's RLIMIT_NOFILE); without it, the fd the kernel picks becomes a new
        handle `name`.  by is a kind (a new file), a handle (pidfd_getfd'd), or
        "bad" (srcfd is no open fd).  size is the struct size passed; id picks the
        current notification, the previous one ("stale"), one not yet made
        ("next"), or the hold's own before the supervisor has received it
        ("pending": only as the first steps of a hold).  fill_table: first the
        supervisor lowers the target's RLIMIT_NOFILE soft limit to its lowest free
        fd number (prlimit), so its table is full from then on.
        """
        if id == "pending" and not (self.steps and (self.steps[-1].op == "notify" or (
                self.steps[-1].op == "addfd" and self.steps[-1].addfd["id"] == "pending"))):
            raise ProgramError('id="pending" only right after notify()')
        if id not in ADDFD_IDS:
            raise ProgramError(f"id must be one of {ADDFD_IDS}")
        if h is not None:
            self._known(h)
        elif flags & ADDFD_FLAG_SETFD and newfd is None:
            raise ProgramError("addfd with SETFD needs the handle whose number to replace (or newfd=)")
        params = {"flags": flags, "newfd_flags": newfd_flags, "newfd": newfd, "size": size,
                  "tail_nonzero": tail_nonzero, "id": id}
        if fill_table:
            params["fill_table"] = True
        new = None
        step = Step("addfd", keep=keep, addfd=params)
        if by == "bad":
            pass
        elif isinstance(by, Handle):
            step.h2 = self._known(by)
            new = self._current[by.name]
        elif by in KINDS:
            new = self._new_file(by, file)
        else:
            raise ProgramError(f"by must be a handle, a kind or 'bad', not {by!r}")
        step.file = new
        if h is None and not flags & ADDFD_FLAG_SETFD:
            h = self._new_handle(name)
        step.h = h
        self._add(step)
        if h is not None and new is not None:
            self._current[h.name] = new
        return step

    def respond(self, val: int = 0, error: int = 0, flags: int = 0) -> Step:
        """SECCOMP_IOCTL_NOTIF_SEND: the trapped syscall returns val, or -error.

        flags are NOTIF_SEND's (USER_NOTIF_FLAG_CONTINUE: the syscall runs for
        real).  A respond the kernel refuses for its arguments (EINVAL) leaves the
        hold open: supervisor steps may follow it, up to another respond.
        """
        return self._add(Step("respond", data=val & (1 << 64) - 1, error=error, flags=flags))

    def sup_fdinfo(self, ep: Handle) -> Step:
        """The supervisor reads /proc/<target>/fdinfo/<ep>."""
        return self._add(Step("sup_fdinfo", ep=self._known(ep)))

    def sup_wait(self, ep: Handle, maxevents: int = 16) -> Step:
        """The supervisor waits (timeout 0) on its own pidfd_getfd copy of the target's epoll."""
        return self._add(Step("sup_wait", ep=self._known(ep), maxevents=maxevents))

    def sup_kcmp(self, ep: Handle, tfd: Handle, against: Handle, toff: int = 0) -> Step:
        """kcmp(KCMP_EPOLL_TFD) on the target, made by the supervisor."""
        return self._add(Step("sup_kcmp", ep=self._known(ep), h=self._known(tfd),
                              h2=self._known(against), toff=toff))

    def sup_inject(self, file: File) -> Step:
        """Inject through the driver's peer while the target is trapped."""
        if file not in self.files or file.kind not in PEER_KINDS or file.write_end:
            raise ProgramError("sup_inject needs a pipe (read end) or socket file")
        return self._add(Step("sup_inject", file=file))

    def kill_target(self) -> Step:
        """SIGKILL the target (inside a hold) and wait until it is dead.

        The hold's notify step then never returns: its outcome is "killed".
        """
        holds = [s for s in self.steps if s.op == "notify"]
        if holds:
            holds[-1].expected = {p: Outcome(ret="killed") for p in PROFILES}
        return self._add(Step("kill_target"))

    def exit_target(self) -> Step:
        """The current actor exits here (a process with its threads, or one thread).

        Once every process has ended, only supervisor steps may follow.
        """
        return self._add(Step("exit_target"))

    def listener_wait(self, events: int = 0x1, data: int = 0) -> Step:
        """The supervisor adds its listener to a fresh epoll and waits (timeout 0)."""
        return self._add(Step("listener_wait", events=events, data=data))

    def notif_recv(self) -> Step:
        """SECCOMP_IOCTL_NOTIF_RECV, only once the target is gone; EAGAIN instead of blocking
        when nothing is pending and the filter is still in use (a dead, unreaped target
        before bfafe5efa975)."""
        return self._add(Step("notif_recv"))

    def getfd(self, h: Handle) -> Step:
        """fcntl(F_GETFD): 1 when the descriptor has FD_CLOEXEC."""
        return self._add(Step("getfd", h=self._known(h)))

    def check_structure(self):
        """Supervisor steps only inside a hold or after the target's end; holds end in
        respond or kill; actors act only while alive; a background call is joined
        before its actor does anything else."""
        in_hold = gone = responded = False
        alive = {MAIN}
        busy: dict[Actor, Step] = {}       # actor -> its background call not yet joined
        for i, s in enumerate(self.steps):
            sup = s.op in SUPERVISOR_OPS
            if in_hold and responded and not sup:
                in_hold = responded = False     # the hold ended at its last respond
            if gone and not sup:
                raise ProgramError(f"step {i} ({s.op}): only supervisor steps after the target's end")
            if sup and not (in_hold or gone):
                raise ProgramError(f"step {i} ({s.op}) is a supervisor step outside a notify hold")
            if in_hold and not sup:
                raise ProgramError(f"step {i} ({s.op}): the hold must end with respond() or kill_target()")
            if not sup:
                if s.actor not in alive:
                    raise ProgramError(f"step {i} ({s.op}): actor {s.actor} is not running")
                if s.actor in busy and not (s.op == "join" and s.of is busy[s.actor]):
                    raise ProgramError(f"step {i} ({s.op}): {s.actor} is in a background call: join it first")
            if s.background:
                if s.op not in BLOCKING_OPS:
                    raise ProgramError(f"step {i} ({s.op}) cannot run in the background")
                busy[s.actor] = s
            elif s.op == "join":
                busy.pop(s.actor, None)
            if s.op == "notify":
                in_hold = True
            elif s.op == "respond" and in_hold:
                responded = True                # a refused respond may be followed
            elif s.op in ("fork", "thread"):
                alive.add(s.other)
            elif s.op in ("kill_actor", "exit_target"):
                ended = s.other if s.op == "kill_actor" else s.actor
                if ended not in alive:
                    raise ProgramError(f"step {i} ({s.op}): {ended} is not running")
                gone_now = {a for a in alive if a == ended or (
                    ended.kind == "process" and a.kind == "thread" and a.table == ended.table)}
                for a in gone_now:      # a call the actor was asleep in ends with it
                    busy.pop(a, None)
                alive -= gone_now
                if not any(a.kind == "process" for a in alive):
                    in_hold, gone = False, True
            elif s.op == "kill_target":
                in_hold, gone = False, True
        if in_hold and not responded:
            raise ProgramError("the program ends inside a notify hold: add respond()")
        if busy:
            raise ProgramError(f"background call(s) never joined: {', '.join(str(a) for a in busy)}")

    # -- results --------------------------------------------------------------
    def expected_trace(self, profile: str = "stock") -> list[Outcome]:
        if profile not in PROFILES:
            raise ProgramError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        return [s.expected[profile] for s in self.steps]

    def file_named(self, name: str) -> File:
        for f in self.files:
            if f.name == name:
                return f
        raise ProgramError(f"unknown file {name!r}")

    def copy(self) -> "Program":
        """A deep enough copy for mutation (steps and their expectations are new objects)."""
        p = Program(self.name)
        p.handles = list(self.handles)
        p.files = list(self.files)
        p.actors = list(self.actors)
        p._actor = self._actor
        p._tables = {k: dict(v) for k, v in self._tables.items()}
        p._counts = dict(self._counts)
        p.steps = [dataclasses.replace(s, expected=dict(s.expected), program=p) for s in self.steps]
        joined = {id(old): new for old, new in zip(self.steps, p.steps)}
        for s in p.steps:
            if s.of is not None:
                s.of = joined[id(s.of)]
        return p


def params_word(usecs: int, budget: int, prefer: int) -> int:
    """EPIOCGPARAMS's outcome as a step's ret: usecs | budget << 32 | prefer << 48."""
    return usecs | budget << 32 | prefer << 48


# File kind -> the Program method that makes a new file of that kind (native/steps.py):
# the first row that creates the kind (epoll_create, not epoll_create_size).
BUILDER_OF_KIND = {}
for _k in steps.KINDS:
    if _k.creates:
        BUILDER_OF_KIND.setdefault(_k.creates, getattr(Program, _k.method))
