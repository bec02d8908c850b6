/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_PEER_NBD_FAKE_H
#define TINYVMM_TESTS_PEER_NBD_FAKE_H

/*
 * An NBD server for what nbdkit will not do: a process of its own
 * serving connections one at a time on a unix socket bound by the path
 * given (relative ones stay relative: nbdkit makes them absolute), a
 * read-only export of 1 MiB of zeros.  Or one that answers every READ
 * with half the bytes asked for: with structured replies a data chunk for
 * the first half and a successful last chunk; without, a simple reply
 * header, half the data, and then it closes the connection.  Every other
 * command succeeds.
 */
#include <stdbool.h>
#include <sys/types.h>

#define NBD_FAKE_SIZE	(1u << 20)

/* Listening on sock when it returns (so no wait is needed); the child's pid. */
pid_t nbd_fake_start(const char *sock, bool short_reads);

#endif
