/* Signals delivered to a target asleep in the seccomp notifier: the interface
 * shared by notif_signal.c and the cffi cdef.  Keep this file free of
 * preprocessor directives other than the #defines below: cffi parses it. */

/* Scenarios (what fdr_notif_signal() does to the trapped target). */
#define FDR_SIG_RESTART 0		/* SIGUSR1 with an SA_RESTART handler, after RECV */
#define FDR_SIG_NORESTART 1		/* SIGUSR1 with a handler without SA_RESTART, after RECV */
#define FDR_SIG_STOP_CONT 2		/* SIGSTOP then SIGCONT, no handler, after RECV */
#define FDR_SIG_KILLABLE 3		/* WAIT_KILLABLE_RECV: SIGUSR1 (SA_RESTART) after RECV */
#define FDR_SIG_KILLABLE_BEFORE_RECV 4	/* WAIT_KILLABLE_RECV: SIGUSR1 (SA_RESTART) before RECV */
#define FDR_SIG_KILLABLE_FATAL 5	/* WAIT_KILLABLE_RECV: SIGTERM, default action, after RECV */
#define FDR_SIG_NSCENARIOS 6

/* How a run ended. */
#define FDR_SIG_OK 0
#define FDR_SIG_SETUP 1			/* a set-up call failed: where, err */
#define FDR_SIG_TIMEOUT 2		/* a bounded wait ran out: where */

#define FDR_SIG_UNSET -1000		/* a field the scenario does not fill */

struct fdr_sig_result {
	int32_t status;
	int32_t err;
	char where[128];
	/* The supervisor's view, after the signal. */
	int32_t renotified;		/* a second notification was received */
	int64_t id_delta;		/* its id minus the first one's (FDR_SIG_UNSET without both) */
	int32_t old_valid;		/* NOTIF_ID_VALID(first id): 0 or an errno */
	int32_t old_addfd;		/* ADDFD on the first id: 0 (installed) or an errno */
	int32_t old_send;		/* NOTIF_SEND on the first id: 0 or an errno */
	int32_t live_addfd;		/* ADDFD on the live notification: 0 or an errno */
	int32_t live_send;		/* NOTIF_SEND (val 42) on it: 0 or an errno */
	int32_t pending_after;		/* a notification still pending at the end (0/1) */
	/* The target's view. */
	int64_t call_ret;		/* what the trapped syscall returned */
	int32_t call_errno;		/* its errno (0 when it returned >= 0) */
	int32_t handler_runs;		/* signal handler runs seen by the end of the call */
	int32_t term_signal;		/* the signal that ended the target, or 0 */
	int32_t exit_status;		/* its exit status when it exited */
};

/* Run one scenario against a fresh target process.  Returns 0 when it was
 * carried out (out->status says how it ended), -1 with errno EINVAL on a bad
 * scenario. */
int fdr_notif_signal(int scenario, int timeout_ms, struct fdr_sig_result *out);

/* The scenario's name, or NULL past the last one. */
const char *fdr_notif_signal_name(int scenario);
