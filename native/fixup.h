/* The userspace fixup: epoll entries follow an fd replaced by SECCOMP_IOCTL_NOTIF_ADDFD.
 *
 * A supervisor on a stock kernel calls it around one ADDFD(SETFD): every epoll
 * entry keyed (fd, old file) ends up keyed (fd, new file) with the same event
 * mask and data, as the `follow` profile (the proposed eventpoll_replace_file())
 * says.  See README.md, "The userspace fixup, for runtime authors".
 *
 * Keep this file free of preprocessor directives other than the #defines below:
 * cffi parses it as the cdef. */

#define FDR_FIXUP_MAX 64	/* entries one replace moves, at most */
#define FDR_FIXUP_MAX_EPOLLS 256	/* epoll instances a tracking context remembers */

/* How prepare finds the target's epoll instances. */
#define FDR_FIXUP_SCAN 0	/* list /proc/<pid>/fd, readlink each: every replace, complete */
#define FDR_FIXUP_TRACKED 1	/* the context's remembered epolls: cost follows the epolls only */
#define FDR_FIXUP_NAIVE 2	/* read every fd's fdinfo (the closed supervisor's way; for comparison) */

struct fdr_fixup_entry {
	int32_t ep;		/* the supervisor's copy of the epoll instance */
	int32_t toff;		/* which of the entries with this fd number (kcmp's toff) */
	uint32_t events;	/* the entry's mask and data, from fdinfo */
	uint64_t data;
	int32_t add_err;	/* 0: (fd, new) added; EEXIST: already there; else stays with old */
	int32_t del_err;	/* the stale (fd, old) entry's DEL: 0, or why not */
};

struct fdr_fixup_plan {
	int32_t fd;		/* the number being replaced, in the target */
	int32_t old;		/* the supervisor's copy of the old file (-1: fd was free) */
	int32_t n;		/* entries found */
	int32_t overflow;	/* more than FDR_FIXUP_MAX entries: the rest are not moved */
	int32_t scanned;	/* target fds looked at to find epolls (0 when tracked) */
	int32_t epolls;		/* epoll instances asked whether they hold (fd, old) */
	int32_t moved;		/* after apply: entries now keyed (fd, new) */
	int32_t kept;		/* after apply: entries left with the old file (new not watchable) */
	struct fdr_fixup_entry e[FDR_FIXUP_MAX];
};

struct fdr_fixup_ctx {
	int32_t pid;
	int32_t pidfd;
	int32_t nep;
	int32_t ep[FDR_FIXUP_MAX_EPOLLS];	/* the supervisor's copies of the target's epolls */
};

/* Before the install: find every epoll entry keyed (fd, the target's file at fd)
 * and record its mask and data, holding a copy of the old file and of each
 * epoll.  mode is FDR_FIXUP_SCAN or FDR_FIXUP_NAIVE (ctx unused) or
 * FDR_FIXUP_TRACKED (ctx from fdr_fixup_track).  0, or -1 with errno. */
int fdr_fixup_prepare(int mode, const struct fdr_fixup_ctx *ctx, int pid, int pidfd, int fd,
		      struct fdr_fixup_plan *plan);
/* After the install: add (fd, newfile) with each entry's mask and data to its
 * epoll, then delete the stale (fd, old) entry; where the add fails (the new
 * file is not pollable, is that epoll, or would make a loop) the entry stays
 * with the old file.  newfile is the supervisor's fd of the installed file.
 * Returns the number of entries moved, or -1 with errno. */
int fdr_fixup_apply(struct fdr_fixup_plan *plan, int newfile);
/* Close the plan's copies (the old file's last reference may go here). */
void fdr_fixup_release(struct fdr_fixup_plan *plan);

/* All in one: prepare, ADDFD(flags, which must include SETFD), apply, release.
 * Returns what the ADDFD ioctl returned (-1 with errno when it failed). */
int fdr_fixup_addfd(int listener, uint64_t id, int srcfd, int newfd, uint32_t flags,
		    uint32_t newfd_flags, int pid, int pidfd, int mode,
		    const struct fdr_fixup_ctx *ctx, struct fdr_fixup_plan *plan);

/* Tracking: learn the target's epoll instances (one scan), keep a copy of each.
 * Call again whenever the target may have gained an epoll (it trapped
 * epoll_create1, received fds, ...).  0, or -1 with errno. */
int fdr_fixup_track(struct fdr_fixup_ctx *ctx, int pid, int pidfd);
void fdr_fixup_untrack(struct fdr_fixup_ctx *ctx);
/* Tracking without any scan: a supervisor that traps epoll_create/epoll_create1
 * answers the notification with this.  It makes the epoll itself, installs it
 * in the target with ADDFD(SEND) (EPOLL_CLOEXEC in flags: O_CLOEXEC there) and
 * remembers its copy.  Returns the target's new fd (the syscall's answer), or
 * -1 with errno when the notification is still to be answered (ENOSPC: the
 * context is full; answer with FLAG_CONTINUE and track() later). */
int fdr_fixup_epoll_create(struct fdr_fixup_ctx *ctx, int listener, uint64_t id, int flags);
