// SPDX-License-Identifier: GPL-2.0
/*
 * The program executor.
 *
 * fdr_run() forks a target: its own process group, PR_SET_PDEATHSIG(SIGKILL),
 * no_new_privs and a seccomp filter that traps one syscall (ioctl with a magic
 * request number) with SECCOMP_RET_USER_NOTIF.  The target executes the
 * program's steps in order; whenever a step needs the driver (hand a pipe's
 * write end over, inject a token through a peer, replace a file by ADDFD) it
 * makes the trapped syscall, and the calling thread, acting as supervisor,
 * answers the notification.  Every step's outcome lands in shared memory and
 * is copied out for the caller.  No filter is ever installed in the caller.
 *
 * Everything after fork() in the child uses only syscalls and stack buffers:
 * the caller is a multi-threaded Python process.
 */
#include "fdr_common.h"
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>

#include "executor.h"
#include "fixup.c"
#include "kcov.c"
#ifdef FDR_HAVE_LIBURING
#include <liburing.h>
#endif

#define FDR_MAGIC 0x46445251U		/* "FDRQ": the trapped ioctl request */
#define TOKEN_MAGIC 0x544f4b454e000000ULL	/* "TOKEN" in the top five bytes */
#define TOKEN_FILE_MASK 0xffffffULL
#define EFD_COUNT_BITS 20
#define FDR_READ_SIZE 4096		/* a read or drain step's buffer */
#define SIGNO_BASE_OFFSET 4		/* SIGRTMIN+4..: glibc keeps the first few */
/* A timerfd's token is its interval, (file+1) * this: over three years, so after
 * its first (immediate) expiry it never fires again during a run. */
#define TIMER_TOKEN_SECONDS 100000000L

/* What a trapped call asks the supervisor for (args[3]). */
enum { ACT_HANDOFF = 1, ACT_INJECT, ACT_REPLACE, ACT_SYNC, ACT_HANGUP, ACT_NOTIFY, ACT_HELLO,
       ACT_SETTLE };

struct fdr_file {
	int32_t kind;
	int32_t blocking;	/* made without O_NONBLOCK (pipes and sockets) */
	int32_t write_end;	/* a pipe whose write end is the subject */
	int32_t signo;		/* signalfd: the signal that is its token */
	int32_t peer;		/* supervisor's fd of the peer end, or -1 */
	int32_t known;		/* dev/ino recorded */
	uint64_t dev;
	uint64_t ino;
};

/* An actor: the target's first process, a process it forked, or a thread. */
struct actor_slot {
	int32_t pid;			/* its process (thread-group id) */
	int32_t tid;
	int32_t table;			/* the process actor whose fd table it uses */
	volatile int32_t ended;		/* an exit or kill step ended it: not a crash */
	volatile int32_t entering;	/* its last background step + 1 */
	volatile int32_t returned;	/* background step + 1 that has returned */
};

/* Shared between supervisor and target (MAP_SHARED, set up before fork). */
struct shared {
	volatile int32_t step;
	volatile int32_t turn;		/* the next target step to run (a futex) */
	volatile int32_t finished;
	volatile int32_t killed;	/* by a kill step: the run is not a crash */
	/* Conditions the next step waits for before it runs. */
	volatile int32_t settle;	/* actor + 1 whose background call must sleep first */
	volatile int32_t settle_step;
	volatile int32_t gone;		/* actor + 1 whose end must be complete first */
	int64_t deadline;		/* CLOCK_MONOTONIC ms: actors give up after it */
	int32_t setup_err;
	char setup_where[64];
	int32_t nfiles;
	struct fdr_file files[FDR_MAX_FILES];
	struct actor_slot actors[FDR_MAX_ACTORS];
	/* One handle table per process actor; the supervisor reads them and,
	 * in a hold, writes the holding actor's. */
	int32_t hfd[FDR_MAX_ACTORS][FDR_MAX_HANDLES];	/* fd number while open, else -1 */
	int32_t hnum[FDR_MAX_ACTORS][FDR_MAX_HANDLES];	/* last number held, while it is free */
	struct fdr_outcome out[];
};

struct target {
	const struct fdr_step *steps;
	int nsteps;
	int nhandles;
	int actor;
	int32_t *hfd;
	int32_t *hnum;
	struct shared *sh;
};

static long trap(int fd, int step, int action, int extra)
{
	return syscall(__NR_ioctl, fd, FDR_MAGIC, step, action, extra, 0);
}

static uint64_t token_of(int file)
{
	return TOKEN_MAGIC | (uint64_t)file;
}

static uint64_t efd_unit(int file)
{
	return ((uint64_t)(file + 1) << EFD_COUNT_BITS) | 1;
}

/* ---- target side ------------------------------------------------------ */

static int num(struct target *t, int h)
{
	if (h < 0 || h >= t->nhandles)
		return -1;
	return t->hfd[h] >= 0 ? t->hfd[h] : t->hnum[h];
}

/* A number was (re)allocated: closed handles that remembered it lose it. */
static void claim(struct target *t, int fd)
{
	for (int j = 0; j < t->nhandles; j++)
		if (t->hfd[j] < 0 && t->hnum[j] == fd)
			t->hnum[j] = -1;
}

static void set_handle(struct target *t, int h, int fd)
{
	claim(t, fd);
	/* dup2 onto a number another open handle holds makes them aliases. */
	t->hfd[h] = t->hnum[h] = fd;
}

static int handle_of(struct target *t, int fd)
{
	for (int j = 0; j < t->nhandles; j++)
		if (t->hfd[j] == fd)
			return j;
	return FDR_NO_HANDLE;
}

static void record_inode(struct shared *sh, int file, int fd)
{
	struct stat st;

	if (file < 0 || file >= sh->nfiles || sh->files[file].known)
		return;
	if (fstat(fd, &st) == 0) {
		sh->files[file].dev = st.st_dev;
		sh->files[file].ino = st.st_ino;
		sh->files[file].known = 1;
	}
}

/* Make a new file of a kind; the caller owns the returned fd.  peer gets
 * the other end for pipes and sockets (-1 otherwise). */
static int make_file(struct shared *sh, int kind, int file, int *peer)
{
	int p[2], fd = -1;
	sigset_t set;

	*peer = -1;
	switch (kind) {
	case FDR_KIND_PIPE:
		if (pipe2(p, sh->files[file].blocking ? 0 : O_NONBLOCK) < 0)
			return -1;
		fd = p[sh->files[file].write_end ? 1 : 0];
		*peer = p[sh->files[file].write_end ? 0 : 1];
		break;
	case FDR_KIND_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | (sh->files[file].blocking ? 0 : SOCK_NONBLOCK),
			       0, p) < 0)
			return -1;
		/* The driver's end never blocks, whatever the subject's mode. */
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		fd = p[0];
		*peer = p[1];
		break;
	case FDR_KIND_EVENTFD:
		fd = eventfd(0, EFD_NONBLOCK);
		break;
	case FDR_KIND_EPOLL:
		fd = epoll_create1(0);
		break;
	case FDR_KIND_SIGNALFD:
		sigemptyset(&set);
		sigaddset(&set, sh->files[file].signo);
		fd = signalfd(-1, &set, SFD_NONBLOCK);
		break;
	case FDR_KIND_TIMERFD:
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		break;
	case FDR_KIND_URING: {
		/* A bare ring (its fd only): a file to install, not to submit to. */
		struct { uint32_t w[30]; } params;

		memset(&params, 0, sizeof(params));
#ifdef __NR_io_uring_setup
		fd = syscall(__NR_io_uring_setup, 4, &params);
#else
		errno = ENOSYS;
#endif
		break;
	}
	case FDR_KIND_MEMFD: {
		/* A regular file: not pollable; its token is its content. */
		uint64_t tok = token_of(file);

		fd = memfd_create("fdr", 0);
		if (fd >= 0 && pwrite(fd, &tok, sizeof(tok), 0) != sizeof(tok)) {
			close(fd);
			fd = -1;
		}
		break;
	}
	default:
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* Create a file in the target; its peer end is handed to the supervisor. */
static int target_make_file(struct target *t, int step, int kind, int file)
{
	int peer, fd, err;

	fd = make_file(t->sh, kind, file, &peer);
	if (fd < 0 || peer < 0)
		return fd;
	if (trap(peer, step, ACT_HANDOFF, -1) < 0) {
		err = errno;
		close(peer);
		close(fd);
		errno = err;
		return -1;
	}
	close(peer);
	return fd;
}

/* Which file did these bytes come from?  Sets o->reached and o->count. */
static void decode(struct target *t, int fd, const unsigned char *buf, long n,
		   struct fdr_outcome *o)
{
	struct shared *sh = t->sh;
	struct itimerspec its;
	uint64_t v = 0;

	o->reached = FDR_NO_HANDLE;
	o->count = 0;
	if (n <= 0)
		return;
	memcpy(&v, buf, n >= 8 ? 8 : 0);
	if (n % 8 == 0 && (v & ~TOKEN_FILE_MASK) == TOKEN_MAGIC) {
		int f = v & TOKEN_FILE_MASK;

		for (long i = 8; i < n; i += 8) {
			uint64_t w;

			memcpy(&w, buf + i, 8);
			if (w != v)
				return;		/* tokens of two files: undecodable */
		}
		if (f < sh->nfiles) {
			o->reached = f;
			o->count = n / 8;
		}
		return;
	}
	/* Checked after the tokens: 16 tokens are 128 bytes too. */
	if (n % sizeof(struct signalfd_siginfo) == 0) {
		const struct signalfd_siginfo *si = (const void *)buf;

		for (int f = 0; f < sh->nfiles; f++)
			if (sh->files[f].kind == FDR_KIND_SIGNALFD &&
			    (int)si->ssi_signo == sh->files[f].signo)
				o->reached = f;
		o->count = n / sizeof(struct signalfd_siginfo);
		return;
	}
	if (n != 8)
		return;
	if (timerfd_gettime(fd, &its) == 0) {
		int f = its.it_interval.tv_sec / TIMER_TOKEN_SECONDS - 1;

		if (f >= 0 && f < sh->nfiles && sh->files[f].kind == FDR_KIND_TIMERFD) {
			o->reached = f;
			o->count = 1;
		}
		return;
	}
	/* An eventfd counter: count injections of ((file+1) << 20 | 1). */
	uint64_t count = v & ((1ULL << EFD_COUNT_BITS) - 1), q = v >> EFD_COUNT_BITS;

	if (count && q % count == 0) {
		uint64_t f = q / count - 1;

		if (f < (uint64_t)sh->nfiles && sh->files[f].kind == FDR_KIND_EVENTFD) {
			o->reached = f;
			o->count = count;
		}
	}
}

/* epoll_wait into an outcome's event list; returns what epoll_wait returned. */
static long wait_events(int epfd, int maxevents, int timeout_ms, struct fdr_outcome *o)
{
	struct epoll_event ev[FDR_MAX_EVENTS];
	long r = epoll_wait(epfd, ev, maxevents, timeout_ms);

	for (int k = 0; k < r; k++) {
		o->ev[k].events = ev[k].events;
		o->ev[k].data = ev[k].data.u64;
	}
	o->nevents = r > 0 ? r : 0;
	return r;
}

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

/* epoll_pwait or epoll_pwait2 with the step's signal mask: the signals of the signalfd
 * files whose bits are set in data stay blocked, every other one is unblocked. */
static long pwait_events(struct target *t, const struct fdr_step *s, struct fdr_outcome *o)
{
	struct epoll_event ev[FDR_MAX_EVENTS];
	struct timespec ts = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000000L };
	sigset_t set;
	long r;

	sigemptyset(&set);
	for (int f = 0; f < t->sh->nfiles && f < 64; f++)
		if ((s->data >> f & 1) && t->sh->files[f].kind == FDR_KIND_SIGNALFD)
			sigaddset(&set, t->sh->files[f].signo);
	if (s->op == FDR_OP_PWAIT)
		r = syscall(SYS_epoll_pwait, num(t, s->ep), ev, s->arg, s->timeout_ms, &set,
			    (size_t)(_NSIG / 8));
	else
		r = syscall(SYS_epoll_pwait2, num(t, s->ep), ev, s->arg,
			    s->timeout_ms < 0 ? NULL : &ts, &set, (size_t)(_NSIG / 8));
	for (int k = 0; k < r; k++) {
		o->ev[k].events = ev[k].events;
		o->ev[k].data = ev[k].data.u64;
	}
	o->nevents = r > 0 ? r : 0;
	return r;
}

/* struct epoll_params (linux/eventpoll.h, 6.9+), spelled out for older headers. */
struct fdr_epoll_params {
	uint32_t busy_poll_usecs;
	uint16_t busy_poll_budget;
	uint8_t prefer_busy_poll;
	uint8_t pad;
};
#define FDR_EPIOCSPARAMS _IOW(0x8A, 0x01, struct fdr_epoll_params)
#define FDR_EPIOCGPARAMS _IOR(0x8A, 0x02, struct fdr_epoll_params)

static long epoll_params(struct target *t, const struct fdr_step *s)
{
	struct fdr_epoll_params p;
	long r;

	if (s->arg) {
		p.busy_poll_usecs = (uint32_t)s->data;
		p.busy_poll_budget = (uint16_t)(s->data >> 32);
		p.prefer_busy_poll = (uint8_t)(s->data >> 48);
		p.pad = (uint8_t)(s->data >> 56);
		return ioctl(num(t, s->ep), FDR_EPIOCSPARAMS, &p);
	}
	memset(&p, 0xff, sizeof(p));
	r = ioctl(num(t, s->ep), FDR_EPIOCGPARAMS, &p);
	if (r < 0)
		return r;
	return (long)p.busy_poll_usecs | (long)p.busy_poll_budget << 32 |
	       (long)p.prefer_busy_poll << 48;
}

/* A signalfd's signal reaches a handler only when an epoll_pwait's mask unblocks it:
 * the handler takes it (one instance) and the wait says EINTR. */
static void signalfd_signal_caught(int sig)
{
	(void)sig;
}

/* poll() or select() on the step's handles; the outcome lists (revents, position). */
static long poll_handles(struct target *t, const struct fdr_step *s, struct fdr_outcome *o)
{
	struct pollfd pf[FDR_MAX_POLL];
	int n = s->nhs < FDR_MAX_POLL ? s->nhs : FDR_MAX_POLL;
	long r;

	o->nevents = 0;
	if (s->op == FDR_OP_POLL) {
		for (int k = 0; k < n; k++) {
			pf[k].fd = num(t, s->hs[k]);
			pf[k].events = s->events;
			pf[k].revents = 0;
		}
		r = poll(pf, n, s->timeout_ms);
		for (int k = 0; r > 0 && k < n; k++)
			if (pf[k].revents) {
				o->ev[o->nevents].events = pf[k].revents;
				o->ev[o->nevents++].data = k;
			}
		return r;
	}
	/* select(): the handles form the read set, by their numbers at the call. */
	struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };
	int fds[FDR_MAX_POLL], maxfd = -1;
	fd_set rd;

	FD_ZERO(&rd);
	for (int k = 0; k < n; k++) {
		fds[k] = num(t, s->hs[k]);
		if (fds[k] < 0 || fds[k] >= FD_SETSIZE) {
			errno = EBADF;
			return -1;
		}
		FD_SET(fds[k], &rd);
		maxfd = fds[k] > maxfd ? fds[k] : maxfd;
	}
	r = select(maxfd + 1, &rd, NULL, NULL, s->timeout_ms < 0 ? NULL : &tv);	/* -1: none */
	for (int k = 0; r > 0 && k < n; k++)
		if (FD_ISSET(fds[k], &rd)) {
			o->ev[o->nevents].events = POLLIN;
			o->ev[o->nevents++].data = k;
		}
	return r;
}

static long uring_step(struct target *t, int i, struct fdr_outcome *o);

/* The calls that may block: epoll_wait, poll, select, an io_uring reap. */
static void blocking_call(struct target *t, const struct fdr_step *s, struct fdr_outcome *o)
{
	long r;

	if (s->op == FDR_OP_WAIT)
		r = wait_events(num(t, s->ep), s->arg, s->timeout_ms, o);
	else if (s->op == FDR_OP_URING_REAP)
		r = uring_step(t, (int)(s - t->steps), o);
	else
		r = poll_handles(t, s, o);
	o->ret = r;
	o->err = r < 0 ? errno : 0;
}

/* ---- actors: whose turn it is ------------------------------------------
 * Steps run one at a time, in program order, each by its actor.  sh->turn is
 * the next step; an actor sleeps on it (a futex in shared memory) until a
 * step of its own comes up, runs it, and hands the turn on.  A background
 * step hands the turn on first and then blocks; the next step waits until the
 * blocked actor really sleeps in the kernel.  An exit hands the turn on and
 * the next step waits until the actor is gone. */

static void futex_wait(volatile int32_t *addr, int32_t val, int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake_all(volatile int32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The next step the target runs (supervisor steps run inside holds). */
static int next_step(struct target *t, int i)
{
	int j = i + 1;

	while (j < t->nsteps && (t->steps[j].flags & FDR_F_SUP))
		j++;
	return j;
}

static void pass_turn(struct target *t, int i)
{
	int j = next_step(t, i);

	if (j >= t->nsteps)
		t->sh->finished = 1;
	__atomic_store_n(&t->sh->turn, j, __ATOMIC_RELEASE);
	futex_wake_all(&t->sh->turn);
}

/* A short pause in a loop that polls for a condition (never for timing). */
static void pause_briefly(void)
{
	struct timespec ts = { 0, 20000 };

	nanosleep(&ts, NULL);
}

/* Is the thread asleep (state S)?  /proc/<pid>/stat's state needs no ptrace access. */
static int task_sleeping(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	long n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Has the actor's exit completed (files closed, task reaped or a zombie)? */
static int wait_actor_gone(struct shared *sh, int a)
{
	struct actor_slot *as = &sh->actors[a];
	char path[64];

	if (as->pid != as->tid) {	/* a thread: its task directory goes with it */
		snprintf(path, sizeof(path), "/proc/%d/task/%d", as->pid, as->tid);
		while (access(path, F_OK) == 0)
			if (fdr_now_ms() > sh->deadline)
				return -1;
			else
				pause_briefly();
		return 0;
	}
	/* A process: its pidfd polls readable after exit_files and task work. */
	int pidfd = syscall(__NR_pidfd_open, as->pid, 0);
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	int64_t left = sh->deadline - fdr_now_ms();
	int r;

	if (pidfd < 0)
		return errno == ESRCH ? 0 : -1;
	r = left > 0 && poll(&pf, 1, left) == 1 ? 0 : -1;
	close(pidfd);
	return r;
}

/* Is the actor's background call quiescent: asleep in the kernel, or
 * returned?  1: asleep, 2: returned, 0: neither yet (it runs, or was woken
 * and has not finished collecting).  A waker makes the sleeper runnable
 * before its own call returns, so once the next step starts a woken call is
 * never mistaken for a sleeping one. */
static int quiescent(struct shared *sh, int a, int i)
{
	struct actor_slot *as = &sh->actors[a];

	/* Ended with its process (an exit or a kill): the call ended too. */
	if (__atomic_load_n(&as->returned, __ATOMIC_ACQUIRE) == i + 1 || as->ended ||
	    sh->actors[as->table].ended)
		return 2;
	if (as->entering != i + 1 || !task_sleeping(as->pid, as->tid))
		return 0;
	/* Asleep: in the call, or already back in its turn wait?  It sets
	 * returned before it can sleep there, so look again. */
	if (__atomic_load_n(&as->returned, __ATOMIC_ACQUIRE) == i + 1)
		return 2;
	return 1;
}

/* Settle every background call but the caller's own, and wait for the actor
 * that just ended.  The supervisor does it when a step asks (ACT_SETTLE): the
 * /proc files and pidfds it opens must not take a number in the target's fd
 * table, where a sleeping select or poll of another thread could see them.
 * 0, or -1 at the deadline. */
static int settle_all(struct shared *sh, int self)
{
	for (int a = 0; a < FDR_MAX_ACTORS; a++) {
		struct actor_slot *as = &sh->actors[a];
		int i = as->entering - 1, q;

		if (i < 0 || a == self)
			continue;
		while (!(q = quiescent(sh, a, i)))
			if (fdr_now_ms() > sh->deadline)
				return -1;
			else
				pause_briefly();
		/* The step right after a background call says whether it slept. */
		if (sh->settle == a + 1 && sh->settle_step == i)
			sh->out[i].ret = q == 1 ? 0 : 1;
	}
	sh->settle = 0;
	if (sh->gone) {
		if (wait_actor_gone(sh, sh->gone - 1) < 0)
			return -1;
		sh->gone = 0;
	}
	return 0;
}

/* Does any background call of another actor still have to settle? */
static int unsettled(struct shared *sh, int self)
{
	for (int a = 0; a < FDR_MAX_ACTORS; a++) {
		struct actor_slot *as = &sh->actors[a];

		if (a != self && as->entering > 0 &&
		    __atomic_load_n(&as->returned, __ATOMIC_ACQUIRE) != as->entering &&
		    !as->ended && !sh->actors[as->table].ended)
			return 1;
	}
	return 0;
}

/* Before step i runs: every background call has settled (so what it returns
 * never depends on how fast it ran), and an actor that just ended is gone.
 * Without such a call or end pending, nothing to ask. */
static void before_turn(struct target *t, int i)
{
	struct shared *sh = t->sh;

	if (sh->settle == t->actor + 1) {
		/* Our own background call, joined at once: it returned, we run. */
		sh->out[sh->settle_step].ret = 1;
		sh->settle = 0;
	}
	if ((sh->settle || sh->gone || unsettled(sh, t->actor)) &&
	    trap(-1, i, ACT_SETTLE, -1) < 0)
		_exit(4);
}

static void actor_loop(struct target *t);

/* A background step: hand the turn on, then block in the call.  Its outcome
 * goes to its join step, which this actor runs once the call returned. */
static void run_background(struct target *t, int i)
{
	const struct fdr_step *s = &t->steps[i];
	struct shared *sh = t->sh;
	struct actor_slot *as = &sh->actors[t->actor];

	sh->settle = t->actor + 1;
	sh->settle_step = i;
	sh->out[i].done = 1;
	as->entering = i + 1;
	pass_turn(t, i);
	/* No join (its actor is killed in it): what it returns goes nowhere. */
	struct fdr_outcome scratch, *o = s->aux == i ? &scratch : &sh->out[s->aux];

	int64_t started = fdr_now_ms();

	blocking_call(t, s, o);
	/* Run out of time before its join's turn came: the timeout was too short
	 * for this machine, and the steps in between did not all run while it
	 * slept.  Said, so that no verdict rests on it unnoticed.  A call that
	 * returned something at its timeout counts too: select and poll look at
	 * every file once more when the time is up, and may find one that a
	 * later step (the one not yet run) would have drained. */
	if (s->aux != i && __atomic_load_n(&sh->turn, __ATOMIC_ACQUIRE) < s->aux &&
	    (o->ret == 0 || (s->timeout_ms > 0 && fdr_now_ms() - started >= s->timeout_ms)))
		sh->out[i].expired = 1;
	__atomic_store_n(&as->returned, i + 1, __ATOMIC_RELEASE);
}

static void enter_actor(struct target *t, int a, int32_t *hfd, int32_t *hnum)
{
	struct actor_slot *as = &t->sh->actors[a];

	t->actor = a;
	t->hfd = hfd;
	t->hnum = hnum;
	as->tid = syscall(SYS_gettid);
	as->pid = getpid();
}

/* fork(): the child is a new actor with a copy of the handle table. */
static long do_fork(struct target *t, int i)
{
	const struct fdr_step *s = &t->steps[i];
	struct shared *sh = t->sh;
	int c = s->aux;
	pid_t pid;

	if (c <= 0 || c >= FDR_MAX_ACTORS) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sh->hfd[c], t->hfd, sizeof(sh->hfd[c]));
	memcpy(sh->hnum[c], t->hnum, sizeof(sh->hnum[c]));
	sh->actors[c].table = c;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct target child = *t;

		enter_actor(&child, c, sh->hfd[c], sh->hnum[c]);
		actor_loop(&child);
		_exit(0);
	}
	/* The supervisor opens a pidfd on it: it sees the end of every process. */
	sh->actors[c].pid = sh->actors[c].tid = pid;
	return trap(-1, i, ACT_HELLO, pid) < 0 ? -1 : 0;
}

static void *thread_main(void *arg)
{
	struct target *t = arg;

	__atomic_store_n(&t->sh->actors[t->actor].tid, (int32_t)syscall(SYS_gettid),
			 __ATOMIC_RELEASE);
	actor_loop(t);
	return NULL;
}

/* A thread: a new actor sharing this process's fd table. */
static long do_thread(struct target *t, int i)
{
	static struct target threads[FDR_MAX_ACTORS];
	const struct fdr_step *s = &t->steps[i];
	int c = s->aux;
	pthread_attr_t attr;
	pthread_t th;
	int err;

	if (c <= 0 || c >= FDR_MAX_ACTORS) {
		errno = EINVAL;
		return -1;
	}
	threads[c] = *t;
	threads[c].actor = c;
	t->sh->actors[c].table = t->sh->actors[t->actor].table;
	t->sh->actors[c].pid = getpid();
	t->sh->actors[c].tid = 0;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = pthread_create(&th, &attr, thread_main, &threads[c]);
	pthread_attr_destroy(&attr);
	if (err) {
		errno = err;
		return -1;
	}
	/* Wait until it knows its tid: a later settle or gone check needs it. */
	while (!__atomic_load_n(&t->sh->actors[c].tid, __ATOMIC_ACQUIRE))
		if (fdr_now_ms() > t->sh->deadline)
			_exit(4);
		else
			pause_briefly();
	return 0;
}

/* SIGKILL a process actor and wait until it is gone. */
static long do_kill_actor(struct target *t, int v)
{
	struct shared *sh = t->sh;

	if (v < 0 || v >= FDR_MAX_ACTORS || !sh->actors[v].pid) {
		errno = EINVAL;
		return -1;
	}
	sh->actors[v].ended = 1;
	if (kill(sh->actors[v].pid, SIGKILL) < 0)
		return -1;
	sh->gone = v + 1;	/* the supervisor waits for its end (ACT_SETTLE) */
	return trap(-1, sh->step, ACT_SETTLE, -1) < 0 ? -1 : 0;
}

/* This actor ends here: a thread alone, a process with all its threads. */
static void __attribute__((noreturn)) do_exit(struct target *t, int i)
{
	struct shared *sh = t->sh;
	struct actor_slot *as = &sh->actors[t->actor];
	int j = next_step(t, i);

	sh->out[i].done = 1;
	as->ended = 1;
	if (j < t->nsteps)
		sh->gone = t->actor + 1;
	pass_turn(t, i);
	if (as->pid != as->tid)
		syscall(SYS_exit, 0);
	_exit(0);
}

/* Is the file at fd a pipe or socket made without O_NONBLOCK? */
static int blocking_file(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	struct stat st;

	return fl >= 0 && !(fl & O_NONBLOCK) && fstat(fd, &st) == 0 &&
	       (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static void do_read(struct target *t, int fd, struct fdr_outcome *o, int drain)
{
	unsigned char buf[FDR_READ_SIZE], all[FDR_READ_SIZE];
	long total = 0, n;

	for (;;) {
		/* A file made blocking would block: say EAGAIN, as a nonblocking one does. */
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		if (blocking_file(fd) && poll(&pf, 1, 0) == 0) {
			n = -1;
			errno = EAGAIN;
		} else {
			n = read(fd, buf, sizeof(buf));
		}
		if (n < 0) {
			if (errno == EAGAIN && drain && total)
				break;
			if (errno == EAGAIN && drain) {
				o->ret = 0;
				o->reached = FDR_NO_HANDLE;
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
	decode(t, fd, all, total < (long)sizeof(all) ? total : (long)sizeof(all), o);
}

static void do_inject(struct target *t, int i, const struct fdr_step *s, struct fdr_outcome *o)
{
	struct shared *sh = t->sh;
	int kind = sh->files[s->file].kind, fd = num(t, s->h);
	long r;

	if (kind == FDR_KIND_PIPE || kind == FDR_KIND_SOCKET) {
		r = trap(-1, i, ACT_INJECT, -1);
	} else if (kind == FDR_KIND_EVENTFD) {
		uint64_t v = efd_unit(s->file);

		r = write(fd, &v, sizeof(v));
	} else if (kind == FDR_KIND_TIMERFD) {
		/* Expired at once (an absolute time in the past); the interval is its token. */
		struct itimerspec its = { .it_interval = { (time_t)(s->file + 1) * TIMER_TOKEN_SECONDS, 0 },
					  .it_value = { 0, 1 } };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		r = timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
		if (r == 0) {
			r = poll(&pfd, 1, 5000);
			if (r == 1)
				r = 0;
			else if (r == 0) {
				r = -1;
				errno = ETIMEDOUT;
			}
		}
	} else if (kind == FDR_KIND_SIGNALFD) {
		r = kill(getpid(), sh->files[s->file].signo);
	} else {
		r = -1;
		errno = EINVAL;
	}
	o->ret = r;
	o->err = r < 0 ? errno : 0;
}

/* ---- io_uring (liburing) ---------------------------------------------
 * A ring belongs to the process that set it up; its state lives in that
 * process's memory, indexed by the ring's handle.  Every submission's
 * user_data is its step, so a reap names which request completed. */
#ifdef FDR_HAVE_LIBURING
#define URING_BUF 256
static struct io_uring rings[FDR_MAX_HANDLES];
static unsigned char uring_buf[FDR_MAX_STEPS][URING_BUF];

static struct io_uring *ring_of(struct target *t, const struct fdr_step *s)
{
	if (s->ep < 0 || s->ep >= FDR_MAX_HANDLES || rings[s->ep].ring_fd <= 0 ||
	    rings[s->ep].ring_fd != num(t, s->ep)) {
		errno = EBADF;
		return NULL;
	}
	return &rings[s->ep];
}

static long uring_submit_one(struct io_uring *ring, struct io_uring_sqe *sqe, int i)
{
	int r;

	io_uring_sqe_set_data64(sqe, (uint64_t)i);
	r = io_uring_submit(ring);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r == 1 ? 0 : (errno = EIO, -1);
}

/* Collect every CQE there is, after waiting up to timeout_ms for the first. */
static long uring_reap(struct target *t, const struct fdr_step *s, struct fdr_outcome *o)
{
	struct io_uring *ring = ring_of(t, s);
	struct io_uring_cqe *cqe;
	int r;

	o->nevents = 0;
	if (!ring)
		return -1;
	if (s->timeout_ms > 0) {
		struct __kernel_timespec ts = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000000L };

		r = io_uring_wait_cqes(ring, &cqe, s->arg > 1 ? (unsigned)s->arg : 1, &ts, NULL);
		if (r < 0 && r != -ETIME) {
			errno = -r;
			return -1;
		}
	} else if (s->timeout_ms < 0) {	/* -1: no timeout, as for wait, poll and select */
		r = io_uring_wait_cqe(ring, &cqe);
		if (r < 0) {
			errno = -r;
			return -1;
		}
	}
	/* Run pending task work, so completions already due are posted. */
	io_uring_get_events(ring);
	while (o->nevents < FDR_MAX_EVENTS && io_uring_peek_cqe(ring, &cqe) == 0) {
		struct fdr_event *e = &o->ev[o->nevents++];
		uint64_t step = cqe->user_data;

		e->events = (uint32_t)cqe->res;
		e->data = step | ((uint64_t)cqe->flags << 32);
		e->reached = FDR_NO_HANDLE;
		e->count = 0;
		if (step < (uint64_t)t->nsteps && t->steps[step].op == FDR_OP_URING_READ && cqe->res > 0) {
			struct fdr_outcome dec;

			memset(&dec, 0, sizeof(dec));
			decode(t, -1, uring_buf[step], cqe->res < URING_BUF ? cqe->res : URING_BUF, &dec);
			e->reached = dec.reached;
			e->count = dec.count;
		}
		io_uring_cqe_seen(ring, cqe);
	}
	return o->nevents;
}

static long uring_step(struct target *t, int i, struct fdr_outcome *o)
{
	const struct fdr_step *s = &t->steps[i];
	struct io_uring *ring;
	struct io_uring_sqe *sqe;
	int r, fd;

	if (s->op == FDR_OP_URING_SETUP) {
		if (s->h < 0 || s->h >= FDR_MAX_HANDLES) {
			errno = EINVAL;
			return -1;
		}
		/* Task work runs only when the ring is entered to reap: completions
		 * (and the file references they drop) happen at a reap step, never
		 * as task work that interrupts whatever the target sleeps in. */
		r = io_uring_queue_init(8, &rings[s->h],
					IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
		if (r < 0) {
			errno = -r;
			return -1;
		}
		set_handle(t, s->h, rings[s->h].ring_fd);
		record_inode(t->sh, s->file, rings[s->h].ring_fd);
		return rings[s->h].ring_fd;
	}
	if (s->op == FDR_OP_URING_REAP)
		return uring_reap(t, s, o);
	ring = ring_of(t, s);
	if (!ring)
		return -1;
	switch (s->op) {
	case FDR_OP_URING_EXIT:
		io_uring_queue_exit(ring);	/* unmaps the rings and closes the fd */
		memset(ring, 0, sizeof(*ring));
		t->hfd[s->ep] = -1;
		return 0;
	case FDR_OP_URING_REGISTER:
		fd = num(t, s->h);
		r = io_uring_register_files(ring, &fd, 1);
		return r < 0 ? (errno = -r, -1) : 0;
	case FDR_OP_URING_UNREGISTER:
		r = io_uring_unregister_files(ring);
		return r < 0 ? (errno = -r, -1) : 0;
	}
	sqe = io_uring_get_sqe(ring);
	if (!sqe) {
		errno = EBUSY;
		return -1;
	}
	if (s->op == FDR_OP_URING_CANCEL) {
		io_uring_prep_cancel64(sqe, (uint64_t)s->aux, 0);
	} else if (s->op == FDR_OP_URING_POLL) {
		if (s->flags & FDR_F_MULTISHOT)
			io_uring_prep_poll_multishot(sqe, num(t, s->h), s->events);
		else
			io_uring_prep_poll_add(sqe, num(t, s->h), s->events);
	} else {	/* FDR_OP_URING_READ */
		io_uring_prep_read(sqe, (s->flags & FDR_F_FIXED) ? 0 : num(t, s->h), uring_buf[i],
				   URING_BUF, (uint64_t)-1);
		if (s->flags & FDR_F_FIXED)
			sqe->flags |= IOSQE_FIXED_FILE;
	}
	return uring_submit_one(ring, sqe, i);
}
#else
static long uring_step(struct target *t, int i, struct fdr_outcome *o)
{
	(void)t, (void)i, (void)o;
	errno = ENOSYS;
	return -1;
}
#endif

static void do_fdinfo(struct target *t, pid_t pid, int fd, struct fdr_outcome *o)
{
	struct shared *sh = t->sh;
	char path[64], buf[16384];
	long n = 0, r;
	int pfd;

	if (pid)
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
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		struct fdr_line *l = &o->line[o->nlines];
		unsigned long long data = 0, ino = 0;
		long long pos = 0;
		unsigned int events = 0, sdev = 0;
		int tfd, got;

		if (strncmp(line, "tfd:", 4) != 0)
			continue;
		if (o->nlines == FDR_MAX_LINES)
			break;
		/* "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x";
		 * ino became %llx in 2026; kernels before 3.18 print three fields. */
		got = sscanf(line, "tfd: %d events: %x data: %llx pos:%lli ino:%llx sdev:%x",
			     &tfd, &events, &data, &pos, &ino, &sdev);
		if (got < 3)
			continue;
		l->tfd = tfd;
		l->tfd_handle = handle_of(t, tfd);
		l->events = events;
		l->data = data;
		l->pos = pos;
		l->ino = ino;
		l->sdev = sdev;
		l->fields = got;
		l->ino_file = FDR_NO_HANDLE;
		if (got == 6) {
			int matches = 0;

			for (int f = 0; f < sh->nfiles; f++) {
				struct fdr_file *ff = &sh->files[f];

				if (ff->known && ff->ino == ino && major(ff->dev) == (sdev >> 20) &&
				    minor(ff->dev) == (sdev & 0xfffff)) {
					matches++;
					l->ino_file = f;
				}
			}
			if (matches > 1)
				l->ino_file = FDR_ANON;
		}
		o->nlines++;
	}
	o->ret = o->nlines;
}

static int via_addfd(int via)
{
	return via == FDR_VIA_ADDFD_SETFD || via == FDR_VIA_ADDFD_SETFD_SEND ||
	       via == FDR_VIA_ADDFD_SETFD_FIXUP || via == FDR_VIA_ADDFD_SETFD_SEND_FIXUP;
}

static int via_send(int via)
{
	return via == FDR_VIA_ADDFD_SETFD_SEND || via == FDR_VIA_ADDFD_SETFD_SEND_FIXUP;
}

static void do_replace(struct target *t, int i, const struct fdr_step *s, struct fdr_outcome *o)
{
	int dst = num(t, s->h);

	if (via_addfd(s->arg)) {
		/* The supervisor fills o->ret/err with its ADDFD's result, and with
		 * SEND may do so only after we are running again: never read them
		 * here.  The trapped syscall's answer is ours. */
		long r = trap(dst, i, ACT_REPLACE, s->h2 >= 0 ? num(t, s->h2) : -1);

		o->sysret = r;
		o->syserr = r < 0 ? errno : 0;
		o->target_fd = dst;
		if (r >= 0) {
			set_handle(t, s->h, dst);
			record_inode(t->sh, s->file, dst);
			o->sysret_handle = handle_of(t, r);
		}
		/* With SEND we run again while the supervisor still holds its copy
		 * of the new file (and the kernel its ADDFD reference): wait until
		 * it has let go, so no later step sees an extra reference. */
		if (via_send(s->arg))
			trap(-1, i, ACT_SYNC, -1);
		return;
	}
	/* dup2/dup3: the target installs the file itself. */
	int src = s->h2 >= 0 ? num(t, s->h2) : target_make_file(t, i, s->kind, s->file);
	long r;

	if (src < 0 && s->h2 < 0) {	/* making the new file failed */
		o->ret = -1;
		o->err = errno;
		return;
	}
	if (s->h2 < 0) {
		record_inode(t->sh, s->file, src);
		if (src == dst) {	/* made on the closed handle's own number: move it */
			int moved = fcntl(src, F_DUPFD, src + 1);

			close(src);
			src = moved;
		}
	}
	/* A by-handle without a number: src is -1 and dup2/dup3 say EBADF. */
	if (s->arg == FDR_VIA_DUP2)
		r = dup2(src, dst);
	else
		r = dup3(src, dst, (s->flags & FDR_F_CLOEXEC) ? O_CLOEXEC : 0);
	o->ret = r;
	o->err = r < 0 ? errno : 0;
	if (r >= 0) {
		set_handle(t, s->h, r);
		o->ret_handle = handle_of(t, r);
	}
	if (s->h2 < 0) {
		if (s->flags & FDR_F_KEEP)
			claim(t, src);		/* a hidden reference, kept to the end */
		else
			close(src);
	}
}

static void run_step(struct target *t, int i)
{
	const struct fdr_step *s = &t->steps[i];
	struct fdr_outcome *o = &t->sh->out[i];
	long r = 0;
	int fd;

	o->ret_handle = o->sysret_handle = o->reached = FDR_NO_HANDLE;
	switch (s->op) {
	case FDR_OP_PIPE: case FDR_OP_SOCKETPAIR: case FDR_OP_EVENTFD:
	case FDR_OP_EPOLL: case FDR_OP_SIGNALFD: case FDR_OP_TIMERFD: case FDR_OP_MEMFD:
		r = fd = target_make_file(t, i, s->kind, s->file);
		if (fd >= 0) {
			set_handle(t, s->h, fd);
			record_inode(t->sh, s->file, fd);
		}
		break;
	case FDR_OP_EPOLL_SIZE:
		r = fd = epoll_create(s->arg);
		if (fd >= 0) {
			set_handle(t, s->h, fd);
			record_inode(t->sh, s->file, fd);
		}
		break;
	case FDR_OP_PWAIT:
	case FDR_OP_PWAIT2:
		r = pwait_events(t, s, o);
		break;
	case FDR_OP_EPOLL_PARAMS:
		r = epoll_params(t, s);
		break;
	case FDR_OP_DUP:
		r = dup(num(t, s->h2));
		if (r >= 0)
			set_handle(t, s->h, r);
		break;
	case FDR_OP_DUP2:
		r = dup2(num(t, s->h2), num(t, s->h));
		if (r >= 0)
			set_handle(t, s->h, r);
		break;
	case FDR_OP_DUP3:
		r = dup3(num(t, s->h2), num(t, s->h), (s->flags & FDR_F_CLOEXEC) ? O_CLOEXEC : 0);
		if (r >= 0)
			set_handle(t, s->h, r);
		break;
	case FDR_OP_CLOSE:
		r = close(num(t, s->h));
		if (r == 0)
			t->hfd[s->h] = -1;
		break;
	case FDR_OP_CTL: {
		struct epoll_event e = { .events = s->events, .data.u64 = s->data };

		r = epoll_ctl(num(t, s->ep), s->arg, num(t, s->h), &e);
		break;
	}
	case FDR_OP_WAIT:
	case FDR_OP_POLL:
	case FDR_OP_SELECT:
		blocking_call(t, s, o);
		return;
	case FDR_OP_JOIN:
		return;		/* the background call filled this outcome in */
	case FDR_OP_URING_REAP:
		blocking_call(t, s, o);
		return;
	case FDR_OP_URING_SETUP: case FDR_OP_URING_POLL: case FDR_OP_URING_READ:
	case FDR_OP_URING_REGISTER: case FDR_OP_URING_UNREGISTER: case FDR_OP_URING_EXIT:
	case FDR_OP_URING_CANCEL:
		r = uring_step(t, i, o);
		break;
	case FDR_OP_FORK:
		r = do_fork(t, i);
		break;
	case FDR_OP_THREAD:
		r = do_thread(t, i);
		break;
	case FDR_OP_KILL_ACTOR:
		r = do_kill_actor(t, s->aux);
		break;
	case FDR_OP_INJECT:
		do_inject(t, i, s, o);
		return;
	case FDR_OP_READ:
	case FDR_OP_DRAIN:
		do_read(t, num(t, s->h), o, s->op == FDR_OP_DRAIN);
		return;
	case FDR_OP_FDINFO:
		do_fdinfo(t, 0, num(t, s->ep), o);
		return;
	case FDR_OP_NOTIFY:
		/* The intercepted syscall: the supervisor runs the hold's steps, then
		 * answers.  The sync trap keeps us here until the hold is over, even
		 * when an ADDFD with SEND answered early. */
		r = trap(num(t, s->h), i, ACT_NOTIFY, -1);
		o->ret = r;
		/* syscall() sets errno only for -4095..-1: a reply outside that range
		 * (an error above 4095, a large negative val) is a plain value. */
		o->err = r == -1 ? errno : 0;
		trap(-1, i, ACT_SYNC, -1);
		/* Only now has the supervisor finished updating the handle table. */
		o->ret_handle = r >= 0 ? handle_of(t, r) : FDR_NO_HANDLE;
		return;
	case FDR_OP_EXIT:
		do_exit(t, i);
	case FDR_OP_GETFD:
		r = fcntl(num(t, s->h), F_GETFD);
		break;
	case FDR_OP_KCMP_TFD: {
		struct kcmp_epoll_slot { uint32_t efd, tfd, toff; } slot = {
			num(t, s->ep), num(t, s->h), s->arg };

		r = syscall(__NR_kcmp, getpid(), getpid(), KCMP_EPOLL_TFD, num(t, s->h2), &slot);
		if (r > 0)
			r = 1;	/* kcmp orders by obfuscated pointers: only "differs" is stable */
		break;
	}
	case FDR_OP_REPLACE:
		do_replace(t, i, s, o);
		return;
	case FDR_OP_HANGUP:
		r = trap(-1, i, ACT_HANGUP, -1);
		break;
	default:
		r = -1;
		errno = EINVAL;
	}
	o->ret = r;
	o->err = r < 0 ? errno : 0;
	if (r >= 0 && (s->op <= FDR_OP_DUP3 || s->op == FDR_OP_MEMFD || s->op == FDR_OP_URING_SETUP ||
		       s->op == FDR_OP_EPOLL_SIZE))
		o->ret_handle = handle_of(t, r);
}

static void setup_failed(struct shared *sh, const char *where)
{
	sh->setup_err = errno;
	snprintf(sh->setup_where, sizeof(sh->setup_where), "%s", where);
	_exit(3);
}

static int send_fd(int sock, int fd)
{
	return send_msg_fd(sock, "L", 1, fd);
}

static int recv_fd(int sock)
{
	char byte;
	int fd;

	if (recv_msg_fd(sock, &byte, 1, &fd) < 0)
		return -1;
	if (fd < 0)
		errno = EPROTO;
	return fd;
}

/* Run this actor's steps as their turns come, until the program is over. */
static void actor_loop(struct target *t)
{
	struct shared *sh = t->sh;

	for (;;) {
		int i = __atomic_load_n(&sh->turn, __ATOMIC_ACQUIRE);

		if (i >= t->nsteps || sh->finished)
			return;
		if (t->steps[i].actor != t->actor) {
			if (fdr_now_ms() > sh->deadline)
				_exit(4);	/* the supervisor gave up on this run */
			futex_wait(&sh->turn, i, 100);
			continue;
		}
		before_turn(t, i);
		sh->step = i;
		if (t->steps[i].flags & FDR_F_BACKGROUND) {
			run_background(t, i);
			continue;
		}
		run_step(t, i);
		sh->out[i].done = 1;
		pass_turn(t, i);
	}
}

static void __attribute__((noreturn))
target_main(struct target *t, int ctl, pid_t supervisor)
{
	struct shared *sh = t->sh;
	sigset_t set;
	int listener;

	kcov_enable_here();	/* first: a guided campaign's trace of this run */
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		setup_failed(sh, "prctl(PR_SET_PDEATHSIG)");
	if (getppid() != supervisor)
		_exit(3);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&set);
	for (int f = 0; f < sh->nfiles; f++)
		if (sh->files[f].kind == FDR_KIND_SIGNALFD)
			sigaddset(&set, sh->files[f].signo);
	sigprocmask(SIG_SETMASK, &set, NULL);
	for (int f = 0; f < sh->nfiles; f++)
		if (sh->files[f].kind == FDR_KIND_SIGNALFD) {
			struct sigaction sa = { .sa_handler = signalfd_signal_caught };

			sigfillset(&sa.sa_mask);	/* one signal per interrupted wait */
			sigaction(sh->files[f].signo, &sa, NULL);
		}
	close_other_fds(ctl);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		setup_failed(sh, "prctl(PR_SET_NO_NEW_PRIVS)");
	listener = fdr_trap_ioctl(FDR_MAGIC);
	if (listener < 0)
		setup_failed(sh, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)");
	if (send_fd(ctl, listener) < 0)
		setup_failed(sh, "sendmsg(listener)");
	close(listener);
	/* Every process of the target keeps ctl open, far above the numbers the
	 * program uses: the supervisor sees its hangup once all of them are gone. */
	struct rlimit rl;
	int high = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 ? (int)rl.rlim_cur - 1 : 1023;

	if (ctl != high && (dup2(ctl, high) < 0 || close(ctl) < 0))
		setup_failed(sh, "dup2(ctl)");
	enter_actor(t, 0, sh->hfd[0], sh->hnum[0]);
	actor_loop(t);
	_exit(0);
}

/* ---- supervisor side -------------------------------------------------- */

struct supervisor {
	const struct fdr_step *steps;
	int nsteps;
	struct shared *sh;
	struct target view;		/* the bound actor's handle table, seen from here */
	pid_t pid;			/* the bound actor's process */
	int pidfd;
	pid_t apid[FDR_MAX_ACTORS];	/* every process actor, and a pidfd on it */
	int apidfd[FDR_MAX_ACTORS];
	int listener;
	int ctl;			/* hangs up once every target process is gone */
	uint64_t last_id;		/* the previous notification's id */
	int64_t deadline;
	int target_gone;		/* a kill step ended the target */
	int kept[FDR_MAX_STEPS];
	int nkept;
	int cur_step, cur_action;	/* the trap being answered */
	struct {			/* an answer its interrupted trap never got */
		int step, action, err;
		long val;
	} unsent;
};

static void respond(struct supervisor *s, uint64_t id, long val, int err)
{
	struct seccomp_notif_resp resp = { .id = id, .val = val, .error = err ? -err : 0 };

	/* ENOENT: the target died meanwhile, or its wait was interrupted (task
	 * work, say io_uring's) and it will make the same trap again: keep the
	 * answer for that repeat, so the action is not done twice. */
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno == ENOENT) {
		s->unsent.step = s->cur_step;
		s->unsent.action = s->cur_action;
		s->unsent.val = val;
		s->unsent.err = err;
	}
}

/* The driver's copy of the file a step installs: its own pidfd_getfd copy of
 * the target's by-handle fd, or a new file of the step's kind (whose peer the
 * driver keeps for injections). */
static int driver_copy(struct supervisor *s, const struct fdr_step *st, int target_fd)
{
	int peer = -1, src;

	if (st->h2 >= 0)
		return syscall(__NR_pidfd_getfd, s->pidfd, target_fd, 0);
	if (st->kind == FDR_KIND_LISTENER)
		return fcntl(s->listener, F_DUPFD_CLOEXEC, 0);
	src = make_file(s->sh, st->kind, st->file, &peer);
	if (peer >= 0)
		s->sh->files[st->file].peer = peer;
	return src;
}

/* Close the driver's copy right after the install, unless the step keeps it. */
static void drop_copy(struct supervisor *s, const struct fdr_step *st, int src)
{
	if (st->flags & FDR_F_KEEP)
		s->kept[s->nkept++] = src;
	else
		close(src);
}

static void supervise_replace(struct supervisor *s, const struct seccomp_notif *n, int i)
{
	const struct fdr_step *st = &s->steps[i];
	struct fdr_outcome *o = &s->sh->out[i];
	struct seccomp_notif_addfd addfd = { .id = n->id };
	int send = via_send(st->arg);
	int fixup = st->arg == FDR_VIA_ADDFD_SETFD_FIXUP || st->arg == FDR_VIA_ADDFD_SETFD_SEND_FIXUP;
	int src = driver_copy(s, st, (int)n->data.args[4]);
	struct fdr_fixup_plan plan;
	long r;

	if (src < 0) {
		o->ret = -1;
		o->err = errno;
		respond(s, n->id, 0, o->err);
		return;
	}
	addfd.flags = SECCOMP_ADDFD_FLAG_SETFD | (send ? SECCOMP_ADDFD_FLAG_SEND : 0);
	addfd.srcfd = src;
	addfd.newfd = (uint32_t)n->data.args[0];
	addfd.newfd_flags = (st->flags & FDR_F_CLOEXEC) ? O_CLOEXEC : 0;
	/* The fixup: find (fd, old) entries before the install, move them after
	 * it, before the target runs its next step (with SEND it is running, but
	 * only towards its sync trap). */
	if (fixup && fdr_fixup_prepare(FDR_FIXUP_SCAN, NULL, s->pid, s->pidfd, addfd.newfd, &plan) < 0) {
		o->ret = -1;
		o->err = errno;
		close(src);
		respond(s, n->id, 0, o->err);
		return;
	}
	r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
	o->ret = r;
	o->err = r < 0 ? errno : 0;
	if (fixup) {
		if (r >= 0)
			fdr_fixup_apply(&plan, src);
		fdr_fixup_release(&plan);
	}
	drop_copy(s, st, src);
	if (r < 0)
		respond(s, n->id, 0, o->err);	/* relay the failure to the target */
	else if (!send)
		respond(s, n->id, 0, 0);
}

/* Write a token through the peer the driver holds. */
static long inject_peer(struct fdr_file *f, int file, int *err)
{
	uint64_t tok = token_of(file);
	long r;

	if (!f || f->peer < 0) {
		*err = EBADF;
		return -1;
	}
	if (f->kind == FDR_KIND_SOCKET)
		r = send(f->peer, &tok, sizeof(tok), MSG_NOSIGNAL | MSG_DONTWAIT);
	else
		r = write(f->peer, &tok, sizeof(tok));
	*err = r < 0 ? errno : 0;
	if (*err == EPIPE)
		consume_sigpipe();
	return r;
}

/* An ADDFD exactly as the step describes it, good or bad. */
/* Make the target's fd table full: its RLIMIT_NOFILE soft limit becomes its lowest
 * free fd number, so no number below the limit is free (fds above it stay open). */
static void fill_table(pid_t pid)
{
	struct rlimit rl;
	char path[64], link[8];
	int fd = 0;

	for (;; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if (readlink(path, link, sizeof(link)) < 0 && errno == ENOENT)
			break;
	}
	if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl) == 0) {
		rl.rlim_cur = (rlim_t)fd;
		prlimit(pid, RLIMIT_NOFILE, &rl, NULL);
	}
}

static void sup_addfd(struct supervisor *s, const struct fdr_step *st, uint64_t id,
		      struct fdr_outcome *o)
{
	union {
		struct seccomp_notif_addfd a;
		unsigned char bytes[64];
	} u;
	size_t size = st->timeout_ms > 0 ? (size_t)st->timeout_ms : sizeof(u.a);
	struct target *v = &s->view;
	int src = -1;
	long r;

	memset(&u, 0, sizeof(u));
	if (size > sizeof(u))
		size = sizeof(u);
	if (st->flags & FDR_F_FILL_TABLE)
		fill_table(s->pid);
	if (st->flags & FDR_F_ID_STALE)
		id = s->last_id;
	else if (st->flags & FDR_F_ID_NEXT)
		id = id + 1;
	if (!(st->flags & FDR_F_BADSRC)) {
		src = driver_copy(s, st, st->h2 >= 0 ? num(v, st->h2) : -1);
		if (src < 0) {
			o->ret = -1;
			o->err = errno;
			return;
		}
		record_inode(s->sh, st->file, src);
	}
	u.a.id = id;
	u.a.flags = (uint32_t)st->arg;
	u.a.srcfd = (uint32_t)src;	/* -1: no such fd */
	u.a.newfd_flags = st->events;
	if (st->flags & FDR_F_NEWFD_RAW) {
		u.a.newfd = (uint32_t)st->data;
	} else if (st->flags & FDR_F_NEWFD_RLIMIT) {
		struct rlimit rl;

		prlimit(s->pid, RLIMIT_NOFILE, NULL, &rl);
		u.a.newfd = (uint32_t)rl.rlim_cur;
	} else if ((st->arg & SECCOMP_ADDFD_FLAG_SETFD) && st->h >= 0) {
		u.a.newfd = (uint32_t)num(v, st->h);
	}
	if (size > sizeof(u.a) && (st->flags & FDR_F_TAIL_NONZERO))
		u.bytes[size - 1] = 1;
	r = ioctl(s->listener, _IOC(_IOC_WRITE, SECCOMP_IOC_MAGIC, 3, size), &u);
	o->ret = r;
	o->err = r < 0 ? errno : 0;
	if (r >= 0 && st->h >= 0) {
		set_handle(v, st->h, r);
		o->ret_handle = handle_of(v, r);
	}
	if (src >= 0)
		drop_copy(s, st, src);
}

static void sup_wait(const struct fdr_step *st, struct fdr_outcome *o, int fd)
{
	long r = wait_events(fd, st->arg, 0, o);

	o->ret = r;
	o->err = r < 0 ? errno : 0;
}

/* The watchdog: no supervisor call may outlive the run's deadline.  A blocking
 * ioctl (an ADDFD the target never takes up, a NOTIF_RECV with nothing to
 * receive) would ignore it; a timer aimed at this thread interrupts such a call
 * (EINTR: no SA_RESTART) shortly after the deadline, and again every
 * WATCHDOG_REPEAT_MS, so the loops see the deadline and end the run as a
 * timeout. */
#define WATCHDOG_GRACE_MS 500
#define WATCHDOG_REPEAT_MS 100

struct watchdog {
	timer_t timer;
	int armed;
	struct sigaction old;
};

static void watchdog_tick(int sig)
{
	(void)sig;
}

static void watchdog_arm(struct watchdog *w, int64_t deadline)
{
	struct sigaction sa;
	struct sigevent ev;
	int64_t first = deadline + WATCHDOG_GRACE_MS - fdr_now_ms();
	struct itimerspec its = {
		.it_value = { first / 1000, (first % 1000) * 1000000L },
		.it_interval = { 0, WATCHDOG_REPEAT_MS * 1000000L },
	};

	w->armed = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_tick;		/* no SA_RESTART: the call returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGRTMAX, &sa, &w->old) < 0)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGRTMAX;
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (first < 1)
		its.it_value.tv_nsec = 1000000L;
	if (timer_create(CLOCK_MONOTONIC, &ev, &w->timer) == 0 &&
	    timer_settime(w->timer, 0, &its, NULL) == 0)
		w->armed = 1;
	else
		sigaction(SIGRTMAX, &w->old, NULL);
}

static void watchdog_disarm(struct watchdog *w)
{
	if (!w->armed)
		return;
	timer_delete(w->timer);
	sigaction(SIGRTMAX, &w->old, NULL);
	w->armed = 0;
}

/* Wait until every process of the target has died (not reaped: that is
 * fdr_run's job for the first, their parents' for the others). */
static int wait_gone(struct supervisor *s)
{
	for (int a = 0; a < FDR_MAX_ACTORS; a++) {
		struct pollfd pf = { .fd = s->apidfd[a], .events = POLLIN };
		int64_t left = s->deadline - fdr_now_ms();

		if (s->apidfd[a] >= 0 && (left <= 0 || poll(&pf, 1, left) != 1))
			return -1;
	}
	return 0;
}

/* Supervisor steps and traps act on one actor: the one whose step it is. */
static void bind_actor(struct supervisor *s, int actor)
{
	int p = actor >= 0 && actor < FDR_MAX_ACTORS ? s->sh->actors[actor].table : 0;

	s->pid = s->apid[p];
	s->pidfd = s->apidfd[p];
	s->view.actor = actor;
	s->view.hfd = s->sh->hfd[p];
	s->view.hnum = s->sh->hnum[p];
}

/* Run supervisor step i; the notification id is that of the current hold. */
static void sup_step(struct supervisor *s, int i, uint64_t id)
{
	const struct fdr_step *st = &s->steps[i];
	struct fdr_outcome *o = &s->sh->out[i];
	struct target *v = &s->view;
	long r = 0;
	int fd, err = 0;

	switch (st->op) {
	case FDR_OP_ADDFD:
		sup_addfd(s, st, id, o);
		break;
	case FDR_OP_RESPOND: {
		struct seccomp_notif_resp resp = { .id = id, .val = (int64_t)st->data,
						   .error = -st->arg, .flags = st->events };

		r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
		o->ret = r;
		o->err = r < 0 ? errno : 0;
		break;
	}
	case FDR_OP_SUP_FDINFO:
		do_fdinfo(v, s->pid, num(v, st->ep), o);
		break;
	case FDR_OP_SUP_WAIT:
		fd = syscall(__NR_pidfd_getfd, s->pidfd, num(v, st->ep), 0);
		if (fd < 0) {
			o->ret = -1;
			o->err = errno;
			break;
		}
		sup_wait(st, o, fd);
		close(fd);
		break;
	case FDR_OP_SUP_KCMP: {
		struct { uint32_t efd, tfd, toff; } slot = { num(v, st->ep), num(v, st->h), st->arg };

		r = syscall(__NR_kcmp, s->pid, s->pid, KCMP_EPOLL_TFD, num(v, st->h2), &slot);
		o->ret = r > 0 ? 1 : r;
		o->err = r < 0 ? errno : 0;
		break;
	}
	case FDR_OP_SUP_INJECT:
		r = inject_peer(&s->sh->files[st->file], st->file, &err);
		o->ret = r;
		o->err = err;
		break;
	case FDR_OP_KILL:
		s->sh->killed = 1;
		kill(-s->apid[0], SIGKILL);	/* the target's process group: every actor */
		kill(s->apid[0], SIGKILL);
		r = wait_gone(s);
		o->ret = r;
		o->err = r < 0 ? ETIMEDOUT : 0;
		s->target_gone = 1;
		break;
	case FDR_OP_LISTENER_WAIT:
		fd = epoll_create1(EPOLL_CLOEXEC);
		if (fd >= 0) {
			struct epoll_event e = { .events = st->events, .data.u64 = st->data };

			if (epoll_ctl(fd, EPOLL_CTL_ADD, s->listener, &e) == 0)
				sup_wait(st, o, fd);
			else {
				o->ret = -1;
				o->err = errno;
			}
			close(fd);
		}
		break;
	case FDR_OP_NOTIF_RECV: {
		/* Only when it cannot block: with nothing pending and the filter
		 * still in use (before bfafe5efa975 a dead target keeps it in use
		 * until it is reaped) NOTIF_RECV would sleep; say EAGAIN instead. */
		struct pollfd pf = { .fd = s->listener, .events = POLLIN };
		struct seccomp_notif n;

		if (poll(&pf, 1, 0) != 1) {
			o->ret = -1;
			o->err = EAGAIN;
			break;
		}
		memset(&n, 0, sizeof(n));
		r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &n);
		o->ret = r;
		o->err = r < 0 ? errno : 0;
		break;
	}
	default:
		o->ret = -1;
		o->err = EINVAL;
	}
	o->done = 1;
}

/* An ADDFD with SEND answered the hold's notification: the target is running
 * again.  Wait until it has returned to user space (its deferred fputs done,
 * the notification gone) and trapped for the sync, so the rest of the hold
 * sees one state, not a race. */
static void wait_sync(struct supervisor *s)
{
	struct pollfd pf = { .fd = s->listener, .events = POLLIN };
	int64_t left = s->deadline - fdr_now_ms();

	if (left > 0)
		poll(&pf, 1, left);
}

/* A notify step trapped: run the hold's supervisor steps, up to its respond
 * (or a kill), while the target waits in the syscall. */
static void hold(struct supervisor *s, const struct seccomp_notif *n)
{
	int i = (int)n->data.args[2], answered = 0;

	for (int j = i + 1; j < s->nsteps && (s->steps[j].flags & FDR_F_SUP); j++) {
		if (s->sh->out[j].done)
			continue;	/* ran before the notification was received */
		s->sh->step = j;
		sup_step(s, j, n->id);
		if (s->steps[j].op == FDR_OP_ADDFD && (s->steps[j].arg & SECCOMP_ADDFD_FLAG_SEND) &&
		    s->sh->out[j].ret >= 0)
			wait_sync(s);
		/* A NOTIF_SEND refused for its arguments (EINVAL) leaves the
		 * notification answerable: the hold goes on. */
		if (s->steps[j].op == FDR_OP_RESPOND &&
		    !(s->sh->out[j].ret < 0 && s->sh->out[j].err == EINVAL)) {
			answered = 1;
			break;
		}
		if (s->target_gone)
			break;
	}
	if (!answered && !s->target_gone)
		respond(s, n->id, 0, 0);
	s->last_id = n->id;
}

/* A notification is pending but not yet received: if it opens a hold whose
 * first steps must run now, run them with the id it will have (ids are
 * handed out in sequence per filter). */
static void before_recv(struct supervisor *s)
{
	int i = s->sh->step;

	if (i < 0 || i >= s->nsteps || s->steps[i].op != FDR_OP_NOTIFY)
		return;
	for (int j = i + 1; j < s->nsteps && (s->steps[j].flags & FDR_F_PENDING); j++)
		if (!s->sh->out[j].done)	/* not again for the hold's sync trap */
			sup_step(s, j, s->last_id + 1);
}

static void supervise(struct supervisor *s, const struct seccomp_notif *n)
{
	int i = (int)n->data.args[2], action = (int)n->data.args[3];
	const struct fdr_step *st;
	struct fdr_file *f;
	long r;
	int err;

	if (i < 0 || i >= s->nsteps) {
		respond(s, n->id, 0, EINVAL);
		return;
	}
	st = &s->steps[i];
	bind_actor(s, st->actor);
	f = (st->file >= 0 && st->file < s->sh->nfiles) ? &s->sh->files[st->file] : NULL;
	if (action != ACT_NOTIFY)
		s->last_id = n->id;	/* hold() sets it once its steps are done */
	if (i == s->unsent.step && action == s->unsent.action && action != ACT_NOTIFY &&
	    action != ACT_REPLACE) {
		/* The same trap again: its first answer was lost; the action was done. */
		s->unsent.step = -1;
		respond(s, n->id, s->unsent.val, s->unsent.err);
		return;
	}
	s->cur_step = i;
	s->cur_action = action;
	switch (action) {
	case ACT_HANDOFF:
		r = syscall(__NR_pidfd_getfd, s->pidfd, (int)n->data.args[0], 0);
		if (r >= 0 && f)
			f->peer = r;
		respond(s, n->id, r < 0 ? -1 : 0, r < 0 ? errno : 0);
		break;
	case ACT_INJECT:
		if (st->timeout_ms > 0 && f && f->peer >= 0) {
			/* wait_release: the file's last reference may go at a moment
			 * of the kernel's own; its peer reports POLLERR (pipe) or
			 * POLLHUP (socket) once it has. */
			struct pollfd pf = { .fd = f->peer, .events = 0 };

			poll(&pf, 1, st->timeout_ms);
		}
		r = inject_peer(f, st->file, &err);
		respond(s, n->id, r, err);
		break;
	case ACT_NOTIFY:
		hold(s, n);
		break;
	case ACT_REPLACE:
		supervise_replace(s, n, i);
		break;
	case ACT_SYNC:
		respond(s, n->id, 0, 0);
		break;
	case ACT_SETTLE:
		/* Settle the background calls of every other actor, and wait for an
		 * ended one, with this process's fds rather than the target's. */
		if (settle_all(s->sh, st->actor) < 0)
			respond(s, n->id, -1, ETIMEDOUT);
		else
			respond(s, n->id, 0, 0);
		break;
	case ACT_HELLO:
		/* A process actor was forked: watch its end. */
		if (st->aux > 0 && st->aux < FDR_MAX_ACTORS && s->apidfd[st->aux] < 0) {
			s->apid[st->aux] = (pid_t)n->data.args[4];
			s->apidfd[st->aux] = syscall(__NR_pidfd_open, s->apid[st->aux], 0);
		}
		if (st->aux > 0 && st->aux < FDR_MAX_ACTORS && s->apidfd[st->aux] >= 0)
			respond(s, n->id, 0, 0);
		else
			respond(s, n->id, -1, errno ? errno : EINVAL);
		break;
	case ACT_HANGUP:
		/* The driver closes its peer: the pipe reader sees HUP, the socket RDHUP. */
		if (!f || f->peer < 0) {
			respond(s, n->id, -1, EBADF);
			break;
		}
		close(f->peer);
		f->peer = -1;
		respond(s, n->id, 0, 0);
		break;
	default:
		respond(s, n->id, -1, EINVAL);
	}
}

static void read_stack(pid_t pid, pid_t tid, char *out, size_t len)
{
	char path[64];
	long n;
	int fd;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(out, len, "(%s unreadable: %s)", path, strerror(errno));
		return;
	}
	n = read(fd, out, len - 1);
	out[n > 0 ? n : 0] = 0;
	close(fd);
}

/* ---- the zygote --------------------------------------------------------
 * Forking the caller, a large Python process, costs a millisecond or more in
 * page tables alone.  fdr_zygote_start() execs a small helper (fdr-zygote,
 * this file with zygote.c's main) once; from then on it forks the targets:
 * the caller sends it a request over a socket, with the target's end of ctl,
 * and gets the target's pid back, then its wait status once reaped.  Steps
 * and outcomes live in a memfd region both map.  Without the helper, or in a
 * process that did not start it (a fork of the one that did), fdr_run forks
 * targets itself as before. */

struct region {
	struct fdr_step steps[FDR_MAX_STEPS];
	struct shared sh;	/* FDR_MAX_STEPS outcomes follow it */
};
#define REGION_SIZE (sizeof(struct region) + (size_t)FDR_MAX_STEPS * sizeof(struct fdr_outcome))

enum { Z_HELLO = 1, Z_SPAWN, Z_PID, Z_REAP, Z_STATUS };

struct zmsg {
	int32_t kind;
	int32_t a, b;
};

static struct {
	pid_t owner;		/* the process that started it */
	pid_t pid;
	int sock;
	struct region *rg;
	pthread_mutex_t lock;
} zy = { .pid = -1, .sock = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static int zsend(int sock, const struct zmsg *m, int fd)
{
	return send_msg_fd(sock, m, sizeof(*m), fd);
}

/* Receive one message (and its fd, when fd is not NULL), waiting up to ms. */
static int zrecv(int sock, struct zmsg *m, int *fd, int ms)
{
	struct pollfd pf = { .fd = sock, .events = POLLIN };
	int got;

	if (ms >= 0 && poll(&pf, 1, ms) != 1)
		return -1;
	if (recv_msg_fd(sock, m, sizeof(*m), &got) < 0)
		return -1;
	if (fd)
		*fd = got;
	else if (got >= 0)
		close(got);
	return 0;
}

/* The helper is gone or confused: forget it (its zombie is reaped). */
static void zygote_lost(void)
{
	if (zy.sock >= 0)
		close(zy.sock);
	if (zy.pid > 0) {
		kill(zy.pid, SIGKILL);
		while (waitpid(zy.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	zy.sock = -1;
	zy.pid = -1;
}

int fdr_zygote_start(const char *path)
{
	int sv[2], memfd, err;
	struct zmsg hello;
	pid_t pid;

	pthread_mutex_lock(&zy.lock);
	if (zy.owner != getpid()) {	/* inherited through a fork: not ours to use */
		if (zy.sock >= 0)
			close(zy.sock);
		if (zy.rg)
			munmap(zy.rg, REGION_SIZE);
		zy.sock = zy.pid = -1;
		zy.rg = NULL;
	}
	if (zy.pid > 0) {
		pthread_mutex_unlock(&zy.lock);
		return 0;
	}
	memfd = syscall(__NR_memfd_create, "fdr-region", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, REGION_SIZE) < 0)
		goto fail_memfd;
	if (!zy.rg) {
		zy.rg = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (zy.rg == MAP_FAILED) {
			zy.rg = NULL;
			goto fail_memfd;
		}
	} else if (mmap(zy.rg, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			memfd, 0) == MAP_FAILED) {
		goto fail_memfd;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail_memfd;
	pid = fork();
	if (pid == 0) {
		/* The helper finds its socket at 3 and the region at 4. */
		int s = fcntl(sv[1], F_DUPFD, 10), m = fcntl(memfd, F_DUPFD, 10);

		if (s < 0 || m < 0 || dup2(s, 3) < 0 || dup2(m, 4) < 0)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(path, "fdr-zygote", (char *)NULL);
		_exit(127);
	}
	err = errno;
	close(sv[1]);
	close(memfd);
	if (pid < 0) {
		close(sv[0]);
		errno = err;
		goto fail;
	}
	zy.pid = pid;
	zy.sock = sv[0];
	zy.owner = getpid();
	if (zrecv(zy.sock, &hello, NULL, 5000) < 0 || hello.kind != Z_HELLO) {
		zygote_lost();
		errno = ECHILD;
		goto fail;
	}
	pthread_mutex_unlock(&zy.lock);
	return 0;
fail_memfd:
	err = errno;
	if (memfd >= 0)
		close(memfd);
	errno = err;
fail:
	pthread_mutex_unlock(&zy.lock);
	return -1;
}

int fdr_zygote_pid(void)
{
	return zy.owner == getpid() ? zy.pid : -1;
}

/* The helper's side: fork a target per request, report its pid and status. */
int fdr_zygote_main(int sock, int memfd)
{
	struct region *rg = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	struct zmsg m = { .kind = Z_HELLO };
	pid_t self = getpid();

	if (rg == MAP_FAILED || getppid() == 1)
		return 1;
	close(memfd);
	signal(SIGPIPE, SIG_IGN);
	/* Orphaned actors come to us, and nobody is reaped before the run ends. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (zsend(sock, &m, -1) < 0)
		return 1;
	for (;;) {
		int ctl, status = 0;
		pid_t pid;

		if (zrecv(sock, &m, &ctl, -1) < 0 || m.kind != Z_SPAWN || ctl < 0)
			return 0;	/* the caller is gone */
		pid = fork();
		if (pid == 0) {
			struct target t = { .steps = rg->steps, .nsteps = m.a, .nhandles = m.b,
					    .sh = &rg->sh };

			close(sock);
			target_main(&t, ctl, self);
		}
		close(ctl);
		m.kind = Z_PID;
		m.a = pid < 0 ? -errno : pid;
		if (zsend(sock, &m, -1) < 0)
			return 1;
		if (pid < 0)
			continue;
		/* Reap only when the caller says the run is over: a reap releases
		 * the dead process's signal handlers, which wakes the epoll entries
		 * of signalfds registered by it (POLLFREE).  Then every orphan. */
		if (zrecv(sock, &m, NULL, -1) < 0 || m.kind != Z_REAP)
			return 1;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		m.kind = Z_STATUS;
		m.a = status;
		if (zsend(sock, &m, -1) < 0)
			return 1;
	}
}

/* Ask the helper for a target; its pid, or -1 (then the helper is forgotten). */
static pid_t zygote_spawn(int ctl, int nsteps, int nhandles, int ms)
{
	struct zmsg m = { .kind = Z_SPAWN, .a = nsteps, .b = nhandles };

	if (zsend(zy.sock, &m, ctl) < 0 || zrecv(zy.sock, &m, NULL, ms) < 0 || m.kind != Z_PID) {
		zygote_lost();
		return -1;
	}
	if (m.a < 0) {
		errno = -m.a;
		return -1;
	}
	return m.a;
}

/* Have the helper reap its last target (dead by now) and its orphans; the
 * target's wait status. */
static int zygote_status(int *status)
{
	struct zmsg m = { .kind = Z_REAP };

	if (zsend(zy.sock, &m, -1) < 0 || zrecv(zy.sock, &m, NULL, 5000) < 0 || m.kind != Z_STATUS) {
		zygote_lost();
		return -1;
	}
	*status = m.a;
	return 0;
}

/* Serve the target until every process of it is gone, the run times out,
 * or an actor dies unexpectedly (a crash). */
static void serve(struct supervisor *s, struct fdr_result *res)
{
	struct shared *sh = s->sh;
	int watched[FDR_MAX_ACTORS] = { 0 };

	for (;;) {
		struct pollfd pf[2 + FDR_MAX_ACTORS] = {
			{ .fd = s->listener, .events = POLLIN }, { .fd = s->ctl, .events = POLLIN } };
		int actor_of[2 + FDR_MAX_ACTORS], n = 2;
		int64_t left = s->deadline - fdr_now_ms();

		for (int a = 0; a < FDR_MAX_ACTORS; a++)
			if (s->apidfd[a] >= 0 && !watched[a]) {
				pf[n].fd = s->apidfd[a];
				pf[n].events = POLLIN;
				actor_of[n++] = a;
			}
		if (left <= 0 || poll(pf, n, left) == 0) {
			res->status = FDR_RUN_TIMEOUT;
			return;
		}
		if (pf[0].revents & POLLIN) {
			struct seccomp_notif note;

			memset(&note, 0, sizeof(note));
			before_recv(s);
			if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &note) == 0)
				supervise(s, &note);
			if (s->target_gone)
				return;
			continue;
		}
		if ((pf[1].revents & (POLLHUP | POLLERR)) || (pf[0].revents & (POLLHUP | POLLERR)))
			return;		/* every process of the target is gone */
		for (int k = 2; k < n; k++)
			if (pf[k].revents) {
				watched[actor_of[k]] = 1;
				if (!sh->finished && !sh->killed && !sh->actors[actor_of[k]].ended)
					return;	/* it died in the middle: a crash */
			}
	}
}

static void put_shared(struct shared *sh, size_t size, int via_zygote)
{
	if (via_zygote)
		pthread_mutex_unlock(&zy.lock);
	else
		munmap(sh, size);
}

/* One fdr_run(): what its phases hand each other. */
struct run {
	const struct fdr_step *steps;
	int nsteps, nhandles, nfiles;
	size_t size;			/* of the shared region: struct shared and the outcomes */
	struct shared *sh;
	int via_zygote;			/* the region is the zygote's (its lock is held) */
	int zspawned;			/* the zygote forked the target */
	int ctl[2];			/* supervisor end, target end */
	pid_t pid;			/* the target's first process */
	sigset_t oldset;		/* the caller's signal mask */
	struct supervisor sup;
};

/* Phase 1: the arguments make sense. */
static int run_check_args(const struct fdr_step *steps, int nsteps, int nhandles, int nfiles,
			  int timeout_ms)
{
	if (nsteps < 0 || nsteps > FDR_MAX_STEPS || nhandles < 0 || nhandles > FDR_MAX_HANDLES ||
	    nfiles < 0 || nfiles > FDR_MAX_FILES || timeout_ms <= 0)
		return -1;
	for (int i = 0; i < nsteps; i++)
		if (steps[i].actor < 0 || steps[i].actor >= FDR_MAX_ACTORS ||
		    steps[i].nhs < 0 || steps[i].nhs > FDR_MAX_POLL)
			return -1;
	return 0;
}

/* Phase 2: the shared region, the zygote's when it is ours and free, else a
 * mapping of our own; the files' kinds and signals, the handle tables, the
 * first turn and the deadline in it. */
static int run_share(struct run *r, const int32_t *file_kinds, int timeout_ms)
{
	struct shared *sh;
	int nsig = 0;

	if (zy.pid > 0 && zy.owner == getpid() && fdr_kcov.fd < 0 &&
	    pthread_mutex_trylock(&zy.lock) == 0) {
		if (zy.pid > 0)
			r->via_zygote = 1;
		else
			pthread_mutex_unlock(&zy.lock);
	}
	if (r->via_zygote) {
		sh = &zy.rg->sh;
		memset(sh, 0, r->size);
		memcpy(zy.rg->steps, r->steps, (size_t)r->nsteps * sizeof(*r->steps));
	} else {
		sh = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED)
			return -1;
	}
	r->sh = sh;
	sh->step = -1;
	sh->nfiles = r->nfiles;
	for (int f = 0; f < r->nfiles; f++) {
		sh->files[f].kind = file_kinds[f] & ~(FDR_KIND_BLOCKING | FDR_KIND_WRITE_END);
		sh->files[f].blocking = !!(file_kinds[f] & FDR_KIND_BLOCKING);
		sh->files[f].write_end = !!(file_kinds[f] & FDR_KIND_WRITE_END);
		sh->files[f].peer = -1;
		if (file_kinds[f] == FDR_KIND_SIGNALFD)
			sh->files[f].signo = SIGRTMIN + SIGNO_BASE_OFFSET + nsig++;
	}
	if (SIGRTMIN + SIGNO_BASE_OFFSET + nsig > SIGRTMAX + 1) {
		put_shared(sh, r->size, r->via_zygote);
		errno = E2BIG;
		return -1;
	}
	for (int i = 0; i < r->nsteps; i++)
		sh->out[i].reached = sh->out[i].ret_handle = sh->out[i].sysret_handle = FDR_NO_HANDLE;
	for (int a = 0; a < FDR_MAX_ACTORS; a++)
		for (int h = 0; h < FDR_MAX_HANDLES; h++)
			sh->hfd[a][h] = sh->hnum[a][h] = -1;
	for (int a = 0; a < FDR_MAX_ACTORS; a++)
		r->sup.apidfd[a] = -1;
	r->sup.unsent.step = r->sup.cur_step = -1;
	sh->turn = 0;
	while (sh->turn < r->nsteps && (r->steps[sh->turn].flags & FDR_F_SUP))
		sh->turn++;
	sh->finished = sh->turn >= r->nsteps;
	sh->deadline = fdr_now_ms() + timeout_ms;
	return 0;
}

/* Phase 3: the target, forked by the zygote or here, with the control socket
 * between us; the supervisor bound to its first process.  SIGPIPE is blocked
 * from here on: writes to a peer whose subject file is gone raise it. */
static int run_spawn(struct run *r, int timeout_ms)
{
	struct supervisor *sup = &r->sup;
	sigset_t pipeset;
	pid_t self = getpid();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->ctl) < 0) {
		put_shared(r->sh, r->size, r->via_zygote);
		return -1;
	}
	sup->sh = r->sh;
	sup->deadline = r->sh->deadline;
	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipeset, &r->oldset);

	kcov_before_run();
	r->pid = -1;
	if (r->via_zygote) {
		r->pid = zygote_spawn(r->ctl[1], r->nsteps, r->nhandles, timeout_ms);
		r->zspawned = r->pid > 0;
	}
	if (!r->zspawned)	/* no helper, or it just failed us: fork here */
		r->pid = fork();
	if (r->pid == 0) {
		struct target t = { .steps = r->steps, .nsteps = r->nsteps,
				    .nhandles = r->nhandles, .sh = r->sh };

		close(r->ctl[0]);
		target_main(&t, r->ctl[1], self);
	}
	close(r->ctl[1]);
	if (r->pid < 0) {
		close(r->ctl[0]);
		pthread_sigmask(SIG_SETMASK, &r->oldset, NULL);
		put_shared(r->sh, r->size, r->via_zygote);
		return -1;
	}
	setpgid(r->pid, r->pid);
	sup->ctl = r->ctl[0];
	sup->apid[0] = r->pid;
	sup->apidfd[0] = syscall(__NR_pidfd_open, r->pid, 0);
	sup->view.sh = r->sh;
	bind_actor(sup, 0);
	return 0;
}

/* Phase 4: supervise under the watchdog until the target is gone or the run
 * times out; then the supervisor steps that follow the target's end. */
static void run_supervise(struct run *r, struct fdr_result *res, int timeout_ms)
{
	struct supervisor *sup = &r->sup;
	struct shared *sh = r->sh;
	struct watchdog dog;
	/* The listener arrives over ctl, or the target's setup fails and ctl closes. */
	struct pollfd cp = { .fd = r->ctl[0], .events = POLLIN };

	if (poll(&cp, 1, timeout_ms) == 1)
		sup->listener = recv_fd(r->ctl[0]);

	/* The settle loop's short pauses: without this, each lasts the 50 us slack. */
	int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);

	prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
	watchdog_arm(&dog, sh->deadline);
	if (sup->listener >= 0 && sup->apidfd[0] >= 0) {
		serve(sup, res);
		/* Supervisor steps after the target's end (exits or a kill) run now. */
		if (res->status == FDR_RUN_OK && (sh->finished || sh->killed) && wait_gone(sup) == 0)
			for (int j = 0; j < r->nsteps; j++)
				if ((r->steps[j].flags & FDR_F_SUP) && !sh->out[j].done) {
					sh->step = j;
					sup_step(sup, j, sup->last_id);
				}
	} else if (sup->apidfd[0] < 0) {
		res->status = FDR_RUN_SETUP;
		res->err = errno;
		snprintf(res->where, sizeof(res->where), "pidfd_open");
	}
	watchdog_disarm(&dog);
	if (slack > 0)
		prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
	if (res->status == FDR_RUN_OK && fdr_now_ms() > sh->deadline + WATCHDOG_GRACE_MS &&
	    !sh->finished && !sh->killed)
		res->status = FDR_RUN_TIMEOUT;	/* the watchdog cut a supervisor call short */
	if (res->status == FDR_RUN_TIMEOUT) {
		int i = sh->step >= 0 && sh->step < r->nsteps ? sh->step : 0;
		struct actor_slot *as = &sh->actors[r->nsteps ? r->steps[i].actor : 0];

		read_stack(as->pid ? as->pid : r->pid, as->tid ? as->tid : r->pid, res->stack,
			   sizeof(res->stack));
	}
}

/* Phase 5: whatever is left of the target goes, and is gone before we return;
 * how it ended goes into res. */
static void run_end_target(struct run *r, struct fdr_result *res)
{
	struct shared *sh = r->sh;
	int status = 0;

	kill(-r->pid, SIGKILL);
	kill(r->pid, SIGKILL);
	wait_gone(&r->sup);
	if (r->zspawned) {
		if (zygote_status(&status) < 0)
			status = 0;
	} else {
		while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (res->status == FDR_RUN_OK && !sh->finished && !sh->killed) {
		if (sh->setup_where[0]) {
			res->status = FDR_RUN_SETUP;
			res->err = sh->setup_err;
			snprintf(res->where, sizeof(res->where), "%s", sh->setup_where);
		} else {
			res->status = FDR_RUN_CRASHED;
		}
	}
	if (WIFSIGNALED(status))
		res->signal = WTERMSIG(status);
	else if (WIFEXITED(status))
		res->exit_code = WEXITSTATUS(status);
	res->step = sh->step;
}

/* Phase 6: close what the run opened, drop its SIGPIPEs, restore the caller's
 * mask, copy the outcomes out and let the region go. */
static void run_release(struct run *r, struct fdr_outcome *out)
{
	struct supervisor *sup = &r->sup;
	struct shared *sh = r->sh;

	for (int f = 0; f < r->nfiles; f++)
		if (sh->files[f].peer >= 0)
			close(sh->files[f].peer);
	for (int k = 0; k < sup->nkept; k++)
		close(sup->kept[k]);
	if (sup->listener >= 0)
		close(sup->listener);
	for (int a = 0; a < FDR_MAX_ACTORS; a++)
		if (sup->apidfd[a] >= 0)
			close(sup->apidfd[a]);
	close(r->ctl[0]);
	consume_sigpipe();
	pthread_sigmask(SIG_SETMASK, &r->oldset, NULL);
	memcpy(out, sh->out, (size_t)r->nsteps * sizeof(struct fdr_outcome));
	put_shared(sh, r->size, r->via_zygote);
}

int fdr_run(const struct fdr_step *steps, int nsteps, int nhandles, int nfiles,
	    const int32_t *file_kinds, int timeout_ms,
	    struct fdr_outcome *out, struct fdr_result *res)
{
	struct run r = {
		.steps = steps, .nsteps = nsteps, .nhandles = nhandles, .nfiles = nfiles,
		.size = sizeof(struct shared) + (size_t)nsteps * sizeof(struct fdr_outcome),
		.sup = { .steps = steps, .nsteps = nsteps, .listener = -1, .pidfd = -1, .ctl = -1,
			 .view = { .steps = steps, .nsteps = nsteps, .nhandles = nhandles } },
	};

	memset(res, 0, sizeof(*res));
	if (run_check_args(steps, nsteps, nhandles, nfiles, timeout_ms) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (run_share(&r, file_kinds, timeout_ms) < 0 || run_spawn(&r, timeout_ms) < 0)
		return -1;
	run_supervise(&r, res, timeout_ms);
	run_end_target(&r, res);
	run_release(&r, out);
	return 0;
}

/* ---- feature probes (syscall numbers from this build's headers) ------- */

int fdr_probe_user_notif(void)
{
	uint32_t action = SECCOMP_RET_USER_NOTIF;

	return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int fdr_probe_kcmp(void)
{
	pid_t pid = getpid();

	return syscall(__NR_kcmp, pid, pid, 0 /* KCMP_FILE */, 0, 0) >= 0 || errno != ENOSYS;
}

int fdr_probe_io_uring(void)
{
#ifdef __NR_io_uring_setup
	/* NULL params: EFAULT where io_uring exists; ENOSYS or EPERM where it is off. */
	return syscall(__NR_io_uring_setup, 1, NULL) < 0 && errno == EFAULT;
#else
	return 0;
#endif
}

int fdr_probe_defer_taskrun(void)
{
#ifdef __NR_io_uring_setup
	/* struct io_uring_params: flags is its third word; 6.1 added these two. */
	uint32_t params[30] = { 0 };
	int fd;

	params[2] = (1U << 12) | (1U << 13);	/* SINGLE_ISSUER | DEFER_TASKRUN */
	fd = syscall(__NR_io_uring_setup, 1, params);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
#else
	return 0;
#endif
}

int fdr_have_liburing(void)
{
#ifdef FDR_HAVE_LIBURING
	return 1;
#else
	return 0;
#endif
}
