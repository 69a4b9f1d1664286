// SPDX-License-Identifier: GPL-2.0
/*
 * follow_probe: does this kernel move epoll entries at a seccomp ADDFD
 * replace (the `follow` patch) or leave them with the old file (stock)?
 *
 *   gcc -static -O2 -Wall -o follow_probe follow_probe.c && ./follow_probe
 *
 * Each scenario forks a target that registers fd N (a pipe's read end, the
 * "old" file) in an epoll instance with data 0xd5, then traps on a magic
 * ioctl; the supervisor (the parent) replaces fd N with ADDFD|SETFD (or the
 * target does dup2) and answers.  The target then makes the old and the new
 * file readable in turn and records what epoll_wait reports, and whether
 * EPOLL_CTL_DEL of N finds an entry.  Each line says which semantics the
 * scenario showed, "follow" or "stock", against what the patch's README
 * promises; the last line names the kernel's profile.  Exit: 0 every
 * scenario as the detected profile predicts, 1 otherwise, 4 no ADDFD.
 * Every wait is bounded (poll timeouts, alarm).
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
#include <poll.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define MAGIC_REQ	0xfd5eedUL
#define DATA_OLD	0xd5
#define DATA_NEW	0xbb

enum via { ADDFD, ADDFD_SEND, DUP2 };
enum by {
	BY_PIPE, BY_MEMFD, BY_EPOLL_SELF, BY_EPOLL_OTHER, BY_EPOLL_LOOP,
	BY_LISTENER, BY_PIPE_REGISTERED,
};

struct scenario {
	const char *name;
	enum via via;
	enum by by;
	int keep_old;		/* a dup keeps the old file alive */
	const char *follow;	/* expected outcome on a follow kernel */
	const char *stock;	/* expected outcome on a stock kernel */
};

/*
 * Outcome strings: "old=<events seen after the old file got ready>
 * new=<... after the new one did> del=<EPOLL_CTL_DEL of N>", events as
 * data values or "-" for none.
 */
static const struct scenario scenarios[] = {
	{ "addfd_keep", ADDFD, BY_PIPE, 1,
	  "old=- new=d5 del=0", "old=d5 new=- del=ENOENT" },
	{ "addfd_send_keep", ADDFD_SEND, BY_PIPE, 1,
	  "old=- new=d5 del=0", "old=d5 new=- del=ENOENT" },
	{ "addfd_single_ref", ADDFD, BY_PIPE, 0,
	  "old=- new=d5 del=0", "old=- new=- del=ENOENT" },
	{ "dup2_keep", DUP2, BY_PIPE, 1,
	  "old=d5 new=- del=ENOENT", "old=d5 new=- del=ENOENT" },
	{ "addfd_memfd_keep", ADDFD, BY_MEMFD, 1,
	  "old=d5 new=- del=EPERM", "old=d5 new=- del=EPERM" },
	{ "addfd_epoll_self_keep", ADDFD, BY_EPOLL_SELF, 1,
	  "old=d5 new=- del=EINVAL", "old=d5 new=- del=EINVAL" },
	{ "addfd_epoll_nested_keep", ADDFD, BY_EPOLL_OTHER, 1,
	  "old=- new=d5 del=0", "old=d5 new=- del=ENOENT" },
	{ "addfd_epoll_loop_keep", ADDFD, BY_EPOLL_LOOP, 1,
	  "old=d5 new=- del=ENOENT", "old=d5 new=- del=ENOENT" },
	{ "addfd_already_registered", ADDFD, BY_PIPE_REGISTERED, 1,
	  "old=- new=bb del=0", "old=d5 new=bb del=0" },
	{ "addfd_listener_keep", ADDFD, BY_LISTENER, 1,
	  "old=- new=- del=0", "old=d5 new=- del=ENOENT" },
};

static int seccomp_sys(unsigned int op, unsigned int flags, void *args)
{
	return syscall(__NR_seccomp, op, flags, args);
}

static int send_fd(int sock, int fd)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)MAGIC_REQ, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return seccomp_sys(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* The data values epoll_wait reports within timeout_ms, as "-" or "d5,bb". */
static void events(int ep, int timeout_ms, char *out, size_t len)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, timeout_ms), i;
	size_t used = 0;

	if (n <= 0) {
		snprintf(out, len, n < 0 ? "ERR%d" : "-", errno);
		return;
	}
	for (i = 0; i < n && used < len; i++)
		used += snprintf(out + used, len - used, "%s%llx", i ? "," : "",
				 (unsigned long long)ev[i].data.u64);
}

static void drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/*
 * The target: returns through a pipe to the parent its outcome string.
 * fds: old = pipe (ro, wo), new = pipe (rn, wn) or other kinds.
 */
static int target(const struct scenario *s, int sock, int report)
{
	int ro_wo[2], rn_wn[2], ep, keep = -1, listener, newfd = -1, r;
	struct epoll_event ev = { .events = EPOLLIN };
	char out[256], o[32], n[32];
	const char *del;

	if (pipe2(ro_wo, O_NONBLOCK) || pipe2(rn_wn, O_NONBLOCK))
		return 3;
	ep = epoll_create1(0);
	if (ep < 0)
		return 3;
	ev.data.u64 = DATA_OLD;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ro_wo[0], &ev))
		return 3;
	if (s->keep_old)
		keep = dup(ro_wo[0]);

	if (s->by == BY_PIPE_REGISTERED) {
		/* Make (N, new) registered too: dup2 new in, ADD, dup2 old back. */
		int saved = dup(ro_wo[0]);

		dup2(rn_wn[0], ro_wo[0]);
		ev.data.u64 = DATA_NEW;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ro_wo[0], &ev))
			return 3;
		dup2(saved, ro_wo[0]);
		close(saved);
	}

	switch (s->by) {
	case BY_MEMFD:
		newfd = memfd_create("probe", 0);
		break;
	case BY_EPOLL_SELF:
		newfd = dup(ep);
		break;
	case BY_EPOLL_OTHER:
	case BY_EPOLL_LOOP:
		/* Another epoll watching the new pipe, or ep itself (a loop). */
		newfd = epoll_create1(0);
		ev.data.u64 = 0;
		if (newfd < 0 || epoll_ctl(newfd, EPOLL_CTL_ADD,
					   s->by == BY_EPOLL_LOOP ? ep : rn_wn[0], &ev))
			return 3;
		break;
	default:
		newfd = dup(rn_wn[0]);
		break;
	}
	if (newfd < 0)
		return 3;

	if (s->via == DUP2) {
		if (dup2(newfd, ro_wo[0]) < 0)
			return 3;
	} else {
		listener = install_filter();
		if (listener < 0)
			return 4;
		/* The supervisor gets the listener and the file to install. */
		if (send_fd(sock, listener) || send_fd(sock, newfd))
			return 3;
		close(listener);
		/*
		 * Trapped: the supervisor replaces ro_wo[0] and answers 0,
		 * or the fd itself with SECCOMP_ADDFD_FLAG_SEND.
		 */
		r = ioctl(ro_wo[0], MAGIC_REQ, ro_wo[0]);
		if (r != (s->via == ADDFD_SEND ? ro_wo[0] : 0))
			return 5;
	}
	close(newfd);

	if (write(ro_wo[1], "o", 1) != 1 && errno != EPIPE)
		return 3;
	events(ep, 0, o, sizeof(o));
	drain(keep >= 0 ? keep : ro_wo[0]);
	if (write(rn_wn[1], "n", 1) != 1)
		return 3;
	events(ep, 200, n, sizeof(n));
	del = epoll_ctl(ep, EPOLL_CTL_DEL, ro_wo[0], NULL) == 0 ? "0" : strerrorname_np(errno);
	snprintf(out, sizeof(out), "old=%s new=%s del=%s", o, n, del ? del : "?");
	if (write(report, out, strlen(out)) < 0)
		return 3;
	return 0;
}

/* Answer one notification: ADDFD|SETFD the file at fd `args[2]`, reply 0. */
static int supervise(const struct scenario *s, int sock)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	struct seccomp_notif_addfd addfd = { 0 };
	struct pollfd pfd;
	int listener, file, r;

	listener = recv_fd(sock);
	file = recv_fd(sock);
	if (listener < 0 || file < 0)
		return -1;
	if (s->by == BY_LISTENER) {
		close(file);
		file = listener;
	}
	pfd.fd = listener;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1)
		return -1;
	memset(&req, 0, sizeof(req));
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req))
		return -1;
	addfd.id = req.id;
	addfd.srcfd = file;
	addfd.newfd = req.data.args[2];
	addfd.flags = SECCOMP_ADDFD_FLAG_SETFD;
	if (s->via == ADDFD_SEND)
		addfd.flags |= SECCOMP_ADDFD_FLAG_SEND;
	r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
	if (r != (int)addfd.newfd) {
		fprintf(stderr, "ADDFD: %d %s\n", r, strerror(errno));
		return -1;
	}
	if (s->via != ADDFD_SEND) {
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp))
			return -1;
	}
	if (file != listener)
		close(file);
	close(listener);
	return 0;
}

static const char *run(const struct scenario *s, char *out, size_t len)
{
	int sv[2], rep[2], status;
	pid_t pid;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(rep))
		return "setup";
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		close(rep[0]);
		alarm(20);
		_exit(target(s, sv[1], rep[1]));
	}
	close(sv[1]);
	close(rep[1]);
	if (s->via != DUP2 && supervise(s, sv[0])) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return "supervisor";
	}
	n = read(rep[0], out, len - 1);
	out[n > 0 ? n : 0] = 0;
	waitpid(pid, &status, 0);
	close(sv[0]);
	close(rep[0]);
	if (!WIFEXITED(status))
		return "target killed";
	if (WEXITSTATUS(status) == 4)
		return "no_user_notif";
	return WEXITSTATUS(status) ? "target failed" : NULL;
}

int main(void)
{
	size_t i, count = sizeof(scenarios) / sizeof(scenarios[0]);
	char got[count][256];
	int follow = 0, stock = 0, bad = 0;
	const char *profile;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < count; i++) {
		const char *err = run(&scenarios[i], got[i], sizeof(got[i]));

		if (err && !strcmp(err, "no_user_notif")) {
			printf("# SKIP no_user_notif\n");
			return 4;
		}
		if (err)
			snprintf(got[i], sizeof(got[i]), "error: %s", err);
		if (scenarios[i].via != DUP2 && strcmp(scenarios[i].follow, scenarios[i].stock)) {
			follow += !strcmp(got[i], scenarios[i].follow);
			stock += !strcmp(got[i], scenarios[i].stock);
		}
	}
	profile = follow && !stock ? "follow" : stock && !follow ? "stock" : "mixed";
	for (i = 0; i < count; i++) {
		const char *want = !strcmp(profile, "stock") ? scenarios[i].stock : scenarios[i].follow;
		int ok = !strcmp(got[i], want);

		bad += !ok;
		printf("%s %-26s %s%s%s\n", ok ? "ok    " : "not ok", scenarios[i].name, got[i],
		       ok ? "" : "   expected: ", ok ? "" : want);
	}
	printf("profile: %s (%d follow, %d stock of the ADDFD scenarios that tell them apart)\n",
	       profile, follow, stock);
	return bad || !strcmp(profile, "mixed") ? 1 : 0;
}
