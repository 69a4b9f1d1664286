"""io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c), with rings set up as the
executor does (liburing, SINGLE_ISSUER|DEFER_TASKRUN, 8 entries) and used by
the actor that set them up:

- a request looks its file up at submission and holds a reference on it until
  it completes, so after a replace it acts on the old file and keeps it alive;
  fixed file 0 holds one until unregistered (a pending fixed read keeps its
  own); register/unregister answer EBUSY/ENXIO, a missing file is -EBADF;
- POLL_ADD polls for the asked events | ERR|HUP|NVAL|RDHUP, edge-triggered:
  a one-shot poll of a ready file completes in the submission, otherwise the
  request waits at the head of the file's queue (a ready multishot one queues
  its task work at once); a file without ->poll (memfd) completes at once, or
  with -EINVAL;
- a wake-up whose key meets its events (no key meets all) queues task work;
  later ones only count until it runs; a keyed one takes a one-shot request
  off the queue.  The work runs only when the ring's task reaps, in the order
  it was queued (newest first before 3af0356c162c, 6.5): one wake-up's key is
  the result, several (or no key) make it poll again; a one-shot poll
  completes (or arms afresh when nothing is there), a multishot one posts a
  CQE with F_MORE and stays;
- READ of a pipe or socket (256 bytes, every token there is) completes in the
  submission with data or at end of file, O_NONBLOCK or not; otherwise it arms
  its own one-shot poll for IN and reads again in its task work;
- ASYNC_CANCEL posts 0 or -ENOENT in the submission; the pending request it
  found completes with -ECANCELED (letting its file go) in its task work;
- a reap runs the task work, then collects every CQE (traces sort them by
  submitting step); in the background it returns at once if that posted one
  (or its timeout is 0), else sleeps in the ring's wait and is woken when
  task work is queued, runs it, and returns once a CQE is there;
- the ring goes with its last reference (a forked child's copy keeps it):
  its exit work drops the requests' and the fixed file's references at a
  moment of its own (those files are in limbo: what shows whether they are
  gone, their pipe's EPIPE, the epolls that watched them, is flagged), and
  then interrupts the ring's task once, also at a moment of its own (its later
  epoll_wait, poll and select sleeps are flagged; its traps, a notify or an
  ADDFD replace, are not modelled: the withdrawn notification is the
  executor's business).

Not modelled: io_uring used by another actor than the ring's creator
(SINGLE_ISSUER refuses it after liburing queued the SQE in the shared ring),
a ring's own fd in other steps (its ->poll, its mapping's reference), polls
of signalfd, timerfd, epoll, listener or ring files, reads of anything but
pipes and sockets (an eventfd read wakes from task work, a memfd read goes
to io-wq), poll flags ET, ONESHOT or EXCLUSIVE, more CQEs than the CQ ring
holds (flagged).
"""
from __future__ import annotations

import errno as errno_mod
from typing import TYPE_CHECKING

from native import program as P
from fuzz.kernel.base import (
    DEFAULT_POLLMASK, ERR, ET, Errno, HUP, IN, MSG, NVAL, NotModelled, ONESHOT, OUT, PRI,
    RDBAND, RDHUP, RDNORM, WRBAND, WRNORM)

if TYPE_CHECKING:
    from fuzz.kernel.base import OFile, Process, WaitQueue
    from fuzz.kernel.select import Waiter

# io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c), as the executor sets rings up.
POLL_UNMASK = ERR | HUP | NVAL | RDHUP           # IO_POLL_UNMASK: always polled for
POLL_BITS = (IN | PRI | OUT | ERR | HUP | NVAL | RDNORM | RDBAND | WRNORM | WRBAND | MSG
             | RDHUP)                            # what demangle_poll keeps of a poll mask
READ_POLL_EVENTS = PRI | ERR | ET | ONESHOT | IN | RDNORM | POLL_UNMASK  # a read's own poll
URING_READ_SIZE = 256        # the executor's per-request read buffer (URING_BUF)
CQ_ENTRIES = 16              # io_uring_queue_init(8): twice the SQ entries
MAX_REAPED = 32              # the executor peeks at most FDR_MAX_EVENTS CQEs per reap
# The calls a torn-down ring's exit work may interrupt while they sleep.
SLEEPS_INTERRUPTIBLY = ("wait", "epoll_pwait", "epoll_pwait2", "poll", "select")
URING_POLL_KINDS = (P.PIPE, P.SOCKET, P.EVENTFD, P.MEMFD)   # what uring_poll is modelled on
URING_READ_KINDS = P.PEER_KINDS                              # and uring_read


class Request:
    """An io_uring request waiting on a file's queue: a POLL_ADD, or a READ that found no
    data and armed its own internal poll.  It holds a reference on its file (the fixed
    file too, through the resource node) from submission until it completes."""
    exclusive = False                          # add_wait_queue: a non-exclusive entry

    def __init__(self, ring: "Ring", index: int, step: P.Step, file: OFile, events: int):
        self.ring, self.index, self.step, self.file = ring, index, step, file
        self.read = step.op == "uring_read"
        self.events = events                   # poll->events: asked | UNMASK | ET [| ONESHOT]
        self.refs = 0                          # poll_refs: wake-ups since its task work ran
        self.key = 0                           # the key of the wake-up that queued the work
        self.cancelled = False
        self.holds_ref = True                  # on its file (always, but for a mutant)
        self.wq: WaitQueue | None = None       # the queue it is armed on

    @property
    def oneshot(self) -> bool:
        return bool(self.events & ONESHOT)


class Ring:
    """An io_uring instance set up with SINGLE_ISSUER|DEFER_TASKRUN: completions that
    wake-ups cause wait as task work until the ring's own task enters it to reap."""

    def __init__(self, handle: str, file: OFile, fd: int, owner: str, proc: "Process"):
        self.handle, self.file, self.fd, self.owner, self.proc = handle, file, fd, owner, proc
        self.requests: dict[int, Request] = {}  # pending requests by user_data (their step)
        self.tw: list[Request] = []            # task work queued, in the order it runs
        self.cq: list[tuple] = []              # CQEs posted and not yet reaped
        self.registered = False                # a file table is registered (maybe sparse)
        self.fixed: OFile | None = None        # fixed file 0
        self.sleeper: "Waiter | None" = None   # a background reap asleep in the ring's wait
        self.exited = False                    # io_uring_queue_exit has run
        self.dead = False                      # the ring is torn down


class IoUring:
    """Rings, requests, task work and reaps."""

    def refuse_rings(self, proc: Process, step: P.Step):
        """A ring's own fd is used by io_uring steps only: closing, dup'ing, replacing,
        polling or watching it is not modelled (the ring's mapping keeps it alive, its
        ->poll reports the rings' state).  Nor is a trap of a task a ring's teardown may
        still interrupt (see interruptible): the notification would be withdrawn."""
        if step.actor.name in self.nagged and step.op not in P.SUPERVISOR_OPS and (
                step.op == "notify" or step.op == "replace" and step.via in P.ADDFD_VIAS):
            raise NotModelled(f"step {self.index}: a trap of {step.actor}, whose ring's "
                              "teardown may interrupt it")
        if step.op in P.URING_OPS or not self.rings:     # no ring fd exists before a setup
            return
        for h in (step.h, step.h2, step.ep, *step.hs):
            f = proc.fdt.get(self.num(proc, h)) if h is not None else None
            if f is not None and f.kind == P.URING:
                raise NotModelled(f"step {self.index} ({step.op}) uses io_uring fd {h}")

    def interruptible(self, step: P.Step) -> bool:
        """Once a ring is torn down, its exit work sends its task a task_work that
        interrupts whatever it sleeps in then, at a moment of its own: epoll_wait
        and epoll_pwait/pwait2 say EINTR, poll and select restart (one more pass); a
        ring's own wait just runs it.  Any such call that may sleep is not pinned."""
        return (step.actor.name in self.nagged and step.op in SLEEPS_INTERRUPTIBLY
                and (step.background or step.timeout_ms > 0))

    # -- io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c; liburing in the executor) ----
    def ring_for(self, proc: Process, step: P.Step) -> Ring:
        """The executor's ring_of(): the ring set up under step.ep, used by its own task.
        Another actor's use (SINGLE_ISSUER refuses it, after liburing queued its SQE in
        the shared ring) is not modelled."""
        ring = self.rings.get(step.ep.name)
        if ring is None:
            raise Errno("EBADF")                   # no ring under that handle
        if step.actor.name != ring.owner:
            raise NotModelled(f"step {self.index} uses ring {ring.handle} of {ring.owner}")
        if ring.exited or self.num(proc, step.ep) != ring.fd:
            raise Errno("EBADF")
        return ring

    def _op_uring_setup(self, proc, step):
        """io_uring_queue_init: a ring fd (O_CLOEXEC) at the lowest free number, owned by
        the actor that made it."""
        fd = self.alloc_fd(proc)
        f = self.new_file(step.file)
        self.install(proc, fd, f, cloexec=True)
        self.set_handle(proc, step.h, fd)
        self.known.add(step.file.name)
        f.ring = self.rings[step.h.name] = Ring(step.h.name, f, fd, step.actor.name, proc)
        return P.expected_outcome(step, ret=self.handle_of(proc, fd))

    def _op_uring_exit(self, proc, step):
        """io_uring_queue_exit: unmap and close; the ring goes with its last reference."""
        ring = self.ring_for(proc, step)
        ring.exited = True
        self.sys_close(proc, ring.fd)
        proc.hfd[step.ep.name] = -1
        return P.expected_outcome(step)

    def ring_teardown(self, ring: Ring):
        """The ring file's release: io_ring_exit_work cancels the requests and drops the
        fixed file later, from a workqueue, then interrupts the ring's task (if alive).
        The model lets go of the files now and puts them in limbo: whatever shows
        whether they are gone is not pinned; nor is when the task is interrupted."""
        if ring.dead:
            return
        ring.dead = True
        if ring.owner in self.alive:
            self.nagged.add(ring.owner)
        held = [req.file for req in ring.requests.values() if req.holds_ref] + [ring.fixed]
        for req in ring.requests.values():
            self.detach(req)
        ring.requests.clear()
        ring.tw.clear()
        ring.cq.clear()
        ring.fixed = None
        for f in held:
            if f is not None:
                self.limbo.add(f)
                self.fput(f)

    def doubt(self, eps: set):
        """These epolls (and the ones watching them) may still hold entries for a file the
        model has released: what they report is not pinned."""
        seen: set = set()
        while eps - seen:
            seen |= eps
            eps = {item.ep for ep in eps for item in ep.watchers}
        self.uncertain |= seen
        self.torn |= seen

    def post(self, ring: Ring, step: P.Step, res: int, more: bool = False,
             reached=None, count=None):
        """A CQE, as traces show it (user_data is the submitting step)."""
        ring.cq.append(P.cqe_outcome(self.program, step, res, more, reached, count))

    def uring_file(self, proc: Process, ring: Ring, step: P.Step, kinds: tuple) -> OFile | None:
        """The file a request is for (fget at submit, or fixed file 0); None: -EBADF."""
        if step.fixed:
            f = ring.fixed
        else:
            f = proc.fdt.get(self.num(proc, step.h))
        if f is not None and f.kind not in kinds:
            raise NotModelled(f"step {self.index}: {step.op} on a {f.kind}")
        return f

    def _op_uring_poll(self, proc, step):
        """IORING_OP_POLL_ADD: asked events | ERR|HUP|NVAL|RDHUP, edge-triggered, one-shot
        unless multishot."""
        ring = self.ring_for(proc, step)
        if step.events & ~POLL_BITS:
            raise NotModelled("uring_poll with ET/ONESHOT/EXCLUSIVE or unknown bits")
        f = self.uring_file(proc, ring, step, URING_POLL_KINDS)
        if f is None:
            self.post(ring, step, -errno_mod.EBADF)
            return P.expected_outcome(step)
        events = step.events | POLL_UNMASK | ET | (0 if step.multishot else ONESHOT)
        if f.kind == P.MEMFD:                     # no ->poll, no queue: done inline, or
            mask = DEFAULT_POLLMASK & events      # -EINVAL when nothing asked is there
            self.post(ring, step, mask or -errno_mod.EINVAL)
            return P.expected_outcome(step)
        req = self.new_request(ring, step, f, events)
        self.poll_arm(req)
        return P.expected_outcome(step)

    def new_request(self, ring: Ring, step: P.Step, f: OFile, events: int) -> Request:
        """A poll or read request for f, holding its own reference on it (io_file_get)."""
        req = Request(ring, self.index, step, f, events)
        req.holds_ref = "uring_request_no_ref" not in self.m
        f.refs += req.holds_ref
        return req

    def poll_arm(self, req: Request):
        """__io_arm_poll_handler: a ready one-shot poll completes at once; otherwise the
        request waits on the file's queue (a ready multishot one queues its task work)."""
        mask = self.poll(req.ring.proc, req.file) & req.events
        if mask and req.oneshot:
            self.uring_complete(req, mask)
            return
        self.arm(req)
        if mask:
            req.refs, req.key = 1, mask
            self.queue_task_work(req)

    def arm(self, req: Request):
        """On the file's queue, at the head (add_wait_queue), findable by cancel."""
        req.wq = self.wq_of(req.ring.proc, req.file)
        req.wq.add(req)
        req.ring.requests[req.index] = req

    def detach(self, req: Request):
        """io_poll_remove_entries: off the queue; no wake-up is pending any more."""
        if req.wq is not None and req in req.wq.entries:
            req.wq.remove(req)
        req.wq = None
        req.refs = req.key = 0

    def uring_complete(self, req: Request, res: int, reached=None, count=None):
        """The request is done: its CQE, and its file reference goes."""
        self.detach(req)
        req.ring.requests.pop(req.index, None)
        self.post(req.ring, req.step, res, reached=reached, count=count)
        if req.holds_ref:
            self.fput(req.file)

    def _op_uring_read(self, proc, step):
        """IORING_OP_READ of up to 256 bytes: done at once when there is data (or EOF);
        otherwise it arms a one-shot poll for IN and reads again when woken (a pipe or
        socket never says -EAGAIN to io_uring, O_NONBLOCK or not)."""
        ring = self.ring_for(proc, step)
        f = self.uring_file(proc, ring, step, URING_READ_KINDS)
        if f is None:
            self.post(ring, step, -errno_mod.EBADF)
            return P.expected_outcome(step)
        if f.write_end:
            raise NotModelled("an io_uring read of a pipe's write end")
        if f.kind == P.PIPE and not self.facts["afed6271f5b0"]:
            raise NotModelled("before afed6271f5b0 a pipe read goes to an io-wq worker: its "
                              "completion and its file's release come at moments of their own")
        req = self.new_request(ring, step, f, READ_POLL_EVENTS)
        self.issue_read(req)
        return P.expected_outcome(step)

    def issue_read(self, req: Request):
        """One non-blocking read attempt: a CQE, or the request armed on the file."""
        got = self.uring_try_read(req.file)
        if got is not None:
            self.uring_complete(req, *got)
            return
        self.arm(req)
        if self.poll(req.ring.proc, req.file) & req.events:
            req.refs = 1                          # IO_APOLL_READY: retried as task work
            self.queue_task_work(req)

    def uring_try_read(self, f: OFile):
        """(res, reached, count) of a read of a pipe or socket as its CQE shows it, None
        for -EAGAIN."""
        try:
            res, reached, count = self.peer_read(f, URING_READ_SIZE)
        except Errno as e:
            return None if e.name == "EAGAIN" else (-getattr(errno_mod, e.name), None, None)
        return res, reached, count or None        # end of file: no count

    def uring_wake(self, req: Request, key: int):
        """io_poll_wake: a matching wake-up (key 0 matches all) takes ownership and queues
        task work; while that work is pending, further wake-ups only count.  A keyed
        wake-up takes a one-shot request off the queue."""
        if key and not key & req.events & ~(ONESHOT | PRI):
            return
        req.refs += 1
        if req.refs > 1:
            return
        if key and req.oneshot:
            req.wq.remove(req)
            req.wq = None
        req.key = key
        self.queue_task_work(req)

    def queue_task_work(self, req: Request):
        """DEFER_TASKRUN: the work waits for the ring's task; a reap asleep in the ring's
        wait is woken to run it."""
        ring = req.ring
        ring.tw.append(req)
        if ring.sleeper is not None:
            self.make_runnable(ring.sleeper)

    def run_task_work(self, ring: Ring):
        """io_run_local_work: the queued work in the order it was queued, newest first
        before 3af0356c162c (work queued meanwhile waits for the next run)."""
        work, ring.tw = ring.tw, []
        if not self.facts["3af0356c162c"]:
            work.reverse()
        for req in work:
            self.poll_task_work(req)

    def poll_task_work(self, req: Request):
        """io_poll_task_func / io_poll_check_events: one wake-up's key stands as the
        result; several (or key 0) make it poll the file again."""
        if req.cancelled:
            self.uring_complete(req, -errno_mod.ECANCELED)
            return
        if req.read:                               # its poll fired (or polled empty after
            self.detach(req)                       # all: reissued alike): read again
            self.issue_read(req)
            return
        res = req.key if req.refs == 1 and "uring_poll_repolls" not in self.m else 0
        if not res:
            res = self.poll(req.ring.proc, req.file) & req.events
        if not req.oneshot:                      # multishot: a CQE with F_MORE, still armed
            req.refs = req.key = 0
            if res:
                self.post(req.ring, req.step, res & req.events, more=True)
        elif res:
            self.uring_complete(req, res & req.events)
        else:                                      # nothing there after all: armed afresh
            self.detach(req)
            self.poll_arm(req)

    def reads_in_task_work(self, w: Waiter) -> bool:
        """Is w a reap whose pending task work reads (consumes) data?"""
        return w.op == "uring_reap" and any(req.read for req in w.ring.tw)

    def _op_uring_cancel(self, proc, step):
        """IORING_OP_ASYNC_CANCEL by user_data: its CQE at once, 0 or -ENOENT; a pending
        request it finds completes with -ECANCELED when its task work runs (keeping its
        file until then)."""
        ring = self.ring_for(proc, step)
        req = ring.requests.get(self.step_index[id(step.of)])
        if req is None:
            self.post(ring, step, -errno_mod.ENOENT)
            return P.expected_outcome(step)
        req.cancelled = True
        req.refs += 1
        if req.refs == 1:
            self.queue_task_work(req)
        self.post(ring, step, 0)
        return P.expected_outcome(step)

    def _op_uring_register(self, proc, step):
        """IORING_REGISTER_FILES with h's number: fixed file 0 holds a reference; number
        -1 registers an empty slot."""
        ring = self.ring_for(proc, step)
        self.register_runs_task_work(ring)
        if ring.registered:
            raise Errno("EBUSY")
        fd = self.num(proc, step.h)
        f = None
        if fd != -1:
            f = self.lookup(proc, fd)
            if f.kind in (P.URING, P.EPOLL):
                raise NotModelled("registering a ring or an epoll as a fixed file")
            f.refs += 1
        ring.registered, ring.fixed = True, f
        return P.expected_outcome(step)

    def register_runs_task_work(self, ring: Ring):
        """Before ef67fcb41de6 (6.2) io_uring_register() ran the ring's task work first."""
        if not self.facts["ef67fcb41de6"]:
            self.run_task_work(ring)

    def _op_uring_unregister(self, proc, step):
        """The table's reference goes at once (a pending fixed read keeps its own)."""
        ring = self.ring_for(proc, step)
        self.register_runs_task_work(ring)
        if not ring.registered:
            raise Errno("ENXIO")
        f, ring.fixed, ring.registered = ring.fixed, None, False
        if f is not None:
            self.fput(f)
        return P.expected_outcome(step)

    def _op_uring_reap(self, proc, step):
        """A reap in the foreground: the task work runs, every CQE is collected (a
        timeout only makes it wait longer when there is none: nothing else runs)."""
        return self.reap_outcome(self.ring_for(proc, step), step)

    def start_reap(self, w: Waiter, proc: Process, step: P.Step):
        """A reap in the background: io_cqring_wait runs the task work first and returns
        if a CQE is there (timeout 0: always); otherwise it sleeps in the ring's wait."""
        ring = w.ring = self.ring_for(proc, step)
        self.run_task_work(ring)
        if ring.cq or not step.timeout_ms:
            self.finish(w, self.reap_outcome(ring, step, w))
        else:
            ring.sleeper = w

    def reap_outcome(self, ring: Ring, step: P.Step, w: Waiter | None = None) -> Outcome:
        """io_uring_get_events, then every CQE peeked (up to the executor's limit); past
        the CQ ring's size the overflow list decides the order: not pinned."""
        self.run_task_work(ring)
        cqes, ring.cq = ring.cq[:MAX_REAPED], ring.cq[MAX_REAPED:]
        if len(cqes) > CQ_ENTRIES:
            self.touched = True
            if w is not None:
                w.racy = True
        return P.expected_outcome(step, cqes=cqes, joined=w is not None)
