/* Signals delivered to a target asleep in the seccomp notifier (kernel/seccomp.c,
 * seccomp_do_user_notification): what the trapped syscall returns, whether it is
 * notified again under a new id, and what the supervisor's ioctls on the first id
 * say afterwards.  One target process per run; every wait is bounded, and the
 * order of events is forced (the supervisor waits for the handler's byte, the
 * signal to show as pending, or the stop), so each scenario has one outcome.
 * Built by native/build.py as native._notif_signal. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

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
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "notif_signal.h"
#include "fdr_common.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#define SIG_MAGIC 0x46445253U		/* "FDRS": the trapped ioctl request */
#define CALL_VAL 42			/* what the supervisor answers */

static const char *const names[FDR_SIG_NSCENARIOS] = {
	"restart", "norestart", "stop_cont", "killable", "killable_before_recv",
	"killable_fatal",
};

const char *fdr_notif_signal_name(int scenario)
{
	return scenario >= 0 && scenario < FDR_SIG_NSCENARIOS ? names[scenario] : NULL;
}

/* What the target tells the supervisor through its pipe. */
enum { MSG_LISTENER = 1, MSG_SETUP, MSG_RESULT };
struct msg {
	int32_t kind;
	int32_t err;
	int64_t val;
	int32_t runs;
};

static volatile sig_atomic_t handler_runs;
static int handler_fd = -1;

static void on_signal(int sig)
{
	char b = 'h';

	(void)sig;
	handler_runs++;
	if (write(handler_fd, &b, 1) < 0)
		handler_runs += 1000;	/* seen as a wrong count, never silently */
}

static void tell(int fd, int kind, int err, int64_t val)
{
	struct msg m = { .kind = kind, .err = err, .val = val, .runs = handler_runs };

	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(4);
}

static int killable(int scenario)
{
	return scenario >= FDR_SIG_KILLABLE;
}

/* The target: installs its handler and the filter, hands over the listener's
 * number, makes the trapped call and reports what it returned. */
static void target(int scenario, int msg_w, int hw)
{
	unsigned long flags = 0;
	struct sigaction sa;
	sigset_t none;
	long r;
	int listener;

	handler_fd = hw;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = scenario == FDR_SIG_NORESTART ? 0 : SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		tell(msg_w, MSG_SETUP, errno, 1), _exit(2);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCONT, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		tell(msg_w, MSG_SETUP, errno, 2), _exit(2);
	if (killable(scenario))
		flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	listener = fdr_trap_ioctl_flags(SIG_MAGIC, flags);
	if (listener < 0)
		tell(msg_w, MSG_SETUP, errno, 3), _exit(2);
	tell(msg_w, MSG_LISTENER, 0, listener);
	r = syscall(__NR_ioctl, -1, SIG_MAGIC, 0);
	tell(msg_w, MSG_RESULT, r < 0 ? errno : 0, r);
	_exit(0);
}

/* -- the supervisor's side --------------------------------------------------- */

struct run {
	struct fdr_sig_result *out;
	int timeout_ms;
	pid_t pid;
	int pidfd, listener, msg_r, hand_r, src;
	int reaped;
};

static int fail(struct run *r, int status, int err, const char *where)
{
	if (r->out->status == FDR_SIG_OK) {
		r->out->status = status;
		r->out->err = err;
		snprintf(r->out->where, sizeof(r->out->where), "%s", where);
	}
	return -1;
}

/* Wait (bounded) until fd shows POLLIN; 0, or -1 with the run failed. */
static int wait_in(struct run *r, int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, r->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(r, FDR_SIG_SETUP, errno, what);
	if (n == 0)
		return fail(r, FDR_SIG_TIMEOUT, 0, what);
	return 0;
}

static int ready_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int read_msg(struct run *r, struct msg *m, const char *what)
{
	if (wait_in(r, r->msg_r, what) < 0)
		return -1;
	if (read(r->msg_r, m, sizeof(*m)) != sizeof(*m))
		return fail(r, FDR_SIG_SETUP, errno, what);
	return 0;
}

/* The handler wrote its byte: the interruption is over (and a restart begun). */
static int wait_handler(struct run *r)
{
	char b;

	if (wait_in(r, r->hand_r, "the signal handler's byte") < 0)
		return -1;
	if (read(r->hand_r, &b, 1) != 1)
		return fail(r, FDR_SIG_SETUP, errno, "read(handler pipe)");
	return 0;
}

/* Poll /proc until pred(line value) holds for the named status field. */
static int wait_proc(struct run *r, const char *file, const char *what,
		     int (*pred)(const char *text))
{
	char path[64], buf[4096];
	int64_t deadline = fdr_now_ms() + r->timeout_ms;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)r->pid, file);
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		if (n < 0)
			return fail(r, FDR_SIG_SETUP, errno, path);
		buf[n] = 0;
		if (pred(buf))
			return 0;
		if (fdr_now_ms() > deadline)
			return fail(r, FDR_SIG_TIMEOUT, 0, what);
		usleep(1000);
	}
}

static int usr1_pending(const char *status)
{
	const char *line = strstr(status, "\nShdPnd:");
	unsigned long long mask;

	return line && sscanf(line + 8, "%llx", &mask) == 1 && (mask & (1ULL << (SIGUSR1 - 1)));
}

static int stopped(const char *stat)
{
	const char *paren = strrchr(stat, ')');

	return paren && paren[1] == ' ' && paren[2] == 'T';
}

static int recv_notif(struct run *r, struct seccomp_notif *n)
{
	if (wait_in(r, r->listener, "a notification") < 0)
		return -1;
	memset(n, 0, sizeof(*n));
	if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_RECV, n) < 0)
		return fail(r, FDR_SIG_SETUP, errno, "SECCOMP_IOCTL_NOTIF_RECV");
	return 0;
}

static int errno_of(int ret)
{
	return ret < 0 ? errno : 0;
}

static int id_valid(struct run *r, uint64_t id)
{
	return errno_of(ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id));
}

static int addfd(struct run *r, uint64_t id)
{
	struct seccomp_notif_addfd a = { .id = id, .srcfd = r->src };

	return errno_of(ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
}

static int send_val(struct run *r, uint64_t id)
{
	struct seccomp_notif_resp resp = { .id = id, .val = CALL_VAL };

	return errno_of(ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp));
}

static void old_id(struct run *r, uint64_t id)
{
	r->out->old_valid = id_valid(r, id);
	r->out->old_addfd = addfd(r, id);
	r->out->old_send = send_val(r, id);
}

static void result_of(struct run *r, const struct msg *m)
{
	r->out->call_ret = m->val;
	r->out->call_errno = m->err;
	r->out->handler_runs = m->runs;
}

/* Wait for the target's end (bounded) and say how it ended. */
static int reap(struct run *r)
{
	int status;

	if (wait_in(r, r->pidfd, "the target's exit") < 0)
		return -1;
	if (waitpid(r->pid, &status, 0) != r->pid)
		return fail(r, FDR_SIG_SETUP, errno, "waitpid");
	r->reaped = 1;
	r->out->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	r->out->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : FDR_SIG_UNSET;
	return 0;
}

static int scenario_body(struct run *r, int scenario)
{
	struct fdr_sig_result *o = r->out;
	struct seccomp_notif first, live;
	struct msg m;
	int have_live = 1, have_result = 0;

	if (scenario == FDR_SIG_KILLABLE_BEFORE_RECV) {
		/* The notification is pending, not received: the wait is still interruptible. */
		if (wait_in(r, r->listener, "the pending notification") < 0)
			return -1;
		kill(r->pid, SIGUSR1);
		if (wait_handler(r) < 0 || recv_notif(r, &live) < 0)
			return -1;
		o->renotified = 1;
	} else {
		if (recv_notif(r, &first) < 0)
			return -1;
		switch (scenario) {
		case FDR_SIG_RESTART:
		case FDR_SIG_STOP_CONT:
			if (scenario == FDR_SIG_RESTART) {
				kill(r->pid, SIGUSR1);
				if (wait_handler(r) < 0)
					return -1;
			} else {
				kill(r->pid, SIGSTOP);
				if (wait_proc(r, "stat", "the target's stop", stopped) < 0)
					return -1;
				kill(r->pid, SIGCONT);
			}
			if (recv_notif(r, &live) < 0)
				return -1;
			o->renotified = 1;
			o->id_delta = (int64_t)(live.id - first.id);
			old_id(r, first.id);
			break;
		case FDR_SIG_NORESTART:
			kill(r->pid, SIGUSR1);
			if (wait_handler(r) < 0 || read_msg(r, &m, "the target's result") < 0)
				return -1;
			result_of(r, &m);
			have_result = 1;
			have_live = 0;
			o->renotified = ready_now(r->listener);
			old_id(r, first.id);
			break;
		case FDR_SIG_KILLABLE:
			kill(r->pid, SIGUSR1);
			if (wait_proc(r, "status", "SIGUSR1 pending in the target", usr1_pending) < 0)
				return -1;
			o->renotified = ready_now(r->listener);
			o->old_valid = id_valid(r, first.id);
			live = first;
			break;
		case FDR_SIG_KILLABLE_FATAL:
			kill(r->pid, SIGTERM);
			if (reap(r) < 0)
				return -1;
			have_live = 0;
			have_result = 1;		/* the call never returns */
			o->renotified = ready_now(r->listener);
			old_id(r, first.id);
			break;
		}
	}
	if (have_live) {
		o->live_addfd = addfd(r, live.id);
		o->live_send = send_val(r, live.id);
	}
	if (!have_result) {
		if (read_msg(r, &m, "the target's result") < 0)
			return -1;
		result_of(r, &m);
	}
	if (!r->reaped && reap(r) < 0)
		return -1;
	o->pending_after = ready_now(r->listener);
	return 0;
}

int fdr_notif_signal(int scenario, int timeout_ms, struct fdr_sig_result *out)
{
	struct run r = { .out = out, .timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
			 .pidfd = -1, .listener = -1, .msg_r = -1, .hand_r = -1, .src = -1 };
	int msg[2] = { -1, -1 }, hand[2] = { -1, -1 };
	struct msg m;

	if (scenario < 0 || scenario >= FDR_SIG_NSCENARIOS || !out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->id_delta = FDR_SIG_UNSET;
	out->old_valid = out->old_addfd = out->old_send = FDR_SIG_UNSET;
	out->live_addfd = out->live_send = FDR_SIG_UNSET;
	out->call_ret = out->call_errno = out->handler_runs = FDR_SIG_UNSET;
	if (pipe2(msg, O_CLOEXEC) < 0 || pipe2(hand, O_CLOEXEC) < 0) {
		fail(&r, FDR_SIG_SETUP, errno, "pipe2");
		goto out;
	}
	r.msg_r = msg[0];
	r.hand_r = hand[0];
	r.pid = fork();
	if (r.pid < 0) {
		fail(&r, FDR_SIG_SETUP, errno, "fork");
		goto out;
	}
	if (r.pid == 0)
		target(scenario, msg[1], hand[1]);
	close(msg[1]);
	close(hand[1]);
	msg[1] = hand[1] = -1;
	r.pidfd = syscall(__NR_pidfd_open, r.pid, 0);
	if (r.pidfd < 0) {
		fail(&r, FDR_SIG_SETUP, errno, "pidfd_open");
		goto out;
	}
	if (read_msg(&r, &m, "the target's listener") < 0)
		goto out;
	if (m.kind == MSG_SETUP) {
		static const char *const what[] = { "", "sigaction", "prctl(NO_NEW_PRIVS)", "seccomp(filter)" };
		fail(&r, FDR_SIG_SETUP, m.err, what[m.val > 0 && m.val < 4 ? m.val : 0]);
		goto out;
	}
	r.listener = syscall(__NR_pidfd_getfd, r.pidfd, (int)m.val, 0);
	if (r.listener < 0) {
		fail(&r, FDR_SIG_SETUP, errno, "pidfd_getfd(listener)");
		goto out;
	}
	r.src = eventfd(0, EFD_CLOEXEC);
	if (r.src < 0) {
		fail(&r, FDR_SIG_SETUP, errno, "eventfd");
		goto out;
	}
	scenario_body(&r, scenario);
out:
	if (r.pid > 0 && !r.reaped) {
		kill(r.pid, SIGKILL);
		waitpid(r.pid, NULL, 0);
	}
	{
		int fds[] = { r.pidfd, r.listener, r.src, msg[0], msg[1], hand[0], hand[1] };

		for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return 0;
}
