/* One ADDFD(SETFD) replace with an allocation failure injected into the
 * thread that carries out the install, shared by the C source and the cffi
 * cdef.  Keep this file free of preprocessor directives other than the
 * #defines below: cffi parses it as the cdef. */

/* How a run ended. */
#define FDR_FAILNTH_OK 0
#define FDR_FAILNTH_SETUP 1	/* a set-up call failed: where, err */
#define FDR_FAILNTH_TIMEOUT 2	/* the target did not trap, or not exit, in time */

struct fdr_failnth_result {
	int32_t status;		/* FDR_FAILNTH_* */
	char where[128];
	int32_t err;
	int32_t fd;		/* the target's fd that was registered, then replaced */
	int32_t trapped_tid;	/* the notification's thread: fail-nth was set on it */
	int64_t addfd_ret;	/* ADDFD's return, or -errno */
	int32_t nth_left;	/* fail-nth read back: 0 once it fired; -1 for nth 0 */
	int32_t fds_before, fds_after;	/* the target's open fds around the ADDFD */
	int32_t lines;		/* "tfd:" lines in the target's epoll fdinfo after it */
	int32_t tfd;		/* the first line's fields */
	uint32_t events;
	uint64_t data, ino;
	uint64_t old_ino, new_ino;
	int32_t nev_old;	/* epoll_wait(0) with only the old file readable */
	int32_t nev_both;	/* then with the fd's new file readable too */
	uint32_t ev_events;	/* the event of nev_both */
	uint64_t ev_data;
	int32_t old_alive, new_alive;	/* after the target was reaped: 1 if the file
					 * still has a reader (a reference leaked) */
};

/* Fork a target that registers `fd` (a pipe's read end, kept alive by a dup)
 * in an epoll instance with EPOLLIN and data FDR_FAILNTH_DATA, and traps;
 * write nth to the trapped thread's /proc/<pid>/task/<tid>/fail-nth (0: no
 * injection), replace the fd by ADDFD(SETFD) with a fresh pipe, read
 * fail-nth back and reset it, look at the epoll, answer, reap.  Returns 0
 * when the run was carried out (out->status says how it ended), -1 with
 * errno EINVAL on a bad argument. */
int fdr_failnth(int nth, int timeout_ms, struct fdr_failnth_result *out);

#define FDR_FAILNTH_DATA 0xFA117000
