"""What every part of the model shares: the open file (struct file), the process
(its fd table, its signals), wait queues, the event bits, and the constants the
model copies from the executor (native/executor.c) and the kernel.

The constants copied from C are checked against it by tests/test_step_table.py.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from native import program as P
from native.trace import mask_value

if TYPE_CHECKING:
    from fuzz.kernel.io_uring import Ring

IN, OUT, PRI, ERR, HUP, RDHUP = P.IN, P.OUT, P.PRI, P.ERR, P.HUP, P.RDHUP
RDNORM, RDBAND, WRNORM, WRBAND = (mask_value(n) for n in ("RDNORM", "RDBAND", "WRNORM", "WRBAND"))
ET, ONESHOT, EXCLUSIVE, WAKEUP = P.ET, P.ONESHOT, P.EXCLUSIVE, mask_value("WAKEUP")
FIRST_FD = 3                 # the target keeps 0-2 and closes everything else before step 0
READ_SIZE = 4096             # the executor's read() buffer
SIGINFO_SIZE = 128
EFD_COUNT_BITS = 20          # executor: an eventfd injection adds ((file index + 1) << 20) | 1
TOKEN_MAGIC = 0x544F4B454E000000   # executor: a file's token is TOKEN_MAGIC | its index
TOKEN_FILE_MASK = 0xFFFFFF
RLIMIT_NOFILE = 1024         # the target's soft limit, as the test process passes it on

# The wakeup key each event source passes to its wait queue (0: no key, matches any entry).
WAKE_KEY = {P.PIPE: IN | RDNORM, P.SOCKET: IN | PRI | RDNORM | RDBAND,
            P.EVENTFD: IN, P.TIMERFD: IN, P.EPOLL: IN, P.SIGNALFD: 0}
LISTENER = P.LISTENER        # the supervisor's listener, installed by ADDFD
POLLABLE = (P.PIPE, P.SOCKET, P.EVENTFD, P.EPOLL, P.SIGNALFD, P.TIMERFD, LISTENER)  # memfd is not
DEFAULT_POLLMASK = IN | OUT | RDNORM | WRNORM   # what poll()/select() see of a file without ->poll
NVAL = mask_value("NVAL")
MSG = mask_value("MSG")


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
