// SPDX-License-Identifier: GPL-2.0
/*
 * The userspace fixup: after SECCOMP_IOCTL_NOTIF_ADDFD(SETFD) replaces the file
 * at a target's fd N, epoll entries keyed (N, old file) follow the new file.
 *
 * What the kernel gives a supervisor to work with:
 *  - epoll_ctl finds an entry by (fd number, struct file *) taken from the
 *    CALLER's fd table: on its own pidfd_getfd copy of the target's epoll, a
 *    supervisor whose fd N refers to the old file deletes (N, old), and whose
 *    fd N refers to the new file adds (N, new).  Its own fd N is usually busy,
 *    so that work runs in a vfork-like child with a private copy of the table.
 *  - kcmp(KCMP_EPOLL_TFD) says whether an epoll's toff-th entry with fd N is a
 *    given file: an exact test, no text parsing, no confusion between anon-inode
 *    files (which fdinfo's ino cannot tell apart).
 *  - fdinfo of the epoll gives the entry's mask and data (its lines come in the
 *    same tree order as kcmp's toff).
 *
 * Order: prepare (find and record, take copies) before the install; after it,
 * per entry ADD (N, new) then DEL (N, old), then let the old file go.  The copy
 * of the old file keeps the old entries alive across the install, so nothing is
 * lost when the target held the last reference.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/seccomp.h>

#include "fixup.h"

#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef KCMP_EPOLL_TFD
#define KCMP_EPOLL_TFD 7
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

#define EPOLL_LINK "anon_inode:[eventpoll]"
#define MAX_TOFF 64		/* entries with one fd number in one epoll we look through */

struct kcmp_slot {
	uint32_t efd, tfd, toff;
};

/* 0 when epoll efd (in pid2's table) has, as its toff-th entry with number tfd,
 * the file at fd in pid1's table; 1 when it is another file; -1 when there is no
 * such entry (ENOENT) or efd was closed meanwhile (EBADF); -2 with errno when
 * kcmp cannot answer (no CONFIG_KCMP, no ptrace access): never "no entry". */
static int entry_is(int pid1, int fd, int pid2, int efd, int tfd, int toff)
{
	struct kcmp_slot slot = { (uint32_t)efd, (uint32_t)tfd, (uint32_t)toff };
	long r = syscall(SYS_kcmp, pid1, pid2, KCMP_EPOLL_TFD, fd, &slot);

	if (r < 0)
		return errno == ENOENT || errno == EBADF ? -1 : -2;
	return r == 0 ? 0 : 1;
}

static int same_file(int a, int b)
{
	return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, a, b) == 0;
}

/* The whole of a /proc text file (a big epoll's fdinfo runs to many pages),
 * path relative to dir (AT_FDCWD or a directory fd). */
static char *slurp(int dir, const char *path, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL;
	int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		if (!buf || n + 1 >= cap) {
			char *more = realloc(buf, cap *= 2);

			if (!more)
				break;
			buf = more;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

/* The toff-th "tfd:" line for number tfd in an fdinfo text: its mask and data. */
static int find_line(const char *text, int tfd, int toff, uint32_t *events, uint64_t *data)
{
	for (const char *p = strstr(text, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		int fd;
		unsigned int ev;
		unsigned long long d;

		if (sscanf(p, "tfd: %d events: %x data: %llx", &fd, &ev, &d) != 3 || fd != tfd)
			continue;
		if (toff-- == 0) {
			*events = ev;
			*data = d;
			return 0;
		}
	}
	return -1;
}

/* Record entry (fd, old) of the epoll whose copy is ep, found as toff. */
static int record(struct fdr_fixup_plan *p, int ep, int toff)
{
	char path[64];
	size_t len;
	char *text;
	struct fdr_fixup_entry *e;

	if (p->n >= FDR_FIXUP_MAX) {
		p->overflow++;
		close(ep);
		return 0;
	}
	for (int i = 0; i < p->n; i++) {	/* one instance at two target numbers: once */
		if (same_file(ep, p->e[i].ep)) {
			close(ep);
			return 0;
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	text = slurp(AT_FDCWD, path, &len);
	e = &p->e[p->n];
	memset(e, 0, sizeof(*e));
	e->ep = ep;
	e->toff = toff;
	if (!text || find_line(text, p->fd, toff, &e->events, &e->data) < 0) {
		free(text);
		close(ep);
		errno = EPROTO;		/* kcmp saw the entry, fdinfo does not show it */
		return -1;
	}
	free(text);
	p->n++;
	return 0;
}

/* The target's epoll at number efd: does it hold (fd, old)?  Then record it. */
static int examine_target_epoll(struct fdr_fixup_plan *p, int pid, int pidfd, int efd)
{
	p->epolls++;
	for (int toff = 0; toff < MAX_TOFF; toff++) {
		int r = entry_is(pid, p->fd, pid, efd, p->fd, toff);

		if (r < 0)
			return r == -1 ? 0 : -1;
		if (r == 0) {
			int ep = syscall(__NR_pidfd_getfd, pidfd, efd, 0);

			if (ep < 0)	/* closed meanwhile: gone with its entries */
				return errno == EBADF ? 0 : -1;
			return record(p, ep, toff);
		}
	}
	return 0;
}

struct fixup_dirent {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Call fn on every fd number of pid that is an epoll instance (SCAN: by its
 * /proc/<pid>/fd link) or whose fdinfo has a line for tfd (NAIVE). */
static int each_epoll(int pid, int naive, int tfd, int *scanned,
		      int (*fn)(void *arg, int efd), void *arg)
{
	char path[64], buf[32768], link[64];
	long n;
	int dir;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, naive ? "fdinfo" : "fd");
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct fixup_dirent *d = (struct fixup_dirent *)(buf + off);
			int efd, hit;

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			efd = atoi(d->d_name);
			++*scanned;
			if (naive) {	/* the whole fdinfo, as a parser of it must */
				char want[32], *text;
				size_t len;

				text = slurp(dir, d->d_name, &len);
				snprintf(want, sizeof(want), "tfd: %8d ", tfd);
				hit = text && strstr(text, want) != NULL;
				free(text);
			} else {
				ssize_t r = readlinkat(dir, d->d_name, link, sizeof(link));

				hit = r == (ssize_t)strlen(EPOLL_LINK) && !memcmp(link, EPOLL_LINK, r);
			}
			if (hit && fn(arg, efd) < 0) {
				close(dir);
				return -1;
			}
		}
	}
	close(dir);
	return n < 0 ? -1 : 0;
}

struct scan_arg {
	struct fdr_fixup_plan *p;
	int pid, pidfd;
};

static int scan_one(void *arg, int efd)
{
	struct scan_arg *a = arg;

	return examine_target_epoll(a->p, a->pid, a->pidfd, efd);
}

int fdr_fixup_prepare(int mode, const struct fdr_fixup_ctx *ctx, int pid, int pidfd, int fd,
		      struct fdr_fixup_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->old = syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	if (p->old < 0) {
		p->old = -1;
		return errno == EBADF ? 0 : -1;	/* nothing at fd: nothing to follow */
	}
	if (mode == FDR_FIXUP_TRACKED) {
		int self = getpid();

		for (int i = 0; i < ctx->nep; i++) {
			p->epolls++;
			for (int toff = 0; toff < MAX_TOFF; toff++) {
				int r = entry_is(self, p->old, self, ctx->ep[i], fd, toff);

				if (r == -2)
					goto fail;
				if (r < 0)
					break;
				if (r == 0) {
					int ep = fcntl(ctx->ep[i], F_DUPFD_CLOEXEC, 0);

					if (ep < 0 || record(p, ep, toff) < 0)
						goto fail;
					break;
				}
			}
		}
		return 0;
	}
	struct scan_arg a = { p, pid, pidfd };

	if (each_epoll(pid, mode == FDR_FIXUP_NAIVE, fd, &p->scanned, scan_one, &a) == 0)
		return 0;
fail:
	fdr_fixup_release(p);
	return -1;
}

/* The ctl work, in a child with a private copy of the fd table (its fd N is
 * ours to point at either file). */
struct ctl_job {
	struct fdr_fixup_plan *p;
	int newfile;
	int new_is_epoll;
};

static int move_off(int fd, int n)
{
	return fd == n ? fcntl(fd, F_DUPFD, n + 1) : fd;
}

/* One entry: DEL (N, old) first, so that from then on no event of the old file
 * is reported under N, then ADD (N, new), whose initial poll queues the new
 * file if it is ready already (nothing is lost, edge-triggered or not).  A new
 * file that is an epoll may be refused by the loop and depth checks, which only
 * the ADD can tell: there ADD comes first and the DEL only when it succeeded. */
static void move_entry(struct fdr_fixup_entry *e, int ep, int n, int newf, int old, int add_first)
{
	struct epoll_event ev = { .events = e->events, .data.u64 = e->data };

	e->add_err = e->del_err = -1;
	if (!add_first) {
		if (dup2(old, n) < 0)
			return;
		e->del_err = epoll_ctl(ep, EPOLL_CTL_DEL, n, NULL) < 0 ? errno : 0;
	}
	if (dup2(newf, n) < 0)
		return;
	e->add_err = epoll_ctl(ep, EPOLL_CTL_ADD, n, &ev) < 0 ? errno : 0;
	if (!add_first || (e->add_err && e->add_err != EEXIST))
		return;		/* refused: follow keeps the entry with the old file */
	if (dup2(old, n) < 0)
		return;
	e->del_err = epoll_ctl(ep, EPOLL_CTL_DEL, n, NULL) < 0 ? errno : 0;
}

static int ctl_work(void *arg)
{
	struct ctl_job *j = arg;
	struct fdr_fixup_plan *p = j->p;
	int n = p->fd, newf = move_off(j->newfile, n), old = move_off(p->old, n);

	for (int i = 0; i < p->n; i++)
		move_entry(&p->e[i], move_off(p->e[i].ep, n), n, newf, old, j->new_is_epoll);
	return 0;
}

/* Run ctl_work with fd N free for it: in place when N is free here (no other
 * thread can take it while we hold it), else in a CLONE_VM|CLONE_VFORK child
 * whose fd table is a copy of ours (the way posix_spawn runs its child). */
static int run_ctl(struct ctl_job *j)
{
	int n = j->p->fd, at = fcntl(j->newfile, F_DUPFD_CLOEXEC, n);
	size_t stack_size = 64 * 1024;
	sigset_t all, saved;
	int status, pid;
	void *stack;

	if (at == n) {		/* nothing else of ours is at n, then */
		ctl_work(j);
		close(n);
		return 0;
	}
	if (at >= 0)
		close(at);
	stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);	/* no handler runs in the child */
	pid = clone(ctl_work, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK, j);
	if (pid > 0)
		while (waitpid(pid, &status, __WCLONE) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	munmap(stack, stack_size);
	return pid > 0 ? 0 : -1;
}

static int link_is(int fd, const char *what)
{
	char path[64], link[64];
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = readlink(path, link, sizeof(link) - 1);
	return r > 0 && (link[r] = 0, strcmp(link, what) == 0);
}

/* Would any epoll take this file?  (A regular file has no ->poll: EPERM.) */
static int pollable(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int scratch = epoll_create1(EPOLL_CLOEXEC), ok;

	if (scratch < 0)
		return 1;	/* let the real ADD say */
	ok = epoll_ctl(scratch, EPOLL_CTL_ADD, fd, &ev) == 0 || errno != EPERM;
	close(scratch);
	return ok;
}

int fdr_fixup_apply(struct fdr_fixup_plan *p, int newfile)
{
	struct ctl_job j = { p, newfile, link_is(newfile, EPOLL_LINK) };
	int refuse = 0;

	p->moved = p->kept = 0;
	if (p->n == 0)
		return 0;
	/* The same file installed again: its entries are already right. */
	if (same_file(p->old, newfile)) {
		p->moved = p->n;
		return p->moved;
	}
	/* A signalfd polls for the signals of whoever polls it, and an ADD hooks
	 * the entry to the adder's signal queue: from here it would watch the
	 * supervisor.  Such entries, and those of a file no epoll takes, stay
	 * with the old file. */
	if (link_is(newfile, "anon_inode:[signalfd]"))
		refuse = EOPNOTSUPP;
	else if (!pollable(newfile))
		refuse = EPERM;
	if (refuse) {
		for (int i = 0; i < p->n; i++)
			p->e[i].add_err = refuse;
		p->kept = p->n;
		return 0;
	}
	if (run_ctl(&j) < 0)
		return -1;
	for (int i = 0; i < p->n; i++) {
		if (p->e[i].add_err == 0 || p->e[i].add_err == EEXIST)
			p->moved++;
		else
			p->kept++;
	}
	return p->moved;
}

void fdr_fixup_release(struct fdr_fixup_plan *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->e[i].ep >= 0)
			close(p->e[i].ep);
	p->n = 0;
	if (p->old >= 0)
		close(p->old);
	p->old = -1;
}

int fdr_fixup_addfd(int listener, uint64_t id, int srcfd, int newfd, uint32_t flags,
		    uint32_t newfd_flags, int pid, int pidfd, int mode,
		    const struct fdr_fixup_ctx *ctx, struct fdr_fixup_plan *p)
{
	struct seccomp_notif_addfd a = { .id = id, .flags = flags, .srcfd = (uint32_t)srcfd,
					 .newfd = (uint32_t)newfd, .newfd_flags = newfd_flags };
	int r, err;

	if (!(flags & SECCOMP_ADDFD_FLAG_SETFD)) {
		errno = EINVAL;
		return -1;
	}
	if (fdr_fixup_prepare(mode, ctx, pid, pidfd, newfd, p) < 0)
		return -1;
	r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	err = errno;
	if (r >= 0)
		fdr_fixup_apply(p, srcfd);
	fdr_fixup_release(p);
	errno = err;
	return r;
}

struct track_arg {
	struct fdr_fixup_ctx *c;
};

static int track_one(void *arg, int efd)
{
	struct fdr_fixup_ctx *c = ((struct track_arg *)arg)->c;
	int ep;

	if (c->nep >= FDR_FIXUP_MAX_EPOLLS) {
		errno = ENOSPC;
		return -1;
	}
	ep = syscall(__NR_pidfd_getfd, c->pidfd, efd, 0);
	if (ep < 0)
		return errno == EBADF ? 0 : -1;	/* closed meanwhile */
	for (int i = 0; i < c->nep; i++) {	/* the same instance at two numbers: once */
		if (same_file(ep, c->ep[i])) {
			close(ep);
			return 0;
		}
	}
	c->ep[c->nep++] = ep;
	return 0;
}

int fdr_fixup_track(struct fdr_fixup_ctx *c, int pid, int pidfd)
{
	struct track_arg a = { c };
	int scanned = 0;

	if (c->pid == pid && c->nep > 0)
		fdr_fixup_untrack(c);
	c->pid = pid;
	c->pidfd = pidfd;
	c->nep = 0;
	return each_epoll(pid, 0, -1, &scanned, track_one, &a);
}

void fdr_fixup_untrack(struct fdr_fixup_ctx *c)
{
	for (int i = 0; i < c->nep; i++)
		close(c->ep[i]);
	c->nep = 0;
}

int fdr_fixup_epoll_create(struct fdr_fixup_ctx *c, int listener, uint64_t id, int flags)
{
	struct seccomp_notif_addfd a = { .id = id, .flags = SECCOMP_ADDFD_FLAG_SEND,
					 .newfd_flags = (flags & EPOLL_CLOEXEC) ? O_CLOEXEC : 0 };
	int ep, r, err;

	if (c->nep >= FDR_FIXUP_MAX_EPOLLS) {
		errno = ENOSPC;
		return -1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	a.srcfd = (uint32_t)ep;
	r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (r < 0) {
		err = errno;
		close(ep);
		errno = err;
		return -1;
	}
	c->ep[c->nep++] = ep;
	return r;
}
