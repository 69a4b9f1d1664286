"""The reference model: predicts a program's trace without running it.

    from fuzz.model import predict
    outcomes = predict(program, "stock")      # == native.executor.run(program).outcomes

The model is a small kernel written out in Python, at the level where the
behaviours in scope live.  Its parts are in fuzz/kernel/, one module per
kernel file it mirrors (fd tables and files: fs/file.c; epoll:
fs/eventpoll.c; poll, select and the background calls: fs/select.c;
processes and signalfd; io_uring; the seccomp notifier: kernel/seccomp.c),
each with what it models, flags and leaves out.  Model, here, is the façade
the campaign uses: it runs the steps in order, each by the `_op_<name>` of the
module native/steps.py names for its kind, and settles the background calls
at each step boundary.

Profiles are data (PROFILES); deliberately broken variants are named in
MUTANTS and consulted each in exactly one place, for mutation-testing the
fuzzer.  Model.ambiguous lists the steps whose outcome the model cannot pin
(each module says which); Model.failure is "crashed" when the target dies
(SIGPIPE), where the run stops; Model.divergence(trace) compares a real Trace
honouring both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from native import kernel_facts
from native import program as P
from native.trace import Outcome
from fuzz.kernel.base import Errno, NotModelled, Process
from fuzz.kernel.eventpoll import EventPoll
from fuzz.kernel.file import FileTable
from fuzz.kernel.io_uring import IoUring
from fuzz.kernel.seccomp import Seccomp
from fuzz.kernel.select import SelectPoll
from fuzz.kernel.signalfd import Processes

if TYPE_CHECKING:
    from fuzz.kernel.base import OFile
    from fuzz.kernel.io_uring import Ring
    from fuzz.kernel.seccomp import Hold
    from fuzz.kernel.select import Waiter

@dataclass(frozen=True)
class Profile:
    """A named answer to "what does epoll do after a replace".

    follow: entries keyed (fd, old file) are re-keyed to (fd, new file) with
    events and data kept, by replace steps whose via is in follow_vias (ADDFD:
    the proposed eventpoll_replace_file() patches and the supervisor's fixup
    act there; dup2/dup3 are the target's own doing), before the old file's
    reference is dropped; the re-keyed entry is re-registered and re-evaluated
    like a fresh insert.  Where the new file cannot be watched by
    that epoll (it is the epoll itself, or would make a loop or too deep a
    nest), the entry stays keyed to the old file; where (fd, new file) is
    already registered, the existing entry wins and the stale one is deleted.
    """
    name: str
    follow: bool = False
    follow_vias: frozenset = frozenset(P.ADDFD_VIAS)


PROFILES = {
    "stock": Profile("stock"),
    "follow": Profile("follow", follow=True),
}

# Deliberately broken models, for mutation-testing the fuzzer: name -> the wrong belief.
MUTANTS = {
    "no_dup_refcount": "dup/dup2/dup3 do not take a reference on the file",
    "ignore_et": "EPOLLET items are re-queued after reporting, like level-triggered ones",
    "ignore_oneshot": "EPOLLONESHOT items are not disarmed after reporting",
    "no_follow": "the follow profile behaves as stock",
    "no_errhup": "ADD/MOD do not OR in EPOLLERR|EPOLLHUP",
    "close_removes_entries": "close(fd) removes the entries keyed (fd, file) at once",
    "replace_removes_entries": "a stock replace removes the entries keyed (fd, old file)",
    "del_by_fd": "DEL/MOD find an entry by fd number alone, ignoring the file",
    "fifo_wakeup": "wait queues wake their oldest entry first",
    "lifo_ready": "newly ready items go to the head of the ready list",
    "move_to_tail": "a wakeup moves an already queued item to the tail",
    "lt_requeue_head": "level-triggered items are re-queued at the head after reporting",
    "no_nested_wakeup": "an inner epoll becoming ready does not wake the epolls watching it",
    "no_eventfd_out_wake": "reading an eventfd does not wake its EPOLLOUT watchers",
    "private_signalfd_wake": "raising a signal wakes only the watchers of that signal's signalfd",
    "kcmp_ignores_file": "KCMP_EPOLL_TFD answers 0 whenever an entry exists",
    "no_deferred_fput": "a file replaced by ADDFD is released at once, not when the target returns",
    "ignore_fork_sharing": "fork gives the child private copies of the epoll instances in its table",
    "uring_request_no_ref": "an io_uring request holds no reference on its file",
    "uring_poll_repolls": "an io_uring poll's task work polls the file again instead of "
                          "taking the wake-up's key",
    # The userspace fixup done wrong (its vias are predicted as follow on a stock kernel).
    "fixup_no_data": "the fixup re-adds (fd, new file) with data 0: the entry's data not copied",
    "fixup_mod": "the fixup uses EPOLL_CTL_MOD instead of DEL+ADD (it finds no (fd, new) "
                 "entry, so the entry stays with the old file)",
    "fixup_no_rearm": "the fixup's re-added entry is not polled at once: a new file ready "
                      "already is reported only after its next wake-up",
    "fixup_keep_old": "the fixup adds (fd, new file) but leaves the stale (fd, old file) entry",
}


class Model(FileTable, EventPoll, SelectPoll, Processes, IoUring, Seccomp):
    """Runs a program against the model kernel; .run() returns the outcomes.

    The state of the model kernel is set up here; what each step does to it is in
    the mixins, one per kernel file (fuzz/kernel/).
    """

    def __init__(self, program: P.Program, profile: str | Profile = "stock", mutant=None,
                 facts: dict[str, bool] | None = None):
        self.program = program
        # Behaviours that changed with a kernel commit follow the kernel's version
        # (native/kernel_facts.py), as the cases do: the running kernel's by default.
        self.facts = kernel_facts.facts() if facts is None else facts
        self.profile = profile if isinstance(profile, Profile) else PROFILES[profile]
        mutants = (mutant,) if isinstance(mutant, str) else tuple(mutant or ())
        unknown = [m for m in mutants if m not in MUTANTS]
        if unknown:
            raise ValueError(f"unknown mutant(s) {unknown}; known: {', '.join(MUTANTS)}")
        self.m = frozenset(mutants)
        self.follow = self.profile.follow and "no_follow" not in self.m
        self.fifo = "fifo_wakeup" in self.m
        main = Process(0, self.fifo)
        self.procs: dict[str, Process] = {"main": main}   # process actor name -> process
        self.alive: set[str] = {"main"}         # actors running
        self.bound = main                       # the process the supervisor's view is bound
        #                                         to (the actor of the last trap)
        self.sup = Process(-1, self.fifo, "supervisor")   # polls from its own context
        self.waiters: dict[int, Waiter] = {}    # background step index -> its call
        self.step_index = {id(s): i for i, s in enumerate(program.steps)}
        self.file_index = {f.name: i for i, f in enumerate(program.files)}
        self.runnable: list[Waiter] = []        # woken calls, run at the step boundary
        self.uncertain: set = set()             # epolls an orphan's POLLFREE may have hit
        self.timed_out: list[Waiter] = []       # background calls that slept to their join
        self.rings: dict[str, Ring] = {}        # ring handle name -> the ring set up there
        self.limbo: set = set()                 # files a torn-down ring let go of at a moment
        #                                         of its own (io_ring_exit_work)
        self.torn: set = set()                  # epolls that watched such a file
        self.nagged: set[str] = set()           # actors a torn-down ring's exit work may
        #                                         still interrupt
        self.multi_ref_replaces = 0             # replaces of a file with other references
        self.touched = False                    # the step looked at an uncertain epoll
        self.hold: Hold | None = None           # the notification being held, if any
        self.gone = False                       # the target has exited or been killed
        self.deferring = False                  # fputs by a trapped target are deferred
        self.deferred: list[OFile] = []
        self.files: dict[str, OFile] = {}      # program file name -> its open file, once made
        self.known: set[str] = set()            # files whose inode the executor recorded
        self.driver_refs: list[OFile] = []      # copies the driver keeps to the end of the run
        self.ambiguous: list[int] = []          # steps whose outcome the model cannot pin
        self.failure: str | None = None         # "crashed" when the target dies (the run stops)
        self.outcomes: list[Outcome] = []
        self.index = -1                          # the step being run

    # -- running ---------------------------------------------------------------
    @classmethod
    def supported_ops(cls) -> frozenset:
        """The step operations the model predicts."""
        ops = cls.__dict__.get("_supported")
        if ops is None:
            ops = frozenset(name[4:] for name in dir(cls) if name.startswith("_op_"))
            cls._supported = ops
        return ops

    def run(self) -> list[Outcome]:
        missing = {s.op for s in self.program.steps} - self.supported_ops()
        if missing:
            raise NotModelled(f"the model does not cover {', '.join(sorted(missing))}")
        steps = self.program.steps
        for i, step in enumerate(steps):
            self.index = i
            sup = step.op in P.SUPERVISOR_OPS
            if sup:
                proc = self.hold.proc if self.hold is not None else self.bound
            else:
                proc = self.procs[step.actor.table]
            if self.hold and self.hold.state == "gone" and self.deferred:
                self.ambiguous.append(i)             # races the target's deferred fputs
            self.refuse_rings(proc, step)
            if not step.background and self.interruptible(step):
                self.ambiguous.append(i)
            try:
                if step.background:
                    out = self.start_background(proc, step)
                else:
                    out = getattr(self, "_op_" + step.op)(proc, step)
            except Errno as e:
                if e.name == "SIGPIPE":              # the target has no handler: it dies
                    self.failure = "crashed"
                    break
                out = P.expected_outcome(step, errno=e.name)
            self.outcomes.append(out)
            if self.touched:
                self.ambiguous.append(i)
                self.touched = False
            self.settle(racing=sup and self.hold is not None)
            answered = step.op == "respond" and self.hold is not None and self.hold.state != "sent"
            if self.hold and (answered or i + 1 == len(steps)
                              or steps[i + 1].op not in P.SUPERVISOR_OPS):
                self.end_hold()
                self.settle()
        self.self_joins()
        return self.outcomes

    def self_joins(self):
        """A background step followed at once by its own join reads "returned": its
        actor runs the join, so the call had returned before the next step ran."""
        if not any(s.background for s in self.program.steps):
            return
        steps = self.program.steps
        for i, s in enumerate(steps[:len(self.outcomes)]):
            if s.background and self.outcomes[i] == Outcome(ret="blocked"):
                nxt = next((j for j in range(i + 1, len(steps))
                            if steps[j].op not in P.SUPERVISOR_OPS), None)
                if nxt is not None and steps[nxt].op == "join" and steps[nxt].of is s:
                    self.outcomes[i] = Outcome(ret="returned")

    def divergence(self, trace) -> int | None:
        """The first step where a real Trace differs from this (run) model, ignoring steps
        whose outcome depends on pointer order; len(outcomes) when only the ends differ."""
        for i, (want, got) in enumerate(zip(self.outcomes, trace.outcomes)):
            if want != got and i not in self.ambiguous:
                return i
        same_end = (trace.failure is None) == (self.failure is None)
        if len(self.outcomes) != len(trace.outcomes) or not same_end:
            return min(len(self.outcomes), len(trace.outcomes))
        return None


def predict(program: P.Program, profile: str | Profile = "stock", mutant=None,
            facts: dict[str, bool] | None = None) -> list[Outcome]:
    """The trace the executor reports for program under profile (one Outcome per step), on
    a kernel with these facts (default: the running kernel's)."""
    return Model(program, profile, mutant, facts).run()
