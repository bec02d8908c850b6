// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <unistd.h>

#include "tests/driver/proc.h"

uint64_t proc_rss_bytes(void)
{
	unsigned long long size, res;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &res);
	fclose(f);
	return n == 2 ? res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}
