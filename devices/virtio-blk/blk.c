// SPDX-License-Identifier: MIT
/*
 * virtio-blk device glue: the transport callbacks and the device's life
 * cycle; the queue thread is in blk_queue.c, the request format in
 * blk_req.c, the I/O in the disk layer (disk/).
 *
 * Locking.  The transport calls our ops one at a time under its
 * ctrl_lock (never under vp.lock, a leaf that raise_isr and friends
 * take), so:
 *  - b->lock guards every queue's ioreq pool, in_flight, paused,
 *    stopping (written under it; the queue threads also read it with an
 *    atomic load), running and cfg, and serialises virtq_pop (one popper
 *    at a time, and a reset sees quiet avail rings);
 *  - each queue's complete_lock guards its used ring (virtq_push) and
 *    its interrupt decision; it is a leaf (taken under b->lock only to
 *    switch the ring mode, blk_apply_ring_features);
 *  - neither is held while calling into the transport, except b->lock
 *    for virtio_pci_needs_reset() on a broken ring (it takes only the
 *    transport's inner locks: vp.lock, the MSI-X table's, and what the
 *    VMM's MSI-X sink takes, none of them ctrl_lock or ours); reset waits
 *    only for in_flight, which drops after a completion raised its
 *    interrupt, so no ISR bit, message or NEEDS_RESET of a completion
 *    outlives the reset, and raising takes only those inner locks, so the
 *    wait cannot block on it.
 *
 * Invariant: a request is popped (ioreq busy, in_flight++) under b->lock
 * and completed exactly once by blk_complete_list() (used ring, ioreq
 * back on the free list, in_flight--), by the queue thread once its
 * disk operation is done, or, without a queue thread, by the popper.
 * reset pauses popping and waits for in_flight == 0, so no used-ring
 * write follows it.  A completion with used length 0 (no status byte to
 * write) sets NEEDS_RESET and stops the queue (vq broken, under b->lock)
 * before its used entry and before in_flight drops, so the reset clears
 * both and no queue set-up slips in between (the transport takes none
 * while NEEDS_RESET is set).
 */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "lib/efd.h"
#include "lib/util.h"

#define BLK_PCI_CLASS_STORAGE	0x01
#define BLK_CFG_WCE_OFF		offsetof(struct blk_config, wce)

_Static_assert(sizeof(struct blk_config) == 60, "virtio_blk_config layout");
_Static_assert(offsetof(struct blk_config, wce) == 32, "wce at offset 32");
_Static_assert(offsetof(struct blk_config, max_discard_sectors) == 36, "discard at 36");
_Static_assert(offsetof(struct blk_config, write_zeroes_may_unmap) == 56, "unmap at 56");

/* Switch the cache mode; leaving writeback makes what it wrote durable. */
static void blk_set_wce(struct blk_dev *b, uint8_t wce)
{
	uint8_t old;

	pthread_mutex_lock(&b->lock);
	old = b->cfg.wce;
	__atomic_store_n(&b->cfg.wce, wce, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->lock);
	/*
	 * Writes issued from here on are synchronous, and the flush covers
	 * the ones completed before.  Linux freezes the queue around the
	 * switch, so no write straddles it.
	 */
	if (old && !wce)
		blk_flush_media(b, "flush on leaving writeback");
}

/* ---- transport callbacks ------------------------------------------------ */

static void blk_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct blk_dev *b = dev;

	if (off > sizeof(b->cfg) || len > sizeof(b->cfg) - off) {
		memset(buf, 0, len);
		return;
	}
	pthread_mutex_lock(&b->lock);
	memcpy(buf, (const uint8_t *)&b->cfg + off, len);
	pthread_mutex_unlock(&b->lock);
}

static void blk_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct blk_dev *b = dev;

	/* Everything but the wce byte is read-only; drivers write it alone. */
	if (off > BLK_CFG_WCE_OFF || BLK_CFG_WCE_OFF - off >= len)
		return;
	if (!virtio_pci_has_feature(&b->vp, VIRTIO_BLK_F_CONFIG_WCE))
		return;
	blk_set_wce(b, ((const uint8_t *)buf)[BLK_CFG_WCE_OFF - off] ? 1 : 0);
}

/*
 * Put the queue in the ring mode the driver acked (EVENT_IDX or flags).
 * The queue thread may be running: under b->lock (virtq_set_notify's)
 * and complete_lock (the interrupt decision's) no call of either sees
 * the mode change half-way.  The thread may be asleep with avail_event
 * never published (it was not in use): it is woken to publish it, since
 * until then the driver might not kick.
 */
static void blk_apply_ring_features(struct blk_queue *q)
{
	struct blk_dev *b = q->b;
	bool on = virtio_pci_has_feature(&b->vp, VIRTIO_RING_F_EVENT_IDX);
	bool running, switched;

	pthread_mutex_lock(&b->lock);
	pthread_mutex_lock(&q->complete_lock);
	switched = virtq_has_event_idx(q->vq) != on;
	if (switched)
		virtq_set_event_idx(q->vq, on);
	pthread_mutex_unlock(&q->complete_lock);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (!switched || !on)
		return;
	if (running)
		efd_signal(q->wake_efd);
	else
		blk_queue_drain_sync(q);	/* publishes avail_event */
}

static void blk_driver_ok(void *dev)
{
	struct blk_dev *b = dev;
	unsigned int i;

	/*
	 * Features are final from here on.  The queue may have been set up
	 * before the features were (blk_queue_ready applied those of then).
	 */
	for (i = 0; i < b->nr_queues; i++)
		blk_apply_ring_features(&b->q[i]);

	/*
	 * Without CONFIG_WCE, Linux assumes writeback exactly when FLUSH was
	 * acked; a driver that will never flush must get writethru.
	 */
	if (!virtio_pci_has_feature(&b->vp, VIRTIO_BLK_F_CONFIG_WCE) &&
	    !virtio_pci_has_feature(&b->vp, VIRTIO_BLK_F_FLUSH))
		blk_set_wce(b, 0);
}

static void blk_queue_ready(void *dev, unsigned int n)
{
	struct blk_dev *b = dev;

	pr_debug("virtio-blk: queue %u ready", n);
	/*
	 * Setting the queue up reset its mode (virtq_init_legacy): take the
	 * one of the features acked so far, which a queue set up again after
	 * DRIVER_OK needs; DRIVER_OK applies the final ones.
	 */
	if (n < b->nr_queues)
		blk_apply_ring_features(&b->q[n]);
}

static void blk_queue_notify(void *dev, unsigned int n)
{
	struct blk_dev *b = dev;
	bool running;

	if (n >= b->nr_queues)
		return;
	pthread_mutex_lock(&b->lock);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	/* Keep disk I/O off the vCPU whenever the queue threads exist. */
	if (running)
		efd_signal(b->q[n].wake_efd);
	else
		blk_queue_drain_sync(&b->q[n]);
}

/* Under b->lock: pop nothing more, and wait until every request in flight is completed. */
static void blk_quiesce_locked(struct blk_dev *b)
{
	b->paused = true;
	while (b->in_flight)
		pthread_cond_wait(&b->idle_cond, &b->lock);
}

/* Under b->lock, quiesced: the ring forgotten, nothing to pop until set up again. */
static void blk_queue_forget(struct blk_queue *q)
{
	/*
	 * A polling queue thread may have left kicks off in the ring; do not
	 * leave that in memory the driver may set up as a ring again.
	 */
	virtq_set_notify(q->vq, true);
	virtq_reset(q->vq);
}

static void blk_reset(void *dev)
{
	struct blk_dev *b = dev;
	unsigned int i;
	uint8_t old;

	pthread_mutex_lock(&b->lock);
	blk_quiesce_locked(b);
	for (i = 0; i < b->nr_queues; i++)
		blk_queue_forget(&b->q[i]);
	old = b->cfg.wce;
	__atomic_store_n(&b->cfg.wce, b->opts.writeback, __ATOMIC_RELAXED);
	b->paused = false;
	pthread_mutex_unlock(&b->lock);
	/* The next driver may assume writethru: settle the old cache now. */
	if (old)
		blk_flush_media(b, "flush at reset");
}

/*
 * Every request finished (the device paused for it), then queue n
 * forgotten.  The other queues' threads are woken after: a pop blocked
 * by the pause waits for no kick the driver still owes.
 */
static void blk_queue_reset(void *dev, unsigned int n)
{
	struct blk_dev *b = dev;
	unsigned int i;
	bool running;

	pthread_mutex_lock(&b->lock);
	blk_quiesce_locked(b);
	if (n < b->nr_queues)
		blk_queue_forget(&b->q[n]);
	b->paused = false;
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	for (i = 0; running && i < b->nr_queues; i++)
		if (i != n)
			efd_signal(b->q[i].wake_efd);
}

static const struct virtio_dev_ops blk_dev_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.driver_ok = blk_driver_ok,
	.queue_ready = blk_queue_ready,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.queue_reset = blk_queue_reset,
};

/* ---- life cycle ---------------------------------------------------------- */

static void blk_stop_threads(struct blk_dev *b)
{
	unsigned int i;
	bool running;

	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->stopping, true, __ATOMIC_RELEASE);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (!running)
		return;
	/* Each queue thread reaps all it submitted before it returns. */
	for (i = 0; i < b->nr_queues; i++)
		efd_signal(b->q[i].wake_efd);
	for (i = 0; i < b->nr_queues; i++)
		pthread_join(b->q[i].thread, NULL);
	pthread_mutex_lock(&b->lock);
	b->running = false;
	pthread_mutex_unlock(&b->lock);
}

int blk_dev_start(struct blk_dev *b)
{
	char name[16];
	unsigned int i;
	int ret = 0;

	if (b->running)
		return -EBUSY;
	pthread_mutex_lock(&b->lock);
	b->running = true;
	pthread_mutex_unlock(&b->lock);
	for (i = 0; i < b->nr_queues; i++) {
		b->q[i].kick_fd = virtio_pci_kick_fd(&b->vp, i);
		ret = pthread_create(&b->q[i].thread, NULL, blk_queue_thread, &b->q[i]);
		if (ret)
			break;
		snprintf(name, sizeof(name), "blk-q%u", i);
		pthread_setname_np(b->q[i].thread, name);
	}
	if (!ret)
		return 0;
	pr_err("virtio-blk: '%s': cannot start queue thread %u: %s", b->opts.path, i,
	       strerror(ret));
	/* Stop the ones started: the device is left as it was before the call. */
	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->stopping, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->lock);
	while (i-- > 0) {
		efd_signal(b->q[i].wake_efd);
		pthread_join(b->q[i].thread, NULL);
	}
	pthread_mutex_lock(&b->lock);
	b->running = false;
	__atomic_store_n(&b->stopping, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->lock);
	return -ret;
}

/* A queue's pool, wake eventfd and disk, as blk_queue_init() found them. */
static void blk_queue_release(struct blk_dev *b, struct blk_queue *q)
{
	if (q->disk && q->disk != b->disk)
		disk_close(q->disk);
	q->disk = NULL;
	if (q->wake_efd >= 0)
		close(q->wake_efd);
	q->wake_efd = -1;
	free(q->ioreqs);
	q->ioreqs = q->free_list = NULL;
}

static void blk_queue_free(struct blk_dev *b, struct blk_queue *q)
{
	blk_queue_release(b, q);
	pthread_mutex_destroy(&q->complete_lock);
}

/* Everything but the transport and the threads. */
static void blk_dev_free(struct blk_dev *b)
{
	unsigned int i;

	for (i = 0; i < BLK_MAX_QUEUES; i++)
		blk_queue_free(b, &b->q[i]);
	disk_close(b->disk);
	pthread_cond_destroy(&b->idle_cond);
	pthread_mutex_destroy(&b->lock);
	blk_opts_free(&b->opts);
	free(b);
}

void blk_disk_conf(const struct blk_opts *o, struct disk_conf *out)
{
	const struct disk_conf c = {
		.path = o->path,
		.ro = o->ro,
		.direct = o->direct,
		.logical_block = o->logical_block,
		.physical_block = o->physical_block,
		.has_range = o->has_range,
		.range_start = o->range_lba * o->logical_block,
		.range_len = o->range_sectors * o->logical_block,
		.engine = o->aio == BLK_AIO_THREADS ? DISK_ENGINE_THREADS :
			  o->aio == BLK_AIO_IO_URING ? DISK_ENGINE_IO_URING : DISK_ENGINE_DEFAULT,
		.depth = o->queue_size,
		.who = "virtio-blk",
		.reconnect_ms = o->reconnect_ms,
		.timeout_ms = o->timeout_s * 1000,
	};

	*out = c;
}

static int blk_open_disk(struct blk_dev *b)
{
	struct disk_conf c;

	blk_disk_conf(&b->opts, &c);
	return disk_open(&b->disk, &c);
}

/* Queue n's request pool, wake eventfd and disk (queue 0: the device's). */
static int blk_queue_init(struct blk_dev *b, unsigned int n)
{
	struct blk_queue *q = &b->q[n];
	unsigned int i;
	int ret;

	q->ioreqs = calloc(b->opts.queue_size, sizeof(*q->ioreqs));
	if (!q->ioreqs) {
		pr_err("virtio-blk: '%s': out of memory for %u requests", b->opts.path,
		       b->opts.queue_size);
		return -ENOMEM;
	}
	for (i = b->opts.queue_size; i-- > 0;) {
		q->ioreqs[i].next = q->free_list;
		q->free_list = &q->ioreqs[i];
	}
	q->wake_efd = efd_open();
	if (q->wake_efd < 0) {
		ret = q->wake_efd;
		pr_err("virtio-blk: '%s': eventfd: %s", b->opts.path, strerror(-ret));
		return ret;
	}
	if (n == 0) {
		q->disk = b->disk;
		return 0;
	}
	/* The caller says so: an error with mq=, a note without. */
	return disk_open_queue(&q->disk, b->disk);
}

/*
 * mq=, or one queue per vCPU; one where the media cannot have a second
 * engine (an NBD connection), which an explicit mq= above 1 is told.
 */
static int blk_nr_queues(struct blk_dev *b, unsigned int default_queues)
{
	unsigned int n = b->opts.mq ? b->opts.mq : MIN(MAX(default_queues, 1u), BLK_MAX_QUEUES);

	if (n == 1 || disk_has_queues(b->disk))
		return n;
	if (!b->opts.mq) {
		pr_debug("virtio-blk: '%s': the %s engine serves one queue", b->opts.path,
			 disk_props(b->disk)->engine);
		return 1;
	}
	pr_err("virtio-blk: '%s': mq=%u: the %s engine serves one queue only", b->opts.path, n,
	       disk_props(b->disk)->engine);
	return -EINVAL;
}

/*
 * poll=, or by default none when this process may run on one CPU only:
 * the queue thread would spin on the CPU the guest's vCPU needs to post
 * the requests it is waiting for.
 */
static uint32_t blk_poll_default(const struct blk_opts *o)
{
	cpu_set_t set;

	if (o->has_poll || sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) > 1)
		return o->poll_us;
	pr_debug("virtio-blk: '%s': one CPU to run on: no polling (poll= to override)", o->path);
	return 0;
}

/* The queues: pools, engines, MQ in features and config. */
static int blk_queues_init(struct blk_dev *b, unsigned int default_queues)
{
	uint64_t poll_ns = blk_poll_default(&b->opts) * 1000ULL;
	unsigned int i;
	int ret = blk_nr_queues(b, default_queues);

	if (ret < 0)
		return ret;
	b->nr_queues = ret;
	for (i = 0; i < b->nr_queues; i++) {
		b->q[i].poll_max_ns = poll_ns;
		ret = blk_queue_init(b, i);
		if (ret && (i == 0 || b->opts.mq)) {
			if (i)
				pr_err("virtio-blk: '%s': mq=%u: cannot open queue %u's %s engine: %s",
				       b->opts.path, b->nr_queues, i, disk_props(b->disk)->engine,
				       strerror(-ret));
			return ret;
		}
		if (ret) {
			/* The default is a wish: serve with the queues there are. */
			blk_queue_release(b, &b->q[i]);
			pr_info("virtio-blk: '%s': %u queue(s), not one per vCPU (%u): queue %u's %s engine: %s",
				b->opts.path, i, b->nr_queues, i, disk_props(b->disk)->engine,
				strerror(-ret));
			b->nr_queues = i;
		}
	}
	if (b->nr_queues > 1) {
		b->features |= 1ULL << VIRTIO_BLK_F_MQ;
		b->cfg.num_queues = b->nr_queues;
	}
	return 0;
}

/* The transport: queues, and MSI-X with a vector per queue plus config's. */
static int blk_transport_init(struct blk_dev *b, const struct guest_mem *mem)
{
	uint16_t sizes[BLK_MAX_QUEUES];
	unsigned int i;
	int ret;

	for (i = 0; i < b->nr_queues; i++)
		sizes[i] = b->opts.queue_size;
	ret = virtio_pci_init(&b->vp, "virtio-blk", VIRTIO_BLK_PCI_DEVICE_ID,
			      BLK_PCI_CLASS_STORAGE, VIRTIO_ID_BLOCK, (uint32_t)b->features,
			      sizeof(b->cfg), b->nr_queues, sizes, mem, &blk_dev_ops, b);
	if (!ret && !b->opts.no_msix)
		ret = virtio_pci_init_msix(&b->vp, b->nr_queues + 1);
	if (ret) {
		pr_err("virtio-blk: '%s': transport set-up failed: %s", b->opts.path,
		       strerror(-ret));
		return ret;
	}
	for (i = 0; i < b->nr_queues; i++)
		b->q[i].vq = virtio_pci_get_vq(&b->vp, i);
	return 0;
}

int blk_dev_create(struct blk_dev **out, const char *args, const struct guest_mem *mem,
		   unsigned int default_queues)
{
	struct blk_dev *b;
	unsigned int i;
	int ret;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (i = 0; i < BLK_MAX_QUEUES; i++) {
		b->q[i].b = b;
		b->q[i].idx = i;
		b->q[i].wake_efd = -1;
		b->q[i].kick_fd = -1;
		pthread_mutex_init(&b->q[i].complete_lock, NULL);
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle_cond, NULL);

	ret = blk_opts_parse(args, &b->opts);
	if (!ret)
		ret = blk_open_disk(b);
	if (ret)
		goto err;
	blk_dev_setup_media(b);
	/* A ring feature: the queue loop keeps avail_event (blk_queue.c). */
	b->features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	ret = blk_queues_init(b, default_queues);
	if (!ret)
		ret = blk_transport_init(b, mem);
	if (ret)
		goto err;
	*out = b;
	return 0;
err:
	blk_dev_free(b);
	return ret;
}

int blk_dev_destroy(struct blk_dev *b)
{
	int ret = 0;

	if (!b)
		return 0;
	blk_stop_threads(b);
	if (b->cfg.wce)
		ret = blk_flush_media(b, "final flush");
	if (!ret)
		ret = __atomic_load_n(&b->flush_err, __ATOMIC_ACQUIRE);
	if (ret)
		pr_err("virtio-blk: '%s': the image may be missing completed writes: %s",
		       b->opts.path, strerror(-ret));
	virtio_pci_destroy(&b->vp);
	blk_dev_free(b);
	return ret;
}

int blk_dev_sock_family(const struct blk_dev *b)
{
	return disk_props(b->disk)->sock_family;
}

struct virtio_pci *blk_dev_transport(struct blk_dev *b)
{
	return &b->vp;
}

void blk_dev_stats(const struct blk_dev *b, struct blk_stats *s)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->nr_queues = b->nr_queues;
	for (i = 0; i < b->nr_queues; i++) {
		s->queue_requests[i] = __atomic_load_n(&b->q[i].requests, __ATOMIC_RELAXED);
		s->queue_interrupts[i] = __atomic_load_n(&b->q[i].interrupts, __ATOMIC_RELAXED);
		s->requests += s->queue_requests[i];
		s->kicks += __atomic_load_n(&b->q[i].kicks, __ATOMIC_RELAXED);
	}
	virtio_pci_notify_exits(&b->vp, &s->notify_exits, &s->notify_exits_after_driver_ok);
}
