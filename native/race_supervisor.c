// SPDX-License-Identifier: GPL-2.0
/*
 * The race engine's supervisor side: spawning and reaping
 * targets, answering their traps, and the helpers the scenarios' verdicts use (part of race.c's translation unit: race.c
 * includes this file; see race.c for the whole picture).
 */

/* ---- supervisor side ---------------------------------------------------- */

/* The listener the target sends over ctl: its fd, -1 when the byte came without
 * one, -2 when nothing came. */
static int recv_listener(int sock)
{
	char byte;
	int fd;

	if (recv_msg_fd(sock, &byte, 1, &fd) < 0)
		return -2;
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
