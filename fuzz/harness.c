// SPDX-License-Identifier: MIT
/*
 * Fuzz harness for the virtio-blk request path: the split virtqueue walk
 * (devices/virtio/virtq.c) and request parsing and handling
 * (devices/virtio-blk/blk_req.c) against a memory disk (disk/mem.h)
 * under the fault filter (disk/fault.h), the way the device's queue
 * thread drives them, but synchronously:
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
 *	byte 1     ring PFN: (b & 0x7f) % 17 (16 is past the 64 KiB of RAM:
 *	           refused); bit 7: the ring in VIRTIO_RING_F_EVENT_IDX mode
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
 * only reads, writes, flushes, discards and write-zeroes (the last two
 * only when the driver accepted them), whole sectors inside the disk,
 * and nothing that changes data on a read-only device (the filter's
 * trace sees every op that gets past the disk layer's own checks); a
 * write, or a write-zeroes, is FUA exactly in writethru, and UNMAP is
 * only ever on a write-zeroes; with media that fail nothing, no request gets an I/O error
 * (so the layer refused nothing the device handed it); the device lays
 * the ring out where the driver (tests/driver, Linux's vring_init())
 * does, and each used entry, read as the driver reaps it, names the
 * head popped and the length the request got;
 * blk_req_handle() leaves the element's iovecs inside guest RAM, reports
 * no more than the writable length, and a non-zero used length means a
 * valid status byte in the last writable byte.  And every popped chain
 * with a status byte gets one: fz_ref_tail(), a walk of the descriptors
 * written here apart from virtq.c, says whether the chain's links lead
 * to a last descriptor that is device-writable, not empty and ends in
 * RAM; if so, the request must be completed with a used length of at
 * least 1 and a status value in that last byte (a refused chain: IOERR
 * there, through the elem's tail), and otherwise a refused chain must
 * be completed with 0 and write nothing.  With EVENT_IDX, each interrupt
 * decision is vring_need_event() of the used_event in RAM against the
 * used index of the decision before (the first one always interrupts),
 * and turning notifications on leaves avail_event at what was popped.
 *
 * The disk is opened afresh for every input (its flags pick ro media and
 * which ops fail), so no input depends on the ones before it.
 *
 * This drives blk_req_handle(), i.e. blk_req_parse() and the disk layer
 * (disk/disk.c) over the memory engine; the queue thread (blk_queue.c)
 * shares the parse but batches its I/O, and the file engines (threads,
 * io_uring) are not covered here.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio-blk/blk.h"
#include "devices/virtio/virtq.h"
#include "disk/fault.h"
#include "disk/mem.h"
#include "fuzz/harness.h"
#include "lib/util.h"
#include "lib/guest_mem.h"
#include "tests/driver/vdriver.h"

#define FZ_RAM_SIZE	(64 * 1024)
#define FZ_DISK_SIZE	(32 * 1024)
#define FZ_HDR_SIZE	5
/* An IN may keep rewriting avail->idx ahead of us: bound the loop. */
#define FZ_MAX_POPS	4096

#define FZ_F_WRITEBACK	0x01	/* cfg.wce = 1: OUT is not synchronous */
#define FZ_F_RO_OPT	0x02	/* the device is ro (opts.ro) */
#define FZ_F_RO_DISK	0x04	/* the media is ro (zero-filled: it cannot be written) */
#define FZ_F_SERIAL	0x08	/* a full 20-byte serial (GET_ID) */
#define FZ_F_FLUSH_ERR	0x10	/* a sticky flush error from before */
#define FZ_F_FAIL_FLUSH	0x20	/* the media's flush fails */
#define FZ_F_FAIL_RW	0x40	/* the media's reads, writes, discards and zeroes fail */
#define FZ_F_NO_DWZ	0x80	/* the driver did not accept DISCARD/WRITE_ZEROES */

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
	struct blk_dev b;		/* b.disk: memory, under a fault filter */
	struct virtq q;
	struct vdrv drv;		/* the driver's view of the same ring */
	struct virtq_elem e;
	struct iovec saved[VIRTQ_MAX_SEGS];
	uint8_t disk_image[FZ_DISK_SIZE];	/* the media at the start of every input */
	uint8_t flags;
	bool evidx_valid;		/* EVENT_IDX: a decision was made ... */
	uint16_t evidx_old;		/* ... at this used index */
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

/*
 * An op that got past the disk layer's checks (the fault filter's
 * trace): what the device may hand the disk.
 */
static void fz_check_io(const struct disk_io *io)
{
	uint32_t want_flags = 0;
	uint64_t total = 0;
	unsigned int i;

	FZ_CHECK(io->op <= DISK_OP_WRITE_ZEROES);
	if (io->op == DISK_OP_FLUSH)
		return;
	if (io->op != DISK_OP_READ) {
		/* An ro device must never change data, whatever the driver negotiated. */
		FZ_CHECK(!fz.b.opts.ro && !disk_props(fz.b.disk)->ro);
		if (!fz.b.cfg.wce && io->op != DISK_OP_DISCARD)
			want_flags = DISK_F_FUA;
	}
	if (io->op == DISK_OP_DISCARD || io->op == DISK_OP_WRITE_ZEROES) {
		/* Only what the driver accepted; the guest's unmap on zeroes alone. */
		FZ_CHECK(!(fz.flags & FZ_F_NO_DWZ));
		FZ_CHECK((io->flags & ~(DISK_F_ALONE | DISK_F_UNMAP)) == want_flags);
		FZ_CHECK(io->op == DISK_OP_WRITE_ZEROES || !(io->flags & DISK_F_UNMAP));
		FZ_CHECK(io->len > 0 && io->len <= (uint64_t)BLK_DWZ_MAX_SECTORS * BLK_SECTOR_SIZE);
		FZ_CHECK(io->offset % BLK_SECTOR_SIZE == 0 && io->len % BLK_SECTOR_SIZE == 0);
		FZ_CHECK(io->offset <= FZ_DISK_SIZE && io->len <= FZ_DISK_SIZE - io->offset);
		return;
	}
	/* Writethru writes are FUA, and nothing else is (ALONE is only a hint). */
	FZ_CHECK((io->flags & ~DISK_F_ALONE) == want_flags);
	FZ_CHECK(io->cnt > 0 && io->cnt <= VIRTQ_MAX_SEGS);
	for (i = 0; i < io->cnt; i++) {
		FZ_CHECK(fz_in_ram(io->iov[i].iov_base, io->iov[i].iov_len));
		total += io->iov[i].iov_len;
	}
	FZ_CHECK(total == io->len && io->len > 0);
	FZ_CHECK(io->offset % BLK_SECTOR_SIZE == 0 && io->len % BLK_SECTOR_SIZE == 0);
	FZ_CHECK(io->offset <= FZ_DISK_SIZE && io->len <= FZ_DISK_SIZE - io->offset);
}

static void fz_trace(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		     uint64_t cookie, int result)
{
	/* The memory engine answers every op at once: nothing is ever reaped. */
	FZ_CHECK(ev == DISK_FAULT_SUBMIT || ev == DISK_FAULT_DONE_NOW);
	/* The op the engine got, or the one a rule refused before it could. */
	fz_check_io(io);
}

/* A fresh disk for the input: FZ_DISK_SIZE bytes of fz.disk_image (zeros if ro). */
static void fz_open_disk(uint8_t flags)
{
	struct iovec iov = { .iov_base = fz.disk_image, .iov_len = FZ_DISK_SIZE };
	struct disk_io fill = {
		.op = DISK_OP_WRITE, .len = FZ_DISK_SIZE, .iov = &iov, .cnt = 1,
	};
	struct disk_fault_rule rules[2];
	unsigned int n = 0;

	disk_close(fz.b.disk);
	fz.b.disk = NULL;
	if (disk_open_mem(&fz.b.disk, FZ_DISK_SIZE, flags & FZ_F_RO_DISK))
		fz_fail(__FILE__, __LINE__, "memory disk set-up");
	if (!(flags & FZ_F_RO_DISK) && disk_submit(fz.b.disk, &fill) != 0)
		fz_fail(__FILE__, __LINE__, "memory disk fill");
	memset(rules, 0, sizeof(rules));
	if (flags & FZ_F_FAIL_RW) {
		/* Refused before the media: no data moves either way. */
		rules[n].ops = 1u << DISK_OP_READ | 1u << DISK_OP_WRITE | 1u << DISK_OP_DISCARD |
			       1u << DISK_OP_WRITE_ZEROES;
		rules[n++].error = -EIO;
	}
	if (flags & FZ_F_FAIL_FLUSH) {
		rules[n].ops = 1u << DISK_OP_FLUSH;
		rules[n++].error = -EIO;
	}
	if (disk_fault_wrap(fz.b.disk, rules, n))
		fz_fail(__FILE__, __LINE__, "fault filter set-up");
	disk_fault_set_trace(fz.b.disk, fz_trace, NULL);
}

static void fz_init(void)
{
	size_t i;

	if (fz.init)
		return;
	if (gmem_init(&fz.gm, FZ_RAM_SIZE) || fz.gm.nr_regions != 1 ||
	    fz.gm.region[0].gpa != 0 || fz.gm.region[0].size != FZ_RAM_SIZE)
		fz_fail(__FILE__, __LINE__, "guest RAM set-up");
	fz.ram = fz.gm.region[0].hva;
	fz.b.disk = NULL;
	fz.b.q[0].wake_efd = -1;
	fz.b.q[0].kick_fd = -1;
	if (blk_opts_parse("mem", &fz.b.opts))
		fz_fail(__FILE__, __LINE__, "device options");
	/* Not zeros: a read should bring something recognisable in. */
	for (i = 0; i < FZ_DISK_SIZE; i++)
		fz.disk_image[i] = (uint8_t)(i * 7 + (i >> 9));
	fz.init = true;
}

void fuzz_fini(void)
{
	if (fz.init) {
		disk_close(fz.b.disk);
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
	b->opts.has_serial = flags & FZ_F_SERIAL;
	memset(b->opts.serial, 0, sizeof(b->opts.serial));
	if (b->opts.has_serial)
		memcpy(b->opts.serial, "FUZZ-SERIAL-0123456", BLK_ID_BYTES);
	fz_open_disk(flags);
	b->features = 0;
	blk_dev_setup_media(b);
	/* The driver accepts every feature offered, or all but DISCARD/WRITE_ZEROES. */
	b->vp.guest_features = (uint32_t)b->features;
	if (flags & FZ_F_NO_DWZ)
		b->vp.guest_features &= ~(1u << VIRTIO_BLK_F_DISCARD | 1u << VIRTIO_BLK_F_WRITE_ZEROES);
	b->flush_err = (flags & FZ_F_FLUSH_ERR) ? -EIO : 0;
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

/*
 * The interrupt decision after a completion, and with EVENT_IDX what it
 * must be (Linux's vring_need_event against a model of the device's
 * last decision), and avail_event after notifications go back on.
 */
static void fz_decide(void)
{
	uint16_t new = fz.q.used_idx, ue;
	bool want, no_irq;

	if (!virtq_has_event_idx(&fz.q)) {
		(void)virtq_no_interrupt(&fz.q);
		return;
	}
	/* Read before the decision: the device reads the same guest bytes. */
	ue = *fz.drv.used_event;
	want = !fz.evidx_valid || vdrv_need_event(ue, new, fz.evidx_old);
	no_irq = virtq_no_interrupt(&fz.q);
	FZ_CHECK(no_irq == !want);
	fz.evidx_valid = true;
	fz.evidx_old = new;
	virtq_set_notify(&fz.q, true);
	FZ_CHECK(*fz.drv.avail_event == fz.q.last_avail);
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
	struct vdrv_desc d;
	uint64_t table = fz.drv.desc_gpa, end;
	unsigned int size = num, taken = 0, i = head;
	bool in_table = false;

	for (;;) {
		if (taken++ == size)
			return FZ_NO_TAIL;
		/* In RAM: the ring was, and a table is checked before it is entered. */
		FZ_CHECK(vdrv_desc_get(&fz.gm, table, i, &d) == 0);
		if (d.flags & VDRV_DESC_F_INDIRECT) {
			if (in_table || taken != 1 || (d.flags & VDRV_DESC_F_NEXT) || !d.len ||
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
		if (!(d.flags & VDRV_DESC_F_NEXT))
			break;
		if (d.next >= size)
			return FZ_NO_TAIL;
		i = d.next;
	}
	if (!(d.flags & VDRV_DESC_F_WRITE) || !d.len)
		return FZ_NO_TAIL;
	end = d.addr + (d.len - 1);
	return end >= d.addr && end < FZ_RAM_SIZE ? end : FZ_NO_TAIL;
}

/* Serve one popped chain (r: VIRTQ_OK or VIRTQ_BAD_CHAIN) and complete it. */
static void fz_serve(enum virtq_pop_result r, uint16_t num)
{
	uint64_t tail = fz_ref_tail(fz.e.head, num);
	const uint8_t *t = tail == FZ_NO_TAIL ? NULL : fz.ram + tail;
	uint32_t used, id, len;

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
	/* What the driver reaps: this head, this length, published. */
	FZ_CHECK(vdrv_used_idx(&fz.drv) == fz.q.used_idx);
	vdrv_used_elem(&fz.drv, fz.q.used_idx - 1, &id, &len);
	FZ_CHECK(id == fz.e.head && len == used);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	uint8_t hdr[FZ_HDR_SIZE] = { 0 };
	const uint8_t *body = data + FZ_HDR_SIZE;
	size_t body_len = size > FZ_HDR_SIZE ? size - FZ_HDR_SIZE : 0;
	enum virtq_pop_result r;
	uint16_t num, start;
	unsigned int warned;
	uint32_t pfn;
	uint64_t base;
	unsigned int pops;
	size_t i;

	fz_init();
	memcpy(hdr, data, MIN(size, sizeof(hdr)));
	num = 1u << (hdr[0] % 11);
	pfn = (hdr[1] & 0x7f) % 17;
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
	FZ_CHECK(vdrv_ring_init(&fz.drv, &fz.gm, num, base) == 0);
	FZ_CHECK(fz.drv.desc_gpa == fz.q.desc_gpa && fz.drv.avail_gpa == fz.q.avail_gpa &&
		 fz.drv.used_gpa == fz.q.used_gpa);
	fz.q.last_avail = start;
	fz.q.used_idx = start;
	virtq_set_event_idx(&fz.q, hdr[1] & 0x80);
	fz.evidx_valid = false;
	warned = fz.b.ioerr_warned;

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
		fz_decide();
	}
	/* Every head popped was completed exactly once. */
	FZ_CHECK(fz.q.used_idx == (uint16_t)(start + pops));
	/*
	 * Media that fail nothing fail no request: an I/O error would mean
	 * the disk layer refused an op the device should not have made.
	 */
	if (!(fz.flags & (FZ_F_FAIL_RW | FZ_F_FAIL_FLUSH)))
		FZ_CHECK(fz.b.ioerr_warned == warned);
	virtq_reset(&fz.q);
	return 0;
}
