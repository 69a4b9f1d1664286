"""Write a Program out as a standalone C reproducer.

    from fuzz.reproducer import write_reproducer
    text = write_reproducer(program, profile="stock", title=None)

The result is one C file that a kernel developer builds with `gcc -o repro
repro.c` (libc and kernel uapi headers only) and runs as root or as any user.
It carries the executor's semantics (native/executor.c) exactly:

* a forked target in its own process group (PR_SET_PDEATHSIG, no_new_privs,
  fds above 2 closed) under a seccomp filter that traps one magic ioctl
  (0x46445251, args: fd, step, action, extra) with SECCOMP_RET_USER_NOTIF;
  the parent supervises: it takes pipe and socket peers with pidfd_getfd,
  writes injected tokens, answers replaces with SECCOMP_IOCTL_NOTIF_ADDFD
  (SETFD, then NOTIF_SEND; or SETFD|SEND followed by a sync trap);
* the same token scheme (pipe/socket 0x544f4b454e000000|file, eventfd
  ((file+1)<<20)|1, timerfd interval (file+1)*100000000 s, signalfd SIGRTMIN+4+k);
* the target's steps written out one after another as C statements, each
  with its describe() text as a comment; the supervisor is one switch on the
  step index, generated from the program; the supervisor's own steps (notify
  holds: raw ADDFD, respond, sup_* views, kill_target; and the steps after
  exit_target) are written out the same way inside that switch, in
  before_recv() (id="pending") and in after_target();
* each step's outcome printed exactly as str(Outcome) renders it (handle
  and file names, errno names, sorted fdinfo lines), compared with the
  expected trace under the chosen profile, KTAP-ish output and kselftest
  exit codes (0 pass, 1 fail, 4 skip).

    python -m fuzz.reproducer --case NAME [--profile P] [-o FILE]
    python -m fuzz.reproducer --list
"""
from __future__ import annotations

import argparse
import errno as errno_mod
import re
import sys

from native import program as P
from native.trace import EPOLL_BITS

# The step ops written out (the target's own steps and its straight-line supervisor).
SUPPORTED_OPS = ("pipe", "socketpair", "eventfd", "epoll_create", "signalfd", "timerfd", "memfd",
                 "dup", "dup2", "dup3", "close", "epoll_ctl", "inject", "drain", "wait", "read",
                 "replace", "fdinfo", "kcmp_epoll_tfd", "hangup", "notify", "exit_target", "getfd",
                 # the supervisor's steps: inside a notify hold, or after the target's end
                 "addfd", "respond", "sup_fdinfo", "sup_wait", "sup_kcmp", "sup_inject",
                 "kill_target", "listener_wait", "notif_recv")
SUP_OPS = frozenset(getattr(P, "SUPERVISOR_OPS", ("addfd", "respond", "sup_fdinfo", "sup_wait",
                                                  "sup_kcmp", "sup_inject", "kill_target",
                                                  "listener_wait", "notif_recv")))
ADDFD_FLAG_SETFD = getattr(P, "ADDFD_FLAG_SETFD", 1)
ADDFD_FLAG_SEND = getattr(P, "ADDFD_FLAG_SEND", 2)
MAX_EVENTS = 32
MAX_LINES = 32
TIMEOUT_S = 10

MEMFD = getattr(P, "MEMFD", "memfd")
KIND_CONST = {P.PIPE: "KIND_PIPE", P.SOCKET: "KIND_SOCKET", P.EVENTFD: "KIND_EVENTFD",
              P.EPOLL: "KIND_EPOLL", P.SIGNALFD: "KIND_SIGNALFD", P.TIMERFD: "KIND_TIMERFD",
              MEMFD: "KIND_MEMFD"}
FS_OF_KIND = {P.PIPE: "pipefs", P.SOCKET: "sockfs", MEMFD: "tmpfs"}   # as native/executor.py
CTL_CONST = {P.ADD: "EPOLL_CTL_ADD", P.MOD: "EPOLL_CTL_MOD", P.DEL: "EPOLL_CTL_DEL"}
# glibc's <sys/epoll.h> names every bit but NVAL.
EPOLL_C_NAMES = {name: f"EPOLL{name}" for name, _ in EPOLL_BITS if name != "NVAL"}


# --------------------------------------------------------------------------
# small text helpers

def c_string(text: str) -> str:
    """A C string literal for text (UTF-8, escaped)."""
    out = []
    for b in text.encode():
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """Text safe inside a /* */ comment."""
    return text.replace("*/", "* /").replace("/*", "/ *")


def c_mask(mask: int) -> str:
    """epoll bits as C: EPOLLIN | EPOLLET, unnamed bits in hex."""
    mask &= 0xFFFFFFFF
    parts, rest = [], mask
    for name, bit in EPOLL_BITS:
        if mask & bit and name in EPOLL_C_NAMES:
            parts.append(EPOLL_C_NAMES[name])
            rest &= ~bit
    if rest:
        parts.append(f"{rest:#x}u")
    return " | ".join(parts) if parts else "0"


def _idents(names: list[str], prefix: str) -> list[str]:
    """C identifiers for names: prefix + the name with non-identifier characters replaced."""
    out, seen = [], set()
    for i, name in enumerate(names):
        ident = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
        if ident in seen:
            ident = f"{ident}_{i}"
        seen.add(ident)
        out.append(ident)
    return out


def _errno_table() -> str:
    """Python's errno names (what the executor prints), as a C table keyed by the C macros."""
    names = [name for _, name in sorted(errno_mod.errorcode.items())]
    rows = []
    for i in range(0, len(names), 6):
        rows.append("\t" + " ".join(f"E({n})," for n in names[i:i + 6]))
    return "\n".join(rows)


# --------------------------------------------------------------------------
# the fixed machinery, emitted piece by piece as the program needs it

PRELUDE = r"""#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>		/* before linux/seccomp.h, which uses _IOWR */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/* Fallbacks for headers older than the kernel. */
#ifndef SECCOMP_IOC_MAGIC
#define SECCOMP_IOC_MAGIC '!'
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SETFD
#define SECCOMP_ADDFD_FLAG_SETFD (1UL << 0)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_ADDFD
struct seccomp_notif_addfd {
	__u64 id;
	__u32 flags;
	__u32 srcfd;
	__u32 newfd;
	__u32 newfd_flags;
};
#define SECCOMP_IOCTL_NOTIF_ADDFD SECCOMP_IOW(3, struct seccomp_notif_addfd)
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef KCMP_EPOLL_TFD
#define KCMP_EPOLL_TFD 7
#endif

#if defined(__x86_64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define AUDIT_ARCH_SELF AUDIT_ARCH_RISCV64
#elif defined(__s390x__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define AUDIT_ARCH_SELF AUDIT_ARCH_PPC64LE
#elif defined(__powerpc64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_PPC64
#elif defined(__arm__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_ARM
#else
#error "unknown architecture: add its AUDIT_ARCH_* here"
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))
#define ARG_HI(n) (offsetof(struct seccomp_data, args[n]) + 4)
#else
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]) + 4)
#define ARG_HI(n) (offsetof(struct seccomp_data, args[n]))
#endif

#define TRAP_IOCTL 0x46445251U		/* "FDRQ": the one trapped ioctl request */
#define TOKEN_MAGIC 0x544f4b454e000000ULL	/* "TOKEN" in the top five bytes */
#define TOKEN_FILE_MASK 0xffffffULL
#define EFD_COUNT_BITS 20
#define TIMEOUT_S __TIMEOUT__			/* the whole run, then the target is killed */
#define MAX_EVENTS __MAX_EVENTS__
#define MAX_LINES __MAX_LINES__
#define NO_HANDLE (-1)
#define ANON_INODE (-2)

/* What a trapped ioctl asks the supervisor for (its fourth argument). */
enum { ACT_HANDOFF = 1, ACT_INJECT, ACT_REPLACE, ACT_SYNC, ACT_HANGUP, ACT_NOTIFY };
enum { KIND_PIPE = 1, KIND_SOCKET, KIND_EVENTFD, KIND_EPOLL, KIND_SIGNALFD, KIND_TIMERFD,
       KIND_MEMFD };
/* How report() renders a step's outcome. */
enum show { SHOW_INT, SHOW_FD, SHOW_RET_HANDLE, SHOW_ADDFD, SHOW_ADDFD_SEND, SHOW_WAIT,
	    SHOW_READ, SHOW_FDINFO };
#define TEXT_MAX 8192			/* one step's printed outcome */
"""

STRUCTS = r"""
struct line {				/* one tfd: line of an epoll's fdinfo */
	int tfd, tfd_handle;
	unsigned int events, sdev;
	unsigned long long data, ino;
	long long pos;
	int fields;			/* how many fields the kernel printed */
	int ino_file;			/* file with that inode, ANON_INODE if shared */
};

struct outcome {			/* what one step did */
	long ret;
	int err;			/* errno, when ret < 0 */
	int ret_handle;			/* addfd, notify: the handle holding ret */
	int target_fd, target_handle;	/* replace via ADDFD: the number asked for */
	long sysret;			/* replace via ADDFD: the trapped ioctl's return */
	int syserr;
	struct epoll_event ev[MAX_EVENTS];	/* wait */
	int reached, count;		/* read, drain: whose tokens came back, how many */
	int nlines;			/* fdinfo */
	struct line line[MAX_LINES];
};

struct file_inode { int known; dev_t dev; ino_t ino; };

/* Shared between target and supervisor (MAP_SHARED, set up before fork).
 * Outcomes are printed in step order as they become known: the supervisor's
 * steps inside a hold are known before the trapped step they interrupt. */
struct shared {
	volatile int step;		/* the step being executed */
	volatile int printed;		/* steps printed so far */
	volatile int mismatches;
	volatile int finished;
	volatile int killed;		/* by a kill_target step: not a crash */
	volatile int skip;		/* index into skip_reason[] */
	volatile int setup_err;
	char setup_where[64];
	volatile long addfd_ret[NSTEPS + 1];	/* replace via ADDFD: the supervisor's ioctl */
	volatile int addfd_err[NSTEPS + 1];
	int hfd[NHANDLES + 1];		/* a handle's fd number while open, else -1 */
	int hnum[NHANDLES + 1];		/* the last number it held, while that is free */
	struct file_inode file_inode[NFILES + 1];	/* (dev, ino) of each file, for fdinfo */
	volatile char ready[NSTEPS + 1], differs[NSTEPS + 1];
	char text[NSTEPS + 1][TEXT_MAX];	/* each step's outcome, as printed */
};

const char *const skip_reason[] = { NULL, "no_user_notif", "no_addfd", "no_addfd_send", "no_kcmp" };
enum { SKIP_NONE, SKIP_NO_USER_NOTIF, SKIP_NO_ADDFD, SKIP_NO_ADDFD_SEND, SKIP_NO_KCMP };

struct shared *sh;
int *hfd, *hnum;		/* the target's handle table (in sh: the supervisor sees it too) */
struct file_inode *file_inode;
int file_signo[NFILES + 1];	/* signalfd files: their signal, SIGRTMIN+4+k */
int peer[NFILES + 1];		/* supervisor: its end of each pipe and socketpair */
int kept[NSTEPS + 1], nkept;	/* supervisor: copies kept by replace(..., keep) */
int listener = -1, pidfd = -1;	/* supervisor */

/* After an ADDFD with SEND answered a hold: wait until the target, running
 * again, has returned to user space and trapped for the sync. */
static void __attribute__((unused)) wait_sync(void)
{
	struct pollfd pf = { .fd = listener, .events = POLLIN };

	poll(&pf, 1, 10000);
}
uint64_t last_id;		/* supervisor: the previous notification's id */
int target_gone;		/* supervisor: a kill_target step ended the target */
long long deadline_ms;
pid_t target_pid;
volatile sig_atomic_t timed_out;

/* The machinery, defined at the end of the file. */
long trap(int fd, int step, int action, int extra);
void begin(int step, struct outcome *o);
void report(int step, enum show show, struct outcome *o);
void report_text(int step, const char *got);
void print_ready(void);
int num(int h);
void set_handle(int h, int fd);
void claim(int fd);
int handle_of(int fd);
void record_inode(int file, int fd);
int open_pipe(int *other);
int open_socketpair(int *other);
int hand_over(int step, int fd, int other);
int new_signalfd(int signo);
int new_memfd(int file);
int arm_timer(int fd, int file);
void read_step(int fd, int drain, struct outcome *o);
void read_fdinfo(pid_t pid, int fd, struct outcome *o);
long kcmp_tfd(pid_t pid, int ep, int tfd, int toff, int against);
long write_token(int file);
long raw_addfd(uint64_t id, uint32_t flags, int src, uint32_t newfd, uint32_t newfd_flags,
	       size_t size, int tail_nonzero);
long notif_send(uint64_t id, long long val, int error);
void sup_wait(int ep, int maxevents, struct outcome *o);
void listener_wait(uint32_t events, uint64_t data, int maxevents, struct outcome *o);
void notif_recv(struct outcome *o);
void kill_target(struct outcome *o);
int wait_gone(void);
uint32_t target_nofile(void);
long long now_ms(void);
void answer(const struct seccomp_notif *n);
void before_recv(void);
void after_target(void);
void show_fdinfo(char *got, size_t size, const struct outcome *o);
const char *errname(int err);
void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mask_names(char *buf, size_t size, unsigned int mask);
void respond(const struct seccomp_notif *n, long val, int err);
void take_peer(const struct seccomp_notif *n, int file);
void inject_token(const struct seccomp_notif *n, int file);
void hang_up(const struct seccomp_notif *n, int file);
void addfd(const struct seccomp_notif *n, int step, int src, unsigned int flags,
	   unsigned int newfd_flags, int keep, int skip_if_missing);
"""

HANDLES = r"""
/* ---- the target's fd table, in handles ----------------------------------- */

/* A handle's number: the fd it holds, or the number it last held while free. */
int num(int h)
{
	if (h < 0 || h >= NHANDLES)
		return -1;
	return hfd[h] >= 0 ? hfd[h] : hnum[h];
}

/* A number was (re)allocated: closed handles that remembered it lose it. */
void claim(int fd)
{
	for (int j = 0; j < NHANDLES; j++)
		if (hfd[j] < 0 && hnum[j] == fd)
			hnum[j] = -1;
}

void set_handle(int h, int fd)
{
	claim(fd);
	hfd[h] = hnum[h] = fd;
}

/* The first handle holding fd now, or NO_HANDLE. */
int handle_of(int fd)
{
	for (int j = 0; j < NHANDLES; j++)
		if (hfd[j] == fd)
			return j;
	return NO_HANDLE;
}

long trap(int fd, int step, int action, int extra)
{
	return syscall(__NR_ioctl, fd, TRAP_IOCTL, step, action, extra, 0);
}

void begin(int step, struct outcome *o)
{
	sh->step = step;
	memset(o, 0, sizeof(*o));
	o->reached = o->ret_handle = NO_HANDLE;
}

/* kcmp(KCMP_EPOLL_TFD): is the file epoll ep holds under number tfd (its toff-th
 * entry) the file at against?  0 same; kcmp orders by obfuscated pointers, so
 * callers fold any "differs" (>0) to 1. */
long kcmp_tfd(pid_t pid, int ep, int tfd, int toff, int against)
{
	struct { uint32_t efd, tfd, toff; } slot = { ep, tfd, toff };	/* kcmp_epoll_slot */

	return syscall(__NR_kcmp, pid, pid, KCMP_EPOLL_TFD, against, &slot);
}
"""

RECORD_INODE = r"""
/* fdinfo names a tfd's inode: remember each file's (dev, ino) when it appears. */
void record_inode(int file, int fd)
{
	struct stat st;

	if (file_inode[file].known || fstat(fd, &st) != 0)
		return;
	file_inode[file].dev = st.st_dev;
	file_inode[file].ino = st.st_ino;
	file_inode[file].known = 1;
}
"""

OPEN_PIPE = r"""
/* The read end of a new pipe; *other gets the write end. */
int open_pipe(int *other)
{
	int p[2];

	*other = -1;
	if (pipe2(p, O_NONBLOCK) < 0)
		return -1;
	*other = p[1];
	return p[0];
}
"""

OPEN_SOCKETPAIR = r"""
/* One end of a new AF_UNIX stream socketpair; *other gets the other end. */
int open_socketpair(int *other)
{
	int p[2];

	*other = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p) < 0)
		return -1;
	*other = p[1];
	return p[0];
}
"""

HAND_OVER = r"""
/* Target: the supervisor takes our peer end with pidfd_getfd; then we close it. */
int hand_over(int step, int fd, int other)
{
	int err;

	if (fd < 0 || other < 0)
		return fd;
	if (trap(other, step, ACT_HANDOFF, -1) < 0) {
		err = errno;
		close(other);
		close(fd);
		errno = err;
		return -1;
	}
	close(other);
	return fd;
}
"""

NEW_SIGNALFD = r"""
/* A signalfd for one signal (blocked in the target): raising it is the token. */
int new_signalfd(int signo)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, signo);
	return signalfd(-1, &set, SFD_NONBLOCK);
}
"""

NEW_MEMFD = r"""
/* A memfd (a regular file, which epoll refuses) whose content is its token. */
int new_memfd(int file)
{
	uint64_t tok = TOKEN_MAGIC | (uint64_t)file;
	int fd = memfd_create("fdr", 0);

	if (fd >= 0 && pwrite(fd, &tok, sizeof(tok), 0) != sizeof(tok)) {
		close(fd);
		fd = -1;
	}
	return fd;
}
"""

HANG_UP = r"""
/* Close our peer of a pipe or socketpair: its reader sees HUP (a socket RDHUP). */
void hang_up(const struct seccomp_notif *n, int file)
{
	if (peer[file] < 0) {
		respond(n, -1, EBADF);
		return;
	}
	close(peer[file]);
	peer[file] = -1;
	respond(n, 0, 0);
}
"""

ARM_TIMER = r"""
/* Make a timerfd readable: an absolute expiry in the past; the interval,
 * (file+1)*100000000 s, is its token.  Then wait until it reports readable. */
int arm_timer(int fd, int file)
{
	struct itimerspec its = { .it_interval = { (time_t)(file + 1) * 100000000L, 0 },
				  .it_value = { 0, 1 } };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r = timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);

	if (r == 0) {
		r = poll(&pfd, 1, 5000);
		if (r == 1)
			r = 0;
		else if (r == 0) {
			r = -1;
			errno = ETIMEDOUT;
		}
	}
	return r;
}
"""

READ_STEP = r"""
/* Which file did these bytes come from?  Sets o->reached and o->count. */
void decode(int fd, const unsigned char *buf, long n, struct outcome *o)
{
	struct itimerspec its;
	uint64_t v = 0;

	o->reached = NO_HANDLE;
	o->count = 0;
	if (n <= 0)
		return;
	memcpy(&v, buf, n >= 8 ? 8 : 0);
	if (n % 8 == 0 && (v & ~TOKEN_FILE_MASK) == TOKEN_MAGIC) {	/* a pipe or socket token */
		int f = v & TOKEN_FILE_MASK;

		for (long i = 8; i < n; i += 8) {
			uint64_t w;

			memcpy(&w, buf + i, 8);
			if (w != v)
				return;		/* tokens of two files: undecodable */
		}
		if (f < NFILES) {
			o->reached = f;
			o->count = n / 8;
		}
		return;
	}
	/* After the tokens: 16 tokens are 128 bytes too. */
	if (n % sizeof(struct signalfd_siginfo) == 0) {
		const struct signalfd_siginfo *si = (const void *)buf;

		for (int f = 0; f < NFILES; f++)
			if (file_kind[f] == KIND_SIGNALFD && (int)si->ssi_signo == file_signo[f])
				o->reached = f;
		o->count = n / sizeof(struct signalfd_siginfo);
		return;
	}
	if (n != 8)
		return;
	if (timerfd_gettime(fd, &its) == 0) {		/* a timerfd: its interval */
		int f = its.it_interval.tv_sec / 100000000L - 1;

		if (f >= 0 && f < NFILES && file_kind[f] == KIND_TIMERFD) {
			o->reached = f;
			o->count = 1;
		}
		return;
	}
	/* An eventfd counter: count injections of ((file+1) << 20 | 1). */
	uint64_t count = v & ((1ULL << EFD_COUNT_BITS) - 1), q = v >> EFD_COUNT_BITS;

	if (count && q % count == 0) {
		uint64_t f = q / count - 1;

		if (f < (uint64_t)NFILES && file_kind[f] == KIND_EVENTFD) {
			o->reached = f;
			o->count = count;
		}
	}
}

/* read(), once or (drain) until EAGAIN, and name whose tokens came back. */
void read_step(int fd, int drain, struct outcome *o)
{
	unsigned char buf[4096], all[4096];
	long total = 0, n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN && drain && total)
				break;
			if (errno == EAGAIN && drain) {
				o->ret = 0;
				o->reached = NO_HANDLE;
				return;
			}
			o->ret = -1;
			o->err = errno;
			return;
		}
		if (total + n <= (long)sizeof(all))
			memcpy(all + total, buf, n);
		total += n;
		if (!drain || n == 0)
			break;
	}
	o->ret = total;
	decode(fd, all, total < (long)sizeof(all) ? total : (long)sizeof(all), o);
}
"""

READ_FDINFO = r"""
/* Parse /proc/<pid|self>/fdinfo/<ep>'s tfd: lines; name each tfd's handle and inode's file. */
void read_fdinfo(pid_t pid, int fd, struct outcome *o)
{
	char path[64], buf[16384];
	long n = 0, r;
	int pfd;

	if (pid)	/* the supervisor reads the target's */
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	pfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pfd < 0) {
		o->ret = -1;
		o->err = errno;
		return;
	}
	while (n < (long)sizeof(buf) - 1 && (r = read(pfd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(pfd);
	buf[n] = 0;
	o->nlines = 0;
	for (char *ln = buf; ln && *ln; ln = strchr(ln, '\n') ? strchr(ln, '\n') + 1 : NULL) {
		struct line *l = &o->line[o->nlines];
		unsigned long long data = 0, ino = 0;
		long long pos = 0;
		unsigned int events = 0, sdev = 0;
		int tfd, got;

		if (strncmp(ln, "tfd:", 4) != 0)
			continue;
		if (o->nlines == MAX_LINES)
			break;
		got = sscanf(ln, "tfd: %d events: %x data: %llx pos:%lli ino:%llx sdev:%x",
			     &tfd, &events, &data, &pos, &ino, &sdev);
		if (got < 3)
			continue;
		l->tfd = tfd;
		l->tfd_handle = handle_of(tfd);
		l->events = events;
		l->data = data;
		l->pos = pos;
		l->ino = ino;
		l->sdev = sdev;
		l->fields = got;
		l->ino_file = NO_HANDLE;
		if (got == 6) {
			int matches = 0;

			for (int f = 0; f < NFILES; f++)
				if (file_inode[f].known && file_inode[f].ino == ino &&
				    major(file_inode[f].dev) == (sdev >> 20) &&
				    minor(file_inode[f].dev) == (sdev & 0xfffff)) {
					matches++;
					l->ino_file = f;
				}
			if (matches > 1)
				l->ino_file = ANON_INODE;	/* eventfd, epoll, ...: one shared inode */
		}
		o->nlines++;
	}
	o->ret = o->nlines;
}

struct shown_line {
	char tfd[64], ino[64], text[512];
	unsigned long long data;
	unsigned int events;
	int index;
};

/* fdinfo lists entries by kernel pointer: sort them by (tfd, ino, data, events)
 * as the suite does (FdinfoLine.sort_key); ties keep the kernel's order. */
int line_order(const void *a, const void *b)
{
	const struct shown_line *x = a, *y = b;
	int c = strcmp(x->tfd, y->tfd);

	if (!c)
		c = strcmp(x->ino, y->ino);
	if (!c)
		c = x->data < y->data ? -1 : x->data > y->data;
	if (!c)
		c = x->events < y->events ? -1 : x->events > y->events;
	return c ? c : x->index - y->index;
}

void show_fdinfo(char *got, size_t size, const struct outcome *o)
{
	struct shown_line shown[MAX_LINES];

	for (int k = 0; k < o->nlines; k++) {
		const struct line *l = &o->line[k];
		struct shown_line *s = &shown[k];
		const char *ino = "?", *sdev = "?";
		char events[200], tfd[64];

		if (l->tfd_handle >= 0)
			snprintf(tfd, sizeof(tfd), "%s", handle_name[l->tfd_handle]);
		else
			snprintf(tfd, sizeof(tfd), "%d", l->tfd);
		if (l->fields < 6) {
			ino = "?";
			sdev = "?";
		} else if (l->ino_file == ANON_INODE) {
			ino = "anon_inode";
			sdev = "anon_inodefs";
		} else if (l->ino_file >= 0) {
			ino = file_name[l->ino_file];
			sdev = file_fs[l->ino_file];
		}
		snprintf(s->tfd, sizeof(s->tfd), "%s", tfd);
		snprintf(s->ino, sizeof(s->ino), "%s", ino);
		s->data = l->data;
		s->events = l->events;
		s->index = k;
		mask_names(events, sizeof(events), l->events);
		snprintf(s->text, sizeof(s->text),
			 "tfd=%.63s events=%s data=0x%llx pos=%lld ino=%.63s sdev=%.63s",
			 tfd, events, l->data, l->fields < 6 ? 0LL : l->pos, ino, sdev);
	}
	qsort(shown, o->nlines, sizeof(shown[0]), line_order);
	append(got, size, "%ld {", o->ret);
	for (int k = 0; k < o->nlines; k++)
		append(got, size, "%s%s", k ? "; " : "", shown[k].text);
	append(got, size, "}");
}
"""

RENDER = r"""
/* ---- outcomes, printed as the suite prints them ----------------------------- */

#define E(name) { name, #name }
const struct { int value; const char *name; } errnames[] = {
__ERRNO_TABLE__
};
#undef E

const char *errname(int err)
{
	static char other[16];

	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].value == err)
			return errnames[i].name;
	snprintf(other, sizeof(other), "E%d", err);
	return other;
}

void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* epoll bits as IN|ERR|HUP; bits without a name in hex; no bits: 0. */
void mask_names(char *buf, size_t size, unsigned int mask)
{
	static const struct { const char *name; unsigned int bit; } bits[] = {
		{ "IN", 0x001 }, { "PRI", 0x002 }, { "OUT", 0x004 }, { "ERR", 0x008 },
		{ "HUP", 0x010 }, { "NVAL", 0x020 }, { "RDNORM", 0x040 }, { "RDBAND", 0x080 },
		{ "WRNORM", 0x100 }, { "WRBAND", 0x200 }, { "MSG", 0x400 }, { "RDHUP", 0x2000 },
		{ "EXCLUSIVE", 1U << 28 }, { "WAKEUP", 1U << 29 }, { "ONESHOT", 1U << 30 },
		{ "ET", 1U << 31 },
	};
	unsigned int rest = mask;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (mask & bits[i].bit) {
			append(buf, size, "%s%s", buf[0] ? "|" : "", bits[i].name);
			rest &= ~bits[i].bit;
		}
	if (rest)
		append(buf, size, "%s0x%x", buf[0] ? "|" : "", rest);
	if (!buf[0])
		append(buf, size, "0");
}

/* Print "step N: what -> outcome"; compare it with the expected outcome. */
void report(int step, enum show show, struct outcome *o)
{
	char got[8192] = "", sys[64] = "";

	if (show == SHOW_ADDFD || show == SHOW_ADDFD_SEND) {
		int h = o->sysret >= 0 ? handle_of(o->sysret) : NO_HANDLE;

		if (o->sysret < 0)
			snprintf(sys, sizeof(sys), " sys=-1 %s", errname(o->syserr));
		else if (show == SHOW_ADDFD_SEND && h >= 0)
			snprintf(sys, sizeof(sys), " sys=%s", handle_name[h]);
		else
			snprintf(sys, sizeof(sys), " sys=%ld", o->sysret);
	}
	if (o->ret < 0) {
		append(got, sizeof(got), "%ld %s%s", o->ret, errname(o->err), sys);
	} else {
		switch (show) {
		case SHOW_RET_HANDLE:
			if (o->ret_handle >= 0)
				append(got, sizeof(got), "%s", handle_name[o->ret_handle]);
			else
				append(got, sizeof(got), "%ld", o->ret);
			break;
		case SHOW_FD:
			if (handle_of(o->ret) >= 0)
				append(got, sizeof(got), "%s", handle_name[handle_of(o->ret)]);
			else
				append(got, sizeof(got), "%ld", o->ret);
			break;
		case SHOW_ADDFD:
		case SHOW_ADDFD_SEND:
			if (o->ret == o->target_fd)
				append(got, sizeof(got), "%s%s", handle_name[o->target_handle], sys);
			else
				append(got, sizeof(got), "%ld%s", o->ret, sys);
			break;
		case SHOW_WAIT:
			append(got, sizeof(got), "%ld [", o->ret);
			for (int k = 0; k < o->ret; k++) {
				char events[256];

				mask_names(events, sizeof(events), o->ev[k].events);
				append(got, sizeof(got), "%s%s 0x%llx", k ? ", " : "", events,
				       (unsigned long long)o->ev[k].data.u64);
			}
			append(got, sizeof(got), "]");
			break;
		case SHOW_READ:
			if (o->ret == 0)
				append(got, sizeof(got), "0");
			else
				append(got, sizeof(got), "%ld reached=%s x%d", o->ret,
				       o->reached >= 0 ? file_name[o->reached] : "?", o->count);
			break;
		case SHOW_FDINFO:
__SHOW_FDINFO__
			break;
		default:
			append(got, sizeof(got), "%ld", o->ret);
		}
	}
	report_text(step, got);
}

/* Record a step's outcome, compare it with the expected one, print what is ready. */
void report_text(int step, const char *got)
{
	snprintf(sh->text[step], TEXT_MAX, "%s", got);
	if (sh->differs[step]) {	/* reported again (a pending step re-run) */
		sh->differs[step] = 0;
		sh->mismatches--;
	}
	if (strcmp(got, expected[step]) != 0) {
		sh->differs[step] = 1;
		sh->mismatches++;
	}
	sh->ready[step] = 1;
	print_ready();
}

/* Print "step N: what -> outcome" for every step known, in order. */
void print_ready(void)
{
	while (sh->printed < NSTEPS && sh->ready[sh->printed]) {
		int i = sh->printed;

		printf("step %d: %s -> %s\n", i, describe[i], sh->text[i]);
		if (sh->differs[i])
			printf("# step %d expected: %s\n", i, expected[i]);
		sh->printed = i + 1;
	}
	fflush(stdout);
}
"""

SUPERVISOR_HELPERS = r"""
/* ---- supervisor helpers --------------------------------------------------- */

void respond(const struct seccomp_notif *n, long val, int err)
{
	struct seccomp_notif_resp resp = { .id = n->id, .val = val, .error = err ? -err : 0 };

	/* ENOENT: the target died meanwhile; nothing waits for the answer. */
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}
"""

TAKE_PEER = r"""
/* The target hands over the peer end of a new pipe or socketpair (args[0]). */
void take_peer(const struct seccomp_notif *n, int file)
{
	long r = syscall(__NR_pidfd_getfd, pidfd, (int)n->data.args[0], 0);

	if (r >= 0)
		peer[file] = r;
	respond(n, r < 0 ? -1 : 0, r < 0 ? errno : 0);
}
"""

INJECT_TOKEN = r"""
/* Write a file's token, TOKEN_MAGIC | file, through the peer end we hold. */
long write_token(int file)
{
	uint64_t tok = TOKEN_MAGIC | (uint64_t)file;

	if (peer[file] < 0) {
		errno = EBADF;
		return -1;
	}
	if (file_kind[file] == KIND_SOCKET)
		return send(peer[file], &tok, sizeof(tok), MSG_NOSIGNAL | MSG_DONTWAIT);
	return write(peer[file], &tok, sizeof(tok));	/* SIGPIPE is ignored here */
}

void inject_token(const struct seccomp_notif *n, int file)
{
	long r = write_token(file);

	respond(n, r, r < 0 ? errno : 0);
}
"""

ADDFD = r"""
/* Install src at the number the target asked for (args[0]) with ADDFD(SETFD),
 * and answer its ioctl: NOTIF_SEND with 0, or (SEND) the ADDFD itself does. */
void addfd(const struct seccomp_notif *n, int step, int src, unsigned int flags,
	   unsigned int newfd_flags, int keep, int skip_if_missing)
{
	struct seccomp_notif_addfd a = { .id = n->id, .flags = flags, .srcfd = src,
					 .newfd = (uint32_t)n->data.args[0],
					 .newfd_flags = newfd_flags };
	long r;

	if (src < 0) {
		sh->addfd_ret[step] = -1;
		sh->addfd_err[step] = errno;
		respond(n, 0, errno);
		return;
	}
	r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	sh->addfd_ret[step] = r;
	sh->addfd_err[step] = r < 0 ? errno : 0;
	if (r < 0 && skip_if_missing && (errno == ENOTTY || errno == EINVAL))
		sh->skip = (flags & SECCOMP_ADDFD_FLAG_SEND) ? SKIP_NO_ADDFD_SEND : SKIP_NO_ADDFD;
	if (keep)
		kept[nkept++] = src;	/* our copy stays open to the end */
	else
		close(src);
	if (r < 0)
		respond(n, 0, sh->addfd_err[step]);	/* relay the failure to the target */
	else if (!(flags & SECCOMP_ADDFD_FLAG_SEND))
		respond(n, 0, 0);
}
"""

SUP_STEPS = r"""
/* ---- the supervisor's own steps (inside a hold, or after the target) -------- */

/* SECCOMP_IOCTL_NOTIF_ADDFD exactly as asked, good or bad: size is the struct
 * size the ioctl number encodes; tail_nonzero sets a larger struct's last byte. */
long raw_addfd(uint64_t id, uint32_t flags, int src, uint32_t newfd, uint32_t newfd_flags,
	       size_t size, int tail_nonzero)
{
	union {
		struct seccomp_notif_addfd a;
		unsigned char bytes[64];
	} u;

	memset(&u, 0, sizeof(u));
	if (size > sizeof(u))
		size = sizeof(u);
	u.a.id = id;
	u.a.flags = flags;
	u.a.srcfd = (uint32_t)src;	/* -1: no such fd */
	u.a.newfd = newfd;
	u.a.newfd_flags = newfd_flags;
	if (size > sizeof(u.a) && tail_nonzero)
		u.bytes[size - 1] = 1;
	return ioctl(listener, _IOC(_IOC_WRITE, SECCOMP_IOC_MAGIC, 3, size), &u);
}

/* The target's RLIMIT_NOFILE: the first number it cannot have. */
uint32_t target_nofile(void)
{
	struct rlimit rl = { 0, 0 };

	prlimit(target_pid, RLIMIT_NOFILE, NULL, &rl);
	return (uint32_t)rl.rlim_cur;
}

/* SECCOMP_IOCTL_NOTIF_SEND: the trapped syscall returns val, or -1 with error. */
long notif_send(uint64_t id, long long val, int error)
{
	struct seccomp_notif_resp resp = { .id = id, .val = val, .error = -error };

	return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* epoll_wait(timeout 0) on our own pidfd_getfd copy of the target's epoll. */
void sup_wait(int ep, int maxevents, struct outcome *o)
{
	int fd = syscall(__NR_pidfd_getfd, pidfd, ep, 0);

	if (fd < 0) {
		o->ret = -1;
		o->err = errno;
		return;
	}
	o->ret = epoll_wait(fd, o->ev, maxevents, 0);
	o->err = errno;
	close(fd);
}

/* Our listener in a fresh epoll: is a notification pending? */
void listener_wait(uint32_t events, uint64_t data, int maxevents, struct outcome *o)
{
	struct epoll_event e = { .events = events, .data.u64 = data };
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return;
	if (epoll_ctl(fd, EPOLL_CTL_ADD, listener, &e) == 0) {
		o->ret = epoll_wait(fd, o->ev, maxevents, 0);
		o->err = errno;
	} else {
		o->ret = -1;
		o->err = errno;
	}
	close(fd);
}

void notif_recv(struct outcome *o)
{
	struct seccomp_notif n;

	memset(&n, 0, sizeof(n));
	o->ret = ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n);
	o->err = errno;
}

/* SIGKILL the target's process group and wait until it is dead. */
void kill_target(struct outcome *o)
{
	sh->killed = 1;
	kill(-target_pid, SIGKILL);
	kill(target_pid, SIGKILL);
	o->ret = wait_gone();
	o->err = o->ret < 0 ? ETIMEDOUT : 0;
	target_gone = 1;
}
"""

RUNTIME = r"""
/* ---- process plumbing ------------------------------------------------------ */

void setup_failed(const char *where)
{
	sh->setup_err = errno;
	snprintf(sh->setup_where, sizeof(sh->setup_where), "%s", where);
	fflush(stdout);
	_exit(3);
}

int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'L';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS) {
		errno = EPROTO;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The target: own process group, dies with us, only fds 0-2 open, and a
 * seccomp filter that sends our magic ioctl (and nothing else) to the
 * supervisor.  Returns with the filter installed and its listener sent. */
void target_setup(int ctl, pid_t supervisor)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_SELF, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TRAP_IOCTL, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
	sigset_t set;
	int fd;

	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		setup_failed("prctl(PR_SET_PDEATHSIG)");
	if (getppid() != supervisor)
		_exit(3);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&set);		/* block exactly the signalfd files' signals */
	for (int f = 0; f < NFILES; f++)
		if (file_kind[f] == KIND_SIGNALFD)
			sigaddset(&set, file_signo[f]);
	sigprocmask(SIG_SETMASK, &set, NULL);
	if (syscall(__NR_close_range, 3, ctl - 1, 0) != 0 ||
	    syscall(__NR_close_range, ctl + 1, ~0U, 0) != 0)
		for (fd = 3; fd < 65536; fd++)
			if (fd != ctl)
				close(fd);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		setup_failed("prctl(PR_SET_NO_NEW_PRIVS)");
	fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		setup_failed("seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)");
	if (send_fd(ctl, fd) < 0)
		setup_failed("sendmsg(listener)");
	close(fd);
	close(ctl);
}

void on_alarm(int sig)
{
	(void)sig;
	if (timed_out++)	/* the supervisor did not get round to it: kill now */
		kill(-target_pid, SIGKILL);
	alarm(2);
}

void print_stack(pid_t pid)
{
	char path[64], buf[2048], *ln, *save = NULL;
	long n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stack", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("# (%s unreadable: %s)\n", path, strerror(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	for (ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
		printf("#   %s\n", ln);
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (until the deadline) for the target to die; it is reaped at the end. */
int wait_gone(void)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	long long left = deadline_ms - now_ms();

	return left > 0 && poll(&pf, 1, left) == 1 ? 0 : -1;
}

int user_notif_available(void)
{
	uint32_t action = SECCOMP_RET_USER_NOTIF;

	return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int finish(int verdict_ok, int skip)
{
	if (skip) {
		printf("ok 1 %s # SKIP %s\n", TEST_NAME, skip_reason[skip]);
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0\n");
		fflush(stdout);
		return 4;
	}
	printf("%s 1 %s\n", verdict_ok ? "ok" : "not ok", TEST_NAME);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n",
	       verdict_ok, !verdict_ok);
	fflush(stdout);
	return verdict_ok ? 0 : 1;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART: wake the loop */
	int ctl[2], status = 0;
	pid_t pid;

	printf("TAP version 13\n1..1\n");
	printf("# %s\n", TITLE);
	fflush(stdout);
	if (!user_notif_available())
		return finish(0, SKIP_NO_USER_NOTIF);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		printf("# mmap: %s\n", strerror(errno));
		return finish(0, 0);
	}
	sh->step = -1;
	hfd = sh->hfd;
	hnum = sh->hnum;
	file_inode = sh->file_inode;
	for (int h = 0; h < NHANDLES; h++)
		hfd[h] = hnum[h] = -1;
	for (int f = 0; f < NFILES; f++)
		peer[f] = -1;
__SIGNOS__	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		printf("# socketpair: %s\n", strerror(errno));
		return finish(0, 0);
	}

	pid_t self = getpid();

	pid = fork();
	if (pid == 0) {
		close(ctl[0]);
		target_setup(ctl[1], self);
		target_steps();
	}
	close(ctl[1]);
	if (pid < 0) {
		printf("# fork: %s\n", strerror(errno));
		return finish(0, 0);
	}
	target_pid = pid;
	setpgid(pid, pid);
	signal(SIGPIPE, SIG_IGN);	/* writing to a peer whose reader is gone: EPIPE */
	sigaction(SIGALRM, &sa, NULL);
	alarm(TIMEOUT_S);
	deadline_ms = now_ms() + TIMEOUT_S * 1000LL;
	pidfd = syscall(__NR_pidfd_open, pid, 0);
	if (pidfd < 0)
		printf("# pidfd_open: %s\n", strerror(errno));
	listener = recv_fd(ctl[0]);	/* or ctl closes: the target's setup failed */
	close(ctl[0]);

	while (listener >= 0 && pidfd >= 0 && !timed_out) {
		struct pollfd pf[2] = { { .fd = listener, .events = POLLIN },
					{ .fd = pidfd, .events = POLLIN } };

		if (poll(pf, 2, -1) < 0)
			continue;	/* EINTR: the alarm */
		if (pf[0].revents & POLLIN) {
			struct seccomp_notif n;

			memset(&n, 0, sizeof(n));
			before_recv();
			if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) == 0)
				answer(&n);
			if (target_gone)
				break;	/* a kill_target step */
			continue;
		}
		if (pf[1].revents || (pf[0].revents & (POLLHUP | POLLERR)))
			break;		/* the target has exited */
	}
	/* The supervisor's steps after the target's end (exit_target or kill_target). */
	if (!timed_out && listener >= 0 && pidfd >= 0 && (sh->finished || sh->killed) &&
	    wait_gone() == 0)
		after_target();
	if (timed_out) {
		print_ready();
		printf("# timeout: the target hung at step %d for %d s; its kernel stack:\n",
		       sh->step, TIMEOUT_S);
		print_stack(pid);
	}
	if (timed_out || !sh->finished) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	alarm(0);
	print_ready();
	if (!timed_out && !sh->finished && !sh->killed) {
		if (sh->setup_where[0])
			printf("# setup failed: %s: %s\n", sh->setup_where, errname(sh->setup_err));
		else if (WIFSIGNALED(status))
			printf("# the target was killed by signal %d at step %d\n", WTERMSIG(status), sh->step);
		else
			printf("# the target exited with %d at step %d\n", WEXITSTATUS(status), sh->step);
	}
	for (int i = sh->printed; i < NSTEPS; i++) {
		if (!sh->ready[i]) {
			printf("# step %d not executed, expected: %s\n", i, expected[i]);
			continue;
		}
		printf("step %d: %s -> %s\n", i, describe[i], sh->text[i]);
		if (sh->differs[i])
			printf("# step %d expected: %s\n", i, expected[i]);
	}
	for (int f = 0; f < NFILES; f++)
		if (peer[f] >= 0)
			close(peer[f]);
	for (int k = 0; k < nkept; k++)
		close(kept[k]);
	if (listener >= 0)
		close(listener);
	if (pidfd >= 0)
		close(pidfd);
	int all = 1;

	for (int i = 0; i < NSTEPS; i++)
		all &= sh->ready[i];
	return finish(!timed_out && (sh->finished || sh->killed) && all && !sh->mismatches,
		      sh->skip);
}
"""


# --------------------------------------------------------------------------
# the generator

class _Writer:
    def __init__(self, program: P.Program, profile: str, timeout_s: int = TIMEOUT_S):
        self.p = program
        self.profile = profile
        self.timeout_s = timeout_s
        self.hid = dict(zip(program.handles, _idents([h.name for h in program.handles], "H_")))
        self.fid = dict(zip(program.files, _idents([f.name for f in program.files], "F_")))
        self.fidx = {f: i for i, f in enumerate(program.files)}
        self.need: set[str] = set()
        self.vars: set[str] = set()
        self.has_fdinfo = any(s.op in P.FDINFO_OPS for s in program.steps)

    # -- expressions
    def H(self, h) -> str:
        return self.hid[h] if h is not None else "NO_HANDLE"

    def num(self, h) -> str:
        return f"num({self.H(h)})" if h is not None else "-1"

    def expected(self, i) -> str:
        return str(self.p.steps[i].expected[self.profile])

    def record(self, file, fd: str, indent: str) -> list[str]:
        if not self.has_fdinfo or file is None:
            return []
        self.need.add("record_inode")
        return [f"{indent}record_inode({self.fid[file]}, {fd});"]

    def make_file_target(self, i: int, kind: str, var: str) -> list[str]:
        """Statements creating a file of kind in the target into var (peer handed over)."""
        if kind == P.PIPE:
            self.need.update({"open_pipe", "hand_over"})
            self.vars.update({"fd", "other"})
            return [f"fd = open_pipe(&other);",
                    f"{var} = hand_over({i}, fd, other);\t/* the supervisor takes the write end */"]
        if kind == P.SOCKET:
            self.need.update({"open_socketpair", "hand_over"})
            self.vars.update({"fd", "other"})
            return [f"fd = open_socketpair(&other);",
                    f"{var} = hand_over({i}, fd, other);\t/* the supervisor takes the other end */"]
        return [f"{var} = {self.make_file_expr(kind, None)};"]

    def make_file_expr(self, kind: str, file) -> str:
        if kind == P.EVENTFD:
            return "eventfd(0, EFD_NONBLOCK)"
        if kind == P.EPOLL:
            return "epoll_create1(0)"
        if kind == P.SIGNALFD:
            self.need.add("new_signalfd")
            return f"new_signalfd(file_signo[{self.fid[file]}])"
        if kind == P.TIMERFD:
            return "timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)"
        if kind == MEMFD:
            self.need.add("new_memfd")
            return f"new_memfd({self.fid[file]})"
        raise P.ProgramError(f"the reproducer writer cannot make a {kind} file")

    # -- the target's steps
    def step_code(self, i: int, s: P.Step) -> list[str]:
        op = s.op
        L: list[str] = []
        if op in P.CREATE_OPS:
            kind = P.OP_KIND[op]
            if kind in P.PEER_KINDS:
                L += self.make_file_target(i, kind, "o.ret")
            else:
                L.append(f"o.ret = {self.make_file_expr(kind, s.file)};")
            L.append("o.err = errno;")
            rec = self.record(s.file, "o.ret", "\t")
            L.append("if (o.ret >= 0) {" if rec else "if (o.ret >= 0)")
            L.append(f"\tset_handle({self.H(s.h)}, o.ret);")
            L += rec + (["}"] if rec else [])
            show = "SHOW_FD"
        elif op in ("dup", "dup2", "dup3"):
            if op == "dup":
                call = f"dup({self.num(s.h2)})"
            elif op == "dup2":
                call = f"dup2({self.num(s.h2)}, {self.num(s.h)})"
            else:
                flag = "O_CLOEXEC" if s.flags & P.O_CLOEXEC else "0"
                call = f"dup3({self.num(s.h2)}, {self.num(s.h)}, {flag})"
            L += [f"o.ret = {call};", "o.err = errno;", "if (o.ret >= 0)",
                  f"\tset_handle({self.H(s.h)}, o.ret);"]
            show = "SHOW_FD"
        elif op == "close":
            L += [f"o.ret = close({self.num(s.h)});", "o.err = errno;", "if (o.ret == 0)",
                  f"\thfd[{self.H(s.h)}] = -1;\t/* the number stays the handle's until reused */"]
            show = "SHOW_INT"
        elif op == "epoll_ctl":
            self.vars.add("ev")
            L += [f"ev = (struct epoll_event){{ .events = {c_mask(s.events)}, .data.u64 = {s.data:#x} }};",
                  f"o.ret = epoll_ctl({self.num(s.ep)}, {CTL_CONST[s.ctl]}, {self.num(s.h)}, &ev);",
                  "o.err = errno;"]
            show = "SHOW_INT"
        elif op == "wait":
            L += [f"o.ret = epoll_wait({self.num(s.ep)}, o.ev, {s.maxevents}, {s.timeout_ms});",
                  "o.err = errno;"]
            show = "SHOW_WAIT"
        elif op == "inject":
            L += self.inject_code(i, s)
            show = "SHOW_INT"
        elif op in ("read", "drain"):
            self.need.add("read_step")
            L.append(f"read_step({self.num(s.h)}, {int(op == 'drain')}, &o);"
                     + ("\t/* read() until EAGAIN */" if op == "drain" else "\t/* one read() */"))
            show = "SHOW_READ"
        elif op == "fdinfo":
            self.need.add("read_fdinfo")
            L.append(f"read_fdinfo(0, {self.num(s.ep)}, &o);\t/* /proc/self/fdinfo/<{s.ep}> */")
            show = "SHOW_FDINFO"
        elif op == "kcmp_epoll_tfd":
            L += [f"o.ret = kcmp_tfd(getpid(), {self.num(s.ep)}, {self.num(s.h)}, {s.toff}, {self.num(s.h2)});",
                  "o.err = errno;",
                  "if (o.ret > 0)",
                  "\to.ret = 1;\t/* kcmp orders by obfuscated pointers: only \"differs\" is stable */"]
            exp = s.expected[self.profile]
            if exp.errno != "ENOSYS":
                L += ["if (o.ret < 0 && o.err == ENOSYS)",
                      "\tsh->skip = SKIP_NO_KCMP;"]
            show = "SHOW_INT"
        elif op == "replace":
            return self.replace_code(i, s)
        elif op == "notify":
            hold = self.holds.get(i, [])
            span = (f"steps {hold[0]}-{hold[-1]} run" if len(hold) > 1 else
                    f"step {hold[0]} runs" if hold else "nothing runs")
            L += [f"o.ret = trap({self.num(s.h)}, {i}, ACT_NOTIFY, -1);\t/* the supervisor's {span} meanwhile */",
                  "o.err = errno;",
                  f"trap(-1, {i}, ACT_SYNC, -1);\t/* stay until the hold is over (a SEND answers early) */",
                  "o.ret_handle = o.ret >= 0 ? handle_of(o.ret) : NO_HANDLE;\t/* the hold's table */"]
            show = "SHOW_RET_HANDLE" if self.sends_in_hold(i) else "SHOW_INT"
        elif op == "exit_target":
            return [f"report({i}, SHOW_INT, &o);",
                    "sh->finished = 1;\t/* the target ends here; the supervisor's steps follow */",
                    "fflush(stdout);", "_exit(0);"]
        elif op == "getfd":
            L += [f"o.ret = fcntl({self.num(s.h)}, F_GETFD);", "o.err = errno;"]
            show = "SHOW_INT"
        elif op == "hangup":
            self.need.add("hang_up")
            L += [f"o.ret = trap(-1, {i}, ACT_HANGUP, -1);\t/* the supervisor closes its peer of {s.file} */",
                  "o.err = errno;"]
            show = "SHOW_INT"
        else:
            raise P.ProgramError(f"the reproducer writer does not know step op {op!r}")
        return L + [f"report({i}, {show}, &o);"]

    def inject_code(self, i: int, s: P.Step) -> list[str]:
        f = s.file
        kind = f.kind
        idx = self.fidx[f]
        if kind in P.PEER_KINDS:
            self.need.add("inject_token")
            return [f"o.ret = trap(-1, {i}, ACT_INJECT, -1);\t/* the supervisor writes token "
                    f"{P_token(idx):#x} to {f}'s peer */", "o.err = errno;"]
        if kind == P.EVENTFD:
            self.vars.add("v")
            unit = ((idx + 1) << 20) | 1
            return [f"v = {unit:#x};\t/* eventfd token: ((file {idx} + 1) << 20) | 1 */",
                    f"o.ret = write({self.num(s.h)}, &v, sizeof(v));", "o.err = errno;"]
        if kind == P.TIMERFD:
            self.need.add("arm_timer")
            return [f"o.ret = arm_timer({self.num(s.h)}, {self.fid[f]});\t/* interval "
                    f"{(idx + 1) * 100000000} s is the token */", "o.err = errno;"]
        if kind == P.SIGNALFD:
            return [f"o.ret = kill(getpid(), file_signo[{self.fid[f]}]);\t/* blocked: queued for the signalfd */",
                    "o.err = errno;"]
        raise P.ProgramError(f"cannot inject a {kind} file")

    def replace_code(self, i: int, s: P.Step) -> list[str]:
        L = [f"dst = {self.num(s.h)};"]
        self.vars.add("dst")
        if s.via in P.ADDFD_VIAS:
            send = s.via == P.ADDFD_SETFD_SEND
            self.need.add("addfd")
            extra = self.num(s.h2) if s.h2 is not None else "-1"
            L += [f"o.sysret = trap(dst, {i}, ACT_REPLACE, {extra});\t/* the supervisor answers with ADDFD */",
                  "o.syserr = errno;",
                  "o.target_fd = dst;",
                  f"o.target_handle = {self.H(s.h)};",
                  ]
            rec = self.record(s.file, "dst", "\t")
            L.append("if (o.sysret >= 0) {" if rec else "if (o.sysret >= 0)")
            L.append(f"\tset_handle({self.H(s.h)}, dst);")
            L += rec + (["}"] if rec else [])
            if send:
                L.append(f"trap(-1, {i}, ACT_SYNC, -1);\t/* wait until the supervisor has dropped its copy */")
            L += [f"o.ret = sh->addfd_ret[{i}];\t/* what the supervisor's ADDFD returned */",
                  f"o.err = sh->addfd_err[{i}];",
                  f"report({i}, {'SHOW_ADDFD_SEND' if send else 'SHOW_ADDFD'}, &o);"]
            return L
        # dup2 / dup3: the target installs the file itself.
        self.vars.add("src")
        if s.h2 is not None:
            L.append(f"src = {self.num(s.h2)};")
        else:
            L += self.make_file_target(i, s.file.kind, "src") if s.file.kind in P.PEER_KINDS else \
                [f"src = {self.make_file_expr(s.file.kind, s.file)};"]
        if s.via == P.DUP2:
            call = "dup2(src, dst)"
        else:
            call = f"dup3(src, dst, {'O_CLOEXEC' if s.flags & P.O_CLOEXEC else '0'})"
        body = [f"o.ret = {call};", "o.err = errno;", "if (o.ret >= 0)",
                f"\tset_handle({self.H(s.h)}, o.ret);"]
        if s.h2 is not None:    # a handle without a number gives src -1: the kernel answers
            return L + body + [f"report({i}, SHOW_FD, &o);"]
        L += ["if (src < 0) {\t/* making the new file failed */", "\to.ret = -1;", "\to.err = errno;",
              "} else {"]
        L += self.record(s.file, "src", "\t")
        L += ["\tif (src == dst) {\t/* made on the closed handle's own number: move it */",
              "\t\tint moved = fcntl(src, F_DUPFD, src + 1);", "", "\t\tclose(src);",
              "\t\tsrc = moved;", "\t}"]
        L += ["\t" + x for x in body]
        L.append("\tclaim(src);\t/* keep: our copy stays open to the end */" if s.keep else "\tclose(src);")
        L += ["}", f"report({i}, SHOW_FD, &o);"]
        return L

    # -- the supervisor's answers
    def answer_code(self) -> list[str]:
        L: list[str] = []
        for i, s in enumerate(self.p.steps):
            body: list[str] = []
            kind_created = None
            if s.op in P.CREATE_OPS and P.OP_KIND[s.op] in P.PEER_KINDS:
                kind_created = P.OP_KIND[s.op]
            if s.op == "replace" and s.via in (P.DUP2, P.DUP3) and s.h2 is None \
                    and s.file.kind in P.PEER_KINDS:
                kind_created = s.file.kind
            if kind_created:
                self.need.add("take_peer")
                body.append(f"take_peer(n, {self.fid[s.file]});")
            elif s.op == "inject" and s.file.kind in P.PEER_KINDS:
                body.append(f"inject_token(n, {self.fid[s.file]});")
            elif s.op == "hangup":
                body.append(f"hang_up(n, {self.fid[s.file]});")
            elif s.op == "replace" and s.via in P.ADDFD_VIAS:
                body += self.answer_replace(i, s)
            elif s.op == "notify":
                body += self.answer_hold(i)
            else:
                continue
            L.append(f"\tcase {i}:\t/* {c_comment(s.describe())} */")
            L += ["\t\t" + b for b in body]
            L.append("\t\tbreak;")
        return L

    # -- holds: the supervisor's own steps
    def find_holds(self):
        """notify step -> the supervisor steps it runs; and the steps run after the target."""
        steps = self.p.steps
        holds, inside = {}, set()
        for i, s in enumerate(steps):
            if s.op != "notify":
                continue
            run, early = [], []
            for j in range(i + 1, len(steps)):      # id="pending": before the notification is received
                if not self.is_pending(steps[j]):
                    break
                early.append(j)
            for j in range(i + 1, len(steps)):
                if steps[j].op not in SUP_OPS:
                    break
                if j in early:
                    continue
                run.append(j)
                if steps[j].op in ("respond", "kill_target"):
                    break
            holds[i] = run
            self.early[i] = early
            inside.update(run + early)
        after = [j for j, s in enumerate(steps) if s.op in SUP_OPS and j not in inside]
        return holds, after

    @staticmethod
    def is_pending(s: P.Step) -> bool:
        return s.op == "addfd" and (s.addfd or {}).get("id") == "pending"

    def before_recv_code(self) -> list[str]:
        """The steps of each hold that run before its notification is received."""
        L: list[str] = []
        for i, early in self.early.items():
            if not early:
                continue
            self.sup_vars.add("o")
            L.append(f"\tcase {i}:\t/* {c_comment(self.p.steps[i].describe())}: trapping, not yet received */")
            L.append(f"\t\tif (ran[{i}]++)\t/* once: not again for the hold's sync trap */\n\t\t\tbreak;")
            for j in early:
                s = self.p.steps[j]
                L += [f"\t\t/* step {j}: {c_comment(s.describe().strip())}",
                      f"\t\t * expected: {c_comment(self.expected(j))} */", f"\t\tbegin({j}, &o);"]
                L += ["\t\t" + x for x in self.sup_step_code(j, s, "last_id")]
            L += [f"\t\tsh->step = {i};\t/* still the target's step */", "\t\tbreak;"]
        return L

    def sends_in_hold(self, i: int) -> bool:
        """As native/executor.py: notify's return names a handle when its hold has an ADDFD with SEND."""
        for s in self.p.steps[i + 1:]:
            if s.op not in SUP_OPS:
                return False
            if s.op == "addfd" and s.addfd["flags"] & ADDFD_FLAG_SEND:
                return True
        return False

    def answer_hold(self, i: int) -> list[str]:
        self.sup_vars.add("o")
        L = ["if (action == ACT_SYNC) {\t/* the target waits here until the hold is over */",
             "\trespond(n, 0, 0);", "\tbreak;", "}"]
        hold = self.holds.get(i, [])
        ended = False
        for j in hold:
            s = self.p.steps[j]
            L.append(f"/* step {j}: {c_comment(s.describe().strip())}")
            L.append(f" * expected: {c_comment(self.expected(j))} */")
            L.append(f"begin({j}, &o);")
            L += self.sup_step_code(j, s, "n->id", notify=i)
            if s.op in ("respond", "kill_target"):
                ended = True
        if not ended:
            L.append("respond(n, 0, 0);\t/* no respond step: the trapped call returns 0 */")
        L.append("last_id = n->id;")
        return L

    def sup_step_code(self, j: int, s: P.Step, id_expr: str, notify: int | None = None) -> list[str]:
        """A supervisor step, as statements (they end with report())."""
        op = s.op
        if op == "addfd":
            return self.sup_addfd_code(j, s, id_expr)
        if op == "respond":
            return [f"o.ret = notif_send({id_expr}, {_signed64(s.data)}LL, {s.toff});"
                    "\t/* NOTIF_SEND: the trapped call returns */",
                    "o.err = errno;", f"report({j}, SHOW_INT, &o);"]
        if op == "sup_fdinfo":
            self.need.add("read_fdinfo")
            return [f"read_fdinfo(target_pid, {self.num(s.ep)}, &o);\t/* /proc/<target>/fdinfo/<{s.ep}> */",
                    f"report({j}, SHOW_FDINFO, &o);"]
        if op == "sup_wait":
            return [f"sup_wait({self.num(s.ep)}, {s.maxevents}, &o);",
                    f"report({j}, SHOW_WAIT, &o);"]
        if op == "listener_wait":
            return [f"listener_wait({c_mask(s.events)}, {s.data:#x}, {s.maxevents}, &o);",
                    f"report({j}, SHOW_WAIT, &o);"]
        if op == "sup_kcmp":
            L = [f"o.ret = kcmp_tfd(target_pid, {self.num(s.ep)}, {self.num(s.h)}, {s.toff}, {self.num(s.h2)});",
                 "o.err = errno;", "if (o.ret > 0)", "\to.ret = 1;"]
            if s.expected[self.profile].errno != "ENOSYS":
                L += ["if (o.ret < 0 && o.err == ENOSYS)", "\tsh->skip = SKIP_NO_KCMP;"]
            return L + [f"report({j}, SHOW_INT, &o);"]
        if op == "sup_inject":
            self.need.add("inject_token")
            return [f"o.ret = write_token({self.fid[s.file]});\t/* {P_token(self.fidx[s.file]):#x} */",
                    "o.err = errno;", f"report({j}, SHOW_INT, &o);"]
        if op == "kill_target":
            L = ["kill_target(&o);", f"report({j}, SHOW_INT, &o);"]
            if notify is not None:
                L.append(f"report_text({notify}, \"killed\");\t/* step {notify} never returns */")
            return L
        if op == "notif_recv":
            return ["notif_recv(&o);", f"report({j}, SHOW_INT, &o);"]
        raise P.ProgramError(f"the reproducer writer does not support step op {op!r}")

    def sup_addfd_code(self, j: int, s: P.Step, id_expr: str) -> list[str]:
        a = s.addfd
        flags = int(a["flags"]) & 0xFFFFFFFF
        names = [n for bit, n in ((ADDFD_FLAG_SETFD, "SECCOMP_ADDFD_FLAG_SETFD"),
                                  (ADDFD_FLAG_SEND, "SECCOMP_ADDFD_FLAG_SEND")) if flags & bit]
        rest = flags & ~(ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND)
        flag_expr = " | ".join(names + ([f"{rest:#x}u"] if rest else [])) or "0"
        idsel = a.get("id", "current")
        ident = {"current": id_expr, "stale": "last_id", "next": f"{id_expr} + 1",
                 "pending": "last_id + 1"}[idsel]
        newfd = a.get("newfd")
        if newfd == "rlimit":
            newfd_expr = "target_nofile()"
        elif newfd is not None:
            newfd_expr = f"{int(newfd) & 0xFFFFFFFF:#x}"
        elif flags & ADDFD_FLAG_SETFD and s.h is not None:
            newfd_expr = self.num(s.h)
        else:
            newfd_expr = "0"
        nfl = int(a.get("newfd_flags") or 0) & 0xFFFFFFFF
        nfl_expr = "O_CLOEXEC" if nfl == P.O_CLOEXEC else (f"{nfl:#x}" if nfl else "0")
        size = a.get("size") or 0
        size_expr = str(size) if size > 0 else "sizeof(struct seccomp_notif_addfd)"
        call = (f"raw_addfd({ident}, {flag_expr}, src, {newfd_expr}, {nfl_expr}, {size_expr}, "
                f"{int(bool(a.get('tail_nonzero')))})")
        after = ["o.err = errno;"]
        plain = (not flags & ~(ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND) and nfl in (0, P.O_CLOEXEC)
                 and not size and not a.get("tail_nonzero") and idsel == "current"
                 and not (s.file is None and s.h2 is None))
        if plain and s.expected[self.profile].errno is None:   # ENOTTY/EINVAL: this kernel lacks it
            skip = "SKIP_NO_ADDFD_SEND" if flags & ADDFD_FLAG_SEND else "SKIP_NO_ADDFD"
            after += ["if (o.ret < 0 && (o.err == ENOTTY || o.err == EINVAL))", f"\tsh->skip = {skip};"]
        if s.h is not None:
            after += ["if (o.ret >= 0) {", f"\tset_handle({self.H(s.h)}, o.ret);",
                      "\to.ret_handle = handle_of(o.ret);", "}"]
        self.sup_vars.add("src")
        bad = s.file is None and s.h2 is None
        if bad:
            return ["src = -1;\t/* by=bad: srcfd is no open fd */", f"o.ret = {call};"] + after + \
                [f"report({j}, SHOW_RET_HANDLE, &o);"]
        if s.h2 is not None:
            make = f"src = syscall(__NR_pidfd_getfd, pidfd, {self.num(s.h2)}, 0);\t/* our copy of {s.h2}'s file */"
        elif s.file.kind == P.PIPE:
            self.need.add("open_pipe")
            make = f"src = open_pipe(&peer[{self.fid[s.file]}]);\t/* we keep the write end */"
        elif s.file.kind == P.SOCKET:
            self.need.add("open_socketpair")
            make = f"src = open_socketpair(&peer[{self.fid[s.file]}]);\t/* we keep the other end */"
        else:
            make = f"src = {self.make_file_expr(s.file.kind, s.file)};"
        L = [make, "if (src < 0) {", "\to.ret = -1;", "\to.err = errno;", "} else {"]
        L += self.record(s.file, "src", "\t")
        L += [f"\to.ret = {call};"] + ["\t" + x for x in after]
        if flags & ADDFD_FLAG_SEND:
            L += ["\tif (o.ret >= 0)\t/* the target runs again: wait until it traps for the sync */",
                  "\t\twait_sync();"]
        L.append("\tkept[nkept++] = src;\t/* keep: our copy stays open to the end */" if s.keep
                 else "\tclose(src);")
        L += ["}", f"report({j}, SHOW_RET_HANDLE, &o);"]
        return L

    def answer_replace(self, i: int, s: P.Step) -> list[str]:
        send = s.via == P.ADDFD_SETFD_SEND
        self.uses_src = True
        L: list[str] = []
        if send:
            L += ["if (action == ACT_SYNC) {\t/* the target waits until we are done with its ADDFD */",
                  "\trespond(n, 0, 0);", "\tbreak;", "}"]
        if s.h2 is not None:
            L.append(f"src = syscall(__NR_pidfd_getfd, pidfd, (int)n->data.args[4], 0);"
                     f"\t/* our copy of {s.h2}'s file */")
        elif s.file.kind == P.PIPE:
            self.need.add("open_pipe")
            L.append(f"src = open_pipe(&peer[{self.fid[s.file]}]);\t/* we keep the write end */")
        elif s.file.kind == P.SOCKET:
            self.need.add("open_socketpair")
            L.append(f"src = open_socketpair(&peer[{self.fid[s.file]}]);\t/* we keep the other end */")
        else:
            L.append(f"src = {self.make_file_expr(s.file.kind, s.file)};")
        flags = "SECCOMP_ADDFD_FLAG_SETFD" + (" | SECCOMP_ADDFD_FLAG_SEND" if send else "")
        newfd_flags = "O_CLOEXEC" if s.flags & P.O_CLOEXEC else "0"
        skip = int(s.expected[self.profile].errno is None)
        L.append(f"addfd(n, {i}, src, {flags}, {newfd_flags}, {int(s.keep)}"
                 f"{', 1' if skip else ', 0'});\t/* keep={int(s.keep)}")
        L[-1] += ", skip on ENOTTY/EINVAL */" if skip else " */"
        return L

    # -- the whole file
    def write(self, title: str, description: str | None) -> str:
        p = self.p
        self.early: dict[int, list[int]] = {}
        self.holds, self.after = self.find_holds()
        self.sup_vars: set[str] = set()
        steps_code: list[str] = []
        for i, s in enumerate(p.steps):
            if s.op in SUP_OPS:
                where = ("after the target's end" if i in self.after else "in the hold above")
                steps_code.append(f"\n\t/* step {i}: {c_comment(s.describe().strip())}: the supervisor's, {where} */")
                continue
            steps_code.append("")
            steps_code.append(f"\t/* step {i}: {c_comment(s.describe())}\n"
                              f"\t * expected: {c_comment(self.expected(i))} */")
            steps_code.append(f"\tbegin({i}, &o);")
            steps_code += ["\t" + line if line else "" for line in self.step_code(i, s)]
        self.uses_src = False
        answers = self.answer_code()
        uses_src = self.uses_src or "src" in self.sup_vars
        answer_vars, self.sup_vars = self.sup_vars, set()
        early_code = self.before_recv_code()
        early_vars, self.sup_vars = self.sup_vars, set()
        after_code: list[str] = []
        for j in self.after:
            st = p.steps[j]
            after_code += ["", f"\t/* step {j}: {c_comment(st.describe().strip())}",
                           f"\t * expected: {c_comment(self.expected(j))} */", f"\tbegin({j}, &o);"]
            after_code += ["\t" + x for x in self.sup_step_code(j, st, "last_id")]
        uses_sup = any(st.op in SUP_OPS for st in p.steps)

        out: list[str] = []
        out.append(self.header(title, description))
        out.append(PRELUDE.replace("__TIMEOUT__", str(self.timeout_s))
                   .replace("__MAX_EVENTS__", str(MAX_EVENTS))
                   .replace("__MAX_LINES__", str(MAX_LINES)).replace("#include <errno.h>",
                                                                    "#include <errno.h>\n#include <stdarg.h>"))
        out.append(self.tables(title))
        out.append(STRUCTS)
        # the target
        out.append("/* ---- the target: the program's steps, in order ---------------------------- */\n")
        out.append("void __attribute__((noreturn)) target_steps(void)\n{")
        out.append("\tstruct outcome o;")
        decls = []
        if "fd" in self.vars:
            decls.append("\tint fd, other;")
        if "dst" in self.vars:
            decls.append("\tint dst;" if "src" not in self.vars else "\tint dst, src;")
        if "ev" in self.vars:
            decls.append("\tstruct epoll_event ev;")
        if "v" in self.vars:
            decls.append("\tuint64_t v;")
        out += decls
        out += steps_code
        out.append("")
        if "exit_target" in (st.op for st in p.steps):
            out.append("\t_exit(0);\t/* not reached: exit_target ended the target */\n}\n")
        else:
            out.append("\tsh->finished = 1;\n\tfflush(stdout);\n\t_exit(0);\n}\n")
        # the supervisor
        out.append("/* ---- the supervisor: what it does when step N traps ----------------------- */\n")
        out.append("void answer(const struct seccomp_notif *n)\n{")
        out.append("\tint step = (int)n->data.args[2], action = (int)n->data.args[3];")
        if "o" in answer_vars:
            out.append("\tstruct outcome o;")
        if uses_src:
            out.append("\tint src;")
        out.append("")
        out.append("\tif (action != ACT_NOTIFY)\n\t\tlast_id = n->id;\t/* a hold sets it when it is over */")
        out.append("\tswitch (step) {")
        out += answers
        out.append("\tdefault:\n\t\trespond(n, -1, EINVAL);\n\t}\n}\n")
        out.append("/* ---- the supervisor, when a notification is pending, before it receives it -- */\n")
        out.append("void before_recv(void)\n{")
        if early_code:
            out.append("\tstruct outcome o;" + ("\n\tint src;" if "src" in early_vars else ""))
            out.append(f"\tstatic unsigned char ran[{len(self.p.steps)}];")
            out.append("")
            out.append("\tswitch (sh->step) {\t/* the step the target is at */")
            out += early_code
            out.append("\t}")
        else:
            out.append("\t/* nothing in this program */")
        out.append("}\n")
        out.append("/* ---- the supervisor's steps after the target's end ------------------------- */\n")
        out.append("void after_target(void)\n{")
        if after_code:
            out.append("\tstruct outcome o;" + ("\n\tint src;" if "src" in self.sup_vars else ""))
            out += after_code
        else:
            out.append("\t/* none in this program */")
        out.append("}")
        # machinery
        out.append("\n/* ======== machinery: the same as the suite's native/executor.c ======== */")
        out.append(HANDLES)
        out.append(RENDER.replace("__ERRNO_TABLE__", _errno_table()).replace(
            "__SHOW_FDINFO__",
            "\t\t\tshow_fdinfo(got, sizeof(got), o);" if self.has_fdinfo else
            "\t\t\tappend(got, sizeof(got), \"%ld {}\", o->ret);"))
        if "record_inode" in self.need or self.has_fdinfo:
            out.append(RECORD_INODE)
        for name, text in (("open_pipe", OPEN_PIPE), ("open_socketpair", OPEN_SOCKETPAIR),
                           ("hand_over", HAND_OVER), ("new_signalfd", NEW_SIGNALFD),
                           ("new_memfd", NEW_MEMFD), ("arm_timer", ARM_TIMER),
                           ("read_step", READ_STEP),
                           ("read_fdinfo", READ_FDINFO)):
            if name in self.need:
                out.append(text)
        out.append(SUPERVISOR_HELPERS)
        for name, text in (("take_peer", TAKE_PEER), ("inject_token", INJECT_TOKEN),
                           ("hang_up", HANG_UP), ("addfd", ADDFD)):
            if name in self.need:
                out.append(text)
        if uses_sup:
            out.append(SUP_STEPS)
        signos = ""
        k = 0
        for f in p.files:
            if f.kind == P.SIGNALFD:
                signos += f"\tfile_signo[{self.fid[f]}] = SIGRTMIN + 4 + {k};\t/* {c_comment(f.name)} */\n"
                k += 1
        if k:
            signos += (f"\tif (SIGRTMIN + 4 + {k} > SIGRTMAX + 1) {{\n"
                       f"\t\tprintf(\"# too many signalfd files for the real-time signals\\n\");\n"
                       f"\t\treturn finish(0, 0);\n\t}}\n")
        out.append(RUNTIME.replace("__SIGNOS__", signos))
        return "\n".join(out)

    def tables(self, title: str) -> str:
        p = self.p
        L = ["", "/* ---- the program ---------------------------------------------------------- */", ""]
        L.append(f"#define TEST_NAME {c_string(p.name)}")
        L.append(f"#define TITLE {c_string(title)}")
        L.append(f"#define PROFILE {c_string(self.profile)}")
        L.append("")
        L.append("/* Handles: slots in the target's fd table (numbers are found at run time). */")
        L.append("enum { " + "".join(f"{self.hid[h]}, " for h in p.handles) + "NHANDLES };")
        L.append("const char *const handle_name[NHANDLES + 1] = { "
                 + "".join(f"{c_string(h.name)}, " for h in p.handles) + "NULL };")
        L.append("")
        L.append("/* Files: open file descriptions, recognised by their tokens. */")
        L.append("enum { " + "".join(f"{self.fid[f]}, " for f in p.files) + "NFILES };")
        L.append("const char *const file_name[NFILES + 1] = { "
                 + "".join(f"{c_string(f.name)}, " for f in p.files) + "NULL };")
        L.append("const int file_kind[NFILES + 1] = { "
                 + "".join(f"{KIND_CONST[f.kind]}, " for f in p.files) + "0 };")
        L.append("const char *const file_fs[NFILES + 1] = {\t/* what fdinfo's sdev shows */\n\t"
                 + "".join(f"{c_string(FS_OF_KIND.get(f.kind, 'anon_inodefs'))}, " for f in p.files)
                 + "NULL };")
        L.append("")
        L.append(f"#define NSTEPS {len(p.steps)}")
        L.append("const char *const describe[NSTEPS + 1] = {")
        for s in p.steps:
            L.append(f"\t{c_string(s.describe())},")
        L.append("\tNULL };")
        L.append(f"/* The expected trace under the \"{self.profile}\" profile, as the suite prints it. */")
        L.append("const char *const expected[NSTEPS + 1] = {")
        for i in range(len(p.steps)):
            L.append(f"\t/* {i:2d} */ {c_string(self.expected(i))},")
        L.append("\tNULL };")
        return "\n".join(L)

    def header(self, title: str, description: str | None) -> str:
        p = self.p
        L = ["// SPDX-License-Identifier: GPL-2.0",
             "/*",
             f" * {c_comment(title)}",
             " *",
             " * A standalone reproducer written by fd-replace-suite (fuzz/reproducer.py).",
             " *"]
        if description:
            L.append(" * What it shows:")
            for line in _wrap(description, 72):
                L.append(f" *   {c_comment(line)}")
            L.append(" *")
        L += [" * The setting: epoll keys each entry by (fd number, struct file *) and holds",
              " * no reference on the file.  Replacing the file behind a descriptor, by",
              " * seccomp's SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD (the",
              " * kernel's receive_fd_replace()) or by dup2()/dup3(), leaves the entry with",
              " * the old file on a stock kernel.",
              " *",
              " * How it runs: a forked target (own process group, no_new_privs) executes",
              " * the steps below in order, under a seccomp filter that hands one magic",
              " * ioctl(fd, 0x46445251, step, action, extra) to the parent, which",
              " * supervises: it takes pipe and socket peers with pidfd_getfd and writes",
              " * tokens through them, and answers replaces with NOTIF_ADDFD.  Every file",
              " * is recognised by its token: pipe/socket 0x544f4b454e000000 | file index;",
              " * eventfd counter ((file+1) << 20) | 1; timerfd interval (file+1)*100000000 s;",
              " * signalfd signal SIGRTMIN+4+k.  Outcomes name handles and files, never",
              " * raw fd numbers."]
        if any(s.op in SUP_OPS for s in p.steps):
            L += [" *",
                  " * Steps marked 'sup:' are the supervisor's own: they run while the target",
                  " * waits in a notify() step's trapped call (a hold, up to its respond or",
                  " * kill_target), or after the target's end; the trapped step's outcome",
                  " * is printed after them, in step order."]
        L += [" *",
              f" * The program and its expected trace under the \"{self.profile}\" profile:",
              " *"]
        for i, s in enumerate(p.steps):
            L.append(f" *   step {i}: {c_comment(s.describe())} -> {c_comment(self.expected(i))}")
        L += [" *",
              " * Build and run (as root or as any user; needs seccomp user notification):",
              " *",
              " *   gcc -o repro repro.c",
              " *   ./repro",
              " *",
              " * It prints each step's outcome, '# step N expected: ...' for each step that",
              " * differs, then 'ok 1' or 'not ok 1'.  Exit code (kselftest): 0 the kernel",
              " * matched the expected trace, 1 it did not (or the target hung or died;",
              f" * the run is killed after {self.timeout_s} s), 4 skipped (no user notification or",
              " * no ADDFD on this kernel).",
              " */",
              ""]
        return "\n".join(L)


def _signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def P_token(idx: int) -> int:
    return 0x544F4B454E000000 | idx


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    lines = []
    for para in text.splitlines():
        lines += textwrap.wrap(para, width) or [""]
    return lines


def write_reproducer(program: P.Program, profile: str = "stock", title: str | None = None,
                     description: str | None = None, timeout_s: int = TIMEOUT_S) -> str:
    """The text of a standalone C program reproducing program under profile.

    title heads the file and its output (default: the program's name);
    description (optional) says what the program shows; after timeout_s
    seconds the run is cut short and the target's process group killed.
    """
    if not isinstance(timeout_s, int) or timeout_s < 1:
        raise P.ProgramError("timeout_s must be a whole number of seconds, at least 1")
    if profile not in P.PROFILES:
        raise P.ProgramError(f"unknown profile {profile!r}; known: {', '.join(P.PROFILES)}")
    if len(program.steps) > 512 or len(program.handles) > 64 or len(program.files) > 64:
        raise P.ProgramError("too many steps, handles or files for a reproducer (512/64/64)")
    if hasattr(program, "check_structure"):
        program.check_structure()
    for s in program.steps:
        if s.op not in SUPPORTED_OPS:
            raise P.ProgramError(f"the reproducer writer does not support step op {s.op!r} "
                                 f"(it writes: {', '.join(SUPPORTED_OPS)})")
        if profile not in s.expected:
            raise P.ProgramError(f"step {s.describe()} states no outcome for profile {profile!r}")
    return _Writer(program, profile, timeout_s).write(title or program.name, description)


# --------------------------------------------------------------------------
# command line

def _instances():
    from cases.casekit import all_cases
    for key, case in all_cases().items():
        for ident, program in case.instances():
            yield key, case, ident, program


def find_case(name: str):
    """(title, description, program) of a registered case instance.

    name is an instance id (test_x[multi-addfd_setfd-pipe-pipe]), or a case
    name (or registry key) that has exactly one instance."""
    matches = []
    for key, case, ident, program in _instances():
        if name in (ident, f"{case.module}::{ident}"):
            return ident, case.doc, program
        if name in (case.name, key):
            matches.append((ident, case.doc, program))
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = "\n  ".join(m[0] for m in matches)
        raise LookupError(f"case {name!r} has {len(matches)} instances; name one:\n  {ids}")
    raise LookupError(f"no registered case {name!r} (try --list)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.reproducer",
                                 description="Write a registered conformance case as a standalone C reproducer.")
    ap.add_argument("--case", help="case instance id (e.g. 'test_x[multi-addfd_setfd-pipe-pipe]') "
                                   "or a case name with a single instance")
    ap.add_argument("--profile", default="stock", choices=P.PROFILES,
                    help="semantics profile whose expectations the reproducer checks (default stock)")
    ap.add_argument("-o", "--output", help="write the C here (default: stdout)")
    ap.add_argument("--list", action="store_true", help="list the registered case instances")
    args = ap.parse_args(argv)
    if args.list:
        try:
            for _, _, ident, _ in _instances():
                print(ident)
            sys.stdout.flush()
        except BrokenPipeError:            # `--list | head`
            sys.stdout = None
        return 0
    if not args.case:
        ap.error("--case NAME (or --list) is required")
    try:
        title, doc, program = find_case(args.case)
    except LookupError as exc:
        print(f"reproducer: {exc}", file=sys.stderr)
        return 2
    text = write_reproducer(program, args.profile, title=title, description=doc)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"reproducer: wrote {args.output} ({title}, profile {args.profile}); "
              f"build it with: gcc -o repro {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
