// SPDX-License-Identifier: GPL-2.0
/*
 * The race engine's scenarios, second family: one replace (ADDFD into a trap)
 * against another call on the same fd or the trapped thread: epoll_ctl ADD
 * and DEL, epoll_wait, close, exit_group, a signal; then the table of every
 * scenario.  Part of race.c's translation unit, after race_scenarios.c, whose
 * head comment says how the timelines below are drawn.
 */

/* ---- shared by this family ----------------------------------------------- */

/* Where the trapped thread's end (exit, a signal) races an ADDFD into its trap,
 * ADDFD's return is the class: installed (the fd), queued and then dropped as
 * the trap ended (ESRCH), or too late, the notification gone (ENOENT). */
enum { ADDFD_INSTALLED, ADDFD_DROPPED, ADDFD_GONE, ADDFD_OTHER };

static int addfd_return_class(struct shm *sh, uint32_t k, long ret, const char *against)
{
	if (ret == RACE_FD)
		return ADDFD_INSTALLED;
	if (ret == -ESRCH)
		return ADDFD_DROPPED;
	if (ret == -ENOENT)
		return ADDFD_GONE;
	violation(sh, k, "ADDFD against %s returned %s", against, err_name(ret));
	return ADDFD_OTHER;
}

/* ---- addfd_vs_ctl_add: ADDFD replaces fd while another thread registers it ---
 *
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   ADDFD(new -> fd)     epoll_ctl(ep, ADD, fd)
 *   returns <~ NOTIF_SEND ~~~~~~~~~
 *   verdict: make the new file readable, epoll_wait and fdinfo of ep
 *     add_saw_old   ADD looked up the old file: its entry died with it (no event, no line)
 *     add_saw_new   ADD looked up the new file: one event with the data, one line
 *     add_failed    ADD failed (a violation)
 *     inconsistent  anything else
 */

enum { ADD_SAW_OLD, ADD_SAW_NEW, ADD_FAILED, ADD_INCONSISTENT };

static void tc_ctl_add(struct tgt *t, uint32_t k)
{
	await_sup(t, k);
	expect_old_freed(t, k);
	expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
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
		cls = ADD_FAILED;
		violation(sh, k, "EPOLL_CTL_ADD failed with %s while the fd was replaced",
			  strerrorname_np(sh->err[1]));
	} else if (nev == 0 && lines == 0) {
		cls = ADD_SAW_OLD;	/* the entry went to the old file and died with it */
	} else if (nev == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == (DATA_MAGIC | k) &&
		   lines == 1 && line.tfd == RACE_FD && line.ino == st.st_ino) {
		cls = ADD_SAW_NEW;	/* the entry is the new file's, and reports it */
	} else {
		cls = ADD_INCONSISTENT;
		violation(sh, k, "after ADD raced ADDFD: %d events (first data %#llx), "
			  "%d fdinfo lines (first ino %llu; new %llu)", nev,
			  nev > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL, lines,
			  lines > 0 ? line.ino : 0ULL, (unsigned long long)st.st_ino);
	}
	close(np[1]);
	return finish(r, k, cls);
}

/* ---- addfd_vs_ctl_del: ADDFD replaces a registered fd while it is deleted ----
 *
 *   target (set-up): fd registered in ep, the old file kept by a dup
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   ADDFD(new -> fd)     epoll_ctl(ep, DEL, fd)
 *   verdict: DEL's return and ep's fdinfo
 *     del_first      DEL found (fd, old): 0, no line left
 *     replace_first  DEL looked up (fd, new): ENOENT, the old file's line stays
 *                    until the kept dup's close (tc_ctl_del checks it goes then)
 *     inconsistent   anything else
 */

enum { DEL_FIRST, DEL_REPLACE_FIRST, DEL_INCONSISTENT };

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
		cls = DEL_FIRST;	/* DEL found (fd, old) */
	else if (del == -ENOENT && lines == 1 && line.tfd == RACE_FD && line.ino == sh->old_ino)
		cls = DEL_REPLACE_FIRST;	/* DEL looked up (fd, new): the old file's entry stays */
	else {
		cls = DEL_INCONSISTENT;
		violation(sh, k, "EPOLL_CTL_DEL returned %s with %d fdinfo lines left",
			  err_name(del), lines);
	}
	close(np[1]);
	return finish(r, k, cls);
}

/* ---- addfd_vs_wait: ADDFD replaces a registered fd around an epoll_wait ------
 *
 *   target (set-up): fd registered in ep, the old file kept by a dup
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   nvcsw s0             base = nvcsw
 *                                   ADDFD(new -> fd)     epoll_wait(ep) sleeps
 *                                   nvcsw s1
 *   verdict: the waiter's voluntary context switches against its base
 *     blocked_before  it slept before the ADDFD began (s0 > base)
 *     blocked_during  while the ADDFD ran (s1 > base)
 *     blocked_after   after it
 *   in every class: the new file's readiness does not wake it; the old file's
 *   does, with the registered data
 */

enum { BLOCKED_BEFORE, BLOCKED_DURING, BLOCKED_AFTER };

static void tc_wait(struct tgt *t, uint32_t k)
{
	await_sup(t, k);
	expect_read(t, k, t->keep, TOK_OLD, "the kept dup of the old file");
	expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
	close_keep_expect_no_entries(t, k);
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
	cls = s0 > base ? BLOCKED_BEFORE : s1 > base ? BLOCKED_DURING : BLOCKED_AFTER;

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

/* ---- addfd_vs_close: ADDFD replaces fd while another thread closes it --------
 *
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   ADDFD(new -> fd)     close(fd)
 *   verdict: write through the new file's peer
 *     close_first    close took the old file: the new one lives at fd
 *     replace_first  close took the new file (its last reference): EPIPE
 *     inconsistent   any other answer
 */

enum { CLOSE_FIRST, CLOSE_REPLACE_FIRST, CLOSE_INCONSISTENT };

static void tc_close(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k), open_now = fcntl(RACE_FD, F_GETFD) >= 0;

	expect_old_freed(t, k);
	if (cls == CLOSE_FIRST && !open_now)
		violation(t->sh, k, "ADDFD installed after the close, yet the fd is closed");
	if (cls == CLOSE_REPLACE_FIRST && open_now)
		violation(t->sh, k, "close ran after ADDFD, yet the fd is open");
	if (cls == CLOSE_FIRST && open_now)
		expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
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
		cls = CLOSE_FIRST;
	else if (e == -EPIPE)
		cls = CLOSE_REPLACE_FIRST;
	else {
		cls = CLOSE_INCONSISTENT;
		violation(sh, k, "writing to the new file's peer: %s", strerror(-e));
	}
	close(np[1]);
	return finish(r, k, cls);
}

/* ---- addfd_vs_exit: ADDFD into a trap while the target exits ----------------
 *
 *   a fresh target per iteration
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   ADDFD(new -> fd)     exit_group(0)
 *   verdict: ADDFD's return; then neither file may outlive the reaped target
 *     addfd_first        installed: fd returned
 *     exit_during_addfd  queued, but the target went before installing: ESRCH
 *     exit_first         the notification was gone already: ENOENT
 *     inconsistent       any other return
 */

enum { ADDFD_FIRST = ADDFD_INSTALLED, EXIT_DURING_ADDFD = ADDFD_DROPPED, EXIT_FIRST = ADDFD_GONE,
       EXIT_INCONSISTENT = ADDFD_OTHER };

/* Nothing to check: the target does not survive the iteration. */
static void tc_none(struct tgt *t, uint32_t k)
{
	await(t->sh, &t->sh->tdone, k + 1, -1, "the target's exit_group");
	_exit(4);
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
	cls = addfd_return_class(sh, k, ret, "an exiting target");
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

/* ---- addfd_vs_signal: ADDFD into a trap while the trapped thread is signalled
 *
 *   target (set-up): a SIGUSR1 handler without SA_RESTART
 *   target worker 0                 supervisor           target worker 1
 *   ioctl(fd) ~trap~>               NOTIF_RECV
 *                                   ======== fz_meet ========
 *                                   ADDFD(new -> fd)     tgkill(worker 0, SIGUSR1)
 *   worker 0's trap ends with EINTR in every class; answering it then: ENOENT
 *   verdict: ADDFD's return, and whether the new file lives
 *     addfd_first          installed: the fd reads the new file, the old one is gone
 *     signal_during_addfd  queued, then dropped by the interrupted wait: ESRCH
 *     signal_first         the notification was gone already: ENOENT
 *     inconsistent         any other return
 */

enum { SIG_ADDFD_FIRST = ADDFD_INSTALLED, SIG_DURING_ADDFD = ADDFD_DROPPED, SIG_FIRST = ADDFD_GONE,
       SIG_INCONSISTENT = ADDFD_OTHER };

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

/* addfd_vs_signal: installed, the old file is gone and the fd reads the new
 * one; refused (ENOENT, ESRCH), the old file is still at the fd. */
static void tc_signal(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k), e;

	if (cls == SIG_ADDFD_FIRST) {
		expect_old_freed(t, k);
		expect_read(t, k, RACE_FD, TOK_NEW, "the fd");
	} else if (cls == SIG_DURING_ADDFD || cls == SIG_FIRST) {
		e = write_token(t->old_w, k, TOK_OLD);
		if (e)
			violation(t->sh, k, "ADDFD was refused, yet the old file is gone (write: %s)",
				  strerror(-e));
		expect_read(t, k, RACE_FD, TOK_OLD, "the fd");
	}
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
	cls = addfd_return_class(sh, k, ret, "a signalled trap");
	e = write_token(np[1], k, TOK_NEW);
	if (cls == SIG_ADDFD_FIRST && e)
		violation(sh, k, "the new file is not at the fd after ADDFD (write: %s)",
			  strerror(-e));
	if (cls != SIG_ADDFD_FIRST && e != -EPIPE)
		violation(sh, k, "ADDFD failed with %s, yet the new file lives (write: %s)",
			  err_name(ret), e ? strerror(-e) : "succeeded");
	close(np[1]);
	return finish(r, k, cls);
}

/* ---- the table ---------------------------------------------------------- */

static const struct scenario scenarios[FDR_RACE_NSCENARIOS] = {
	[FDR_RACE_TWO_ADDFD] = {
		.name = "two_addfd", .addfd = 1,
		.classes = WINNER_CLASSES, .order = WINNER_ORDER,
		.ops = { op_trap, op_trap }, .tsetup = ts_old, .tcheck = tc_two_addfd,
		.siter = si_two_addfd, .s1 = s1_main },
	[FDR_RACE_TWO_DUP2] = {
		.name = "two_dup2",
		.classes = WINNER_CLASSES, .order = WINNER_ORDER,
		.ops = { op_dup2, op_dup2 }, .tsetup = ts_two_dup2, .tcheck = tc_two_dup2,
		.siter = si_two_dup2 },
	[FDR_RACE_ADDFD_VS_CTL_ADD] = {
		.name = "addfd_vs_ctl_add", .addfd = 1, .uses_ep = 1,
		.classes = { [ADD_SAW_OLD] = "add_saw_old", [ADD_SAW_NEW] = "add_saw_new",
			     [ADD_FAILED] = "add_failed", [ADD_INCONSISTENT] = "inconsistent" },
		.order = { [ADD_SAW_OLD] = -1, [ADD_SAW_NEW] = 1 },
		.ops = { op_trap, op_ctl_add }, .tsetup = ts_old, .tcheck = tc_ctl_add,
		.siter = si_ctl_add },
	[FDR_RACE_ADDFD_VS_CTL_DEL] = {
		.name = "addfd_vs_ctl_del", .addfd = 1, .uses_ep = 1,
		.classes = { [DEL_FIRST] = "del_first", [DEL_REPLACE_FIRST] = "replace_first",
			     [DEL_INCONSISTENT] = "inconsistent" },
		.order = { [DEL_FIRST] = -1, [DEL_REPLACE_FIRST] = 1 },
		.ops = { op_trap, op_ctl_del }, .tsetup = ts_old_kept_registered,
		.tcheck = tc_ctl_del, .siter = si_ctl_del },
	[FDR_RACE_ADDFD_VS_WAIT] = {
		.name = "addfd_vs_wait", .addfd = 1, .uses_ep = 1,
		.classes = { [BLOCKED_BEFORE] = "blocked_before", [BLOCKED_DURING] = "blocked_during",
			     [BLOCKED_AFTER] = "blocked_after" },
		.order = { [BLOCKED_BEFORE] = -1, [BLOCKED_DURING] = 0, [BLOCKED_AFTER] = 1 },
		.ops = { op_trap, op_wait }, .tsetup = ts_old_kept_registered, .tcheck = tc_wait,
		.siter = si_wait },
	[FDR_RACE_ADDFD_VS_CLOSE] = {
		.name = "addfd_vs_close", .addfd = 1,
		.classes = { [CLOSE_FIRST] = "close_first", [CLOSE_REPLACE_FIRST] = "replace_first",
			     [CLOSE_INCONSISTENT] = "inconsistent" },
		.order = { [CLOSE_FIRST] = -1, [CLOSE_REPLACE_FIRST] = 1 },
		.ops = { op_trap, op_close }, .tsetup = ts_old, .tcheck = tc_close,
		.siter = si_close },
	[FDR_RACE_ADDFD_VS_EXIT] = {
		.name = "addfd_vs_exit", .addfd = 1, .fork_each = 1, .trap_cpu = 1,
		.classes = { [ADDFD_FIRST] = "addfd_first", [EXIT_DURING_ADDFD] = "exit_during_addfd",
			     [EXIT_FIRST] = "exit_first", [EXIT_INCONSISTENT] = "inconsistent" },
		.order = { [ADDFD_FIRST] = 1, [EXIT_DURING_ADDFD] = 0, [EXIT_FIRST] = -1 },
		.ops = { op_trap, op_exit }, .tsetup = ts_old, .tcheck = tc_none,
		.siter = si_exit },
	[FDR_RACE_ADDFD_VS_SIGNAL] = {
		.name = "addfd_vs_signal", .addfd = 1,
		.classes = { [SIG_ADDFD_FIRST] = "addfd_first",
			     [SIG_DURING_ADDFD] = "signal_during_addfd",
			     [SIG_FIRST] = "signal_first", [SIG_INCONSISTENT] = "inconsistent" },
		.order = { [SIG_ADDFD_FIRST] = 1, [SIG_DURING_ADDFD] = 0, [SIG_FIRST] = -1 },
		.ops = { op_trap, op_signal }, .tsetup = ts_old_signal, .tcheck = tc_signal,
		.siter = si_signal },
	[FDR_RACE_TWO_LISTENERS] = {
		.name = "two_listeners", .addfd = 1, .own_listeners = 1, .uses_ep = 1,
		.classes = { [L_A_LAST] = "A_last", [L_B_LAST] = "B_last",
			     [L_A_UNWATCHED] = "A_last_unwatched",
			     [L_B_UNWATCHED] = "B_last_unwatched", [L_INCONSISTENT] = "inconsistent" },
		.order = { [L_A_LAST] = -1, [L_B_LAST] = 1, [L_A_UNWATCHED] = -1,
			   [L_B_UNWATCHED] = 1 },
		.ops = { op_trap, op_trap }, .tsetup = ts_old_kept_registered,
		.tcheck = tc_two_listeners, .siter = si_two_listeners, .s1 = s1_main },
};
