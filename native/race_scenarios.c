// SPDX-License-Identifier: GPL-2.0
/*
 * The race engine's scenarios, first family: two replaces of one fd at once
 * (part of race.c's translation unit: race.c includes this file after the
 * engine's target and supervisor sides, and race_scenarios_vs.c after it).
 *
 * A scenario is two racing parties and a verdict.  Each has a timeline, drawn
 * as LTP's fuzzy_sync tests draw theirs: time runs down, the two columns race
 * from the fz_meet() barrier (====), and "~trap~>" is the target's ioctl
 * reaching the supervisor as a seccomp notification.  Under it, the
 * interleaving classes: every iteration lands in exactly one, read off what
 * the kernel left behind; "inconsistent" (or a failed call) is always a
 * violation.  The classes' names are what native/race.py and
 * cases/test_races.py count; .order says which side took effect first in
 * each, to steer the delay sweep: +1 side 0 (the left column: the supervisor,
 * or worker 0 in two_dup2), -1 side 1 (the right column), 0 neither or both.
 *
 * A scenario's parts: tsetup (the target, before the workers go), ops (the
 * two target workers' parts), siter (the supervisor's iteration, which
 * classifies) and tcheck (the target's own checks once the verdict is in).
 */

/* ---- shared by several scenarios ---------------------------------------- */

static void ts_old(struct tgt *t, uint32_t k)
{
	make_old(t, 0);
}

static void ts_old_kept_registered(struct tgt *t, uint32_t k)
{
	make_old(t, 1);
	register_fd(t, k);
}

static int await_sup(struct tgt *t, uint32_t k)
{
	if (await(t->sh, &t->sh->sup, k + 1, -1, "the supervisor's verdict") < 0)
		_exit(4);
	return t->sh->cls;
}

/* The racing half shared by the ADDFD-vs-target-thread scenarios: receive
 * the trap, make the new pipe, meet the target's worker 1, ADDFD. */
static int race_addfd(struct run *r, uint32_t k, struct seccomp_notif *n, int np[2], long *ret)
{
	if (recv_notif(r, k, n) < 0 || new_pipe(r, np) < 0)
		return -1;
	if (fz_meet(r->sh, 0, k, r->pidfd) < 0) {
		close(np[0]);
		close(np[1]);
		np[0] = np[1] = -1;
		return -1;
	}
	fz_go(r->sh, 0, k);
	*ret = addfd(r, n->id, np[0]);
	fz_end(r->sh, 0);
	drop_src(r, &np[0]);
	return 0;
}

/* The kept dup of the old file goes; then the epoll must hold `want`
 * entries (those of the old file die with its last close). */
static void close_keep_expect_entries(struct tgt *t, uint32_t k, int want)
{
	char path[64];
	int info, lines;

	close(t->keep);
	t->keep = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", t->ep);
	info = open(path, O_RDONLY | O_CLOEXEC);
	lines = info >= 0 ? ep_lines(info, NULL) : -1;
	if (info >= 0)
		close(info);
	if (lines != want)
		violation(t->sh, k, "epoll holds %d entries after the old file's last close, "
			  "expected %d", lines, want);
}

/* ---- two_addfd: two ADDFD(SETFD) installs at one fd -------------------------
 *
 *   target workers                  supervisor           second supervisor thread
 *   w0: ioctl(fd) ~trap~>           NOTIF_RECV n0
 *   w1: ioctl(fd) ~trap~>           NOTIF_RECV n1  --(n1, pipe B)-->
 *                                   ======== fz_meet ========
 *                                   ADDFD(n0, A -> fd)   ADDFD(n1, B -> fd)
 *                                   NOTIF_SEND n0, n1
 *   w0, w1 return: the old file's last fput
 *   verdict: write a token through A's and B's write ends
 *     A_last        A installed last: B's read end is gone (EPIPE), fd reads A
 *     B_last        the other way round
 *     inconsistent  both alive or both gone
 */

/* Classes of two_addfd and two_dup2: whose file the fd holds in the end. */
enum { A_LAST, B_LAST, WINNER_INCONSISTENT };
#define WINNER_CLASSES { [A_LAST] = "A_last", [B_LAST] = "B_last", \
			 [WINNER_INCONSISTENT] = "inconsistent" }
#define WINNER_ORDER { [A_LAST] = -1, [B_LAST] = 1 }

/* Which of A and B holds the fd, from writing through their peers: the
 * winner's read end is alive (0), the loser's is gone (-EPIPE). */
static int winner_class(struct shm *sh, uint32_t k, int ea, int eb, const char *what)
{
	if (ea == 0 && eb == -EPIPE)
		return A_LAST;
	if (eb == 0 && ea == -EPIPE)
		return B_LAST;
	violation(sh, k, "after both %s, A's file %s and B's %s", what,
		  ea ? "is gone" : "is alive", eb ? "is gone" : "is alive");
	return WINNER_INCONSISTENT;
}

static void tc_two_addfd(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k);

	expect_old_freed(t, k);
	if (cls != WINNER_INCONSISTENT)
		expect_read(t, k, RACE_FD, cls == A_LAST ? TOK_A : TOK_B, "the fd");
}



/* two_listeners: the second supervisor takes worker 1's trap off its own
 * listener, the only one worker 1's filter reports to. */
static int s1_recv(struct run *r, uint32_t k)
{
	struct seccomp_notif n;

	if (recv_notif_on(r, r->listener2, k, &n) < 0)
		return -1;
	if ((int)n.pid != r->sh->tid[1])
		violation(r->sh, k, "the second listener reported thread %u, not worker 1 (%d)",
			  n.pid, r->sh->tid[1]);
	r->sh->s1_id = n.id;
	return 0;
}

/* two_addfd: a second supervisor thread races the first one's ADDFD. */
static void *s1_main(void *arg)
{
	struct run *r = arg;
	struct shm *sh = r->sh;

	pin(sh, 1);
	for (uint32_t k = 0; k < r->iterations; k++) {
		if (sawait(r, &sh->s1go, k + 1, "the second supervisor's turn") < 0)
			break;
		if (r->listener2 >= 0 && s1_recv(r, k) < 0)
			break;
		if (fz_meet(sh, 1, k, r->pidfd) < 0)
			break;
		fz_go(sh, 1, k);
		sh->s1_ret = addfd_on(r->listener2 >= 0 ? r->listener2 : r->listener, sh->s1_id,
				      sh->s1_src);
		fz_end(sh, 1);
		post(&sh->s1done, k + 1);
	}
	return NULL;
}

/* Both supervisors ADDFD at once: we install a[0] for notification id0 while
 * the second one installs b[0] for its own; then both copies go. */
static int race_both(struct run *r, uint32_t k, uint64_t id0, int a[2], int b[2])
{
	struct shm *sh = r->sh;
	long ret;

	sh->s1_src = b[0];
	post(&sh->s1go, k + 1);
	if (fz_meet(sh, 0, k, r->pidfd) < 0)
		return -1;
	fz_go(sh, 0, k);
	ret = addfd(r, id0, a[0]);
	fz_end(sh, 0);
	if (sawait(r, &sh->s1done, k + 1, "the second supervisor's ADDFD") < 0)
		return -1;
	expect_installed(r, k, ret, "first ");
	expect_installed(r, k, sh->s1_ret, "second ");
	drop_src(r, &a[0]);
	drop_src(r, &b[0]);
	return 0;
}

static void close_pipes(int a[2], int b[2])
{
	for (int i = 0; i < 2; i++) {
		if (a[i] >= 0)
			close(a[i]);
		if (b[i] >= 0)
			close(b[i]);
	}
}

static int si_two_addfd(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n[2];
	int a[2], b[2], ea, eb, cls;

	if (recv_notif(r, k, &n[0]) < 0 || recv_notif(r, k, &n[1]) < 0)
		return -1;
	/* Worker 0 shares our CPU, worker 1 the second supervisor's: each of us
	 * takes the trap whose install will run on its own CPU. */
	if ((int)n[0].pid != sh->tid[0]) {
		struct seccomp_notif x = n[0];

		n[0] = n[1];
		n[1] = x;
	}
	if (new_pipe(r, a) < 0)
		return -1;
	if (new_pipe(r, b) < 0) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	sh->s1_id = n[1].id;
	if (race_both(r, k, n[0].id, a, b) < 0)
		goto fail;
	/* Either worker may have made either trap: answer both, then wait for both. */
	respond(r, n[0].id);
	respond(r, n[1].id);
	if (returned(r, k, 0) < 0 || returned(r, k, 1) < 0)
		goto fail;
	/* Only the winner's read end is still referenced (by RACE_FD). */
	ea = write_token(a[1], k, TOK_A);
	eb = write_token(b[1], k, TOK_B);
	cls = winner_class(sh, k, ea, eb, "ADDFDs");
	close(a[1]);
	close(b[1]);
	return finish(r, k, cls);
fail:
	close_pipes(a, b);
	return -1;
}

/* ---- two_dup2: two dup2 calls onto one fd ------------------------------------
 *
 *   target worker 0                 target worker 1
 *   ======== fz_meet ========
 *   dup2(A, fd)                     dup2(B, fd)
 *   verdict (the target's own, tc_two_dup2): write through A's and B's peers
 *     A_last / B_last / inconsistent, as for two_addfd
 */

static void ts_two_dup2(struct tgt *t, uint32_t k)
{
	int a[2], b[2];

	make_old(t, 0);
	if (pipe2(a, O_NONBLOCK) < 0 || pipe2(b, O_NONBLOCK) < 0)
		tfail(t, "pipe2(A, B)");
	t->sh->src[0] = a[0];
	t->sh->src[1] = b[0];
	t->a_w = a[1];
	t->b_w = b[1];
}

/* two_dup2: the target is its own verifier. */
static void tc_two_dup2(struct tgt *t, uint32_t k)
{
	struct shm *sh = t->sh;
	int ea, eb, cls;

	for (int i = 0; i < 2; i++)
		if (await(sh, &sh->wdone[i], k + 1, -1, "the target's dup2 workers") < 0)
			_exit(4);
	for (int i = 0; i < 2; i++)
		if (sh->ret[i] != RACE_FD)
			violation(sh, k, "dup2 onto the fd returned %lld (%s)",
				  (long long)sh->ret[i], strerror(sh->err[i]));
	if (!sh->sabotage) {
		close(sh->src[0]);
		close(sh->src[1]);
	}
	/* dup2 dropped the replaced files' last references in the workers, whose
	 * final fput ran before they returned to user space: the loser's read
	 * end is gone now, the winner's lives at RACE_FD. */
	ea = write_token(t->a_w, k, TOK_A);
	eb = write_token(t->b_w, k, TOK_B);
	cls = winner_class(sh, k, ea, eb, "dup2s");
	if (cls != WINNER_INCONSISTENT)
		expect_read(t, k, RACE_FD, cls == A_LAST ? TOK_A : TOK_B, "the fd");
	expect_old_freed(t, k);
	if (sh->sabotage) {
		close(sh->src[0]);
		close(sh->src[1]);
	}
	sh->counts[cls]++;
	fz_account(sh, k, t->sc->order[cls]);
	sh->iterations_done = k + 1;
	close(t->a_w);
	close(t->b_w);
	t->a_w = t->b_w = -1;
}

static int si_two_dup2(struct run *r, uint32_t k)
{
	if (sawait(r, &r->sh->tdone, k + 1, "the dup2 race") < 0)
		return -1;
	return 0;
}

/* ---- two_listeners: two ADDFDs at a registered fd, each through its own listener
 *
 *   target (set-up): fd registered in ep, the old file kept by a dup; each
 *   worker installs a filter of its own, so each traps to its own listener
 *   target w0: ioctl(fd) ~trap~> supervisor     w1: ioctl(fd) ~trap~> 2nd supervisor
 *                                ============== fz_meet ==============
 *                                ADDFD(A -> fd)        ADDFD(B -> fd)
 *   verdict: the winner by writing through A's and B's peers (as two_addfd),
 *   then ep's fdinfo and epoll_wait, with only the old file readable and then
 *   with the fd's file too; judged by the profile the run states (FOLLOW flag)
 *     A_last, B_last      stock: the entry stays (fd, old), reports the old
 *                         file under the fd's data; follow: one entry (fd,
 *                         winner), reporting the winner only
 *     A_last_unwatched,   follow only: no entry at all (the earlier replace
 *     B_last_unwatched    moved it onto a file the later one had replaced)
 *     inconsistent        both files alive or both gone
 */

enum { L_A_LAST, L_B_LAST, L_A_UNWATCHED, L_B_UNWATCHED, L_INCONSISTENT };

/* two_listeners: the supervisors made the old file and the fd's file
 * readable; each read reaches its own.  Under follow the winner's entry
 * (A_last, B_last) outlives the old file's last close. */
static void tc_two_listeners(struct tgt *t, uint32_t k)
{
	int cls = await_sup(t, k);

	expect_read(t, k, t->keep, TOK_OLD, "the kept dup of the old file");
	if (cls != L_INCONSISTENT)
		expect_read(t, k, RACE_FD, cls == L_A_LAST || cls == L_A_UNWATCHED ? TOK_A : TOK_B,
			    "the fd");
	close_keep_expect_entries(t, k, t->sh->follow && (cls == L_A_LAST || cls == L_B_LAST));
}

/* What epoll shows of the fd after both replaces of two_listeners returned. */
struct seen {
	int lines, nev_old, nev_both;
	struct epline line;
	struct epoll_event ev_old, ev_both;
};

/* Only the old file readable, then the fd's file too: what does epoll report? */
static void look(struct run *r, uint32_t k, int old_w, int *ea, int *eb, int a_w, int b_w,
		 struct seen *s)
{
	int e;

	memset(s, 0, sizeof(*s));
	s->lines = ep_lines(r->epinfo, &s->line);
	e = write_token(old_w, k, TOK_OLD);
	if (e)
		violation(r->sh, k, "the kept old file is gone (write: %s)", strerror(-e));
	s->nev_old = epoll_wait(r->ep_copy, &s->ev_old, 1, 0);
	*ea = write_token(a_w, k, TOK_A);
	*eb = write_token(b_w, k, TOK_B);
	s->nev_both = epoll_wait(r->ep_copy, &s->ev_both, 1, 0);
}

static int reported(int nev, const struct epoll_event *ev, uint32_t k)
{
	return nev == 1 && ev->events == EPOLLIN && ev->data.u64 == (DATA_MAGIC | k);
}

/* Stock: the entry stays (fd, old): the old file's readiness is reported
 * under the fd.  Follow: one entry (fd, winner) reporting the winner only,
 * or none at all (*_unwatched: the earlier replace moved the entry onto a file
 * the later one had replaced already, and it died with that file). */
static int judge(struct run *r, uint32_t k, int win, const struct seen *s, uint64_t win_ino)
{
	struct shm *sh = r->sh;
	int ok;

	if (!sh->follow) {
		ok = s->lines == 1 && s->line.tfd == RACE_FD && s->line.ino == sh->old_ino &&
		     reported(s->nev_old, &s->ev_old, k) && reported(s->nev_both, &s->ev_both, k);
	} else if (s->lines == 0 && s->nev_old == 0 && s->nev_both == 0) {
		return win == A_LAST ? L_A_UNWATCHED : L_B_UNWATCHED;
	} else {
		ok = s->lines == 1 && s->line.tfd == RACE_FD && s->line.ino == win_ino &&
		     s->nev_old == 0 && reported(s->nev_both, &s->ev_both, k);
	}
	if (!ok)
		violation(sh, k, "%s, %c last: %d entries (fd %d ino %llu; old %llu, fd's %llu), "
			  "%d events with the old file readable, %d with the fd's too (data %#llx)",
			  sh->follow ? "follow" : "stock", win ? 'B' : 'A', s->lines,
			  s->lines ? s->line.tfd : -1, s->lines ? s->line.ino : 0ULL,
			  (unsigned long long)sh->old_ino, (unsigned long long)win_ino, s->nev_old,
			  s->nev_both, s->nev_both > 0 ? (unsigned long long)s->ev_both.data.u64 : 0ULL);
	return win == A_LAST ? L_A_LAST : L_B_LAST;
}

/* two_listeners: worker 0 traps to our listener, worker 1 to the second
 * supervisor's; both ADDFD(SETFD) their own file at the registered fd. */
static int si_two_listeners(struct run *r, uint32_t k)
{
	struct shm *sh = r->sh;
	struct seccomp_notif n;
	struct stat st[2];
	struct seen seen;
	int a[2] = { -1, -1 }, b[2] = { -1, -1 }, old_w, ea, eb, win;

	if (recv_notif(r, k, &n) < 0)
		return -1;
	if ((int)n.pid != sh->tid[0])
		violation(sh, k, "the first listener reported thread %u, not worker 0 (%d)", n.pid,
			  sh->tid[0]);
	old_w = syscall(__NR_pidfd_getfd, r->pidfd, sh->old_w, 0);
	if (old_w < 0) {
		give_up(sh, FDR_RACE_SETUP, errno, "pidfd_getfd(old write end)");
		return -1;
	}
	if (new_pipe(r, a) < 0 || new_pipe(r, b) < 0 || fstat(a[1], &st[0]) < 0 ||
	    fstat(b[1], &st[1]) < 0)
		goto fail;
	if (race_both(r, k, n.id, a, b) < 0)
		goto fail;
	respond(r, n.id);
	respond_on(r->listener2, sh->s1_id);
	if (returned(r, k, 0) < 0 || returned(r, k, 1) < 0)
		goto fail;
	look(r, k, old_w, &ea, &eb, a[1], b[1], &seen);
	win = winner_class(sh, k, ea, eb, "ADDFDs");
	close(a[1]);
	close(b[1]);
	close(old_w);
	return finish(r, k, win == WINNER_INCONSISTENT ? L_INCONSISTENT :
		      judge(r, k, win, &seen, st[win].st_ino));
fail:
	close_pipes(a, b);
	close(old_w);
	return -1;
}
