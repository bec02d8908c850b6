// SPDX-License-Identifier: MIT
/*
 * The virtio-blk device end to end without a VM, for both engines
 * (aio=io_uring and aio=threads): a guest_mem with a legacy ring in it,
 * the device over a temporary image, driven the way Linux's virtio_blk
 * (and bench/) drives it: descriptors and avail ring in guest memory, a
 * write to the kick eventfd, an interrupt sink that signals an eventfd,
 * ISR read to acknowledge, used ring read back.
 *
 * If the kernel refuses io_uring, the io_uring runs are skipped loudly
 * and the default-engine test checks the fallback instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "lib/guest_mem.h"

#define RAM_SIZE	(32ULL << 20)
#define QSIZE		128
#define RING_PFN	0x10			/* ring at 64 KiB */
#define RING_GPA	((uint64_t)RING_PFN << 12)
#define HDR_GPA		(1ULL << 20)		/* 16 bytes per request slot */
#define STATUS_GPA	(HDR_GPA + 16ULL * QSIZE)
#define DATA_GPA	(2ULL << 20)		/* 128 KiB per request slot */
#define SLOT_DATA	(128u << 10)
#define IMG_SIZE	(8u << 20)
#define MAX_REQS	32			/* 3 descriptors each */
#define TIMEOUT_MS	10000

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct t {
	enum blk_aio aio;		/* what the test asks for */
	struct guest_mem gm;
	struct blk_dev *b;
	char path[64];
	int irq_efd;
	unsigned int asserts;
	uint16_t avail_idx, used_seen;
	bool hold_avail;		/* queue_req() leaves avail->idx to publish() */
};

static bool uring_ok;

/* ---- fakes: notify (ioeventfd) and interrupt sinks ---- */

static int fake_attach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return 0;
}

static int fake_detach(void *opaque, uint16_t port, unsigned int n, int efd)
{
	return 0;
}

static const struct virtio_notify fake_notify = {
	.attach = fake_attach, .detach = fake_detach,
};

static void fake_assert(void *opaque)
{
	struct t *t = opaque;
	uint64_t one = 1;

	__atomic_add_fetch(&t->asserts, 1, __ATOMIC_RELAXED);
	assert_int_equal(write(t->irq_efd, &one, sizeof(one)), sizeof(one));
}

static void fake_deassert(void *opaque)
{
}

/* ---- the driver side ---- */

static uint8_t *gp(struct t *t, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gmem_ptr(&t->gm, gpa, len);

	assert_non_null(p);
	return p;
}

static struct vdesc *desc(struct t *t)
{
	return (struct vdesc *)gp(t, RING_GPA, 16ULL * QSIZE);
}

static uint16_t *avail(struct t *t)
{
	return (uint16_t *)gp(t, RING_GPA + 16ULL * QSIZE, 4 + 2 * QSIZE + 2);
}

static uint64_t used_gpa(void)
{
	uint64_t a = RING_GPA + 16ULL * QSIZE + 4 + 2 * QSIZE + 2;

	return (a + 4095) & ~4095ULL;
}

static volatile uint16_t *used_idx(struct t *t)
{
	return (volatile uint16_t *)gp(t, used_gpa() + 2, 2);
}

static void used_elem(struct t *t, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint32_t *e = (uint32_t *)gp(t, used_gpa() + 4 + 8ULL * (i % QSIZE), 8);

	*id = e[0];
	*len = e[1];
}

static void bar_write(struct t *t, uint16_t off, unsigned int size, uint32_t val)
{
	virtio_pci_bar_ops.write(&t->b->vp, off, size, val);
}

static uint32_t bar_read(struct t *t, uint16_t off, unsigned int size)
{
	return virtio_pci_bar_ops.read(&t->b->vp, off, size);
}

/* virtio_pci_legacy probe + virtblk_probe, up to DRIVER_OK. */
static void driver_setup(struct t *t)
{
	memset(gp(t, RING_GPA, virtq_legacy_size(QSIZE)), 0, virtq_legacy_size(QSIZE));
	t->avail_idx = t->used_seen = 0;
	bar_write(t, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	bar_write(t, VIRTIO_PCI_GUEST_FEATURES, 4, bar_read(t, VIRTIO_PCI_HOST_FEATURES, 4));
	bar_write(t, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(bar_read(t, VIRTIO_PCI_QUEUE_NUM, 2), QSIZE);
	bar_write(t, VIRTIO_PCI_QUEUE_PFN, 4, RING_PFN);
	bar_write(t, VIRTIO_PCI_STATUS, 1,
		  VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_true(t->b->vp.vq[0].ready);
}

static uint8_t *slot_data(struct t *t, unsigned int slot)
{
	return gp(t, DATA_GPA + (uint64_t)slot * SLOT_DATA, SLOT_DATA);
}

static uint8_t *slot_status(struct t *t, unsigned int slot)
{
	return gp(t, STATUS_GPA + slot, 1);
}

/*
 * Queue request slot (descriptors 3*slot..+2): header, data of len bytes
 * split in nseg pieces (none for FLUSH/len 0), status.  Not kicked yet.
 */
static void queue_req(struct t *t, unsigned int slot, uint32_t type, uint64_t sector,
		      uint32_t len, unsigned int nseg)
{
	struct vdesc *d = desc(t);
	struct outhdr *h = (struct outhdr *)gp(t, HDR_GPA + 16ULL * slot, 16);
	unsigned int head = 3 * slot, i = head, s;
	bool write_data = type != VIRTIO_BLK_T_OUT;
	uint16_t *av = avail(t);

	assert_true(slot < MAX_REQS && len <= SLOT_DATA && nseg <= 1);
	h->type = htole32(type);
	h->ioprio = 0;
	h->sector = htole64(sector);
	*slot_status(t, slot) = 0xee;
	d[i] = (struct vdesc){ .addr = HDR_GPA + 16ULL * slot, .len = 16,
			       .flags = VRING_DESC_F_NEXT, .next = i + 1 };
	i++;
	for (s = 0; s < nseg; s++, i++)
		d[i] = (struct vdesc){ .addr = DATA_GPA + (uint64_t)slot * SLOT_DATA, .len = len,
				       .flags = VRING_DESC_F_NEXT |
						(write_data ? VRING_DESC_F_WRITE : 0),
				       .next = i + 1 };
	d[i] = (struct vdesc){ .addr = STATUS_GPA + slot, .len = 1, .flags = VRING_DESC_F_WRITE };
	av[2 + (t->avail_idx % QSIZE)] = head;
	t->avail_idx++;
	if (!t->hold_avail)
		__atomic_store_n(&av[1], t->avail_idx, __ATOMIC_RELEASE);
}

/* Make every request queued so far available at once (one avail->idx store). */
static void publish(struct t *t)
{
	__atomic_store_n(&avail(t)[1], t->avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct t *t)
{
	uint64_t one = 1;

	assert_true(t->b->vp.kick_efd[0] >= 0);
	assert_int_equal(write(t->b->vp.kick_efd[0], &one, sizeof(one)), sizeof(one));
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* vp_interrupt: wait for the line, ack by reading ISR, until n more are used. */
static void wait_used(struct t *t, unsigned int n)
{
	uint16_t target = t->used_seen + n;
	long deadline = now_ms() + TIMEOUT_MS;
	struct pollfd pfd = { .fd = t->irq_efd, .events = POLLIN };
	uint64_t v;

	while (__atomic_load_n(used_idx(t), __ATOMIC_ACQUIRE) != target) {
		long left = deadline - now_ms();

		if (left <= 0)
			fail_msg("timeout: used idx %u, want %u", *used_idx(t), target);
		if (poll(&pfd, 1, (int)left) == 1) {
			assert_int_equal(read(t->irq_efd, &v, sizeof(v)), sizeof(v));
			bar_read(t, VIRTIO_PCI_ISR, 1);
		}
	}
	t->used_seen = target;
}

/* The used entry for slot, somewhere in the last n used entries. */
static uint32_t used_len_of(struct t *t, unsigned int slot, unsigned int n)
{
	uint32_t id, len;
	unsigned int i;

	for (i = 0; i < n; i++) {
		used_elem(t, (uint16_t)(t->used_seen - n + i), &id, &len);
		if (id == 3 * slot)
			return len;
	}
	fail_msg("slot %u not on the used ring", slot);
	return 0;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 7 + i * 31 + (i >> 9));
}

/* ---- set-up ---- */

static int dev_up(struct t *t, const char *extra)
{
	const struct virtio_irq irq = {
		.assert_line = fake_assert, .deassert_line = fake_deassert, .opaque = t,
	};
	char args[256];
	uint8_t *img;
	int fd, ret;

	strcpy(t->path, "/tmp/tvmm-uring-XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	img = malloc(IMG_SIZE);
	assert_non_null(img);
	fill(img, IMG_SIZE, 0);
	assert_int_equal(write(fd, img, IMG_SIZE), IMG_SIZE);
	free(img);
	close(fd);

	assert_int_equal(gmem_init(&t->gm, RAM_SIZE), 0);
	snprintf(args, sizeof(args), "%s,qsize=%u%s%s%s", t->path, QSIZE,
		 t->aio == BLK_AIO_IO_URING ? ",aio=io_uring" :
		 t->aio == BLK_AIO_THREADS ? ",aio=threads" : "", extra ? "," : "",
		 extra ? extra : "");
	ret = blk_dev_create(&t->b, args, &t->gm);
	if (ret)
		return ret;
	t->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(t->irq_efd >= 0);
	virtio_pci_set_irq(&t->b->vp, &irq);
	assert_int_equal(virtio_pci_set_notify(&t->b->vp, &fake_notify), 0);
	assert_int_equal(blk_dev_start(t->b), 0);
	driver_setup(t);
	return 0;
}

static int dev_down(struct t *t)
{
	int ret = blk_dev_destroy(t->b);

	t->b = NULL;
	close(t->irq_efd);
	gmem_free(&t->gm);
	unlink(t->path);
	return ret;
}

/* The prestate of each test: which engine. */
static enum blk_aio aio_uring = BLK_AIO_IO_URING, aio_threads = BLK_AIO_THREADS;

static struct t *t_new(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->aio = *(enum blk_aio *)*state;
	if (t->aio == BLK_AIO_IO_URING && !uring_ok) {
		free(t);
		fprintf(stderr, "*** SKIPPED: io_uring refused by this kernel, io_uring engine not tested ***\n");
		skip();
	}
	assert_int_equal(dev_up(t, NULL), 0);
	assert_int_equal(t->b->aio, t->aio);
	return t;
}

/* Tests of the io_uring engine alone: skipped, loudly, without io_uring. */
static void need_uring(void)
{
	if (!uring_ok) {
		fprintf(stderr, "*** SKIPPED: io_uring refused by this kernel ***\n");
		skip();
	}
}

static struct t *uring_t(void)
{
	struct t *t;

	need_uring();
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->aio = BLK_AIO_IO_URING;
	return t;
}

/* ---- tests ---- */

static void test_qd32_read(void **state)
{
	struct t *t = t_new(state);
	uint8_t expect[4096];
	unsigned int i;

	/* 32 random 4 KiB reads in flight at once, one kick. */
	srand(5);
	for (i = 0; i < MAX_REQS; i++) {
		uint64_t sector = (uint64_t)(rand() % (IMG_SIZE / 4096)) * 8;

		memset(slot_data(t, i), 0, 4096);
		queue_req(t, i, VIRTIO_BLK_T_IN, sector, 4096, 1);
	}
	kick(t);
	wait_used(t, MAX_REQS);
	for (i = 0; i < MAX_REQS; i++) {
		struct outhdr *h = (struct outhdr *)gp(t, HDR_GPA + 16ULL * i, 16);
		uint64_t off = le64toh(h->sector) * 512;
		size_t k;

		assert_int_equal(*slot_status(t, i), VIRTIO_BLK_S_OK);
		assert_int_equal(used_len_of(t, i, MAX_REQS), 4096 + 1);
		/* The image holds fill(img, IMG_SIZE, 0). */
		for (k = 0; k < sizeof(expect); k++)
			expect[k] = (uint8_t)((off + k) * 31 + ((off + k) >> 9));
		assert_memory_equal(slot_data(t, i), expect, sizeof(expect));
	}
	if (t->aio == BLK_AIO_IO_URING)
		/* Completions are batched: far fewer interrupts than requests. */
		assert_true(t->asserts < MAX_REQS);
	fprintf(stderr, "qd32 read (%s): %u interrupts for %u requests\n",
		t->aio == BLK_AIO_IO_URING ? "io_uring" : "threads", t->asserts, MAX_REQS);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* Writes of every size class, a FLUSH, read back through the file. */
static void write_flush(void **state, const char *mode)
{
	struct t *t = calloc(1, sizeof(*t));
	uint8_t *buf;
	unsigned int i;
	int fd;

	assert_non_null(t);
	t->aio = *(enum blk_aio *)*state;
	if (t->aio == BLK_AIO_IO_URING && !uring_ok) {
		free(t);
		skip();
	}
	assert_int_equal(dev_up(t, mode), 0);
	assert_int_equal(t->b->cfg.wce, !strcmp(mode, "writeback"));
	for (i = 0; i < MAX_REQS; i++) {
		uint32_t len = i % 4 == 3 ? SLOT_DATA : 4096u << (i % 4);

		fill(slot_data(t, i), len, 100 + i);
		/* Non-overlapping: slot i at i * 128 KiB. */
		queue_req(t, i, VIRTIO_BLK_T_OUT, (uint64_t)i * (SLOT_DATA / 512), len, 1);
	}
	kick(t);
	wait_used(t, MAX_REQS);
	for (i = 0; i < MAX_REQS; i++) {
		assert_int_equal(*slot_status(t, i), VIRTIO_BLK_S_OK);
		assert_int_equal(used_len_of(t, i, MAX_REQS), 1);
	}
	/* FLUSH covers every completed write. */
	queue_req(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	kick(t);
	wait_used(t, 1);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 0, 1), 1);
	assert_int_equal(t->b->flush_err, 0);

	buf = malloc(SLOT_DATA);
	assert_non_null(buf);
	fd = open(t->path, O_RDONLY);
	assert_true(fd >= 0);
	for (i = 0; i < MAX_REQS; i++) {
		uint32_t len = i % 4 == 3 ? SLOT_DATA : 4096u << (i % 4);
		uint8_t *expect = malloc(len);

		assert_non_null(expect);
		fill(expect, len, 100 + i);
		assert_int_equal(pread(fd, buf, len, (off_t)i * SLOT_DATA), len);
		assert_memory_equal(buf, expect, len);
		free(expect);
	}
	close(fd);
	free(buf);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static void test_write_flush_writethru(void **state)
{
	write_flush(state, "writethru");
}

static void test_write_flush_writeback(void **state)
{
	write_flush(state, "writeback");
}

/* Requests that never reach the disk, and ones the disk fails. */
/* ---- durability by ordering (issue 6), io_uring engine ---- */

#define MAX_EVENTS 4096

static struct {
	const struct blk_ioreq *io;
	enum blk_uring_event ev;
	int res;
} events[MAX_EVENTS];
static unsigned int nr_events;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(const struct blk_ioreq *io, enum blk_uring_event ev, int res)
{
	pthread_mutex_lock(&events_lock);
	if (nr_events < MAX_EVENTS)
		events[nr_events++] = (typeof(events[0])){ io, ev, res };
	pthread_mutex_unlock(&events_lock);
}

/*
 * Walk the log from index from, one pass: each request is an episode of
 * an ioreq from its first submission to its FINISHED (ioreqs are reused,
 * so the same pointer may start a new episode later).  Check every
 * episode's operations came in an order that makes its completion honest.
 */
struct walk {
	unsigned int finished, fsyncs, inline_writes;
	int last_finished;
};

struct episode {
	const struct blk_ioreq *io;
	bool is_write, in_fsync, inline_write;
	int inline_sync;
	int last_data_reap, fsync_submit, fsync_reap;
};

static struct walk walk_log(unsigned int from, bool writethru)
{
	struct episode ep[QSIZE];
	unsigned int nr = 0, k;
	struct walk w = { .last_finished = -1 };
	int i, n = (int)nr_events;

	for (i = (int)from; i < n; i++) {
		struct episode *e = NULL;

		for (k = 0; k < nr; k++)
			if (ep[k].io == events[i].io)
				e = &ep[k];
		if (!e) {
			assert_true(nr < QSIZE);
			e = &ep[nr++];
			*e = (struct episode){ .io = events[i].io, .last_data_reap = -1,
					       .fsync_submit = -1, .fsync_reap = -1 };
		}
		switch (events[i].ev) {
		case BLK_URING_SUBMIT_WRITE:
			e->is_write = true;
			e->in_fsync = false;
			break;
		case BLK_URING_WRITE_INLINE:
			e->is_write = true;
			e->inline_write = true;
			e->inline_sync = events[i].res;
			break;
		case BLK_URING_SUBMIT_FSYNC:
			e->in_fsync = true;
			e->fsync_submit = i;
			w.fsyncs++;
			break;
		case BLK_URING_REAPED:
			if (e->in_fsync) {
				assert_int_equal(events[i].res, 0);
				e->fsync_reap = i;
			} else {
				assert_true(events[i].res > 0);
				e->last_data_reap = i;
			}
			break;
		case BLK_URING_FINISHED:
			assert_int_equal(events[i].res, VIRTIO_BLK_S_OK);
			if (e->inline_write) {
				/* written by the queue thread itself: synchronously iff writethru */
				assert_int_equal(e->inline_sync, writethru);
				w.inline_writes++;
			} else if (e->is_write && writethru) {
				/* write reaped, then its own fsync sent and reaped, then done */
				assert_true(e->last_data_reap >= 0 &&
					    e->fsync_submit > e->last_data_reap);
				assert_true(e->fsync_reap > e->fsync_submit && i > e->fsync_reap);
			} else if (e->is_write) {
				assert_true(e->last_data_reap >= 0 && i > e->last_data_reap);
				assert_int_equal(e->fsync_submit, -1);	/* writeback: no fsync */
			} else {
				/* a FLUSH: done only after its fsync came back */
				assert_true(e->fsync_submit >= 0 && e->fsync_reap > e->fsync_submit &&
					    i > e->fsync_reap);
			}
			w.finished++;
			w.last_finished = i;
			*e = ep[--nr];	/* episode over; the ioreq may start another */
			break;
		default:
			fail_msg("unexpected event %d", events[i].ev);
		}
	}
	assert_int_equal(nr, 0);	/* nothing left half done */
	return w;
}

static void durability_order(const char *mode)
{
	struct t *t = uring_t();
	struct walk w;
	unsigned int i, mark;
	int flush_submit = -1;

	nr_events = 0;
	blk_uring_observe = record;
	assert_int_equal(dev_up(t, mode), 0);
	assert_int_equal(t->b->aio, BLK_AIO_IO_URING);
	/*
	 * All 32 in one avail->idx update: the queue thread may be awake
	 * already (DRIVER_OK wakes it), and must not see the first alone.
	 */
	t->hold_avail = true;
	for (i = 0; i < MAX_REQS; i++) {
		fill(slot_data(t, i), 4096, 300 + i);
		queue_req(t, i, VIRTIO_BLK_T_OUT, (uint64_t)i * 8, 4096, 1);
	}
	publish(t);
	t->hold_avail = false;
	kick(t);
	wait_used(t, MAX_REQS);
	pthread_mutex_lock(&events_lock);
	w = walk_log(0, !strcmp(mode, "writethru"));
	pthread_mutex_unlock(&events_lock);
	assert_int_equal(w.finished, MAX_REQS);
	/* 32 at once: none is alone, so each writethru one has its own fsync. */
	assert_int_equal(w.fsyncs, !strcmp(mode, "writethru") ? MAX_REQS : 0);
	assert_int_equal(w.inline_writes, 0);

	/* FLUSH after they completed: its fsync goes out after every one of them. */
	mark = nr_events;
	queue_req(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	kick(t);
	wait_used(t, 1);
	pthread_mutex_lock(&events_lock);
	for (i = mark; i < nr_events; i++)
		if (events[i].ev == BLK_URING_SUBMIT_FSYNC)
			flush_submit = (int)i;
	assert_true(flush_submit > w.last_finished);
	w = walk_log(mark, false);
	pthread_mutex_unlock(&events_lock);
	assert_int_equal(w.finished, 1);
	assert_int_equal(w.fsyncs, 1);
	blk_uring_observe = NULL;
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static void test_durability_order_writethru(void **state)
{
	durability_order("writethru");
}

static void test_durability_order_writeback(void **state)
{
	durability_order("writeback");
}

/*
 * Queue depth 1 writethru: each write is alone, so the queue thread
 * writes it itself; the log must show it did so synchronously and never
 * finished a write that was not, and the data must be in the file.
 */
static void test_writethru_alone_inline(void **state)
{
	struct t *t = uring_t();
	uint8_t buf[4096], expect[4096];
	unsigned int i;
	struct walk w;
	int fd;

	(void)state;
	nr_events = 0;
	blk_uring_observe = record;
	assert_int_equal(dev_up(t, "writethru"), 0);
	for (i = 0; i < 8; i++) {
		fill(slot_data(t, 0), 4096, 900 + i);
		queue_req(t, 0, VIRTIO_BLK_T_OUT, (uint64_t)i * 8, 4096, 1);
		kick(t);
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	}
	pthread_mutex_lock(&events_lock);
	w = walk_log(0, true);
	pthread_mutex_unlock(&events_lock);
	blk_uring_observe = NULL;
	assert_int_equal(w.finished, 8);
	assert_int_equal(w.inline_writes, 8);
	assert_int_equal(w.fsyncs, 0);

	fd = open(t->path, O_RDONLY);
	assert_true(fd >= 0);
	for (i = 0; i < 8; i++) {
		fill(expect, sizeof(expect), 900 + i);
		assert_int_equal(pread(fd, buf, sizeof(buf), (off_t)i * 4096), sizeof(buf));
		assert_memory_equal(buf, expect, sizeof(buf));
	}
	close(fd);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * poll=: the driver kicks the way Linux does (publish, full fence, kick
 * only if VRING_USED_F_NO_NOTIFY is clear).  Requests come back to back
 * (the device is polling, so it suppresses kicks) and after pauses long
 * enough for it to give up and sleep, so the hand-over from polling to
 * kicks is crossed thousands of times: a request posted while kicks were
 * off must never be stranded (wait_used fails after 10 s).
 */
static unsigned int poll_run(struct t *t, unsigned int n, unsigned int pause_every)
{
	volatile uint16_t *used_flags = (volatile uint16_t *)gp(t, used_gpa(), 2);
	unsigned int i, skipped = 0;
	uint64_t one = 1;

	for (i = 0; i < n; i++) {
		queue_req(t, 0, VIRTIO_BLK_T_IN, (uint64_t)(i % 512) * 8, 4096, 1);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (*used_flags & 1)
			skipped++;
		else
			assert_int_equal(write(t->b->vp.kick_efd[0], &one, sizeof(one)),
					 sizeof(one));
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
		if (pause_every && i % pause_every == 0)
			usleep((useconds_t)(i * 7919 % 300));
	}
	return skipped;
}

static void test_poll_kicks(void **state)
{
	volatile uint16_t *used_flags;
	struct t *t = uring_t();
	unsigned int skipped;

	(void)state;
	assert_int_equal(dev_up(t, "poll=100"), 0);
	skipped = poll_run(t, 4000, 3);
	fprintf(stderr, "poll=100: %u of 4000 requests needed no kick\n", skipped);
	/* Polling happened: some requests were taken without a kick... */
	assert_true(skipped > 0);
	/* ...and once idle the device sleeps with kicks back on. */
	used_flags = (volatile uint16_t *)gp(t, used_gpa(), 2);
	usleep(20000);
	assert_int_equal(*used_flags & 1, 0);
	assert_int_equal(dev_down(t), 0);

	/* poll=0: never asks the driver not to kick. */
	assert_int_equal(dev_up(t, "poll=0"), 0);
	assert_int_equal(poll_run(t, 500, 0), 0);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * A kick consumed between the pop and the sleep (found in review): the
 * queue thread wakes for a FLUSH's completion; R1, already on the ring
 * but not yet kicked, is posted just as that CQE is reaped, so the pop
 * takes it; while R1 is submitted the driver posts R2 and kicks (for R1
 * and R2: the eventfd adds them up).  R1 completes inside the submit and
 * its reap drains the kick; the thread must not then sleep with R2 on
 * the ring.  The window is narrow, so the driver's timing is swept over
 * 400 rounds; each round gets 200 ms before it counts as stranded.
 */
static struct t *race_t;
static int race_stage, race_go, race_delay;

static void race_hook(const struct blk_ioreq *io, enum blk_uring_event ev, int res)
{
	(void)io;
	(void)res;
	if (race_stage == 1 && ev == BLK_URING_REAPED) {
		queue_req(race_t, 1, VIRTIO_BLK_T_IN, 8, 4096, 1);	/* R1, no kick */
		__atomic_store_n(&race_stage, 2, __ATOMIC_RELEASE);
	} else if (race_stage == 2 && ev == BLK_URING_SUBMIT_READ) {
		race_stage = 3;
		__atomic_store_n(&race_go, 1, __ATOMIC_RELEASE);
	}
}

static void *race_driver(void *arg)
{
	long end;
	int i;

	/*
	 * R1 first (the FLUSH was kicked, so its reap comes): this kick must
	 * follow R1, which is never kicked otherwise, and only one thread
	 * may post at a time.
	 */
	while (__atomic_load_n(&race_stage, __ATOMIC_ACQUIRE) < 2)
		__builtin_ia32_pause();
	/*
	 * Then wait for R1's submission; when the FLUSH completed inside its
	 * own submit, R1 came after the pop and waits for this kick instead.
	 */
	end = now_ms() + 5;
	while (!__atomic_load_n(&race_go, __ATOMIC_ACQUIRE) && now_ms() < end)
		__builtin_ia32_pause();
	for (i = 0; i < race_delay; i++)
		__builtin_ia32_pause();
	queue_req(race_t, 2, VIRTIO_BLK_T_IN, 16, 4096, 1);	/* R2 */
	kick(race_t);
	return arg;
}

static void test_kick_after_pop(void **state)
{
	struct t *t = uring_t();
	unsigned int round, stranded = 0;
	uint16_t want;
	pthread_t d;
	long end;

	(void)state;
	assert_int_equal(dev_up(t, "poll=32"), 0);
	race_t = t;
	blk_uring_observe = race_hook;
	for (round = 0; round < 400; round++) {
		usleep(300);	/* idle: the adaptive poll window shrinks to 0 */
		race_go = 0;
		race_delay = (int)(round % 40) * 25;
		/* Before the driver starts: it must not see the last round's stage. */
		__atomic_store_n(&race_stage, 1, __ATOMIC_RELEASE);
		assert_int_equal(pthread_create(&d, NULL, race_driver, NULL), 0);
		queue_req(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
		kick(t);
		assert_int_equal(pthread_join(d, NULL), 0);
		want = t->used_seen + 3;
		end = now_ms() + 200;
		while (*used_idx(t) != want && now_ms() < end)
			usleep(100);
		if (*used_idx(t) != want) {
			stranded++;
			kick(t);	/* get it going again, to count the rest */
		}
		wait_used(t, 3);
	}
	blk_uring_observe = NULL;
	race_stage = 0;
	fprintf(stderr, "kick after pop: %u of 400 rounds stranded a request\n", stranded);
	assert_int_equal(stranded, 0);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * The ring is restricted before anything runs: what the seccomp filter
 * cannot see (operations inside a ring) must be limited to the engine's
 * four.  READV works; OPENAT and READ (not on the list) are refused.
 */
static void test_ring_restricted(void **state)
{
	struct guest_mem gm;
	struct blk_dev *b;
	char path[] = "/tmp/tvmm-ring-XXXXXX", args[64];
	static uint8_t buf[4096];
	int fd;

	(void)state;
	need_uring();
	fd = mkstemp(path);
	assert_true(fd >= 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	close(fd);
	assert_int_equal(gmem_init(&gm, RAM_SIZE), 0);
	snprintf(args, sizeof(args), "%s,aio=io_uring", path);
	assert_int_equal(blk_dev_create(&b, args, &gm), 0);
	assert_int_equal(b->aio, BLK_AIO_IO_URING);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(blk_uring_try_op(b, IORING_OP_READV, buf, sizeof(buf), NULL), 4096);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(blk_uring_try_op(b, IORING_OP_OPENAT, NULL, 0, "/etc/passwd"), -EACCES);
	assert_int_equal(blk_uring_try_op(b, IORING_OP_READ, buf, sizeof(buf), NULL), -EACCES);
	assert_int_equal(blk_uring_try_op(b, IORING_OP_SENDMSG, NULL, 0, NULL), -EACCES);

	assert_int_equal(blk_dev_destroy(b), 0);
	gmem_free(&gm);
	unlink(path);
}

static void test_errors(void **state)
{
	struct t *t = t_new(state);
	uint64_t cap = IMG_SIZE / 512;
	int fd;

	queue_req(t, 0, VIRTIO_BLK_T_IN, cap, 512, 1);		/* just past the end */
	queue_req(t, 1, VIRTIO_BLK_T_IN, cap - 1, 1024, 1);	/* straddles the end */
	queue_req(t, 2, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, 512, 1);	/* overflows */
	queue_req(t, 3, VIRTIO_BLK_T_IN, 0, 100, 1);		/* not whole sectors */
	queue_req(t, 4, VIRTIO_BLK_T_GET_ID, 0, 20, 1);
	queue_req(t, 5, 0x1234, 0, 512, 1);			/* unknown type */
	queue_req(t, 6, VIRTIO_BLK_T_IN, cap - 1, 512, 1);	/* last sector: fine */
	queue_req(t, 7, VIRTIO_BLK_T_IN, 8, 0, 0);		/* no data: OK */
	kick(t);
	wait_used(t, 8);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 0, 8), 1);
	assert_int_equal(*slot_status(t, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 1, 8), 1);
	assert_int_equal(*slot_status(t, 2), VIRTIO_BLK_S_IOERR);
	assert_int_equal(*slot_status(t, 3), VIRTIO_BLK_S_IOERR);
	assert_int_equal(*slot_status(t, 4), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 4, 8), 21);
	assert_memory_equal(slot_data(t, 4), t->b->serial, 13);
	assert_int_equal(*slot_status(t, 5), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(*slot_status(t, 6), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 6, 8), 513);
	assert_int_equal(*slot_status(t, 7), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 7, 8), 1);

	/*
	 * The image shrinks under the device: a read of the lost half sees
	 * EOF (a short transfer) and must be IOERR, never OK; one that
	 * straddles the new end gets its first part and then EOF.
	 */
	fd = open(t->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SIZE / 2 + 2048), 0);
	close(fd);
	queue_req(t, 0, VIRTIO_BLK_T_IN, IMG_SIZE / 512 - 8, 4096, 1);
	queue_req(t, 1, VIRTIO_BLK_T_IN, IMG_SIZE / 1024, 4096, 1);
	queue_req(t, 2, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	wait_used(t, 3);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 0, 3), 1);
	assert_int_equal(*slot_status(t, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 1, 3), 1);
	assert_int_equal(*slot_status(t, 2), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 2, 3), 4097);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * The request in slot was completed with used length 0 and nothing
 * written: the device must want a reset and serve nothing more (a good
 * request in slot + 1 is left alone) until it gets one, then work again.
 */
static void expect_unanswered(struct t *t, unsigned int slot)
{
	wait_used(t, 1);
	assert_int_equal(used_len_of(t, slot, 1), 0);
	assert_int_equal(*slot_status(t, slot), 0xee);
	/* Set before the used entry: no queue set-up can slip in between. */
	assert_true(bar_read(t, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(t->b->vp.vq[0].broken);

	queue_req(t, slot + 1, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	usleep(50000);
	assert_int_equal(*used_idx(t), t->used_seen);
	assert_int_equal(*slot_status(t, slot + 1), 0xee);

	bar_write(t, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(bar_read(t, VIRTIO_PCI_STATUS, 1), 0);
	driver_setup(t);
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	wait_used(t, 1);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 0, 1), 4097);
}

/*
 * A chain virtq_pop() refuses gets IOERR in its status byte when it has
 * one; a request without a status byte the device could write (refused
 * or not) stops the queue until the driver resets the device.
 */
static void test_unanswerable(void **state)
{
	struct t *t = t_new(state);
	struct vdesc *d = desc(t);

	/* Data outside RAM, status fine; a good request beside it. */
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	d[1].addr = RAM_SIZE;
	queue_req(t, 1, VIRTIO_BLK_T_OUT, 8, 4096, 1);
	kick(t);
	wait_used(t, 2);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 0, 2), 1);
	assert_int_equal(*slot_status(t, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 1, 2), 1);
	assert_false(bar_read(t, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);

	/* A good chain whose "status" is device-readable: nothing to answer in. */
	queue_req(t, 2, VIRTIO_BLK_T_OUT, 8, 4096, 1);
	d[3 * 2 + 2].flags = 0;
	kick(t);
	expect_unanswered(t, 2);

	/* A refused chain with no end: a loop back to its head. */
	queue_req(t, 4, VIRTIO_BLK_T_IN, 0, 4096, 1);
	d[3 * 4 + 2].flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE;
	d[3 * 4 + 2].next = 3 * 4;
	kick(t);
	expect_unanswered(t, 4);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* A reset with requests in flight waits for them; nothing is used after it. */
static void test_reset_in_flight(void **state)
{
	struct t *t = t_new(state);
	unsigned int round, i, partial = 0, total = 0, busy = 0;
	uint16_t used;
	uint64_t popped;

	for (round = 0; round < 20; round++) {
		uint64_t before = t->b->requests;
		uint16_t used_before = *used_idx(t);

		for (i = 0; i < MAX_REQS; i++)
			queue_req(t, i, i % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				  (uint64_t)i * 256, SLOT_DATA, 1);
		kick(t);
		if (round % 2)
			usleep(100 * round);
		busy += __atomic_load_n(&t->b->in_flight, __ATOMIC_RELAXED) > 0;
		bar_write(t, VIRTIO_PCI_STATUS, 1, 0);		/* reset */
		assert_int_equal(t->b->in_flight, 0);
		/* Every request that was popped was completed, exactly once. */
		used = *used_idx(t);
		popped = t->b->requests - before;
		assert_int_equal((uint16_t)(used - used_before), popped);
		total += popped;
		partial += popped > 0 && popped < MAX_REQS;
		usleep(2000);
		assert_int_equal(*used_idx(t), used);
		assert_int_equal(bar_read(t, VIRTIO_PCI_ISR, 1), 0);
		/* And the device works after it. */
		driver_setup(t);
		queue_req(t, 0, VIRTIO_BLK_T_IN, 16, 4096, 1);
		kick(t);
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	}
	fprintf(stderr, "reset (%s): %u requests completed across 20 resets, %u resets mid-batch, %u with requests in flight\n",
		t->aio == BLK_AIO_IO_URING ? "io_uring" : "threads", total, partial, busy);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* Destroy with requests in flight: drains, ASan sees no use after free. */
static void test_destroy_in_flight(void **state)
{
	struct t *t = t_new(state);
	unsigned int i;

	for (i = 0; i < MAX_REQS; i++)
		queue_req(t, i, VIRTIO_BLK_T_OUT, (uint64_t)i * 256, SLOT_DATA, 1);
	kick(t);
	usleep(200);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* Without aio=: io_uring where the kernel takes it, else threads. */
static void test_default_engine(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->aio = BLK_AIO_DEFAULT;
	assert_int_equal(dev_up(t, NULL), 0);
	assert_int_equal(t->b->aio, uring_ok ? BLK_AIO_IO_URING : BLK_AIO_THREADS);
	assert_int_equal(t->b->uring != NULL, uring_ok);
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	wait_used(t, 1);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* In a child: make io_uring_setup fail with ENOSYS, as an old kernel would. */
static void refuse_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(90);
}

/*
 * The kernel refuses io_uring: the default falls back to threads with
 * one info line, an explicit aio=io_uring is an error naming the option.
 * Runs in a child (the seccomp filter is for good); stderr to a file.
 */
static void test_refused(void **state)
{
	char log[] = "/tmp/tvmm-uring-log-XXXXXX", buf[4096];
	int fd = mkstemp(log), status;
	ssize_t n;
	pid_t pid;

	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct t t1 = { .aio = BLK_AIO_DEFAULT }, t2 = { .aio = BLK_AIO_IO_URING };
		struct t t3 = { .aio = BLK_AIO_DEFAULT };

		dup2(fd, STDERR_FILENO);
		refuse_io_uring();
		if (dev_up(&t1, NULL) || t1.b->aio != BLK_AIO_THREADS || t1.b->uring)
			_exit(91);
		queue_req(&t1, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
		kick(&t1);
		wait_used(&t1, 1);
		if (*slot_status(&t1, 0) != VIRTIO_BLK_S_OK || dev_down(&t1))
			_exit(92);
		/* Told once, not per device. */
		if (dev_up(&t3, NULL) || t3.b->aio != BLK_AIO_THREADS || dev_down(&t3))
			_exit(93);
		if (dev_up(&t2, NULL) != -ENOSYS)
			_exit(94);
		gmem_free(&t2.gm);
		unlink(t2.path);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = 0;
	close(fd);
	unlink(log);
	fprintf(stderr, "%s", buf);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(buf, "virtio-blk: io_uring unavailable (Function not implemented): using aio=threads\n"));
	/* One line for both devices. */
	assert_null(strstr(strstr(buf, "unavailable") + 1, "unavailable"));
	assert_non_null(strstr(buf, "virtio-blk: aio=io_uring: the kernel refuses io_uring: Function not implemented\n"));
}

static bool probe_uring(void)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret < 0) {
		fprintf(stderr, "*** io_uring_queue_init: %s: the io_uring engine is NOT tested here ***\n",
			strerror(-ret));
		return false;
	}
	io_uring_queue_exit(&ring);
	return true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define BOTH(fn) \
		cmocka_unit_test_prestate(fn, &aio_uring), \
		cmocka_unit_test_prestate(fn, &aio_threads)
		BOTH(test_qd32_read),
		BOTH(test_write_flush_writethru),
		BOTH(test_write_flush_writeback),
		BOTH(test_errors),
		BOTH(test_unanswerable),
		BOTH(test_reset_in_flight),
		BOTH(test_destroy_in_flight),
		cmocka_unit_test(test_default_engine),
		cmocka_unit_test(test_durability_order_writethru),
		cmocka_unit_test(test_durability_order_writeback),
		cmocka_unit_test(test_writethru_alone_inline),
		cmocka_unit_test(test_poll_kicks),
		cmocka_unit_test(test_kick_after_pop),
		cmocka_unit_test(test_ring_restricted),
		cmocka_unit_test(test_refused),
#undef BOTH
	};

	uring_ok = probe_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
