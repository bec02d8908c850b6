// SPDX-License-Identifier: MIT
/*
 * The queue loop: one thread per queue that
 *   0. when the disk's notify fd ended its sleep, reaps and completes
 *      what finished meanwhile first (that interrupt goes out before new
 *      work is taken on, so the driver refills the ring while the thread
 *      pops);
 *   1. pops up to a batch of available requests, parses each and
 *      submits its operation to the disk layer, which answers "done" (a
 *      request that needs no I/O, a bad one, an operation the engine did
 *      on the spot) or "submitted";
 *   2. commits the batch and reaps what the disk finished (page-cache
 *      hits complete inside the commit);
 *   3. completes every finished request of the turn with one used-ring
 *      update and one interrupt (blk_complete_list);
 *   4. sleeps in poll() on the kick eventfd, the disk's notify fd and
 *      its own wake eventfd (stop, register notifies) -- after spinning on
 *      the avail ring for a while when poll= asks for it (below).
 * A request alone (nothing finished waiting for its interrupt, nothing
 * more on the avail ring) goes to the disk with DISK_F_ALONE, so an
 * engine may do it on this thread rather than pay two wake-ups for it.
 *
 * Exactly once: the disk reaps each submitted cookie once, and a request
 * goes on the done list either from its submit's answer or from its
 * reaped completion, never both; the done list is completed once and
 * emptied.  The thread only exits after the disk has nothing in flight,
 * so stop and destroy drain; a reset waits for in_flight == 0 while this
 * thread keeps reaping (popping is paused under b->lock).
 *
 * Polling (poll=US).  Each request costs two cross-thread wake-ups when
 * the thread sleeps between them: the kick wakes it, and its interrupt
 * wakes the vCPU.  Like QEMU's adaptive iothread polling, when it runs
 * out of work with nothing in flight the thread spins on the avail ring
 * for up to poll_ns first, with VRING_USED_F_NO_NOTIFY set so the driver
 * does not even kick, and keeps kicks off while requests keep coming.
 * The window grows (x2, from 4 us up to poll=) after each sleep the next
 * request ended within poll=, and halves after each longer one, so a disk
 * that is idle or waits on slow I/O stops polling.  It only polls with
 * nothing in the disk: waiting for the disk is what the sleep is for (a
 * thread spinning there takes the CPU the engine's own threads, or the
 * kernel's, need to finish the I/O).  A pop that is blocked (no free
 * ioreq, a reset under way) stops polling and waking for the ring.
 * Before sleeping it turns kicks back on and looks at the ring once more
 * (virtq_set_notify's fence), so a request made while kicks were off is
 * never stranded.
 *
 * With VIRTIO_RING_F_EVENT_IDX the driver kicks only when its avail
 * index passes avail_event, which the device moves to what it has taken
 * (virtq_set_notify).  So that is done, with the same look at the ring,
 * before every sleep, polling or not: left where it was, the driver
 * would stop kicking once past it.  While the thread works through a
 * turn avail_event stays behind, so the requests the driver adds then
 * need no kick; polling needs nothing more (kicks stay "off").
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "lib/efd.h"
#include "lib/util.h"

/*
 * Requests popped per turn.  Page-cache hits complete inside the commit,
 * so a turn is mostly copying; completing every 16 lets the driver
 * refill while we copy the rest, and bounds how long a finished request
 * waits for its interrupt.
 */
#define BLK_BATCH		16
/* where an adaptive poll window starts growing from (QEMU uses the same) */
#define BLK_POLL_START_NS	4000

/* lib/util's mono_ns() in a form the compiler inlines: read on every poll spin. */
static uint64_t blk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

enum blk_pop {
	BLK_POP_NONE = 0,	/* nothing (more) to pop now */
	BLK_POP_OK,		/* *io holds a request */
	BLK_POP_BAD,		/* *io holds a bad chain: complete it with
				 * blk_req_refuse()'s used length */
	BLK_POP_BLOCKED,	/* none taken: no free ioreq, or a reset is under way */
};

/*
 * The driver cannot tell what became of a request completed with used
 * length 0 (no status byte could be written): stop serving the queue
 * until it resets the device.  Before the used ring is written, so that
 * a driver that sees the entry cannot get a later request served (those
 * popped with it may still be); the flag is b->lock's, like the one
 * virtq_pop() sets for a broken ring, and only the reset clears it
 * (virtq_reset, once in_flight is 0).
 */
static void blk_stop_unanswered(struct blk_queue *q, const struct blk_ioreq *list)
{
	struct blk_dev *b = q->b;
	const struct blk_ioreq *io;

	for (io = list; io; io = io->next)
		if (!io->used_len)
			break;
	if (!io)
		return;
	/* First: from now on no PFN write can revive the queue. */
	virtio_pci_needs_reset(&b->vp);
	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&q->vq->broken, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->lock);
	/* A guest can do this and reset forever: say it once. */
	if (!__atomic_exchange_n(&b->unanswered_warned, true, __ATOMIC_RELAXED))
		pr_warn("virtio-blk: '%s': a request had no status byte to answer in; device needs reset (not reported again)",
			b->opts.path);
}

/*
 * Complete a list of popped requests (linked by next, each with its
 * used_len): used ring entries, then one interrupt, then back to the
 * free list.  Exactly once per popped request.  A used_len of 0 means no
 * status byte could be written, so the driver cannot learn what became
 * of the request: the queue stops and the device needs a reset.
 */
static void blk_complete_list(struct blk_queue *q, struct blk_ioreq *list)
{
	struct blk_dev *b = q->b;
	struct blk_ioreq *io, *next;
	unsigned int n = 0;
	bool irq;

	if (!list)
		return;
	blk_stop_unanswered(q, list);
	pthread_mutex_lock(&q->complete_lock);
	for (io = list; io; io = io->next)
		virtq_push(q->vq, io->elem.head, io->used_len);
	/* One look at the flag (and its fence) for the whole batch. */
	irq = !virtq_no_interrupt(q->vq);
	pthread_mutex_unlock(&q->complete_lock);

	/*
	 * Interrupt before in_flight drops: a reset waits for in_flight == 0
	 * and then clears ISR, so no ISR bit outlives the reset.  notify_queue
	 * takes only the transport's innermost lock, never ctrl_lock, which
	 * the resetting vCPU holds while it waits.
	 */
	if (irq) {
		virtio_pci_notify_queue(&b->vp, q->idx);
		__atomic_add_fetch(&q->interrupts, 1, __ATOMIC_RELAXED);
	}

	pthread_mutex_lock(&b->lock);
	for (io = list; io; io = next) {
		next = io->next;
		assert(io->busy && b->in_flight > n);
		io->busy = false;
		io->next = q->free_list;
		q->free_list = io;
		n++;
	}
	b->in_flight -= n;
	if (b->in_flight == 0)
		pthread_cond_broadcast(&b->idle_cond);
	pthread_mutex_unlock(&b->lock);
}

/* b->lock held: the driver broke the avail ring. */
static void blk_queue_broken(struct blk_dev *b)
{
	/* A guest can break and reset forever: say it once. */
	if (!__atomic_exchange_n(&b->broken_warned, true, __ATOMIC_RELAXED))
		pr_warn("virtio-blk: '%s': the driver broke the virtqueue; device needs reset (not reported again)",
			b->opts.path);
	virtio_pci_needs_reset(&b->vp);
}

/*
 * Pop one request into a free ioreq (busy, in_flight++); -1: the ring
 * broke.  b->lock held.
 */
static int blk_pop_locked(struct blk_queue *q, struct blk_ioreq **out)
{
	struct blk_dev *b = q->b;
	struct virtq *vq = q->vq;
	enum virtq_pop_result r;
	struct blk_ioreq *io = q->free_list;

	if (b->paused || !io)
		return BLK_POP_BLOCKED;
	if (b->stopping || !__atomic_load_n(&vq->ready, __ATOMIC_ACQUIRE) || vq->broken)
		return BLK_POP_NONE;
	r = virtq_pop(vq, &io->elem);
	if (r == VIRTQ_BROKEN)
		return -1;
	if (r != VIRTQ_OK && r != VIRTQ_BAD_CHAIN)
		return BLK_POP_NONE;
	q->free_list = io->next;
	io->next = NULL;
	io->busy = true;
	b->in_flight++;
	/* Written under b->lock only: no locked add, just a store readers see whole. */
	__atomic_store_n(&q->requests, q->requests + 1, __ATOMIC_RELAXED);
	*out = io;
	return r == VIRTQ_OK ? BLK_POP_OK : BLK_POP_BAD;
}

static enum blk_pop blk_queue_pop(struct blk_queue *q, struct blk_ioreq **io)
{
	struct blk_dev *b = q->b;
	int r;

	pthread_mutex_lock(&b->lock);
	r = blk_pop_locked(q, io);
	/* Under b->lock: a reset cannot come between and leave NEEDS_RESET set. */
	if (r < 0)
		blk_queue_broken(b);
	pthread_mutex_unlock(&b->lock);
	return r < 0 ? BLK_POP_NONE : r;
}

static void blk_done(struct blk_queue *q, struct blk_ioreq *io, uint32_t used)
{
	io->used_len = used;
	io->next = NULL;
	if (q->done_tail)
		q->done_tail->next = io;
	else
		q->done_head = io;
	q->done_tail = io;
}

static void blk_submit(struct blk_queue *q, struct blk_ioreq *io, bool alone);

/*
 * io's disk operation ended with err: on to its next segment (DISCARD,
 * WRITE_ZEROES), or finished.
 */
static void blk_disk_done(struct blk_queue *q, struct blk_ioreq *io, int err)
{
	if (!err && blk_req_next(&io->req)) {
		blk_submit(q, io, false);
		return;
	}
	blk_done(q, io, blk_req_finish(&io->req, blk_req_status(q->b, &io->req, err)));
}

/* Hand io's (next) operation to the disk; alone: nothing else in hand. */
static void blk_submit(struct blk_queue *q, struct blk_ioreq *io, bool alone)
{
	struct disk_io dio;
	int ret;

	do {
		blk_req_disk_io(&io->req, &dio);
		dio.cookie = (uintptr_t)io;
		if (alone)
			dio.flags |= DISK_F_ALONE;
		ret = disk_submit(q->disk, &dio);
		if (ret == DISK_SUBMITTED)
			return;
	} while (!ret && blk_req_next(&io->req));
	blk_done(q, io, blk_req_finish(&io->req, blk_req_status(q->b, &io->req, ret)));
}

/*
 * A freshly popped request: finish it now or hand it to the disk.  It is
 * alone when it is the turn's first, no finished request waits for its
 * interrupt and the avail ring holds nothing more (a request that comes
 * while this one is done on the queue thread waits for it, as behind any
 * synchronous block back end).
 */
static void blk_start(struct blk_queue *q, struct blk_ioreq *io, bool first)
{
	struct blk_req *r = &io->req;

	blk_req_parse(q->b, &io->elem, r);
	if (r->kind == BLK_REQ_DONE) {
		blk_done(q, io, blk_req_finish(r, r->status));
		return;
	}
	blk_submit(q, io, first && !q->done_head && !virtq_avail_pending(q->vq));
}

/*
 * Pop and start up to a batch of what is available (nothing while paused
 * or stopping).  True: the batch is full and more may be waiting.
 */
static bool blk_pop_batch(struct blk_queue *q)
{
	struct blk_ioreq *io = NULL;
	unsigned int n;
	enum blk_pop r;

	q->blocked = false;
	for (n = 0; n < BLK_BATCH; n++) {
		/*
		 * A look at the avail index needs no lock: an empty ring (the
		 * end of most turns) costs no b->lock; what it misses, the
		 * loop's last look before it sleeps finds.
		 */
		if (!virtq_avail_pending(q->vq))
			return false;
		r = blk_queue_pop(q, &io);
		/*
		 * Blocked with requests on the ring (a driver that re-posts
		 * heads, or a reset under way): polling or waking for the ring
		 * would spin; completions (or the reset) end it.
		 */
		q->blocked = r == BLK_POP_BLOCKED;
		if (r == BLK_POP_NONE || r == BLK_POP_BLOCKED)
			return false;
		if (r == BLK_POP_BAD)
			blk_done(q, io, blk_req_refuse(&io->elem));
		else
			blk_start(q, io, n == 0);
	}
	return true;
}

static void blk_reap(struct blk_queue *q)
{
	struct disk_done done[BLK_BATCH];
	unsigned int i, n;

	do {
		n = disk_reap(q->disk, done, ARRAY_SIZE(done));
		for (i = 0; i < n; i++)
			blk_disk_done(q, (struct blk_ioreq *)(uintptr_t)done[i].cookie,
				      done[i].result);
	} while (n == ARRAY_SIZE(done));
	/* Next segments submitted above go out before the thread sleeps. */
	q->commit_stuck = disk_commit(q->disk) < 0;
}

/* True when it completed something. */
static bool blk_complete_batch(struct blk_queue *q)
{
	struct blk_ioreq *list = q->done_head;

	q->done_head = q->done_tail = NULL;
	blk_complete_list(q, list);
	return list != NULL;
}

/*
 * Under b->lock: a reset (which holds it) must not have the ring taken
 * from under the flag write, or the write could land in guest memory
 * that is no longer a ring.
 */
static void blk_set_notify(struct blk_queue *q, bool enable)
{
	pthread_mutex_lock(&q->b->lock);
	virtq_set_notify(q->vq, enable);
	pthread_mutex_unlock(&q->b->lock);
	q->notify_off = !enable;
}

/* Spin for up to the poll window for a new request; kicks stay off. */
static bool blk_poll(struct blk_queue *q)
{
	uint64_t end = blk_now_ns() + q->poll_ns;

	if (!q->notify_off)
		blk_set_notify(q, false);
	do {
		if (!q->blocked && virtq_avail_pending(q->vq))
			return true;
		__builtin_ia32_pause();
	} while (blk_now_ns() < end);
	return false;
}

/*
 * Kicks back on before every sleep (avail_event moved up to what was
 * taken, in both modes: see virtq_set_notify).  True: a request came that
 * no kick will announce.
 */
static bool blk_notify_on(struct blk_queue *q)
{
	blk_set_notify(q, true);
	return !q->blocked && virtq_avail_pending(q->vq);
}

/* An idle sleep of slept_ns ended: grow the window if polling would have caught it. */
static void blk_poll_adapt(struct blk_queue *q, uint64_t slept_ns)
{
	if (slept_ns > q->poll_max_ns) {
		q->poll_ns /= 2;
		if (q->poll_ns < BLK_POLL_START_NS)
			q->poll_ns = 0;
	} else if (q->poll_ns < q->poll_max_ns) {
		q->poll_ns = q->poll_ns ? 2 * q->poll_ns : BLK_POLL_START_NS;
		if (q->poll_ns > q->poll_max_ns)
			q->poll_ns = q->poll_max_ns;
	}
}

/* Until a kick, a disk completion, a stop or a register notify. */
static void blk_sleep(struct blk_queue *q, bool adapt)
{
	struct blk_dev *b = q->b;
	struct pollfd pfd[3] = {
		{ .fd = q->wake_efd, .events = POLLIN },
		{ .fd = q->kick_fd, .events = POLLIN },		/* -1: ignored */
		/* Nothing in flight: nothing to wait for there (a stale wake-up would spin). */
		{ .fd = disk_in_flight(q->disk) ? disk_notify_fd(q->disk) : -1, .events = POLLIN },
	};
	uint64_t t0 = adapt ? blk_now_ns() : 0;

	/* Submissions the disk kept back are retried every millisecond. */
	if (poll(pfd, ARRAY_SIZE(pfd), q->commit_stuck ? 1 : -1) < 0) {
		if (errno != EINTR)
			pr_warn("virtio-blk: '%s': queue thread: poll: %s", b->opts.path,
				strerror(errno));
		return;
	}
	if (adapt)
		blk_poll_adapt(q, blk_now_ns() - t0);
	q->disk_woke = pfd[2].revents & POLLIN;
	if (pfd[1].revents & POLLIN) {
		efd_drain(q->kick_fd);
		__atomic_add_fetch(&q->kicks, 1, __ATOMIC_RELAXED);
	} else if (pfd[1].revents & (POLLERR | POLLNVAL)) {
		/* Do not spin on a dead fd; register notifies still wake us. */
		pr_warn("virtio-blk: '%s': kick eventfd unusable", b->opts.path);
		q->kick_fd = -1;
	}
	if (pfd[0].revents & POLLIN)
		efd_drain(q->wake_efd);
}

/* Stored under b->lock, read here without it: a look every turn. */
static bool blk_stopping(struct blk_dev *b)
{
	return __atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE);
}

void *blk_queue_thread(void *arg)
{
	struct blk_queue *q = arg;
	struct blk_dev *b = q->b;
	bool stop, idle, more;

	for (;;) {
		stop = blk_stopping(b);
		/*
		 * What an engine finished on its own while we slept goes out
		 * before new work is taken on: its interrupt lets the driver
		 * refill while we pop.  Otherwise (a kick, or the loop going
		 * round) the reap after the commit below takes it with the
		 * batch's own, and one interrupt serves both.
		 */
		if (q->disk_woke) {
			q->disk_woke = false;
			blk_reap(q);
			blk_complete_batch(q);
		}
		/* Requests may have been posted before the first kick we see. */
		more = !stop && blk_pop_batch(q);
		q->commit_stuck = disk_commit(q->disk) < 0;
		blk_reap(q);
		/* Finished ones go out before we sleep: one interrupt for the lot. */
		if (blk_complete_batch(q) && !stop && virtq_avail_pending(q->vq))
			more = true;	/* the pool may have run dry while we popped */
		if (stop && !disk_in_flight(q->disk))
			break;
		if (more)
			continue;
		idle = !stop && !disk_in_flight(q->disk);
		if (idle && q->poll_ns && blk_poll(q))
			continue;
		/* Stopping, only the disk's completions matter (the ring is not served). */
		if (!stop && blk_notify_on(q))
			continue;
		blk_sleep(q, idle && q->poll_max_ns);
	}
	return NULL;
}

/* Serve what is on the ring now; how many were taken. */
static unsigned int blk_drain_once(struct blk_queue *q)
{
	struct blk_ioreq *io = NULL;
	unsigned int n = 0;
	enum blk_pop r;

	while ((r = blk_queue_pop(q, &io)) == BLK_POP_OK || r == BLK_POP_BAD) {
		io->next = NULL;
		io->used_len = r == BLK_POP_OK ? blk_req_handle(q->b, &io->elem) :
			       blk_req_refuse(&io->elem);
		blk_complete_list(q, io);
		n++;
	}
	return n;
}

void blk_queue_drain_sync(struct blk_queue *q)
{
	blk_drain_once(q);
	/*
	 * EVENT_IDX: the driver's next kick waits for avail_event, so it is
	 * moved up to what was taken, and what came meanwhile is served; a
	 * ring that stays non-empty with nothing to take (a stop, a broken
	 * ring) ends it.
	 */
	while (virtq_has_event_idx(q->vq)) {
		blk_set_notify(q, true);
		if (!virtq_avail_pending(q->vq) || !blk_drain_once(q))
			break;
	}
}
