// SPDX-License-Identifier: MIT
/*
 * virtio-blk device glue: the transport callbacks and the device's life
 * cycle; the queue thread is in blk_queue.c, the request format in
 * blk_req.c, the I/O in the disk layer (disk/).
 *
 * Locking.  The transport calls our ops one at a time under its
 * ctrl_lock (never under vp.lock, a leaf that raise_isr and friends
 * take), so:
 *  - b->lock guards the ioreq pool, in_flight, paused, stopping,
 *    running and cfg, and serialises virtq_pop (one popper at a time,
 *    and a reset sees a quiet avail ring);
 *  - complete_lock guards the used ring (virtq_push) and the interrupt
 *    decision; it is a leaf (taken under b->lock only to switch the ring
 *    mode, blk_apply_ring_features);
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
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "lib/util.h"

#define BLK_PCI_CLASS_STORAGE	0x01
#define BLK_CFG_WCE_OFF		offsetof(struct blk_config, wce)

_Static_assert(sizeof(struct blk_config) == 60, "virtio_blk_config layout");
_Static_assert(offsetof(struct blk_config, wce) == 32, "wce at offset 32");
_Static_assert(offsetof(struct blk_config, max_discard_sectors) == 36, "discard at 36");
_Static_assert(offsetof(struct blk_config, write_zeroes_may_unmap) == 56, "unmap at 56");

void blk_efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated: already signalled. */
	if (write(fd, &one, sizeof(one)) < 0)
		pr_debug("virtio-blk: eventfd write: %s", strerror(errno));
}

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
static void blk_apply_ring_features(struct blk_dev *b)
{
	bool on = virtio_pci_has_feature(&b->vp, VIRTIO_RING_F_EVENT_IDX);
	bool running, switched;

	pthread_mutex_lock(&b->lock);
	pthread_mutex_lock(&b->complete_lock);
	switched = virtq_has_event_idx(b->q.vq) != on;
	if (switched)
		virtq_set_event_idx(b->q.vq, on);
	pthread_mutex_unlock(&b->complete_lock);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (!switched || !on)
		return;
	if (running)
		blk_efd_signal(b->wake_efd);
	else
		blk_queue_drain_sync(b);	/* publishes avail_event */
}

static void blk_driver_ok(void *dev)
{
	struct blk_dev *b = dev;

	/*
	 * Features are final from here on.  The queue may have been set up
	 * before the features were (blk_queue_ready applied those of then).
	 */
	blk_apply_ring_features(b);

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
	pr_debug("virtio-blk: queue %u ready", n);
	/*
	 * Setting the queue up reset its mode (virtq_init_legacy): take the
	 * one of the features acked so far, which a queue set up again after
	 * DRIVER_OK needs; DRIVER_OK applies the final ones.
	 */
	if (n == 0)
		blk_apply_ring_features(dev);
}

static void blk_queue_notify(void *dev, unsigned int n)
{
	struct blk_dev *b = dev;
	bool running;

	if (n != 0)
		return;
	pthread_mutex_lock(&b->lock);
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	/* Keep disk I/O off the vCPU whenever the queue thread exists. */
	if (running)
		blk_efd_signal(b->wake_efd);
	else
		blk_queue_drain_sync(b);
}

static void blk_reset(void *dev)
{
	struct blk_dev *b = dev;
	uint8_t old;

	pthread_mutex_lock(&b->lock);
	b->paused = true;
	while (b->in_flight)
		pthread_cond_wait(&b->idle_cond, &b->lock);
	/*
	 * A polling queue thread may have left kicks off in the ring; do not
	 * leave that in memory the driver may set up as a ring again.
	 */
	virtq_set_notify(b->q.vq, true);
	/* Not ready until the driver sets it up again: nothing to pop. */
	virtq_reset(b->q.vq);
	old = b->cfg.wce;
	__atomic_store_n(&b->cfg.wce, b->opts.writeback, __ATOMIC_RELAXED);
	b->paused = false;
	pthread_mutex_unlock(&b->lock);
	/* The next driver may assume writethru: settle the old cache now. */
	if (old)
		blk_flush_media(b, "flush at reset");
}

static const struct virtio_dev_ops blk_dev_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.driver_ok = blk_driver_ok,
	.queue_ready = blk_queue_ready,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

/* ---- life cycle ---------------------------------------------------------- */

static void blk_stop_thread(struct blk_dev *b)
{
	bool running;

	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (!running)
		return;
	/* The queue thread reaps all it submitted before it returns. */
	blk_efd_signal(b->wake_efd);
	pthread_join(b->queue_thread, NULL);
	pthread_mutex_lock(&b->lock);
	b->running = false;
	pthread_mutex_unlock(&b->lock);
}

int blk_dev_start(struct blk_dev *b)
{
	int ret;

	if (b->running)
		return -EBUSY;
	b->q.kick_fd = virtio_pci_kick_fd(&b->vp, 0);
	pthread_mutex_lock(&b->lock);
	b->running = true;
	pthread_mutex_unlock(&b->lock);
	ret = pthread_create(&b->queue_thread, NULL, blk_queue_thread, b);
	if (!ret) {
		pthread_setname_np(b->queue_thread, "blk-q");
		return 0;
	}
	pthread_mutex_lock(&b->lock);
	b->running = false;
	pthread_mutex_unlock(&b->lock);
	pr_err("virtio-blk: '%s': cannot start the queue thread: %s", b->opts.path, strerror(ret));
	return -ret;
}

/* Everything but the transport and the thread. */
static void blk_dev_free(struct blk_dev *b)
{
	disk_close(b->disk);
	if (b->wake_efd >= 0)
		close(b->wake_efd);
	pthread_cond_destroy(&b->idle_cond);
	pthread_mutex_destroy(&b->complete_lock);
	pthread_mutex_destroy(&b->lock);
	free(b->ioreqs);
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

static int blk_alloc_pool(struct blk_dev *b)
{
	unsigned int i;

	b->ioreqs = calloc(b->opts.queue_size, sizeof(*b->ioreqs));
	if (!b->ioreqs) {
		pr_err("virtio-blk: '%s': out of memory for %u requests", b->opts.path,
		       b->opts.queue_size);
		return -ENOMEM;
	}
	for (i = b->opts.queue_size; i-- > 0;) {
		b->ioreqs[i].next = b->free_list;
		b->free_list = &b->ioreqs[i];
	}
	b->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wake_efd < 0) {
		int err = errno;

		pr_err("virtio-blk: '%s': eventfd: %s", b->opts.path, strerror(err));
		return -err;
	}
	return 0;
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

int blk_dev_create(struct blk_dev **out, const char *args, const struct guest_mem *mem)
{
	struct blk_dev *b;
	int ret;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->wake_efd = -1;
	b->q.kick_fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->complete_lock, NULL);
	pthread_cond_init(&b->idle_cond, NULL);

	ret = blk_opts_parse(args, &b->opts);
	if (!ret)
		ret = blk_open_disk(b);
	if (!ret)
		ret = blk_alloc_pool(b);
	if (ret)
		goto err;
	blk_dev_setup_media(b);
	/* A ring feature: the queue loop keeps avail_event (blk_queue.c). */
	b->features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	b->q.poll_max_ns = blk_poll_default(&b->opts) * 1000ULL;
	ret = virtio_pci_init(&b->vp, "virtio-blk", VIRTIO_BLK_PCI_DEVICE_ID,
			      BLK_PCI_CLASS_STORAGE, VIRTIO_ID_BLOCK, (uint32_t)b->features,
			      sizeof(b->cfg), 1, &b->opts.queue_size, mem, &blk_dev_ops, b);
	/* A vector for config changes and one for the queue. */
	if (!ret && !b->opts.no_msix)
		ret = virtio_pci_init_msix(&b->vp, 2);
	if (ret) {
		pr_err("virtio-blk: '%s': transport set-up failed: %s", b->opts.path,
		       strerror(-ret));
		goto err;
	}
	b->q.vq = virtio_pci_get_vq(&b->vp, 0);
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
	blk_stop_thread(b);
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
	s->requests = __atomic_load_n(&b->requests, __ATOMIC_RELAXED);
	s->kicks = __atomic_load_n(&b->kicks, __ATOMIC_RELAXED);
	virtio_pci_notify_exits(&b->vp, &s->notify_exits, &s->notify_exits_after_driver_ok);
}
