"""fd tables and open files (fs/file.c), and the files' own state.

- a process's fd table (number -> open file) allocates the lowest free number,
  as the kernel does, up to its RLIMIT_NOFILE (taken as 1024);
- open files have reference counts (fd-table slots and the driver's kept
  copies; peer ends and epoll entries hold none); the last reference drop
  releases the file: its epoll entries vanish (eventpoll_release), an epoll
  file also drops its own entries;
- the files' own state and ->poll: pipe/socket tokens and the driver's peer
  (hangup: HUP, RDHUP, EOF, ECONNRESET), eventfd counters, timerfd ticks, RT
  signals queued in the process (one wait queue shared by every signalfd),
  memfd content and position (not pollable: EPERM), a pipe's write end (OUT,
  ERR once hung up, EBADF to read).

On top of that sits a shim of the executor's handle bookkeeping
(native/executor.c: hfd/hnum, claim(), handle_of(), its token decoding), so
the model answers in the same handle and file names the executor reports.

Not modelled: buffers filling up (pipe/socket/eventfd limits).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from native import program as P
from native.trace import Outcome
from fuzz.kernel.base import (
    DEFAULT_POLLMASK, EFD_COUNT_BITS, ERR, Errno, FIRST_FD, HUP, IN, LISTENER, OFile, OUT,
    RDHUP, RDNORM, READ_SIZE, SIGINFO_SIZE, TOKEN_FILE_MASK, TOKEN_MAGIC, WAKE_KEY, WRBAND,
    WRNORM)
from fuzz.kernel.io_uring import Request
from fuzz.kernel.select import PollEntry

if TYPE_CHECKING:
    from fuzz.kernel.base import Process, WaitQueue


class FileTable:
    """fd tables, file references, and the files' read, write and ->poll."""

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

    def _op_epoll_create_size(self, proc, step):
        """epoll_create(size): a size of 0 or below is EINVAL, else epoll_create1(0)."""
        if step.size <= 0:
            raise Errno("EINVAL")
        return self._create(proc, step)
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


    def _op_getfd(self, proc, step):
        fd = self.num(proc, step.h)
        self.lookup(proc, fd)
        return P.expected_outcome(step, ret=int(fd in proc.cloexec))
