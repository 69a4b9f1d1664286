/* The race engine's interface, shared by the C source and the cffi cdef.
 * Keep this file free of preprocessor directives other than the #defines below:
 * cffi parses it as the cdef. */

#define FDR_RACE_MAX_CLASSES 8

/* Scenarios: fdr_race_name() and fdr_race_class() name them and their classes. */
#define FDR_RACE_TWO_ADDFD 0
#define FDR_RACE_TWO_DUP2 1
#define FDR_RACE_ADDFD_VS_CTL_ADD 2
#define FDR_RACE_ADDFD_VS_CTL_DEL 3
#define FDR_RACE_ADDFD_VS_WAIT 4
#define FDR_RACE_ADDFD_VS_CLOSE 5
#define FDR_RACE_ADDFD_VS_EXIT 6
#define FDR_RACE_ADDFD_VS_SIGNAL 7
#define FDR_RACE_TWO_LISTENERS 8
#define FDR_RACE_NSCENARIOS 9

/* fdr_race() flags.  SABOTAGE: the engine keeps its own copies of the racing
 * files open through each verdict, a deliberate leak that two_addfd,
 * two_dup2, addfd_vs_close, addfd_vs_exit and addfd_vs_signal must report as
 * violations (the
 * engine's self-test that its verdicts can fail). */
#define FDR_RACE_F_SABOTAGE 1
/* FOLLOW: verdicts state the follow profile (epoll entries follow an
 * ADDFD|SETFD replace) instead of stock; only two_listeners reads it. */
#define FDR_RACE_F_FOLLOW 2

/* How a run ended. */
#define FDR_RACE_OK 0
#define FDR_RACE_TIMEOUT 1
#define FDR_RACE_CRASHED 2
#define FDR_RACE_SETUP 3

struct fdr_race_result {
	int32_t status;		/* FDR_RACE_* */
	int32_t iterations;	/* iterations carried out to the end */
	int32_t nclasses;
	int64_t counts[FDR_RACE_MAX_CLASSES];	/* iterations per interleaving class */
	int64_t violations;	/* invariant violations, over all iterations */
	char first_violation[256];
	int32_t err;		/* errno of a failed setup call */
	char where[128];	/* which setup call failed, or what timed out or crashed */
	int64_t elapsed_ns;
	int64_t window_ns;	/* half-range of the calibrated delay sweep */
	int64_t flip_ns;	/* where the narrow sweep ended up: the order's flip point */
	int64_t op_ns[2];	/* median durations of the two racing operations */
};

/* Run `iterations` iterations of a race scenario against real processes.
 * Returns 0 when the run was carried out (out->status says how it ended),
 * -1 with errno EINVAL on a bad argument. */
int fdr_race(int scenario, int iterations, int timeout_ms, int flags,
	     struct fdr_race_result *out);

/* The scenario's name, or NULL past the last one. */
const char *fdr_race_name(int scenario);

/* The name of a scenario's interleaving class, or NULL past its last one. */
const char *fdr_race_class(int scenario, int cls);

/* 1 when the scenario needs seccomp user notification with ADDFD. */
int fdr_race_needs_addfd(int scenario);
