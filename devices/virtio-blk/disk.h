/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_H
#define TINYVMM_DISK_H

/*
 * The media behind a virtio-blk device, behind a read/write/flush ops
 * table so that tests and benchmarks can put their own back end (memory,
 * fault injection) in place of the file.  Offsets are relative to the
 * guest-visible disk (the range= window already applied by the file back
 * end); callers keep every access inside [0, size).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "devices/virtio-blk/blk_opts.h"

struct disk;

struct disk_ops {
	/* Whole transfer or a negative errno; a short transfer is -EIO. */
	ssize_t (*preadv)(struct disk *d, const struct iovec *iov, int cnt, uint64_t off);
	/* sync: the data must be durable on return (writethru) */
	ssize_t (*pwritev)(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
			   bool sync);
	/* Make every completed write durable; 0 or -errno. */
	int (*flush)(struct disk *d);
	void (*close)(struct disk *d);
};

struct disk {
	const struct disk_ops *ops;
	int fd;
	uint64_t start;		/* byte offset of the window in the file */
	uint64_t size;		/* guest-visible bytes */
	bool ro;
	bool is_blockdev;
	const char *path;	/* borrowed from blk_opts; NULL for memory */
	void *priv;		/* back-end private */
};

/*
 * Open o->path (regular file or block device; O_RDONLY with ro), check
 * its size is a multiple of the logical block and the range window lies
 * inside it, lock the window (the whole file without range=) with an OFD
 * lock, shared for ro and exclusive otherwise, and fill d with the file
 * back end.  One error line naming the path or the option; -errno, and
 * -EBUSY when another open of the image (in any process) holds a
 * conflicting lock.  The lock goes away with the fd (disk_close).
 */
int disk_open(struct disk *d, const struct blk_opts *o);
void disk_close(struct disk *d);

/*
 * A memory-backed disk for tests and benchmarks (size bytes, zeroed;
 * size a non-zero multiple of 512).  Set d->ro afterwards for a
 * read-only one.
 */
int disk_open_mem(struct disk *d, uint64_t size);

/* For back ends: [off, off+len) inside [0, d->size), overflow-safe. */
bool disk_range_ok(const struct disk *d, uint64_t off, uint64_t len);
/* Sum of the iov lengths, or -EINVAL past SSIZE_MAX. */
ssize_t disk_iov_len(const struct iovec *iov, int cnt);

#endif
