// SPDX-License-Identifier: MIT
/*
 * The file media: a regular file or a block device, optionally only a
 * window of it (range=).  Buffered I/O through the page cache; writethru
 * durability comes from RWF_DSYNC (or fdatasync where the file system
 * refuses it), writeback durability from the guest's flushes.  DISCARD
 * punches a hole (BLKDISCARD on a device), WRITE_ZEROES zeroes a range
 * (a hole when unmapping is allowed, BLKZEROOUT on a device).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "disk/file.h"
#include "lib/util.h"

/* Stay under the kernel's UIO_MAXIOV per call. */
#define FILE_IOV_BATCH	IOV_MAX

/*
 * statx(STATX_DIOALIGN), Linux 6.1: glibc 2.36's struct statx keeps the
 * two fields in its padding, at the kernel's offsets.
 */
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN		0x00002000U
#endif
#define STATX_DIO_MEM_OFF	152	/* stx_dio_mem_align, then stx_dio_offset_align */

/*
 * The next batch of at most FILE_IOV_BATCH entries from byte pos of the
 * iovecs on, skipping empty entries.  Returns the entry count.
 */
static int file_iov_batch(struct iovec *batch, const struct iovec *iov, unsigned int cnt,
			  uint64_t pos)
{
	unsigned int idx = 0;
	int n = 0;

	while (idx < cnt && pos >= iov[idx].iov_len)
		pos -= iov[idx++].iov_len;
	for (; idx < cnt && n < FILE_IOV_BATCH; idx++, pos = 0) {
		if (iov[idx].iov_len == pos)
			continue;
		batch[n].iov_base = (char *)iov[idx].iov_base + pos;
		batch[n].iov_len = iov[idx].iov_len - pos;
		n++;
	}
	return n;
}

/*
 * preadv/pwritev until everything from byte done on moved: short
 * transfers and EINTR are retried, a transfer of 0 bytes (EOF on read,
 * nothing accepted on write) is -EIO.
 */
static int file_rw(struct disk_file *f, const struct disk_io *io, uint64_t done, int rwf)
{
	struct iovec batch[FILE_IOV_BATCH];
	ssize_t n;
	int nb;

	while (done < io->len) {
		nb = file_iov_batch(batch, io->iov, io->cnt, done);
		if (io->op == DISK_OP_READ)
			n = preadv(f->fd, batch, nb, io->offset + done);
		else
			n = pwritev2(f->fd, batch, nb, io->offset + done, rwf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += n;
	}
	return 0;
}

int disk_file_flush(struct disk_file *f)
{
	if (fdatasync(f->fd) < 0)
		return -errno;
	return 0;
}

static int file_write(struct disk_file *f, const struct disk_io *io, uint64_t done)
{
	int ret;

	if (!(io->flags & DISK_F_FUA))
		return file_rw(f, io, done, 0);
	if (!__atomic_load_n(&f->no_rwf_dsync, __ATOMIC_RELAXED)) {
		ret = file_rw(f, io, done, RWF_DSYNC);
		/*
		 * Old kernels and some file systems refuse the flag before
		 * writing anything; what a partly done call wrote is written
		 * again below, which is harmless.
		 */
		if (ret != -EOPNOTSUPP && ret != -EINVAL && ret != -ENOSYS)
			return ret;
		__atomic_store_n(&f->no_rwf_dsync, true, __ATOMIC_RELAXED);
	}
	ret = file_rw(f, io, done, 0);
	return ret ? ret : disk_file_flush(f);
}

int disk_file_falloc_mode(const struct disk_file *f, const struct disk_io *io)
{
	bool hole = io->op == DISK_OP_DISCARD || (io->flags & DISK_F_UNMAP) ||
		    __atomic_load_n(&f->no_zero_range, __ATOMIC_RELAXED);

	if (f->is_blockdev)
		return 0;
	if (hole)
		return __atomic_load_n(&f->no_punch, __ATOMIC_RELAXED) ? 0 :
		       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

bool disk_file_falloc_refused(struct disk_file *f, int mode, int err)
{
	if (err != -EOPNOTSUPP)
		return false;
	if (mode & FALLOC_FL_ZERO_RANGE) {
		/* A punched hole reads as zeros too. */
		__atomic_store_n(&f->no_zero_range, true, __ATOMIC_RELAXED);
		return !__atomic_load_n(&f->no_punch, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&f->no_punch, true, __ATOMIC_RELAXED);
	return false;
}

/* DISCARD or WRITE_ZEROES on a block device. */
static int file_blk_ioctl(struct disk_file *f, const struct disk_io *io)
{
	uint64_t range[2] = { io->offset, io->len };
	unsigned long req = io->op == DISK_OP_DISCARD ? BLKDISCARD : BLKZEROOUT;

	if (req == BLKDISCARD && __atomic_load_n(&f->no_punch, __ATOMIC_RELAXED))
		return -EOPNOTSUPP;
	if (ioctl(f->fd, req, range) == 0)
		return 0;
	if (req == BLKDISCARD && errno == EOPNOTSUPP)
		__atomic_store_n(&f->no_punch, true, __ATOMIC_RELAXED);
	return -errno;
}

static int file_falloc(struct disk_file *f, const struct disk_io *io)
{
	int mode, ret;

	if (f->is_blockdev) {
		ret = file_blk_ioctl(f, io);
	} else {
		do {
			mode = disk_file_falloc_mode(f, io);
			if (!mode)
				return -EOPNOTSUPP;
			ret = fallocate(f->fd, mode, io->offset, io->len) ? -errno : 0;
		} while (ret && (ret == -EINTR || disk_file_falloc_refused(f, mode, ret)));
	}
	/* Zeroes for a writethru guest: durable (the new extents too) before done. */
	if (!ret && (io->flags & DISK_F_FUA))
		ret = disk_file_flush(f);
	return ret;
}

int disk_file_exec(struct disk_file *f, const struct disk_io *io, uint64_t done)
{
	switch (io->op) {
	case DISK_OP_READ:
		return file_rw(f, io, done, 0);
	case DISK_OP_WRITE:
		return file_write(f, io, done);
	case DISK_OP_FLUSH:
		return disk_file_flush(f);
	case DISK_OP_DISCARD:
	case DISK_OP_WRITE_ZEROES:
		return file_falloc(f, io);
	}
	return -EINVAL;
}

/* ---- opening ------------------------------------------------------------ */

/* Byte size of the open file or block device; one error line on failure. */
static int file_size(int fd, const struct stat *st, const struct disk_conf *c, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = st->st_size;
		return 0;
	}
	if (ioctl(fd, BLKGETSIZE64, size) < 0) {
		int err = errno;

		pr_err("%s: cannot get the size of '%s': %s", c->who, c->path, strerror(err));
		return -err;
	}
	return 0;
}

/* Whole-file and range= checks; fills the window.  One error line. */
static int file_window(const struct disk_conf *c, uint64_t file_size, uint64_t *start,
		       uint64_t *size)
{
	uint64_t lb = c->logical_block;

	if (!c->has_range) {
		if (file_size == 0) {
			pr_err("%s: '%s' is empty", c->who, c->path);
			return -EINVAL;
		}
		if (file_size % lb) {
			pr_err("%s: '%s': size %llu is not a multiple of sectorsize %llu",
			       c->who, c->path, (unsigned long long)file_size,
			       (unsigned long long)lb);
			return -EINVAL;
		}
		*start = 0;
		*size = file_size;
		return 0;
	}
	/* A file with a ragged tail is fine as long as the window avoids it. */
	if (c->range_start > file_size || c->range_len > file_size - c->range_start) {
		pr_err("%s: range=%llu/%llu: the window runs past the end of '%s' (%llu bytes)",
		       c->who, (unsigned long long)(c->range_start / lb),
		       (unsigned long long)(c->range_len / lb), c->path,
		       (unsigned long long)file_size);
		return -EINVAL;
	}
	*start = c->range_start;
	*size = c->range_len;
	return 0;
}

/*
 * Two writers of one image corrupt it: take an OFD lock (owned by the open
 * file description, so it conflicts even with another open in this process
 * and goes away with the fd) over the window, or the whole file and any
 * growth of it (l_len 0) without range=: a write lock for rw, a read lock
 * for ro, so readers share and a writer excludes everyone.  A file system
 * without byte-range locks is used unlocked.  One error line.
 */
static int file_lock(int fd, const struct disk_conf *c, uint64_t start, uint64_t size)
{
	struct flock fl = {
		.l_type = c->ro ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = c->has_range ? size : 0,
	};
	struct flock who = fl;
	int err;

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	err = errno;
	if (err != EAGAIN && err != EACCES) {
		if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
			/* Two writers would corrupt the image: say so where it matters. */
			if (c->ro)
				pr_debug("%s: '%s': no image locking on this file system: %s",
					 c->who, c->path, strerror(err));
			else
				pr_warn("%s: '%s': cannot lock the image (%s): nothing stops another process from writing it too",
					c->who, c->path, strerror(err));
			return 0;
		}
		pr_err("%s: cannot lock '%s': %s", c->who, c->path, strerror(err));
		return -err;
	}
	/* Who holds it, for the message; the answer may already be stale. */
	who.l_pid = 0;
	if (fcntl(fd, F_OFD_GETLK, &who) < 0 || who.l_type == F_UNLCK)
		who.l_type = F_WRLCK;
	pr_err("%s: '%s' is in use by another process (locked for %s)", c->who, c->path,
	       who.l_type == F_WRLCK ? "writing" : "reading");
	return -EBUSY;
}

/* Whether a block device discards: its queue says how much at most. */
static bool file_blk_discards(const struct stat *st)
{
	static const char *const paths[] = {
		"/sys/dev/block/%u:%u/queue/discard_max_bytes",
		"/sys/dev/block/%u:%u/../queue/discard_max_bytes",	/* a partition */
	};
	unsigned long long max = 0;
	char path[96];
	unsigned int i;
	FILE *fp;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		snprintf(path, sizeof(path), paths[i], major(st->st_rdev), minor(st->st_rdev));
		fp = fopen(path, "re");
		if (!fp)
			continue;
		if (fscanf(fp, "%llu", &max) != 1)
			max = 0;
		fclose(fp);
		return max > 0;
	}
	return false;
}

/* The logical block of the device a file lives on (sysfs); 0 if unknown. */
static uint32_t file_dev_block(const struct stat *st)
{
	dev_t dev = S_ISBLK(st->st_mode) ? st->st_rdev : st->st_dev;
	unsigned int v = 0;
	char path[96];
	FILE *fp;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/logical_block_size",
		 major(dev), minor(dev));
	fp = fopen(path, "re");
	if (!fp) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/logical_block_size",
			 major(dev), minor(dev));
		fp = fopen(path, "re");
	}
	if (fp && fscanf(fp, "%u", &v) != 1)
		v = 0;
	if (fp)
		fclose(fp);
	return v;
}

/*
 * What O_DIRECT asks of buffers and offsets here: statx's answer, else
 * the device's logical block for both (what file systems ask without
 * saying), else 4096.  One error line when the logical block the guest
 * is given is smaller than the offset alignment.
 */
static int file_dio_align(int fd, const struct stat *st, const struct disk_conf *c,
			  struct disk_props *p)
{
	struct statx sx;
	uint32_t al[2] = { 0, 0 };

	memset(&sx, 0, sizeof(sx));
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN))
		memcpy(al, (const uint8_t *)&sx + STATX_DIO_MEM_OFF, sizeof(al));
	if (!al[0] || !al[1])
		al[0] = al[1] = file_dev_block(st);
	if (!al[0] || !al[1])
		al[0] = al[1] = 4096;
	p->direct = true;
	p->dio_mem_align = al[0];
	p->dio_off_align = al[1];
	if (c->logical_block < al[1] || (c->has_range && c->range_start % al[1])) {
		pr_err("%s: direct: '%s' needs sectorsize=%u or more (O_DIRECT's block there)%s",
		       c->who, c->path, al[1], c->has_range ? " and a range= aligned to it" : "");
		return -EINVAL;
	}
	return 0;
}

/*
 * What the media can do besides reading and writing.  A regular file is
 * asked to punch a hole past its end, which changes nothing; zeroing a
 * range is tried when it is first needed (a hole is the fallback).
 */
static void file_probe(struct disk_file *f, const struct stat *st, uint64_t file_size,
		       struct disk_props *p)
{
	uint64_t past = (file_size + p->logical_block - 1) / p->logical_block *
			p->logical_block;

	if (p->ro) {
		f->no_punch = true;
		return;
	}
	if (f->is_blockdev) {
		f->no_punch = !file_blk_discards(st);
		p->discard = !f->no_punch;
		p->write_zeroes = true;		/* BLKZEROOUT: the kernel writes if it must */
		return;
	}
	f->no_punch = fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, past,
				p->logical_block) != 0;
	p->discard = p->write_zeroes = p->zeroes_unmap = !f->no_punch;
}

int disk_file_open(struct disk_file *f, const struct disk_conf *c, struct disk_props *p,
		   uint64_t *start)
{
	uint64_t fsize;
	struct stat st;
	int fd, ret;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	fd = open(c->path, (c->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (c->direct ? O_DIRECT : 0));
	if (fd < 0 && c->direct && errno == EINVAL) {
		pr_err("%s: direct: the file system of '%s' does not do O_DIRECT", c->who, c->path);
		return -EINVAL;
	}
	if (fd < 0) {
		ret = -errno;
		pr_err("%s: cannot open image '%s': %s", c->who, c->path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("%s: cannot stat '%s': %s", c->who, c->path, strerror(-ret));
		goto err;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		pr_err("%s: '%s' is neither a regular file nor a block device", c->who, c->path);
		ret = -EINVAL;
		goto err;
	}
	ret = file_size(fd, &st, c, &fsize);
	if (!ret && c->direct)
		ret = file_dio_align(fd, &st, c, p);
	if (!ret)
		ret = file_window(c, fsize, start, &p->size);
	if (!ret)
		ret = file_lock(fd, c, *start, p->size);
	if (ret)
		goto err;
	f->fd = fd;
	f->is_blockdev = S_ISBLK(st.st_mode);
	f->direct = c->direct;
	p->logical_block = c->logical_block;
	p->physical_block = c->physical_block;
	p->ro = c->ro;
	p->is_blockdev = f->is_blockdev;
	p->fd = fd;
	file_probe(f, &st, fsize, p);
	return 0;
err:
	close(fd);
	return ret;
}

void disk_file_close(struct disk_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}
