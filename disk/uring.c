// SPDX-License-Identifier: MIT
/*
 * The io_uring engine (aio=io_uring, the default): one ring per disk,
 * used only by the thread that submits and reaps.  An operation becomes
 * one SQE at a time (user_data = its slot; no links, no multishot), so
 * each CQE ends that SQE, and from there the operation gets its next SQE
 * or completes:
 *  - READ/WRITE: READV/WRITEV; a transfer that comes up short is
 *    finished synchronously (rare: a signal, a file that shrank), and
 *    -EAGAIN/-EINTR are tried again a bounded number of times;
 *  - a FUA write is followed by an FSYNC(DATASYNC) of its own before it
 *    completes.  Not WRITEV with RWF_DSYNC: io_uring's io-wq serialises
 *    the writes to one regular file (hashed work) and a RWF_DSYNC write
 *    always goes there, so deep writethru queues ran one synchronous
 *    write at a time; fsyncs are not hashed: they run in parallel and the
 *    file system batches their journal commits.  The fsync covers the
 *    write, which completed before it was submitted;
 *  - FLUSH: FSYNC(DATASYNC);
 *  - DISCARD/WRITE_ZEROES: FALLOCATE on a regular file (a refused mode is
 *    remembered and the operation redone the other way), then, for FUA
 *    zeroes, an FSYNC(DATASYNC); the block device ioctls synchronously.
 * A write submitted DISK_F_ALONE while the ring is empty is written here
 * and now (RWF_DSYNC when FUA): io_uring hands a writethru write's fsync,
 * and on file systems without non-blocking buffered writes every
 * buffered write, to an io-wq worker, a wake-up there and one back for
 * no parallelism.
 *
 * Buffered writes.  On such a file system io_uring gives every buffered
 * write to a regular file to the one io-wq worker it keeps for the file
 * (hashed work), which does them one at a time: the serialisation of
 * doing them on the submitting thread, plus a wake-up there and one back
 * for each write, and on a small host a third busy thread.  So plain
 * buffered writes first go to the ring with RWF_NOWAIT, which makes one
 * that io_uring would hand to a worker come back -EAGAIN (or -EOPNOTSUPP)
 * instead; it is then submitted again as usual.  Once URING_PROBE_WRITES
 * of them came back, and nearly all so, plain writes are done here at
 * submit.  (Block devices are left alone: their io-wq work is not
 * hashed, so it runs in parallel.  FUA writes always go to the ring.)
 * Doing them here must not hold up the rest of the queue:
 *  - not while an FSYNC or a FALLOCATE is in this ring: a write can wait
 *    for the journal commit or the inode lock those hold, which a worker
 *    does without stopping the queue (a disk with several queues has a
 *    ring per queue: another queue's syncs are not seen);
 *  - SQEs already queued (reads) are submitted before each write done
 *    here, and after URING_TURN_BUDGET_NS of writing here since the last
 *    commit the rest go to the ring;
 *  - a write that blocked here anyway (dirty page throttling, a journal
 *    commit: slower than URING_SLOW_WRITE_NS plus a slow copy of its
 *    length; or this thread preempted that long) sends writes back to
 *    the ring for a while, twice as long each time it happens again
 *    before twice the last hold has passed, and the engine learns again
 *    meanwhile (a file system that can write without blocking may have
 *    had to block while it was being learnt).
 *
 * The ring is created disabled and restricted to the operations above
 * before it runs anything: what a ring does is not seen by the seccomp
 * filter, so an unrestricted ring would let a compromised tinyvmm open,
 * connect or read anything.  The ring's fd is the notify fd: it is
 * readable while CQEs wait.
 */
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "disk/engine.h"
#include "disk/file.h"
#include "disk/uring.h"
#include "lib/util.h"

/* -EAGAIN/-EINTR on one operation before it is an error */
#define URING_MAX_RETRIES	64
/* buffered writes looked at before deciding where they are done */
#define URING_PROBE_WRITES	32
/* a write done here slower than this (plus 4 ns a byte) blocked */
#define URING_SLOW_WRITE_NS	2000000ull
#define URING_SLOW_NS_PER_BYTE	4
/* writing done here between two commits before the rest go to the ring */
#define URING_TURN_BUDGET_NS	1000000ull
#define URING_HOLD_MIN_NS	10000000ull
#define URING_HOLD_MAX_NS	1000000000ull

enum uring_phase {
	URING_RW,		/* READV/WRITEV in flight */
	URING_SYNC,		/* FSYNC after a FUA write */
	URING_FLUSH,		/* FSYNC of a FLUSH */
	URING_FALLOC,		/* FALLOCATE of a DISCARD/WRITE_ZEROES */
};

struct uring_op {
	struct disk_io io;
	enum uring_phase phase;
	unsigned int retries;
	int mode;		/* URING_FALLOC: the fallocate mode */
	bool probe;		/* a write sent with RWF_NOWAIT to learn from */
	struct uring_op *next;
};

/* Where buffered writes are done: see "Buffered writes" above. */
struct uring_writes {
	bool probing;		/* still learning */
	bool here;		/* done on the submitting thread */
	unsigned int seen, handed_off;
	uint64_t turn_ns;	/* spent writing here since the last commit */
	uint64_t hold_ns;	/* the last hold; 0: none lately */
	uint64_t slow_at_ns;	/* when the last slow write here ended */
	uint64_t ring_until_ns;	/* held: writes go to the ring until then */
};

struct disk_uring {
	struct disk_engine e;		/* first: the engine pointer is ours */
	struct io_uring ring;
	struct disk_file *f;
	struct uring_op *ops, *free;
	unsigned int in_ring;		/* SQEs queued or submitted, not reaped */
	unsigned int blockers_in_ring;	/* of them FSYNCs and FALLOCATEs */
	bool falloc;			/* the kernel has IORING_OP_FALLOCATE */
	struct uring_writes wr;
};

static struct disk_uring *uring_of(struct disk_engine *e)
{
	return (struct disk_uring *)e;
}

static const uint8_t uring_opcodes[] = {
	IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
};

int disk_uring_restrict(struct io_uring *ring)
{
	struct io_uring_restriction res[ARRAY_SIZE(uring_opcodes)];
	unsigned int i;
	int ret;

	memset(res, 0, sizeof(res));
	for (i = 0; i < ARRAY_SIZE(uring_opcodes); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = uring_opcodes[i];
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

/* The three the engine cannot do without (since 5.1); FALLOCATE came in 5.6. */
static int uring_probe(struct disk_uring *u)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&u->ring);
	bool ok;

	/* No probe (before 5.6): no FALLOCATE either. */
	if (!p)
		return 0;
	ok = io_uring_opcode_supported(p, IORING_OP_READV) &&
	     io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
	     io_uring_opcode_supported(p, IORING_OP_FSYNC);
	u->falloc = io_uring_opcode_supported(p, IORING_OP_FALLOCATE);
	io_uring_free_probe(p);
	return ok ? 0 : -EOPNOTSUPP;
}

/* An SQE, submitting what is queued if the SQ is full; NULL only if stuck. */
static struct io_uring_sqe *uring_sqe(struct disk_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* Queue op's next SQE; false when no SQE was to be had. */
static bool uring_prep(struct disk_uring *u, struct uring_op *op)
{
	const struct disk_io *io = &op->io;
	struct io_uring_sqe *sqe = uring_sqe(u);
	int fd = u->f->fd;

	if (!sqe)
		return false;
	switch (op->phase) {
	case URING_RW:
		if (io->op == DISK_OP_READ)
			io_uring_prep_readv(sqe, fd, io->iov, io->cnt, io->offset);
		else
			io_uring_prep_writev(sqe, fd, io->iov, io->cnt, io->offset);
		if (op->probe)
			sqe->rw_flags = RWF_NOWAIT;
		break;
	case URING_SYNC:
	case URING_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case URING_FALLOC:
		io_uring_prep_fallocate(sqe, fd, op->mode, io->offset, io->len);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	u->in_ring++;
	u->blockers_in_ring += op->phase != URING_RW;
	return true;
}

static int uring_start(struct disk_uring *u, const struct disk_io *io)
{
	struct uring_op *op;

	op = u->free;
	if (!op)
		return -EBUSY;
	op->io = *io;
	op->retries = 0;
	op->mode = 0;
	op->probe = io->op == DISK_OP_WRITE && u->wr.probing && !(io->flags & DISK_F_FUA);
	switch (io->op) {
	case DISK_OP_READ:
	case DISK_OP_WRITE:
		op->phase = URING_RW;
		break;
	case DISK_OP_FLUSH:
		op->phase = URING_FLUSH;
		break;
	default:
		op->phase = URING_FALLOC;
		op->mode = disk_file_falloc_mode(u->f, io);
		break;
	}
	/* Cannot happen with the ring sized for the depth; never hang. */
	if (!uring_prep(u, op))
		return disk_file_exec(u->f, io, 0);
	u->free = op->next;
	return DISK_SUBMITTED;
}

/* Whether io, a write, is done here (see "Buffered writes"). */
static bool uring_write_here(struct disk_uring *u, const struct disk_io *io)
{
	const struct uring_writes *w = &u->wr;

	if (!w->here || (io->flags & DISK_F_FUA) || u->blockers_in_ring ||
	    w->turn_ns >= URING_TURN_BUDGET_NS)
		return false;
	return !w->ring_until_ns || mono_ns() >= w->ring_until_ns;
}

/* Learn again from the next URING_PROBE_WRITES buffered writes. */
static void uring_probe_again(struct disk_uring *u)
{
	u->wr.probing = true;
	u->wr.seen = 0;
	u->wr.handed_off = 0;
}

/*
 * A write of len bytes done here from t0 to t1: one that blocked holds
 * writes back to the ring.  Throttling comes and goes (quick writes, then
 * a long pause), so the hold only starts small again after twice the
 * last one has passed without a slow write.
 */
static void uring_write_timed(struct disk_uring *u, uint64_t len, uint64_t t0, uint64_t t1)
{
	struct uring_writes *w = &u->wr;

	w->turn_ns += t1 - t0;
	if (t1 - t0 <= URING_SLOW_WRITE_NS + URING_SLOW_NS_PER_BYTE * len) {
		if (w->hold_ns && t1 - w->slow_at_ns > 2 * w->hold_ns)
			w->hold_ns = 0;
		w->ring_until_ns = 0;	/* over, or it would not be here */
		return;
	}
	w->hold_ns = w->hold_ns ? MIN(2 * w->hold_ns, URING_HOLD_MAX_NS) : URING_HOLD_MIN_NS;
	w->slow_at_ns = t1;
	w->ring_until_ns = t1 + w->hold_ns;
	uring_probe_again(u);
}

/* A plain buffered write, done here. */
static int uring_write_now(struct disk_uring *u, const struct disk_io *io)
{
	uint64_t t0;
	int ret;

	/* What was queued before it (reads) does not wait for it. */
	if (io_uring_sq_ready(&u->ring))
		io_uring_submit(&u->ring);
	t0 = mono_ns();
	ret = disk_file_exec(u->f, io, 0);
	uring_write_timed(u, io->len, t0, mono_ns());
	return ret;
}

static int uring_submit(struct disk_engine *e, const struct disk_io *io)
{
	struct disk_uring *u = uring_of(e);

	if (io->op == DISK_OP_WRITE && (io->flags & DISK_F_ALONE) && !u->in_ring)
		return disk_file_exec(u->f, io, 0);
	if (io->op == DISK_OP_WRITE && uring_write_here(u, io))
		return uring_write_now(u, io);
	if ((io->op == DISK_OP_DISCARD || io->op == DISK_OP_WRITE_ZEROES) &&
	    (!u->falloc || !disk_file_falloc_mode(u->f, io)))
		return disk_file_exec(u->f, io, 0);
	/* More iovecs than one SQE takes (no virtqueue chain has that many). */
	if ((io->op == DISK_OP_READ || io->op == DISK_OP_WRITE) && io->cnt > IOV_MAX)
		return disk_file_exec(u->f, io, 0);
	return uring_start(u, io);
}

static int uring_commit(struct disk_engine *e)
{
	struct disk_uring *u = uring_of(e);
	int ret;

	u->wr.turn_ns = 0;
	if (!io_uring_sq_ready(&u->ring))
		return 0;
	ret = io_uring_submit(&u->ring);
	/* -EAGAIN/-ENOMEM: the SQEs stay queued for the next commit. */
	return ret < 0 ? ret : io_uring_sq_ready(&u->ring) ? -EAGAIN : 0;
}

/* The rest of a transfer that moved done bytes, synchronously. */
static int uring_rest(struct disk_uring *u, const struct disk_io *io, uint64_t done)
{
	struct disk_io rest = *io;
	int ret;

	/* RWF_DSYNC on the rest would not cover what the ring wrote. */
	rest.flags &= ~DISK_F_FUA;
	ret = disk_file_exec(u->f, &rest, done);
	if (!ret && (io->flags & DISK_F_FUA))
		ret = disk_file_flush(u->f);
	return ret;
}

/* A probed write came back with res: true when io_uring would have handed it off. */
static bool uring_probed(struct disk_uring *u, int res)
{
	struct uring_writes *w = &u->wr;
	bool handed_off = res == -EAGAIN || res == -EOPNOTSUPP;

	/* Probes still in flight when the decision was made are not counted. */
	if (!w->probing)
		return handed_off;
	w->seen++;
	w->handed_off += handed_off;
	if (w->seen >= URING_PROBE_WRITES) {
		w->probing = false;
		/* Nearly all: a write into a page not yet cached may block anywhere. */
		w->here = w->handed_off * 8 >= w->seen * 7;
	}
	return handed_off;
}

/*
 * The CQE of op's SQE came back with res.  True when op is finished with
 * *result; false when it has its next SQE.
 */
static bool uring_cqe(struct disk_uring *u, struct uring_op *op, int res, int *result)
{
	const struct disk_io *io = &op->io;

	if (op->probe) {
		op->probe = false;
		if (uring_probed(u, res)) {
			/* Again, as any write: this time io_uring may hand it off. */
			if (uring_prep(u, op))
				return false;
			*result = uring_rest(u, io, 0);
			return true;
		}
	}
	if ((res == -EAGAIN || res == -EINTR) && ++op->retries <= URING_MAX_RETRIES &&
	    uring_prep(u, op))
		return false;
	if (op->phase == URING_FALLOC && disk_file_falloc_refused(u->f, op->mode, res)) {
		op->mode = disk_file_falloc_mode(u->f, io);
		if (op->mode && uring_prep(u, op))
			return false;
		*result = disk_file_exec(u->f, io, 0);
		return true;
	}
	if (res >= 0 && op->phase == URING_FALLOC && (io->flags & DISK_F_FUA)) {
		op->phase = URING_SYNC;
		op->retries = 0;
		if (uring_prep(u, op))
			return false;
		*result = disk_file_flush(u->f);
		return true;
	}
	if (res < 0 || op->phase != URING_RW) {
		*result = res < 0 ? res : 0;
		return true;
	}
	/* Nothing moved (EOF on a file that shrank, a full device): never OK. */
	if (res == 0 || (uint64_t)res > io->len) {
		*result = -EIO;
		return true;
	}
	if ((uint64_t)res < io->len) {
		*result = uring_rest(u, io, res);
		return true;
	}
	if (io->op == DISK_OP_WRITE && (io->flags & DISK_F_FUA)) {
		op->phase = URING_SYNC;
		op->retries = 0;
		if (uring_prep(u, op))
			return false;
		*result = disk_file_flush(u->f);
	} else {
		*result = 0;
	}
	return true;
}

static unsigned int uring_reap(struct disk_engine *e, struct disk_done *out, unsigned int max)
{
	struct disk_uring *u = uring_of(e);
	struct io_uring_cqe *cqe;
	struct uring_op *op;
	unsigned int head, seen = 0, n = 0;

	/* One store of the CQ head for the lot (io_uring_cq_advance), not one per CQE. */
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		if (n == max)
			break;
		op = io_uring_cqe_get_data(cqe);
		u->in_ring--;
		u->blockers_in_ring -= op->phase != URING_RW;
		seen++;
		if (uring_cqe(u, op, cqe->res, &out[n].result)) {
			out[n++].cookie = op->io.cookie;
			op->next = u->free;
			u->free = op;
		}
	}
	io_uring_cq_advance(&u->ring, seen);
	/* Next SQEs queued while reaping go out now. */
	uring_commit(e);
	return n;
}

static int uring_flush_sync(struct disk_engine *e)
{
	return disk_file_flush(uring_of(e)->f);
}

/* Reap everything still in the ring, dropping the results. */
static void uring_drain(struct disk_uring *u)
{
	struct disk_done done[16];

	int ret;

	while (u->in_ring) {
		ret = io_uring_submit_and_wait(&u->ring, 1);
		if (ret == -EAGAIN)
			usleep(1000);	/* short of memory: no spin */
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0 && !io_uring_cq_ready(&u->ring))
			break;
		uring_reap(&u->e, done, ARRAY_SIZE(done));
	}
}

static void uring_destroy(struct disk_engine *e)
{
	struct disk_uring *u = uring_of(e);

	uring_drain(u);
	io_uring_queue_exit(&u->ring);
	disk_file_close(u->f);
	free(u->f);
	free(u->ops);
	free(u);
}

static const struct disk_engine_ops uring_ops = {
	.name = "io_uring",
	.submit = uring_submit,
	.commit = uring_commit,
	.reap = uring_reap,
	.flush_sync = uring_flush_sync,
	.destroy = uring_destroy,
};

int disk_uring_create(struct disk_engine **out, struct disk_file *f, unsigned int depth)
{
	struct disk_uring *u = calloc(1, sizeof(*u));
	unsigned int i;
	int ret;

	if (!u)
		return -ENOMEM;
	u->ops = calloc(depth ? depth : 1, sizeof(*u->ops));
	if (!u->ops) {
		free(u);
		return -ENOMEM;
	}
	/* One SQE per operation at a time always fits. */
	ret = io_uring_queue_init(MAX(depth, 8u), &u->ring, IORING_SETUP_R_DISABLED);
	if (ret < 0)
		goto err;
	ret = uring_probe(u);
	if (!ret)
		ret = disk_uring_restrict(&u->ring);
	if (ret < 0) {
		io_uring_queue_exit(&u->ring);
		goto err;
	}
	for (i = depth; i-- > 0;) {
		u->ops[i].next = u->free;
		u->free = &u->ops[i];
	}
	u->e.ops = &uring_ops;
	u->e.notify_fd = u->ring.ring_fd;
	u->f = f;
	/*
	 * O_DIRECT writes go to the device, not to a worker; a block device's
	 * go to workers that run in parallel: nothing to learn.
	 */
	u->wr.probing = !f->direct && !f->is_blockdev;
	*out = &u->e;
	return 0;
err:
	free(u->ops);
	free(u);
	return ret;
}
