/* A long bounded churn of ADDFD(SETFD) replaces of one registered fd while a
 * thread of the target spins in epoll_wait on its epoll (the property the
 * seeds argue about, checked in bulk): no epoll_wait call that began after a
 * replace returned reports the replaced, single-referenced file; no replaced
 * file stays open; the target ends with the fds and the one entry it began
 * with.
 *
 * Iteration k: the target traps (k is the syscall's third argument); the
 * supervisor makes file k-1 (the one at the fd, registered with data k-1)
 * readable, installs a fresh pipe k at the fd and answers; back in user space
 * (the old file's final fput is done by then, or by the waiter's return if its
 * poll held a transient reference), the target publishes k and registers the
 * fd again with data k: ADD on a stock kernel, where the entry died with the
 * old file; MOD where the ADD finds it (a kernel whose entry follows the
 * replace).  The busy thread reads the published k before each call; an
 * event whose data is below it names a file already replaced.
 * Built by native/build.py as native._churn. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "churn.h"
#include "fdr_common.h"


#define CHURN_MAGIC 0x46445243U		/* "FDRC": the trapped ioctl request */
#define CHURN_FD 50			/* the churned fd in the target */
#define RING 256			/* replaced files whose release is checked lazily */
#define RELEASE_MS 2000			/* how long a replaced file may take to go */

enum { PH_START, PH_LISTENER, PH_DONE, PH_CHECKED, PH_FAILED };

struct shm {
	_Atomic int phase;
	_Atomic int done;		/* the last iteration whose trap returned */
	_Atomic int stop;
	int listener;
	int err;
	char where[64];
	int64_t waits, events, stale;
	char first_stale[160];
	int adds, mods, ctl_failures, trap_failures;
	int fds_before, fds_after, entries, entry_fd;
	uint64_t entry_data;
};

/* ---- the target ----------------------------------------------------------- */

struct tgt {
	struct shm *sh;
	int ep;
	int iterations;
	int64_t deadline;
};

static void __attribute__((noreturn)) tfail(struct shm *sh, const char *where)
{
	sh->err = errno;
	snprintf(sh->where, sizeof(sh->where), "target: %s", where);
	atomic_store(&sh->phase, PH_FAILED);
	_exit(3);
}

static long trap(int k)
{
	return syscall(__NR_ioctl, CHURN_FD, CHURN_MAGIC, k, 0, 0, 0);
}

static int count_fds(void)
{
	char buf[4096];
	int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), count = 0;
	long n;

	if (fd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < n;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			const char *name = buf + off + 19;

			if (name[0] != '.')
				count++;
			off += reclen;
		}
	close(fd);
	return count - 1;	/* not the directory fd itself */
}

static void *waiter(void *arg)
{
	struct tgt *t = arg;
	struct shm *sh = t->sh;
	struct epoll_event ev[8];

	while (!atomic_load(&sh->stop)) {
		int start = atomic_load(&sh->done);
		int n = epoll_wait(t->ep, ev, 8, 1);

		sh->waits++;
		for (int i = 0; i < n; i++) {
			uint64_t d = ev[i].data.u64;

			sh->events++;
			if (d < (uint64_t)start && sh->stale++ == 0)
				snprintf(sh->first_stale, sizeof(sh->first_stale),
					 "a wait begun after replace %d reported file %llu (events %#x)",
					 start, (unsigned long long)d, ev[i].events);
		}
	}
	return NULL;
}

static void reregister(struct tgt *t, int k)
{
	struct shm *sh = t->sh;
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)k };

	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, CHURN_FD, &e) == 0)
		sh->adds++;
	else if (errno == EEXIST && epoll_ctl(t->ep, EPOLL_CTL_MOD, CHURN_FD, &e) == 0)
		sh->mods++;
	else
		sh->ctl_failures++;
}

static void read_entries(struct tgt *t)
{
	struct shm *sh = t->sh;
	char path[64], buf[4096];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", t->ep);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		tfail(sh, "read(epoll fdinfo)");
	buf[n] = 0;
	sh->entries = 0;
	for (char *p = strstr(buf, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		unsigned long long data = 0;
		unsigned int events;

		if (sh->entries++ == 0 &&
		    sscanf(p, "tfd: %d events: %x data: %llx", &sh->entry_fd, &events, &data) == 3)
			sh->entry_data = data;
	}
}

static void __attribute__((noreturn)) target(struct shm *sh, int iterations, int timeout_ms)
{
	struct tgt t = { .sh = sh, .iterations = iterations,
			 .deadline = fdr_now_ms() + timeout_ms };
	sigset_t none;
	pthread_t w;
	int listener;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		tfail(sh, "prctl(NO_NEW_PRIVS)");
	listener = fdr_trap_ioctl(CHURN_MAGIC);
	if (listener < 0)
		tfail(sh, "seccomp(NEW_LISTENER)");
	sh->listener = listener;
	atomic_store(&sh->phase, PH_LISTENER);
	t.ep = epoll_create1(EPOLL_CLOEXEC);
	if (t.ep < 0)
		tfail(sh, "epoll_create1");
	if (trap(0) != 0)		/* the supervisor installs file 0 */
		tfail(sh, "the first trap");
	reregister(&t, 0);
	sh->fds_before = count_fds();
	if (pthread_create(&w, NULL, waiter, &t) != 0)
		tfail(sh, "pthread_create");
	for (int k = 1; k <= iterations; k++) {
		if (trap(k) != 0)
			sh->trap_failures++;
		atomic_store(&sh->done, k);
		reregister(&t, k);
	}
	atomic_store(&sh->stop, 1);
	pthread_join(w, NULL);
	sh->fds_after = count_fds();
	read_entries(&t);
	atomic_store(&sh->phase, PH_DONE);
	while (atomic_load(&sh->phase) != PH_CHECKED && fdr_now_ms() < t.deadline)
		usleep(1000);
	_exit(0);
}

/* ---- the supervisor ------------------------------------------------------- */

struct run {
	struct fdr_churn_result *out;
	struct shm *sh;
	int64_t deadline;
	pid_t pid;
	int pidfd, listener;
	int ring[RING], nring, head;
	int cur_w;			/* the write end of the file now at the fd */
	int keep_old;			/* FDR_CHURN_F_KEEP_OLD */
	int kept[RING], nkept;		/* its copies of replaced files, closed in turn */
};

static int fail(struct run *r, int status, int err, const char *where)
{
	if (r->out->status == FDR_CHURN_OK) {
		r->out->status = status;
		r->out->err = err;
		snprintf(r->out->where, sizeof(r->out->where), "%s", where);
	}
	return -1;
}

static int left_ms(struct run *r)
{
	int64_t left = r->deadline - fdr_now_ms();

	return left > 0 ? (int)left : 0;
}

static int target_failed(struct run *r)
{
	if (atomic_load(&r->sh->phase) != PH_FAILED)
		return 0;
	return fail(r, FDR_CHURN_SETUP, r->sh->err, r->sh->where);
}

static int wait_phase(struct run *r, int phase, const char *what)
{
	while (atomic_load(&r->sh->phase) < phase) {
		if (target_failed(r))
			return -1;
		if (!left_ms(r))
			return fail(r, FDR_CHURN_TIMEOUT, 0, what);
		usleep(500);
	}
	return target_failed(r);
}

static int recv_trap(struct run *r, int k, struct seccomp_notif *n)
{
	for (;;) {
		struct pollfd p = { .fd = r->listener, .events = POLLIN };
		int left = left_ms(r), got;

		if (target_failed(r))
			return -1;
		if (!left)
			return fail(r, FDR_CHURN_TIMEOUT, 0, "the target's trap");
		got = poll(&p, 1, left < 50 ? left : 50);
		if (got == 1 && (p.revents & POLLIN)) {
			memset(n, 0, sizeof(*n));
			if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_RECV, n) == 0)
				break;
			if (errno != ENOENT && errno != EINTR)
				return fail(r, FDR_CHURN_SETUP, errno, "SECCOMP_IOCTL_NOTIF_RECV");
		} else if (got == 1) {
			return fail(r, FDR_CHURN_SETUP, 0, "the target died before its trap");
		}
	}
	if (n->data.args[2] != (uint64_t)k)
		return fail(r, FDR_CHURN_SETUP, EPROTO, "a trap out of order");
	return 0;
}

/* A replaced file is gone once its pipe has no reader: its write end polls POLLERR. */
static void check_released(struct run *r, int w)
{
	struct pollfd p = { .fd = w, .events = POLLOUT };
	int64_t until = fdr_now_ms() + RELEASE_MS;

	for (;;) {
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
			break;
		if (fdr_now_ms() > until) {
			r->out->old_alive++;
			break;
		}
		usleep(1000);
	}
	close(w);
}

static void ring_push(struct run *r, int w)
{
	if (r->nring == RING) {
		check_released(r, r->ring[r->head]);
		r->ring[r->head] = w;
		r->head = (r->head + 1) % RING;
	} else {
		r->ring[(r->head + r->nring++) % RING] = w;
	}
}

static void ring_drain(struct run *r)
{
	while (r->nring) {
		check_released(r, r->ring[r->head]);
		r->head = (r->head + 1) % RING;
		r->nring--;
	}
}

static int churn(struct run *r, int iterations)
{
	uint64_t token = 0x43485552ULL;	/* "CHUR" */

	for (int k = 0; k <= iterations; k++) {
		struct seccomp_notif n;
		struct seccomp_notif_resp resp = { 0 };
		struct seccomp_notif_addfd a = { .flags = SECCOMP_ADDFD_FLAG_SETFD,
						 .newfd = CHURN_FD };
		int p[2];
		long ret;

		if (recv_trap(r, k, &n) < 0)
			return -1;
		if (r->cur_w >= 0 && write(r->cur_w, &token, sizeof(token)) != sizeof(token))
			r->out->addfd_failures++;	/* file k-1 should still be at the fd */
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
			return fail(r, FDR_CHURN_SETUP, errno, "pipe2");
		a.id = n.id;
		a.srcfd = p[0];
		ret = ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
		if (r->keep_old) {
			if (r->nkept >= RING)
				close(r->kept[r->nkept % RING]);
			r->kept[r->nkept++ % RING] = p[0];
		} else {
			close(p[0]);
		}
		if (ret != CHURN_FD)
			r->out->addfd_failures++;
		resp.id = n.id;
		if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
			r->out->addfd_failures++;
		if (r->cur_w >= 0)
			ring_push(r, r->cur_w);
		r->cur_w = p[1];
		r->out->iterations = k;
	}
	if (wait_phase(r, PH_DONE, "the target's final checks") < 0)
		return -1;
	for (int i = 0; i < RING && i < r->nkept; i++)
		close(r->kept[i]);
	r->nkept = 0;
	ring_drain(r);		/* the busy thread is gone: every replaced file must be */
	return 0;
}

static void copy_out(struct run *r)
{
	struct fdr_churn_result *o = r->out;
	struct shm *sh = r->sh;

	o->waits = sh->waits;
	o->events = sh->events;
	o->stale = sh->stale;
	memcpy(o->first_stale, sh->first_stale, sizeof(o->first_stale));
	o->adds = sh->adds;
	o->mods = sh->mods;
	o->ctl_failures = sh->ctl_failures;
	o->addfd_failures += sh->trap_failures;
	o->fds_before = sh->fds_before;
	o->fds_after = sh->fds_after;
	o->entries = sh->entries;
	o->entry_fd = sh->entry_fd;
	o->entry_data = sh->entry_data;
}

int fdr_churn(int iterations, int timeout_ms, int flags, struct fdr_churn_result *out)
{
	struct run r = { .out = out, .pidfd = -1, .listener = -1, .cur_w = -1,
			 .keep_old = flags & FDR_CHURN_F_KEEP_OLD };
	int status;

	if (iterations <= 0 || timeout_ms <= 0 || (flags & ~FDR_CHURN_F_KEEP_OLD) || !out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	r.deadline = fdr_now_ms() + timeout_ms;
	r.sh = mmap(NULL, sizeof(struct shm), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.sh == MAP_FAILED) {
		fail(&r, FDR_CHURN_SETUP, errno, "mmap");
		return 0;
	}
	memset(r.sh, 0, sizeof(*r.sh));
	r.pid = fork();
	if (r.pid < 0) {
		fail(&r, FDR_CHURN_SETUP, errno, "fork");
		goto out;
	}
	if (r.pid == 0)
		target(r.sh, iterations, timeout_ms);
	r.pidfd = syscall(__NR_pidfd_open, r.pid, 0);
	if (r.pidfd < 0) {
		fail(&r, FDR_CHURN_SETUP, errno, "pidfd_open");
		goto out;
	}
	if (wait_phase(&r, PH_LISTENER, "the target's listener") < 0)
		goto out;
	r.listener = syscall(__NR_pidfd_getfd, r.pidfd, r.sh->listener, 0);
	if (r.listener < 0) {
		fail(&r, FDR_CHURN_SETUP, errno, "pidfd_getfd(listener)");
		goto out;
	}
	if (churn(&r, iterations) == 0)
		copy_out(&r);
	atomic_store(&r.sh->phase, PH_CHECKED);
out:
	if (r.pid > 0) {
		struct pollfd p = { .fd = r.pidfd, .events = POLLIN };

		if (out->status != FDR_CHURN_OK || r.pidfd < 0 || poll(&p, 1, left_ms(&r) + 1000) != 1)
			kill(r.pid, SIGKILL);
		waitpid(r.pid, &status, 0);
	}
	while (r.nring) {		/* after a failure: closed unchecked */
		close(r.ring[r.head]);
		r.head = (r.head + 1) % RING;
		r.nring--;
	}
	if (r.cur_w >= 0)
		close(r.cur_w);
	for (int i = 0; i < RING && i < r.nkept; i++)
		close(r.kept[i]);
	if (r.pidfd >= 0)
		close(r.pidfd);
	if (r.listener >= 0)
		close(r.listener);
	munmap(r.sh, sizeof(struct shm));
	return 0;
}
