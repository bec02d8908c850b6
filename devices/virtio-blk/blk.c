// SPDX-License-Identifier: MIT
/*
 * virtio-blk device glue: the transport callbacks, the queue thread and
 * the worker pool (after ACRN: qsize ioreqs on free/pending lists, 8
 * workers) of the threads engine; the io_uring engine's queue thread is
 * in blk_uring.c and shares the pop and completion code here.
 *
 * Locking.  The transport calls our ops one at a time under its
 * ctrl_lock (never under vp.lock, a leaf that raise_isr and friends
 * take), so:
 *  - b->lock guards the ioreq pool, in_flight, paused, stopping,
 *    nr_workers, running and cfg, and serialises virtq_pop (one popper
 *    at a time, and a reset sees a quiet avail ring);
 *  - complete_lock guards the used ring (virtq_push); it is a leaf;
 *  - neither is held while calling into the transport, except b->lock
 *    for virtio_pci_needs_reset() on a broken ring (it takes only the
 *    transport's leaf lock); reset waits only for in_flight, which drops
 *    after a completion raised its interrupt, so no ISR bit or
 *    NEEDS_RESET of a completion outlives the reset, and raising takes
 *    only that leaf lock, so the wait cannot block on it.
 *
 * Invariant: a request is popped (ioreq busy, in_flight++) under b->lock
 * and completed exactly once by blk_complete_list() (used ring, ioreq
 * back on the free list, in_flight--), either by the one worker that took
 * it off the pending list, by the io_uring queue thread once its last
 * CQE is in, or, for a bad chain or without a queue thread, by the
 * popper.  reset pauses popping and waits for in_flight == 0, so no
 * used-ring write follows it.  A completion with used length 0 (no
 * status byte to write) sets NEEDS_RESET and stops the queue (vq broken,
 * under b->lock) before its used entry and before in_flight drops, so
 * the reset clears both and no queue set-up slips in between (the
 * transport takes none while NEEDS_RESET is set).
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
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

_Static_assert(sizeof(struct blk_config) == 34, "virtio_blk_config layout");
_Static_assert(offsetof(struct blk_config, wce) == 32, "wce at offset 32");

static bool blk_broken_warned, blk_unanswered_warned;

static void blk_efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated: already signalled. */
	if (write(fd, &one, sizeof(one)) < 0)
		pr_debug("virtio-blk: eventfd write: %s", strerror(errno));
}

static void blk_efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		pr_debug("virtio-blk: eventfd read: %s", strerror(errno));
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

/*
 * The driver cannot tell what became of a request completed with used
 * length 0 (no status byte could be written): stop serving the queue
 * until it resets the device.  Before the used ring is written, so that
 * a driver that sees the entry cannot get a later request served (those
 * popped with it may still be); the flag is b->lock's, like the one
 * virtq_pop() sets for a broken ring, and only the reset clears it
 * (virtq_reset, once in_flight is 0).
 */
static void blk_stop_unanswered(struct blk_dev *b, const struct blk_ioreq *list)
{
	const struct blk_ioreq *io;

	for (io = list; io; io = io->next)
		if (!io->used_len)
			break;
	if (!io)
		return;
	/* First: from now on no PFN write can revive the queue. */
	virtio_pci_needs_reset(&b->vp);
	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->vp.vq[0].broken, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->lock);
	/* A guest can do this and reset forever: say it once. */
	if (!__atomic_exchange_n(&blk_unanswered_warned, true, __ATOMIC_RELAXED))
		pr_warn("virtio-blk: '%s': a request had no status byte to answer in; device needs reset (not reported again)",
			b->opts.path);
}

void blk_complete_list(struct blk_dev *b, struct blk_ioreq *list)
{
	struct virtq *q = &b->vp.vq[0];
	struct blk_ioreq *io, *next;
	bool irq, starved, threads;
	unsigned int n = 0;

	if (!list)
		return;
	blk_stop_unanswered(b, list);
	pthread_mutex_lock(&b->complete_lock);
	for (io = list; io; io = io->next)
		virtq_push(q, io->elem.head, io->used_len);
	/* One look at the flag (and its fence) for the whole batch. */
	irq = !virtq_no_interrupt(q);
	pthread_mutex_unlock(&b->complete_lock);

	/*
	 * Interrupt before in_flight drops: a reset waits for in_flight == 0
	 * and then clears ISR, so no ISR bit outlives the reset.  raise_isr
	 * takes only the transport's innermost lock, never ctrl_lock, which
	 * the resetting vCPU holds while it waits.
	 */
	if (irq)
		virtio_pci_raise_isr(&b->vp, VIRTIO_ISR_QUEUE);

	pthread_mutex_lock(&b->lock);
	starved = !b->free_list;
	for (io = list; io; io = next) {
		next = io->next;
		assert(io->busy && b->in_flight > n);
		io->busy = false;
		io->next = b->free_list;
		b->free_list = io;
		n++;
	}
	b->in_flight -= n;
	if (b->in_flight == 0)
		pthread_cond_broadcast(&b->idle_cond);
	/* The io_uring queue thread completes its own: it pops again anyway. */
	threads = b->nr_workers > 0;
	pthread_mutex_unlock(&b->lock);

	/* The popper stops when the pool is empty; let it go on. */
	if (starved && threads)
		blk_efd_signal(b->stop_efd);
}

static void blk_complete(struct blk_dev *b, struct blk_ioreq *io, uint32_t len)
{
	io->next = NULL;
	io->used_len = len;
	blk_complete_list(b, io);
}

/* b->lock held: the driver broke the avail ring. */
static void blk_queue_broken(struct blk_dev *b)
{
	/* A guest can break and reset forever: say it once. */
	if (!__atomic_exchange_n(&blk_broken_warned, true, __ATOMIC_RELAXED))
		pr_warn("virtio-blk: '%s': the driver broke the virtqueue; device needs reset (not reported again)",
			b->opts.path);
	virtio_pci_needs_reset(&b->vp);
}

/* b->lock held.  Pop one request into a free ioreq; -1: the ring broke. */
static int blk_pop_locked(struct blk_dev *b, struct blk_ioreq **out)
{
	struct virtq *q = &b->vp.vq[0];
	enum virtq_pop_result r;
	struct blk_ioreq *io = b->free_list;

	if (b->stopping || b->paused || !__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE) ||
	    q->broken || !io)
		return BLK_POP_NONE;
	r = virtq_pop(q, &io->elem);
	if (r == VIRTQ_BROKEN)
		return -1;
	if (r != VIRTQ_OK && r != VIRTQ_BAD_CHAIN)
		return BLK_POP_NONE;
	b->free_list = io->next;
	io->next = NULL;
	io->busy = true;
	b->in_flight++;
	b->requests++;
	*out = io;
	return r == VIRTQ_OK ? BLK_POP_OK : BLK_POP_BAD;
}

enum blk_pop blk_queue_pop(struct blk_dev *b, struct blk_ioreq **io)
{
	int r;

	pthread_mutex_lock(&b->lock);
	r = blk_pop_locked(b, io);
	/* Under b->lock: a reset cannot come between and leave NEEDS_RESET set. */
	if (r < 0)
		blk_queue_broken(b);
	pthread_mutex_unlock(&b->lock);
	return r < 0 ? BLK_POP_NONE : r;
}

/*
 * Pop until the avail ring is empty: to the workers when there are
 * some, otherwise handled right here.
 */
static void blk_queue_drain(struct blk_dev *b)
{
	struct blk_ioreq *io = NULL;
	int r;

	for (;;) {
		pthread_mutex_lock(&b->lock);
		r = blk_pop_locked(b, &io);
		if (r == BLK_POP_NONE || r < 0) {
			if (r < 0)
				blk_queue_broken(b);
			pthread_mutex_unlock(&b->lock);
			return;
		}
		if (r == BLK_POP_OK && b->nr_workers) {
			if (b->pending_tail)
				b->pending_tail->next = io;
			else
				b->pending_head = io;
			b->pending_tail = io;
			pthread_cond_signal(&b->work_cond);
			pthread_mutex_unlock(&b->lock);
			continue;
		}
		pthread_mutex_unlock(&b->lock);
		blk_complete(b, io, r == BLK_POP_OK ? blk_req_handle(b, &io->elem) :
			     blk_req_refuse(&io->elem));
	}
}

static void *blk_queue_thread(void *arg)
{
	struct blk_dev *b = arg;
	struct pollfd pfd[2] = {
		{ .fd = b->stop_efd, .events = POLLIN },
		{ .fd = b->vp.kick_efd[0], .events = POLLIN },	/* -1: ignored */
	};
	bool stop;

	for (;;) {
		/* Requests may have been posted before the first kick we see. */
		blk_queue_drain(b);
		if (poll(pfd, ARRAY_SIZE(pfd), -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("virtio-blk: '%s': queue thread: poll: %s", b->opts.path,
			       strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN) {
			blk_efd_drain(pfd[1].fd);
			__atomic_add_fetch(&b->kicks, 1, __ATOMIC_RELAXED);
		} else if (pfd[1].revents & (POLLERR | POLLNVAL)) {
			/* Do not spin on a dead fd; register notifies still wake us. */
			pr_warn("virtio-blk: '%s': kick eventfd unusable", b->opts.path);
			pfd[1].fd = -1;
		}
		if (pfd[0].revents & POLLIN)
			blk_efd_drain(pfd[0].fd);
		pthread_mutex_lock(&b->lock);
		stop = b->stopping;
		pthread_mutex_unlock(&b->lock);
		if (stop)
			break;
	}
	return NULL;
}

static void *blk_worker(void *arg)
{
	struct blk_dev *b = arg;
	struct blk_ioreq *io;

	for (;;) {
		pthread_mutex_lock(&b->lock);
		while (!b->pending_head && !b->stopping)
			pthread_cond_wait(&b->work_cond, &b->lock);
		/* Stopping still drains pending: every popped request completes. */
		io = b->pending_head;
		if (io) {
			b->pending_head = io->next;
			if (!b->pending_head)
				b->pending_tail = NULL;
		}
		pthread_mutex_unlock(&b->lock);
		if (!io)
			return NULL;
		blk_complete(b, io, blk_req_handle(b, &io->elem));
	}
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

static void blk_driver_ok(void *dev)
{
	struct blk_dev *b = dev;

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
}

static void blk_queue_notify(void *dev, unsigned int n)
{
	struct blk_dev *b = dev;
	int efd = b->vp.kick_efd[0];
	bool threads;

	if (n != 0)
		return;
	__atomic_add_fetch(&b->notifies_via_exit, 1, __ATOMIC_RELAXED);
	if (efd >= 0) {
		blk_efd_signal(efd);
		return;
	}
	pthread_mutex_lock(&b->lock);
	threads = b->running;
	pthread_mutex_unlock(&b->lock);
	/* Keep disk I/O off the vCPU whenever the queue thread exists. */
	if (threads)
		blk_efd_signal(b->stop_efd);
	else
		blk_queue_drain(b);
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
	virtq_set_notify(&b->vp.vq[0], true);
	/* Not ready until the driver sets it up again: nothing to pop. */
	virtq_reset(&b->vp.vq[0]);
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

static void blk_stop_threads(struct blk_dev *b)
{
	unsigned int i, n;
	bool running;

	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->work_cond);
	n = b->nr_workers;
	running = b->running;
	pthread_mutex_unlock(&b->lock);
	if (!running)
		return;
	/* The io_uring queue thread reaps all it submitted before it returns. */
	blk_efd_signal(b->stop_efd);
	pthread_join(b->queue_thread, NULL);
	for (i = 0; i < n; i++)
		pthread_join(b->workers[i], NULL);
	pthread_mutex_lock(&b->lock);
	b->nr_workers = 0;
	b->running = false;
	pthread_mutex_unlock(&b->lock);
}

static int blk_start_uring(struct blk_dev *b)
{
	int ret;

	pthread_mutex_lock(&b->lock);
	b->running = true;
	pthread_mutex_unlock(&b->lock);
	ret = pthread_create(&b->queue_thread, NULL, blk_uring_thread, b);
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

int blk_dev_start(struct blk_dev *b)
{
	char name[16];
	unsigned int i;
	int ret = 0;

	if (b->running)
		return -EBUSY;
	if (b->uring && !blk_uring_usable(b)) {
		/* Another back end was put in place: only the ops table knows it. */
		pr_info("virtio-blk: '%s': media replaced, using aio=threads", b->opts.path);
		blk_uring_exit(b);
		b->aio = BLK_AIO_THREADS;
	}
	if (b->uring)
		return blk_start_uring(b);
	for (i = 0; i < BLK_NUM_WORKERS; i++) {
		ret = pthread_create(&b->workers[i], NULL, blk_worker, b);
		if (ret)
			break;
		snprintf(name, sizeof(name), "blk-w%u", i);
		pthread_setname_np(b->workers[i], name);
	}
	/* Before the queue thread starts, so that it never handles inline. */
	pthread_mutex_lock(&b->lock);
	b->nr_workers = i;
	b->running = !ret;
	pthread_mutex_unlock(&b->lock);
	if (!ret) {
		ret = pthread_create(&b->queue_thread, NULL, blk_queue_thread, b);
		if (!ret) {
			pthread_setname_np(b->queue_thread, "blk-q");
			return 0;
		}
	}
	pr_err("virtio-blk: '%s': cannot start threads: %s", b->opts.path, strerror(ret));
	/* No queue thread: stop and join the workers alone. */
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->work_cond);
	pthread_mutex_unlock(&b->lock);
	while (i--)
		pthread_join(b->workers[i], NULL);
	pthread_mutex_lock(&b->lock);
	b->nr_workers = 0;
	b->running = false;
	pthread_mutex_unlock(&b->lock);
	return -ret;
}

/* Everything but the transport and the threads. */
static void blk_dev_free(struct blk_dev *b)
{
	blk_uring_exit(b);
	disk_close(&b->disk);
	if (b->stop_efd >= 0)
		close(b->stop_efd);
	pthread_cond_destroy(&b->idle_cond);
	pthread_cond_destroy(&b->work_cond);
	pthread_mutex_destroy(&b->complete_lock);
	pthread_mutex_destroy(&b->lock);
	free(b->ioreqs);
	blk_opts_free(&b->opts);
	free(b);
}

/* aio=: io_uring when asked for or by default if the kernel takes it. */
static int blk_select_engine(struct blk_dev *b)
{
	static bool fallback_told;
	int ret;

	b->aio = BLK_AIO_THREADS;
	if (b->opts.aio == BLK_AIO_THREADS)
		return 0;
	ret = blk_uring_init(b);
	if (!ret) {
		b->aio = BLK_AIO_IO_URING;
		return 0;
	}
	if (b->opts.aio == BLK_AIO_IO_URING) {
		pr_err("virtio-blk: aio=io_uring: the kernel refuses io_uring: %s", strerror(-ret));
		return ret;
	}
	if (!__atomic_exchange_n(&fallback_told, true, __ATOMIC_RELAXED))
		pr_info("virtio-blk: io_uring unavailable (%s): using aio=threads", strerror(-ret));
	return 0;
}

int blk_dev_create(struct blk_dev **out, const char *args, const struct guest_mem *mem)
{
	struct blk_dev *b;
	unsigned int i;
	int ret;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->stop_efd = -1;
	b->disk.fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->complete_lock, NULL);
	pthread_cond_init(&b->work_cond, NULL);
	pthread_cond_init(&b->idle_cond, NULL);

	ret = blk_opts_parse(args, &b->opts);
	if (ret)
		goto err;
	ret = disk_open(&b->disk, &b->opts);
	if (ret)
		goto err;
	blk_dev_setup_media(b);
	ret = blk_select_engine(b);
	if (ret)
		goto err;

	b->ioreqs = calloc(b->opts.queue_size, sizeof(*b->ioreqs));
	if (!b->ioreqs) {
		pr_err("virtio-blk: '%s': out of memory for %u requests", b->opts.path,
		       b->opts.queue_size);
		ret = -ENOMEM;
		goto err;
	}
	for (i = b->opts.queue_size; i-- > 0;) {
		b->ioreqs[i].next = b->free_list;
		b->free_list = &b->ioreqs[i];
	}
	b->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->stop_efd < 0) {
		ret = -errno;
		pr_err("virtio-blk: '%s': eventfd: %s", b->opts.path, strerror(-ret));
		goto err;
	}
	ret = virtio_pci_init(&b->vp, "virtio-blk", VIRTIO_BLK_PCI_DEVICE_ID,
			      BLK_PCI_CLASS_STORAGE, VIRTIO_ID_BLOCK, (uint32_t)b->features,
			      sizeof(b->cfg), 1, &b->opts.queue_size, mem, &blk_dev_ops, b);
	if (ret) {
		pr_err("virtio-blk: '%s': transport set-up failed: %s", b->opts.path,
		       strerror(-ret));
		goto err;
	}
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
