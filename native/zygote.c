// SPDX-License-Identifier: GPL-2.0
/*
 * fdr-zygote: forks the executor's targets for the process that started it
 * (see fdr_zygote_start() in executor.c).  A small process forks in a tenth
 * of the time a large Python process does.  Its socket is fd 3 and the shared
 * region fd 4; it exits when the socket closes.
 */
#include "executor.c"

int main(void)
{
	return fdr_zygote_main(3, 4);
}
