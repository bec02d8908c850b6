/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_TESTS_PEER_NBD_FAKE_H
#define TINYVMM_TESTS_PEER_NBD_FAKE_H

/*
 * A misbehaving NBD server for what nbdkit will not do: a process of its
 * own serving one connection on a unix socket, a read-only export of
 * 1 MiB that answers every READ with half the bytes asked for.  With
 * structured replies it sends a data chunk for the first half and a
 * successful last chunk; without, a simple reply header, half the data,
 * and then it closes the connection.  Every other command succeeds.
 */
#include <sys/types.h>

#define NBD_FAKE_SIZE	(1u << 20)

/* Listening on sock when it returns (so no wait is needed); the child's pid. */
pid_t nbd_fake_short_read(const char *sock);

#endif
