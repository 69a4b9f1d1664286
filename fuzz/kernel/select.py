"""Blocking calls (fs/select.c, ep_poll, io_cqring_wait).

poll() and select() evaluate every handle's file as it is now (a closed
number: POLLNVAL for poll, EBADF up front for select); in the background, the
first pass hooks the wait queues of the files polled (each hook holds a
reference on its file, so a file closed meanwhile lives on, with its epoll
entries, until the call returns), a matching wake-up makes the call poll every
handle again (resolving the numbers afresh) and return if anything is ready,
and its timeout makes one last pass.  epoll_wait sleeps on the instance's own
queue (exclusive, newest sleeper first: __add_wait_queue_exclusive), is woken
one at a time by ep_poll_callback / ep_insert / ep_modify / ep_done_scan,
gathers events in its own context and returns 0 at its timeout without
looking.  An io_uring reap sleeps in its ring's wait (io_uring.py).  Woken
calls run at the step boundary (the executor lets every background call
settle before a step starts); a background step's outcome is "returned" when
the call returned at once, "blocked" otherwise, and always "blocked" when the
very next step is its own join (the executor's settle check skips the caller
itself).

Two executor details show in traces and are modelled: a background select's
events are listed by the handles' numbers when it returns (FD_ISSET(num(h)));
a background poll/select races with the files the executor opens for a moment
at the lowest free numbers of its process while it settles the call (a /proc
stat file, pidfds), so a closed watched number there is flagged ambiguous.

Flagged ambiguous (timing the executor does not order): two epoll_wait
sleepers of one instance woken by one step, a sleeper woken while a hold's
supervisor steps run, a sleeping call whose timeout may run out while
another's join waits, a select whose handles changed numbers; calls woken
together when one of them is an epoll_wait.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from native import program as P
from native.trace import Outcome
from fuzz.kernel.base import (
    DEFAULT_POLLMASK, ERR, Errno, FIRST_FD, HUP, IN, NVAL, POLLABLE, PRI, RDBAND, RDNORM)

if TYPE_CHECKING:
    from fuzz.kernel.base import OFile, Process
    from fuzz.kernel.io_uring import Ring

TIMEOUT_MARGIN_MS = 50      # a timeout this much longer than another's runs out after it
POLLIN_SET = IN | RDNORM | RDBAND | HUP | ERR    # select's read set (fs/select.c)
POLLEX_SET = PRI


class PollEntry:
    """A poll()/select() hook on a wait queue (__pollwait): wakes its call when the
    wake-up key meets its own (pollwake)."""
    exclusive = False

    def __init__(self, waiter: "Waiter", key: int):
        self.waiter, self.key = waiter, key


class Waiter:
    """A background blocking call: epoll_wait, poll, select or an io_uring reap, asleep
    or done."""

    def __init__(self, index: int, step: P.Step, proc: "Process"):
        self.index, self.step, self.proc = index, step, proc
        self.op = step.op
        self.ep: "OFile | None" = None        # epoll_wait: the instance it sleeps on
        self.ring: "Ring | None" = None       # uring_reap: the ring it waits on
        self.hooks: list = []                  # poll/select: (WaitQueue, PollEntry)
        self.fds: list = []                    # poll/select: the numbers it polls
        self.refs: list = []                   # files it holds a reference on
        self.outcome: Outcome | None = None    # set once the call has returned
        self.at_once = False                   # it returned before sleeping
        self.racy = False                      # it ran while a hold's supervisor steps did


class SelectPoll:
    """poll(), select() and the background calls: hooks, wake-ups, settling, joins."""

    def make_runnable(self, w: Waiter):
        if w.outcome is None and w not in self.runnable:
            self.runnable.append(w)

    # -- poll(), select() and background calls (fs/select.c, ep_poll) -------------------
    def _op_poll(self, proc, step):
        count, events = self.poll_pass(proc, step, self.nums(proc, step))
        return P.expected_outcome(step, ret=count, events=events)

    def _op_select(self, proc, step):
        self.select_check(proc, step)
        count, events = self.poll_pass(proc, step, self.nums(proc, step))
        return P.expected_outcome(step, ret=count, events=events)

    def nums(self, proc: Process, step: P.Step) -> list:
        return [self.num(proc, h) for h in step.hs]

    def select_check(self, proc: Process, step: P.Step):
        """select's up-front checks: the executor refuses a handle without a number,
        max_select_fd a number that is not open."""
        for h in step.hs:
            fd = self.num(proc, h)
            if fd < 0 or fd >= 1024 or fd not in proc.fdt:
                raise Errno("EBADF")

    def poll_pass(self, proc: Process, step: P.Step, fds: list, hook: Waiter | None = None):
        """One pass of poll()/select() over the numbers the step's handles had when the call
        began: (count, events).  With hook, the pass hooks wait queues up to the first
        ready file (do_pollfd)."""
        select = step.op == "select"
        filt = POLLIN_SET | POLLEX_SET if select else (step.events & 0xFFFF) | ERR | HUP
        count, events, seen = 0, [], {}
        for k, fd in enumerate(fds):
            if select and fd in seen:
                if seen[fd]:
                    events.append((IN, k))
                continue
            if fd < 0:
                continue                          # poll skips negative numbers
            f = proc.fdt.get(fd)
            if f is None:                         # closed since the call began: poll says
                mask = DEFAULT_POLLMASK if select else NVAL   # NVAL, select's do_select
            else:                                 # keeps its DEFAULT_POLLMASK (ready)
                if hook is not None:
                    self.hook(hook, proc, f, filt)
                mask = self.poll(proc, f)
            if select:
                seen[fd] = bool(mask & POLLIN_SET)
                if seen[fd]:
                    count += 1
                    events.append((IN, k))
                    hook = None
            elif mask & (filt | NVAL):
                count += 1
                events.append((mask & (filt | NVAL), k))
                hook = None
        return count, tuple(events)

    def select_done(self, w: Waiter, count: int, events: tuple) -> Outcome:
        """A background select returns: the executor lists the positions whose handle's
        number *now* is in the ready set (FD_ISSET(num(h))); when a number changed since
        the call began (or was lost: FD_ISSET(-1)), the listing is not to be trusted."""
        now = self.nums(w.proc, w.step)
        if now != w.fds:
            w.racy = True
            ready = {w.fds[k] for _, k in events}
            events = tuple((IN, k) for k, fd in enumerate(now) if fd in ready)
        return P.expected_outcome(w.step, ret=count, events=events, joined=True)

    def hook(self, w: Waiter, proc: Process, f: OFile, key: int):
        """__pollwait: a hook on the queue the file's ->poll names, with a reference."""
        if f.kind not in POLLABLE:
            return                                # no ->poll: nothing to wait on
        wq = self.wq_of(proc, f)
        entry = PollEntry(w, key)
        wq.add(entry)
        w.hooks.append((wq, entry))
        f.refs += 1
        w.refs.append(f)

    def start_background(self, proc: Process, step: P.Step) -> Outcome:
        """A background call: it returns at once, or sleeps until a boundary where it
        has something, or until its join (its timeout)."""
        w = Waiter(self.index, step, proc)
        self.waiters[self.index] = w
        if self.interruptible(step):
            w.racy = True
            self.ambiguous.append(self.index)
        try:
            if step.op == "uring_reap":
                self.start_reap(w, proc, step)
            elif step.op == "wait":
                ep = self.lookup(proc, self.num(proc, step.ep))
                if ep.kind != P.EPOLL:
                    raise Errno("EINVAL")
                ep.refs += 1                      # fdget's reference (a shared table)
                w.ep = ep
                w.refs.append(ep)
                events = self.send_events(proc, ep, step.maxevents) if ep.ready else ()
                if events:
                    self.finish(w, P.expected_outcome(step, events=events, joined=True))
                else:
                    ep.sleepers.insert(0, w)
            else:
                w.fds = self.nums(proc, step)
                self.transient_risk(w)
                if w.racy:
                    self.ambiguous.append(self.index)
                if step.op == "select":
                    self.select_check(proc, step)
                count, events = self.poll_pass(proc, step, w.fds, hook=w)
                if count:
                    self.finish(w, P.expected_outcome(step, ret=count, events=events,
                                                      joined=True))
        except Errno as e:
            self.finish(w, P.expected_outcome(step, errno=e.name, joined=True))
        w.at_once = w.outcome is not None
        return Outcome(ret="returned" if w.at_once else "blocked")

    def finish(self, w: Waiter, outcome: Outcome):
        """The call returns: its hooks go (poll_freewait), then its references."""
        w.outcome = outcome
        for wq, entry in w.hooks:
            wq.remove(entry)
        w.hooks = []
        if w.ep is not None and w in w.ep.sleepers:
            w.ep.sleepers.remove(w)
        if w.ring is not None and w.ring.sleeper is w:
            w.ring.sleeper = None
        for f in w.refs:
            self.fput(f)
        w.refs = []

    def transient_risk(self, w: Waiter):
        """While a background poll/select runs, the executor's next step opens files of
        its own for a moment in its process (the /proc stat file that tells whether the
        call sleeps, pidfds), at the lowest free numbers: a watched number that is not
        open may hold one just then (select: not EBADF; poll: not NVAL)."""
        free, fd = [], FIRST_FD
        while len(free) < 2:
            if fd not in w.proc.fdt:
                free.append(fd)
            fd += 1
        if any(fd in free for fd in w.fds):
            w.racy = True

    def run_waiter(self, w: Waiter):
        """A woken call looks again: epoll_wait gathers events (or sleeps again, at the
        head of the queue); poll/select poll every handle afresh."""
        if w.outcome is not None:
            return
        if w.op == "poll":                    # (select polls such a number as ready anyway)
            self.transient_risk(w)
        if w.op == "uring_reap":
            self.run_task_work(w.ring)            # io_cqring_wait, woken: then back to
            if w.ring.cq:                         # sleep unless a CQE is there
                self.finish(w, self.reap_outcome(w.ring, w.step, w))
        elif w.op == "wait":
            events = self.send_events(w.proc, w.ep, w.step.maxevents)
            if events:
                self.finish(w, P.expected_outcome(w.step, events=events, joined=True))
            else:
                w.ep.sleepers.insert(0, w)
        else:
            count, events = self.poll_pass(w.proc, w.step, w.fds)
            if count:
                self.finish(w, self.select_done(w, count, events) if w.op == "select" else
                            P.expected_outcome(w.step, ret=count, events=events, joined=True))

    def settle(self, racing: bool = False):
        """The step boundary: every woken call runs until it returns or sleeps again.
        Calls woken together run concurrently: where one consumes (an epoll_wait: ET,
        ONESHOT, dropped items; a reap whose task work reads), what each of them sees
        depends on who runs first."""
        if not self.runnable:
            return
        if len(self.runnable) > 1 and any(w.op == "wait" or self.reads_in_task_work(w)
                                          for w in self.runnable):
            for w in self.runnable:
                w.racy = True
        while self.runnable:
            w = self.runnable.pop(0)
            w.racy |= racing
            self.touched = False
            self.run_waiter(w)
            w.racy |= self.touched
            self.touched = False

    def _op_join(self, proc, step):
        """The caller is back: a call still asleep returns at its timeout (epoll_wait with
        nothing, as it was not woken; poll/select after one last pass; a reap with what
        the task work it then runs posts)."""
        w = self.waiters.pop(self.step_index[id(step.of)])
        if w.outcome is None:
            self.timed_out.append(w)
            # The join waits out the timeout: a sleeping call whose own timeout is not
            # clearly longer may run out meanwhile, earlier than its join; the step right
            # after a background call tells whether it slept only once this join is over.
            for other in self.waiters.values():
                if (other.outcome is None
                        and other.step.timeout_ms <= w.step.timeout_ms + TIMEOUT_MARGIN_MS):
                    other.racy = True
                    if self.index == other.index + 1:
                        self.ambiguous.append(other.index)
            if w.op == "wait":
                self.finish(w, P.expected_outcome(w.step, events=(), joined=True))
            elif w.op == "uring_reap":            # -ETIME, then io_uring_get_events
                self.finish(w, self.reap_outcome(w.ring, w.step, w))
            else:
                if w.op == "poll":
                    self.transient_risk(w)
                count, events = self.poll_pass(w.proc, w.step, w.fds)
                self.finish(w, self.select_done(w, count, events) if w.op == "select" else
                            P.expected_outcome(w.step, ret=count, events=events, joined=True))
        if w.racy:
            self.ambiguous.append(self.index)
        return w.outcome
