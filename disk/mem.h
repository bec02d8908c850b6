/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_MEM_H
#define TINYVMM_DISK_MEM_H

/*
 * For tests only (libtinyvmm_test.a): a disk held in memory.  Every
 * operation is done when disk_submit() returns (never DISK_SUBMITTED),
 * so disk_notify_fd() is -1; DISCARD and WRITE_ZEROES zero the range,
 * FLUSH and disk_flush_sync() do nothing and return 0.
 */
#include <stdbool.h>
#include <stdint.h>

#include "disk/disk.h"

/*
 * A zero-filled disk of size bytes (a non-zero multiple of 512, else
 * -EINVAL): blocks of 512, discard, write_zeroes and zeroes_unmap all
 * offered, fd -1, engine "memory".  0 or -errno.
 */
int disk_open_mem(struct disk **out, uint64_t size, bool ro);
/*
 * The same with the props given (size, blocks, ro, discard, write_zeroes,
 * zeroes_unmap, is_blockdev), to test what the layer does with media
 * that lack a capability; fd and engine are set here as above.
 */
int disk_open_mem_props(struct disk **out, const struct disk_props *p);

#endif
