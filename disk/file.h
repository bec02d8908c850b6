/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_FILE_H
#define TINYVMM_DISK_FILE_H

/*
 * The media of the file engines (threads, io_uring): an image file or a
 * block device, opened, sized, locked and probed here, and the
 * synchronous form of every operation, which the thread pool runs in its
 * workers and the io_uring engine runs for an operation done on the
 * queue thread itself or that the ring cannot take.
 */
#include <stdbool.h>
#include <stdint.h>

#include "disk/disk.h"

struct disk_file {
	int fd;
	bool is_blockdev;
	bool direct;		/* opened O_DIRECT */
	/* Set once the kernel refused: answered without asking again. */
	bool no_rwf_dsync;
	bool no_zero_range;	/* FALLOC_FL_ZERO_RANGE (a hole is punched instead) */
	bool no_punch;		/* FALLOC_FL_PUNCH_HOLE, BLKDISCARD on a device */
};

/*
 * Open, size, window-check, lock and probe c->path; fills *p (but the
 * engine name) and *start.  One error line; -errno.
 */
int disk_file_open(struct disk_file *f, const struct disk_conf *c, struct disk_props *p,
		   uint64_t *start);
void disk_file_close(struct disk_file *f);

/*
 * Do io synchronously (a media offset), skipping its first done bytes
 * (the rest of a transfer that came up short elsewhere).  0 or -errno;
 * a transfer that moves nothing is -EIO.
 */
int disk_file_exec(struct disk_file *f, const struct disk_io *io, uint64_t done);
int disk_file_flush(struct disk_file *f);

/*
 * The fallocate() mode that does a DISCARD or WRITE_ZEROES on a regular
 * file, or 0 when it must go through disk_file_exec() (a block device's
 * ioctls, or a mode the file system refused).
 */
int disk_file_falloc_mode(const struct disk_file *f, const struct disk_io *io);
/*
 * A fallocate of io with mode came back with err: remember a refusal.
 * True when the operation should be done again (another way).
 */
bool disk_file_falloc_refused(struct disk_file *f, int mode, int err);

#endif
