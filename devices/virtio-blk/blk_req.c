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
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/virtio-blk/blk.h"
#include "lib/util.h"

#define BLK_OUTHDR_SIZE		16	/* struct virtio_blk_outhdr */
/* A dying disk fails every request: say so a few times, not forever. */
#define BLK_IOERR_WARN_MAX	10

uint64_t blk_capacity(const struct blk_dev *b)
{
	return b->media_bytes / BLK_SECTOR_SIZE;
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
	if (disk_props(b->disk)->fd < 0 || fstat(disk_props(b->disk)->fd, &st) < 0)
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

	b->media_bytes = disk_props(b->disk)->size;
	b->media_ro = o->ro || disk_props(b->disk)->ro;
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
	blk_dwz_setup(b);
}

static uint64_t blk_iov_sum(const struct iovec *iov, unsigned int cnt)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	return total;
}

/* what: "read"/"write" (with len bytes at sector) or "flush". */
static void blk_warn_ioerr(struct blk_dev *b, const char *what, uint64_t sector, uint64_t len,
			   int err)
{
	unsigned int n = __atomic_fetch_add(&b->ioerr_warned, 1, __ATOMIC_RELAXED);
	char where[64] = "";

	if (n >= BLK_IOERR_WARN_MAX)
		return;
	if (len)
		snprintf(where, sizeof(where), " of %llu bytes at sector %llu",
			 (unsigned long long)len, (unsigned long long)sector);
	pr_warn("virtio-blk: '%s': %s%s failed: %s%s", b->opts.path, what, where, strerror(err),
		n + 1 == BLK_IOERR_WARN_MAX ? " (further I/O errors not reported)" : "");
}

/* Data of an IN or OUT: whole 512-byte sectors, all inside the disk. */
static bool blk_data_ok(const struct blk_dev *b, uint64_t sector, uint64_t len)
{
	uint64_t off;

	if (len % BLK_SECTOR_SIZE || sector > UINT64_MAX / BLK_SECTOR_SIZE)
		return false;
	off = sector * BLK_SECTOR_SIZE;
	return off <= b->media_bytes && len <= b->media_bytes - off;
}

static uint8_t blk_flush_status(struct blk_dev *b, int err)
{
	if (!err && !__atomic_load_n(&b->flush_err, __ATOMIC_ACQUIRE))
		return VIRTIO_BLK_S_OK;
	if (err) {
		__atomic_store_n(&b->flush_err, err, __ATOMIC_RELEASE);
		blk_warn_ioerr(b, "flush", 0, 0, -err);
	}
	return VIRTIO_BLK_S_IOERR;
}

uint8_t blk_req_status(struct blk_dev *b, const struct blk_req *r, int err)
{
	static const char *const what[] = {
		[BLK_REQ_READ] = "read", [BLK_REQ_WRITE] = "write",
		[BLK_REQ_DISCARD] = "discard", [BLK_REQ_WRITE_ZEROES] = "write-zeroes",
	};
	const struct blk_seg *s = &r->seg[r->cur];
	bool dwz = r->kind == BLK_REQ_DISCARD || r->kind == BLK_REQ_WRITE_ZEROES;

	if (r->kind == BLK_REQ_FLUSH)
		return blk_flush_status(b, err);
	if (!err)
		return VIRTIO_BLK_S_OK;
	/* The media stopped doing it (the disk layer remembers): not an I/O error. */
	if (dwz && err == -EOPNOTSUPP)
		return VIRTIO_BLK_S_UNSUPP;
	/* A failed synchronous write may have used up a write-back error. */
	if (r->sync)
		__atomic_store_n(&b->flush_err, err, __ATOMIC_RELEASE);
	blk_warn_ioerr(b, what[r->kind], dwz ? s->sector : r->sector,
		       dwz ? (uint64_t)s->count * BLK_SECTOR_SIZE : r->len, -err);
	return VIRTIO_BLK_S_IOERR;
}

void blk_req_disk_io(const struct blk_req *r, struct disk_io *io)
{
	static const enum disk_op ops[] = {
		[BLK_REQ_READ] = DISK_OP_READ,
		[BLK_REQ_WRITE] = DISK_OP_WRITE,
		[BLK_REQ_FLUSH] = DISK_OP_FLUSH,
		[BLK_REQ_DISCARD] = DISK_OP_DISCARD,
		[BLK_REQ_WRITE_ZEROES] = DISK_OP_WRITE_ZEROES,
	};
	const struct blk_seg *s = &r->seg[r->cur];

	io->op = ops[r->kind];
	io->flags = r->sync ? DISK_F_FUA : 0;
	io->offset = io->len = 0;
	io->iov = NULL;
	io->cnt = 0;
	switch (r->kind) {
	case BLK_REQ_READ:
	case BLK_REQ_WRITE:
		io->offset = r->sector * BLK_SECTOR_SIZE;
		io->len = r->len;
		io->iov = r->iov;
		io->cnt = r->cnt;
		break;
	case BLK_REQ_DISCARD:
	case BLK_REQ_WRITE_ZEROES:
		io->offset = s->sector * BLK_SECTOR_SIZE;
		io->len = (uint64_t)s->count * BLK_SECTOR_SIZE;
		io->flags |= s->unmap ? DISK_F_UNMAP : 0;
		break;
	default:
		break;
	}
}

bool blk_req_next(struct blk_req *r)
{
	if (r->kind != BLK_REQ_DISCARD && r->kind != BLK_REQ_WRITE_ZEROES)
		return false;
	if (r->cur + 1 >= r->nseg)
		return false;
	r->cur++;
	return true;
}

int blk_flush_media(struct blk_dev *b, const char *why)
{
	int ret = disk_flush_sync(b->disk);

	if (ret) {
		__atomic_store_n(&b->flush_err, ret, __ATOMIC_RELEASE);
		pr_warn("virtio-blk: '%s': %s: %s; every later FLUSH fails", b->opts.path,
			why, strerror(-ret));
	}
	return ret;
}

/* A request that needs no I/O: its status is known now. */
static void blk_req_set_done(struct blk_req *r, uint8_t status)
{
	r->kind = BLK_REQ_DONE;
	r->status = status;
}

/* An IN of in_len bytes (the writable buffers less the status byte). */
static void blk_parse_in(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r,
			 uint64_t in_len)
{
	if (!blk_data_ok(b, r->sector, in_len)) {
		blk_req_set_done(r, VIRTIO_BLK_S_IOERR);
	} else if (!in_len) {
		blk_req_set_done(r, VIRTIO_BLK_S_OK);
	} else {
		r->kind = BLK_REQ_READ;
		r->iov = e->iov + e->nr_out;
		r->cnt = e->nr_in;
		r->len = in_len;
	}
}

static void blk_parse_out(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r)
{
	struct iovec *rd = e->iov;

	/* Data follows the header, in its descriptor or the next ones. */
	rd[0].iov_base = (uint8_t *)rd[0].iov_base + BLK_OUTHDR_SIZE;
	rd[0].iov_len -= BLK_OUTHDR_SIZE;
	r->len = blk_iov_sum(rd, e->nr_out);
	/* An RO device writes no data, whatever the driver ignored. */
	if (b->media_ro || !blk_data_ok(b, r->sector, r->len)) {
		blk_req_set_done(r, VIRTIO_BLK_S_IOERR);
	} else if (!r->len) {
		blk_req_set_done(r, VIRTIO_BLK_S_OK);
	} else {
		r->kind = BLK_REQ_WRITE;
		r->iov = rd;
		r->cnt = e->nr_out;
		r->sync = !__atomic_load_n(&b->cfg.wce, __ATOMIC_RELAXED);
	}
}

void blk_req_parse(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r)
{
	struct iovec *rd = e->iov, *wr = e->iov + e->nr_out, *st;
	uint8_t hdr[BLK_OUTHDR_SIZE];
	uint64_t sector, in_len;
	uint32_t type;
	size_t n;

	memset(r, 0, sizeof(*r));
	r->kind = BLK_REQ_DONE;
	/*
	 * Without a status byte the driver cannot learn anything: do
	 * nothing; the used length 0 puts the device in needs-reset.
	 */
	if (e->nr_in == 0 || e->nr_out + e->nr_in > VIRTQ_MAX_SEGS)
		return;
	st = &wr[e->nr_in - 1];
	if (st->iov_len == 0)
		return;

	/*
	 * The status byte is the very last writable byte; whatever precedes
	 * it in its descriptor is data.  Trim it off for good: the elem is
	 * ours, and nothing after the parse needs its full length.
	 */
	st->iov_len--;
	r->status_byte = (uint8_t *)st->iov_base + st->iov_len;
	r->used = 1;
	in_len = blk_iov_sum(wr, e->nr_in);

	/* The used length is 32 bits: a bigger IN could not be reported. */
	if (e->nr_out == 0 || rd[0].iov_len < BLK_OUTHDR_SIZE || in_len >= UINT32_MAX) {
		blk_req_set_done(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	/* Copied once: the guest may change the buffer under us. */
	memcpy(hdr, rd[0].iov_base, sizeof(hdr));
	memcpy(&type, hdr, sizeof(type));
	memcpy(&sector, hdr + 8, sizeof(sector));
	type = le32toh(type);
	sector = le64toh(sector);
	r->sector = sector;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		blk_parse_in(b, e, r, in_len);
		break;
	case VIRTIO_BLK_T_OUT:
		blk_parse_out(b, e, r);
		break;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_FLUSH_OUT:
		r->kind = BLK_REQ_FLUSH;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		blk_dwz_parse(b, e, r, type);
		break;
	case VIRTIO_BLK_T_GET_ID:
		/* 20 bytes, NUL-padded, not terminated when full (as Linux reads it). */
		n = MIN((uint64_t)BLK_ID_BYTES, in_len);
		iov_from_buf(wr, e->nr_in, 0, b->serial, n);
		r->used += n;
		blk_req_set_done(r, VIRTIO_BLK_S_OK);
		break;
	default:
		blk_req_set_done(r, VIRTIO_BLK_S_UNSUPP);
		break;
	}
}

uint32_t blk_req_finish(const struct blk_req *r, uint8_t status)
{
	uint32_t used = r->used;

	if (!r->status_byte)
		return 0;
	/* Only a successful IN reports its data as written. */
	if (r->kind == BLK_REQ_READ && status == VIRTIO_BLK_S_OK)
		used += r->len;
	*r->status_byte = status;
	return used;
}

uint32_t blk_req_refuse(struct virtq_elem *e)
{
	if (!e->tail)
		return 0;
	*e->tail = VIRTIO_BLK_S_IOERR;
	return 1;
}

/* The request's disk operation, waiting for it when the disk submits it. */
static uint8_t blk_req_exec_sync(struct blk_dev *b, struct blk_req *r)
{
	struct pollfd pfd = { .fd = disk_notify_fd(b->disk), .events = POLLIN };
	struct disk_done done = { 0 };
	struct disk_io io;
	int ret;

	if (r->kind == BLK_REQ_DONE)
		return r->status;
	do {
		blk_req_disk_io(r, &io);
		ret = disk_submit(b->disk, &io);
		if (ret == DISK_SUBMITTED) {
			/* Nothing else is in flight: the one completion is ours. */
			disk_commit(b->disk);
			while (!disk_reap(b->disk, &done, 1))
				poll(&pfd, 1, -1);
			ret = done.result;
		}
	} while (!ret && blk_req_next(r));
	return blk_req_status(b, r, ret);
}

uint32_t blk_req_handle(struct blk_dev *b, struct virtq_elem *e)
{
	unsigned int n = e->nr_out + e->nr_in;
	struct iovec first, last;
	uint32_t used;
	struct blk_req r;
	bool keep = n > 0 && n <= VIRTQ_MAX_SEGS;

	/* The parse trims the header and the status byte; give them back. */
	if (keep) {
		first = e->iov[0];
		last = e->iov[n - 1];
	}
	blk_req_parse(b, e, &r);
	used = blk_req_finish(&r, blk_req_exec_sync(b, &r));
	if (keep) {
		e->iov[0] = first;
		e->iov[n - 1] = last;
	}
	return used;
}
