// SPDX-License-Identifier: MIT
/*
 * The file back end: a regular file or a block device, optionally only a
 * window of it (range=).  Buffered I/O through the page cache; writethru
 * durability comes from RWF_DSYNC (or fdatasync where the filesystem
 * refuses it), writeback durability from the guest's flushes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio-blk/disk.h"
#include "lib/util.h"

/* Stay under the kernel's UIO_MAXIOV per call; 16 KiB of stack. */
#define DISK_IOV_BATCH	IOV_MAX

struct disk_file {
	/* Set once RWF_DSYNC was refused: every later sync write falls back. */
	bool no_rwf_dsync;
};

/*
 * Whether [off, off+len) lies inside the disk.  The callers already check
 * the guest's request; this is the last line before a file offset is
 * formed, so that a bug upstream cannot reach outside the window.
 */
bool disk_range_ok(const struct disk *d, uint64_t off, uint64_t len)
{
	return off <= d->size && len <= d->size - off;
}

/* Total length of an iovec array, or -EINVAL if it does not fit. */
ssize_t disk_iov_len(const struct iovec *iov, int cnt)
{
	uint64_t total = 0;
	int i;

	if (cnt < 0)
		return -EINVAL;
	for (i = 0; i < cnt; i++) {
		total += iov[i].iov_len;
		if (total > SSIZE_MAX)
			return -EINVAL;
	}
	return total;
}

/*
 * Build the next batch of at most DISK_IOV_BATCH entries starting at
 * iov[*idx] + *skip, skipping empty entries.  Returns the entry count.
 */
static int disk_iov_batch(struct iovec *batch, const struct iovec *iov, int cnt,
			  int idx, size_t skip)
{
	int n = 0;

	for (; idx < cnt && n < DISK_IOV_BATCH; idx++, skip = 0) {
		if (iov[idx].iov_len == skip)
			continue;
		batch[n].iov_base = (char *)iov[idx].iov_base + skip;
		batch[n].iov_len = iov[idx].iov_len - skip;
		n++;
	}
	return n;
}

/* Move (*idx, *skip) forward by done bytes. */
static void disk_iov_advance(const struct iovec *iov, int cnt, int *idx, size_t *skip,
			     size_t done)
{
	while (done && *idx < cnt) {
		size_t left = iov[*idx].iov_len - *skip;

		if (done < left) {
			*skip += done;
			return;
		}
		done -= left;
		(*idx)++;
		*skip = 0;
	}
}

enum disk_op { DISK_READ, DISK_WRITE, DISK_WRITE_DSYNC };

/*
 * preadv/pwritev until everything moved: short transfers and EINTR are
 * retried, a transfer of 0 bytes (EOF on read, nothing accepted on
 * write) is -EIO.  Returns total bytes or -errno.
 */
static ssize_t disk_file_rw(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
			    enum disk_op op)
{
	struct iovec batch[DISK_IOV_BATCH];
	ssize_t total = disk_iov_len(iov, cnt), done = 0, n;
	size_t skip = 0;
	int idx = 0, nb;

	if (total < 0 || !disk_range_ok(d, off, total))
		return -EIO;
	off += d->start;
	while (done < total) {
		nb = disk_iov_batch(batch, iov, cnt, idx, skip);
		if (op == DISK_READ)
			n = preadv(d->fd, batch, nb, off + done);
		else if (op == DISK_WRITE)
			n = pwritev(d->fd, batch, nb, off + done);
		else
			n = pwritev2(d->fd, batch, nb, off + done, RWF_DSYNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += n;
		disk_iov_advance(iov, cnt, &idx, &skip, n);
	}
	return done;
}

static ssize_t disk_file_preadv(struct disk *d, const struct iovec *iov, int cnt, uint64_t off)
{
	return disk_file_rw(d, iov, cnt, off, DISK_READ);
}

static int disk_file_flush(struct disk *d)
{
	if (fdatasync(d->fd) < 0)
		return -errno;
	return 0;
}

static ssize_t disk_file_pwritev(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
				 bool sync)
{
	struct disk_file *f = d->priv;
	ssize_t ret;
	int err;

	if (d->ro)
		return -EROFS;
	if (!sync)
		return disk_file_rw(d, iov, cnt, off, DISK_WRITE);

	if (!__atomic_load_n(&f->no_rwf_dsync, __ATOMIC_RELAXED)) {
		ret = disk_file_rw(d, iov, cnt, off, DISK_WRITE_DSYNC);
		/*
		 * Old kernels and some filesystems refuse the flag before
		 * writing anything; whatever was written by a partly done
		 * call is rewritten below, which is harmless.
		 */
		if (ret != -EOPNOTSUPP && ret != -EINVAL && ret != -ENOSYS)
			return ret;
		__atomic_store_n(&f->no_rwf_dsync, true, __ATOMIC_RELAXED);
	}
	ret = disk_file_rw(d, iov, cnt, off, DISK_WRITE);
	if (ret < 0)
		return ret;
	err = disk_file_flush(d);
	return err ? err : ret;
}

static void disk_file_close(struct disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->priv);
	d->priv = NULL;
}

static const struct disk_ops disk_file_ops = {
	.preadv = disk_file_preadv,
	.pwritev = disk_file_pwritev,
	.flush = disk_file_flush,
	.close = disk_file_close,
};

/* Byte size of the open file or block device; one error line on failure. */
static int disk_file_size(int fd, const struct stat *st, const char *path, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = st->st_size;
		return 0;
	}
	if (ioctl(fd, BLKGETSIZE64, size) < 0) {
		int err = errno;

		pr_err("virtio-blk: cannot get the size of '%s': %s", path, strerror(err));
		return -err;
	}
	return 0;
}

/* Whole-file and range= checks; fills start/size.  One error line. */
static int disk_file_window(struct disk *d, const struct blk_opts *o, uint64_t file_size)
{
	uint64_t lb = o->logical_block, end;

	if (!o->has_range) {
		if (file_size == 0) {
			pr_err("virtio-blk: '%s' is empty", o->path);
			return -EINVAL;
		}
		if (file_size % lb) {
			pr_err("virtio-blk: '%s': size %llu is not a multiple of sectorsize %llu",
			       o->path, (unsigned long long)file_size, (unsigned long long)lb);
			return -EINVAL;
		}
		d->start = 0;
		d->size = file_size;
		return 0;
	}
	/*
	 * blk_opts_parse() guarantees (lba + sectors) * lb fits; a file
	 * with a ragged tail is fine as long as the window avoids it.
	 */
	end = (o->range_lba + o->range_sectors) * lb;
	if (end > file_size) {
		pr_err("virtio-blk: range=%llu/%llu: window ends at byte %llu, past the end of '%s' (%llu bytes)",
		       (unsigned long long)o->range_lba, (unsigned long long)o->range_sectors,
		       (unsigned long long)end, o->path, (unsigned long long)file_size);
		return -EINVAL;
	}
	d->start = o->range_lba * lb;
	d->size = o->range_sectors * lb;
	return 0;
}

/*
 * Two writers of one image corrupt it: take an OFD lock (owned by the open
 * file description, so it conflicts even with another open in this process
 * and goes away with the fd) over the window, or the whole file and any
 * growth of it (l_len 0) without range=: a write lock for rw, a read lock
 * for ro, so readers share and a writer excludes everyone.  A filesystem
 * without byte-range locks is used unlocked.  One error line.
 */
static int disk_file_lock(struct disk *d, int fd, const struct blk_opts *o)
{
	struct flock fl = {
		.l_type = o->ro ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = d->start,
		.l_len = o->has_range ? d->size : 0,
	};
	struct flock who = fl;
	int err;

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	err = errno;
	if (err != EAGAIN && err != EACCES) {
		if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
			/* Two writers would corrupt the image: say so where it matters. */
			if (o->ro)
				pr_debug("virtio-blk: '%s': no image locking on this filesystem: %s",
					 o->path, strerror(err));
			else
				pr_warn("virtio-blk: '%s': cannot lock the image (%s): nothing stops another process from writing it too",
					o->path, strerror(err));
			return 0;
		}
		pr_err("virtio-blk: cannot lock '%s': %s", o->path, strerror(err));
		return -err;
	}
	/* Who holds it, for the message; the answer may already be stale. */
	who.l_pid = 0;
	if (fcntl(fd, F_OFD_GETLK, &who) < 0 || who.l_type == F_UNLCK)
		who.l_type = F_WRLCK;
	pr_err("virtio-blk: '%s' is in use by another process (locked for %s)",
	       o->path, who.l_type == F_WRLCK ? "writing" : "reading");
	return -EBUSY;
}

int disk_open(struct disk *d, const struct blk_opts *o)
{
	struct disk_file *f;
	uint64_t file_size;
	struct stat st;
	int fd, ret;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	fd = open(o->path, (o->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("virtio-blk: cannot open image '%s': %s", o->path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("virtio-blk: cannot stat '%s': %s", o->path, strerror(-ret));
		goto err;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		pr_err("virtio-blk: '%s' is neither a regular file nor a block device", o->path);
		ret = -EINVAL;
		goto err;
	}
	ret = disk_file_size(fd, &st, o->path, &file_size);
	if (ret)
		goto err;
	ret = disk_file_window(d, o, file_size);
	if (ret)
		goto err;
	ret = disk_file_lock(d, fd, o);
	if (ret)
		goto err;
	f = calloc(1, sizeof(*f));
	if (!f) {
		ret = -ENOMEM;
		goto err;
	}
	d->ops = &disk_file_ops;
	d->fd = fd;
	d->ro = o->ro;
	d->is_blockdev = S_ISBLK(st.st_mode);
	d->path = o->path;
	d->priv = f;
	return 0;
err:
	close(fd);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	return ret;
}

void disk_close(struct disk *d)
{
	if (d->ops && d->ops->close)
		d->ops->close(d);
	d->ops = NULL;
}
