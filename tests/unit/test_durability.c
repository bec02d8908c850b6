// SPDX-License-Identifier: MIT
/*
 * Durability by ordering: the real virtio-blk device (queue thread over
 * a disk engine, once with aio=threads and once with aio=io_uring) over
 * a temp file, with a fault filter (disk/fault.h) under it that logs
 * every operation the device gives the disk and every answer it gets
 * back, and may hold an answer back, and a driver (this thread, with
 * tests/driver) that fills a real ring in guest memory, kicks through
 * the QUEUE_NOTIFY register and logs each used-ring entry when it sees
 * it.  One sequence counter orders the whole log.
 *
 *  - writethru: an OUT is completed only after a FUA write (or a write,
 *    then a flush) for it was answered;
 *  - writeback: an OUT is completed only after its write was answered; a
 *    FLUSH only after a flush that was asked for after every write the
 *    driver had seen completed was answered, and then answered itself;
 *    leaving writeback (WCE 1 -> 0) and destroying the device flush
 *    after the last write was answered.
 *
 * The filter also checks, when an answer comes back, that the used ring
 * does not already hold the request it serves; and a held answer proves
 * the device waits: no used entry and no interrupt appear for it while
 * it is held.  Waits are bounded and only ever make a correct device
 * pass later, never fail.  (That a FUA write or a flush is durable once
 * answered is the engines' part: test_disk_engines.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "devices/virtio/virtio_pci.h"
#include "disk/fault.h"
#include "lib/guest_mem.h"
#include "tests/driver/vdriver.h"

#define RAM_SIZE	(1ULL << 20)
#define RING_GPA	0x10000ULL	/* ring at 64 KiB */
#define DISK_SIZE	(1 << 20)
#define DATA_LEN	4096
#define SLOT_GPA(i)	(0x40000ULL + (uint64_t)(i) * 0x2000)	/* hdr, status +16, data +4096 */
#define MAX_SLOTS	21		/* 3 descriptors each in a 64-entry ring */
#define MAX_REQS	256
#define MAX_EVENTS	8192
#define WAIT_MS		10000		/* bounded: only a broken device waits this long */
#define HOLD_MS		200		/* how long a held request must stay incomplete */

enum ev_kind { EV_W_CALL, EV_W_RET, EV_F_CALL, EV_F_RET, EV_R_CALL, EV_R_RET,
	       EV_SUBMIT, EV_COMPLETE, EV_IRQ };

struct ev {
	enum ev_kind kind;
	uint64_t seq;
	uint64_t off;		/* writes/reads: byte offset */
	bool sync;
	int req;		/* SUBMIT/COMPLETE: request number */
};

struct req {
	uint32_t type;
	uint64_t sector;
	uint16_t head;
	uint16_t used_at_submit;	/* used->idx when it was submitted */
	uint64_t submit_seq, complete_seq;	/* 0: not yet */
	uint32_t used_len;
	uint8_t status;
	bool outstanding;
};


static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ev ev[MAX_EVENTS];
	unsigned int nr_ev;
	uint64_t seq;
	unsigned int early;		/* completions seen before their I/O returned */
	unsigned int irqs;

	const char *aio;		/* the engine of this group's runs */
	struct guest_mem gm;
	struct blk_dev *b;
	char path[64];
	struct vdrv drv;		/* publishes by hand (hold_avail): log first */
	struct ev snap[MAX_EVENTS];	/* the log as the checks see it */
	unsigned int nr_snap;
	struct req req[MAX_REQS];
	int slot_req[MAX_SLOTS];	/* request using each slot, -1: free */
	unsigned int nr_req;
	bool writeback;
} t = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

/* Log with the lock held; returns the event's sequence number. */
static uint64_t log_locked(enum ev_kind kind, uint64_t off, bool sync, int req)
{
	struct ev *e;

	/* Device threads log too: no cmocka assertion outside the test's thread. */
	if (t.nr_ev >= MAX_EVENTS) {
		fprintf(stderr, "test_durability: event log full\n");
		abort();
	}
	e = &t.ev[t.nr_ev++];
	e->kind = kind;
	e->seq = ++t.seq;
	e->off = off;
	e->sync = sync;
	e->req = req;
	return e->seq;
}

static uint64_t log_ev(enum ev_kind kind, uint64_t off, bool sync, int req)
{
	uint64_t seq;

	pthread_mutex_lock(&t.lock);
	seq = log_locked(kind, off, sync, req);
	pthread_mutex_unlock(&t.lock);
	return seq;
}

/* Whether request r's head is already on the used ring (any thread). */
static bool in_used_ring(const struct req *r)
{
	uint16_t now = vdrv_used_idx(&t.drv), i, n = now - r->used_at_submit;
	uint32_t id;

	if (n > t.drv.num)
		n = t.drv.num;
	for (i = 0; i < n; i++) {
		vdrv_used_elem(&t.drv, now - 1 - i, &id, NULL);
		if (id == r->head)
			return true;
	}
	return false;
}

/* t.lock held: the answer for outstanding requests matching off/flush comes now. */
static void check_not_completed_locked(bool flush, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < t.nr_req; i++) {
		const struct req *r = &t.req[i];

		if (!r->outstanding)
			continue;
		if (flush ? r->type != VIRTIO_BLK_T_FLUSH
			  : r->type != VIRTIO_BLK_T_OUT || r->sector * 512 != off)
			continue;
		if (in_used_ring(r))
			t.early++;
	}
}

/* ---- what the device asks of the disk, and the answers --------------------- */

/* The filter's trace: the filter's lock is held, ours is taken inside it. */
static void trace(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		  uint64_t cookie, int result)
{
	bool flush = !io || io->op == DISK_OP_FLUSH, sync;
	uint64_t off = io ? io->offset : 0;

	(void)opaque;
	(void)cookie;
	(void)result;
	if (io && io->op != DISK_OP_READ && io->op != DISK_OP_WRITE && io->op != DISK_OP_FLUSH)
		return;
	sync = io && (io->flags & DISK_F_FUA);
	pthread_mutex_lock(&t.lock);
	if (io && io->op == DISK_OP_READ) {
		log_locked(ev == DISK_FAULT_SUBMIT ? EV_R_CALL : EV_R_RET, off, false, -1);
	} else if (ev == DISK_FAULT_SUBMIT) {
		log_locked(flush ? EV_F_CALL : EV_W_CALL, off, sync, -1);
	} else {
		/* A flush_sync is logged once it returned: call and return at once. */
		if (ev == DISK_FAULT_FLUSH_SYNC)
			log_locked(EV_F_CALL, 0, false, -1);
		check_not_completed_locked(flush, off);
		log_locked(flush ? EV_F_RET : EV_W_RET, off, sync, -1);
	}
	pthread_mutex_unlock(&t.lock);
}

static void irq_assert(void *opaque)
{
	/* vp->lock held: only our own lock, a leaf, is taken here. */
	pthread_mutex_lock(&t.lock);
	t.irqs++;
	log_locked(EV_IRQ, 0, false, -1);
	pthread_mutex_unlock(&t.lock);
}

static void irq_deassert(void *opaque)
{
}

static const struct virtio_irq fake_irq = {
	.assert_line = irq_assert,
	.deassert_line = irq_deassert,
};

/* ---- the driver ---------------------------------------------------------- */

static void put(uint64_t gpa, const void *p, size_t len)
{
	assert_int_equal(gmem_write(&t.gm, gpa, p, len), 0);
}

static int free_slot(void)
{
	int i;

	for (i = 0; i < MAX_SLOTS; i++)
		if (t.slot_req[i] < 0)
			return i;
	fail_msg("no free slot");
	return -1;
}

/* Fill a request in a free slot and make it available (no kick). */
static int queue_req(uint32_t type, uint64_t sector)
{
	int slot = free_slot(), n = t.nr_req;
	uint64_t gpa = SLOT_GPA(slot);
	const struct vdrv_blk_req vr = {
		.type = type, .sector = sector, .hdr_gpa = gpa, .status_gpa = gpa + 16,
		.data_gpa = gpa + 4096, .data_len = DATA_LEN, .nseg = type == VIRTIO_BLK_T_OUT,
	};
	uint8_t data[DATA_LEN];
	struct req *r;

	assert_true(t.nr_req < MAX_REQS);
	if (type == VIRTIO_BLK_T_OUT) {
		memset(data, (uint8_t)(n + 1), sizeof(data));
		put(gpa + 4096, data, sizeof(data));
	}
	assert_int_equal(vdrv_blk_add(&t.drv, 3 * slot, &vr), 0);

	/* Logged before the device can see it: avail->idx is still held. */
	pthread_mutex_lock(&t.lock);
	r = &t.req[t.nr_req++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->sector = sector;
	r->head = 3 * slot;
	r->used_at_submit = vdrv_used_idx(&t.drv);
	r->outstanding = true;
	t.slot_req[slot] = n;
	r->submit_seq = log_locked(EV_SUBMIT, 0, false, n);
	pthread_mutex_unlock(&t.lock);

	vdrv_publish(&t.drv);
	return n;
}

/* iowrite16(0, QUEUE_NOTIFY): no ioeventfd here, the register is the kick. */
static void kick(void)
{
	assert_int_equal(vdrv_notify(&t.drv), 0);
}

static int submit(uint32_t type, uint64_t sector)
{
	int n = queue_req(type, sector);

	kick();
	return n;
}

/* Take every new used entry, as the guest's interrupt handler would. */
static void poll_used(void)
{
	uint32_t id, len;
	int slot, n;

	while (vdrv_get_used(&t.drv, &id, &len)) {
		assert_true(id % 3 == 0 && id / 3 < MAX_SLOTS);
		slot = id / 3;
		n = t.slot_req[slot];
		assert_true(n >= 0);
		pthread_mutex_lock(&t.lock);
		t.req[n].outstanding = false;
		t.req[n].used_len = len;
		t.req[n].complete_seq = log_locked(EV_COMPLETE, 0, false, n);
		pthread_mutex_unlock(&t.lock);
		assert_int_equal(gmem_read(&t.gm, SLOT_GPA(slot) + 16, &t.req[n].status, 1), 0);
		t.slot_req[slot] = -1;
	}
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void wait_complete(int n)
{
	unsigned int ms;

	for (ms = 0; ms < WAIT_MS; ms++) {
		poll_used();
		if (t.req[n].complete_seq)
			break;
		sleep_ms(1);
	}
	assert_true(t.req[n].complete_seq != 0);
	assert_int_equal(t.req[n].status, VIRTIO_BLK_S_OK);
	assert_int_equal(t.req[n].used_len, 1);
}

/* Request n stays incomplete, and no interrupt comes, for HOLD_MS. */
static void assert_held(int n)
{
	unsigned int ms, irqs;

	pthread_mutex_lock(&t.lock);
	irqs = t.irqs;
	pthread_mutex_unlock(&t.lock);
	for (ms = 0; ms < HOLD_MS; ms++) {
		poll_used();
		assert_int_equal(t.req[n].complete_seq, 0);
		sleep_ms(1);
	}
	pthread_mutex_lock(&t.lock);
	ms = t.irqs;
	pthread_mutex_unlock(&t.lock);
	assert_int_equal(ms, irqs);
}

/* Hold the disk's answer to the next write at sector (or to flushes). */
static void gate_arm(bool flush, uint64_t sector)
{
	if (flush)
		disk_fault_hold_range(t.b->disk, 1u << DISK_OP_FLUSH, 0, 0);
	else
		disk_fault_hold_range(t.b->disk, 1u << DISK_OP_WRITE, sector * 512, DATA_LEN);
}

/* The disk has answered, and the answer is held back from the device. */
static void gate_wait_arrived(void)
{
	unsigned int ms;

	for (ms = 0; ms < WAIT_MS && !disk_fault_held(t.b->disk); ms++)
		sleep_ms(1);
	assert_true(disk_fault_held(t.b->disk) > 0);
}

static void gate_release(void)
{
	disk_fault_release(t.b->disk);
}

/* ---- log queries ---------------------------------------------------------- */

/*
 * Copy the log for the checks, which may fail (longjmp) and so must not
 * hold t.lock: the device's threads log under it until they are joined.
 */
static void snapshot(void)
{
	pthread_mutex_lock(&t.lock);
	memcpy(t.snap, t.ev, t.nr_ev * sizeof(t.ev[0]));
	t.nr_snap = t.nr_ev;
	pthread_mutex_unlock(&t.lock);
}

/* First event of kind (matching off for writes) with seq in (after, before). */
static const struct ev *find(enum ev_kind kind, bool any_off, uint64_t off, uint64_t after,
			     uint64_t before)
{
	unsigned int i;

	for (i = 0; i < t.nr_snap; i++) {
		const struct ev *e = &t.snap[i];

		if (e->kind == kind && e->seq > after && e->seq < before &&
		    (any_off || e->off == off))
			return e;
	}
	return NULL;
}

/* The write call for OUT r, made after r was submitted. */
static const struct ev *write_call_for(const struct req *r)
{
	return find(EV_W_CALL, false, r->sector * 512, r->submit_seq, UINT64_MAX);
}

/* Its return: the first W_RET for the offset after the call. */
static const struct ev *write_ret_for(const struct req *r)
{
	const struct ev *c = write_call_for(r);

	return c ? find(EV_W_RET, false, c->off, c->seq, UINT64_MAX) : NULL;
}

/* writethru: durable (sync write, or write then flush) before completion. */
static void check_writethru(const struct req *r)
{
	const struct ev *c = write_call_for(r), *ret = write_ret_for(r), *fc;

	assert_non_null(c);
	assert_non_null(ret);
	assert_true(r->complete_seq && ret->seq < r->complete_seq);
	if (!ret->sync) {
		/* A plain write counts only with a whole flush after it. */
		fc = find(EV_F_CALL, true, 0, ret->seq, r->complete_seq);
		assert_non_null(fc);
		assert_non_null(find(EV_F_RET, true, 0, fc->seq, r->complete_seq));
	}
}

/* writeback: the write returned before the completion. */
static void check_writeback_out(const struct req *r)
{
	const struct ev *ret = write_ret_for(r);

	assert_non_null(ret);
	assert_true(r->complete_seq && ret->seq < r->complete_seq);
}

/*
 * FLUSH f: some flush call after f's submission began after every write
 * whose OUT the driver saw complete before submitting f had returned, and
 * returned before f completed.
 */
static void check_flush(const struct req *f)
{
	const struct ev *fc = NULL, *fr;
	uint64_t after = f->submit_seq, last_wret = 0;
	unsigned int i;

	assert_true(f->complete_seq != 0);
	for (i = 0; i < t.nr_req; i++) {
		const struct req *w = &t.req[i];
		const struct ev *ret;

		if (w->type != VIRTIO_BLK_T_OUT || !w->complete_seq || w->complete_seq > f->submit_seq)
			continue;
		ret = write_ret_for(w);
		assert_non_null(ret);
		if (ret->seq > last_wret)
			last_wret = ret->seq;
	}
	/* The first flush call that qualifies and returned before f completed. */
	for (;;) {
		fc = find(EV_F_CALL, true, 0, after, f->complete_seq);
		assert_non_null(fc);
		fr = find(EV_F_RET, true, 0, fc->seq, UINT64_MAX);
		if (fc->seq > last_wret && fr && fr->seq < f->complete_seq)
			break;
		after = fc->seq;
	}
}

static void check_early(void)
{
	unsigned int early;

	pthread_mutex_lock(&t.lock);
	early = t.early;
	pthread_mutex_unlock(&t.lock);
	assert_int_equal(early, 0);
}

static void check_all(void)
{
	unsigned int i;

	check_early();
	snapshot();
	for (i = 0; i < t.nr_req; i++) {
		const struct req *r = &t.req[i];

		assert_true(r->complete_seq != 0);
		if (r->type == VIRTIO_BLK_T_FLUSH)
			check_flush(r);
		else if (t.writeback)
			check_writeback_out(r);
		else
			check_writethru(r);
	}
}

/* ---- set-up ---------------------------------------------------------------- */

static int dev_up(bool writeback)
{
	char args[160];
	const uint32_t want = (1u << VIRTIO_BLK_F_FLUSH) | (1u << VIRTIO_BLK_F_CONFIG_WCE);
	const struct virtq *vq;
	uint8_t wce;
	int fd, i;

	memset(t.ev, 0, sizeof(t.ev));
	t.nr_ev = 0;
	t.seq = 0;
	t.early = 0;
	t.irqs = 0;
	t.nr_req = 0;
	for (i = 0; i < MAX_SLOTS; i++)
		t.slot_req[i] = -1;
	t.writeback = writeback;

	assert_int_equal(gmem_init(&t.gm, RAM_SIZE), 0);
	strcpy(t.path, "/tmp/tvmm-durab-XXXXXX");
	fd = mkstemp(t.path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
	close(fd);
	snprintf(args, sizeof(args), "%s,%s,aio=%s", t.path,
		 writeback ? "writeback" : "writethru", t.aio);
	assert_int_equal(blk_dev_create(&t.b, args, &t.gm, 1), 0);
	assert_int_equal(disk_fault_wrap(t.b->disk, NULL, 0), 0);
	disk_fault_set_trace(t.b->disk, trace, NULL);
	virtio_pci_set_irq(&t.b->vp, &fake_irq);
	assert_int_equal(blk_dev_start(t.b), 0);

	/* The driver: reset, ACK|DRIVER, features, queue 0, DRIVER_OK. */
	vdrv_begin(&t.drv, &t.b->vp, &t.gm, want, -1, false);
	assert_int_equal(t.drv.host_features & want, want);
	assert_int_equal(t.drv.features, want);
	assert_int_equal(vdrv_setup_queue(&t.drv, 0, RING_GPA, true), 0);
	assert_int_equal(t.drv.num, BLK_DEFAULT_QSIZE);
	vdrv_driver_ok(&t.drv);
	t.drv.hold_avail = true;
	vq = virtio_pci_get_vq(&t.b->vp, 0);
	assert_true(vq->ready);
	/* The device reads the ring where the driver laid it out. */
	assert_int_equal(vq->desc_gpa, t.drv.desc_gpa);
	assert_int_equal(vq->avail_gpa, t.drv.avail_gpa);
	assert_int_equal(vq->used_gpa, t.drv.used_gpa);
	vdrv_cfg_get(&t.drv, offsetof(struct blk_config, wce), &wce, 1);
	assert_int_equal(wce, writeback ? 1 : 0);
	return 0;
}

static int setup_writethru(void **state)
{
	return dev_up(false);
}

static int setup_writeback(void **state)
{
	return dev_up(true);
}

static int teardown(void **state)
{
	const struct ev *last_w = NULL, *fc;
	bool wce = t.b->cfg.wce;
	unsigned int i;

	/* Everything completes; then a write-back cache is flushed at the end. */
	gate_release();
	for (i = 0; i < t.nr_req; i++)
		if (!t.req[i].complete_seq)
			wait_complete(i);
	assert_int_equal(blk_dev_destroy(t.b), 0);
	t.b = NULL;
	snapshot();
	if (wce) {
		for (i = 0; i < t.nr_snap; i++)
			if (t.snap[i].kind == EV_W_RET)
				last_w = &t.snap[i];
		if (last_w) {
			fc = find(EV_F_CALL, true, 0, last_w->seq, UINT64_MAX);
			assert_non_null(fc);
			assert_non_null(find(EV_F_RET, true, 0, fc->seq, UINT64_MAX));
		}
	}
	unlink(t.path);
	gmem_free(&t.gm);
	check_early();
	return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_writethru_sync_before_complete(void **state)
{
	int i, n[MAX_SLOTS - 1];

	/* Many at once: the engine has them in flight together. */
	for (i = 0; i < MAX_SLOTS - 1; i++)
		n[i] = queue_req(VIRTIO_BLK_T_OUT, 8ULL * i);
	kick();
	for (i = 0; i < MAX_SLOTS - 1; i++)
		wait_complete(n[i]);
	/* A FLUSH in writethru is still served after a flush call. */
	wait_complete(submit(VIRTIO_BLK_T_FLUSH, 0));
	check_all();
	/* writethru: every write was FUA. */
	for (i = 0; i < (int)t.nr_ev; i++)
		if (t.ev[i].kind == EV_W_CALL)
			assert_true(t.ev[i].sync);
}

static void test_writethru_held_write(void **state)
{
	int n;

	gate_arm(false, 800);
	n = submit(VIRTIO_BLK_T_OUT, 800);
	gate_wait_arrived();
	/* The FUA write's answer is held: no completion, no interrupt. */
	assert_held(n);
	gate_release();
	wait_complete(n);
	check_all();
}

static void test_writeback_held_write(void **state)
{
	int n;

	gate_arm(false, 16);
	n = submit(VIRTIO_BLK_T_OUT, 16);
	gate_wait_arrived();
	assert_held(n);
	gate_release();
	wait_complete(n);
	check_all();
}

static void test_writeback_held_flush(void **state)
{
	int i, f, n[4];

	for (i = 0; i < 4; i++)
		n[i] = queue_req(VIRTIO_BLK_T_OUT, 40 + 8ULL * i);
	kick();
	for (i = 0; i < 4; i++)
		wait_complete(n[i]);
	gate_arm(true, 0);
	f = submit(VIRTIO_BLK_T_FLUSH, 0);
	gate_wait_arrived();
	assert_held(f);
	gate_release();
	wait_complete(f);
	check_all();
}

/*
 * A FLUSH covers the writes completed before it, not one still in
 * flight: with write A held, B completes, then FLUSH.  Whether the FLUSH
 * waits for A is the device's choice; its flush must follow B either way.
 */
static void test_writeback_flush_with_write_in_flight(void **state)
{
	unsigned int ms;
	int a, b, f;

	gate_arm(false, 200);
	a = submit(VIRTIO_BLK_T_OUT, 200);
	gate_wait_arrived();
	b = submit(VIRTIO_BLK_T_OUT, 208);
	wait_complete(b);
	f = submit(VIRTIO_BLK_T_FLUSH, 0);
	for (ms = 0; ms < HOLD_MS && !t.req[f].complete_seq; ms++) {
		poll_used();
		sleep_ms(1);
	}
	assert_int_equal(t.req[a].complete_seq, 0);
	gate_release();
	wait_complete(a);
	wait_complete(f);
	check_all();
}

/* Leaving writeback (WCE 1 -> 0) makes the completed writes durable first. */
static void test_wce_switch_flushes(void **state)
{
	const struct ev *wret, *fc;
	uint64_t after;
	int n, m;

	n = submit(VIRTIO_BLK_T_OUT, 300);
	wait_complete(n);
	vdrv_cfg_set(&t.drv, offsetof(struct blk_config, wce), &(uint8_t){ 0 }, 1);
	after = log_ev(EV_SUBMIT, 0, false, -1);	/* marks "config write returned" */
	snapshot();
	check_writeback_out(&t.req[n]);
	wret = write_ret_for(&t.req[n]);
	fc = find(EV_F_CALL, true, 0, wret->seq, after);
	assert_non_null(fc);
	assert_non_null(find(EV_F_RET, true, 0, fc->seq, after));

	/* From now on, writethru: a synchronous write before completion. */
	m = submit(VIRTIO_BLK_T_OUT, 308);
	wait_complete(m);
	check_early();
	snapshot();
	check_writethru(&t.req[m]);
	assert_true(write_call_for(&t.req[m])->sync);
}

static int run_group(const char *aio)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writethru_sync_before_complete,
						setup_writethru, teardown),
		cmocka_unit_test_setup_teardown(test_writethru_held_write, setup_writethru, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_held_write, setup_writeback, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_held_flush, setup_writeback, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_flush_with_write_in_flight,
						setup_writeback, teardown),
		cmocka_unit_test_setup_teardown(test_wce_switch_flushes, setup_writeback, teardown),
	};
	char name[64];

	t.aio = aio;
	snprintf(name, sizeof(name), "durability, aio=%s", aio);
	return _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}

int main(void)
{
	int failed = run_group("threads");

	/* A kernel without io_uring fails the io_uring group's set-up: reported, not passed. */
	return failed + run_group("io_uring");
}
