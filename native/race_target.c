// SPDX-License-Identifier: GPL-2.0
/*
 * The race engine's target side: the child process whose
 * worker threads run the racing operations and check what they left behind (part of race.c's translation unit: race.c
 * includes this file; see race.c for the whole picture).
 */

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

/* A filter on this thread alone (no TSYNC), with a listener of its own: the
 * supervisor takes it with pidfd_getfd. */
static void own_filter(struct tgt *t, int idx)
{
	t->sh->lfd[idx] = fdr_trap_ioctl(RACE_MAGIC);
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
		listener = fdr_trap_ioctl(RACE_MAGIC);
		if (listener < 0)
			tfail(t, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)");
	}
	if (send_msg_fd(ctl, "L", 1, listener) < 0)
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
