// SPDX-License-Identifier: GPL-2.0
/*
 * One ADDFD(SETFD) replace of an fd registered in epoll, with an allocation
 * failure injected by fail-nth (CONFIG_FAULT_INJECTION) into the thread that
 * carries out the install.  That thread is the target's, not the
 * supervisor's: seccomp_handle_addfd() runs in the trapped task, woken by the
 * supervisor's ioctl, so the count is set on the notification's thread.
 *
 * Compiled into native._race (native/build.py) beside the race engine; its
 * static names carry an fn_ prefix so that both fit in one unit.  The caller
 * is a multi-threaded Python process: the child only ever _exits, every wait
 * has a deadline, and the child is reaped and every fd closed before
 * fdr_failnth() returns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>		/* before linux/seccomp.h, which uses _IOWR */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "failnth.h"
#include "fdr_common.h"

#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

#define FN_FD 60			/* the target's fd under test */
#define FN_MAGIC 0x46444E46U		/* "FDNF": the trapped ioctl request */


/* What the target tells the supervisor besides its listener. */
struct fn_hello {
	int32_t ep, old_w;
};

static void fn_fail(struct fdr_failnth_result *out, int status, const char *where)
{
	if (out->status)
		return;
	out->status = status;
	out->err = status == FDR_FAILNTH_SETUP ? errno : 0;
	snprintf(out->where, sizeof(out->where), "%s", where);
}

/* The target: fd FN_FD is the old pipe's read end, kept alive by a dup and
 * registered; then it traps once and exits.  Exit codes say what failed. */
static void __attribute__((noreturn)) fn_target(int ctl, pid_t parent)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = FDR_FAILNTH_DATA };
	struct fn_hello hello;
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof(hello) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int p[2], listener;

	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(10);
	prctl(PR_SET_NAME, "fdr-failnth");
	/* Nothing of the caller's (close_range: 5.9 and later, as ADDFD's SETFD). */
	syscall(__NR_close_range, 3, ctl - 1, 0);
	syscall(__NR_close_range, ctl + 1, ~0U, 0);
	if (pipe2(p, O_NONBLOCK) < 0 || dup2(p[0], FN_FD) != FN_FD)
		_exit(11);
	hello.old_w = p[1];
	hello.ep = epoll_create1(0);
	if (hello.ep < 0 || epoll_ctl(hello.ep, EPOLL_CTL_ADD, FN_FD, &e) < 0)
		_exit(12);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || (listener = fdr_trap_ioctl(FN_MAGIC)) < 0)
		_exit(13);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &listener, sizeof(int));
	if (sendmsg(ctl, &msg, MSG_NOSIGNAL) != sizeof(hello))
		_exit(14);
	close(listener);
	close(ctl);
	syscall(__NR_ioctl, FN_FD, FN_MAGIC, 0, 0, 0, 0);
	_exit(0);
}

static int fn_left(int64_t deadline)
{
	int64_t left = deadline - fdr_now_ms();

	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Wait for POLLIN on fd until the deadline. */
static int fn_wait_in(int fd, int64_t deadline)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int n;

	while ((n = poll(&pf, 1, fn_left(deadline))) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : -1;
}

static int fn_count_fds(pid_t pid)
{
	char path[64], buf[64 * 1024];
	int dir, count = 0;
	long n;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0)
		for (long off = 0; off < n;) {
			char *name = buf + off + 19;	/* linux_dirent64: d_name after 19 bytes */

			count += name[0] != '.';
			off += *(unsigned short *)(buf + off + 16);
		}
	close(dir);
	return count;
}

/* Read (and then set) a thread's fail-nth; -1 on error. */
static int fn_nth(int fd, int set)
{
	char buf[32];
	long n;
	int len;

	if (set >= 0) {
		len = snprintf(buf, sizeof(buf), "%d", set);
		return pwrite(fd, buf, len, 0) == len ? 0 : -1;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atoi(buf);
}

static void fn_epoll_view(int ep, struct fdr_failnth_result *out)
{
	char path[64], buf[4096], *p;
	int info;
	long n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	info = open(path, O_RDONLY | O_CLOEXEC);
	n = info >= 0 ? read(info, buf, sizeof(buf) - 1) : -1;
	if (info >= 0)
		close(info);
	out->lines = n < 0 ? -1 : 0;
	if (n < 0)
		return;
	buf[n] = 0;
	for (p = strstr(buf, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		unsigned long long data = 0, ino = 0;

		if (out->lines++ == 0) {
			sscanf(p, "tfd: %d events: %x data: %llx pos:%*i ino:%llx", &out->tfd,
			       &out->events, &data, &ino);
			out->data = data;
			out->ino = ino;
		}
	}
}

static int fn_alive(int w)
{
	char byte = 'x';

	return write(w, &byte, 1) == 1;
}

/* The supervisor's part, once the target trapped: see failnth.h.  Returns
 * 1 once it reaped the target, 0 when the caller must kill and reap it. */
static int fn_replace(pid_t pid, int listener, int pidfd, const struct fn_hello *hello, int nth,
		       int64_t deadline, struct fdr_failnth_result *out)
{
	struct seccomp_notif n = { 0 };
	struct seccomp_notif_resp resp = { 0 };
	struct seccomp_notif_addfd a = { .flags = SECCOMP_ADDFD_FLAG_SETFD, .newfd = FN_FD };
	struct epoll_event ev;
	struct stat st;
	char path[80];
	int np[2] = { -1, -1 }, ep = -1, old_w = -1, nthfd = -1, status;

	int reaped = 0;

	if (fn_wait_in(listener, deadline) < 0) {
		fn_fail(out, FDR_FAILNTH_TIMEOUT, "waiting for the target's trap");
		return 0;
	}
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
		fn_fail(out, FDR_FAILNTH_SETUP, "SECCOMP_IOCTL_NOTIF_RECV");
		return 0;
	}
	out->trapped_tid = n.pid;
	ep = syscall(__NR_pidfd_getfd, pidfd, hello->ep, 0);
	old_w = syscall(__NR_pidfd_getfd, pidfd, hello->old_w, 0);
	snprintf(path, sizeof(path), "/proc/%d/task/%u/fail-nth", pid, n.pid);
	nthfd = nth ? open(path, O_RDWR | O_CLOEXEC) : -2;	/* nth 0: no injection */
	if (ep < 0 || old_w < 0 || nthfd == -1 || pipe2(np, O_NONBLOCK | O_CLOEXEC) < 0) {
		fn_fail(out, FDR_FAILNTH_SETUP, ep < 0 || old_w < 0 ? "pidfd_getfd" :
			nthfd < 0 ? "open(fail-nth of the trapped thread)" : "pipe2");
		goto out;
	}
	if (fstat(old_w, &st) == 0)
		out->old_ino = st.st_ino;
	if (fstat(np[1], &st) == 0)
		out->new_ino = st.st_ino;
	out->fds_before = fn_count_fds(pid);
	if (nth && fn_nth(nthfd, nth) < 0) {
		fn_fail(out, FDR_FAILNTH_SETUP, "write(fail-nth)");
		goto out;
	}
	a.id = n.id;
	a.srcfd = np[0];
	out->addfd_ret = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (out->addfd_ret < 0)
		out->addfd_ret = -errno;
	/* The install ran in the trapped thread: what is left of its count, then no more. */
	out->nth_left = nth ? fn_nth(nthfd, -1) : -1;
	if (nth)
		fn_nth(nthfd, 0);
	close(np[0]);
	np[0] = -1;
	out->fds_after = fn_count_fds(pid);
	fn_epoll_view(ep, out);
	fn_alive(old_w);		/* only the old file readable */
	out->nev_old = epoll_wait(ep, &ev, 1, 0);
	fn_alive(np[1]);		/* and the fd's new one */
	out->nev_both = epoll_wait(ep, &ev, 1, 0);
	if (out->nev_both == 1) {
		out->ev_events = ev.events;
		out->ev_data = ev.data.u64;
	}
	resp.id = n.id;
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	if (fn_wait_in(pidfd, deadline) < 0) {
		fn_fail(out, FDR_FAILNTH_TIMEOUT, "waiting for the target's exit");
		syscall(__NR_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	reaped = 1;
	if (!out->status && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		errno = 0;
		fn_fail(out, FDR_FAILNTH_SETUP, "the target did not exit 0 after its trap");
	}
	/* The target's table is gone, and with it every reference of its own. */
	close(ep);
	ep = -1;
	out->old_alive = fn_alive(old_w);
	out->new_alive = fn_alive(np[1]);
out:
	if (nthfd >= 0)
		close(nthfd);
	for (int i = 0; i < 2; i++)
		if (np[i] >= 0)
			close(np[i]);
	if (ep >= 0)
		close(ep);
	if (old_w >= 0)
		close(old_w);
	return reaped;
}

int fdr_failnth(int nth, int timeout_ms, struct fdr_failnth_result *out)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct fn_hello hello;
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof(hello) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	sigset_t all, old;
	struct cmsghdr *c;
	int64_t deadline;
	int ctl[2], listener = -1, pidfd = -1;
	pid_t pid, parent = getpid();

	if (nth < 0 || timeout_ms <= 0 || !out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->fd = FN_FD;
	deadline = fdr_now_ms() + timeout_ms;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		fn_fail(out, FDR_FAILNTH_SETUP, "socketpair");
		return 0;
	}
	/* Our writes to pipes whose reader is gone must not kill the caller,
	 * and no signal may interrupt the ADDFD. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(ctl[0]);
		fn_target(ctl[1], parent);
	}
	close(ctl[1]);
	if (pid < 0) {
		fn_fail(out, FDR_FAILNTH_SETUP, "fork");
		goto out;
	}
	pidfd = syscall(__NR_pidfd_open, pid, 0);
	if (pidfd < 0 || fn_wait_in(ctl[0], deadline) < 0 ||
	    recvmsg(ctl[0], &msg, MSG_CMSG_CLOEXEC) != sizeof(hello) ||
	    !(c = CMSG_FIRSTHDR(&msg)) || c->cmsg_type != SCM_RIGHTS) {
		fn_fail(out, FDR_FAILNTH_SETUP, pidfd < 0 ? "pidfd_open" : "the target's set-up");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	memcpy(&listener, CMSG_DATA(c), sizeof(int));
	if (!fn_replace(pid, listener, pidfd, &hello, nth, deadline, out)) {
		syscall(__NR_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
out:
	{
		struct timespec zero = { 0, 0 };
		sigset_t pipe_only;

		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		while (sigtimedwait(&pipe_only, NULL, &zero) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (listener >= 0)
		close(listener);
	if (pidfd >= 0)
		close(pidfd);
	close(ctl[0]);
	return 0;
}
