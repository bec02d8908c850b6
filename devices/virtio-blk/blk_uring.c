// SPDX-License-Identifier: MIT
/*
 * The io_uring engine (aio=io_uring): one ring per device, driven by the
 * device's queue thread alone, which
 *   1. pops every available request, parses it (blk_req_parse, shared
 *      with the threads engine) and prepares one SQE for it: READV or
 *      WRITEV of its iovecs at disk.start + offset, or FSYNC(DATASYNC)
 *      for a FLUSH; requests that need no I/O (GET_ID, bad ones, and
 *      chains virtq_pop() refused: blk_req_refuse) are finished on the
 *      spot;
 *   2. submits the batch (at most URING_BATCH requests a turn) and
 *      waits in one io_uring_submit_and_wait(); the kick eventfd and
 *      the stop eventfd are POLL_ADDs on the same ring, so a kick, a
 *      stop or an I/O completion all wake it; with poll= it first spins
 *      on the avail ring for a while (below);
 *   3. reaps every CQE: a short transfer is resubmitted for the rest
 *      (0 bytes is -EIO), -EAGAIN/-EINTR are retried a bounded number
 *      of times, a writethru write is followed by an FSYNC(DATASYNC) of
 *      its own before it completes; every finished request
 *      gets its status byte and goes on a batch that is completed with
 *      one used-ring update and one interrupt (blk_complete_list).
 *   A write that is alone (queue depth 1) is written by the queue
 *   thread itself, with RWF_DSYNC when writethru (uring_write_alone()).
 *
 * Exactly once: a popped ioreq has at most one SQE in the ring at any
 * time (user_data = the ioreq; no links, no multishot), so each CQE for
 * it is the end of that SQE; from there it either gets its next SQE or
 * goes on the done list, which is completed once and emptied.  The
 * queue thread only exits after the last SQE it submitted came back, so
 * stop and destroy drain; a reset waits for in_flight == 0 while this
 * thread keeps reaping (popping is paused under b->lock).
 *
 * Why writethru is WRITEV then FSYNC and not WRITEV with RWF_DSYNC:
 * io_uring's io-wq serialises the writes to one regular file (hashed
 * work), and a RWF_DSYNC write always goes there, so QD32 writethru ran
 * one synchronous write at a time (5x slower than the worker pool); the
 * plain write mostly completes inline, and fsyncs are not hashed: they
 * run in parallel and the filesystem batches their journal commits.
 * The fsync covers the write, which completed before it was submitted.
 *
 * Polling (poll=US).  Each request costs two cross-thread wake-ups when
 * the queue thread sleeps between them: the kick wakes it, and its
 * interrupt wakes the vCPU.  Like QEMU's adaptive iothread polling, when
 * it runs out of work with nothing in flight the thread spins on the
 * avail ring for up to poll_ns first, with VRING_USED_F_NO_NOTIFY set so
 * the driver does not even kick, and keeps kicks off while requests keep
 * coming.  The window grows (x2, from 4 us up to poll=) after each sleep
 * the next request ended within poll=, and halves after each longer one,
 * so a disk that is idle or waits on slow I/O stops polling.  It only
 * polls with no SQE in flight: waiting for the disk is what the sleep in
 * io_uring_submit_and_wait() is for.  Before sleeping it turns kicks back
 * on and looks at the ring once more (virtq_set_notify's fence), so a
 * request made while kicks were off is never stranded.
 *
 * The engine bypasses the disk ops table and does the file back end's
 * work itself on disk.fd; a device whose ops were replaced after
 * blk_dev_create() (memory or fault-injection back ends) runs the
 * threads engine instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio-blk/blk.h"
#include "lib/util.h"

/* user_data of the two eventfd polls; an ioreq pointer is never this small */
#define URING_TAG_KICK		1
#define URING_TAG_STOP		2
/* -EAGAIN/-EINTR on one request before it is an I/O error */
#define URING_MAX_RETRIES	64
/*
 * Requests popped per turn of the loop.  Page-cache hits complete inside
 * the submit, so a turn is mostly copying; completing every 16 lets the
 * driver refill while we copy the rest (128 KiB reads at QD32: 12.5 ->
 * 15-17 GB/s here) and bounds how long a finished request waits for its
 * interrupt.
 */
#define URING_BATCH		16
/* where an adaptive poll window starts growing from (QEMU uses the same) */
#define URING_POLL_START_NS	4000

enum {
	BLK_URING_PHASE_RW = 0,		/* READV/WRITEV in flight */
	BLK_URING_PHASE_SYNC,		/* FSYNC after a writethru write */
	BLK_URING_PHASE_FLUSH,		/* FSYNC of a FLUSH request */
};

struct blk_uring {
	struct io_uring ring;
	const struct disk_ops *ops;	/* the back end the ring was made for */
	unsigned int ops_in_ring;	/* ioreq SQEs submitted or queued, not reaped */
	bool kick_armed, stop_armed;
	int kick_fd;
	struct blk_ioreq *done_head, *done_tail;
	bool submit_warned;
	uint64_t poll_max_ns;		/* poll=, 0: never poll */
	uint64_t poll_ns;		/* the adaptive window now */
	bool notify_off;		/* VRING_USED_F_NO_NOTIFY is set */
};

static uint64_t uring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static bool uring_opcodes_ok(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok;

	/* No probe (before 5.6): every opcode used here exists since 5.1. */
	if (!p)
		return true;
	ok = io_uring_opcode_supported(p, IORING_OP_READV) &&
	     io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
	     io_uring_opcode_supported(p, IORING_OP_FSYNC) &&
	     io_uring_opcode_supported(p, IORING_OP_POLL_ADD);
	io_uring_free_probe(p);
	return ok;
}

/* Only READV, WRITEV, FSYNC and POLL_ADD, and no register calls; then enable. */
static int uring_restrict(struct io_uring *ring)
{
	static const uint8_t ops[] = {
		IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_POLL_ADD,
	};
	struct io_uring_restriction res[ARRAY_SIZE(ops)];
	unsigned int i;
	int ret;

	memset(res, 0, sizeof(res));
	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	/*
	 * Debian's liburing 2.3 declares io_uring_register_restrictions()
	 * but does not export it: use the raw register call.
	 */
	ret = io_uring_register(ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
				ARRAY_SIZE(res));
	if (ret < 0)
		return ret;
	return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

int blk_uring_init(struct blk_dev *b)
{
	struct blk_uring *u;
	unsigned int entries;
	int ret;

	if (b->disk.fd < 0)
		return -EBADF;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	/* One SQE per request at a time plus the two polls always fit. */
	entries = 2u * b->opts.queue_size;
	if (entries < 8)
		entries = 8;
	/*
	 * Created disabled so that it can be limited to the four operations
	 * the engine uses before it runs anything: what a ring does is not
	 * seen by the seccomp filter, so an unrestricted ring would let a
	 * compromised tinyvmm open, connect or read anything.
	 */
	ret = io_uring_queue_init(entries, &u->ring, IORING_SETUP_R_DISABLED);
	if (ret < 0) {
		free(u);
		return ret;
	}
	if (!uring_opcodes_ok(&u->ring)) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return -EOPNOTSUPP;
	}
	ret = uring_restrict(&u->ring);
	if (ret < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	u->ops = b->disk.ops;
	u->kick_fd = -1;
	u->poll_max_ns = (uint64_t)b->opts.poll_us * 1000;
	b->uring = u;
	return 0;
}

bool blk_uring_usable(const struct blk_dev *b)
{
	return b->uring && b->disk.fd >= 0 && b->disk.ops == b->uring->ops;
}

int blk_uring_try_op(struct blk_dev *b, uint8_t opcode, void *buf, unsigned int len,
		     const char *path)
{
	struct blk_uring *u = b->uring;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	if (!u || b->running)
		return -EBUSY;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return -EBUSY;
	switch (opcode) {
	case IORING_OP_READV:
		io_uring_prep_readv(sqe, b->disk.fd, &iov, 1, b->disk.start);
		break;
	case IORING_OP_OPENAT:
		io_uring_prep_openat(sqe, AT_FDCWD, path, O_RDONLY, 0);
		break;
	case IORING_OP_READ:
		io_uring_prep_read(sqe, b->disk.fd, buf, len, b->disk.start);
		break;
	default:
		io_uring_prep_nop(sqe);
		sqe->opcode = opcode;
		break;
	}
	ret = io_uring_submit_and_wait(&u->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_peek_cqe(&u->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&u->ring, cqe);
	/* An open that got through must not leak into the caller's fd table. */
	if (opcode == IORING_OP_OPENAT && ret >= 0)
		close(ret);
	return ret;
}

void blk_uring_exit(struct blk_dev *b)
{
	struct blk_uring *u = b->uring;

	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u);
	b->uring = NULL;
}

/* An SQE, submitting what is queued if the SQ is full; NULL only if stuck. */
static struct io_uring_sqe *uring_sqe(struct blk_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void uring_arm_poll(struct blk_uring *u, int fd, uint64_t tag, bool *armed)
{
	struct io_uring_sqe *sqe;

	if (fd < 0 || *armed)
		return;
	sqe = uring_sqe(u);
	if (!sqe)
		return;		/* tried again on the next loop */
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag);
	*armed = true;
}

static void uring_done(struct blk_uring *u, struct blk_ioreq *io, uint32_t used)
{
	io->used_len = used;
	io->next = NULL;
	if (u->done_tail)
		u->done_tail->next = io;
	else
		u->done_head = io;
	u->done_tail = io;
}

void (*blk_uring_observe)(const struct blk_ioreq *io, enum blk_uring_event ev, int res);

static void uring_observe(const struct blk_ioreq *io, enum blk_uring_event ev, int res)
{
	if (blk_uring_observe)
		blk_uring_observe(io, ev, res);
}

static void uring_finish(struct blk_uring *u, struct blk_ioreq *io, uint8_t status)
{
	uring_observe(io, BLK_URING_FINISHED, status);
	uring_done(u, io, blk_req_finish(&io->req, status));
}

/*
 * No SQE to be had: do what is left of io synchronously through the ops
 * table (the file back end the ring was made for) and finish it.
 */
static void uring_sync_rest(struct blk_dev *b, struct blk_ioreq *io)
{
	const struct blk_req *r = &io->req;
	struct disk *d = &b->disk;
	uint64_t off = r->sector * BLK_SECTOR_SIZE + io->done;
	ssize_t ret;
	int err;

	if (io->phase == BLK_URING_PHASE_FLUSH) {
		uring_finish(b->uring, io, blk_req_flush_done(b, d->ops->flush(d)));
		return;
	}
	if (io->phase == BLK_URING_PHASE_RW) {
		if (r->kind == BLK_REQ_READ)
			ret = d->ops->preadv(d, io->cur_iov, io->cur_cnt, off);
		else
			ret = d->ops->pwritev(d, io->cur_iov, io->cur_cnt, off, r->sync);
		err = ret == (ssize_t)(r->len - io->done) ? 0 : ret < 0 ? (int)ret : -EIO;
	} else {
		err = d->ops->flush(d);
	}
	uring_finish(b->uring, io, blk_req_io_done(b, r, err));
}

/* Queue the next SQE of io: its (rest of the) transfer or its fsync. */
static void uring_prep(struct blk_dev *b, struct blk_ioreq *io)
{
	struct blk_uring *u = b->uring;
	const struct blk_req *r = &io->req;
	struct io_uring_sqe *sqe = uring_sqe(u);
	unsigned int cnt;
	uint64_t off;

	if (!sqe) {
		/* Cannot happen with the ring sized for the queue; never hang. */
		uring_sync_rest(b, io);
		return;
	}
	if (io->phase != BLK_URING_PHASE_RW) {
		io_uring_prep_fsync(sqe, b->disk.fd, IORING_FSYNC_DATASYNC);
		uring_observe(io, BLK_URING_SUBMIT_FSYNC, 0);
	} else {
		/* blk_req_parse() checked [sector, +len) against the disk size. */
		off = b->disk.start + r->sector * BLK_SECTOR_SIZE + io->done;
		cnt = io->cur_cnt < IOV_MAX ? io->cur_cnt : IOV_MAX;
		if (r->kind == BLK_REQ_READ)
			io_uring_prep_readv(sqe, b->disk.fd, io->cur_iov, cnt, off);
		else
			io_uring_prep_writev(sqe, b->disk.fd, io->cur_iov, cnt, off);
		uring_observe(io, r->kind == BLK_REQ_READ ? BLK_URING_SUBMIT_READ :
			      BLK_URING_SUBMIT_WRITE, 0);
	}
	io_uring_sqe_set_data(sqe, io);
	u->ops_in_ring++;
}

/*
 * A write with nothing else to do: no SQE in the ring, no finished
 * request waiting for its interrupt, nothing more on the avail ring.
 * io_uring hands a writethru write's fsync (fsync never completes
 * inline) and, on file systems without non-blocking buffered writes
 * (ext4 here), every buffered write to an io-wq worker: a wake-up there
 * and one back for no parallelism, a third of a writethru request's
 * time and two thirds of a writeback one's at queue depth 1 here
 * (docs/PERFORMANCE.md).  So the queue thread writes it itself.
 * Anything the driver posts meanwhile waits for this one write, as it
 * would behind kvmtool's or Firecracker's synchronous block I/O.
 */
static bool uring_write_alone(struct blk_dev *b, const struct blk_req *r)
{
	struct blk_uring *u = b->uring;

	return r->kind == BLK_REQ_WRITE && !u->ops_in_ring && !u->done_head &&
	       !virtq_avail_pending(&b->vp.vq[0]);
}

/* The write, through the file back end (RWF_DSYNC when writethru). */
static void uring_write_inline(struct blk_dev *b, struct blk_ioreq *io)
{
	uring_observe(io, BLK_URING_WRITE_INLINE, io->req.sync);
	/* Nothing moved yet: the rest is the whole request. */
	uring_sync_rest(b, io);
}

/* A freshly popped request: finish it now or queue its first SQE. */
static void uring_start(struct blk_dev *b, struct blk_ioreq *io)
{
	struct blk_req *r = &io->req;

	blk_req_parse(b, &io->elem, r);
	io->retries = 0;
	io->done = 0;
	switch (r->kind) {
	case BLK_REQ_READ:
	case BLK_REQ_WRITE:
		io->phase = BLK_URING_PHASE_RW;
		io->cur_iov = r->iov;
		io->cur_cnt = r->cnt;
		if (uring_write_alone(b, r)) {
			uring_write_inline(b, io);
			break;
		}
		uring_prep(b, io);
		break;
	case BLK_REQ_FLUSH:
		io->phase = BLK_URING_PHASE_FLUSH;
		uring_prep(b, io);
		break;
	default:
		uring_finish(b->uring, io, r->status);
		break;
	}
}

/* Move the transfer position on by n bytes (n <= what is left). */
static void uring_advance(struct blk_ioreq *io, uint64_t n)
{
	io->done += n;
	while (io->cur_cnt && n >= io->cur_iov->iov_len) {
		n -= io->cur_iov->iov_len;
		io->cur_iov++;
		io->cur_cnt--;
	}
	if (io->cur_cnt && n) {
		io->cur_iov->iov_base = (uint8_t *)io->cur_iov->iov_base + n;
		io->cur_iov->iov_len -= n;
	}
}

static bool uring_retry(struct blk_ioreq *io, int res)
{
	return (res == -EAGAIN || res == -EINTR) && ++io->retries <= URING_MAX_RETRIES;
}

/* The CQE of io's SQE came back with res. */
static void uring_cqe(struct blk_dev *b, struct blk_ioreq *io, int res)
{
	struct blk_uring *u = b->uring;
	const struct blk_req *r = &io->req;

	u->ops_in_ring--;
	uring_observe(io, BLK_URING_REAPED, res);
	if (io->phase == BLK_URING_PHASE_FLUSH) {
		if (uring_retry(io, res))
			uring_prep(b, io);
		else
			uring_finish(u, io, blk_req_flush_done(b, res < 0 ? res : 0));
		return;
	}
	if (io->phase == BLK_URING_PHASE_SYNC) {
		if (uring_retry(io, res))
			uring_prep(b, io);
		else
			uring_finish(u, io, blk_req_io_done(b, r, res < 0 ? res : 0));
		return;
	}
	if (res < 0) {
		if (uring_retry(io, res)) {
			uring_prep(b, io);
			return;
		}
		uring_finish(u, io, blk_req_io_done(b, r, res));
		return;
	}
	/* Nothing moved (EOF on a file that shrank, a full device): never OK. */
	if (res == 0 || (uint64_t)res > r->len - io->done) {
		uring_finish(u, io, blk_req_io_done(b, r, -EIO));
		return;
	}
	uring_advance(io, res);
	if (io->done < r->len) {
		/* Short: the rest, as a new SQE. */
		uring_prep(b, io);
		return;
	}
	if (r->kind == BLK_REQ_WRITE && r->sync) {
		io->phase = BLK_URING_PHASE_SYNC;
		io->retries = 0;
		uring_prep(b, io);
		return;
	}
	uring_finish(u, io, VIRTIO_BLK_S_OK);
}

static void uring_efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("virtio-blk: eventfd read: %s", strerror(errno));
}

/*
 * Reap every CQE there is.  True: a kick or stop was consumed (its
 * eventfd drained), so the caller must look at the ring and the stop flag
 * again before it sleeps: the kick may be for a request posted after its
 * last pop, and the drained eventfd will not wake it a second time.
 */
static bool uring_reap(struct blk_dev *b)
{
	struct blk_uring *u = b->uring;
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	bool woken = false;
	uint64_t tag;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		tag = io_uring_cqe_get_data64(cqe);
		n++;
		if (tag == URING_TAG_KICK) {
			u->kick_armed = false;
			woken = true;
			if (cqe->res < 0) {
				/* Do not spin on a dead fd; register notifies still wake us. */
				pr_warn("virtio-blk: '%s': kick eventfd unusable: %s",
					b->opts.path, strerror(-cqe->res));
				u->kick_fd = -1;
				continue;
			}
			uring_efd_drain(u->kick_fd);
			__atomic_add_fetch(&b->kicks, 1, __ATOMIC_RELAXED);
		} else if (tag == URING_TAG_STOP) {
			u->stop_armed = false;
			woken = true;
			uring_efd_drain(b->stop_efd);
		} else {
			uring_cqe(b, (struct blk_ioreq *)(uintptr_t)tag, cqe->res);
		}
	}
	io_uring_cq_advance(&u->ring, n);
	return woken;
}

/*
 * Pop and start up to a batch of what is available (nothing while paused
 * or stopping).  True: the batch is full and more may be waiting, so
 * the loop must come back before it sleeps (the kick was consumed).
 */
static bool uring_pop_batch(struct blk_dev *b)
{
	struct blk_ioreq *io = NULL;
	unsigned int n;
	enum blk_pop r;

	for (n = 0; n < URING_BATCH; n++) {
		r = blk_queue_pop(b, &io);
		if (r == BLK_POP_NONE)
			return false;
		if (r == BLK_POP_BAD)
			uring_done(b->uring, io, blk_req_refuse(&io->elem));
		else
			uring_start(b, io);
	}
	return true;
}

static void uring_complete_batch(struct blk_dev *b)
{
	struct blk_uring *u = b->uring;
	struct blk_ioreq *list = u->done_head;

	u->done_head = u->done_tail = NULL;
	blk_complete_list(b, list);
}

/*
 * Under b->lock: a reset (which holds it) must not have the ring taken
 * from under the flag write, or the write could land in guest memory
 * that is no longer a ring.
 */
static void uring_set_notify(struct blk_dev *b, bool enable)
{
	pthread_mutex_lock(&b->lock);
	virtq_set_notify(&b->vp.vq[0], enable);
	pthread_mutex_unlock(&b->lock);
}

/*
 * Spin for up to the poll window for a new request or a CQE; kicks stay
 * off afterwards (uring_notify_on() before sleeping).  True: work came.
 */
static bool uring_poll(struct blk_dev *b)
{
	struct blk_uring *u = b->uring;
	struct virtq *q = &b->vp.vq[0];
	uint64_t end = uring_now_ns() + u->poll_ns;

	if (!u->notify_off) {
		uring_set_notify(b, false);
		u->notify_off = true;
	}
	do {
		if (virtq_avail_pending(q) || io_uring_cq_ready(&u->ring))
			return true;
		__builtin_ia32_pause();
	} while (uring_now_ns() < end);
	return false;
}

/* Kicks back on before sleeping.  True: a request came while they were off. */
static bool uring_notify_on(struct blk_dev *b)
{
	struct blk_uring *u = b->uring;

	if (!u->notify_off)
		return false;
	uring_set_notify(b, true);
	u->notify_off = false;
	return virtq_avail_pending(&b->vp.vq[0]);
}

/* An idle sleep of slept_ns ended: grow the window if polling would have caught it. */
static void uring_poll_adapt(struct blk_uring *u, uint64_t slept_ns)
{
	if (slept_ns > u->poll_max_ns) {
		u->poll_ns /= 2;
		if (u->poll_ns < URING_POLL_START_NS)
			u->poll_ns = 0;
	} else if (u->poll_ns < u->poll_max_ns) {
		u->poll_ns = u->poll_ns ? 2 * u->poll_ns : URING_POLL_START_NS;
		if (u->poll_ns > u->poll_max_ns)
			u->poll_ns = u->poll_max_ns;
	}
}

void *blk_uring_thread(void *arg)
{
	struct blk_dev *b = arg;
	struct blk_uring *u = b->uring;
	uint64_t t_sleep = 0;
	bool stop, idle, more = false;
	int ret;

	u->kick_fd = b->vp.kick_efd[0];		/* -1: register notifies only */
	for (;;) {
		pthread_mutex_lock(&b->lock);
		stop = b->stopping;
		pthread_mutex_unlock(&b->lock);
		/* Requests may have been posted before the first kick we see. */
		more = !stop && uring_pop_batch(b);
		if ((u->poll_max_ns || more) && io_uring_sq_ready(&u->ring)) {
			/*
			 * Page-cache hits complete inside the submit: answer them
			 * before polling or popping the next batch.
			 */
			io_uring_submit(&u->ring);
			/* A kick reaped after the pop may be for a request it missed. */
			if (uring_reap(b))
				more = true;
		}
		/* Finished ones go out before we sleep: one interrupt for the lot. */
		uring_complete_batch(b);
		if (stop && !u->ops_in_ring)
			break;
		/* The rest of the avail ring (or a kick), after this batch's interrupt. */
		if (more)
			continue;
		idle = !stop && !u->ops_in_ring;
		if (idle && u->poll_ns && uring_poll(b)) {
			uring_reap(b);
			continue;
		}
		if (uring_notify_on(b))
			continue;
		uring_arm_poll(u, b->stop_efd, URING_TAG_STOP, &u->stop_armed);
		uring_arm_poll(u, u->kick_fd, URING_TAG_KICK, &u->kick_armed);
		if (idle && u->poll_max_ns)
			t_sleep = uring_now_ns();
		ret = io_uring_submit_and_wait(&u->ring, 1);
		if (idle && u->poll_max_ns)
			uring_poll_adapt(u, uring_now_ns() - t_sleep);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
		    !u->submit_warned) {
			u->submit_warned = true;
			pr_err("virtio-blk: '%s': io_uring_submit: %s", b->opts.path,
			       strerror(-ret));
		}
		if (ret < 0 && ret != -EINTR && ret != -EBUSY)
			usleep(1000);	/* transient (-EAGAIN: out of memory); no spin */
		uring_reap(b);
	}
	return NULL;
}
