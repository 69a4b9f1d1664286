"""The reference model: predicts a program's trace without running it.

    from fuzz.model import predict
    outcomes = predict(program, "stock")      # == native.executor.run(program).outcomes

The model is a small kernel written out in Python, at the level where the
behaviours in scope live (fs/file.c, fs/eventpoll.c and the poll/read/write
paths of pipes, AF_UNIX stream sockets, eventfd, timerfd, signalfd, epoll):

- processes (the target's first one, the ones it forks) with an fd table
  (number -> open file) that allocates the lowest free number, as the kernel
  does; fork copies the table (each slot takes a reference: epoll instances,
  like every file, are shared), threads share their process's table; each
  process has its pending signals and its sighand's signalfd wait queue (a
  signalfd registered in epoll hooks the queue of the process that did the
  EPOLL_CTL_ADD, its readiness is evaluated against whoever polls it); an
  exit or SIGKILL closes the table (SIGKILL first wakes the victim's signalfd
  queue), the sighand outlives the process until it is reaped (the executor
  reaps no actor before the run ends; an orphan of a target forked without the
  zygote goes to init, which reaps it at an unknown moment: flagged);
- open files with reference counts (fd-table slots and the driver's kept
  copies; peer ends and epoll entries hold none); the last reference drop
  releases the file: its epoll entries vanish (eventpoll_release), an epoll
  file also drops its own entries;
- epoll instances: entries keyed by (fd number, file), each registered on
  its file's wait queue (non-exclusive waiters at the head, exclusive ones at
  the tail, so wakeups visit the newest entry first), a ready list in kernel
  order (ep_poll_callback appends at the tail if not linked; epoll_wait
  transfers from the head, re-appends level-triggered items, disarms
  ONESHOT ones, drops items that poll empty and splices the rest back at
  the head), nested epolls (an epoll file polls IN while its ready list holds
  an item that polls non-empty, and a callback on an inner epoll wakes the
  entries watching it with EPOLLIN).

- the files' own state: pipe/socket tokens and the driver's peer (hangup:
  HUP, RDHUP, EOF, ECONNRESET), eventfd counters, timerfd ticks, RT signals
  queued in the process (one wait queue shared by every signalfd), memfd
  content and position (not pollable: EPERM), a pipe's write end (OUT, ERR
  once hung up, EBADF to read).

On top of that sits a shim of the executor's handle bookkeeping
(native/executor.c: hfd/hnum, claim(), handle_of(), its token decoding), so
the model answers in the same handle and file names the executor reports.

Profiles are data (PROFILES); deliberately broken variants are named in
MUTANTS and consulted each in exactly one place, for mutation-testing the
fuzzer.  Model.ambiguous lists the steps whose outcome the model cannot pin:
kernel pointer order (KCMP_EPOLL_TFD with toff among entries under one number,
fdinfo lines alike but for their order), timing the executor does not order
(two epoll_wait sleepers of one instance woken by one step, a sleeper woken
while a hold's supervisor steps run, a sleeping call whose timeout may run
out while another's join waits, a select whose handles changed numbers, an
orphan's POLLFREE); Model.failure is "crashed" when the target dies (SIGPIPE), where the run
stops; Model.divergence(trace) compares a real Trace honouring both.

The supervisor's view is modelled too (kernel/seccomp.c): a notify step
opens a hold in which ADDFD (every argument check, SETFD or not, SEND),
NOTIF_SEND and the supervisor's fdinfo/epoll_wait/kcmp/inject run while the
target is trapped; a file the trapped target puts is released only when it
returns (task_work), and meanwhile polls empty (epi_fget); the target's end
(exit, SIGKILL) closes its table, the listener then polls HUP.  The fixup vias
(the supervisor's userspace fixup, native/fixup.c) give follow on a stock
kernel within a supervisor's reach (Model.fixup_entries says where not).

Blocking calls (fs/select.c, ep_poll, io_cqring_wait): poll() and select()
evaluate every handle's file as it is now (a closed number: POLLNVAL for
poll, EBADF up front for select); in the background, the first pass hooks
the wait queues of the files polled (each hook holds a reference on its
file, so a file closed meanwhile lives on, with its epoll entries, until the
call returns), a matching wake-up makes the call poll every handle again
(resolving the numbers afresh) and return if anything is ready, and its
timeout makes one last pass.  epoll_wait sleeps on the instance's own queue
(exclusive, newest sleeper first: __add_wait_queue_exclusive), is woken one
at a time by ep_poll_callback / ep_insert / ep_modify / ep_done_scan,
gathers events in its own context and returns 0 at its timeout without
looking.  A callback on an EPOLLEXCLUSIVE item that wakes a sleeper ends the
wake-up walk (wake-one).  An io_uring reap sleeps in its ring's wait (see
below).  Woken calls run at the step boundary (the executor lets every
background call settle before a step starts); a background step's outcome is
"returned" when the call returned at once, "blocked" otherwise, and always
"blocked" when the very next step is its own join (the executor's settle
check skips the caller itself).

Two executor details show in traces and are modelled: a background select's
events are listed by the handles' numbers when it returns (FD_ISSET(num(h)));
a background poll/select races with the files the executor opens for a moment
at the lowest free numbers of its process while it settles the call (a /proc
stat file, pidfds), so a closed watched number there is flagged ambiguous.

io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c), with rings set up as the
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
  it was queued: one wake-up's key is the result, several (or no key) make it
  poll again; a one-shot poll completes (or arms afresh when nothing is
  there), a multishot one posts a CQE with F_MORE and stays;
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
holds (flagged), the reverse-path
limits of nested epolls, buffers filling up (pipe/socket/eventfd limits),
the target's RLIMIT_NOFILE (taken as 1024), the listener's own wake-ups when
it is installed in the target (it polls empty there), blocking calls woken
while a hold's supervisor steps run, calls woken together when one of them
is an epoll_wait, and the moment an orphan's sighand is freed (POLLFREE):
the outcomes these decide are flagged ambiguous.
"""
from __future__ import annotations

import errno as errno_mod
import itertools
from dataclasses import dataclass

from native import kernel_facts
from native import program as P
from native.trace import FdinfoLine, Outcome, mask_value

IN, OUT, PRI, ERR, HUP, RDHUP = P.IN, P.OUT, P.PRI, P.ERR, P.HUP, P.RDHUP
RDNORM, RDBAND, WRNORM, WRBAND = (mask_value(n) for n in ("RDNORM", "RDBAND", "WRNORM", "WRBAND"))
ET, ONESHOT, EXCLUSIVE, WAKEUP = P.ET, P.ONESHOT, P.EXCLUSIVE, mask_value("WAKEUP")
PRIVATE_BITS = WAKEUP | ONESHOT | ET | EXCLUSIVE                      # EP_PRIVATE_BITS
EXCLUSIVE_OK_BITS = IN | OUT | ERR | HUP | WAKEUP | ET | EXCLUSIVE     # EPOLLEXCLUSIVE_OK_BITS
EP_MAX_NESTS = 4
# path_limits[] of fs/eventpoll.c: wakeup paths of 1..5 links allowed through one file
# (index 0, one link, is not counted).
PATH_LIMITS = (1000, 500, 100, 50, 10)
FIRST_FD = 3                 # the target keeps 0-2 and closes everything else before step 0
READ_SIZE = 4096             # the executor's read() buffer
SIGINFO_SIZE = 128
EFD_COUNT_BITS = 20          # executor: an eventfd injection adds ((file index + 1) << 20) | 1
TOKEN_MAGIC = 0x544F4B454E000000   # executor: a file's token is TOKEN_MAGIC | its index
TOKEN_FILE_MASK = 0xFFFFFF
TIMEOUT_MARGIN_MS = 50      # a timeout this much longer than another's runs out after it
RLIMIT_NOFILE = 1024         # the target's soft limit, as the test process passes it on
ADDFD_SIZE_VER0 = 24         # sizeof(struct seccomp_notif_addfd)

# The wakeup key each event source passes to its wait queue (0: no key, matches any entry).
WAKE_KEY = {P.PIPE: IN | RDNORM, P.SOCKET: IN | PRI | RDNORM | RDBAND,
            P.EVENTFD: IN, P.TIMERFD: IN, P.EPOLL: IN, P.SIGNALFD: 0}
LISTENER = getattr(P, "LISTENER", "listener")   # the supervisor's listener, installed by ADDFD
POLLABLE = (P.PIPE, P.SOCKET, P.EVENTFD, P.EPOLL, P.SIGNALFD, P.TIMERFD, LISTENER)  # memfd is not
DEFAULT_POLLMASK = IN | OUT | RDNORM | WRNORM   # what poll()/select() see of a file without ->poll
POLLIN_SET = IN | RDNORM | RDBAND | HUP | ERR    # select's read set (fs/select.c)
POLLEX_SET = PRI
NVAL = mask_value("NVAL")
MSG = mask_value("MSG")

# io_uring (io_uring/poll.c, rw.c, cancel.c, rsrc.c), as the executor sets rings up.
POLL_UNMASK = ERR | HUP | NVAL | RDHUP           # IO_POLL_UNMASK: always polled for
POLL_BITS = (IN | PRI | OUT | ERR | HUP | NVAL | RDNORM | RDBAND | WRNORM | WRBAND | MSG
             | RDHUP)                            # what demangle_poll keeps of a poll mask
READ_POLL_EVENTS = PRI | ERR | ET | ONESHOT | IN | RDNORM | POLL_UNMASK  # a read's own poll
URING_READ_SIZE = 256        # the executor's per-request read buffer (URING_BUF)
CQ_ENTRIES = 16              # io_uring_queue_init(8): twice the SQ entries
MAX_REAPED = 32              # the executor peeks at most FDR_MAX_EVENTS CQEs per reap
URING_POLL_KINDS = (P.PIPE, P.SOCKET, P.EVENTFD, P.MEMFD)   # what uring_poll is modelled on
URING_READ_KINDS = P.PEER_KINDS                              # and uring_read


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


class NotModelled(NotImplementedError):
    """The program uses an operation the model does not cover (see Model.supported_ops)."""


class Errno(Exception):
    """A syscall failed; .name is the errno name the trace shows."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class WaitQueue:
    """A kernel wait queue (add_wait_queue at the head, add_wait_queue_exclusive at the
    tail) of epoll items and of poll()/select() hooks."""

    def __init__(self, fifo: bool = False, owner=None):
        self.entries: list = []
        self.fifo = fifo
        self.owner = owner                     # the Process of a sighand's queue

    def add(self, entry, exclusive: bool = False):
        if exclusive or self.fifo:
            self.entries.append(entry)
        else:
            self.entries.insert(0, entry)

    def remove(self, entry):
        self.entries.remove(entry)


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


class OFile:
    """An open file description (struct file), with the state its kind needs."""
    _seq = itertools.count()

    def __init__(self, name: str, kind: str, index: int, fifo: bool):
        self.name, self.kind, self.index = name, kind, index
        self.seq = next(OFile._seq)            # creation order: a stand-in for pointer order
        self.refs = 0
        self.alive = True
        self.dying = False                     # refcount 0, release deferred (task_work)
        self.tokens = 0                        # pipe/socket: 8-byte tokens queued
        self.peer = kind in P.PEER_KINDS       # pipe/socket: the driver still holds the peer
        self.sent = 0                          # socket: bytes it sent to the (unread) peer
        self.err = False                       # socket: sk_err (ECONNRESET) pending
        self.words = [TOKEN_MAGIC | index] if kind == P.MEMFD else []   # memfd content
        self.pos = 0                           # memfd: file position, in 8-byte words
        self.counter = 0                       # eventfd counter
        self.ticks = 0                         # timerfd expirations
        self.label = name                      # timerfd: file whose token interval it carries
        self.wq = WaitQueue(fifo)              # rd_wait, sk_wq, wqh, or an epoll's poll_wait
        self.sleepers: list = []               # epoll: ep->wq, epoll_wait callers (newest first)
        self.watchers: list = []               # items watching this file (file->f_ep)
        self.items: dict = {}                  # epoll: (fd, OFile) -> Item, the interest tree
        self.ready: list = []                  # epoll: the ready list
        self.ring: "Ring | None" = None        # an io_uring file: its ring
        self.write_end = False                 # a pipe's write end (peer: the read end)

    def __repr__(self):
        return f"<{self.name}{'' if self.alive else ' freed'} refs={self.refs}>"


class Item:
    """An epitem: one (fd, file) entry of an epoll instance."""

    def __init__(self, ep: OFile, fd: int, file: OFile, events: int, data: int):
        self.ep, self.fd, self.file, self.events, self.data = ep, fd, file, events, data
        self.linked = False
        self.wq: WaitQueue | None = None

    @property
    def exclusive(self) -> bool:
        return bool(self.events & EXCLUSIVE)


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


class Process:
    """A process of the target (or the supervisor): its fd table, pending signals, its
    sighand's signalfd wait queue and the executor's handle table for it."""

    def __init__(self, pid: int, fifo: bool, name: str = "main", parent=None):
        self.pid, self.name, self.parent = pid, name, parent
        self.fdt: dict[int, OFile] = {}
        self.cloexec: set[int] = set()         # numbers with FD_CLOEXEC
        self.pending: dict[str, int] = {}      # signalfd file name -> queued RT signals
        self.sig_wq = WaitQueue(fifo, owner=self)   # sighand->signalfd_wqh, shared by all signalfds
        self.hfd: dict[str, int] = {}          # handle -> number while open (executor's hfd)
        self.hnum: dict[str, int] = {}         # handle -> last number held (executor's hnum)
        self.nofile = RLIMIT_NOFILE            # RLIMIT_NOFILE's soft limit (addfd fill_table)
        self.alive = True
        self.sighand = "live"                  # live, zombie (dead, not reaped), orphan (reaped
        #                                        by init at some moment: POLLFREE then)
        self.children: list[Process] = []

    def __repr__(self):
        return f"<process {self.name}{'' if self.alive else ' dead'}>"


@dataclass
class Hold:
    """A trapped notify step: the seccomp notification the supervisor is answering."""
    index: int                                 # the notify step
    sends: bool                                # the hold has an ADDFD with SEND (naming)
    proc: Process | None = None                # the trapped actor's process
    state: str = "sent"                        # sent, or gone once the target returned
    outcome: Outcome | None = None             # what the trapped syscall returned


class Model:
    """Runs a program against the model kernel; .run() returns the outcomes."""

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
        says EINTR, poll and select restart (one more pass); a ring's own wait just
        runs it.  Any such call that may sleep is not pinned."""
        return (step.actor.name in self.nagged and step.op in ("wait", "poll", "select")
                and (step.background or step.timeout_ms > 0))

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

    # -- the executor's handle table (native/executor.c) ------------------------
    def num(self, proc: Process, h: P.Handle | None) -> int:
        if h is None:
            return -1
        fd = proc.hfd.get(h.name, -1)
        return fd if fd >= 0 else proc.hnum.get(h.name, -1)

    def claim(self, proc: Process, fd: int):
        """A number was reallocated: closed handles that remembered it lose it."""
        for name in proc.hnum:
            if proc.hfd.get(name, -1) < 0 and proc.hnum[name] == fd:
                proc.hnum[name] = -1

    def set_handle(self, proc: Process, h: P.Handle, fd: int):
        self.claim(proc, fd)
        proc.hfd[h.name] = proc.hnum[h.name] = fd

    def handle_of(self, proc: Process, fd: int):
        """The first open handle (in program order) holding fd, as the trace names it."""
        for h in self.program.handles:
            if proc.hfd.get(h.name, -1) == fd:
                return h.name
        return fd

    # -- fd table and reference counts (fs/file.c) -----------------------------
    def new_file(self, pf: P.File) -> OFile:
        f = OFile(pf.name, pf.kind, self.file_index[pf.name], self.fifo)
        f.write_end = pf.write_end                 # a pipe's write end: pipe_poll's FMODE_WRITE half
        self.files[pf.name] = f
        return f

    def alloc_fd(self, proc: Process, start: int = FIRST_FD) -> int:
        fd = start
        while fd in proc.fdt:
            fd += 1
        if fd >= proc.nofile:                     # alloc_fd(): none free below the limit
            raise Errno("EMFILE")
        return fd

    def lookup(self, proc: Process, fd: int) -> OFile:
        f = proc.fdt.get(fd)
        if f is None:
            raise Errno("EBADF")
        return f

    def install(self, proc: Process, fd: int, f: OFile, ref: bool = True, cloexec: bool = False):
        """do_dup2/fd_install: fd now refers to f; the file it held loses a reference."""
        old = proc.fdt.get(fd)
        if ref:
            f.refs += 1
        proc.fdt[fd] = f
        (proc.cloexec.add if cloexec else proc.cloexec.discard)(fd)
        if old is not None:
            self.fput(old)

    def fput(self, f: OFile):
        f.refs -= 1
        if f.refs == 0 and f.alive:
            if self.deferring and "no_deferred_fput" not in self.m:   # task_work: on return
                f.dying = True
                self.deferred.append(f)
            else:
                self.release(f)

    def release(self, f: OFile):
        """__fput: eventpoll_release first, then the file's own release (a ring's: its
        teardown)."""
        if f in self.limbo:                       # really released later, maybe: whoever
            self.doubt({item.ep for item in f.watchers})   # watched it may see it still
        if f.ring is not None:
            self.ring_teardown(f.ring)
        for item in list(f.watchers):
            self.ep_remove(item)
        for item in list(f.items.values()):
            self.ep_remove(item)
        f.alive = False

    def sys_close(self, proc: Process, fd: int):
        f = self.lookup(proc, fd)
        if "close_removes_entries" in self.m:
            for item in [it for it in f.watchers if it.fd == fd]:
                self.ep_remove(item)
        del proc.fdt[fd]
        proc.cloexec.discard(fd)
        self.fput(f)

    def sys_dup3(self, proc: Process, old: int, new: int, flags: int = 0, dup2: bool = False,
                 replacing: str | None = None, ref: bool = True) -> int:
        """dup2 (dup2=True) or dup3; replacing names the via of a replace step's install."""
        if old == new:
            if not dup2:
                raise Errno("EINVAL")
            self.lookup(proc, old)
            return old
        if new < 0 or new >= proc.nofile:         # ksys_dup3(): newfd at the limit
            raise Errno("EBADF")
        f = self.lookup(proc, old)
        self.replace_entries(proc, new, f, replacing)
        self.install(proc, new, f, ref=ref, cloexec=bool(flags & P.O_CLOEXEC))
        return new

    def replace_entries(self, proc: Process, fd: int, new: OFile, replacing: str | None):
        """What the profile does to entries keyed (fd, old file) when a replace step (its
        via in replacing) gives fd a new file."""
        old = proc.fdt.get(fd)
        if old is None or old is new or replacing is None:
            return
        if self.follow and replacing in self.profile.follow_vias:
            for ep in [f for f in self.files.values() if f.kind == P.EPOLL and f.alive]:
                item = ep.items.get((fd, old))
                if item is None or not self.can_watch(ep, new, item.events):
                    continue
                self.ep_remove(item)
                if (fd, new) not in ep.items:
                    self.ep_insert(proc, ep, fd, new, item.events, item.data)
        elif replacing in P.FIXUP_VIAS:
            self.fixup_entries(proc, fd, old, new)
        elif "replace_removes_entries" in self.m:
            for item in [it for it in old.watchers if it.fd == fd]:
                self.ep_remove(item)

    def fixup_entries(self, proc: Process, fd: int, old: OFile, new: OFile):
        """The supervisor's userspace fixup (native/fixup.c) on a stock kernel: follow,
        within what a supervisor can do.  It sees only the epolls in the replacing
        process's table; it deletes (fd, old), then adds (fd, new) with EPOLL_CTL_ADD,
        which ORs in EPOLLERR|EPOLLHUP (a disarmed ONESHOT entry comes back armed for
        them); it leaves an entry whose new file is a signalfd (an ADD
        from the supervisor would watch the supervisor's signals)."""
        seen = {id(f) for f in proc.fdt.values()}
        for ep in [f for f in self.files.values() if f.kind == P.EPOLL and f.alive]:
            item = ep.items.get((fd, old))
            if item is None or id(ep) not in seen or new.kind == P.SIGNALFD:
                continue
            if not self.can_watch(ep, new, item.events):
                continue
            if "fixup_mod" in self.m:          # MOD finds no (fd, new) entry: ENOENT
                continue
            if "fixup_keep_old" not in self.m:
                self.ep_remove(item)
            if (fd, new) not in ep.items:
                self.ep_insert(proc, ep, fd, new, item.events | ERR | HUP,
                               0 if "fixup_no_data" in self.m else item.data,
                               poll_now="fixup_no_rearm" not in self.m)

    # -- readiness (the files' poll methods) -----------------------------------
    def poll(self, proc: Process, f: OFile) -> int:
        if not f.alive:
            return 0
        k = f.kind
        if k == P.PIPE and f.write_end:           # never full here; ERR once no reader is left
            return OUT | WRNORM | (0 if f.peer else ERR)
        if k == P.PIPE:
            return (IN | RDNORM if f.tokens else 0) | (0 if f.peer else HUP)
        if k == P.SOCKET:
            mask = OUT | WRNORM | WRBAND | (IN | RDNORM if f.tokens else 0) | (ERR if f.err else 0)
            return mask | (0 if f.peer else HUP | RDHUP | IN | RDNORM)
        if k == P.EVENTFD:
            return OUT | (IN if f.counter else 0)
        if k == P.TIMERFD:
            return IN if f.ticks else 0
        if k == P.SIGNALFD:
            return IN if proc.pending.get(f.name, 0) else 0
        if k == P.MEMFD:
            return DEFAULT_POLLMASK               # no ->poll: vfs_poll's default
        if k == LISTENER:
            return 0      # seccomp_notify_poll from the target: its traps are answered by now
        if k == P.URING:
            self.touched = True   # a sleeping poll/select's number now holds a ring: its
            return 0              # io_uring_poll (SQ space, CQ state) is not modelled
        # An epoll file: scan its ready list, dropping items that are not really ready.
        if f in self.uncertain:
            self.touched = True
        while f.ready:
            if self.item_poll(proc, f.ready[0]):
                self.wake_sleeper(f)              # ep_done_scan: the list is not empty
                return IN | RDNORM
            f.ready.pop(0).linked = False
        return 0

    def item_poll(self, proc: Process, item: Item) -> int:
        if item.file.dying and self.facts["4efaa5acf0a1"]:   # epi_fget() fails on a zero refcount
            return 0
        return self.poll(proc, item.file) & item.events

    def wq_of(self, proc: Process, f: OFile) -> WaitQueue:
        return proc.sig_wq if f.kind == P.SIGNALFD else f.wq

    def wake(self, wq: WaitQueue, key: int, nr: int = 1, pollfree: bool = False):
        """__wake_up_common: every entry from the head; an exclusive one that really
        woke a sleeper counts against nr (0: wake them all)."""
        for entry in list(wq.entries):
            if entry not in wq.entries:
                continue                            # gone meanwhile
            if isinstance(entry, PollEntry):
                if not key or key & entry.key:
                    self.make_runnable(entry.waiter)
                continue
            if isinstance(entry, Request):
                self.uring_wake(entry, key)
                continue
            if self.callback(entry, key, pollfree) and entry.exclusive:
                nr -= 1
                if nr == 0:
                    break

    def wake_file(self, proc: Process, f: OFile, key: int, nr: int = 1):
        if f.kind == P.SIGNALFD and "private_signalfd_wake" in self.m:
            for item in [it for it in proc.sig_wq.entries if getattr(it, "file", None) is f]:
                self.callback(item, key)
            return
        self.wake(self.wq_of(proc, f), key, nr)

    def callback(self, item: Item, key: int, pollfree: bool = False) -> bool:
        """ep_poll_callback; True when an EPOLLEXCLUSIVE item woke a sleeper (ewake)."""
        ewake = False
        if pollfree:                                # the queue is going: detach for good
            item.wq.remove(item)
            item.wq = None
        if not item.events & ~PRIVATE_BITS:
            return False                            # a disarmed ONESHOT item
        if key and not key & item.events:
            return False
        if not item.linked:
            self.link(item)
        elif "move_to_tail" in self.m:
            item.ep.ready.remove(item)
            item.ep.ready.append(item)
        if item.ep.sleepers:
            if item.exclusive and not pollfree:
                k = key & (IN | OUT)
                ewake = k == 0 or bool(k in (IN, OUT) and k & item.events)
            self.wake_sleeper(item.ep)
        if item.ep.wq.entries and "no_nested_wakeup" not in self.m:
            self.wake(item.ep.wq, WAKE_KEY[P.EPOLL])   # ep_poll_safewake
        return ewake

    def wake_sleeper(self, ep: OFile):
        """wake_up(&ep->wq): the first epoll_wait sleeper (autoremoved) becomes runnable."""
        if ep.sleepers:
            self.make_runnable(ep.sleepers.pop(0))

    def make_runnable(self, w: Waiter):
        if w.outcome is None and w not in self.runnable:
            self.runnable.append(w)

    def link(self, item: Item):
        item.linked = True
        if "lifo_ready" in self.m:
            item.ep.ready.insert(0, item)
        else:
            item.ep.ready.append(item)

    # -- epoll (fs/eventpoll.c) --------------------------------------------------
    def ep_insert(self, proc: Process, ep: OFile, fd: int, f: OFile, events: int, data: int,
                  poll_now: bool = True):
        item = Item(ep, fd, f, events, data)
        ep.items[(fd, f)] = item
        f.watchers.append(item)
        item.wq = self.wq_of(proc, f)
        item.wq.add(item, item.exclusive)
        if poll_now:
            self.ready_if_hot(proc, item)

    def ready_if_hot(self, proc: Process, item: Item):
        """ep_insert/ep_modify's tail: queue the item if it polls ready, then wake a
        sleeper and the nest."""
        if self.item_poll(proc, item) and not item.linked:
            self.link(item)
            self.wake_sleeper(item.ep)
            if item.ep.wq.entries and "no_nested_wakeup" not in self.m:
                self.wake(item.ep.wq, WAKE_KEY[P.EPOLL])

    def ep_remove(self, item: Item):
        del item.ep.items[(item.fd, item.file)]
        item.file.watchers.remove(item)
        if item.wq is not None:
            item.wq.remove(item)
        if item.linked:
            item.ep.ready.remove(item)
            item.linked = False

    def can_watch(self, ep: OFile, f: OFile, events: int) -> bool:
        """Could ep watch f (the EINVAL/ELOOP checks of EPOLL_CTL_ADD)?"""
        if f is ep or f.kind not in POLLABLE:
            return False
        if f.kind == P.EPOLL:
            return not events & EXCLUSIVE and self.loop_check(ep, f)
        return True

    def loop_check(self, ep: OFile, tep: OFile) -> bool:
        """ep_loop_check: no path from tep back to ep, and the nest no deeper than EP_MAX_NESTS."""
        def down(e: OFile, depth: int) -> int:
            result = 0
            for item in e.items.values():
                if item.file.kind == P.EPOLL:
                    if item.file is ep or depth > EP_MAX_NESTS:
                        result = EP_MAX_NESTS + 1
                    else:
                        result = max(result, down(item.file, depth + 1) + 1)
                    if result > EP_MAX_NESTS:
                        break
            return result

        def up(e: OFile) -> int:
            return max((up(item.ep) + 1 for item in e.watchers), default=0)

        depth = down(tep, 0)
        if not self.facts["f2e467a48287"]:        # before it only the path below counted
            return depth <= EP_MAX_NESTS
        return depth <= EP_MAX_NESTS and depth + 1 + up(ep) <= EP_MAX_NESTS

    def too_many_paths(self, tf: OFile) -> bool:
        """reverse_path_check after an ADD that needed the full check: from each wakeup
        source at or below tf, count the paths up to an unwatched epoll by length; a
        path longer than EP_MAX_NESTS + 1 links, or more paths of one length than
        PATH_LIMITS allows (length 1 is free), refuses the ADD."""
        sources, seen = [], set()

        def below(f: OFile):
            if id(f) in seen:
                return
            seen.add(id(f))
            if f.kind != P.EPOLL:
                sources.append(f)
                return
            for item in list(f.items.values()):
                below(item.file)
        below(tf)
        for f in sources:
            counts = [0] * len(PATH_LIMITS)

            def up(watchers, depth) -> bool:
                if depth > EP_MAX_NESTS:
                    return True
                for item in watchers:
                    if item.ep.watchers:
                        if up(item.ep.watchers, depth + 1):
                            return True
                    elif depth:
                        counts[depth] += 1
                        if counts[depth] > PATH_LIMITS[depth]:
                            return True
                return False
            if up(f.watchers, 0):
                return True
        return False

    def sys_epoll_ctl(self, proc: Process, epfd: int, op: str, fd: int, events: int, data: int):
        epf = self.lookup(proc, epfd)
        tf = self.lookup(proc, fd)
        events &= 0xFFFFFFFF
        if tf.kind not in POLLABLE:
            raise Errno("EPERM")
        if op != P.DEL and events & WAKEUP and not kernel_facts.epollwakeup_kept():
            events &= ~WAKEUP           # ep_take_care_of_epollwakeup(): dropped silently
        if epf is tf or epf.kind != P.EPOLL:
            raise Errno("EINVAL")
        if op not in P.CTL_OPS:
            raise Errno("EINVAL")       # do_epoll_ctl()'s switch: an unknown op
        if op != P.DEL and events & EXCLUSIVE:
            if op == P.MOD or tf.kind == P.EPOLL or events & ~EXCLUSIVE_OK_BITS:
                raise Errno("EINVAL")
        if op == P.ADD and tf.kind == P.EPOLL and not self.loop_check(epf, tf):
            raise Errno("ELOOP" if self.facts["f2e467a48287"] else "EINVAL")
        if "del_by_fd" in self.m and op != P.ADD:
            item = next((it for (n, _), it in epf.items.items() if n == fd), None)
        else:
            item = epf.items.get((fd, tf))
        errhup = 0 if "no_errhup" in self.m else ERR | HUP
        if op == P.ADD:
            if item is not None:
                raise Errno("EEXIST")
            full_check = bool(epf.watchers) or tf.kind == P.EPOLL
            self.ep_insert(proc, epf, fd, tf, events | errhup, data, poll_now=not full_check)
            if full_check:
                item = epf.items[(fd, tf)]
                if self.too_many_paths(tf):
                    self.ep_remove(item)
                    raise Errno("EINVAL")
                self.ready_if_hot(proc, item)
        elif item is None:
            raise Errno("ENOENT")
        elif op == P.DEL:
            self.ep_remove(item)
        elif item.events & EXCLUSIVE:
            raise Errno("EINVAL")
        else:
            item.events, item.data = events | errhup, data
            self.ready_if_hot(proc, item)

    def sys_epoll_wait(self, proc: Process, epfd: int, maxevents: int, ctx=None) -> tuple:
        """epoll_wait on proc's epfd, polling from ctx's context (default proc)."""
        ep = self.lookup(proc, epfd)
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        return self.send_events(ctx or proc, ep, maxevents)

    def send_events(self, proc: Process, ep: OFile, maxevents: int) -> tuple:
        """ep_send_events over the whole ready list (timeouts change nothing here)."""
        if ep in self.uncertain:
            self.touched = True
        scan, ep.ready = ep.ready, []
        events, taken = [], 0
        for item in scan:
            if len(events) >= maxevents:
                break
            taken += 1
            item.linked = False
            revents = self.item_poll(proc, item)
            if not revents:
                continue
            events.append((revents, item.data))
            if item.events & ONESHOT and "ignore_oneshot" not in self.m:
                item.events &= PRIVATE_BITS
            elif not item.events & ET or "ignore_et" in self.m:
                item.linked = True
                if "lt_requeue_head" in self.m:
                    ep.ready.insert(0, item)
                else:
                    ep.ready.append(item)
        ep.ready = scan[taken:] + ep.ready          # ep_done_scan: leftovers back at the head
        if ep.ready:
            self.wake_sleeper(ep)
        return tuple(events)

    # -- reading and writing ----------------------------------------------------
    def peer_read(self, f: OFile, size: int) -> tuple[int, str | None, int]:
        """One read of up to size bytes of a pipe or socket: (bytes, reached, count), every
        token there is; (0, None, 0) at end of file; ECONNRESET once (sock_error()
        reports and clears it); EAGAIN when empty."""
        n = min(f.tokens, size // 8)
        if n:
            f.tokens -= n
            return 8 * n, f.name, n
        if f.err:
            f.err = False
            raise Errno("ECONNRESET")
        if not f.peer:
            return 0, None, 0
        raise Errno("EAGAIN")

    def sys_read(self, proc: Process, fd: int) -> tuple[int, str | None, int]:
        """One read(fd, buf, 4096): (bytes, reached, count) as the executor decodes them;
        (0, None, 0) at end of file."""
        f = self.lookup(proc, fd)
        k = f.kind
        if k in (P.EPOLL, LISTENER):
            raise Errno("EINVAL")
        if f.write_end:
            raise Errno("EBADF")                    # not open for reading
        if k in P.PEER_KINDS:
            return self.peer_read(f, READ_SIZE)
        if k == P.MEMFD:
            words = f.words[f.pos:f.pos + READ_SIZE // 8]
            f.pos += len(words)
            return (8 * len(words), *self.decode_words(words)) if words else (0, None, 0)
        if k == P.EVENTFD:
            if not f.counter:
                raise Errno("EAGAIN")
            v, f.counter = f.counter, 0
            if "no_eventfd_out_wake" not in self.m:
                self.wake_file(proc, f, OUT)
            return (8, *self.decode_eventfd(v))
        if k == P.TIMERFD:
            if not f.ticks:
                raise Errno("EAGAIN")
            f.ticks = 0
            return 8, f.label, 1
        n = min(proc.pending.get(f.name, 0), READ_SIZE // SIGINFO_SIZE)
        if not n:
            raise Errno("EAGAIN")
        proc.pending[f.name] -= n
        return SIGINFO_SIZE * n, f.name, n

    def decode_words(self, words: list[int]):
        """The executor's decoding of 8-byte words: n equal tokens, or one eventfd value."""
        v = words[0]
        if v & ~TOKEN_FILE_MASK == TOKEN_MAGIC:
            idx = v & TOKEN_FILE_MASK
            if all(w == v for w in words) and idx < len(self.program.files):
                return self.program.files[idx].name, len(words)
            return "?", 0
        return self.decode_eventfd(v) if len(words) == 1 else ("?", 0)

    def decode_eventfd(self, v: int):
        """The executor's decoding of an eventfd counter into (file, injections)."""
        count, q = v & ((1 << EFD_COUNT_BITS) - 1), v >> EFD_COUNT_BITS
        if count and q % count == 0 and 0 <= q // count - 1 < len(self.program.files):
            pf = self.program.files[q // count - 1]
            if pf.kind == P.EVENTFD:
                return pf.name, count
        return "?", 0

    def sys_write(self, proc: Process, fd: int, value: int) -> int:
        """write(fd, &value, 8), as an eventfd injection does it through a handle."""
        f = self.lookup(proc, fd)
        if f.kind == P.PIPE:
            raise Errno("EBADF")                 # a read end: not open for writing
        if f.kind == P.SOCKET:
            if not f.peer:
                raise Errno("SIGPIPE")           # EPIPE, and SIGPIPE kills the target
            f.sent += 8                          # to the driver's peer, never read
            return 8
        if f.kind == P.MEMFD:
            f.words[f.pos:f.pos + 1] = [value]
            f.pos += 1
            return 8
        if f.kind != P.EVENTFD:
            raise Errno("EINVAL")                # epoll, timerfd, signalfd: no write op
        f.counter += value
        self.wake_file(proc, f, IN)
        return 8

    def peer_write(self, proc: Process, f: OFile, settled: bool = False) -> int:
        """The driver writes a token through f's peer (after waiting for a release in
        limbo to happen, when settled)."""
        if not f.peer:
            raise Errno("EBADF")                 # the driver hung it up
        if not f.alive:
            if f in self.limbo and not settled:  # the ring's exit work may not have put it
                self.ambiguous.append(self.index)
            raise Errno("EPIPE")
        f.tokens += 1
        self.wake_file(proc, f, WAKE_KEY[f.kind])
        return 8

    def hangup(self, proc: Process, f: OFile):
        """The driver closes f's peer: pipe_release / unix_release_sock wake with no key."""
        if not f.peer:
            raise Errno("EBADF")
        f.peer = False
        if f.kind == P.SOCKET and f.sent:
            f.err = True                         # the peer died with unread data: ECONNRESET
        if f.alive:
            self.wake_file(proc, f, 0, nr=0)       # wake_up_interruptible_all

    # -- step operations --------------------------------------------------------
    def _create(self, proc: Process, step: P.Step) -> Outcome:
        if step.file.kind in P.PEER_KINDS:
            self.bound = proc                        # the peer's hand-off traps
        fd = self.alloc_fd(proc)
        self.install(proc, fd, self.new_file(step.file))
        self.set_handle(proc, step.h, fd)
        self.known.add(step.file.name)
        return P.expected_outcome(step, ret=self.handle_of(proc, fd))

    _op_pipe = _op_socketpair = _op_eventfd = _op_epoll_create = _create
    _op_signalfd = _op_timerfd = _op_memfd = _create

    def _op_dup(self, proc, step):
        f = self.lookup(proc, self.num(proc, step.h2))
        fd = self.alloc_fd(proc)
        self.install(proc, fd, f, ref="no_dup_refcount" not in self.m)
        self.set_handle(proc, step.h, fd)
        return P.expected_outcome(step, ret=self.handle_of(proc, fd))

    def _op_dup2(self, proc, step):
        flags = step.flags if step.op == "dup3" else 0
        r = self.sys_dup3(proc, self.num(proc, step.h2), self.num(proc, step.h), flags,
                          dup2=step.op == "dup2", ref="no_dup_refcount" not in self.m)
        self.set_handle(proc, step.h, r)
        return P.expected_outcome(step, ret=self.handle_of(proc, r))

    _op_dup3 = _op_dup2

    def _op_close(self, proc, step):
        self.sys_close(proc, self.num(proc, step.h))
        proc.hfd[step.h.name] = -1
        return P.expected_outcome(step)

    def _op_epoll_ctl(self, proc, step):
        self.sys_epoll_ctl(proc, self.num(proc, step.ep), step.ctl, self.num(proc, step.h),
                           step.events, step.data)
        return P.expected_outcome(step)

    def _op_wait(self, proc, step):
        events = self.sys_epoll_wait(proc, self.num(proc, step.ep), step.maxevents)
        return P.expected_outcome(step, events=events)

    def _op_inject(self, proc, step):
        k = step.file.kind
        if k in P.PEER_KINDS:
            self.bound = proc
            ret = self.peer_write(proc, self.files[step.file.name], settled=step.timeout_ms > 0)
        elif k == P.EVENTFD:
            unit = (self.file_index[step.file.name] + 1) << EFD_COUNT_BITS | 1
            ret = self.sys_write(proc, self.num(proc, step.h), unit)
        elif k == P.TIMERFD:
            f = self.lookup(proc, self.num(proc, step.h))
            if f.kind != P.TIMERFD:
                raise Errno("EINVAL")
            f.ticks, f.label = 1, step.file.name     # settime resets ticks; it expires at once
            self.wake_file(proc, f, IN)
            ret = 0
        else:                                        # signalfd: kill(getpid(), its RT signal)
            f = self.files[step.file.name]
            proc.pending[f.name] = proc.pending.get(f.name, 0) + 1
            self.wake_file(proc, f, WAKE_KEY[P.SIGNALFD])
            ret = 0
        return P.expected_outcome(step, ret=ret)

    def _op_read(self, proc, step):
        ret, reached, count = self.sys_read(proc, self.num(proc, step.h))
        return Outcome(ret=ret, reached=reached, count=count) if ret else Outcome(ret=0)

    def _op_hangup(self, proc, step):
        self.bound = proc
        self.hangup(proc, self.files[step.file.name])
        return P.expected_outcome(step)

    def _op_drain(self, proc, step):
        """read() until EAGAIN; the executor decodes the first 4096 bytes that came."""
        fd = self.num(proc, step.h)
        total, reached, count = 0, None, 0
        while True:
            try:
                n, got, c = self.sys_read(proc, fd)
            except Errno as e:
                if e.name != "EAGAIN":
                    raise
                break
            if not n:
                break
            total, reached, count = total + n, got, count + c
        if not total:
            return Outcome(ret=0)
        kind = self.files[reached].kind if reached in self.files else None
        if kind in P.PEER_KINDS or kind == P.SIGNALFD:
            count = min(total, READ_SIZE) // (SIGINFO_SIZE if kind == P.SIGNALFD else 8)
        return Outcome(ret=total, reached=reached, count=count)

    def _op_replace(self, proc, step):
        old = proc.fdt.get(self.num(proc, step.h))
        if old is not None and old.refs > 1:
            self.multi_ref_replaces += 1
        if step.via in P.ADDFD_VIAS:
            return self._replace_addfd(proc, step)
        dst = self.num(proc, step.h)
        temp = None
        if step.h2 is not None:
            src = self.num(proc, step.h2)            # -1 without a number: the kernel answers
        else:                                        # the target makes the file at a temp number
            if step.file.kind in P.PEER_KINDS:
                self.bound = proc
            src = temp = self.alloc_fd(proc)
            if temp == dst:          # made on the closed handle's own number: the executor moves it
                src = temp = self.alloc_fd(proc, start=temp + 1)
            self.install(proc, temp, self.new_file(step.file))
            self.known.add(step.file.name)
        try:
            flags = step.flags if step.via == P.DUP3 else 0
            r = self.sys_dup3(proc, src, dst, flags, dup2=step.via == P.DUP2, replacing=step.via)
            self.set_handle(proc, step.h, r)
            return P.expected_outcome(step, ret=self.handle_of(proc, r))
        finally:
            if temp is not None:
                if step.keep:
                    self.claim(proc, temp)
                elif temp in proc.fdt:
                    self.sys_close(proc, temp)

    def _replace_addfd(self, proc, step):
        """The supervisor's copy (new, or pidfd_getfd of h2) is installed at h's number."""
        self.bound = proc
        dst = self.num(proc, step.h)
        if step.h2 is not None:
            src = proc.fdt.get(self.num(proc, step.h2))
            if src is None:
                return P.expected_outcome(step, errno="EBADF", sysret="-1 EBADF")
        else:
            src = self.new_file(step.file)
        src.refs += 1                                # the supervisor's descriptor
        try:
            if dst < 0:
                return P.expected_outcome(step, errno="EBADF", sysret="-1 EBADF")
            self.replace_entries(proc, dst, src, replacing=step.via)
            self.install(proc, dst, src, cloexec=bool(step.flags & P.O_CLOEXEC))
            self.set_handle(proc, step.h, dst)
            if step.h2 is None:
                self.known.add(step.file.name)
            sysret = self.handle_of(proc, dst) if step.via in P.SEND_VIAS else 0
            return P.expected_outcome(step, ret=step.h.name, sysret=sysret)
        finally:
            if step.keep:
                self.driver_refs.append(src)
            else:
                self.fput(src)

    def _op_fdinfo(self, proc, step):
        ep = proc.fdt.get(self.num(proc, step.ep))
        if ep is None:
            raise Errno("ENOENT")                    # /proc/self/fdinfo/<n> does not exist
        if ep in self.torn:
            self.touched = True
        lines = [FdinfoLine(tfd=str(self.handle_of(proc, it.fd)), events=it.events,
                            data=it.data, pos=0, ino=ino, sdev=sdev)
                 for it in ep.items.values() for ino, sdev in [self.inode_names(it.file)]]
        key = FdinfoLine.sort_key                              # traces sort lines by it
        lines.sort(key=key)
        if any(key(a) == key(b) and a != b for a, b in zip(lines, lines[1:])):
            self.ambiguous.append(self.index)
        return P.expected_outcome(step, fdinfo=lines)

    def inode_names(self, f: OFile) -> tuple[str, str]:
        """fdinfo's ino/sdev as the executor names them: by the recorded inodes that match."""
        if f.kind in P.PEER_KINDS:
            fs = "pipefs" if f.kind == P.PIPE else "sockfs"
            return (f.name, fs) if f.name in self.known else ("?", "?")
        anon = sorted(n for n in self.known if self.files[n].kind in P.ANON_KINDS)
        if len(anon) > 1:
            return "anon_inode", "anon_inodefs"
        return (anon[0], "anon_inodefs") if anon else ("?", "?")

    def _op_kcmp_epoll_tfd(self, proc, step):
        against = self.lookup(proc, self.num(proc, step.h2))
        ep = self.lookup(proc, self.num(proc, step.ep))
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        if ep in self.torn:
            self.touched = True
        tfd = self.num(proc, step.h)
        found = sorted((it for it in ep.items.values() if it.fd == tfd), key=lambda it: it.file.seq)
        if step.toff >= len(found):
            raise Errno("ENOENT")
        if "kcmp_ignores_file" in self.m:
            return P.expected_outcome(step, ret=0)
        if len(found) > 1 and any(it.file is against for it in found):
            self.ambiguous.append(self.index)        # rbtree order is file pointer order
        return P.expected_outcome(step, ret=0 if found[step.toff].file is against else 1)


    def _op_getfd(self, proc, step):
        fd = self.num(proc, step.h)
        self.lookup(proc, fd)
        return P.expected_outcome(step, ret=int(fd in proc.cloexec))

    # -- a notification held by the supervisor (kernel/seccomp.c) ------------------
    def _op_notify(self, proc, step):
        """The target traps; the supervisor steps that follow run until it is answered."""
        sends = False
        for s in self.program.steps[self.index + 1:]:
            if s.op not in P.SUPERVISOR_OPS:
                break
            sends |= s.op == "addfd" and bool(s.addfd["flags"] & P.ADDFD_FLAG_SEND)
        self.hold = Hold(self.index, sends, proc)
        self.bound = proc
        return None                               # filled in when the target returns

    def answer(self, proc: Process, val: int, error: int = 0, now: bool = True):
        """The trapped syscall returns (val, or -error); deferred fputs run on its way out:
        at once (now), or, after an ADDFD with SEND, while the supervisor goes on with the
        hold (the steps it runs meanwhile race with them: Model.ambiguous)."""
        hold = self.hold
        r = -error if error else (val - (1 << 64) if val >= 1 << 63 else val)
        if -4095 <= r < 0:
            hold.outcome = Outcome(ret=-1, errno=errno_mod.errorcode.get(-r, f"E{-r}"))
        else:
            name = self.handle_of(proc, r)
            hold.outcome = Outcome(ret=name if hold.sends and isinstance(name, str) else r)
        hold.state = "gone"
        if now:
            self.answer_deferred()

    def answer_deferred(self):
        for f in self.deferred:
            f.dying = False
            self.release(f)
        self.deferred = []

    def end_hold(self):
        if self.hold.state == "sent":             # the executor answers an unanswered hold
            self.answer(self.hold.proc, 0)
        self.answer_deferred()
        self.outcomes[self.hold.index] = self.hold.outcome
        self.hold = None

    def _op_respond(self, proc, step):
        """SECCOMP_IOCTL_NOTIF_SEND with val and error (step.data, step.toff)."""
        # seccomp_notify_send(): the flags are checked before the notification is
        # looked up; a refused reply leaves it answerable (the hold goes on).
        if step.flags & ~P.USER_NOTIF_FLAG_CONTINUE or (step.flags and (step.data or step.toff)):
            raise Errno("EINVAL")
        if self.hold is None:
            raise Errno("ENOENT")                  # after the target's end
        if self.hold.state != "sent":
            raise Errno("ENOENT" if self.hold.state == "gone" else "EINPROGRESS")
        if step.flags:                             # CONTINUE: the syscall runs for real
            self.answer_continued(proc)
        else:
            self.answer(proc, step.data, step.toff)
        return P.expected_outcome(step)

    def answer_continued(self, proc: Process):
        """The trapped ioctl runs on the file its fd number holds now (vfs_ioctl): every
        file the IR makes answers an unknown request with ENOTTY, but an epoll since
        18e2bf0edf4d (ep_eventpoll_ioctl: EINVAL); the listener's is not modelled."""
        step = self.program.steps[self.hold.index]
        f = proc.fdt.get(self.num(proc, step.h))
        if f is not None and f.kind == P.LISTENER:
            raise NotModelled("a continued ioctl on the listener")
        err = errno_mod.EBADF if f is None else errno_mod.ENOTTY
        if f is not None and f.kind == P.EPOLL and self.facts["18e2bf0edf4d"]:
            err = errno_mod.EINVAL
        self.answer(proc, 0, err)

    def _op_addfd(self, proc, step):
        """SECCOMP_IOCTL_NOTIF_ADDFD as the step spells it, checked as seccomp_notify_addfd."""
        a = step.addfd
        src = None
        if a.get("fill_table"):                   # prlimit: the lowest free fd is the limit
            proc.nofile = next(fd for fd in itertools.count(FIRST_FD) if fd not in proc.fdt)
        if step.h2 is not None:                   # pidfd_getfd: fails before any ioctl
            src = self.pidfd_getfd(proc, self.num(proc, step.h2))
        elif step.file is not None:
            src = self.new_file(step.file)
            self.known.add(step.file.name)
        if src is not None:
            src.refs += 1                          # the supervisor's descriptor
        try:
            return P.expected_outcome(step, ret=self.addfd(proc, step, a, src))
        finally:
            if src is not None:
                if step.keep:
                    self.driver_refs.append(src)
                else:
                    self.fput(src)

    def addfd(self, proc: Process, step: P.Step, a: dict, src: OFile | None):
        size, flags = a["size"] or ADDFD_SIZE_VER0, a["flags"]
        setfd = flags & P.ADDFD_FLAG_SETFD
        if a["newfd"] == "rlimit":
            newfd = proc.nofile
        elif a["newfd"] is not None:
            newfd = a["newfd"] & 0xFFFFFFFF
        else:
            newfd = self.num(proc, step.h) & 0xFFFFFFFF if setfd and step.h is not None else 0
        if size < ADDFD_SIZE_VER0:
            raise Errno("EINVAL")
        if size > ADDFD_SIZE_VER0 and a["tail_nonzero"]:
            raise Errno("E2BIG")                   # copy_struct_from_user
        if a["newfd_flags"] & ~P.O_CLOEXEC or flags & ~(P.ADDFD_FLAG_SETFD | P.ADDFD_FLAG_SEND):
            raise Errno("EINVAL")
        if newfd and not setfd:
            raise Errno("EINVAL")
        if src is None:
            raise Errno("EBADF")
        if self.hold is None:
            raise Errno("ENOENT")                  # after the target's end
        if a["id"] == "pending":                   # issued, not yet received: state INIT
            raise Errno("EINPROGRESS")
        if a["id"] == "next" and self.hold.state == "gone":
            self.ambiguous.append(self.index)       # the target's next trap may exist by now
            raise Errno("EINPROGRESS")
        if a["id"] != "current" or self.hold.state == "gone":
            raise Errno("ENOENT")
        if self.hold.state != "sent":
            raise Errno("EINPROGRESS")
        cloexec = bool(a["newfd_flags"] & P.O_CLOEXEC)
        if not setfd:                             # receive_fd: the lowest free number
            fd = self.alloc_fd(proc)
            self.install(proc, fd, src, cloexec=cloexec)
        elif newfd >= proc.nofile:                # replace_fd; a failed SEND stays answerable
            raise Errno("EBADF")
        else:
            fd = newfd
            self.replace_entries(proc, fd, src, replacing=P.ADDFD_SETFD)
            self.deferring = True                 # the target installs, then waits on
            try:
                self.install(proc, fd, src, cloexec=cloexec)
            finally:
                self.deferring = False
        if step.h is not None:
            self.set_handle(proc, step.h, fd)
        if flags & P.ADDFD_FLAG_SEND:
            self.answer(proc, fd, now=False)
        return self.handle_of(proc, fd)

    def _op_sup_wait(self, proc, step):
        """epoll_wait on the supervisor's pidfd_getfd copy: items poll in its context."""
        ep = self.pidfd_getfd(proc, self.num(proc, step.ep))
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        return P.expected_outcome(step, events=self.send_events(self.sup, ep, step.maxevents))

    def pidfd_getfd(self, proc: Process, fd: int) -> OFile:
        """The supervisor's copy of the target's fd (the caller counts its reference)."""
        if not proc.alive:
            raise Errno("ESRCH")                   # __pidfd_fget on an exited task
        return self.lookup(proc, fd)

    def _op_sup_inject(self, proc, step):
        return P.expected_outcome(step, ret=self.peer_write(proc, self.files[step.file.name]))

    _op_sup_fdinfo = _op_fdinfo
    _op_sup_kcmp = _op_kcmp_epoll_tfd

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

    def _op_kill_target(self, proc, step):
        """SIGKILL inside a hold: the trapped syscall never returns."""
        if self.hold is not None:
            self.outcomes[self.hold.index] = Outcome(ret="killed")
            self.answer_deferred()
            self.hold = None
        for victim in [p for p in self.procs.values() if p.alive]:
            self.wake(victim.sig_wq, 0)
        for victim in [p for p in self.procs.values() if p.alive]:
            self.proc_ends(victim)
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

    def filter_released(self) -> bool:
        """No task uses the filter any more: the target is gone and, before bfafe5efa975,
        reaped too (the executor reaps no process before the run ends)."""
        return self.gone and self.facts["bfafe5efa975"]

    def _op_listener_wait(self, proc, step):
        """The listener in a fresh epoll: IN for a notification not yet received, OUT for
        one received and unanswered, HUP once no task uses the filter."""
        if self.filter_released():
            mask = HUP
        elif self.gone:
            mask = 0                               # dead but unreaped: the filter is in use
        elif self.hold is not None and self.hold.state == "sent":
            mask = OUT | WRNORM
        else:
            mask = 0
            self.ambiguous.append(self.index)      # the target's next trap races us
        revents = mask & (step.events | ERR | HUP)
        return P.expected_outcome(step, events=[(revents, step.data)] if revents else [])

    def _op_notif_recv(self, proc, step):
        """ENOENT once the filter is released; the executor says EAGAIN rather than block."""
        if not self.gone:
            raise NotModelled("NOTIF_RECV while the target lives would block")
        raise Errno("ENOENT" if self.filter_released() else "EAGAIN")

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
        """io_run_local_work: the queued work in the order it was queued (work queued
        meanwhile waits for the next run)."""
        work, ring.tw = ring.tw, []
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

    def _op_uring_unregister(self, proc, step):
        """The table's reference goes at once (a pending fixed read keeps its own)."""
        ring = self.ring_for(proc, step)
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


def predict(program: P.Program, profile: str | Profile = "stock", mutant=None,
            facts: dict[str, bool] | None = None) -> list[Outcome]:
    """The trace the executor reports for program under profile (one Outcome per step), on
    a kernel with these facts (default: the running kernel's)."""
    return Model(program, profile, mutant, facts).run()
