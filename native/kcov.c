// SPDX-License-Identifier: GPL-2.0
/*
 * KCOV for the executor: the calling process opens /sys/kernel/debug/kcov and
 * maps its buffer shared; a target forked from it (never through the zygote,
 * which would not inherit the mapping) enables tracing on its first thread
 * before anything else and the kernel disables it when that thread exits.  The
 * supervisor reads the PCs after the run.  Only the kernel files built with
 * KCOV_INSTRUMENT log anything (patches/coverage/ marks the files under test).
 * Actors forked or cloned by the target are not traced: KCOV is per task.
 */
#include <linux/kcov.h>
#include <stdint.h>

static struct {
	int fd;
	unsigned long *area;
	long entries;
} fdr_kcov = { .fd = -1 };

int fdr_kcov_open(long entries)
{
	int fd;
	void *area;

	if (fdr_kcov.fd >= 0)
		return 0;
	if (entries < 2)
		return -EINVAL;
	fd = open("/sys/kernel/debug/kcov", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, KCOV_INIT_TRACE, (unsigned long)entries) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	area = mmap(NULL, entries * sizeof(unsigned long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED) {
		int err = errno;

		close(fd);
		return -err;
	}
	fdr_kcov.fd = fd;
	fdr_kcov.area = area;
	fdr_kcov.entries = entries;
	return 0;
}

void fdr_kcov_close(void)
{
	if (fdr_kcov.fd < 0)
		return;
	munmap(fdr_kcov.area, fdr_kcov.entries * sizeof(unsigned long));
	close(fdr_kcov.fd);
	fdr_kcov.fd = -1;
	fdr_kcov.area = NULL;
}

/* Supervisor, before the fork: an empty trace for the run. */
static void kcov_before_run(void)
{
	if (fdr_kcov.fd >= 0)
		__atomic_store_n(&fdr_kcov.area[0], 0, __ATOMIC_RELAXED);
}

/* Target, first thing after the fork: trace this thread (the fd may then close). */
static void kcov_enable_here(void)
{
	if (fdr_kcov.fd >= 0)
		ioctl(fdr_kcov.fd, KCOV_ENABLE, KCOV_TRACE_PC);
}

long fdr_kcov_collect(uint64_t *pcs, long max)
{
	long n;

	if (fdr_kcov.fd < 0)
		return -1;
	n = (long)__atomic_load_n(&fdr_kcov.area[0], __ATOMIC_RELAXED);
	if (n > fdr_kcov.entries - 1)
		n = fdr_kcov.entries - 1;
	for (long i = 0; i < n && i < max; i++)
		pcs[i] = fdr_kcov.area[i + 1];
	return n;
}
