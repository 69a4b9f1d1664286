/* A long churn of ADDFD replaces against a busy epoll_wait loop: the interface
 * shared by churn.c and the cffi cdef.  Keep this file free of preprocessor
 * directives other than the #defines below: cffi parses it. */

#define FDR_CHURN_OK 0
#define FDR_CHURN_SETUP 1		/* a set-up call failed: where, err */
#define FDR_CHURN_TIMEOUT 2		/* the deadline passed: where */

/* fdr_churn() flags.  KEEP_OLD: the supervisor keeps its copy of each replaced
 * file for a while (a multi-referenced replace): the stale entries it leaves
 * must show as stale events (the self-test that the verdict can fail). */
#define FDR_CHURN_F_KEEP_OLD 1

struct fdr_churn_result {
	int32_t status;
	int32_t err;
	char where[128];
	int32_t iterations;		/* replaces carried out */
	int64_t waits;			/* epoll_wait calls of the busy thread */
	int64_t events;			/* events it received */
	int64_t stale;			/* events naming a file replaced before the call began */
	char first_stale[160];
	int32_t adds;			/* re-ADDs of the fd after a replace that succeeded */
	int32_t mods;			/* MODs after an ADD found the entry (EEXIST) */
	int32_t ctl_failures;		/* re-registrations that failed otherwise */
	int32_t addfd_failures;		/* ADDFD or the trapped call not as expected */
	int32_t old_alive;		/* replaced files still open long after their replace */
	int32_t fds_before, fds_after;	/* the target's fds before the churn and after it */
	int32_t entries;		/* lines in the epoll's fdinfo at the end */
	int32_t entry_fd;		/* the first line's tfd */
	uint64_t entry_data;		/* and its data */
};

/* Replace the target's registered fd `iterations` times.  Returns 0 when the
 * run was carried out (out->status says how it ended), -1 with errno EINVAL
 * on bad arguments. */
int fdr_churn(int iterations, int timeout_ms, int flags, struct fdr_churn_result *out);
