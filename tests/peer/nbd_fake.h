/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_PEER_NBD_FAKE_H
#define TINYVMM_TESTS_PEER_NBD_FAKE_H

/*
 * An NBD server for what nbdkit will not do: a process of its own
 * serving connections one at a time on a unix socket bound by the path
 * given (relative ones stay relative: nbdkit makes them absolute), a
 * read-only export of 1 MiB of zeros.  Or one that lies about READs
 * (enum nbd_fake_mode); every other command succeeds.
 */
#include <stdbool.h>
#include <sys/types.h>

#define NBD_FAKE_SIZE	(1u << 20)

enum nbd_fake_mode {
	NBD_FAKE_ZEROS,		/* READs answered whole, with zeros */
	/*
	 * Half the bytes asked for: with structured replies a data chunk for
	 * the first half and a successful last chunk; without, a simple
	 * reply header, half the data, and then it closes the connection.
	 */
	NBD_FAKE_SHORT_READS,
	/* A whole simple reply, but with a handle no request carried. */
	NBD_FAKE_WRONG_HANDLE,
	/* 16 bytes that are no reply at all (a bad magic), then silence. */
	NBD_FAKE_GARBAGE,
};

/* Listening on sock when it returns (so no wait is needed); the child's pid. */
pid_t nbd_fake_start(const char *sock, enum nbd_fake_mode mode);

#endif
