/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_PROC_H
#define TINYVMM_TESTS_PROC_H

/*
 * What a test reads of its own process: how much memory is resident, so
 * that a test can hold code to a bound on what it allocates and touches.
 */
#include <stdint.h>

/* Bytes resident now (/proc/self/statm), or 0 when that cannot be read. */
uint64_t proc_rss_bytes(void);

#endif
