// SPDX-License-Identifier: MIT
/*
 * The memory back end: the request path without a filesystem under it,
 * for unit tests and for benchmarks of the virtqueue/worker machinery.
 * Concurrent writes to the same sectors race as they would on a disk;
 * the guest orders its own overlapping I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio-blk/disk.h"

/* virtio-blk's capacity unit; the disk layer does not include blk.h */
#define DISK_MEM_SECTOR	512

static ssize_t disk_mem_copy(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
			     bool write)
{
	uint8_t *mem = d->priv;
	ssize_t total = disk_iov_len(iov, cnt);
	int i;

	if (total < 0 || !disk_range_ok(d, off, total))
		return -EIO;
	for (i = 0; i < cnt; i++) {
		if (write)
			memcpy(mem + off, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, mem + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return total;
}

static ssize_t disk_mem_preadv(struct disk *d, const struct iovec *iov, int cnt, uint64_t off)
{
	return disk_mem_copy(d, iov, cnt, off, false);
}

static ssize_t disk_mem_pwritev(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
				bool sync)
{
	if (d->ro)
		return -EROFS;
	return disk_mem_copy(d, iov, cnt, off, true);
}

static int disk_mem_flush(struct disk *d)
{
	return 0;
}

static void disk_mem_close(struct disk *d)
{
	free(d->priv);
	d->priv = NULL;
}

static const struct disk_ops disk_mem_ops = {
	.preadv = disk_mem_preadv,
	.pwritev = disk_mem_pwritev,
	.flush = disk_mem_flush,
	.close = disk_mem_close,
};

int disk_open_mem(struct disk *d, uint64_t size)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	/* The guest sees capacity in 512-byte sectors: no hidden tail. */
	if (size == 0 || size % DISK_MEM_SECTOR || size > SIZE_MAX)
		return -EINVAL;
	d->priv = calloc(1, size);
	if (!d->priv)
		return -ENOMEM;
	d->ops = &disk_mem_ops;
	d->size = size;
	return 0;
}
