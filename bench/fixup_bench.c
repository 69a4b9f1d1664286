// SPDX-License-Identifier: GPL-2.0
/*
 * The fixup's cost per replace, against the target's fd count.
 *
 *   fixup_bench NFDS NEPOLLS REPS
 *
 * A target opens NFDS fds in all (eventfds and /dev/null, NEPOLLS epolls
 * each watching a few of them and a pipe read end R), then traps REPS times
 * on R.  The supervisor answers each trap with one ADDFD(SETFD) replacing R
 * by a new pipe, through fdr_fixup_addfd() in one of the modes (round robin,
 * so every mode meets the same target in the same run): none (a plain ADDFD),
 * naive (every fdinfo read), scan (readlink of every fd, kcmp on epolls),
 * tracked (the epolls the target made through its trapped epoll_create1,
 * which the supervisor answered with fdr_fixup_epoll_create: no scan at all).  After each
 * fixup every epoll must hold (R, new file): else it exits 1.
 * Prints "mode samples_us..." lines; bench/fixup_latency.py summarises them.
 * Build: gcc -O2 -o fixup_bench bench/fixup_bench.c native/fixup.c -Inative
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "fixup.h"

#define MAGIC 0x46445842U	/* the trapped ioctl request */
#define WATCHED_PER_EPOLL 8
enum { NONE = 3, NMODES = 4 };
static const char *mode_name[NMODES] = { "scan", "tracked", "naive", "none" };

static void die(const char *what)
{
	fprintf(stderr, "fixup_bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* The target: a filter trapping epoll_create1 and the magic ioctl, its
 * listener handed over, then epolls (made by the supervisor), fds, and REPS
 * traps on r. */
static void target(int nfds, int nepolls, int reps, int report)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_create1, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAGIC, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	int p[2], ep[64], open_now, listener;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			   SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0 || pipe2(p, O_NONBLOCK) < 0)
		_exit(3);
	int msg[2] = { listener, p[0] };

	if (write(report, msg, sizeof(msg)) != sizeof(msg))
		_exit(3);
	for (int i = 0; i < nepolls; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xd5 };

		ep[i] = epoll_create1(0);	/* trapped: the supervisor makes it */
		if (ep[i] < 0 || epoll_ctl(ep[i], EPOLL_CTL_ADD, p[0], &ev) < 0)
			_exit(3);
	}
	open_now = 3 + 2 + nepolls + 1;		/* stdio, the pipe, epolls, listener */
	for (int i = 0; open_now < nfds; i++, open_now++) {
		int fd = i % 2 ? eventfd(0, 0) : open("/dev/null", O_RDONLY);

		if (fd < 0)
			_exit(3);
		if (i < nepolls * WATCHED_PER_EPOLL && i % 2) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = fd };

			epoll_ctl(ep[i % nepolls], EPOLL_CTL_ADD, fd, &ev);
		}
	}
	for (int i = 0; i < reps; i++)
		if (ioctl(p[0], MAGIC, 0) < 0)
			_exit(4);
	_exit(0);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int nfds, nepolls, reps, rp[2], msg[2], listener, pidfd, status;
	struct rlimit rl;
	struct fdr_fixup_ctx ctx = { 0 };
	static struct fdr_fixup_plan plan;
	double *t[NMODES], track_us;
	pid_t pid;

	if (argc != 4)
		return fprintf(stderr, "usage: fixup_bench NFDS NEPOLLS REPS\n"), 2;
	nfds = atoi(argv[1]);
	nepolls = atoi(argv[2]);
	reps = atoi(argv[3]);
	if (nepolls < 1 || nepolls > 64 || reps < NMODES)
		return fprintf(stderr, "fixup_bench: 1..64 epolls, at least %d reps\n", NMODES), 2;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < (rlim_t)nfds + 16)
		return fprintf(stderr, "fixup_bench: RLIMIT_NOFILE hard limit %lu < %d\n",
			       (unsigned long)rl.rlim_max, nfds + 16), 4;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (pipe(rp) < 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		close(rp[0]);
		target(nfds, nepolls, reps, rp[1]);
	}
	close(rp[1]);
	if (pid < 0 || read(rp[0], msg, sizeof(msg)) != sizeof(msg))
		die("target set-up");
	pidfd = syscall(__NR_pidfd_open, pid, 0);
	listener = syscall(__NR_pidfd_getfd, pidfd, msg[0], 0);
	if (pidfd < 0 || listener < 0)
		die("pidfd");
	/* Tracking: the target's epoll_create1 calls, answered by the fixup. */
	track_us = 0;
	for (int i = 0; i < nepolls; i++) {
		struct seccomp_notif n = { 0 };
		double t0;

		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0 || n.data.nr != __NR_epoll_create1)
			die("epoll_create1 notification");
		t0 = now_us();
		if (fdr_fixup_epoll_create(&ctx, listener, n.id, (int)n.data.args[0]) < 0)
			die("fdr_fixup_epoll_create");
		track_us += now_us() - t0;
	}
	for (int m = 0; m < NMODES; m++)
		t[m] = calloc(reps, sizeof(double));
	for (int i = 0; i < reps; i++) {
		struct seccomp_notif n = { 0 };
		struct seccomp_notif_resp resp = { 0 };
		int m = i % NMODES, q[2];
		double t0;

		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0)
			die("NOTIF_RECV");
		if (pipe2(q, O_NONBLOCK) < 0)
			die("pipe");
		if (m == NONE) {	/* the ADDFD alone is timed; the fixup keeps the entries */
			struct seccomp_notif_addfd a = { .id = n.id, .flags = SECCOMP_ADDFD_FLAG_SETFD,
							 .srcfd = q[0], .newfd = msg[1] };

			if (fdr_fixup_prepare(FDR_FIXUP_TRACKED, &ctx, pid, pidfd, msg[1], &plan) < 0)
				die("prepare");
			t0 = now_us();
			if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a) < 0)
				die("ADDFD");
			t[m][i / NMODES] = now_us() - t0;
			fdr_fixup_apply(&plan, q[0]);
			fdr_fixup_release(&plan);
		} else {
			t0 = now_us();
			if (fdr_fixup_addfd(listener, n.id, q[0], msg[1], SECCOMP_ADDFD_FLAG_SETFD, 0,
					    pid, pidfd, m, &ctx, &plan) < 0)
				die("fdr_fixup_addfd");
			t[m][i / NMODES] = now_us() - t0;
		}
		if (m != NONE && plan.moved != nepolls) {
			fprintf(stderr, "fixup_bench: %s moved %d of %d entries\n", mode_name[m],
				plan.moved, nepolls);
			return 1;
		}
		close(q[0]);
		close(q[1]);
		resp.id = n.id;
		ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	waitpid(pid, &status, 0);
	fdr_fixup_untrack(&ctx);
	printf("fds %d epolls %d track_us %.1f\n", nfds, nepolls, track_us);
	for (int m = 0; m < NMODES; m++) {
		int k = reps / NMODES;

		qsort(t[m], k, sizeof(double), cmp);
		printf("%s", mode_name[m]);
		for (int i = 0; i < k; i++)
			printf(" %.1f", t[m][i]);
		printf("\n");
	}
	return 0;
}
