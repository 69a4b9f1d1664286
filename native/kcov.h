/* Kernel coverage of a target's first thread (KCOV_TRACE_PC), for guided fuzzing. */
/* Open /sys/kernel/debug/kcov with room for `entries` PCs: 0, or -errno. */
int fdr_kcov_open(long entries);
/* Close it: runs go on without coverage. */
void fdr_kcov_close(void);
/* The PCs the last run's target thread reached, at most `max` into pcs; how many it logged. */
long fdr_kcov_collect(uint64_t *pcs, long max);
