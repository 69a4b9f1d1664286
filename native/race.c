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
 * The engine is one translation unit in four files: this one (shared state,
 * small helpers, fuzzy sync, the API), race_target.c (the child's side),
 * race_supervisor.c (spawning, answering traps, verdict helpers),
 * race_scenarios.c and race_scenarios_vs.c (each scenario's timeline,
 * interleaving classes and verdict; the table).
 *
 * The caller is a multi-threaded Python process: the child only ever _exits,
 * every blocking call has a deadline, and every process, thread and fd made
 * here is reaped, joined or closed before fdr_race() returns.
 */
#include "fdr_common.h"
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "race.h"

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
	void *(*s1)(void *run);	/* a second supervisor thread's main, or NULL */
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

/* The target's and the supervisor's sides, then the scenarios built on them:
 * one translation unit, split by role. */
#include "race_target.c"
#include "race_supervisor.c"
#include "race_scenarios.c"
#include "race_scenarios_vs.c"

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
	if (r->sc->s1) {
		sigset_t all, old;
		int err;

		/* No signal of the caller's may land on this thread. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		err = pthread_create(&r->s1, NULL, r->sc->s1, r);
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
