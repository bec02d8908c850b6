// SPDX-License-Identifier: MIT
/*
 * Fuzz harness for the virtio-blk request path: the split virtqueue walk
 * (devices/virtio/virtq.c) and request parsing and handling
 * (devices/virtio-blk/blk_req.c) against a memory disk, the way the
 * device's queue thread and workers drive them, but synchronously:
 *
 *	virtq_pop -> VIRTQ_OK        -> blk_req_handle -> virtq_push(used)
 *	          -> VIRTQ_BAD_CHAIN -> blk_req_refuse -> virtq_push(used)
 *	          -> VIRTQ_BROKEN    -> stop
 *
 * (The device stops its queue after a used length of 0, until a reset;
 * the harness goes on popping, to cover more chains per input.)
 *
 * Input layout (every input is valid; short ones are padded with zeros):
 *
 *	byte 0     queue size: 1 << (b % 11), so 1..1024
 *	byte 1     ring PFN: b % 17 (16 is past the 64 KiB of RAM: refused)
 *	byte 2     flags, see FZ_F_* below
 *	bytes 3-4  starting index (le16) of both rings, as if that many
 *	           requests had come and gone (index wrap-around)
 *	byte 5..   guest RAM from the ring's first byte (gpa PFN * 4096)
 *	           on, wrapping at the end of RAM to gpa 0
 *
 * So a short input is a descriptor table (16 bytes per entry), then the
 * avail ring at 16 * size; buffers may be anywhere in RAM, the ring
 * included, and an IN request may overwrite the ring it came from.
 *
 * Checked beyond what ASan/UBSan see: every iovec the walk returns and
 * every buffer handed to the disk lies inside guest RAM; the disk sees
 * only whole sectors inside the disk, and no write at all on a
 * read-only device; a write is synchronous exactly in writethru;
 * blk_req_handle() leaves the element's iovecs inside guest RAM, reports
 * no more than the writable length, and a non-zero used length means a
 * valid status byte in the last writable byte.  And every popped chain
 * with a status byte gets one: fz_ref_tail(), a walk of the descriptors
 * written here apart from virtq.c, says whether the chain's links lead
 * to a last descriptor that is device-writable, not empty and ends in
 * RAM; if so, the request must be completed with a used length of at
 * least 1 and a status value in that last byte (a refused chain: IOERR
 * there, through the elem's tail), and otherwise a refused chain must
 * be completed with 0 and write nothing.
 *
 * This drives blk_req_handle(), i.e. blk_req_parse() and the disk ops
 * table as the threads engine does; the io_uring engine (blk_uring.c)
 * shares the parse but submits its I/O itself and is not covered here.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio-blk/blk.h"
#include "devices/virtio/virtq.h"
#include "fuzz/harness.h"
#include "lib/util.h"
#include "lib/guest_mem.h"

#define FZ_RAM_SIZE	(64 * 1024)
#define FZ_DISK_SIZE	(32 * 1024)
#define FZ_HDR_SIZE	5
/* An IN may keep rewriting avail->idx ahead of us: bound the loop. */
#define FZ_MAX_POPS	4096

#define FZ_F_WRITEBACK	0x01	/* cfg.wce = 1: OUT is not synchronous */
#define FZ_F_RO_OPT	0x02	/* the device is ro (opts.ro) */
#define FZ_F_RO_DISK	0x04	/* the media is ro (disk.ro) */
#define FZ_F_SERIAL	0x08	/* a full 20-byte serial (GET_ID) */
#define FZ_F_FLUSH_ERR	0x10	/* a sticky flush error from before */
#define FZ_F_FAIL_FLUSH	0x20	/* the media's flush fails */
#define FZ_F_FAIL_RW	0x40	/* the media's reads and writes fail */

#define FZ_NO_TAIL	UINT64_MAX

#define FZ_CHECK(cond)                                                                  \
	do {                                                                            \
		if (!(cond))                                                            \
			fz_fail(__FILE__, __LINE__, #cond);                             \
	} while (0)

static struct {
	bool init;
	struct guest_mem gm;
	uint8_t *ram;			/* host view of the one RAM region */
	struct blk_dev b;
	const struct disk_ops *mem_ops;	/* the memory back end we wrap */
	struct virtq q;
	struct virtq_elem e;
	struct iovec saved[VIRTQ_MAX_SEGS];
	uint8_t disk_image[FZ_DISK_SIZE];	/* the media at the start of every input */
	uint8_t flags;
} fz;

static void __attribute__((noreturn)) fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "fuzz harness: %s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

/* [p, p+len) inside guest RAM (len 0: p anywhere in [ram, ram+size]). */
static bool fz_in_ram(const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= fz.ram && b <= fz.ram + FZ_RAM_SIZE &&
	       len <= (size_t)(fz.ram + FZ_RAM_SIZE - b);
}

/* What the device may hand the disk: checked, then passed on. */
static uint64_t fz_check_io(const struct iovec *iov, int cnt, uint64_t off)
{
	uint64_t total = 0;
	int i;

	FZ_CHECK(cnt >= 0 && cnt <= VIRTQ_MAX_SEGS);
	for (i = 0; i < cnt; i++) {
		FZ_CHECK(fz_in_ram(iov[i].iov_base, iov[i].iov_len));
		total += iov[i].iov_len;
	}
	FZ_CHECK(off % BLK_SECTOR_SIZE == 0 && total % BLK_SECTOR_SIZE == 0);
	FZ_CHECK(off <= FZ_DISK_SIZE && total <= FZ_DISK_SIZE - off);
	return total;
}

static ssize_t fz_preadv(struct disk *d, const struct iovec *iov, int cnt, uint64_t off)
{
	fz_check_io(iov, cnt, off);
	if (fz.flags & FZ_F_FAIL_RW)
		return -EIO;
	return fz.mem_ops->preadv(d, iov, cnt, off);
}

static ssize_t fz_pwritev(struct disk *d, const struct iovec *iov, int cnt, uint64_t off,
			  bool sync)
{
	fz_check_io(iov, cnt, off);
	/* An ro device must never write, whatever the driver negotiated. */
	FZ_CHECK(!fz.b.opts.ro && !d->ro);
	FZ_CHECK(sync == !fz.b.cfg.wce);
	if (fz.flags & FZ_F_FAIL_RW)
		return -EIO;
	return fz.mem_ops->pwritev(d, iov, cnt, off, sync);
}

static int fz_flush(struct disk *d)
{
	if (fz.flags & FZ_F_FAIL_FLUSH)
		return -EIO;
	return fz.mem_ops->flush(d);
}

static void fz_close(struct disk *d)
{
	fz.mem_ops->close(d);
}

static const struct disk_ops fz_disk_ops = {
	.preadv = fz_preadv,
	.pwritev = fz_pwritev,
	.flush = fz_flush,
	.close = fz_close,
};

static void fz_init(void)
{
	size_t i;

	if (fz.init)
		return;
	if (gmem_init(&fz.gm, FZ_RAM_SIZE) || fz.gm.nr_regions != 1 ||
	    fz.gm.region[0].gpa != 0 || fz.gm.region[0].size != FZ_RAM_SIZE)
		fz_fail(__FILE__, __LINE__, "guest RAM set-up");
	fz.ram = fz.gm.region[0].hva;
	fz.b.disk.fd = -1;
	fz.b.stop_efd = -1;
	if (blk_opts_parse("mem", &fz.b.opts) || disk_open_mem(&fz.b.disk, FZ_DISK_SIZE))
		fz_fail(__FILE__, __LINE__, "memory disk set-up");
	/* Not zeros: a read should bring something recognisable in. */
	for (i = 0; i < FZ_DISK_SIZE; i++)
		fz.disk_image[i] = (uint8_t)(i * 7 + (i >> 9));
	fz.mem_ops = fz.b.disk.ops;
	fz.b.disk.ops = &fz_disk_ops;
	fz.init = true;
}

void fuzz_fini(void)
{
	if (fz.init) {
		disk_close(&fz.b.disk);
		blk_opts_free(&fz.b.opts);
		gmem_free(&fz.gm);
		memset(&fz.b, 0, sizeof(fz.b));
		fz.init = false;
	}
}

/* Per input: the same device, media and RAM state every time. */
static void fz_reset_dev(uint8_t flags)
{
	struct blk_dev *b = &fz.b;

	fz.flags = flags;
	b->opts.writeback = flags & FZ_F_WRITEBACK;
	b->opts.ro = flags & FZ_F_RO_OPT;
	b->disk.ro = flags & FZ_F_RO_DISK;
	b->opts.has_serial = flags & FZ_F_SERIAL;
	memset(b->opts.serial, 0, sizeof(b->opts.serial));
	if (b->opts.has_serial)
		memcpy(b->opts.serial, "FUZZ-SERIAL-0123456", BLK_ID_BYTES);
	blk_dev_setup_media(b);
	b->flush_err = (flags & FZ_F_FLUSH_ERR) ? -EIO : 0;
	memcpy(b->disk.priv, fz.disk_image, FZ_DISK_SIZE);
}

static void fz_check_elem(const struct virtq_elem *e, uint16_t num)
{
	uint64_t out = 0, in = 0;
	unsigned int i;

	FZ_CHECK(e->head < num);
	FZ_CHECK(e->nr_out + e->nr_in <= VIRTQ_MAX_SEGS);
	for (i = 0; i < e->nr_out + e->nr_in; i++) {
		FZ_CHECK(fz_in_ram(e->iov[i].iov_base, e->iov[i].iov_len));
		FZ_CHECK(e->iov[i].iov_len > 0);
		if (i < e->nr_out)
			out += e->iov[i].iov_len;
		else
			in += e->iov[i].iov_len;
	}
	FZ_CHECK(out == e->out_len && in == e->in_len);
}

/* A popped good chain, handled as a worker does; returns the used length. */
static uint32_t fz_handle(struct virtq_elem *e)
{
	unsigned int i, n = e->nr_out + e->nr_in;
	const struct iovec *st;
	uint32_t used;

	memcpy(fz.saved, e->iov, n * sizeof(e->iov[0]));
	used = blk_req_handle(&fz.b, e);
	/* The parse may trim the elem's iovecs, never grow or move them out. */
	for (i = 0; i < n; i++)
		FZ_CHECK(fz_in_ram(e->iov[i].iov_base, e->iov[i].iov_len));
	FZ_CHECK(used <= e->in_len);
	if (used) {
		/* The status went to the very last writable byte. */
		FZ_CHECK(e->nr_in > 0);
		st = &fz.saved[n - 1];
		FZ_CHECK(((const uint8_t *)st->iov_base)[st->iov_len - 1] <= VIRTIO_BLK_S_UNSUPP);
	}
	return used;
}

/* A refused chain, as the engines complete it; returns the used length. */
static uint32_t fz_refuse(struct virtq_elem *e)
{
	uint32_t used;

	FZ_CHECK(e->nr_out == 0 && e->nr_in == 0);
	if (e->tail)
		FZ_CHECK(fz_in_ram(e->tail, 1));
	used = blk_req_refuse(e);
	FZ_CHECK(used == (e->tail ? 1 : 0));
	return used;
}

/*
 * The reference for "a status byte, if there is one, is written": the
 * guest address of the last byte of head's chain when the chain's
 * links (and an indirect table in its lone head) lead to a last
 * descriptor that is device-writable, not empty and ends in RAM;
 * FZ_NO_TAIL otherwise (a loop, a next or a table out of bounds, an
 * indirect descriptor anywhere but alone in the head).
 * Deliberately not virtq.c's code.
 */
static uint64_t fz_ref_tail(uint16_t head, uint16_t num)
{
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} d;
	uint64_t table = fz.q.desc_gpa, end;
	unsigned int size = num, taken = 0, i = head;
	bool in_table = false;

	for (;;) {
		if (taken++ == size)
			return FZ_NO_TAIL;
		memcpy(&d, fz.ram + table + 16ULL * i, sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (in_table || taken != 1 || (d.flags & VRING_DESC_F_NEXT) || !d.len ||
			    d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE ||
			    d.addr >= FZ_RAM_SIZE || d.len > FZ_RAM_SIZE - d.addr)
				return FZ_NO_TAIL;
			table = d.addr;
			size = d.len / 16;
			taken = 0;
			i = 0;
			in_table = true;
			continue;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= size)
			return FZ_NO_TAIL;
		i = d.next;
	}
	if (!(d.flags & VRING_DESC_F_WRITE) || !d.len)
		return FZ_NO_TAIL;
	end = d.addr + (d.len - 1);
	return end >= d.addr && end < FZ_RAM_SIZE ? end : FZ_NO_TAIL;
}

/* Serve one popped chain (r: VIRTQ_OK or VIRTQ_BAD_CHAIN) and complete it. */
static void fz_serve(enum virtq_pop_result r, uint16_t num)
{
	uint64_t tail = fz_ref_tail(fz.e.head, num);
	const uint8_t *t = tail == FZ_NO_TAIL ? NULL : fz.ram + tail;
	uint32_t used;

	if (r == VIRTQ_BAD_CHAIN) {
		/* virtq.c and the reference agree on where the status is. */
		FZ_CHECK(fz.e.tail == t);
		used = fz_refuse(&fz.e);
	} else {
		FZ_CHECK(!fz.e.tail);
		fz_check_elem(&fz.e, num);
		used = fz_handle(&fz.e);
	}
	/* Before the push, which may write over it (a status in the used ring). */
	if (t) {
		FZ_CHECK(used >= 1);
		FZ_CHECK(*t <= VIRTIO_BLK_S_UNSUPP);
		if (r == VIRTQ_BAD_CHAIN)
			FZ_CHECK(*t == VIRTIO_BLK_S_IOERR);
	}
	virtq_push(&fz.q, fz.e.head, used);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	uint8_t hdr[FZ_HDR_SIZE] = { 0 };
	const uint8_t *body = data + FZ_HDR_SIZE;
	size_t body_len = size > FZ_HDR_SIZE ? size - FZ_HDR_SIZE : 0;
	enum virtq_pop_result r;
	uint16_t num, start, used_idx;
	uint32_t pfn;
	uint64_t base;
	unsigned int pops;
	size_t i;

	fz_init();
	memcpy(hdr, data, MIN(size, sizeof(hdr)));
	num = 1u << (hdr[0] % 11);
	pfn = hdr[1] % 17;
	start = (uint16_t)(hdr[3] | hdr[4] << 8);
	fz_reset_dev(hdr[2]);

	memset(fz.ram, 0, FZ_RAM_SIZE);
	base = (uint64_t)pfn * 4096;
	body_len = MIN(body_len, (size_t)FZ_RAM_SIZE);
	for (i = 0; i < body_len; i++)
		fz.ram[(base + i) % FZ_RAM_SIZE] = body[i];

	if (virtq_init_legacy(&fz.q, &fz.gm, num, pfn)) {
		/* Refused only when the ring does not fit in RAM. */
		FZ_CHECK(base + virtq_legacy_size(num) > FZ_RAM_SIZE);
		return 0;
	}
	FZ_CHECK(base + virtq_legacy_size(num) <= FZ_RAM_SIZE);
	fz.q.last_avail = start;
	fz.q.used_idx = start;

	for (pops = 0; pops < FZ_MAX_POPS; pops++) {
		r = virtq_pop(&fz.q, &fz.e);
		if (r == VIRTQ_EMPTY)
			break;
		if (r == VIRTQ_BROKEN) {
			FZ_CHECK(fz.q.broken);
			/* Broken stays broken. */
			FZ_CHECK(virtq_pop(&fz.q, &fz.e) == VIRTQ_BROKEN);
			break;
		}
		FZ_CHECK(r == VIRTQ_OK || r == VIRTQ_BAD_CHAIN);
		FZ_CHECK(fz.e.head < num);
		fz_serve(r, num);
		/* The used index was published where the driver reads it. */
		memcpy(&used_idx, fz.ram + fz.q.used_gpa + 2, sizeof(used_idx));
		FZ_CHECK(used_idx == fz.q.used_idx);
		(void)virtq_no_interrupt(&fz.q);
	}
	/* Every head popped was completed exactly once. */
	FZ_CHECK(fz.q.used_idx == (uint16_t)(start + pops));
	virtq_reset(&fz.q);
	return 0;
}
