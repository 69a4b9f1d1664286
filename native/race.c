// SPDX-License-Identifier: GPL-2.0
/*
 * The race engine: concurrent replaces of one fd, run for real.
 *
 * fdr_race() forks a target (its own process group, PR_SET_PDEATHSIG(SIGKILL),
 * no_new_privs, a seccomp filter trapping one magic ioctl with
 * SECCOMP_RET_USER_NOTIF; the listener comes back over a unix socket with
 * SCM_RIGHTS).  The target's threads and the calling thread (the supervisor,
 * plus a second supervisor thread where a scenario needs two) then run many
 * iterations of one race on the target's fd RACE_FD.
 *
 * Each iteration: fresh files, a two-party spin barrier, a per-iteration
 * delay for one party or the other, the two racing operations, then a
 * verdict read off what the kernel left behind (which file a write's EPIPE
 * says is gone, which token a read returns, what epoll_wait and the epoll
 * fdinfo report, what ADDFD returned).  The verdict puts the iteration in
 * one interleaving class and checks the scenario's invariants.  Timestamps
 * only steer the delays, never a verdict.
 *
 * The delays follow the idea of LTP's fuzzy sync: the first CAL_ITERS
 * iterations run undelayed and measure how long each racing operation takes
 * and how far apart the two parties start; later iterations alternate
 * between sweeping the start offset across +-window (window: both durations
 * and half as much again), which covers both orders and the overlap by
 * construction, and sweeping a quarter of that, where the operations overlap
 * most.  Both sweeps centre on the offset where the kernel showed the order
 * flipping, steered by the verdicts (0 at first).  Sweeps go in van der
 * Corput order, so any run of iterations spreads over the whole range.  The
 * two sides run on two CPUs of their own (see pin()).  Nothing sleeps to
 * synchronise: parties spin, and waits that may be long block on a futex
 * with a short timeout that only serves to check the run's deadline.
 *
 * The calling thread blocks every signal for the run (an interrupted ADDFD
 * would be withdrawn), runs on one CPU while it races, and gets its mask and
 * affinity back before fdr_race() returns.
 *
 * The caller is a multi-threaded Python process: the child only ever _exits,
 * every blocking call has a deadline, and every process, thread and fd made
 * here is reaped, joined or closed before fdr_race() returns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>		/* before linux/seccomp.h, which uses _IOWR */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>

#include "race.h"

/* Fallbacks for headers older than the kernels we run on. */
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SETFD
#define SECCOMP_ADDFD_FLAG_SETFD (1UL << 0)
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

#if defined(__x86_64__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define RACE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__s390x__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RACE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__powerpc64__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_PPC64
#elif defined(__arm__)
#define RACE_AUDIT_ARCH AUDIT_ARCH_ARM
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

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define RACE_MAGIC 0x46445252U		/* "FDRR": the trapped ioctl request */
#define RACE_FD race_fd		/* the target's fd under race: far above anything
					 * the target allocates, so never reused behind our back */
#define RACE_FD_MAX 100			/* RACE_FD, unless RLIMIT_NOFILE is lower */
#define RACE_FD_MIN 31			/* the target allocates fds below this */
static int race_fd = RACE_FD_MAX;
#define TOKEN_MAGIC (0x5243ULL << 48)	/* "RC": a write's token, with iteration and file */
#define DATA_MAGIC (0xE9ULL << 56)	/* epoll data of iteration k: DATA_MAGIC | k */
#define CAL_ITERS 32			/* undelayed iterations that calibrate the sweep */
#define FLIP_LIMIT 16			/* the flip point stays within +-16 windows */
#define SPIN_BEFORE_BLOCK 256		/* await(): spins before a futex wait */
#define WAITER_SAFETY_MS 15000		/* a waiter's epoll_wait timeout: a safety net only */

/* Which file a token names. */
enum { TOK_OLD = 1, TOK_A, TOK_B, TOK_NEW };

/* ---- shared state ------------------------------------------------------- */

/* The two racing parties' meeting point and the delay sweep.  Written by the
 * parties (arrive, start, end) and by the iteration's verifier (the rest). */
struct fz {
	_Atomic int64_t arrive[2];	/* the barrier round each side reached: 2k+1, 2k+2 */
	_Atomic int64_t start[2];	/* when each side's racing operation began, ns */
	_Atomic int64_t end[2];		/* and ended */
	_Atomic int64_t skew;		/* median of start[0] - start[1], undelayed */
	_Atomic int64_t window;		/* half-range of the full sweep; 0: calibrating */
	_Atomic int64_t flip;		/* offset where the order flips, as steered so far */
	int64_t op[2];			/* median operation durations */
	int64_t cal_diff[CAL_ITERS], cal_dur[2][CAL_ITERS];
};

/* MAP_SHARED between supervisor and target.  Progress counters hold k+1 once
 * iteration k reached that point: monotonic, so a late reader never misses
 * a post and a post never needs resetting. */
struct shm {
	_Atomic int abort;		/* FDR_RACE_* reason once the run is given up */
	char abort_where[128];
	int32_t setup_err;
	int64_t deadline_ns;

	_Atomic uint32_t started;	/* target workers running (per target) */
	_Atomic uint32_t ready;		/* target: its fixed fds published */
	_Atomic uint32_t go;		/* target: iteration k's files are in place */
	_Atomic uint32_t wdone[2];	/* worker i: its part of iteration k is over */
	_Atomic uint32_t wmark;		/* waiter: its base switch count is recorded */
	_Atomic uint32_t sup;		/* supervisor: iteration k verified */
	_Atomic uint32_t tdone;		/* target: iteration k checked and cleaned up */
	_Atomic uint32_t s1go, s1done;	/* the second supervisor thread's turn */

	/* Published by the target. */
	int32_t tid[2];
	int32_t ep;
	int32_t old_w;
	uint64_t old_ino;
	int32_t src[2];			/* two_dup2: what the workers dup2 */
	int64_t base_nvcsw;

	/* The racing operations' outcomes. */
	int64_t ret[2];
	int32_t err[2];
	int32_t nev;
	uint32_t ev_events[4];
	uint64_t ev_data[4];

	/* The second supervisor thread's job and outcome. */
	uint64_t s1_id;
	int32_t s1_src;
	int64_t s1_ret;

	int32_t cpu[2];			/* the CPU of each side's racing threads, or -1 */
	cpu_set_t cpus;			/* the caller's CPUs, for everything else */
	int32_t cls;			/* the verifier's class, for the target's checks */
	int32_t sabotage;		/* FDR_RACE_F_SABOTAGE: keep the racing files' copies */
	int32_t follow;			/* FDR_RACE_F_FOLLOW: verdicts of the follow profile */
	int32_t lfd[2];			/* own_listeners: each worker's listener, in the target */
	struct fz fz;

	int64_t counts[FDR_RACE_MAX_CLASSES];
	_Atomic int64_t violations;
	char first_violation[256];
	int32_t iterations_done;
};

/* ---- scenarios ---------------------------------------------------------- */

struct tgt;
struct run;
typedef void (*op_fn)(struct tgt *t, int idx, uint32_t k);

struct scenario {
	const char *name;
	const char *classes[FDR_RACE_MAX_CLASSES];
	int order[FDR_RACE_MAX_CLASSES];	/* per class: which side took effect first */
	int addfd;		/* needs user notification: install the filter */
	int trap_cpu;		/* worker 0's CPU: 0 side 0's (it installs while the
				 * supervisor sleeps in ADDFD), 1 side 1's (it dies
				 * while the supervisor spins towards its ADDFD) */
	int fork_each;		/* a fresh target per iteration */
	int own_listeners;	/* each worker installs a filter of its own: two listeners */
	int uses_ep;
	op_fn ops[2];		/* the target workers' parts */
	void (*tsetup)(struct tgt *t, uint32_t k);
	void (*tcheck)(struct tgt *t, uint32_t k);
	int (*siter)(struct run *r, uint32_t k);
};

static const struct scenario scenarios[FDR_RACE_NSCENARIOS];

/* The target's view of a run (in the child's copy of memory). */
struct tgt {
	const struct scenario *sc;
	struct shm *sh;
	uint32_t k0, n;			/* the iterations this target runs */
	int ep;
	int fddir;			/* /proc/self/fd, to count our fds */
	int baseline;			/* fds open between iterations */
	int old_w, keep, a_w, b_w;	/* this iteration's own fds, or -1 */
};

/* The supervisor's view of a run. */
struct run {
	const struct scenario *sc;
	struct shm *sh;
	uint32_t iterations;
	pid_t pid;			/* the current target, or 0 */
	int pidfd, listener;
	int ep_copy;			/* the target's epoll instance, via pidfd_getfd */
	int epinfo;			/* /proc/self/fdinfo/<ep_copy> */
	int status_fd;			/* the waiter thread's /proc status */
	int listener2;			/* own_listeners: worker 1's listener, for s1 */
	pthread_t s1;
	int s1_running;
	int kept[2];			/* sabotage: copies kept open through the verdict */
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void spin_ns(int64_t ns)
{
	int64_t end;

	if (ns <= 0)
		return;
	end = now_ns() + ns;
	while (now_ns() < end)
		cpu_relax();
}

/* Each racing side runs on a CPU of its own.  A spin barrier only lines two
 * threads up when both are running: without this, a supervisor woken from
 * poll() is often placed on its partner's CPU and spins its delay there
 * while the partner waits in the run queue, and the sweep is lost.  The
 * trapped worker that carries out side 0's ADDFD shares side 0's CPU, where
 * the supervisor sleeps in the ioctl while it works (the scenario's trap_cpu
 * says otherwise where the trapped worker must not compete with side 0). */
static void pin(struct shm *sh, int side)
{
	cpu_set_t set;

	if (sh->cpu[side] < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(sh->cpu[side], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* The first two CPUs the caller may run on, or none when it has one. */
static void choose_cpus(struct shm *sh)
{
	int n = 0;

	sh->cpu[0] = sh->cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(sh->cpus), &sh->cpus) < 0 || CPU_COUNT(&sh->cpus) < 2)
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &sh->cpus))
			sh->cpu[n++] = c;
}

static uint64_t token(uint32_t k, int who)
{
	return TOKEN_MAGIC | ((uint64_t)k << 8) | (uint64_t)who;
}

static const char *tok_name(int who)
{
	static const char *const names[] = { "?", "old", "A", "B", "new" };

	return who >= TOK_OLD && who <= TOK_NEW ? names[who] : names[0];
}

/* 0 when the token went in; -errno otherwise (EPIPE: the file has no reader). */
static int write_token(int fd, uint32_t k, int who)
{
	uint64_t v = token(k, who);
	long n = write(fd, &v, sizeof(v));

	return n == sizeof(v) ? 0 : n < 0 ? -errno : -EIO;
}

/* The one token waiting in fd: its file (TOK_*), 0 for anything else. */
static int read_token(int fd, uint32_t k)
{
	uint64_t buf[8];
	long n = read(fd, buf, sizeof(buf));

	if (n != sizeof(uint64_t) || (buf[0] & ~0xffULL) != token(k, 0))
		return 0;
	return buf[0] & 0xff;
}

static void futex_wait_ms(_Atomic uint32_t *addr, uint32_t val, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	/* Not FUTEX_PRIVATE: the word is shared across processes. */
	syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void post(_Atomic uint32_t *v, uint32_t val)
{
	atomic_store_explicit(v, val, memory_order_release);
	syscall(SYS_futex, v, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Give the run up for a reason; the first reason wins and is the one reported. */
static void give_up(struct shm *sh, int why, int err, const char *fmt, ...)
{
	int none = 0;
	va_list ap;

	/* The reason goes in first: the target may be killed before it has
	 * written the text (the caller then reports the reason without it). */
	if (!atomic_compare_exchange_strong(&sh->abort, &none, why))
		return;
	sh->setup_err = err;
	va_start(ap, fmt);
	vsnprintf(sh->abort_where, sizeof(sh->abort_where), fmt, ap);
	va_end(ap);
}

static int aborted(struct shm *sh)
{
	return atomic_load_explicit(&sh->abort, memory_order_relaxed) != 0;
}

/* An invariant failed: count it, describe the first one. */
static void violation(struct shm *sh, uint32_t k, const char *fmt, ...)
{
	char text[224];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&sh->violations, 1) == 0)
		snprintf(sh->first_violation, sizeof(sh->first_violation),
			 "iteration %u: %s", k, text);
}

/* Which of A and B holds the fd, from writing through their peers: the
 * winner's read end is alive (0), the loser's is gone (-EPIPE). */
static int winner_class(struct shm *sh, uint32_t k, int ea, int eb, const char *what)
{
	if (ea == 0 && eb == -EPIPE)
		return 0;
	if (eb == 0 && ea == -EPIPE)
		return 1;
	violation(sh, k, "after both %s, A's file %s and B's %s", what,
		  ea ? "is gone" : "is alive", eb ? "is gone" : "is alive");
	return 2;
}

/* The target's own waits give up a second after the supervisor's: the
 * supervisor, which knows what it was waiting for, is the one to report a
 * timeout, and it kills the target anyway. */
static int past_deadline(struct shm *sh, int pidfd)
{
	return now_ns() > sh->deadline_ns + (pidfd < 0 ? 1000000000 : 0);
}

static int target_dead(int pidfd)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };

	return pidfd >= 0 && poll(&pf, 1, 0) == 1;
}

/* Wait until *v >= want.  Spins briefly (the other side is often about to
 * post), then blocks on the futex; the futex timeout only lets us check the
 * deadline, the abort flag and (supervisor side, pidfd >= 0) the target. */
static int await(struct shm *sh, _Atomic uint32_t *v, uint32_t want, int pidfd, const char *what)
{
	for (unsigned int n = 0;; n++) {
		uint32_t cur = atomic_load_explicit(v, memory_order_acquire);

		if (cur >= want)
			return 0;
		if (aborted(sh))
			return -1;
		if (n < SPIN_BEFORE_BLOCK) {
			cpu_relax();
			continue;
		}
		if (past_deadline(sh, pidfd)) {
			give_up(sh, FDR_RACE_TIMEOUT, 0, "deadline passed waiting for %s", what);
			return -1;
		}
		if (target_dead(pidfd)) {
			give_up(sh, FDR_RACE_CRASHED, 0, "target died while waiting for %s", what);
			return -1;
		}
		futex_wait_ms(v, cur, 5);
	}
}

/* The supervisor's await: it also notices the target's death. */
static int sawait(struct run *r, _Atomic uint32_t *v, uint32_t want, const char *what)
{
	return await(r->sh, v, want, r->pidfd, what);
}

/* ---- fuzzy sync --------------------------------------------------------- */

/* Spin until the partner has reached round `want` of the barrier. */
static int fz_spin(struct shm *sh, int side, int64_t want, int pidfd)
{
	struct fz *f = &sh->fz;

	for (unsigned long n = 1;
	     atomic_load_explicit(&f->arrive[!side], memory_order_acquire) < want; n++) {
		cpu_relax();
		if (n % 1024)
			continue;
		if (aborted(sh))
			return -1;
		if (past_deadline(sh, pidfd)) {
			give_up(sh, FDR_RACE_TIMEOUT, 0,
				"deadline passed before the racing parties met");
			return -1;
		}
		if (n % (64 * 1024) == 0 && target_dead(pidfd)) {
			give_up(sh, FDR_RACE_CRASHED, 0, "target died before the race");
			return -1;
		}
		/* Sharing one CPU, the partner can only arrive if we let it.
		 * On CPUs of our own a yield would hand ours to whatever else
		 * runs there (a loaded machine's busy loop) for a whole slice. */
		if (sh->cpu[side] < 0)
			sched_yield();
	}
	return 0;
}

/* The two parties meet here before racing.  A spin barrier: a futex wake
 * would cost more than the windows we aim at.  Two rounds: a party that
 * arrived first may have lost its CPU while it spun, and a partner that
 * then left at once would race nobody; the second round only completes
 * while both are running again. */
static int fz_meet(struct shm *sh, int side, uint32_t k, int pidfd)
{
	struct fz *f = &sh->fz;

	for (int64_t round = 2 * (int64_t)k + 1; round <= 2 * (int64_t)k + 2; round++) {
		atomic_store_explicit(&f->arrive[side], round, memory_order_release);
		if (fz_spin(sh, side, round, pidfd) < 0)
			return -1;
	}
	return 0;
}

/* Van der Corput: the bit-reversed index in [0, 1), an even spread for any prefix. */
static double vdc(uint32_t n)
{
	n = (n << 16) | (n >> 16);
	n = ((n & 0x00ff00ffU) << 8) | ((n & 0xff00ff00U) >> 8);
	n = ((n & 0x0f0f0f0fU) << 4) | ((n & 0xf0f0f0f0U) >> 4);
	n = ((n & 0x33333333U) << 2) | ((n & 0xccccccccU) >> 2);
	n = ((n & 0x55555555U) << 1) | ((n & 0xaaaaaaaaU) >> 1);
	return n / 4294967296.0;
}

/* Where iteration k wants start[0] - start[1]: around the flip point, the
 * offset where the order is a toss-up (0 until the verdicts say otherwise;
 * it absorbs a bias the calibration missed, such as one CPU busier than the
 * other).  Even iterations sweep the full window: both orders and every
 * overlap, by construction.  Odd ones sweep a quarter of it, where the
 * operations overlap most. */
static int64_t fz_target(struct fz *f, uint32_t k)
{
	int64_t window = atomic_load_explicit(&f->window, memory_order_relaxed);
	int64_t flip = atomic_load_explicit(&f->flip, memory_order_relaxed);
	uint32_t j = k - CAL_ITERS;
	double u = vdc(j / 2) * 2.0 - 1.0;

	return flip + (int64_t)(u * (double)(j % 2 == 0 ? window : window / 4));
}

/* Delay this side so that start[0] - start[1] lands on iteration k's target,
 * correcting for the skew measured while calibrating.  Then stamp the start
 * of the racing operation. */
static void fz_go(struct shm *sh, int side, uint32_t k)
{
	struct fz *f = &sh->fz;

	if (k >= CAL_ITERS && atomic_load_explicit(&f->window, memory_order_relaxed)) {
		int64_t d = fz_target(f, k) - atomic_load_explicit(&f->skew, memory_order_relaxed);

		spin_ns(side == 0 ? d : -d);
	}
	atomic_store_explicit(&f->start[side], now_ns(), memory_order_relaxed);
}

static void fz_end(struct shm *sh, int side)
{
	atomic_store_explicit(&sh->fz.end[side], now_ns(), memory_order_relaxed);
}

static int64_t median(int64_t *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int64_t x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return v[n / 2];
}

/* The verifier of iteration k feeds in its timings and the order the kernel
 * showed (+1: side 0's operation took effect first, -1: side 1's, 0: an
 * overlap or nothing to tell).  The first CAL_ITERS undelayed iterations fix
 * the window (medians: a loaded machine's outliers must not stretch it).
 * After that, each narrow-sweep iteration nudges the flip point towards
 * where both orders are equally likely: side 0 first means it may start
 * later.  Timings and orders only steer delays, never a verdict. */
static void fz_account(struct shm *sh, uint32_t k, int order)
{
	struct fz *f = &sh->fz;
	int64_t s0 = f->start[0], s1 = f->start[1], window = f->window, flip;

	if (k >= CAL_ITERS) {
		if ((k - CAL_ITERS) % 2 == 0 || !window)
			return;
		flip = f->flip + order * (window / 32);
		flip = flip > FLIP_LIMIT * window ? FLIP_LIMIT * window :
		       flip < -FLIP_LIMIT * window ? -FLIP_LIMIT * window : flip;
		atomic_store(&f->flip, flip);
		return;
	}
	f->cal_diff[k] = s0 - s1;
	f->cal_dur[0][k] = f->end[0] > s0 ? f->end[0] - s0 : 0;
	f->cal_dur[1][k] = f->end[1] > s1 ? f->end[1] - s1 : 0;
	if (k != CAL_ITERS - 1)
		return;
	f->op[0] = median(f->cal_dur[0], CAL_ITERS);
	f->op[1] = median(f->cal_dur[1], CAL_ITERS);
	atomic_store(&f->skew, median(f->cal_diff, CAL_ITERS));
	/* Past +-(both durations) the operations cannot overlap: both orders
	 * lie inside.  Half as much again, and a microsecond, of margin: the
	 * point where an operation takes effect is not its start, and tiny
	 * operations still get a range. */
	atomic_store(&f->window, (f->op[0] + f->op[1]) * 3 / 2 + 1000);
	atomic_store(&f->flip, 0);
}

/* ---- target side -------------------------------------------------------- */

static void __attribute__((noreturn)) tfail(struct tgt *t, const char *where)
{
	give_up(t->sh, FDR_RACE_SETUP, errno, "target: %s", where);
	_exit(3);
}

static long trap(int fd, uint32_t k, int idx)
{
	return syscall(__NR_ioctl, fd, RACE_MAGIC, k, idx, 0, 0);
}

struct linux_dirent64_ {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* How many fds the target holds (getdents64: no malloc in the child). */
static int count_fds(int dirfd)
{
	char buf[4096];
	int count = 0;
	long n;

	if (lseek(dirfd, 0, SEEK_SET) < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < n;) {
			struct linux_dirent64_ *d = (void *)(buf + off);

			if (d->d_name[0] != '.')
				count++;
			off += d->d_reclen;
		}
	return n < 0 ? -1 : count;
}

/* How many "tfd:" lines an epoll fdinfo shows; the first one's fields. */
struct epline {
	int tfd;
	unsigned int events;
	unsigned long long data, ino;
};

static int ep_lines(int infofd, struct epline *first)
{
	char buf[4096];
	long n = pread(infofd, buf, sizeof(buf) - 1, 0);
	int count = 0;

	if (n < 0)
		return -1;
	buf[n] = 0;
	for (char *p = strstr(buf, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		if (count++ == 0 && first) {
			memset(first, 0, sizeof(*first));
			sscanf(p, "tfd: %d events: %x data: %llx pos:%*i ino:%llx",
			       &first->tfd, &first->events, &first->data, &first->ino);
		}
	}
	return count;
}

/* The old file, fresh at RACE_FD; its write end stays with us for checks. */
static void make_old(struct tgt *t, int keep)
{
	struct stat st;
	int p[2];

	if (pipe2(p, O_NONBLOCK) < 0)
		tfail(t, "pipe2(old)");
	if (dup2(p[0], RACE_FD) != RACE_FD)
		tfail(t, "dup2(old, RACE_FD)");
	if (fstat(p[0], &st) < 0)
		tfail(t, "fstat(old)");
	t->sh->old_ino = st.st_ino;
	if (keep) {
		t->keep = p[0];
	} else {
		close(p[0]);
		t->keep = -1;
	}
	t->old_w = p[1];
	t->sh->old_w = p[1];
}

static void register_fd(struct tgt *t, uint32_t k)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = DATA_MAGIC | k };

	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, RACE_FD, &e) < 0)
		tfail(t, "epoll_ctl(ADD) before the race");
}

/* The old file had RACE_FD as its only reference: after the race it is gone,
 * so its write end finds no reader. */
static void expect_old_freed(struct tgt *t, uint32_t k)
{
	int e = write_token(t->old_w, k, TOK_OLD);

	if (e != -EPIPE)
		violation(t->sh, k, "the replaced old file outlived its last fd (write: %s)",
			  e ? strerror(-e) : "succeeded");
}

static void expect_read(struct tgt *t, uint32_t k, int fd, int who, const char *what)
{
	int got = read_token(fd, k);

	if (got != who)
		violation(t->sh, k, "%s read the %s token, expected the %s file's", what,
			  got ? tok_name(got) : "no", tok_name(who));
}

/* The racing workers' parts. */

static void op_trap(struct tgt *t, int idx, uint32_t k)
{
	long r = trap(RACE_FD, k, idx);

	t->sh->ret[idx] = r;
	t->sh->err[idx] = r < 0 ? errno : 0;
}

static void record(struct tgt *t, int idx, long r)
{
	t->sh->ret[idx] = r;
	t->sh->err[idx] = r < 0 ? errno : 0;
	fz_end(t->sh, idx);
}

static void op_dup2(struct tgt *t, int idx, uint32_t k)
{
	if (fz_meet(t->sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(t->sh, idx, k);
	record(t, idx, dup2(t->sh->src[idx], RACE_FD));
}

static void op_ctl(struct tgt *t, int idx, uint32_t k, int op)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = DATA_MAGIC | k };

	if (fz_meet(t->sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(t->sh, idx, k);
	record(t, idx, epoll_ctl(t->ep, op, RACE_FD, &e));
}

static void op_ctl_add(struct tgt *t, int idx, uint32_t k)
{
	op_ctl(t, idx, k, EPOLL_CTL_ADD);
}

static void op_ctl_del(struct tgt *t, int idx, uint32_t k)
{
	op_ctl(t, idx, k, EPOLL_CTL_DEL);
}

static void op_close(struct tgt *t, int idx, uint32_t k)
{
	if (fz_meet(t->sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(t->sh, idx, k);
	record(t, idx, close(RACE_FD));
}

/* Block in epoll_wait.  Our voluntary context-switch count, taken just
 * before, lets the supervisor tell from /proc whether we had gone to sleep
 * in epoll_wait before, during or after its replace: nothing else between
 * here and the wait can switch voluntarily (sched_yield counts as
 * involuntary). */
static void op_wait(struct tgt *t, int idx, uint32_t k)
{
	struct shm *sh = t->sh;
	struct epoll_event ev[4];
	struct rusage ru;
	int n;

	if (fz_meet(sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(sh, idx, k);
	fz_end(sh, idx);	/* the wait's entry is what races: no duration to measure */
	getrusage(RUSAGE_THREAD, &ru);
	sh->base_nvcsw = ru.ru_nvcsw;
	post(&sh->wmark, k + 1);
	n = epoll_wait(t->ep, ev, 4, WAITER_SAFETY_MS);
	sh->ret[idx] = n;
	sh->err[idx] = n < 0 ? errno : 0;
	sh->nev = n > 0 ? n : 0;
	for (int i = 0; i < n; i++) {
		sh->ev_events[i] = ev[i].events;
		sh->ev_data[i] = ev[i].data.u64;
	}
}

static void op_exit(struct tgt *t, int idx, uint32_t k)
{
	if (fz_meet(t->sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(t->sh, idx, k);
	syscall(SYS_exit_group, 0);
}

/* addfd_vs_signal: SIGUSR1 to the trapped worker 0, whose handler has no
 * SA_RESTART: its trap ends with EINTR whoever wins. */
static void op_signal(struct tgt *t, int idx, uint32_t k)
{
	if (fz_meet(t->sh, idx, k, -1) < 0)
		_exit(4);
	fz_go(t->sh, idx, k);
	record(t, idx, syscall(SYS_tgkill, getpid(), t->sh->tid[0], SIGUSR1));
}

struct worker {
	struct tgt *t;
	int idx;
};

static int install_filter(void);

/* A filter on this thread alone (no TSYNC), with a listener of its own: the
 * supervisor takes it with pidfd_getfd. */
static void own_filter(struct tgt *t, int idx)
{
	t->sh->lfd[idx] = install_filter();
	if (t->sh->lfd[idx] < 0)
		tfail(t, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER) in a worker");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tgt *t = w->t;
	struct shm *sh = t->sh;

	sh->tid[w->idx] = gettid();
	pin(sh, w->idx == 1 || t->sc->trap_cpu == 1);
	if (t->sc->own_listeners)
		own_filter(t, w->idx);
	atomic_fetch_add(&sh->started, 1);
	post(&sh->started, atomic_load(&sh->started));
	for (uint32_t k = t->k0; k < t->k0 + t->n; k++) {
		if (await(sh, &sh->go, k + 1, -1, "the target worker's next iteration") < 0)
			_exit(4);
		t->sc->ops[w->idx](t, w->idx, k);
		post(&sh->wdone[w->idx], k + 1);
	}
	return NULL;
}

/* Per-scenario set-up before the workers go, and checks after the verdict. */

static void ts_old(struct tgt *t, uint32_t k)
{
	make_old(t, 0);
}

static void ts_old_kept_registered(struct tgt *t, uint32_t k)
{
	make_old(t, 1);
	register_fd(t, k);
}

static void ts_two_dup2(struct tgt *t, uint32_t k)
{
	int a[2], b[2];

	make_old(t, 0);
	if (pipe2(a, O_NONBLOCK) < 0 || pipe2(b, O_NONBLOCK) < 0)
		tfail(t, "pipe2(A, B)");
	t->sh->src[0] = a[0];
	t->sh->src[1] = b[0];
	t->a_w = a[1];
	t->b_w = b[1];
}

static void on_race_signal(int sig)
{
	(void)sig;
}

static void ts_old_signal(struct tgt *t, uint32_t k)
{
	struct sigaction sa = { .sa_handler = on_race_signal };	/* no SA_RESTART */

	if (k == t->k0 && sigaction(SIGUSR1, &sa, NULL) < 0)
		tfail(t, "sigaction(SIGUSR1)");
	make_old(t, 0);
}

static int await_sup(struct tgt *t, uint32_t k)
{
	if (await(t->sh, &t->sh->sup, k + 1, -1, "the supervisor's verdict") < 0)
		_exit(4);
	return t->sh->cls;
}

static void tc_two_addfd(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k);

	expect_old_freed(t, k);
	if (cls <= 1)
		expect_read(t, k, RACE_FD, cls == 0 ? TOK_A : TOK_B, "the fd");
}

/* two_dup2: the target is its own verifier. */
static void tc_two_dup2(struct tgt *t, uint32_t k)
{
	struct shm *sh = t->sh;
	int ea, eb, cls;

	for (int i = 0; i < 2; i++)
		if (await(sh, &sh->wdone[i], k + 1, -1, "the target's dup2 workers") < 0)
			_exit(4);
	for (int i = 0; i < 2; i++)
		if (sh->ret[i] != RACE_FD)
			violation(sh, k, "dup2 onto the fd returned %lld (%s)",
				  (long long)sh->ret[i], strerror(sh->err[i]));
	if (!sh->sabotage) {
		close(sh->src[0]);
		close(sh->src[1]);
	}
	/* dup2 dropped the replaced files' last references in the workers, whose
	 * final fput ran before they returned to user space: the loser's read
	 * end is gone now, the winner's lives at RACE_FD. */
	ea = write_token(t->a_w, k, TOK_A);
	eb = write_token(t->b_w, k, TOK_B);
	cls = winner_class(sh, k, ea, eb, "dup2s");
	if (cls <= 1)
		expect_read(t, k, RACE_FD, cls == 0 ? TOK_A : TOK_B, "the fd");
	expect_old_freed(t, k);
	if (sh->sabotage) {
		close(sh->src[0]);
		close(sh->src[1]);
	}
	sh->counts[cls]++;
	fz_account(sh, k, t->sc->order[cls]);
	sh->iterations_done = k + 1;
	close(t->a_w);
	close(t->b_w);
	t->a_w = t->b_w = -1;
}

static void tc_ctl_add(struct tgt *t, uint32_t k)
{
	await_sup(t, k);
	expect_old_freed(t, k);
	expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
}

/* The kept dup of the old file goes; then the epoll must hold `want`
 * entries (those of the old file die with its last close). */
static void close_keep_expect_entries(struct tgt *t, uint32_t k, int want)
{
	char path[64];
	int info, lines;

	close(t->keep);
	t->keep = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", t->ep);
	info = open(path, O_RDONLY | O_CLOEXEC);
	lines = info >= 0 ? ep_lines(info, NULL) : -1;
	if (info >= 0)
		close(info);
	if (lines != want)
		violation(t->sh, k, "epoll holds %d entries after the old file's last close, "
			  "expected %d", lines, want);
}

/* The kept old file still carries the stale entry, if DEL lost the race:
 * closing it must take the entry with it. */
static void close_keep_expect_no_entries(struct tgt *t, uint32_t k)
{
	close_keep_expect_entries(t, k, 0);
}

static void tc_ctl_del(struct tgt *t, uint32_t k)
{
	await_sup(t, k);
	expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
	close_keep_expect_no_entries(t, k);
	expect_old_freed(t, k);
}

/* two_listeners: the supervisors made the old file and the fd's file
 * readable; each read reaches its own.  Under follow the winner's entry
 * (classes 0 and 1) outlives the old file's last close. */
static void tc_two_listeners(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k);

	expect_read(t, k, t->keep, TOK_OLD, "the kept dup of the old file");
	if (cls <= 3)
		expect_read(t, k, RACE_FD, cls % 2 == 0 ? TOK_A : TOK_B, "the fd");
	close_keep_expect_entries(t, k, t->sh->follow && cls <= 1 ? 1 : 0);
}

static void tc_wait(struct tgt *t, uint32_t k)
{
	await_sup(t, k);
	expect_read(t, k, t->keep, TOK_OLD, "the kept dup of the old file");
	expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
	close_keep_expect_no_entries(t, k);
}

static void tc_close(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k), open_now = fcntl(RACE_FD, F_GETFD) >= 0;

	expect_old_freed(t, k);
	if (cls == 0 && !open_now)
		violation(t->sh, k, "ADDFD installed after the close, yet the fd is closed");
	if (cls == 1 && open_now)
		violation(t->sh, k, "close ran after ADDFD, yet the fd is open");
	if (cls == 0 && open_now)
		expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
}

/* addfd_vs_signal: installed, the old file is gone and the fd reads the new
 * one; refused (ENOENT, ESRCH), the old file is still at the fd. */
static void tc_signal(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k), e;

	if (cls == 0) {
		expect_old_freed(t, k);
		expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
	} else if (cls <= 2) {
		e = write_token(t->old_w, k, TOK_OLD);
		if (e)
			violation(t->sh, k, "ADDFD was refused, yet the old file is gone (write: %s)",
				  strerror(-e));
		expect_read(t, k, RACE_FD, TOK_OLD, "the fd");
	}
}

/* Nothing to check: the target does not survive the iteration. */
static void tc_none(struct tgt *t, uint32_t k)
{
	await(t->sh, &t->sh->tdone, k + 1, -1, "the target's exit_group");
	_exit(4);
}

/* Close what the iteration left and check that nothing else stayed open. */
static void end_iteration(struct tgt *t, uint32_t k)
{
	int *own[] = { &t->old_w, &t->keep, &t->a_w, &t->b_w };
	int n;

	close(RACE_FD);		/* the new file, unless the race closed it already */
	for (unsigned int i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (*own[i] >= 0) {
			close(*own[i]);
			*own[i] = -1;
		}
	n = count_fds(t->fddir);
	if (n != t->baseline)
		violation(t->sh, k, "the target holds %d fds after the iteration, %d before", n,
			  t->baseline);
}

/* Close everything the caller had open but ctl (close_range: 5.9 and later). */
static void close_other_fds(int keep)
{
	if (syscall(__NR_close_range, 3, keep - 1, 0) == 0 &&
	    syscall(__NR_close_range, keep + 1, ~0U, 0) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		if (fd != keep)
			close(fd);
}

static int send_listener(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'L';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {		/* scenarios without a filter send the byte alone */
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Trap ioctl(fd, RACE_MAGIC, ...) and nothing else. */
static int install_filter(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RACE_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RACE_MAGIC, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
		       &prog);
}

static void __attribute__((noreturn))
target_main(struct tgt *t, int ctl, pid_t parent)
{
	struct shm *sh = t->sh;
	struct worker w[2] = { { t, 0 }, { t, 1 } };
	sigset_t none;
	int listener = -1;

	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		tfail(t, "prctl(PR_SET_PDEATHSIG)");
	/* Forked from a pinned supervisor: the main thread may run anywhere. */
	if (sh->cpu[0] >= 0)
		sched_setaffinity(0, sizeof(sh->cpus), &sh->cpus);
	if (getppid() != parent)	/* the supervisor died before PDEATHSIG was set */
		_exit(3);
	/* EPIPE is an answer here, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_other_fds(ctl);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		tfail(t, "prctl(PR_SET_NO_NEW_PRIVS)");
	if (t->sc->addfd && !t->sc->own_listeners) {
		listener = install_filter();
		if (listener < 0)
			tfail(t, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)");
	}
	if (send_listener(ctl, listener) < 0)
		tfail(t, "sendmsg(listener)");
	if (listener >= 0)
		close(listener);
	close(ctl);

	t->ep = t->sc->uses_ep ? epoll_create1(0) : -1;
	if (t->sc->uses_ep && t->ep < 0)
		tfail(t, "epoll_create1");
	sh->ep = t->ep;
	t->fddir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->fddir < 0)
		tfail(t, "open(/proc/self/fd)");
	t->old_w = t->keep = t->a_w = t->b_w = -1;

	atomic_store(&sh->started, 0);
	for (int i = 0; i < 2; i++) {
		pthread_t th;

		if (pthread_create(&th, NULL, worker_main, &w[i]) != 0)
			tfail(t, "pthread_create");
	}
	if (await(sh, &sh->started, 2, -1, "the target's workers to start") < 0)
		_exit(4);
	t->baseline = count_fds(t->fddir);	/* with the workers' listeners, if any */
	post(&sh->ready, t->k0 + 1);

	for (uint32_t k = t->k0; k < t->k0 + t->n; k++) {
		t->sc->tsetup(t, k);
		post(&sh->go, k + 1);
		t->sc->tcheck(t, k);
		end_iteration(t, k);
		post(&sh->tdone, k + 1);
	}
	_exit(0);
}

/* ---- supervisor side ---------------------------------------------------- */

static int recv_listener(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -2;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int left_ms(struct shm *sh)
{
	int64_t left = (sh->deadline_ns - now_ns()) / 1000000;

	return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Fork a target for iterations [k0, k0+n); wait for its listener. */
static int spawn(struct run *r, uint32_t k0, uint32_t n)
{
	struct shm *sh = r->sh;
	pid_t parent = getpid();
	struct pollfd pf;
	int ctl[2], got;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "socketpair");
		return -1;
	}
	r->pid = fork();
	if (r->pid == 0) {
		struct tgt t = { .sc = r->sc, .sh = sh, .k0 = k0, .n = n };

		close(ctl[0]);
		target_main(&t, ctl[1], parent);
	}
	close(ctl[1]);
	if (r->pid < 0) {
		r->pid = 0;
		close(ctl[0]);
		give_up(sh, FDR_RACE_SETUP, errno, "fork");
		return -1;
	}
	setpgid(r->pid, r->pid);
	r->pidfd = syscall(__NR_pidfd_open, r->pid, 0);
	if (r->pidfd < 0) {
		close(ctl[0]);
		give_up(sh, FDR_RACE_SETUP, errno, "pidfd_open");
		return -1;
	}
	pf = (struct pollfd){ .fd = ctl[0], .events = POLLIN };
	if (poll(&pf, 1, left_ms(sh)) != 1) {
		close(ctl[0]);
		give_up(sh, FDR_RACE_TIMEOUT, 0,
			"deadline passed waiting for the target's listener");
		return -1;
	}
	got = recv_listener(ctl[0]);
	close(ctl[0]);
	if (got == -2) {	/* the target's set-up failed and said why, or it died */
		if (!aborted(sh))
			give_up(sh, FDR_RACE_CRASHED, 0, "target died during set-up");
		return -1;
	}
	r->listener = got;
	if (r->sc->addfd && !r->sc->own_listeners && r->listener < 0) {
		give_up(sh, FDR_RACE_SETUP, EPROTO, "no listener from the target");
		return -1;
	}
	return sawait(r, &sh->ready, k0 + 1, "the target's set-up");
}

/* End the current target: wait for its own exit unless told to kill it,
 * reap it, and check how it ended. */
static void reap(struct run *r, int kill_it, int expect_clean)
{
	int status = 0;

	if (!r->pid)
		return;
	if (!kill_it) {
		struct pollfd pf = { .fd = r->pidfd, .events = POLLIN };

		if (poll(&pf, 1, left_ms(r->sh)) != 1) {
			give_up(r->sh, FDR_RACE_TIMEOUT, 0,
				"deadline passed waiting for the target to exit");
			kill_it = 1;
		}
	}
	if (kill_it) {
		kill(-r->pid, SIGKILL);
		kill(r->pid, SIGKILL);
	}
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (expect_clean && !kill_it && !aborted(r->sh) &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		give_up(r->sh, FDR_RACE_CRASHED, 0, "target died with %s %d",
			WIFSIGNALED(status) ? "signal" : "exit status",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	r->pid = 0;
	if (r->pidfd >= 0)
		close(r->pidfd);
	if (r->listener >= 0)
		close(r->listener);
	if (r->listener2 >= 0)
		close(r->listener2);
	r->pidfd = r->listener = r->listener2 = -1;
}

/* The next notification, which must be worker idx's trap of iteration k
 * (idx -1: either worker's). */
static int recv_notif_on(struct run *r, int listener, uint32_t k, struct seccomp_notif *n)
{
	struct shm *sh = r->sh;

	for (;;) {
		struct pollfd pf = { .fd = listener, .events = POLLIN };
		int left = left_ms(sh), p;

		if (aborted(sh))
			return -1;
		if (!left) {
			give_up(sh, FDR_RACE_TIMEOUT, 0,
				"deadline passed waiting for the target's trap");
			return -1;
		}
		p = poll(&pf, 1, left < 50 ? left : 50);
		if (p == 1 && (pf.revents & POLLIN)) {
			memset(n, 0, sizeof(*n));
			if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n) == 0)
				break;
			if (errno == ENOENT || errno == EINTR)
				continue;
			give_up(sh, FDR_RACE_SETUP, errno, "SECCOMP_IOCTL_NOTIF_RECV");
			return -1;
		}
		if (p == 1) {		/* POLLHUP: no task is left under the filter */
			give_up(sh, FDR_RACE_CRASHED, 0, "target died before its trap");
			return -1;
		}
	}
	if (n->data.args[0] != (__u64)RACE_FD || n->data.args[2] != k) {
		give_up(sh, FDR_RACE_SETUP, EPROTO, "trap of iteration %llu, expected %u",
			(unsigned long long)n->data.args[2], k);
		return -1;
	}
	return 0;
}

static int recv_notif(struct run *r, uint32_t k, struct seccomp_notif *n)
{
	return recv_notif_on(r, r->listener, k, n);
}

/* ADDFD with SETFD at RACE_FD through a listener: the fd number, or -errno. */
static long addfd_on(int listener, uint64_t id, int src)
{
	struct seccomp_notif_addfd a = { .id = id, .flags = SECCOMP_ADDFD_FLAG_SETFD,
					 .srcfd = src, .newfd = RACE_FD };
	long ret = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);

	return ret < 0 ? -errno : ret;
}

static long addfd(struct run *r, uint64_t id, int src)
{
	return addfd_on(r->listener, id, src);
}

/* The trapped syscall returns 0.  ENOENT: the target went away meanwhile. */
static void respond_on(int listener, uint64_t id)
{
	struct seccomp_notif_resp resp = { .id = id };

	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

static void respond(struct run *r, uint64_t id)
{
	respond_on(r->listener, id);
}

static int new_pipe(struct run *r, int p[2])
{
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0)
		return 0;
	give_up(r->sh, FDR_RACE_SETUP, errno, "pipe2 in the supervisor");
	return -1;
}

static const char *err_name(long ret)
{
	static __thread char buf[32];

	if (ret >= 0) {
		snprintf(buf, sizeof(buf), "%ld", ret);
		return buf;
	}
	return strerrorname_np(-ret) ? strerrorname_np(-ret) : "E?";
}

/* The supervisor's copy of a file it installed is closed once ADDFD
 * returned, so that the verdict sees the target's references alone; the
 * sabotage flag keeps it open through the verdict instead, a leak the
 * verdict must notice. */
static void drop_src(struct run *r, int *fd)
{
	if (r->sh->sabotage && *fd >= 0) {
		r->kept[r->kept[0] < 0 ? 0 : 1] = *fd;
	} else if (*fd >= 0) {
		close(*fd);
	}
	*fd = -1;
}

static void close_kept(struct run *r)
{
	for (int i = 0; i < 2; i++)
		if (r->kept[i] >= 0) {
			close(r->kept[i]);
			r->kept[i] = -1;
		}
}

static void expect_installed(struct run *r, uint32_t k, long ret, const char *who)
{
	if (ret != RACE_FD)
		violation(r->sh, k, "%sADDFD(SETFD) returned %s, expected %d", who, err_name(ret),
			  RACE_FD);
}

/* Make the new file readable through its peer: a failed write means the
 * new file is not at the fd (it has no reader left). */
static void inject_new(struct run *r, uint32_t k, int peer)
{
	int e = write_token(peer, k, TOK_NEW);

	if (e)
		violation(r->sh, k, "the new file is not at the fd after ADDFD (write: %s)",
			  strerror(-e));
}

/* Iteration k's supervisor part is over: let the target check and clean up. */
static int finish(struct run *r, uint32_t k, int cls)
{
	struct shm *sh = r->sh;

	close_kept(r);
	sh->cls = cls;
	sh->counts[cls]++;
	fz_account(sh, k, r->sc->order[cls]);
	post(&sh->sup, k + 1);
	if (sawait(r, &sh->tdone, k + 1, "the target's checks") < 0)
		return -1;
	sh->iterations_done = k + 1;
	return 0;
}

/* Wait until trapped worker idx is back in user space: the final fput of a
 * file its install replaced runs from task work on that return. */
static int returned(struct run *r, uint32_t k, int idx)
{
	struct shm *sh = r->sh;

	if (sawait(r, &sh->wdone[idx], k + 1, "the trapped worker's return") < 0)
		return -1;
	if (sh->ret[idx] != 0)
		violation(sh, k, "the trapped call returned %s, not the supervisor's answer 0",
			  err_name(sh->ret[idx] < 0 ? -sh->err[idx] : sh->ret[idx]));
	return 0;
}

static int release(struct run *r, uint32_t k, uint64_t id, int idx)
{
	respond(r, id);
	return returned(r, k, idx);
}

/* two_listeners: the second supervisor takes worker 1's trap off its own
 * listener, the only one worker 1's filter reports to. */
static int s1_recv(struct run *r, uint32_t k)
{
	struct seccomp_notif n;

	if (recv_notif_on(r, r->listener2, k, &n) < 0)
		return -1;
	if ((int)n.pid != r->sh->tid[1])
		violation(r->sh, k, "the second listener reported thread %u, not worker 1 (%d)",
			  n.pid, r->sh->tid[1]);
	r->sh->s1_id = n.id;
	return 0;
}

/* two_addfd: a second supervisor thread races the first one's ADDFD. */
static void *s1_main(void *arg)
{
	struct run *r = arg;
	struct shm *sh = r->sh;

	pin(sh, 1);
	for (uint32_t k = 0; k < r->iterations; k++) {
		if (sawait(r, &sh->s1go, k + 1, "the second supervisor's turn") < 0)
			break;
		if (r->listener2 >= 0 && s1_recv(r, k) < 0)
			break;
		if (fz_meet(sh, 1, k, r->pidfd) < 0)
			break;
		fz_go(sh, 1, k);
		sh->s1_ret = addfd_on(r->listener2 >= 0 ? r->listener2 : r->listener, sh->s1_id,
				      sh->s1_src);
		fz_end(sh, 1);
		post(&sh->s1done, k + 1);
	}
	return NULL;
}

/* Both supervisors ADDFD at once: we install a[0] for notification id0 while
 * the second one installs b[0] for its own; then both copies go. */
static int race_both(struct run *r, uint32_t k, uint64_t id0, int a[2], int b[2])
{
	struct shm *sh = r->sh;
	long ret;

	sh->s1_src = b[0];
	post(&sh->s1go, k + 1);
	if (fz_meet(sh, 0, k, r->pidfd) < 0)
		return -1;
	fz_go(sh, 0, k);
	ret = addfd(r, id0, a[0]);
	fz_end(sh, 0);
	if (sawait(r, &sh->s1done, k + 1, "the second supervisor's ADDFD") < 0)
		return -1;
	expect_installed(r, k, ret, "first ");
	expect_installed(r, k, sh->s1_ret, "second ");
	drop_src(r, &a[0]);
	drop_src(r, &b[0]);
	return 0;
}

static void close_pipes(int a[2], int b[2])
{
	for (int i = 0; i < 2; i++) {
		if (a[i] >= 0)
			close(a[i]);
		if (b[i] >= 0)
			close(b[i]);
	}
}

static int si_two_addfd(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n[2];
	int a[2], b[2], ea, eb, cls;

	if (recv_notif(r, k, &n[0]) < 0 || recv_notif(r, k, &n[1]) < 0)
		return -1;
	/* Worker 0 shares our CPU, worker 1 the second supervisor's: each of us
	 * takes the trap whose install will run on its own CPU. */
	if ((int)n[0].pid != sh->tid[0]) {
		struct seccomp_notif x = n[0];

		n[0] = n[1];
		n[1] = x;
	}
	if (new_pipe(r, a) < 0)
		return -1;
	if (new_pipe(r, b) < 0) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	sh->s1_id = n[1].id;
	if (race_both(r, k, n[0].id, a, b) < 0)
		goto fail;
	/* Either worker may have made either trap: answer both, then wait for both. */
	respond(r, n[0].id);
	respond(r, n[1].id);
	if (returned(r, k, 0) < 0 || returned(r, k, 1) < 0)
		goto fail;
	/* Only the winner's read end is still referenced (by RACE_FD). */
	ea = write_token(a[1], k, TOK_A);
	eb = write_token(b[1], k, TOK_B);
	cls = winner_class(sh, k, ea, eb, "ADDFDs");
	close(a[1]);
	close(b[1]);
	return finish(r, k, cls);
fail:
	close_pipes(a, b);
	return -1;
}

/* What epoll shows of the fd after both replaces of two_listeners returned. */
struct seen {
	int lines, nev_old, nev_both;
	struct epline line;
	struct epoll_event ev_old, ev_both;
};

/* Only the old file readable, then the fd's file too: what does epoll report? */
static void look(struct run *r, uint32_t k, int old_w, int *ea, int *eb, int a_w, int b_w,
		 struct seen *s)
{
	int e;

	memset(s, 0, sizeof(*s));
	s->lines = ep_lines(r->epinfo, &s->line);
	e = write_token(old_w, k, TOK_OLD);
	if (e)
		violation(r->sh, k, "the kept old file is gone (write: %s)", strerror(-e));
	s->nev_old = epoll_wait(r->ep_copy, &s->ev_old, 1, 0);
	*ea = write_token(a_w, k, TOK_A);
	*eb = write_token(b_w, k, TOK_B);
	s->nev_both = epoll_wait(r->ep_copy, &s->ev_both, 1, 0);
}

static int reported(int nev, const struct epoll_event *ev, uint32_t k)
{
	return nev == 1 && ev->events == EPOLLIN && ev->data.u64 == (DATA_MAGIC | k);
}

/* Stock: the entry stays (fd, old): the old file's readiness is reported
 * under the fd.  Follow: one entry (fd, winner) reporting the winner only,
 * or none at all (class +2: the earlier replace moved the entry onto a file
 * the later one had replaced already, and it died with that file). */
static int judge(struct run *r, uint32_t k, int win, const struct seen *s, uint64_t win_ino)
{
	struct shm *sh = r->sh;
	int ok;

	if (!sh->follow) {
		ok = s->lines == 1 && s->line.tfd == RACE_FD && s->line.ino == sh->old_ino &&
		     reported(s->nev_old, &s->ev_old, k) && reported(s->nev_both, &s->ev_both, k);
	} else if (s->lines == 0 && s->nev_old == 0 && s->nev_both == 0) {
		return win + 2;
	} else {
		ok = s->lines == 1 && s->line.tfd == RACE_FD && s->line.ino == win_ino &&
		     s->nev_old == 0 && reported(s->nev_both, &s->ev_both, k);
	}
	if (!ok)
		violation(sh, k, "%s, %c last: %d entries (fd %d ino %llu; old %llu, fd's %llu), "
			  "%d events with the old file readable, %d with the fd's too (data %#llx)",
			  sh->follow ? "follow" : "stock", win ? 'B' : 'A', s->lines,
			  s->lines ? s->line.tfd : -1, s->lines ? s->line.ino : 0ULL,
			  (unsigned long long)sh->old_ino, (unsigned long long)win_ino, s->nev_old,
			  s->nev_both, s->nev_both > 0 ? (unsigned long long)s->ev_both.data.u64 : 0ULL);
	return win;
}

/* two_listeners: worker 0 traps to our listener, worker 1 to the second
 * supervisor's; both ADDFD(SETFD) their own file at the registered fd. */
static int si_two_listeners(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct stat st[2];
	struct seen seen;
	int a[2] = { -1, -1 }, b[2] = { -1, -1 }, old_w, ea, eb, win;

	if (recv_notif(r, k, &n) < 0)
		return -1;
	if ((int)n.pid != sh->tid[0])
		violation(sh, k, "the first listener reported thread %u, not worker 0 (%d)", n.pid,
			  sh->tid[0]);
	old_w = syscall(__NR_pidfd_getfd, r->pidfd, sh->old_w, 0);
	if (old_w < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(old write end)");
		return -1;
	}
	if (new_pipe(r, a) < 0 || new_pipe(r, b) < 0 || fstat(a[1], &st[0]) < 0 ||
	    fstat(b[1], &st[1]) < 0)
		goto fail;
	if (race_both(r, k, n.id, a, b) < 0)
		goto fail;
	respond(r, n.id);
	respond_on(r->listener2, sh->s1_id);
	if (returned(r, k, 0) < 0 || returned(r, k, 1) < 0)
		goto fail;
	look(r, k, old_w, &ea, &eb, a[1], b[1], &seen);
	win = winner_class(sh, k, ea, eb, "ADDFDs");
	close(a[1]);
	close(b[1]);
	close(old_w);
	return finish(r, k, win == 2 ? 4 : judge(r, k, win, &seen, st[win].st_ino));
fail:
	close_pipes(a, b);
	close(old_w);
	return -1;
}

static int si_two_dup2(struct run *r, uint32_t k)
{
	if (sawait(r, &r->sh->tdone, k + 1, "the dup2 race") < 0)
		return -1;
	return 0;
}

/* The racing half shared by the ADDFD-vs-target-thread scenarios: receive
 * the trap, make the new pipe, meet the target's worker 1, ADDFD. */
static int race_addfd(struct run *r, uint32_t k, struct seccomp_notif *n, int np[2], long *ret)
{
	if (recv_notif(r, k, n) < 0 || new_pipe(r, np) < 0)
		return -1;
	if (fz_meet(r->sh, 0, k, r->pidfd) < 0) {
		close(np[0]);
		close(np[1]);
		np[0] = np[1] = -1;
		return -1;
	}
	fz_go(r->sh, 0, k);
	*ret = addfd(r, n->id, np[0]);
	fz_end(r->sh, 0);
	drop_src(r, &np[0]);
	return 0;
}

static int si_ctl_add(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct epoll_event ev[4];
	struct epline line;
	struct stat st;
	int np[2], nev, lines, cls;
	long ret;

	if (race_addfd(r, k, &n, np, &ret) < 0)
		return -1;
	if (sawait(r, &sh->wdone[1], k + 1, "the EPOLL_CTL_ADD worker") < 0 ||
	    release(r, k, n.id, 0) < 0 || fstat(np[1], &st) < 0) {
		close(np[1]);
		return -1;
	}
	expect_installed(r, k, ret, "");
	inject_new(r, k, np[1]);
	nev = epoll_wait(r->ep_copy, ev, 4, 0);
	lines = ep_lines(r->epinfo, &line);
	if (sh->ret[1] < 0) {
		cls = 2;
		violation(sh, k, "EPOLL_CTL_ADD failed with %s while the fd was replaced",
			  strerrorname_np(sh->err[1]));
	} else if (nev == 0 && lines == 0) {
		cls = 0;	/* the entry went to the old file and died with it */
	} else if (nev == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == (DATA_MAGIC | k) &&
		   lines == 1 && line.tfd == RACE_FD && line.ino == st.st_ino) {
		cls = 1;	/* the entry is the new file's, and reports it */
	} else {
		cls = 3;
		violation(sh, k, "after ADD raced ADDFD: %d events (first data %#llx), "
			  "%d fdinfo lines (first ino %llu; new %llu)", nev,
			  nev > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL, lines,
			  lines > 0 ? line.ino : 0ULL, (unsigned long long)st.st_ino);
	}
	close(np[1]);
	return finish(r, k, cls);
}

static int si_ctl_del(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct epoll_event ev[4];
	struct epline line;
	int np[2], nev, lines, cls;
	long ret, del;

	if (race_addfd(r, k, &n, np, &ret) < 0)
		return -1;
	if (sawait(r, &sh->wdone[1], k + 1, "the EPOLL_CTL_DEL worker") < 0 ||
	    release(r, k, n.id, 0) < 0) {
		close(np[1]);
		return -1;
	}
	expect_installed(r, k, ret, "");
	inject_new(r, k, np[1]);
	/* The new file is readable but was never registered: nothing to report. */
	nev = epoll_wait(r->ep_copy, ev, 4, 0);
	if (nev != 0)
		violation(sh, k, "epoll reported %d events (first data %#llx) for a file never "
			  "registered", nev, nev > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	lines = ep_lines(r->epinfo, &line);
	del = sh->ret[1] < 0 ? -sh->err[1] : sh->ret[1];
	if (del == 0 && lines == 0)
		cls = 0;	/* DEL found (fd, old) */
	else if (del == -ENOENT && lines == 1 && line.tfd == RACE_FD && line.ino == sh->old_ino)
		cls = 1;	/* DEL looked up (fd, new): the old file's entry stays */
	else {
		cls = 2;
		violation(sh, k, "EPOLL_CTL_DEL returned %s with %d fdinfo lines left",
			  err_name(del), lines);
	}
	close(np[1]);
	return finish(r, k, cls);
}

/* The waiter's voluntary context switches, from /proc. */
static long nvcsw(struct run *r)
{
	char buf[4096], *p;
	long n = pread(r->status_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "\nvoluntary_ctxt_switches:");
	return p ? strtol(p + 25, NULL, 10) : -1;
}

static int si_wait(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct pollfd pf;
	int np[2], old_w, e, cls;
	long ret, s0, s1, base;

	if (recv_notif(r, k, &n) < 0)
		return -1;
	old_w = syscall(__NR_pidfd_getfd, r->pidfd, sh->old_w, 0);
	if (old_w < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(old write end)");
		return -1;
	}
	if (new_pipe(r, np) < 0)
		goto fail_old;
	if (fz_meet(sh, 0, k, r->pidfd) < 0) {
		close(np[0]);
		goto fail;
	}
	fz_go(sh, 0, k);
	s0 = nvcsw(r);
	ret = addfd(r, n.id, np[0]);
	s1 = nvcsw(r);
	fz_end(sh, 0);
	drop_src(r, &np[0]);
	if (sawait(r, &sh->wmark, k + 1, "the waiter to enter epoll_wait") < 0 ||
	    release(r, k, n.id, 0) < 0)
		goto fail;
	expect_installed(r, k, ret, "");
	base = sh->base_nvcsw;
	if (s0 < 0 || s1 < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "reading the waiter's /proc status");
		goto fail;
	}
	/* Monotonic counters read before and after the ADDFD, against the one
	 * taken right before epoll_wait: when did the waiter go to sleep? */
	cls = s0 > base ? 0 : s1 > base ? 1 : 2;

	inject_new(r, k, np[1]);
	/* pipe_write ran the wakeups synchronously: had epoll an entry for the
	 * new file, the epoll file would poll readable now. */
	pf = (struct pollfd){ .fd = r->ep_copy, .events = POLLIN };
	if (poll(&pf, 1, 0) != 0)
		violation(sh, k, "epoll is readable after only the never-registered new file "
			  "became readable");
	if (atomic_load(&sh->wdone[1]) >= k + 1)
		violation(sh, k, "the waiter returned %d events (data %#llx) before the registered "
			  "file became readable", sh->nev, (unsigned long long)sh->ev_data[0]);
	e = write_token(old_w, k, TOK_OLD);
	if (e)
		violation(sh, k, "the kept old file is gone (write: %s)", strerror(-e));
	if (sawait(r, &sh->wdone[1], k + 1, "the waiter to report the old file") < 0)
		goto fail;
	if (sh->ret[1] != 1 || sh->ev_events[0] != EPOLLIN || sh->ev_data[0] != (DATA_MAGIC | k))
		violation(sh, k, "the waiter returned %lld (%s) with events %#x data %#llx, "
			  "expected 1 EPOLLIN %#llx", (long long)sh->ret[1],
			  sh->ret[1] < 0 ? strerrorname_np(sh->err[1]) : "ok", sh->ev_events[0],
			  (unsigned long long)sh->ev_data[0], (unsigned long long)(DATA_MAGIC | k));
	close(np[1]);
	close(old_w);
	return finish(r, k, cls);
fail:
	close(np[1]);
fail_old:
	close(old_w);
	return -1;
}

static int si_close(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	int np[2], e, cls;
	long ret;

	if (race_addfd(r, k, &n, np, &ret) < 0)
		return -1;
	if (sawait(r, &sh->wdone[1], k + 1, "the close worker") < 0 ||
	    release(r, k, n.id, 0) < 0) {
		close(np[1]);
		return -1;
	}
	expect_installed(r, k, ret, "");
	if (sh->ret[1] != 0)
		violation(sh, k, "close of the fd returned %s", strerrorname_np(sh->err[1]));
	/* Alive: RACE_FD holds the new file, so close took the old one first.
	 * Gone: close took the new file (its last reference). */
	e = write_token(np[1], k, TOK_NEW);
	if (e == 0)
		cls = 0;
	else if (e == -EPIPE)
		cls = 1;
	else {
		cls = 2;
		violation(sh, k, "writing to the new file's peer: %s", strerror(-e));
	}
	close(np[1]);
	return finish(r, k, cls);
}

/* addfd_vs_exit: a fresh target each iteration; its worker 1 exits the
 * whole process while we ADDFD into worker 0's trap. */
static int si_exit(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct pollfd pf;
	int np[2] = { -1, -1 }, old_w = -1, e, cls;
	long ret;

	if (spawn(r, k, 1) < 0 ||
	    sawait(r, &sh->go, k + 1, "the target's set-up") < 0)
		return -1;
	old_w = syscall(__NR_pidfd_getfd, r->pidfd, sh->old_w, 0);
	if (old_w < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(old write end)");
		return -1;
	}
	if (race_addfd(r, k, &n, np, &ret) < 0)
		goto fail;
	respond(r, n.id);
	pf = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	if (poll(&pf, 1, left_ms(sh)) != 1) {
		give_up(sh, FDR_RACE_TIMEOUT, 0,
			"deadline passed waiting for the target's exit_group");
		goto fail;
	}
	fz_end(sh, 1);		/* the exit's duration, as seen from here */
	reap(r, 0, 1);
	if (aborted(sh))
		goto fail;
	if (ret == RACE_FD)
		cls = 0;
	else if (ret == -ESRCH)
		cls = 1;	/* queued, but the target went away before installing */
	else if (ret == -ENOENT)
		cls = 2;	/* the notification was already gone */
	else {
		cls = 3;
		violation(sh, k, "ADDFD against an exiting target returned %s", err_name(ret));
	}
	/* The target is reaped: its table is gone, so are both files. */
	e = write_token(np[1], k, TOK_NEW);
	if (e != -EPIPE)
		violation(sh, k, "the new file outlived the exited target (write: %s)",
			  e ? strerror(-e) : "succeeded");
	e = write_token(old_w, k, TOK_OLD);
	if (e != -EPIPE)
		violation(sh, k, "the old file outlived the exited target (write: %s)",
			  e ? strerror(-e) : "succeeded");
	close(np[1]);
	close(old_w);
	close_kept(r);
	sh->counts[cls]++;
	fz_account(sh, k, r->sc->order[cls]);
	sh->iterations_done = k + 1;
	return 0;
fail:
	if (np[1] >= 0)
		close(np[1]);
	close(old_w);
	return -1;
}

/* addfd_vs_signal: worker 1 signals the trapped worker 0 while we ADDFD into
 * its trap.  The trap always ends with EINTR and the notification with it
 * (our answer after the race finds nothing: ENOENT); ADDFD either installed
 * first, was queued and dropped by the interruption (ESRCH), or came after
 * the notification was gone (ENOENT). */
static int si_signal(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif_resp resp;
	struct seccomp_notif n;
	int np[2], e, cls;
	long ret;

	if (race_addfd(r, k, &n, np, &ret) < 0)
		return -1;
	if (sawait(r, &sh->wdone[1], k + 1, "the signalling worker") < 0 ||
	    sawait(r, &sh->wdone[0], k + 1, "the interrupted trap") < 0) {
		close(np[1]);
		return -1;
	}
	if (sh->ret[1] != 0)
		violation(sh, k, "tgkill returned %s", strerrorname_np(sh->err[1]));
	if (sh->ret[0] != -1 || sh->err[0] != EINTR)
		violation(sh, k, "the signalled trap returned %s, not EINTR",
			  err_name(sh->ret[0] < 0 ? -sh->err[0] : sh->ret[0]));
	resp = (struct seccomp_notif_resp){ .id = n.id };
	errno = 0;
	if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0 || errno != ENOENT)
		violation(sh, k, "answering the interrupted notification gave %s, not ENOENT",
			  errno ? strerrorname_np(errno) : "success");
	if (ret == RACE_FD)
		cls = 0;
	else if (ret == -ESRCH)
		cls = 1;	/* queued, then dropped as the wait was interrupted */
	else if (ret == -ENOENT)
		cls = 2;	/* the notification was already gone */
	else {
		cls = 3;
		violation(sh, k, "ADDFD against a signalled trap returned %s", err_name(ret));
	}
	e = write_token(np[1], k, TOK_NEW);
	if (cls == 0 && e)
		violation(sh, k, "the new file is not at the fd after ADDFD (write: %s)",
			  strerror(-e));
	if (cls != 0 && e != -EPIPE)
		violation(sh, k, "ADDFD failed with %s, yet the new file lives (write: %s)",
			  err_name(ret), e ? strerror(-e) : "succeeded");
	close(np[1]);
	return finish(r, k, cls);
}

static const struct scenario scenarios[FDR_RACE_NSCENARIOS] = {
	[FDR_RACE_TWO_ADDFD] = {
		.name = "two_addfd", .addfd = 1,
		.classes = { "A_last", "B_last", "inconsistent" }, .order = { -1, 1, 0 },
		.ops = { op_trap, op_trap }, .tsetup = ts_old, .tcheck = tc_two_addfd,
		.siter = si_two_addfd },
	[FDR_RACE_TWO_DUP2] = {
		.name = "two_dup2",
		.classes = { "A_last", "B_last", "inconsistent" }, .order = { -1, 1, 0 },
		.ops = { op_dup2, op_dup2 }, .tsetup = ts_two_dup2, .tcheck = tc_two_dup2,
		.siter = si_two_dup2 },
	[FDR_RACE_ADDFD_VS_CTL_ADD] = {
		.name = "addfd_vs_ctl_add", .addfd = 1, .uses_ep = 1,
		.classes = { "add_saw_old", "add_saw_new", "add_failed", "inconsistent" },
		.order = { -1, 1, 0, 0 },
		.ops = { op_trap, op_ctl_add }, .tsetup = ts_old, .tcheck = tc_ctl_add,
		.siter = si_ctl_add },
	[FDR_RACE_ADDFD_VS_CTL_DEL] = {
		.name = "addfd_vs_ctl_del", .addfd = 1, .uses_ep = 1,
		.classes = { "del_first", "replace_first", "inconsistent" }, .order = { -1, 1, 0 },
		.ops = { op_trap, op_ctl_del }, .tsetup = ts_old_kept_registered,
		.tcheck = tc_ctl_del, .siter = si_ctl_del },
	[FDR_RACE_ADDFD_VS_WAIT] = {
		.name = "addfd_vs_wait", .addfd = 1, .uses_ep = 1,
		.classes = { "blocked_before", "blocked_during", "blocked_after" },
		.order = { -1, 0, 1 },
		.ops = { op_trap, op_wait }, .tsetup = ts_old_kept_registered, .tcheck = tc_wait,
		.siter = si_wait },
	[FDR_RACE_ADDFD_VS_CLOSE] = {
		.name = "addfd_vs_close", .addfd = 1,
		.classes = { "close_first", "replace_first", "inconsistent" },
		.order = { -1, 1, 0 },
		.ops = { op_trap, op_close }, .tsetup = ts_old, .tcheck = tc_close,
		.siter = si_close },
	[FDR_RACE_ADDFD_VS_EXIT] = {
		.name = "addfd_vs_exit", .addfd = 1, .fork_each = 1, .trap_cpu = 1,
		.classes = { "addfd_first", "exit_during_addfd", "exit_first", "inconsistent" },
		.order = { 1, 0, -1, 0 },
		.ops = { op_trap, op_exit }, .tsetup = ts_old, .tcheck = tc_none,
		.siter = si_exit },
	[FDR_RACE_ADDFD_VS_SIGNAL] = {
		.name = "addfd_vs_signal", .addfd = 1,
		.classes = { "addfd_first", "signal_during_addfd", "signal_first", "inconsistent" },
		.order = { 1, 0, -1, 0 },
		.ops = { op_trap, op_signal }, .tsetup = ts_old_signal, .tcheck = tc_signal,
		.siter = si_signal },
	[FDR_RACE_TWO_LISTENERS] = {
		.name = "two_listeners", .addfd = 1, .own_listeners = 1, .uses_ep = 1,
		.classes = { "A_last", "B_last", "A_last_unwatched", "B_last_unwatched",
			     "inconsistent" }, .order = { -1, 1, -1, 1, 0 },
		.ops = { op_trap, op_trap }, .tsetup = ts_old_kept_registered,
		.tcheck = tc_two_listeners, .siter = si_two_listeners },
};

/* Copies of the target's fixed fds that some scenarios read from here. */
static int open_views(struct run *r)
{
	struct shm *sh = r->sh;
	char path[96];

	if (r->sc->uses_ep) {
		r->ep_copy = syscall(__NR_pidfd_getfd, r->pidfd, sh->ep, 0);
		if (r->ep_copy < 0) {
			give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(epoll)");
			return -1;
		}
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", r->ep_copy);
		r->epinfo = open(path, O_RDONLY | O_CLOEXEC);
		if (r->epinfo < 0) {
			give_up(sh, FDR_RACE_SETUP, errno, "open(epoll fdinfo)");
			return -1;
		}
	}
	if (r->sc->ops[1] == op_wait) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", r->pid, sh->tid[1]);
		r->status_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->status_fd < 0) {
			give_up(sh, FDR_RACE_SETUP, errno, "open(waiter's /proc status)");
			return -1;
		}
	}
	if (r->sc->own_listeners) {
		r->listener = syscall(__NR_pidfd_getfd, r->pidfd, sh->lfd[0], 0);
		r->listener2 = syscall(__NR_pidfd_getfd, r->pidfd, sh->lfd[1], 0);
		if (r->listener < 0 || r->listener2 < 0) {
			give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(the workers' listeners)");
			return -1;
		}
	}
	if (r->sc->siter == si_two_addfd || r->sc->siter == si_two_listeners) {
		sigset_t all, old;
		int err;

		/* No signal of the caller's may land on this thread. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		err = pthread_create(&r->s1, NULL, s1_main, r);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err) {
			give_up(sh, FDR_RACE_SETUP, err, "pthread_create(second supervisor)");
			return -1;
		}
		r->s1_running = 1;
	}
	return 0;
}

static void close_views(struct run *r)
{
	int *fds[] = { &r->ep_copy, &r->epinfo, &r->status_fd };

	for (unsigned int i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static void drive(struct run *r)
{
	struct shm *sh = r->sh;

	if (r->sc->addfd)
		pin(sh, 0);	/* the caller's own mask is restored by fdr_race() */
	if (r->sc->fork_each) {
		for (uint32_t k = 0; k < r->iterations; k++)
			if (r->sc->siter(r, k) < 0)
				break;
		reap(r, 1, 0);
		close_kept(r);
		return;
	}
	if (spawn(r, 0, r->iterations) == 0 && open_views(r) == 0)
		for (uint32_t k = 0; k < r->iterations; k++)
			if (r->sc->siter(r, k) < 0)
				break;
	if (r->s1_running && aborted(sh) && r->pid) {
		/* Unblocks an ADDFD of the second thread (ESRCH); reaped below. */
		kill(-r->pid, SIGKILL);
		kill(r->pid, SIGKILL);
	}
	if (r->s1_running)
		pthread_join(r->s1, NULL);
	r->s1_running = 0;
	reap(r, aborted(sh), 1);
	close_views(r);
	close_kept(r);
}

/* Discard the SIGPIPEs our writes to dead pipes raised on this thread. */
static void consume_sigpipe(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

int fdr_race(int scenario, int iterations, int timeout_ms, int flags,
	     struct fdr_race_result *out)
{
	struct run r = { .pidfd = -1, .listener = -1, .listener2 = -1, .ep_copy = -1, .epinfo = -1,
			 .status_fd = -1, .kept = { -1, -1 } };
	const struct scenario *sc;
	sigset_t all, old;
	struct rlimit rl;
	struct shm *sh;
	int64_t t0;

	if (scenario < 0 || scenario >= FDR_RACE_NSCENARIOS || iterations <= 0 ||
	    iterations > 10000000 || timeout_ms <= 0 ||
	    (flags & ~(FDR_RACE_F_SABOTAGE | FDR_RACE_F_FOLLOW)) || !out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	/* The fd under race: below the fd limit (a test machine may set it low). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur <= RACE_FD_MAX)
		race_fd = (int)rl.rlim_cur - 1;
	else
		race_fd = RACE_FD_MAX;
	if (race_fd < RACE_FD_MIN) {
		errno = EMFILE;
		return -1;
	}
	sc = &scenarios[scenario];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	r.sc = sc;
	r.sh = sh;
	r.iterations = iterations;
	sh->sabotage = !!(flags & FDR_RACE_F_SABOTAGE);
	sh->follow = !!(flags & FDR_RACE_F_FOLLOW);

	/* Nothing of the caller's may interrupt us (an ADDFD interrupted after
	 * queueing is withdrawn), and EPIPE must not kill it: block all, and
	 * drop the SIGPIPEs before restoring the mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	choose_cpus(sh);
	t0 = now_ns();
	sh->deadline_ns = t0 + (int64_t)timeout_ms * 1000000;

	drive(&r);

	out->elapsed_ns = now_ns() - t0;
	if (sh->cpu[0] >= 0)
		sched_setaffinity(0, sizeof(sh->cpus), &sh->cpus);
	consume_sigpipe();
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	out->status = atomic_load(&sh->abort);
	out->err = sh->setup_err;
	snprintf(out->where, sizeof(out->where), "%s", sh->abort_where);
	out->iterations = sh->iterations_done;
	if (out->status == FDR_RACE_OK && out->iterations != iterations) {
		/* Cannot happen; if it does, it must not pass as a complete run. */
		out->status = FDR_RACE_CRASHED;
		snprintf(out->where, sizeof(out->where), "the run ended early without a reason");
	}
	if (out->status != FDR_RACE_OK && !out->where[0])
		snprintf(out->where, sizeof(out->where),
			 "(the target was ended before saying why)");
	for (out->nclasses = 0; out->nclasses < FDR_RACE_MAX_CLASSES && sc->classes[out->nclasses];
	     out->nclasses++)
		out->counts[out->nclasses] = sh->counts[out->nclasses];
	out->violations = atomic_load(&sh->violations);
	memcpy(out->first_violation, sh->first_violation, sizeof(out->first_violation));
	out->first_violation[sizeof(out->first_violation) - 1] = 0;
	out->window_ns = sh->fz.window;
	out->flip_ns = sh->fz.flip;
	out->op_ns[0] = sh->fz.op[0];
	out->op_ns[1] = sh->fz.op[1];
	munmap(sh, sizeof(*sh));
	return 0;
}

const char *fdr_race_name(int scenario)
{
	if (scenario < 0 || scenario >= FDR_RACE_NSCENARIOS)
		return NULL;
	return scenarios[scenario].name;
}

const char *fdr_race_class(int scenario, int cls)
{
	if (scenario < 0 || scenario >= FDR_RACE_NSCENARIOS || cls < 0 ||
	    cls >= FDR_RACE_MAX_CLASSES)
		return NULL;
	return scenarios[scenario].classes[cls];
}

int fdr_race_needs_addfd(int scenario)
{
	return scenario >= 0 && scenario < FDR_RACE_NSCENARIOS && scenarios[scenario].addfd;
}
