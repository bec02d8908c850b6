// SPDX-License-Identifier: MIT
/*
 * The virtio-blk device and its queue loop end to end without a VM, over
 * both disk engines (aio=io_uring and aio=threads): a guest_mem with a
 * legacy ring in it, the device over a temporary image, driven by the
 * test driver (tests/driver, as bench/ is) the way Linux's virtio_blk
 * drives it: descriptors and avail ring
 * in guest memory, a write to the kick eventfd, an interrupt sink that
 * signals an eventfd, ISR read to acknowledge, used ring read back.  A
 * fault filter (disk/fault.h) under the device shows what it asks of the
 * disk.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "disk/fault.h"
#include "disk/uring.h"
#include "lib/guest_mem.h"
#include "lib/io_bus.h"
#include "lib/util.h"
#include "pci/pci.h"
#include "tests/driver/capture.h"
#include "tests/driver/vdriver.h"

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

struct outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct t {
	enum blk_aio aio;		/* what the test asks for */
	struct guest_mem gm;
	struct blk_dev *b;
	struct vdrv drv;		/* drv.hold_avail: queue_req() leaves publishing */
	bool event_idx;			/* the driver acks VIRTIO_RING_F_EVENT_IDX */
	bool no_thread;			/* no queue thread: kicks through QUEUE_NOTIFY */
	char path[64];
	int irq_efd;
	unsigned int asserts;
	struct { uint32_t id, len; } used[MAX_REQS];	/* what the last wait_used() reaped */
	unsigned int nr_used;
	disk_fault_trace_fn *trace;	/* set: a fault filter under the device traces */
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

/* ---- the driver side (tests/driver) ---- */

static uint8_t *gp(struct t *t, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gmem_ptr(&t->gm, gpa, len);

	assert_non_null(p);
	return p;
}

static void bar_write(struct t *t, uint16_t off, unsigned int size, uint32_t val)
{
	virtio_pci_bar_ops.write(&t->b->vp, off, size, val);
}

static uint32_t bar_read(struct t *t, uint16_t off, unsigned int size)
{
	return virtio_pci_bar_ops.read(&t->b->vp, off, size);
}

/*
 * virtio_pci_legacy probe + virtblk_probe, up to DRIVER_OK, acking every
 * feature offered but EVENT_IDX, which only t->event_idx asks for.  No
 * reset first: the tests that reset do it themselves and check it.
 */
static void driver_setup(struct t *t)
{
	uint32_t mask = t->event_idx ? ~0u : ~(1u << VDRV_F_EVENT_IDX);

	vdrv_begin(&t->drv, &t->b->vp, &t->gm, mask, t->irq_efd, true);
	assert_int_equal(t->drv.event_idx, t->event_idx);
	assert_int_equal(vdrv_setup_queue(&t->drv, 0, RING_GPA, t->no_thread), 0);
	assert_int_equal(t->drv.num, QSIZE);
	/* Kicks go through the ioeventfd's eventfd, as under KVM. */
	assert_true(t->no_thread || t->drv.kick_fd >= 0);
	vdrv_driver_ok(&t->drv);
	assert_true(virtio_pci_get_vq(&t->b->vp, 0)->ready);
	assert_int_equal(virtq_has_event_idx(virtio_pci_get_vq(&t->b->vp, 0)), t->event_idx);
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
	const struct vdrv_blk_req r = {
		.type = type, .sector = sector,
		.hdr_gpa = HDR_GPA + 16ULL * slot, .status_gpa = STATUS_GPA + slot,
		.data_gpa = DATA_GPA + (uint64_t)slot * SLOT_DATA, .data_len = len, .nseg = nseg,
	};

	assert_true(slot < MAX_REQS && len <= SLOT_DATA && nseg <= 1);
	assert_int_equal(vdrv_blk_add(&t->drv, 3 * slot, &r), 0);
}

/* The notify itself, whether or not the device asked for none. */
static void kick(struct t *t)
{
	assert_int_equal(vdrv_notify(&t->drv), 0);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/*
 * vp_interrupt: wait for the line, ack by reading ISR, until exactly n
 * more are used (more would be a completion nobody asked for); reap them.
 */
static void reap_used(struct t *t, int got, unsigned int n)
{
	unsigned int i;

	if (got < 0)
		fail_msg("timeout: used idx %u, want %u", vdrv_used_idx(&t->drv),
			 (uint16_t)(t->drv.last_used + n));
	assert_int_equal(got, n);
	assert_true(n <= MAX_REQS);
	for (i = 0; i < n; i++)
		assert_true(vdrv_get_used(&t->drv, &t->used[i].id, &t->used[i].len));
	t->nr_used = n;
}

static void wait_used(struct t *t, unsigned int n)
{
	reap_used(t, vdrv_wait_used(&t->drv, n, TIMEOUT_MS), n);
}

static long now_ms(void);

/*
 * The same without waiting for an interrupt: a driver polling the used
 * ring (its interrupts off), looking every 20 us for at most TIMEOUT_MS.
 */
static void poll_used(struct t *t, unsigned int n)
{
	long end = now_ms() + TIMEOUT_MS;
	uint16_t pending;

	while ((pending = vdrv_used_idx(&t->drv) - t->drv.last_used) < n && now_ms() < end)
		usleep(20);
	reap_used(t, pending >= n ? pending : -1, n);
}

/* The used entry for slot, somewhere in the last n used entries. */
static uint32_t used_len_of(struct t *t, unsigned int slot, unsigned int n)
{
	unsigned int i;

	assert_true(n <= t->nr_used);
	for (i = t->nr_used - n; i < t->nr_used; i++)
		if (t->used[i].id == 3 * slot)
			return t->used[i].len;
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
	ret = blk_dev_create(&t->b, args, &t->gm, 1);
	if (ret)
		return ret;
	if (t->trace) {
		assert_int_equal(disk_fault_wrap(t->b->disk, NULL, 0), 0);
		disk_fault_set_trace(t->b->disk, t->trace, t);
	}
	t->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(t->irq_efd >= 0);
	virtio_pci_set_irq(&t->b->vp, &irq);
	assert_int_equal(virtio_pci_set_notify(&t->b->vp, &fake_notify), 0);
	if (!t->no_thread)
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

static const char *engine_of(struct t *t)
{
	return disk_props(t->b->disk)->engine;
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
	assert_string_equal(engine_of(t), t->aio == BLK_AIO_IO_URING ? "io_uring" : "threads");
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

/* A t for the prestate's engine, not yet up (the test picks the options). */
static struct t *engine_t(void **state)
{
	struct t *t;

	if (*(enum blk_aio *)*state == BLK_AIO_IO_URING)
		need_uring();
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->aio = *(enum blk_aio *)*state;
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

/* ---- multiple queues ---- */

#define RING1_GPA	0x40000ULL		/* queue 1's ring */
#define MQ_ROUNDS	200
#define MQ_SLOTS	(MAX_REQS / 2)		/* queue q uses slots q * MQ_SLOTS.. */

struct mq_driver {
	struct t *t;
	struct vdrv *d;
	unsigned int q;
	const char *err;		/* set: what went wrong (no cmocka off the main thread) */
};

/* Wait (polling, as the interrupt is shared) for n used entries of d; false on timeout. */
static bool mq_reap(struct vdrv *d, unsigned int n)
{
	long end = now_ms() + TIMEOUT_MS;
	uint32_t id, len;

	while ((uint16_t)(vdrv_used_idx(d) - d->last_used) < n)
		if (now_ms() > end)
			return false;
	while (n--)
		vdrv_get_used(d, &id, &len);
	return true;
}

/* A request of slot on d (descriptors 3 * slot..), data seeded, not kicked. */
static void mq_req(struct t *t, struct vdrv *d, unsigned int slot, uint32_t type,
		   uint64_t sector, uint64_t seed)
{
	const struct vdrv_blk_req r = {
		.type = type, .sector = sector,
		.hdr_gpa = HDR_GPA + 16ULL * slot, .status_gpa = STATUS_GPA + slot,
		.data_gpa = DATA_GPA + (uint64_t)slot * SLOT_DATA, .data_len = 4096, .nseg = 1,
	};

	if (type == VIRTIO_BLK_T_OUT)
		fill(slot_data(t, slot), 4096, seed);
	else
		memset(slot_data(t, slot), 0, 4096);
	vdrv_blk_add(d, 3 * (slot % MQ_SLOTS), &r);
}

/*
 * One queue's driver: rounds of MQ_SLOTS 4 KiB writes in its own half
 * of the image, then reads of them, checked.  Runs beside the other
 * queue's, each with its own ring, thread and engine on the device side.
 */
static void *mq_driver_run(void *arg)
{
	struct mq_driver *m = arg;
	uint8_t expect[4096];
	unsigned int round, i, slot;
	uint64_t sector;

	for (round = 0; round < MQ_ROUNDS && !m->err; round++) {
		for (i = 0; i < MQ_SLOTS; i++) {
			slot = m->q * MQ_SLOTS + i;
			sector = (m->q * (IMG_SIZE / 2) + (uint64_t)i * 4096) / 512;
			mq_req(m->t, m->d, slot, round % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
			       sector, round * 1000 + slot);
		}
		vdrv_notify(m->d);
		if (!mq_reap(m->d, MQ_SLOTS)) {
			m->err = "a request was not completed in time";
			break;
		}
		for (i = 0; i < MQ_SLOTS && round % 2; i++) {
			slot = m->q * MQ_SLOTS + i;
			fill(expect, sizeof(expect), (round - 1) * 1000 + slot);
			if (*slot_status(m->t, slot) != VIRTIO_BLK_S_OK ||
			    memcmp(slot_data(m->t, slot), expect, sizeof(expect)))
				m->err = "a read did not return what this queue wrote";
		}
	}
	return NULL;
}

/* MSI-X for test_mq: the function on a PCI bus, each message recorded. */
struct mq_msix {
	struct io_bus pio, mmio;
	struct pci_bus bus;
	unsigned int fires[3];		/* config, queue 0, queue 1 */
};

static void mq_fire(void *opaque, unsigned int v)
{
	struct mq_msix *x = opaque;

	if (v < ARRAY_SIZE(x->fires))
		__atomic_add_fetch(&x->fires[v], 1, __ATOMIC_RELAXED);
}

static int mq_route(void *opaque, unsigned int v, uint64_t addr, uint32_t data)
{
	return 0;
}

/*
 * As vp_find_vqs_msix: MSI-X on, vector 0 for config, 1 + q for queue q,
 * the table programmed through BAR 1.
 */
static void mq_msix_on(struct t *t, struct mq_msix *x)
{
	const struct msix_sink sink = { .fire = mq_fire, .route = mq_route, .opaque = x };
	struct virtio_pci *vp = &t->b->vp;
	uint32_t table, val, v, f;

	virtio_pci_set_msix_sink(vp, &sink);
	io_bus_init(&x->pio);
	io_bus_init(&x->mmio);
	assert_int_equal(pci_bus_init(&x->bus, &x->pio, &x->mmio), 0);
	assert_int_equal(pci_bus_add(&x->bus, &vp->pci, 3), 0);
	pci_cfg_write(&x->bus, 3, vp->msix_cap + MSIX_CAP_CONTROL, 2, MSIX_CONTROL_ENABLE);
	table = pci_cfg_read(&x->bus, 3, PCI_BASE_ADDRESS_0 + 4, 4) & ~0xfu;
	for (v = 0; v < 3; v++) {
		for (f = 0; f < 4; f++) {
			val = f == 0 ? 0xfee00000 : f == 2 ? 0x40 + v : 0;
			assert_true(io_bus_access(&x->mmio, table + v * MSIX_ENTRY_SIZE + 4 * f,
						  true, &val, 4));
		}
	}
	bar_write(t, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	for (v = 0; v < 2; v++) {
		bar_write(t, VIRTIO_PCI_QUEUE_SEL, 2, v);
		bar_write(t, VIRTIO_MSI_QUEUE_VECTOR, 2, 1 + v);
		assert_int_equal(bar_read(t, VIRTIO_MSI_QUEUE_VECTOR, 2), 1 + v);
	}
}

static void mq_msix_off(struct mq_msix *x)
{
	pci_bus_destroy(&x->bus);
	io_bus_destroy(&x->pio);
	io_bus_destroy(&x->mmio);
}

/* Until every popped request is completed, its interrupt sent. */
static void mq_idle(struct t *t)
{
	long end = now_ms() + TIMEOUT_MS;

	while (__atomic_load_n(&t->b->in_flight, __ATOMIC_ACQUIRE))
		if (now_ms() > end)
			fail_msg("%u request(s) still in flight", t->b->in_flight);
}

/* One request of slot on d, kicked (through the register when d has no kick fd). */
static void mq_one(struct t *t, struct vdrv *d, unsigned int slot, uint32_t type,
		   uint64_t sector, uint64_t seed)
{
	mq_req(t, d, slot, type, sector, seed);
	*slot_status(t, slot) = VDRV_BLK_STATUS_NONE;
	assert_int_equal(vdrv_notify(d), 0);
	if (!mq_reap(d, 1))
		fail_msg("queue %u: slot %u not completed", d->queue, slot);
	assert_int_equal(*slot_status(t, slot), VIRTIO_BLK_S_OK);
	mq_idle(t);
}

/*
 * mq=2: MQ and num_queues offered, an engine per queue on the same
 * image; both queues driven at once from two threads, each request
 * served by its own queue (per-queue counts) and announced on its own
 * MSI-X vector; a kick through the notify register reaches the queue it
 * names (poll=0: no thread finds work by polling); a write on one queue
 * read back and flushed on the other; after a reset both queues are set
 * up again and serve.
 */
static void test_mq(void **state)
{
	struct t *t = engine_t(state);
	struct mq_driver m[2];
	struct mq_msix x = { .fires = { 0 } };
	struct vdrv d1;
	pthread_t th;
	uint16_t nq;
	unsigned int f1, f2;

	assert_int_equal(dev_up(t, "mq=2,poll=0"), 0);
	assert_true(t->drv.host_features & (1u << VIRTIO_BLK_F_MQ));
	vdrv_cfg_get(&t->drv, offsetof(struct blk_config, num_queues), &nq, 2);
	assert_int_equal(nq, 2);
	assert_int_equal(t->b->nr_queues, 2);
	assert_ptr_not_equal(t->b->q[1].disk, t->b->disk);
	assert_string_equal(disk_props(t->b->q[1].disk)->engine, engine_of(t));
	mq_msix_on(t, &x);
	d1 = t->drv;
	assert_int_equal(vdrv_setup_queue(&d1, 1, RING1_GPA, false), 0);
	assert_true(d1.kick_fd >= 0 && d1.kick_fd != t->drv.kick_fd);

	m[0] = (struct mq_driver){ .t = t, .d = &t->drv, .q = 0 };
	m[1] = (struct mq_driver){ .t = t, .d = &d1, .q = 1 };
	assert_int_equal(pthread_create(&th, NULL, mq_driver_run, &m[1]), 0);
	mq_driver_run(&m[0]);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (m[0].err || m[1].err)
		fail_msg("queue 0: %s; queue 1: %s", m[0].err ?: "ok", m[1].err ?: "ok");
	assert_int_equal(t->b->q[0].requests, MQ_ROUNDS * MQ_SLOTS);
	assert_int_equal(t->b->q[1].requests, MQ_ROUNDS * MQ_SLOTS);
	assert_true(x.fires[1] > 0 && x.fires[2] > 0);
	assert_int_equal(x.fires[0], 0);

	/*
	 * Queue 1 alone, kicked through the register: its thread, its vector.
	 * (A request's interrupt goes out after its used entry, before
	 * in_flight drops: wait for that, or the last one could come late.)
	 */
	mq_idle(t);
	f1 = x.fires[1];
	f2 = x.fires[2];
	d1.kick_fd = -1;
	mq_one(t, &d1, MQ_SLOTS, VIRTIO_BLK_T_OUT, 8, 77);
	assert_int_equal(x.fires[1], f1);
	assert_int_equal(x.fires[2], f2 + 1);
	assert_int_equal(t->b->q[1].requests, MQ_ROUNDS * MQ_SLOTS + 1);
	/* Read back on queue 0 (its vector), flushed on queue 1. */
	mq_one(t, &t->drv, 0, VIRTIO_BLK_T_IN, 8, 0);
	assert_memory_equal(slot_data(t, 0), slot_data(t, MQ_SLOTS), 4096);
	assert_int_equal(x.fires[1], f1 + 1);
	mq_one(t, &d1, MQ_SLOTS + 1, VIRTIO_BLK_T_FLUSH, 0, 0);
	assert_int_equal(t->b->flush_err, 0);

	/* A reset, then both queues again. */
	assert_int_equal(vdrv_reset(&t->drv), 0);
	assert_int_equal(t->b->in_flight, 0);
	vdrv_begin(&t->drv, &t->b->vp, &t->gm, ~(1u << VDRV_F_EVENT_IDX), t->irq_efd, true);
	assert_int_equal(vdrv_setup_queue(&t->drv, 0, RING_GPA, false), 0);
	d1 = t->drv;
	assert_int_equal(vdrv_setup_queue(&d1, 1, RING1_GPA, true), 0);
	vdrv_driver_ok(&t->drv);
	mq_one(t, &d1, MQ_SLOTS, VIRTIO_BLK_T_IN, 8, 0);
	mq_one(t, &t->drv, 0, VIRTIO_BLK_T_IN, 8, 0);
	assert_memory_equal(slot_data(t, 0), slot_data(t, MQ_SLOTS), 4096);
	mq_msix_off(&x);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * blk_dev_create() under RLIMIT_NOFILE = limit, its stderr in fb_cap.
 * What it changes is put back by fb_unlimit(), also from the teardown
 * when an assertion (or a crash cmocka caught) jumps out in between.
 */
static struct rlimit fb_old;
static struct capture fb_cap;
static bool fb_limited;

static bool fb_unlimit(void)
{
	bool ok = true;

	if (fb_limited) {
		ok = setrlimit(RLIMIT_NOFILE, &fb_old) == 0;
		ok = capture_end(&fb_cap) && ok;
		fb_limited = false;
	}
	return ok;
}

static int fb_create(struct t *t, const char *args, rlim_t limit)
{
	struct rlimit lim;
	int ret;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &fb_old), 0);
	lim = fb_old;
	lim.rlim_cur = limit;
	assert_int_equal(capture_start(&fb_cap, false), 0);
	fb_limited = true;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	ret = blk_dev_create(&t->b, args, &t->gm, 4);
	assert_true(fb_unlimit());
	return ret;
}

static int fb_teardown(void **state)
{
	return fb_unlimit() ? 0 : -1;
}

/* The lowest descriptor free: what a leak would move. */
static int fd_lowest_free(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

/*
 * One queue per vCPU is a wish: when queue k's engine cannot be opened
 * (here: no descriptor left under RLIMIT_NOFILE), the device serves k
 * queues, says so in one line, and its config and features say k;
 * mq= asking for them all fails instead.  From a tight limit to a loose
 * one the queues grow from 1 through some to all 4, each device whole,
 * and no try leaks a descriptor.
 */
static void mq_fallback_try(struct t *t, const char *args, rlim_t limit, unsigned int *prev,
			    unsigned int *partial)
{
	int ret, low = fd_lowest_free();
	unsigned int i, got;
	char mq[320];

	ret = fb_create(t, args, limit);
	if (ret) {
		assert_int_equal(fd_lowest_free(), low);
		return;		/* too tight for queue 0 or the transport */
	}
	got = t->b->nr_queues;
	assert_true(got >= *prev && got >= 1 && got <= 4);
	assert_int_equal(!!(t->b->features & (1ULL << VIRTIO_BLK_F_MQ)), got > 1);
	assert_int_equal(t->b->cfg.num_queues, got > 1 ? got : 0);
	for (i = 1; i < got; i++)
		assert_true(t->b->q[i].disk && t->b->q[i].disk != t->b->disk);
	if (got < 4 && !strstr(fb_cap.buf, "queue(s), not one per vCPU (4)"))
		fail_msg("%u of 4 queues without saying so: '%s'", got, fb_cap.buf);
	assert_int_equal(blk_dev_destroy(t->b), 0);
	assert_int_equal(fd_lowest_free(), low);
	*prev = got;
	if (got == 1 || got == 4)
		return;
	(*partial)++;
	/* Asked for, the queues that cannot be had are an error. */
	snprintf(mq, sizeof(mq), "%s,mq=4", args);
	assert_true(fb_create(t, mq, limit) < 0);
	if (!strstr(fb_cap.buf, "mq=4: cannot open queue"))
		fail_msg("mq=4 short of descriptors: '%s'", fb_cap.buf);
	assert_int_equal(fd_lowest_free(), low);
}

static void test_mq_fallback(void **state)
{
	struct t *t = engine_t(state);
	unsigned int k, prev = 0, partial = 0;
	char args[128];
	int fd, low;

	strcpy(t->path, "/tmp/tvmm-mq-XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	assert_int_equal(gmem_init(&t->gm, RAM_SIZE), 0);
	snprintf(args, sizeof(args), "%s,poll=0,aio=%s", t->path,
		 t->aio == BLK_AIO_IO_URING ? "io_uring" : "threads");
	/* The capture takes two descriptors of its own before each try. */
	low = fd_lowest_free();
	for (k = 0; k < 128 && prev < 4; k++)
		mq_fallback_try(t, args, (rlim_t)low + k, &prev, &partial);
	assert_int_equal(prev, 4);
	assert_true(partial > 0);
	gmem_free(&t->gm);
	unlink(t->path);
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

/* ---- what the device asks of the disk (a fault filter's trace) ---- */

#define MAX_EVENTS 4096

static struct {
	enum disk_fault_event ev;
	enum disk_op op;
	uint32_t flags;
	uint64_t offset;
	uint64_t cookie;
	int result;
} events[MAX_EVENTS];
static unsigned int nr_events;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		   uint64_t cookie, int result)
{
	(void)opaque;
	pthread_mutex_lock(&events_lock);
	if (nr_events < MAX_EVENTS)
		events[nr_events++] = (typeof(events[0])){
			ev, io ? io->op : DISK_OP_FLUSH, io ? io->flags : 0,
			io ? io->offset : 0, cookie, result };
	pthread_mutex_unlock(&events_lock);
}

struct asked {
	unsigned int writes, fua, alone, flushes, done_now, reaped;
	int last_answer, last_flush_submit;	/* event indexes, -1: none */
};

/*
 * Tally the events from index from on (events_lock held).  Every
 * operation the engine saw is answered exactly once, after it was
 * submitted, and with success.
 */
static struct asked tally(unsigned int from)
{
	struct asked a = { .last_answer = -1, .last_flush_submit = -1 };
	unsigned int i, j, answers;

	for (i = from; i < nr_events; i++) {
		if (events[i].ev == DISK_FAULT_SUBMIT) {
			a.writes += events[i].op == DISK_OP_WRITE;
			a.fua += !!(events[i].flags & DISK_F_FUA);
			a.alone += !!(events[i].flags & DISK_F_ALONE);
			if (events[i].op == DISK_OP_FLUSH) {
				a.flushes++;
				a.last_flush_submit = (int)i;
			}
			for (j = i + 1, answers = 0; j < nr_events; j++)
				if (events[j].cookie == events[i].cookie &&
				    events[j].ev != DISK_FAULT_SUBMIT)
					answers++;
				else if (events[j].cookie == events[i].cookie)
					break;	/* the ioreq's next request */
			assert_int_equal(answers, 1);
			continue;
		}
		assert_int_equal(events[i].result, 0);
		a.done_now += events[i].ev == DISK_FAULT_DONE_NOW;
		a.reaped += events[i].ev == DISK_FAULT_REAPED;
		if (events[i].op == DISK_OP_WRITE)
			a.last_answer = (int)i;
	}
	return a;
}

/*
 * writethru writes go to the disk as FUA, writeback ones not; 32 posted
 * at once are none of them alone; a FLUSH goes out after every write
 * before it was answered.  (That the device completes nothing before the
 * disk answered is test_durability's; that a FUA write is durable when
 * answered, test_disk_engines'.)
 */
static void durability_order(void **state, const char *mode)
{
	struct t *t = calloc(1, sizeof(*t));
	bool writethru = !strcmp(mode, "writethru");
	struct asked a;
	unsigned int i, mark;

	assert_non_null(t);
	t->aio = *(enum blk_aio *)*state;
	if (t->aio == BLK_AIO_IO_URING && !uring_ok) {
		free(t);
		fprintf(stderr, "*** SKIPPED: io_uring refused by this kernel ***\n");
		skip();
	}
	nr_events = 0;
	t->trace = record;
	assert_int_equal(dev_up(t, mode), 0);
	/*
	 * All 32 in one avail->idx update: the queue thread may be awake
	 * already (DRIVER_OK wakes it), and must not see the first alone.
	 */
	t->drv.hold_avail = true;
	for (i = 0; i < MAX_REQS; i++) {
		fill(slot_data(t, i), 4096, 300 + i);
		queue_req(t, i, VIRTIO_BLK_T_OUT, (uint64_t)i * 8, 4096, 1);
	}
	vdrv_publish(&t->drv);
	t->drv.hold_avail = false;
	kick(t);
	wait_used(t, MAX_REQS);
	pthread_mutex_lock(&events_lock);
	a = tally(0);
	pthread_mutex_unlock(&events_lock);
	assert_int_equal(a.writes, MAX_REQS);
	assert_int_equal(a.fua, writethru ? MAX_REQS : 0);
	/* Only the last of the batch can find nothing behind it. */
	assert_true(a.alone <= 1);

	/* FLUSH after they completed: it goes out after every one was answered. */
	mark = nr_events;
	queue_req(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	kick(t);
	wait_used(t, 1);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&events_lock);
	assert_true((int)mark > a.last_answer);
	a = tally(mark);
	pthread_mutex_unlock(&events_lock);
	assert_int_equal(a.flushes, 1);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static void test_durability_order_writethru(void **state)
{
	durability_order(state, "writethru");
}

static void test_durability_order_writeback(void **state)
{
	durability_order(state, "writeback");
}

/*
 * Queue depth 1 writethru: each write is alone and FUA, and the engine
 * (either) does it on the queue thread, answering at submit; the data
 * is in the file.
 */
static void test_writethru_alone_inline(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	uint8_t buf[4096], expect[4096];
	unsigned int i;
	struct asked a;
	int fd;

	assert_non_null(t);
	t->aio = *(enum blk_aio *)*state;
	if (t->aio == BLK_AIO_IO_URING && !uring_ok) {
		free(t);
		fprintf(stderr, "*** SKIPPED: io_uring refused by this kernel ***\n");
		skip();
	}
	nr_events = 0;
	t->trace = record;
	assert_int_equal(dev_up(t, "writethru"), 0);
	for (i = 0; i < 8; i++) {
		fill(slot_data(t, 0), 4096, 900 + i);
		queue_req(t, 0, VIRTIO_BLK_T_OUT, (uint64_t)i * 8, 4096, 1);
		kick(t);
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	}
	pthread_mutex_lock(&events_lock);
	a = tally(0);
	pthread_mutex_unlock(&events_lock);
	assert_int_equal(a.writes, 8);
	assert_int_equal(a.fua, 8);
	assert_int_equal(a.alone, 8);
	assert_int_equal(a.done_now, 8);

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
	unsigned int i, skipped = 0;
	int kicked;

	for (i = 0; i < n; i++) {
		queue_req(t, 0, VIRTIO_BLK_T_IN, (uint64_t)(i % 512) * 8, 4096, 1);
		kicked = vdrv_kick(&t->drv);
		assert_true(kicked >= 0);
		skipped += !kicked;
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
		if (pause_every && i % pause_every == 0)
			usleep((useconds_t)(i * 7919 % 300));
	}
	return skipped;
}

static void test_poll_kicks(void **state)
{
	struct t *t = engine_t(state);
	unsigned int skipped;

	assert_int_equal(dev_up(t, "poll=100"), 0);
	skipped = poll_run(t, 4000, 3);
	fprintf(stderr, "poll=100 (%s): %u of 4000 requests needed no kick\n", engine_of(t),
		skipped);
	/* Polling happened: some requests were taken without a kick... */
	assert_true(skipped > 0);
	/* ...and once idle the device sleeps with kicks back on. */
	usleep(20000);
	assert_false(vdrv_no_notify(&t->drv));
	assert_int_equal(dev_down(t), 0);

	/* poll=0: never asks the driver not to kick. */
	assert_int_equal(dev_up(t, "poll=0"), 0);
	assert_int_equal(poll_run(t, 500, 0), 0);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * A kick consumed between the pop and the sleep (found in review of an
 * earlier loop): the queue thread wakes for a FLUSH's completion; R1,
 * already on the ring but not yet kicked, is posted just as that
 * completion is reaped, so the pop takes it; while R1 is submitted the
 * driver posts R2 and kicks (for R1 and R2: the eventfd adds them up).
 * R1 completes inside the submit; the thread must not then sleep with R2
 * on the ring.  The window is narrow, so the driver's timing is swept
 * over 400 rounds.
 *
 * A round not done RACE_LATE_MS after the driver's kick is late, and is
 * waited for without another kick: a queue thread that went to sleep
 * with R2 on the ring and nothing in flight is woken by nothing in this
 * test but a kick, so a stranded request stays stranded however long we
 * wait, while a thread that was only kept off the CPU (a loaded machine)
 * finishes the round by itself.  Only a round not done after
 * RACE_STRAND_MS counts as stranded; late ones are reported.  Once one
 * is stranded the rest get RACE_LATE_MS, so that a broken loop fails in
 * seconds.
 */
#define RACE_LATE_MS	200
#define RACE_STRAND_MS	5000

static struct t *race_t;
static int race_stage, race_go, race_delay;

static void race_hook(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		      uint64_t cookie, int result)
{
	(void)opaque;
	(void)cookie;
	(void)result;
	if (race_stage == 1 && ev != DISK_FAULT_SUBMIT && io && io->op == DISK_OP_FLUSH) {
		queue_req(race_t, 1, VIRTIO_BLK_T_IN, 8, 4096, 1);	/* R1, no kick */
		__atomic_store_n(&race_stage, 2, __ATOMIC_RELEASE);
	} else if (race_stage == 2 && ev == DISK_FAULT_SUBMIT && io && io->op == DISK_OP_READ) {
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
	struct t *t = engine_t(state);
	unsigned int round, stranded = 0, late = 0;
	long end, t0, took, latest = 0;
	uint16_t want;
	pthread_t d;

	race_t = t;
	t->trace = race_hook;
	assert_int_equal(dev_up(t, "poll=32"), 0);
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
		want = t->drv.last_used + 3;
		t0 = now_ms();
		end = t0 + (stranded ? RACE_LATE_MS : RACE_STRAND_MS);
		while (vdrv_used_idx(&t->drv) != want && now_ms() < end)
			usleep(100);
		took = now_ms() - t0;
		if (vdrv_used_idx(&t->drv) != want) {
			stranded++;
			kick(t);	/* get it going again, to count the rest */
		} else if (took > RACE_LATE_MS) {
			late++;
			latest = MAX(latest, took);
		}
		wait_used(t, 3);
	}
	race_stage = 0;
	fprintf(stderr, "kick after pop (%s): %u of 400 rounds stranded a request; %u late", engine_of(t),
		stranded, late);
	if (late)
		fprintf(stderr, " (over %d ms, done without another kick; the latest in %ld ms)",
			RACE_LATE_MS, latest);
	fputc('\n', stderr);
	assert_int_equal(stranded, 0);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* ---- VIRTIO_RING_F_EVENT_IDX ---- */

/* Up for the prestate's engine with EVENT_IDX negotiated. */
static struct t *evidx_t(void **state, const char *extra)
{
	struct t *t = engine_t(state);

	t->event_idx = true;
	assert_int_equal(dev_up(t, extra), 0);
	return t;
}

/* Wait (bounded) until the device published avail_event = the avail index. */
static void wait_avail_event_caught_up(struct t *t)
{
	long end = now_ms() + TIMEOUT_MS;

	while (__atomic_load_n(t->drv.avail_event, __ATOMIC_RELAXED) != t->drv.avail_shadow &&
	       now_ms() < end)
		usleep(10);
	assert_int_equal(*t->drv.avail_event, t->drv.avail_shadow);
}

struct evidx_run {
	unsigned int reqs, kicks, calls;
};

/* n requests at queue depth 1, each kicked as Linux decides and waited for. */
static void evidx_qd1(struct t *t, unsigned int n, struct evidx_run *r)
{
	unsigned int i;
	int kicked;

	for (i = 0; i < n; i++) {
		queue_req(t, 0, VIRTIO_BLK_T_IN, (uint64_t)(i % 2048) * 8, 4096, 1);
		kicked = vdrv_kick(&t->drv);
		assert_true(kicked >= 0);
		r->kicks += kicked;
		r->calls++;
		wait_used(t, 1);
		assert_int_equal(t->used[0].id, 0);
		assert_int_equal(t->used[0].len, 4097);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
		r->reqs++;
	}
}

/*
 * rounds of MAX_REQS requests (blk-mq's batch: each published as it is
 * added, one kick for all), every one of them back exactly once.
 */
static void evidx_qd32(struct t *t, unsigned int rounds, struct evidx_run *r)
{
	unsigned int i, k, slot;
	uint32_t seen;
	int kicked;

	for (k = 0; k < rounds; k++) {
		/*
		 * The last of the batch interrupts (virtqueue_enable_cb_delayed,
		 * set before the batch goes out, as wait_used will set it):
		 * used_event is not left at the first one, as get_buf left it.
		 */
		*t->drv.used_event = t->drv.last_used + MAX_REQS - 1;
		for (i = 0; i < MAX_REQS; i++) {
			*slot_status(t, i) = VDRV_BLK_STATUS_NONE;
			queue_req(t, i, VIRTIO_BLK_T_IN, (uint64_t)((k * 7 + i) % 2048) * 8, 4096, 1);
		}
		kicked = vdrv_kick(&t->drv);
		assert_true(kicked >= 0);
		r->kicks += kicked;
		r->calls++;
		wait_used(t, MAX_REQS);
		for (i = 0, seen = 0; i < MAX_REQS; i++) {
			assert_int_equal(t->used[i].id % 3, 0);
			slot = t->used[i].id / 3;
			assert_true(slot < MAX_REQS && !(seen & (1u << slot)));
			seen |= 1u << slot;
			assert_int_equal(t->used[i].len, 4097);
			assert_int_equal(*slot_status(t, slot), VIRTIO_BLK_S_OK);
		}
		r->reqs += MAX_REQS;
	}
}

/*
 * EVENT_IDX at queue depth 1 and 32 over more than 2^17 requests: the
 * indices wrap twice, once in the middle of a QD32 batch and once at
 * QD1.  No request is lost or stranded (each wait gives up after 10 s),
 * and used_event keeps interrupts to at most one per wait: it names the
 * last entry waited for, so a QD32 round whose requests the device
 * completes in several turns still gets one (with the flags it gets one
 * a turn).
 */
static void test_event_idx_stress(void **state)
{
	struct t *t = evidx_t(state, NULL);
	struct evidx_run r = { 0 };
	unsigned int asserts;

	evidx_qd1(t, 1003, &r);
	/* 65536 - 1003 = 2016 * 32 + 21: the 2017th batch wraps. */
	evidx_qd32(t, 2047, &r);
	assert_true(r.reqs > 65536);
	evidx_qd32(t, 1955, &r);
	assert_int_equal(r.reqs, 131072 - 2005);
	evidx_qd1(t, 4000, &r);
	assert_true(r.reqs > 131072);
	assert_int_equal(vdrv_used_idx(&t->drv), (uint16_t)r.reqs);
	assert_int_equal(t->b->q[0].requests, r.reqs);
	asserts = __atomic_load_n(&t->asserts, __ATOMIC_RELAXED);
	fprintf(stderr, "event_idx (%s): %u requests, %u waits: %u kicks, %u interrupts\n",
		engine_of(t), r.reqs, r.calls, r.kicks, asserts);
	/* At most one per wait, and the first decision's. */
	assert_true(asserts <= r.calls + 1);
	/* Each wait had something to kick for: the device slept in between. */
	assert_true(r.kicks <= r.calls);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * used_event far from where the used index is going, interrupts off
 * (vdrv_disable_cb: the driver polls): hundreds of completions raise no
 * interrupt, not even an ISR bit.  Pointed at the next entry, it gets
 * exactly one.
 */
static void test_event_idx_irq_suppressed(void **state)
{
	struct t *t = evidx_t(state, NULL);
	unsigned int i, before;
	long end;

	/* One the usual way: the first decision (which interrupts) is behind us. */
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	assert_int_equal(vdrv_kick(&t->drv), 1);
	wait_used(t, 1);
	vdrv_disable_cb(&t->drv);
	*t->drv.used_event = t->drv.last_used + 0x8000;
	vdrv_read_isr(&t->drv);
	before = __atomic_load_n(&t->asserts, __ATOMIC_RELAXED);
	for (i = 0; i < 300; i++) {
		queue_req(t, i % 4, VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, 1);
		assert_true(vdrv_kick(&t->drv) >= 0);
		poll_used(t, 1);
		assert_int_equal(*slot_status(t, i % 4), VIRTIO_BLK_S_OK);
		/* Read-to-clear: a raise since the last look would show here. */
		assert_int_equal(vdrv_read_isr(&t->drv), 0);
	}
	assert_int_equal(__atomic_load_n(&t->asserts, __ATOMIC_RELAXED), before);
	/* get_buf left used_event alone while interrupts were off. */
	assert_int_equal(*t->drv.used_event, (uint16_t)(t->drv.last_used - 300 + 0x8000));

	assert_true(vdrv_enable_cb(&t->drv));
	assert_int_equal(*t->drv.used_event, t->drv.last_used);
	queue_req(t, 0, VIRTIO_BLK_T_IN, 8, 4096, 1);
	assert_true(vdrv_kick(&t->drv) >= 0);
	wait_used(t, 1);
	end = now_ms() + TIMEOUT_MS;
	while (__atomic_load_n(&t->asserts, __ATOMIC_RELAXED) == before && now_ms() < end)
		usleep(100);
	usleep(10000);
	assert_int_equal(__atomic_load_n(&t->asserts, __ATOMIC_RELAXED), before + 1);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * While the queue thread is busy with a request (here: inside its disk
 * submit), the driver adds another: with EVENT_IDX its kick is not
 * needed (avail_event still names the request being served), without it
 * (no poll=, so no NO_NOTIFY) it is.  Before each round the device,
 * idle, has published avail_event up to the avail index, so the first
 * request kicks.
 */
static struct t *busy_t;
static int busy_stage, busy_kicked;

static void busy_hook(void *opaque, enum disk_fault_event ev, const struct disk_io *io,
		      uint64_t cookie, int result)
{
	(void)opaque;
	(void)cookie;
	(void)result;
	if (__atomic_load_n(&busy_stage, __ATOMIC_ACQUIRE) != 1 || ev != DISK_FAULT_SUBMIT ||
	    !io || io->op != DISK_OP_READ)
		return;
	queue_req(busy_t, 1, VIRTIO_BLK_T_IN, 16, 4096, 1);
	busy_kicked = vdrv_kick(&busy_t->drv);
	__atomic_store_n(&busy_stage, 2, __ATOMIC_RELEASE);
}

static void kick_while_busy(void **state, bool event_idx)
{
	struct t *t = engine_t(state);
	unsigned int round;

	busy_t = t;
	t->trace = busy_hook;
	t->event_idx = event_idx;
	/* No polling: its NO_NOTIFY would suppress kicks without EVENT_IDX too. */
	assert_int_equal(dev_up(t, "poll=0"), 0);
	for (round = 0; round < 50; round++) {
		if (event_idx)
			wait_avail_event_caught_up(t);
		else
			usleep(200);
		__atomic_store_n(&busy_stage, 1, __ATOMIC_RELEASE);
		queue_req(t, 0, VIRTIO_BLK_T_IN, 8, 4096, 1);
		assert_int_equal(vdrv_kick(&t->drv), 1);
		wait_used(t, 2);
		assert_int_equal(__atomic_load_n(&busy_stage, __ATOMIC_ACQUIRE), 2);
		assert_int_equal(busy_kicked, event_idx ? 0 : 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
		assert_int_equal(*slot_status(t, 1), VIRTIO_BLK_S_OK);
	}
	busy_stage = 0;
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static void test_event_idx_kick_while_busy(void **state)
{
	kick_while_busy(state, true);
}

static void test_no_event_idx_kick_while_busy(void **state)
{
	kick_while_busy(state, false);
}

/*
 * poll= with EVENT_IDX: kicks are skipped while the device polls (its
 * avail_event stays behind), the hand-over to kicks never strands a
 * request, and once idle the device sleeps with avail_event caught up.
 */
static void test_event_idx_poll(void **state)
{
	struct t *t = evidx_t(state, "poll=100");
	unsigned int skipped;

	skipped = poll_run(t, 4000, 3);
	fprintf(stderr, "poll=100, event_idx (%s): %u of 4000 requests needed no kick\n",
		engine_of(t), skipped);
	assert_true(skipped > 0);
	usleep(20000);
	assert_int_equal(*t->drv.avail_event, t->drv.avail_shadow);
	assert_false(vdrv_no_notify(&t->drv));
	assert_int_equal(dev_down(t), 0);

	/* poll=0: nothing stranded either (some kicks are skipped all the same). */
	t->event_idx = true;
	assert_int_equal(dev_up(t, "poll=0"), 0);
	poll_run(t, 2000, 7);
	usleep(20000);
	assert_int_equal(*t->drv.avail_event, t->drv.avail_shadow);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static uint16_t scribble_seed;
static int scribbling;

/* A second driver thread writing garbage into used_event, flags and avail_event. */
static void *scribbler(void *arg)
{
	struct t *t = arg;
	uint32_t x = 2463534242u;

	while (__atomic_load_n(&scribbling, __ATOMIC_RELAXED)) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		__atomic_store_n(t->drv.used_event, (uint16_t)x, __ATOMIC_RELAXED);
		__atomic_store_n(t->drv.avail_flags, (uint16_t)(x >> 16), __ATOMIC_RELAXED);
		if (x & 1)
			__atomic_store_n(t->drv.avail_event, (uint16_t)(x >> 8), __ATOMIC_RELAXED);
		scribble_seed = (uint16_t)x;
	}
	return NULL;
}

/* rounds of 8 requests, kicked whatever the device asked, polled for. */
static void hostile_rounds(struct t *t, unsigned int rounds)
{
	unsigned int k, i;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < 8; i++)
			queue_req(t, i, VIRTIO_BLK_T_IN, (uint64_t)(k + i) % 2048 * 8, 4096, 1);
		kick(t);
		poll_used(t, 8);
		for (i = 0; i < 8; i++)
			assert_int_equal(*slot_status(t, i), VIRTIO_BLK_S_OK);
	}
}

/*
 * A driver that acked EVENT_IDX and then never updates used_event, or
 * writes garbage into it (and into the flags, and the device's
 * avail_event) while requests run: its interrupts are its own problem,
 * but every request completes, the queue thread neither hangs nor
 * crashes (ASan/UBSan in the sanitizer build), and it stops on destroy.
 */
static void test_event_idx_hostile(void **state)
{
	struct t *t = evidx_t(state, NULL);
	pthread_t th;

	vdrv_disable_cb(&t->drv);
	*t->drv.used_event = t->drv.last_used - 1;
	hostile_rounds(t, 300);
	assert_int_equal(*t->drv.used_event, (uint16_t)-1);

	__atomic_store_n(&scribbling, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_create(&th, NULL, scribbler, t), 0);
	hostile_rounds(t, 300);
	/* Interrupts wanted again, with garbage still coming: waits are bounded. */
	vdrv_enable_cb(&t->drv);
	hostile_rounds(t, 100);
	__atomic_store_n(&scribbling, 0, __ATOMIC_RELAXED);
	assert_int_equal(pthread_join(th, NULL), 0);
	fprintf(stderr, "event_idx hostile (%s): 5600 requests served, %u interrupts\n",
		engine_of(t), t->asserts);
	/*
	 * Behaving again: the usual way works once a kick got the device to
	 * publish avail_event over the garbage (the driver's own doing).
	 */
	*t->drv.avail_flags = 0;
	assert_true(vdrv_enable_cb(&t->drv));
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	wait_used(t, 1);
	evidx_qd1(t, 10, &(struct evidx_run){ 0 });
	assert_false(virtio_pci_get_vq(&t->b->vp, 0)->broken);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * Where the ring mode comes from: the features at queue set-up, again
 * at DRIVER_OK (a driver that acks EVENT_IDX only after setting up its
 * queue), after a queue set up again once DRIVER_OK was written, and
 * none after a reset.  A switch at DRIVER_OK must publish avail_event
 * at once: requests served before it left the device asleep with
 * avail_event 0, and the driver now waits for it to kick.
 */
static void test_event_idx_features(void **state)
{
	struct t *t = engine_t(state);
	struct virtq *vq;
	struct evidx_run r = { 0 };

	/* No polling: the device publishes avail_event only because of the switch. */
	assert_int_equal(dev_up(t, "poll=0"), 0);
	vq = virtio_pci_get_vq(&t->b->vp, 0);
	assert_true(t->drv.host_features & (1u << VDRV_F_EVENT_IDX));

	/* Reset; features without EVENT_IDX, queue; then EVENT_IDX acked late. */
	assert_int_equal(vdrv_reset(&t->drv), 0);
	vdrv_begin(&t->drv, &t->b->vp, &t->gm, ~(1u << VDRV_F_EVENT_IDX), t->irq_efd, true);
	assert_int_equal(vdrv_setup_queue(&t->drv, 0, RING_GPA, false), 0);
	assert_false(virtq_has_event_idx(vq));
	/* Served before DRIVER_OK, with kicks by the flags. */
	evidx_qd1(t, 5, &r);
	/*
	 * Published in flags mode too, before each sleep: a driver acking
	 * late is not stranded.
	 */
	wait_avail_event_caught_up(t);
	assert_int_equal(*t->drv.avail_event, 5);
	bar_write(t, VIRTIO_PCI_GUEST_FEATURES, 4, t->drv.features | (1u << VDRV_F_EVENT_IDX));
	t->drv.features = bar_read(t, VIRTIO_PCI_GUEST_FEATURES, 4);
	t->drv.event_idx = true;
	vdrv_driver_ok(&t->drv);
	assert_true(virtq_has_event_idx(vq));
	wait_avail_event_caught_up(t);
	r.kicks = 0;
	evidx_qd1(t, 20, &r);
	assert_true(r.kicks > 0);

	/* The queue set up again after DRIVER_OK keeps EVENT_IDX. */
	bar_write(t, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	bar_write(t, VIRTIO_PCI_QUEUE_PFN, 4, 0);
	assert_false(virtq_has_event_idx(vq));
	assert_int_equal(vdrv_setup_queue(&t->drv, 0, RING_GPA, false), 0);
	assert_true(virtq_has_event_idx(vq));
	evidx_qd1(t, 20, &r);

	/* A reset turns it off; a driver without it gets the flags. */
	assert_int_equal(vdrv_reset(&t->drv), 0);
	assert_false(virtq_has_event_idx(vq));
	t->event_idx = false;
	driver_setup(t);
	evidx_qd1(t, 20, &r);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * No queue thread (the register's notify serves the ring on the vCPU):
 * with EVENT_IDX each drain still leaves avail_event caught up, so the
 * driver's next request kicks and is served within that kick.
 */
static void test_event_idx_no_thread(void **state)
{
	struct t *t = engine_t(state);
	unsigned int i;

	t->event_idx = true;
	t->no_thread = true;
	assert_int_equal(dev_up(t, NULL), 0);
	assert_int_equal(t->drv.kick_fd, -1);
	for (i = 0; i < 200; i++) {
		queue_req(t, i % 2, VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, 1);
		assert_int_equal(vdrv_kick(&t->drv), 1);
		assert_int_equal(vdrv_used_idx(&t->drv), (uint16_t)(i + 1));
		assert_int_equal(*t->drv.avail_event, t->drv.avail_shadow);
		assert_int_equal(*slot_status(t, i % 2), VIRTIO_BLK_S_OK);
	}
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/* One SQE of opcode on ring (reading fd into buf, or opening path); the CQE's res. */
static int ring_try(struct io_uring *ring, uint8_t opcode, int fd, void *buf, unsigned int len,
		    const char *path)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	assert_non_null(sqe);
	switch (opcode) {
	case IORING_OP_READV:
		io_uring_prep_readv(sqe, fd, &iov, 1, 0);
		break;
	case IORING_OP_OPENAT:
		io_uring_prep_openat(sqe, AT_FDCWD, path, O_RDONLY, 0);
		break;
	case IORING_OP_READ:
		io_uring_prep_read(sqe, fd, buf, len, 0);
		break;
	case IORING_OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, fd, 0, 0, len);
		break;
	default:
		io_uring_prep_nop(sqe);
		sqe->opcode = opcode;
		break;
	}
	assert_true(io_uring_submit_and_wait(ring, 1) >= 0);
	assert_int_equal(io_uring_peek_cqe(ring, &cqe), 0);
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	/* An open that got through must not leak. */
	if (opcode == IORING_OP_OPENAT && ret >= 0)
		close(ret);
	return ret;
}

/*
 * The engine's ring restriction: what the seccomp filter cannot see
 * (operations inside a ring) is limited to the engine's four.  READV and
 * FALLOCATE work; OPENAT, READ and SENDMSG (not on the list) are refused.
 */
static void test_ring_restricted(void **state)
{
	char path[] = "/tmp/tvmm-ring-XXXXXX";
	static uint8_t buf[4096];
	struct io_uring ring;
	int fd;

	(void)state;
	need_uring();
	fd = mkstemp(path);
	assert_true(fd >= 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(io_uring_queue_init(8, &ring, IORING_SETUP_R_DISABLED), 0);
	assert_int_equal(disk_uring_restrict(&ring), 0);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(ring_try(&ring, IORING_OP_READV, fd, buf, sizeof(buf), NULL), 4096);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(ring_try(&ring, IORING_OP_FALLOCATE, fd, NULL, 8192, NULL), 0);
	assert_int_equal(ring_try(&ring, IORING_OP_OPENAT, -1, NULL, 0, "/etc/passwd"), -EACCES);
	assert_int_equal(ring_try(&ring, IORING_OP_READ, fd, buf, sizeof(buf), NULL), -EACCES);
	assert_int_equal(ring_try(&ring, IORING_OP_SENDMSG, -1, NULL, 0, NULL), -EACCES);
	io_uring_queue_exit(&ring);
	close(fd);
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
	assert_int_equal(*slot_status(t, slot), VDRV_BLK_STATUS_NONE);
	/* Set before the used entry: no queue set-up can slip in between. */
	assert_true(bar_read(t, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(virtio_pci_get_vq(&t->b->vp, 0)->broken);

	queue_req(t, slot + 1, VIRTIO_BLK_T_IN, 0, 4096, 1);
	kick(t);
	usleep(50000);
	assert_int_equal(vdrv_used_idx(&t->drv), t->drv.last_used);
	assert_int_equal(*slot_status(t, slot + 1), VDRV_BLK_STATUS_NONE);

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
	struct vdrv_desc *d = t->drv.desc;

	/*
	 * Data outside RAM, status fine; a good request beside it.  Chains
	 * are spoiled before they are published: the device may be polling.
	 */
	t->drv.hold_avail = true;
	queue_req(t, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
	d[1].addr = RAM_SIZE;
	queue_req(t, 1, VIRTIO_BLK_T_OUT, 8, 4096, 1);
	vdrv_publish(&t->drv);
	t->drv.hold_avail = false;
	kick(t);
	wait_used(t, 2);
	assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len_of(t, 0, 2), 1);
	assert_int_equal(*slot_status(t, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(t, 1, 2), 1);
	assert_false(bar_read(t, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);

	/* A good chain whose "status" is device-readable: nothing to answer in. */
	t->drv.hold_avail = true;
	queue_req(t, 2, VIRTIO_BLK_T_OUT, 8, 4096, 1);
	d[3 * 2 + 2].flags = 0;
	vdrv_publish(&t->drv);
	t->drv.hold_avail = false;
	kick(t);
	expect_unanswered(t, 2);

	/* A refused chain with no end: a loop back to its head. */
	t->drv.hold_avail = true;
	queue_req(t, 4, VIRTIO_BLK_T_IN, 0, 4096, 1);
	d[3 * 4 + 2].flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE;
	d[3 * 4 + 2].next = 3 * 4;
	vdrv_publish(&t->drv);
	t->drv.hold_avail = false;
	kick(t);
	expect_unanswered(t, 4);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

/*
 * A reset with requests in flight waits for them; nothing is used after
 * it.  pfn0: the queue's PFN set to 0 instead of the status (Linux does
 * it to retry its queue set-up): the same for that ring, but features
 * and status stay, and setting the ring up again serves it.
 */
static void reset_in_flight(struct t *t, bool pfn0)
{
	unsigned int round, i, partial = 0, total = 0, busy = 0;
	uint8_t status = bar_read(t, VIRTIO_PCI_STATUS, 1);
	uint32_t features = bar_read(t, VIRTIO_PCI_GUEST_FEATURES, 4);
	uint16_t used;
	uint64_t popped;

	for (round = 0; round < 20; round++) {
		uint64_t before = t->b->q[0].requests;
		uint16_t used_before = vdrv_used_idx(&t->drv);

		for (i = 0; i < MAX_REQS; i++)
			queue_req(t, i, i % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				  (uint64_t)i * 256, SLOT_DATA, 1);
		kick(t);
		if (round % 2)
			usleep(100 * round);
		busy += __atomic_load_n(&t->b->in_flight, __ATOMIC_RELAXED) > 0;
		if (pfn0) {
			bar_write(t, VIRTIO_PCI_QUEUE_SEL, 2, 0);
			bar_write(t, VIRTIO_PCI_QUEUE_PFN, 4, 0);
		} else {
			bar_write(t, VIRTIO_PCI_STATUS, 1, 0);
		}
		assert_int_equal(t->b->in_flight, 0);
		/* Every request that was popped was completed, exactly once. */
		used = vdrv_used_idx(&t->drv);
		popped = t->b->q[0].requests - before;
		assert_int_equal((uint16_t)(used - used_before), popped);
		total += popped;
		partial += popped > 0 && popped < MAX_REQS;
		usleep(2000);
		assert_int_equal(vdrv_used_idx(&t->drv), used);
		if (pfn0) {
			assert_int_equal(bar_read(t, VIRTIO_PCI_QUEUE_PFN, 4), 0);
			assert_int_equal(bar_read(t, VIRTIO_PCI_STATUS, 1), status);
			assert_int_equal(bar_read(t, VIRTIO_PCI_GUEST_FEATURES, 4), features);
			assert_int_equal(vdrv_setup_queue(&t->drv, 0, RING_GPA, false), 0);
		} else {
			assert_int_equal(bar_read(t, VIRTIO_PCI_ISR, 1), 0);
			driver_setup(t);
		}
		/* And the device works after it. */
		queue_req(t, 0, VIRTIO_BLK_T_IN, 16, 4096, 1);
		kick(t);
		wait_used(t, 1);
		assert_int_equal(*slot_status(t, 0), VIRTIO_BLK_S_OK);
	}
	fprintf(stderr, "%s (%s): %u requests completed across 20 resets, %u resets mid-batch, %u with requests in flight\n",
		pfn0 ? "PFN 0" : "reset", t->aio == BLK_AIO_IO_URING ? "io_uring" : "threads",
		total, partial, busy);
}

static void test_reset_in_flight(void **state)
{
	struct t *t = t_new(state);

	reset_in_flight(t, false);
	assert_int_equal(dev_down(t), 0);
	free(t);
}

static void test_pfn0_in_flight(void **state)
{
	struct t *t = t_new(state);

	reset_in_flight(t, true);
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
	assert_string_equal(engine_of(t), uring_ok ? "io_uring" : "threads");
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
	char log[] = "/tmp/tvmm-uring-log-XXXXXX", buf[4096], *p;
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
		if (dev_up(&t1, NULL) || strcmp(engine_of(&t1), "threads"))
			_exit(91);
		queue_req(&t1, 0, VIRTIO_BLK_T_IN, 0, 4096, 1);
		kick(&t1);
		wait_used(&t1, 1);
		if (*slot_status(&t1, 0) != VIRTIO_BLK_S_OK || dev_down(&t1))
			_exit(92);
		/* Told for each device, naming its image. */
		if (dev_up(&t3, NULL) || strcmp(engine_of(&t3), "threads") || dev_down(&t3))
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
	p = strstr(buf, "': io_uring unavailable (Function not implemented): using aio=threads\n");
	assert_non_null(p);
	/* One line per device. */
	p = strstr(p + 1, "': io_uring unavailable (Function not implemented): using aio=threads\n");
	assert_non_null(p);
	assert_null(strstr(strchr(p, '\n'), "unavailable"));
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
		BOTH(test_pfn0_in_flight),
		BOTH(test_destroy_in_flight),
		BOTH(test_durability_order_writethru),
		BOTH(test_durability_order_writeback),
		BOTH(test_writethru_alone_inline),
		BOTH(test_poll_kicks),
		BOTH(test_kick_after_pop),
		BOTH(test_event_idx_stress),
		BOTH(test_event_idx_irq_suppressed),
		BOTH(test_event_idx_kick_while_busy),
		BOTH(test_no_event_idx_kick_while_busy),
		BOTH(test_event_idx_poll),
		BOTH(test_event_idx_hostile),
		BOTH(test_event_idx_features),
		BOTH(test_event_idx_no_thread),
		BOTH(test_mq),
		cmocka_unit_test_prestate_setup_teardown(test_mq_fallback, NULL, fb_teardown,
							 &aio_uring),
		cmocka_unit_test_prestate_setup_teardown(test_mq_fallback, NULL, fb_teardown,
							 &aio_threads),
		cmocka_unit_test(test_default_engine),
		cmocka_unit_test(test_ring_restricted),
		cmocka_unit_test(test_refused),
#undef BOTH
	};

	uring_ok = probe_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
