/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_URING_H
#define TINYVMM_DISK_URING_H

#include <liburing.h>

/*
 * Limit a ring created with IORING_SETUP_R_DISABLED to the operations the
 * io_uring engine uses, then enable it.  0 or -errno.  Exposed so that a
 * test can show what the restriction lets through on a ring of its own.
 */
int disk_uring_restrict(struct io_uring *ring);

#endif
