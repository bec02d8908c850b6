// SPDX-License-Identifier: MIT
/*
 * What the virtio-blk device is, apart from its transport and threads:
 * the config space and feature set derived from the options and the
 * media, and the handling of one request.  Every field of a request
 * comes from the guest, so each is checked before it turns into a file
 * offset, and nothing here trusts the elem's cached lengths.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/virtio-blk/blk.h"
#include "lib/util.h"

#define BLK_OUTHDR_SIZE		16	/* struct virtio_blk_outhdr */
/* A dying disk fails every request: say so a few times, not forever. */
#define BLK_IOERR_WARN_MAX	10

static unsigned int blk_ioerr_warned;

uint64_t blk_capacity(const struct blk_dev *b)
{
	return b->disk.size / BLK_SECTOR_SIZE;
}

/* A name for the default serial that survives restarts and renames. */
static void blk_default_serial(struct blk_dev *b)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	char buf[BLK_ID_BYTES + 1];
	uint64_t key[2];
	struct stat st;
	size_t i;

	/* A memory disk has no identity: its serial stays empty. */
	if (b->disk.fd < 0 || fstat(b->disk.fd, &st) < 0)
		return;
	key[0] = st.st_dev;
	key[1] = st.st_ino;
	for (i = 0; i < sizeof(key); i++) {
		h ^= ((const uint8_t *)key)[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(buf, sizeof(buf), "tvmm-%08x", (unsigned int)(h ^ (h >> 32)));
	memcpy(b->serial, buf, strlen(buf));
}

void blk_dev_setup_media(struct blk_dev *b)
{
	const struct blk_opts *o = &b->opts;
	struct blk_config *c = &b->cfg;
	uint32_t ratio = o->physical_block / o->logical_block;

	memset(b->serial, 0, sizeof(b->serial));
	if (o->has_serial)
		memcpy(b->serial, o->serial, strnlen(o->serial, BLK_ID_BYTES));
	else
		blk_default_serial(b);

	/* Config space is guest-native (little) endian under legacy virtio. */
	memset(c, 0, sizeof(*c));
	c->capacity = htole64(blk_capacity(b));
	/* The header and the status take one descriptor each. */
	c->seg_max = htole32(o->queue_size - 2);
	c->blk_size = htole32(o->logical_block);
	c->physical_block_exp = __builtin_ctz(ratio);
	c->min_io_size = htole16(1);
	c->wce = o->writeback;

	b->features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		      (1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		      (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (o->ro)
		b->features |= 1ULL << VIRTIO_BLK_F_RO;
}

static uint64_t blk_iov_sum(const struct iovec *iov, unsigned int cnt)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	return total;
}

/* Scatter len bytes of src over iov (which holds at least len). */
static void blk_iov_fill(const struct iovec *iov, unsigned int cnt, const void *src, size_t len)
{
	const uint8_t *p = src;
	unsigned int i;

	for (i = 0; i < cnt && len; i++) {
		size_t n = MIN(len, iov[i].iov_len);

		memcpy(iov[i].iov_base, p, n);
		p += n;
		len -= n;
	}
}

/* what: "read"/"write" (with len bytes at sector) or "flush". */
static void blk_warn_ioerr(struct blk_dev *b, const char *what, uint64_t sector, uint64_t len,
			   int err)
{
	unsigned int n = __atomic_fetch_add(&blk_ioerr_warned, 1, __ATOMIC_RELAXED);
	char where[64] = "";

	if (n >= BLK_IOERR_WARN_MAX)
		return;
	if (len)
		snprintf(where, sizeof(where), " of %llu bytes at sector %llu",
			 (unsigned long long)len, (unsigned long long)sector);
	pr_warn("virtio-blk: '%s': %s%s failed: %s%s",
		b->disk.path ? b->disk.path : "(memory)", what, where, strerror(err),
		n + 1 == BLK_IOERR_WARN_MAX ? " (further I/O errors not reported)" : "");
}

/* Data of an IN or OUT: whole 512-byte sectors, all inside the disk. */
static bool blk_data_ok(const struct blk_dev *b, uint64_t sector, uint64_t len)
{
	uint64_t off;

	if (len % BLK_SECTOR_SIZE || sector > UINT64_MAX / BLK_SECTOR_SIZE)
		return false;
	off = sector * BLK_SECTOR_SIZE;
	return off <= b->disk.size && len <= b->disk.size - off;
}

static uint8_t blk_req_in(struct blk_dev *b, struct iovec *iov, unsigned int cnt,
			  uint64_t len, uint64_t sector)
{
	ssize_t ret;

	if (!blk_data_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	ret = b->disk.ops->preadv(&b->disk, iov, cnt, sector * BLK_SECTOR_SIZE);
	if (ret == (ssize_t)len)
		return VIRTIO_BLK_S_OK;
	blk_warn_ioerr(b, "read", sector, len, ret < 0 ? -ret : EIO);
	return VIRTIO_BLK_S_IOERR;
}

static uint8_t blk_req_out(struct blk_dev *b, struct iovec *iov, unsigned int cnt,
			   uint64_t len, uint64_t sector)
{
	bool sync = !__atomic_load_n(&b->cfg.wce, __ATOMIC_RELAXED);
	ssize_t ret;

	/* An RO device writes no data, whatever the driver ignored. */
	if (b->opts.ro || b->disk.ro || !blk_data_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	ret = b->disk.ops->pwritev(&b->disk, iov, cnt, sector * BLK_SECTOR_SIZE, sync);
	if (ret == (ssize_t)len)
		return VIRTIO_BLK_S_OK;
	/* A failed synchronous write may have used up a write-back error. */
	if (sync)
		__atomic_store_n(&b->flush_err, ret < 0 ? (int)ret : -EIO, __ATOMIC_RELEASE);
	blk_warn_ioerr(b, "write", sector, len, ret < 0 ? -ret : EIO);
	return VIRTIO_BLK_S_IOERR;
}

int blk_flush_media(struct blk_dev *b, const char *why)
{
	int ret = b->disk.ops->flush(&b->disk);

	if (ret) {
		__atomic_store_n(&b->flush_err, ret, __ATOMIC_RELEASE);
		pr_warn("virtio-blk: '%s': %s: %s; every later FLUSH fails", b->opts.path,
			why, strerror(-ret));
	}
	return ret;
}

static uint8_t blk_req_flush(struct blk_dev *b)
{
	int ret = b->disk.ops->flush(&b->disk);

	if (!ret && !__atomic_load_n(&b->flush_err, __ATOMIC_ACQUIRE))
		return VIRTIO_BLK_S_OK;
	if (ret) {
		__atomic_store_n(&b->flush_err, ret, __ATOMIC_RELEASE);
		blk_warn_ioerr(b, "flush", 0, 0, -ret);
	}
	return VIRTIO_BLK_S_IOERR;
}

uint32_t blk_req_handle(struct blk_dev *b, struct virtq_elem *e)
{
	struct iovec *rd = e->iov, *wr = e->iov + e->nr_out, *st;
	uint8_t hdr[BLK_OUTHDR_SIZE], status;
	uint64_t sector, in_len, out_len;
	uint32_t type, used = 1;
	size_t n;

	/* Without a status byte the driver cannot learn anything: do nothing. */
	if (e->nr_in == 0 || e->nr_out + e->nr_in > VIRTQ_MAX_SEGS)
		return 0;
	st = &wr[e->nr_in - 1];
	if (st->iov_len == 0)
		return 0;

	/*
	 * The status byte is the very last writable byte; whatever precedes
	 * it in its descriptor is data.  Trim it for the duration.
	 */
	st->iov_len--;
	in_len = blk_iov_sum(wr, e->nr_in);

	/* The used length is 32 bits: a bigger IN could not be reported. */
	if (e->nr_out == 0 || rd[0].iov_len < BLK_OUTHDR_SIZE || in_len >= UINT32_MAX) {
		status = VIRTIO_BLK_S_IOERR;
		goto out;
	}
	/* Copied once: the guest may change the buffer under us. */
	memcpy(hdr, rd[0].iov_base, sizeof(hdr));
	memcpy(&type, hdr, sizeof(type));
	memcpy(&sector, hdr + 8, sizeof(sector));
	type = le32toh(type);
	sector = le64toh(sector);

	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_req_in(b, wr, e->nr_in, in_len, sector);
		if (status == VIRTIO_BLK_S_OK)
			used += in_len;
		break;
	case VIRTIO_BLK_T_OUT:
		/* Data follows the header, in its descriptor or the next ones. */
		rd[0].iov_base = (uint8_t *)rd[0].iov_base + BLK_OUTHDR_SIZE;
		rd[0].iov_len -= BLK_OUTHDR_SIZE;
		out_len = blk_iov_sum(rd, e->nr_out);
		status = blk_req_out(b, rd, e->nr_out, out_len, sector);
		rd[0].iov_base = (uint8_t *)rd[0].iov_base - BLK_OUTHDR_SIZE;
		rd[0].iov_len += BLK_OUTHDR_SIZE;
		break;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_FLUSH_OUT:
		status = blk_req_flush(b);
		break;
	case VIRTIO_BLK_T_GET_ID:
		/* 20 bytes, NUL-padded, not terminated when full (as Linux reads it). */
		n = MIN((uint64_t)BLK_ID_BYTES, in_len);
		blk_iov_fill(wr, e->nr_in, b->serial, n);
		used += n;
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
out:
	st->iov_len++;
	((uint8_t *)st->iov_base)[st->iov_len - 1] = status;
	return used;
}
