// SPDX-License-Identifier: MIT
/*
 * The device side of the split ring, driven the way Linux's virtio_ring.c
 * fills it, and then the way a hostile driver would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtq.h"
#include "lib/guest_mem.h"
#include "tests/driver/vdriver.h"

#define RAM_SIZE	(16ULL << 20)
#define RING_PFN	0x10		/* ring at 64 KiB */
#define RING_GPA	((uint64_t)RING_PFN << 12)
#define QSIZE		16

/* Buffers a request points at. */
#define HDR_GPA		0x100000ULL
#define DATA_GPA	0x101000ULL
#define STATUS_GPA	0x102000ULL
#define TABLE_GPA	0x200000ULL

struct drv {
	struct guest_mem gm;
	struct virtq q;			/* the device's side */
	struct vdrv v;			/* the driver's: a bare ring (tests/driver) */
	struct virtq_elem e;
};

static void put16(struct drv *d, uint64_t gpa, uint16_t v)
{
	assert_int_equal(gmem_write(&d->gm, gpa, &v, sizeof(v)), 0);
}

/* used->idx, and the id or len of the used entry in slot i. */
static uint16_t used_idx(struct drv *d)
{
	return vdrv_used_idx(&d->v);
}

static uint32_t used_id(struct drv *d, uint16_t i)
{
	uint32_t id;

	vdrv_used_elem(&d->v, i, &id, NULL);
	return id;
}

static uint32_t used_len(struct drv *d, uint16_t i)
{
	uint32_t len;

	vdrv_used_elem(&d->v, i, NULL, &len);
	return len;
}

/* One vring_desc, at table_gpa[i] (the ring's table or an indirect one). */
static void desc_at(struct drv *d, uint64_t table_gpa, uint16_t i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	assert_int_equal(vdrv_desc_at(&d->gm, table_gpa, i, addr, len, flags, next), 0);
}

static void desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	desc_at(d, d->v.desc_gpa, i, addr, len, flags, next);
}

/* virtqueue_add + kick: put head in the avail ring, then bump avail->idx. */
static void publish(struct drv *d, uint16_t head)
{
	vdrv_avail_push(&d->v, head);
}

static struct drv *drv_new(uint16_t num)
{
	struct drv *d = test_calloc(1, sizeof(*d));

	assert_non_null(d);
	assert_int_equal(gmem_init(&d->gm, RAM_SIZE), 0);
	assert_int_equal(vdrv_ring_init(&d->v, &d->gm, num, RING_GPA), 0);
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, num, RING_PFN), 0);
	return d;
}

static int setup(void **state)
{
	*state = drv_new(QSIZE);
	return 0;
}

static int teardown(void **state)
{
	struct drv *d = *state;

	gmem_free(&d->gm);
	test_free(d);
	return 0;
}

/* Start both ring indices at idx, as if idx requests had come and gone. */
static void drv_set_index(struct drv *d, uint16_t idx)
{
	d->v.avail_shadow = d->v.last_used = idx;
	put16(d, d->v.avail_gpa + 2, idx);
	put16(d, d->v.used_gpa + 2, idx);
	d->q.last_avail = idx;
	d->q.used_idx = idx;
}

/* The virtio-blk framing Linux uses: header R, data W, status W. */
static void blk_chain(struct drv *d, uint16_t h, uint16_t a, uint16_t b)
{
	desc(d, h, HDR_GPA, 16, VRING_DESC_F_NEXT, a);
	desc(d, a, DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, b);
	desc(d, b, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
}

static void assert_blk_elem(struct drv *d, uint16_t head)
{
	struct virtq_elem *e = &d->e;

	assert_int_equal(e->head, head);
	assert_int_equal(e->nr_out, 1);
	assert_int_equal(e->nr_in, 2);
	assert_int_equal(e->out_len, 16);
	assert_int_equal(e->in_len, 513);
	assert_ptr_equal(e->iov[0].iov_base, gmem_ptr(&d->gm, HDR_GPA, 16));
	assert_int_equal(e->iov[0].iov_len, 16);
	assert_ptr_equal(e->iov[1].iov_base, gmem_ptr(&d->gm, DATA_GPA, 512));
	assert_int_equal(e->iov[1].iov_len, 512);
	assert_ptr_equal(e->iov[2].iov_base, gmem_ptr(&d->gm, STATUS_GPA, 1));
	assert_int_equal(e->iov[2].iov_len, 1);
	assert_null(e->tail);
}

/* A refused chain whose last writable byte cannot be found or reached. */
#define NO_TAIL		UINT64_MAX

/*
 * Pop a bad chain: consumed (last_avail moves), nothing handed out, and
 * its tail (last device-writable byte) at guest address tail, or none.
 */
static void assert_bad_chain(struct drv *d, uint16_t head, uint64_t tail)
{
	uint16_t before = d->q.last_avail;

	/* Whatever the previous pop left there must not survive. */
	d->e.tail = (uint8_t *)&d->e;
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BAD_CHAIN);
	assert_int_equal(d->e.head, head);
	assert_int_equal(d->e.nr_out, 0);
	assert_int_equal(d->e.nr_in, 0);
	assert_int_equal(d->q.last_avail, (uint16_t)(before + 1));
	assert_false(d->q.broken);
	if (tail == NO_TAIL)
		assert_null(d->e.tail);
	else
		assert_ptr_equal(d->e.tail, gmem_ptr(&d->gm, tail, 1));
}

static void test_legacy_layout(void **state)
{
	struct drv *d = *state;

	/* The sizes the reference gives: 8 KiB for 128, 12 KiB for 256. */
	assert_int_equal(virtq_legacy_size(128), 8192);
	assert_int_equal(virtq_legacy_size(256), 12288);
	assert_int_equal(virtq_legacy_size(1024), 20480 + 12288);

	assert_int_equal(d->q.desc_gpa, RING_PFN << 12);
	assert_int_equal(d->q.avail_gpa, (RING_PFN << 12) + 16 * QSIZE);
	assert_int_equal(d->q.used_gpa, (RING_PFN << 12) + 4096);
	/* Where the driver (Linux's vring_init()) puts them. */
	assert_int_equal(d->q.desc_gpa, d->v.desc_gpa);
	assert_int_equal(d->q.avail_gpa, d->v.avail_gpa);
	assert_int_equal(d->q.used_gpa, d->v.used_gpa);
	assert_int_equal(d->q.num, QSIZE);
	assert_true(d->q.ready);
	assert_false(d->q.broken);
	assert_int_equal(d->q.last_avail, 0);
	assert_int_equal(d->q.used_idx, 0);
}

static void test_layout_256(void **state)
{
	struct drv *d = *state;

	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 256, RING_PFN), 0);
	/* avail ends at 4096 + 518: used goes to the next page. */
	assert_int_equal(d->q.avail_gpa, (RING_PFN << 12) + 4096);
	assert_int_equal(d->q.used_gpa, (RING_PFN << 12) + 8192);
	assert_int_equal(vdrv_ring_init(&d->v, &d->gm, 256, RING_GPA), 0);
	assert_int_equal(d->q.avail_gpa, d->v.avail_gpa);
	assert_int_equal(d->q.used_gpa, d->v.used_gpa);
}

static void test_init_rejects(void **state)
{
	struct drv *d = *state;
	uint32_t last_pfn = RAM_SIZE >> 12;

	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 0, RING_PFN), -EINVAL);
	assert_false(d->q.ready);
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 24, RING_PFN), -EINVAL);
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 2048, RING_PFN), -EINVAL);
	/* The largest allowed size is fine. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, VIRTQ_MAX_SIZE, RING_PFN), 0);
	assert_true(d->q.ready);

	/* 8 KiB ring in the last 4 KiB of RAM: straddles the end. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 128, last_pfn - 1), -EFAULT);
	assert_false(d->q.ready);
	/* Exactly fits. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 128, last_pfn - 2), 0);
	/* Wholly outside RAM. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 128, last_pfn), -EFAULT);
	assert_false(d->q.ready);
	/* 4 GiB: a 32-bit pfn << 12 would wrap to 0, which is RAM. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 16, 0x100000), -EFAULT);
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 16, 0x100010), -EFAULT);
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, 16, UINT32_MAX), -EFAULT);
	assert_false(d->q.ready);
	/* A queue that failed init serves nothing. */
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);
}

static void test_empty_and_reset(void **state)
{
	struct drv *d = *state;

	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);
	blk_chain(d, 0, 1, 2);
	publish(d, 0);
	virtq_reset(&d->q);
	assert_false(d->q.ready);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);
	virtq_push(&d->q, 0, 1);	/* ignored on a dead queue */
	assert_int_equal(used_idx(d), 0);
}

static void test_blk_request(void **state)
{
	struct drv *d = *state;

	blk_chain(d, 0, 1, 2);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_blk_elem(d, 0);
	assert_int_equal(d->q.last_avail, 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);

	/* Out-of-order descriptor numbers, as after some completions. */
	blk_chain(d, 9, 4, 15);
	publish(d, 9);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_blk_elem(d, 9);
}

static void test_push(void **state)
{
	struct drv *d = *state;

	blk_chain(d, 3, 4, 5);
	publish(d, 3);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	virtq_push(&d->q, d->e.head, 513);
	assert_int_equal(used_idx(d), 1);
	assert_int_equal(used_id(d, 0), 3);
	assert_int_equal(used_len(d, 0), 513);
	assert_int_equal(d->q.used_idx, 1);

	blk_chain(d, 0, 1, 2);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	virtq_push(&d->q, d->e.head, 1);
	assert_int_equal(used_idx(d), 2);
	assert_int_equal(used_id(d, 1), 0);
	assert_int_equal(used_len(d, 1), 1);
	/* The first element is left alone. */
	assert_int_equal(used_id(d, 0), 3);
}

static void test_indirect(void **state)
{
	struct drv *d = *state;

	/* Linux: one ring descriptor, the request chained inside the table. */
	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc_at(d, TABLE_GPA, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 7, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 7);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_blk_elem(d, 7);

	/* Unaligned tables are walked too (bytes are copied, not cast). */
	desc_at(d, TABLE_GPA + 0x1003, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA + 0x1003, 1, DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc_at(d, TABLE_GPA + 0x1003, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 8, TABLE_GPA + 0x1003, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 8);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_blk_elem(d, 8);
}

static void test_wraparound(void **state)
{
	struct drv *d = *state;
	uint16_t heads[4] = { 0, 3, 6, 9 };
	unsigned int i;

	drv_set_index(d, 65534);
	for (i = 0; i < 4; i++) {
		blk_chain(d, heads[i], heads[i] + 1, heads[i] + 2);
		publish(d, heads[i]);
	}
	assert_int_equal(*d->v.avail_idx, 2);	/* crossed 0 */
	for (i = 0; i < 4; i++) {
		assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
		assert_blk_elem(d, heads[i]);
		virtq_push(&d->q, d->e.head, 513);
	}
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);
	assert_int_equal(d->q.last_avail, 2);
	assert_int_equal(used_idx(d), 2);
	/* Used slots 65534 % 16, 65535 % 16, 0, 1. */
	assert_int_equal(used_id(d, 14), 0);
	assert_int_equal(used_id(d, 15), 3);
	assert_int_equal(used_id(d, 0), 6);
	assert_int_equal(used_id(d, 1), 9);
}

static void test_full_ring_after_wrap(void **state)
{
	struct drv *d = *state;
	unsigned int i;

	/* Exactly num outstanding across the wrap is legal, not BROKEN. */
	drv_set_index(d, 65530);
	for (i = 0; i < QSIZE; i++) {
		desc(d, i, HDR_GPA, 16, 0, 0);
		publish(d, i);
	}
	for (i = 0; i < QSIZE; i++) {
		assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
		assert_int_equal(d->e.head, i);
	}
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_EMPTY);
}

static void test_longest_chain(void **state)
{
	struct drv *d = *state;
	unsigned int i;

	/* num descriptors in one chain: the loop bound must not trip on it. */
	for (i = 0; i < QSIZE; i++)
		desc(d, i, HDR_GPA + i, 1, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0, i + 1);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_int_equal(d->e.nr_out, QSIZE);
	assert_int_equal(d->e.out_len, QSIZE);
	assert_ptr_equal(d->e.iov[QSIZE - 1].iov_base, gmem_ptr(&d->gm, HDR_GPA + QSIZE - 1, 1));
}

static void test_zero_length_buffer(void **state)
{
	struct drv *d = *state;

	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc(d, 1, 0xdead0000000ULL, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(d, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_int_equal(d->e.nr_out, 1);
	assert_int_equal(d->e.nr_in, 1);
	assert_int_equal(d->e.in_len, 1);
	assert_ptr_equal(d->e.iov[1].iov_base, gmem_ptr(&d->gm, STATUS_GPA, 1));
}

static void test_bad_chain_then_next_served(void **state)
{
	struct drv *d = *state;

	/* 0 -> 1 -> 0 */
	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc(d, 1, DATA_GPA, 16, VRING_DESC_F_NEXT, 0);
	publish(d, 0);
	blk_chain(d, 5, 6, 7);
	publish(d, 5);
	assert_bad_chain(d, 0, NO_TAIL);
	/* The caller completes the bad head with len 0 and moves on. */
	virtq_push(&d->q, d->e.head, 0);
	assert_int_equal(used_idx(d), 1);
	assert_int_equal(used_id(d, 0), 0);
	assert_int_equal(used_len(d, 0), 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_blk_elem(d, 5);
}

static void test_self_loop(void **state)
{
	struct drv *d = *state;

	desc(d, 4, HDR_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
}

static void test_zero_length_loop(void **state)
{
	struct drv *d = *state;

	/* Adds no iov, so only the step bound can stop it. */
	desc(d, 0, HDR_GPA, 0, VRING_DESC_F_NEXT, 1);
	desc(d, 1, HDR_GPA, 0, VRING_DESC_F_NEXT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);

	desc_at(d, TABLE_GPA, 0, HDR_GPA, 0, VRING_DESC_F_NEXT, 0);
	desc(d, 2, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, NO_TAIL);
}

static void test_next_out_of_range(void **state)
{
	struct drv *d = *state;

	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, QSIZE);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	desc(d, 1, HDR_GPA, 16, VRING_DESC_F_NEXT, 0xffff);
	publish(d, 1);
	assert_bad_chain(d, 1, NO_TAIL);
	/* After a refused buffer too: the end of the chain is not reachable. */
	desc(d, 2, HDR_GPA, 16, VRING_DESC_F_NEXT, 3);
	desc(d, 3, 0x40000000ULL, 512, VRING_DESC_F_NEXT, QSIZE + 1);
	desc(d, QSIZE - 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, NO_TAIL);
	/* A writable descriptor with a bad next is not the end of the chain. */
	desc(d, 4, HDR_GPA, 16, VRING_DESC_F_NEXT, 5);
	desc(d, 5, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, QSIZE);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(d, 6, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 6);
	assert_bad_chain(d, 6, NO_TAIL);
}

static void test_indirect_loop(void **state)
{
	struct drv *d = *state;

	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, DATA_GPA, 16, VRING_DESC_F_NEXT, 0);
	desc(d, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
}

static void test_indirect_nested(void **state)
{
	struct drv *d = *state;

	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	desc_at(d, TABLE_GPA + 0x100, 0, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	/* The inner table ends in a writable status: never looked at. */
	assert_bad_chain(d, 0, NO_TAIL);

	/* A table whose first entry is itself indirect. */
	desc_at(d, TABLE_GPA + 0x200, 0, TABLE_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	desc(d, 1, TABLE_GPA + 0x200, 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 1);
	assert_bad_chain(d, 1, NO_TAIL);
}

static void test_indirect_bad_len(void **state)
{
	struct drv *d = *state;

	/* A table that would be a good one-entry request, but for its length. */
	desc_at(d, TABLE_GPA, 0, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 0, TABLE_GPA, 40, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	desc(d, 1, TABLE_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	publish(d, 1);
	assert_bad_chain(d, 1, NO_TAIL);
	desc(d, 2, TABLE_GPA, (VIRTQ_MAX_SIZE + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, NO_TAIL);
	desc(d, 4, TABLE_GPA, 8, VRING_DESC_F_INDIRECT, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	/* The largest table is accepted. */
	desc(d, 3, TABLE_GPA, VIRTQ_MAX_SIZE * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 3);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_int_equal(d->e.nr_in, 1);
	assert_null(d->e.tail);
}

static void test_indirect_table_outside_ram(void **state)
{
	struct drv *d = *state;

	/* Its first entry, in RAM, would be a writable status. */
	desc_at(d, RAM_SIZE - 16, 0, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 0, RAM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	desc(d, 1, 0x100000000ULL, 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 1);
	assert_bad_chain(d, 1, NO_TAIL);
}

static void test_indirect_next_out_of_table(void **state)
{
	struct drv *d = *state;

	/* next 2 is inside the ring's range but outside a 2-entry table. */
	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, DATA_GPA, 16, VRING_DESC_F_NEXT, 2);
	desc_at(d, TABLE_GPA, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
}

static void test_indirect_with_next(void **state)
{
	struct drv *d = *state;

	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, 0, 0);
	desc(d, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	desc(d, 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
}

static void test_indirect_not_head(void **state)
{
	struct drv *d = *state;

	desc_at(d, TABLE_GPA, 0, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc(d, 1, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
}

static void test_buffer_outside_ram(void **state)
{
	struct drv *d = *state;

	/* The writable last buffer itself is outside: no tail either. */
	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc(d, 1, 0x40000000ULL, 512, VRING_DESC_F_WRITE, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	/* The PCI hole and above 4 GiB are not RAM here either. */
	desc(d, 2, 0xfee00000ULL, 4, 0, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, NO_TAIL);
	/* addr + len wrapping past 2^64 must not look small. */
	desc(d, 3, UINT64_MAX - 7, 16, 0, 0);
	publish(d, 3);
	assert_bad_chain(d, 3, NO_TAIL);

	/* Header, then data, outside RAM: the status is still found. */
	blk_chain(d, 4, 5, 6);
	desc(d, 4, 0x40000000ULL, 16, VRING_DESC_F_NEXT, 5);
	publish(d, 4);
	assert_bad_chain(d, 4, STATUS_GPA);
	blk_chain(d, 4, 5, 6);
	desc(d, 5, 0xfee00000ULL, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 6);
	publish(d, 4);
	assert_bad_chain(d, 4, STATUS_GPA);
	blk_chain(d, 4, 5, 6);
	desc(d, 5, UINT64_MAX - 7, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 6);
	publish(d, 4);
	assert_bad_chain(d, 4, STATUS_GPA);
	/* A longer status descriptor: its very last byte. */
	desc(d, 6, STATUS_GPA, 4, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, STATUS_GPA + 3);
	/* Status outside RAM, or wrapping past 2^64. */
	blk_chain(d, 4, 5, 6);
	desc(d, 5, 0x40000000ULL, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 6);
	desc(d, 6, 0x40000000ULL + 512, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	desc(d, 6, UINT64_MAX - 7, 16, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	/* The last byte of 2^64 - 1 exactly: outside RAM, but no wrap. */
	desc(d, 6, UINT64_MAX, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	/* Zero-length or readable status: there is no last writable byte. */
	desc(d, 6, STATUS_GPA, 0, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
	desc(d, 6, STATUS_GPA, 1, 0, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);
}

static void test_refused_indirect_tail(void **state)
{
	struct drv *d = *state;

	/* Inside an indirect table: data outside RAM, status in it. */
	desc_at(d, TABLE_GPA, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(d, TABLE_GPA, 1, 0x40000000ULL, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc_at(d, TABLE_GPA, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 7, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 7);
	assert_bad_chain(d, 7, STATUS_GPA);
	/* Out of order inside the table too. */
	desc_at(d, TABLE_GPA, 0, 0x40000000ULL, 16, VRING_DESC_F_NEXT, 5);
	desc_at(d, TABLE_GPA, 5, STATUS_GPA + 8, 2, VRING_DESC_F_WRITE, 0);
	desc(d, 7, TABLE_GPA, 6 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 7);
	assert_bad_chain(d, 7, STATUS_GPA + 9);
	/* The refused chain loops inside its table after the bad buffer. */
	desc_at(d, TABLE_GPA, 5, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	publish(d, 7);
	assert_bad_chain(d, 7, NO_TAIL);
}

static void test_refused_then_loop(void **state)
{
	struct drv *d = *state;

	/* A refused buffer, then a loop through writable descriptors: bounded. */
	desc(d, 0, 0x40000000ULL, 16, VRING_DESC_F_NEXT, 1);
	desc(d, 1, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(d, 2, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	/* Or an indirect descriptor after it: refused, as for a good chain. */
	desc_at(d, TABLE_GPA, 0, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc(d, 2, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
}

static void test_buffer_straddles_end(void **state)
{
	struct drv *d = *state;

	desc(d, 0, RAM_SIZE - 8, 16, VRING_DESC_F_WRITE, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);
	/* Data straddling the end, the status in RAM. */
	blk_chain(d, 2, 3, 4);
	desc(d, 3, RAM_SIZE - 256, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4);
	publish(d, 2);
	assert_bad_chain(d, 2, STATUS_GPA);
	/* The last byte of RAM itself is fine. */
	desc(d, 1, RAM_SIZE - 8, 8, VRING_DESC_F_WRITE, 0);
	publish(d, 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_ptr_equal(d->e.iov[0].iov_base, gmem_ptr(&d->gm, RAM_SIZE - 8, 8));
}

static void test_readable_after_writable(void **state)
{
	struct drv *d = *state;

	desc(d, 0, HDR_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(d, 1, DATA_GPA, 16, 0, 0);
	publish(d, 0);
	assert_bad_chain(d, 0, NO_TAIL);

	/* Same inside an indirect table. */
	desc_at(d, TABLE_GPA, 0, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc_at(d, TABLE_GPA, 1, HDR_GPA, 16, 0, 0);
	desc(d, 2, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, NO_TAIL);

	/* Writable header, readable data, writable status: the status is found. */
	blk_chain(d, 3, 4, 5);
	desc(d, 3, HDR_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4);
	desc(d, 4, DATA_GPA, 512, VRING_DESC_F_NEXT, 5);
	publish(d, 3);
	assert_bad_chain(d, 3, STATUS_GPA);
	desc_at(d, TABLE_GPA, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc_at(d, TABLE_GPA, 1, HDR_GPA, 16, VRING_DESC_F_NEXT, 2);
	desc(d, 2, TABLE_GPA, 48, VRING_DESC_F_INDIRECT, 0);
	publish(d, 2);
	assert_bad_chain(d, 2, STATUS_GPA);
}

static void test_avail_idx_jump(void **state)
{
	struct drv *d = *state;

	blk_chain(d, 0, 1, 2);
	publish(d, 0);
	/* The driver claims num + 1 new entries: impossible. */
	put16(d, d->v.avail_gpa + 2, QSIZE + 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BROKEN);
	assert_true(d->q.broken);
	assert_int_equal(d->q.last_avail, 0);
	/* Putting it right does not revive the queue: only a reset does. */
	put16(d, d->v.avail_gpa + 2, 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BROKEN);
	assert_int_equal(d->q.last_avail, 0);

	/* Going backwards (0xffff new entries) is the same thing. */
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, QSIZE, RING_PFN), 0);
	assert_false(d->q.broken);
	put16(d, d->v.avail_gpa + 2, 0xffff);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BROKEN);
}

static void test_head_out_of_range(void **state)
{
	struct drv *d = *state;

	blk_chain(d, 0, 1, 2);
	publish(d, QSIZE);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BROKEN);
	assert_true(d->q.broken);
	assert_int_equal(d->q.last_avail, 0);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_BROKEN);
}

static void test_len_overflow(void **state)
{
	struct drv *d;
	struct guest_mem *gm;

	/* Needs buffers that are real RAM and add up past 4 GiB. */
	d = test_calloc(1, sizeof(*d));
	assert_non_null(d);
	gm = &d->gm;
	assert_int_equal(gmem_init(gm, 5ULL << 30), 0);
	assert_int_equal(vdrv_ring_init(&d->v, gm, QSIZE, RING_GPA), 0);
	assert_int_equal(virtq_init_legacy(&d->q, gm, QSIZE, RING_PFN), 0);

	desc(d, 0, 0, 0xC0000000u, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(d, 1, GMEM_4G, 0x40000000u, VRING_DESC_F_WRITE, 0);
	publish(d, 0);
	/* Refused for the sum, but the last buffer is RAM: its last byte. */
	assert_bad_chain(d, 0, GMEM_4G + 0x3fffffffu);
	/*
	 * A status that starts in the PCI hole and ends in RAM: only its
	 * last byte counts, and that one is RAM.
	 */
	desc(d, 4, HDR_GPA, 16, VRING_DESC_F_NEXT, 5);
	desc(d, 5, GMEM_4G - 8, 16, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, GMEM_4G + 7);
	/* And the other way round: ends in the hole. */
	desc(d, 5, 3ULL << 30, 1, VRING_DESC_F_WRITE, 0);
	publish(d, 4);
	assert_bad_chain(d, 4, NO_TAIL);

	/* Just under the limit is fine. */
	desc(d, 2, 0, 0xC0000000u, VRING_DESC_F_NEXT, 3);
	desc(d, 3, GMEM_4G, 0x3fffffffu, 0, 0);
	publish(d, 2);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_int_equal(d->e.out_len, UINT32_MAX);
	assert_int_equal(d->e.nr_out, 2);

	gmem_free(gm);
	test_free(d);
}

static void test_no_interrupt(void **state)
{
	struct drv *d = *state;

	assert_false(virtq_no_interrupt(&d->q));
	put16(d, d->v.avail_gpa, 1);
	assert_true(virtq_no_interrupt(&d->q));
	put16(d, d->v.avail_gpa, 0);
	assert_false(virtq_no_interrupt(&d->q));
}

/* ---- VIRTIO_RING_F_EVENT_IDX ---- */

/*
 * EVENT_IDX on at index start (both rings), and the first decision made
 * there: it interrupts, whatever used_event says.
 */
static void evidx_at(struct drv *d, uint16_t start)
{
	drv_set_index(d, start);
	virtq_set_event_idx(&d->q, true);
	*d->v.used_event = start + 0x8000;
	assert_false(virtq_no_interrupt(&d->q));
}

/* Push n more used entries, set used_event, decide: true to interrupt. */
static bool evidx_batch(struct drv *d, unsigned int n, uint16_t used_event)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		virtq_push(&d->q, i, 1);
	*d->v.used_event = used_event;
	return !virtq_no_interrupt(&d->q);
}

/*
 * The driver wants an interrupt when the used index passes used_event:
 * exactly when the batch since the last decision holds that entry, with
 * the batch across 65535 -> 0 and used_event on either side of it.
 */
static void test_event_idx_wrap(void **state)
{
	static const struct { uint16_t start, n, event; bool irq; } c[] = {
		/* 65534, 65535, 0: the index goes 65534 -> 1 */
		{ 65534, 3, 65533, false },	/* before the batch */
		{ 65534, 3, 65534, true },
		{ 65534, 3, 65535, true },
		{ 65534, 3, 0, true },
		{ 65534, 3, 1, false },		/* the next entry */
		{ 65534, 3, 2, false },
		{ 65534, 3, 0x7ffe, false },	/* half the index space away */
		/* 65535, 0: 65535 -> 1 */
		{ 65535, 2, 65534, false },
		{ 65535, 2, 65535, true },
		{ 65535, 2, 0, true },
		{ 65535, 2, 1, false },
		/* one entry, landing on 0: 65535 -> 0 */
		{ 65535, 1, 65535, true },
		{ 65535, 1, 0, false },
		/* from 0: 0 -> 2 */
		{ 0, 2, 65535, false },
		{ 0, 2, 0, true },
		{ 0, 2, 1, true },
		{ 0, 2, 2, false },
	};
	struct drv *d = *state;
	unsigned int i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		evidx_at(d, c[i].start);
		if (evidx_batch(d, c[i].n, c[i].event) != c[i].irq)
			fail_msg("start %u, %u pushed, used_event %u: expected %s", c[i].start,
				 c[i].n, c[i].event, c[i].irq ? "an interrupt" : "none");
	}

	/* Back to back over the wrap: the old index is the last decision's. */
	evidx_at(d, 65530);
	for (i = 0; i < 4; i++) {
		/* The second entry of the next batch of 3, and then the one before it. */
		assert_true(evidx_batch(d, 3, d->q.used_idx + 1));
		assert_false(evidx_batch(d, 3, d->q.used_idx - 1 - 3));
	}
	assert_int_equal(d->q.used_idx, (uint16_t)(65530 + 24));
	/* Nothing pushed since the last decision: nothing to interrupt for. */
	assert_false(evidx_batch(d, 0, d->q.used_idx - 1));
	assert_false(evidx_batch(d, 0, d->q.used_idx));
}

/* The first decision after a reset, a set-up or a switch interrupts. */
static void test_event_idx_first_decision(void **state)
{
	struct drv *d = *state;

	evidx_at(d, 0);
	assert_false(evidx_batch(d, 1, 500));
	/* A switch forgets what was decided. */
	virtq_set_event_idx(&d->q, true);
	assert_true(evidx_batch(d, 1, 500));
	assert_false(evidx_batch(d, 1, 500));
	/* So does a reset, which also leaves EVENT_IDX off... */
	virtq_reset(&d->q);
	assert_false(virtq_has_event_idx(&d->q));
	assert_int_equal(virtq_init_legacy(&d->q, &d->gm, QSIZE, RING_PFN), 0);
	assert_false(virtq_has_event_idx(&d->q));
	/* ...until the device turns it on for the new ring. */
	virtq_set_event_idx(&d->q, true);
	assert_true(evidx_batch(d, 1, 500));
	assert_false(evidx_batch(d, 1, 500));

	/*
	 * 2^16 entries with no decision: the index is back where the last
	 * one left it, which says nothing now; interrupt.
	 */
	evidx_at(d, 100);
	assert_true(evidx_batch(d, 65536, 50));
	assert_int_equal(d->q.used_idx, 100);
}

/* With EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT means nothing. */
static void test_event_idx_ignores_flags(void **state)
{
	struct drv *d = *state;

	evidx_at(d, 7);
	*d->v.avail_flags = VDRV_AVAIL_F_NO_INTERRUPT;
	assert_true(evidx_batch(d, 1, 7));
	*d->v.avail_flags = 0;
	assert_false(evidx_batch(d, 1, 7));
	assert_false(evidx_batch(d, 1, 1000));
	*d->v.avail_flags = 0xffff;
	assert_true(evidx_batch(d, 2, 10));
}

/*
 * Notify on publishes avail_event = what was taken, here past the wrap;
 * notify off leaves it alone.  The flags are not touched either way, and
 * a NO_NOTIFY left from before the switch is cleared by it.
 */
static void test_event_idx_avail_event(void **state)
{
	struct drv *d = *state;
	unsigned int i;

	drv_set_index(d, 65534);
	virtq_set_notify(&d->q, false);
	assert_int_equal(*d->v.used_flags, VDRV_USED_F_NO_NOTIFY);
	virtq_set_event_idx(&d->q, true);
	assert_int_equal(*d->v.used_flags, 0);
	*d->v.avail_event = 0x1234;

	for (i = 0; i < 3; i++) {
		blk_chain(d, 3 * i, 3 * i + 1, 3 * i + 2);
		publish(d, 3 * i);
	}
	virtq_set_notify(&d->q, true);
	assert_int_equal(*d->v.avail_event, 65534);
	/* The device took nothing yet: the driver's next one does not kick. */
	assert_false(vdrv_need_event(*d->v.avail_event, *d->v.avail_idx + 1, *d->v.avail_idx));
	for (i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	assert_int_equal(d->q.last_avail, 1);
	virtq_set_notify(&d->q, false);
	assert_int_equal(*d->v.avail_event, 65534);
	virtq_set_notify(&d->q, true);
	assert_int_equal(*d->v.avail_event, 1);
	assert_int_equal(*d->v.used_flags, 0);
	/* The driver's next request (avail index 1 -> 2) must kick... */
	assert_true(vdrv_need_event(*d->v.avail_event, 2, 1));
	/* ...and one of a batch that crosses it: 0 -> 3. */
	assert_true(vdrv_need_event(*d->v.avail_event, 3, 0));
	/* A batch that ended before it did not need to (65535 -> 1). */
	assert_false(vdrv_need_event(*d->v.avail_event, 1, 65535));
	/* Notify on and off again: avail_event moves only when turned on. */
	blk_chain(d, 0, 1, 2);
	publish(d, 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), VIRTQ_OK);
	virtq_set_notify(&d->q, false);
	assert_int_equal(*d->v.avail_event, 1);
	assert_int_equal(*d->v.used_flags, 0);
	virtq_set_notify(&d->q, true);
	assert_int_equal(*d->v.avail_event, 2);
}

/* Without EVENT_IDX: flags only; used_event and avail_event are the driver's. */
static void test_no_event_idx_unchanged(void **state)
{
	struct drv *d = *state;
	unsigned int i;

	assert_false(virtq_has_event_idx(&d->q));
	*d->v.avail_event = 0xabcd;
	*d->v.used_event = 0x4242;
	for (i = 0; i < 3; i++) {
		/* Each decision follows the flag, new entries or not. */
		assert_true(evidx_batch(d, i, 0x4242));
		*d->v.avail_flags = VDRV_AVAIL_F_NO_INTERRUPT;
		assert_true(virtq_no_interrupt(&d->q));
		*d->v.avail_flags = 0;
	}
	virtq_set_notify(&d->q, false);
	assert_int_equal(*d->v.used_flags, VDRV_USED_F_NO_NOTIFY);
	virtq_set_notify(&d->q, true);
	assert_int_equal(*d->v.used_flags, 0);
	/* Switched on and off again: back to the flags. */
	virtq_set_event_idx(&d->q, true);
	virtq_set_event_idx(&d->q, false);
	virtq_set_notify(&d->q, false);
	assert_int_equal(*d->v.used_flags, VDRV_USED_F_NO_NOTIFY);
	virtq_set_notify(&d->q, true);
	/*
	 * avail_event follows what was taken in flags mode too (a driver may
	 * use EVENT_IDX before DRIVER_OK switches the device's mode).
	 */
	assert_int_equal(*d->v.avail_event, d->q.last_avail);
	assert_int_equal(*d->v.used_event, 0x4242);
	assert_false(virtq_no_interrupt(&d->q));
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_legacy_layout),
		T(test_layout_256),
		T(test_init_rejects),
		T(test_empty_and_reset),
		T(test_blk_request),
		T(test_push),
		T(test_indirect),
		T(test_wraparound),
		T(test_full_ring_after_wrap),
		T(test_longest_chain),
		T(test_zero_length_buffer),
		T(test_bad_chain_then_next_served),
		T(test_self_loop),
		T(test_zero_length_loop),
		T(test_next_out_of_range),
		T(test_indirect_loop),
		T(test_indirect_nested),
		T(test_indirect_bad_len),
		T(test_indirect_table_outside_ram),
		T(test_indirect_next_out_of_table),
		T(test_indirect_with_next),
		T(test_indirect_not_head),
		T(test_buffer_outside_ram),
		T(test_refused_indirect_tail),
		T(test_refused_then_loop),
		T(test_buffer_straddles_end),
		T(test_readable_after_writable),
		T(test_avail_idx_jump),
		T(test_head_out_of_range),
		cmocka_unit_test(test_len_overflow),
		T(test_no_interrupt),
		T(test_event_idx_wrap),
		T(test_event_idx_first_decision),
		T(test_event_idx_ignores_flags),
		T(test_event_idx_avail_event),
		T(test_no_event_idx_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
