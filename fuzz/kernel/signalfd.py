"""Processes and their signals (kernel/fork.c, kernel/exit.c, fs/signalfd.c).

The target's first process and the ones it forks each have an fd table; fork
copies the table (each slot takes a reference: epoll instances, like every
file, are shared), threads share their process's table.  Each process has its
pending signals and its sighand's signalfd wait queue: a signalfd registered
in epoll hooks the queue of the process that did the EPOLL_CTL_ADD, its
readiness is evaluated against whoever polls it.  An exit or SIGKILL closes
the table (SIGKILL first wakes the victim's signalfd queue); the sighand
outlives the process until it is reaped (the executor reaps no actor before
the run ends; an orphan of a target forked without the zygote goes to init,
which reaps it at an unknown moment: flagged).

Not modelled: the moment an orphan's sighand is freed (POLLFREE): the
outcomes it decides are flagged ambiguous.
"""
from __future__ import annotations

from native import program as P
from native.trace import Outcome
from fuzz.kernel.base import HUP, OFile, Process
from fuzz.kernel.eventpoll import Item


class Processes:
    """fork, threads, exit and SIGKILL, and the signal queues signalfds read."""

    # -- the target's end and the listener ---------------------------------------------
    def proc_ends(self, proc: Process):
        """do_exit of a whole process: its threads end, its fd table is closed (every
        file put, in number order), its pending signals go; the sighand stays until
        the process is reaped."""
        self.alive -= {a.name for a in self.program.actors if a.table == proc.name}
        for index, w in list(self.waiters.items()):
            if w.proc is proc:                     # a call asleep ends with its actor (no
                del self.waiters[index]            # join; a fatal signal: no events taken)
                if w in self.runnable:
                    self.runnable.remove(w)
                if w.outcome is None:
                    self.finish(w, Outcome(ret="killed"))
        for fd in sorted(proc.fdt):
            self.sys_close(proc, fd)
        proc.pending.clear()
        proc.alive = False
        if proc.name != "main" and (proc.parent is None or not proc.parent.alive):
            self.orphaned(proc)
        else:
            proc.sighand = "zombie"               # its parent never reaps it (main: the driver,
        for child in proc.children:               # at the end of the run)
            child.parent = None                   # re-parented to init
            if not child.alive and child.sighand == "zombie":
                self.orphaned(child)
        if not any(p.alive for p in self.procs.values()):
            self.gone = True

    def orphaned(self, proc: Process):
        """Init reaps a dead orphan at a moment of its own: its sighand's signalfd queue
        is freed then (POLLFREE).  Done here; the epolls it may link become uncertain."""
        proc.sighand = "orphan"
        items = [e for e in proc.sig_wq.entries if isinstance(e, Item)]
        if not items:
            return
        eps = {it.ep for it in items}
        while eps - self.uncertain:
            self.uncertain |= eps
            eps = {w.ep for ep in eps for w in ep.watchers}
        self.wake(proc.sig_wq, HUP, nr=0, pollfree=True)

    def sigkill(self, proc: Process):
        """SIGKILL: signalfd_notify wakes the victim's signalfd queue, then it dies."""
        self.wake(proc.sig_wq, 0)
        self.proc_ends(proc)

    def _op_exit_target(self, proc, step):
        if step.actor.kind == "thread":
            self.alive.discard(step.actor.name)
        else:
            self.proc_ends(proc)
        return P.expected_outcome(step)

    # -- actors ------------------------------------------------------------------------
    def _op_fork(self, proc, step):
        """copy_process: a copy of the fd table (each slot a reference), no pending signals,
        a sighand of its own; the executor copies the handle table."""
        child = Process(len(self.procs), self.fifo, step.other.name, parent=proc)
        proc.children.append(child)
        private: dict = {}
        for fd, f in sorted(proc.fdt.items()):
            if f.kind == P.EPOLL and "ignore_fork_sharing" in self.m:
                f = private.get(f) or private.setdefault(f, self.private_copy(f))
            f.refs += 1
            child.fdt[fd] = f
        child.cloexec = set(proc.cloexec)
        child.nofile = proc.nofile                 # rlimits are inherited
        child.hfd, child.hnum = dict(proc.hfd), dict(proc.hnum)
        self.procs[child.name] = child
        self.alive.add(child.name)
        self.bound = proc                          # the supervisor is told (a trap)
        return P.expected_outcome(step)

    def private_copy(self, ep: OFile) -> OFile:
        """The ignore_fork_sharing mutant: a new epoll with the same entries and ready list."""
        copy = OFile(ep.name, ep.kind, ep.index, self.fifo)
        for (fd, f), it in ep.items.items():
            item = Item(copy, fd, f, it.events, it.data)
            copy.items[(fd, f)] = item
            f.watchers.append(item)
            item.wq = it.wq
            if it.wq is not None:
                it.wq.add(item, item.exclusive)
        for it in ep.ready:
            item = copy.items[(it.fd, it.file)]
            item.linked = True
            copy.ready.append(item)
        return copy

    def _op_thread(self, proc, step):
        self.alive.add(step.other.name)
        return P.expected_outcome(step)

    def _op_kill_actor(self, proc, step):
        self.sigkill(self.procs[step.other.table])
        return P.expected_outcome(step)
