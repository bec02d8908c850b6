// SPDX-License-Identifier: MIT
/*
 * The NBD engine: the media is an export of an NBD server, named by a
 * libnbd URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH),
 * spoken to through libnbd's asynchronous API.
 *
 * The thread that submits and reaps drives libnbd itself: submit()
 * issues the operation's commands at once (libnbd writes what the socket
 * takes), the notify fd is an epoll set holding the socket (readable for
 * replies, writable while libnbd has output left for a full socket) and
 * an eventfd that is readable while finished operations wait on the done
 * list, and reap() lets libnbd read the replies, whose completion
 * callbacks finish operations onto that list.  So a request costs no
 * thread hand-off: waking the reaper is the reply's arrival itself.  An
 * engine thread of the disk's own does what must not stall the reaper
 * or needs a timer: it notices an idle connection being closed
 * (POLLRDHUP only, so replies do not wake it), closes a dead handle and
 * fails what was in flight, reconnects with its back-off, and at close
 * drains what is in flight (the reaper is gone by then), and fails a
 * command unanswered for too long.  Only it opens and closes handles;
 * libnbd itself closes the socket of a handle that dies, on whichever
 * thread sees it, so the fd is used only under hlock and only while the
 * handle is neither dead nor closed (the epoll entry is dropped then).
 * Why not a thread that owns libnbd outright, with submit queues and an
 * eventfd each way: that costs two thread wake-ups per request, which
 * against a server on the same host at queue depth 1 is about as much
 * as everything else.
 *
 * disk_flush_sync() (any thread) issues its FLUSH under the same lock
 * and reads replies itself until it is answered, since the reaper reads
 * them only while it has requests of its own in flight.  Every libnbd
 * call is made under hlock, so completion callbacks, which may run on
 * any of these threads, never race; they only count answers: what comes
 * next (the flush after a FUA write the server cannot FUA, finishing)
 * runs after the libnbd call returns, since callbacks may not call it.
 *
 * Mapping: READ -> pread, WRITE -> pwrite (FUA -> LIBNBD_CMD_FLAG_FUA
 * where the server can FUA, else the write and then a flush before it
 * completes), FLUSH -> flush, DISCARD -> trim, WRITE_ZEROES -> zero with
 * NO_HOLE unless DISK_F_UNMAP.  libnbd takes one flat buffer per command,
 * so an operation's iovecs go as one command each (consecutive offsets,
 * no copy) when each is a multiple of the server's minimum block, else
 * through one bounce buffer (within NBD_BOUNCE_BUDGET, else a chunk at
 * a time at submit); commands longer than the server takes are split,
 * and an operation that would take the commands in flight past
 * NBD_CMD_BUDGET is done a chunk at a time at submit too.
 * An error from the server, a short read, or a lost connection is -EIO,
 * never 0.
 *
 * Every handle is opened without structured replies.  With them a server
 * may answer a READ with chunks covering only part of the range and a
 * successful last chunk; libnbd reports that short read only from
 * nbd_aio_command_completed(), which completion callbacks bypass, so the
 * op would complete 0 with part of the buffer never written.  A simple
 * reply carries the whole count or an error, and a reply cut short is a
 * dead connection.  What structured replies buy (holes not sent on the
 * wire, block status) a block device does not use.
 *
 * A rw export whose server cannot flush is refused at open: neither
 * writethru nor writeback could promise anything that survives the
 * server.  On a ro one a FLUSH completes 0 at once.  Durability over the network is the server's: a write the
 * server acknowledged is durable only once a FLUSH after it, or its own
 * FUA, was acknowledged too; a lost connection may lose the others.  So
 * when a connection is lost with writes acknowledged since the last
 * FLUSH, the next FLUSH to complete fails (-EIO) even on a new
 * connection: a writeback guest must not be told those writes are safe.
 *
 * A lost connection (the server went away, or sent something libnbd
 * refused, which kills the handle) fails every operation in flight with
 * -EIO, prints one line, and the engine reconnects (over TCP to the
 * address the first connection used: no name lookup at run time, so the
 * seccomp filter needs no files; over a unix socket to the URI's path),
 * after the reconnect delay, doubling up to
 * NBD_BACKOFF_CAP_MS.  Operations submitted while disconnected fail -EIO
 * at once rather than wait: the guest has already seen errors for what
 * was in flight, and a wait with no bound would hang it instead.  A new
 * connection must show the same export (size, writability, flush, block
 * size) or it is dropped and tried again later.  A server that stops
 * answering but keeps the connection open (a stopped process, a network
 * partition) is caught by the command timeout: when the oldest command
 * in flight has waited longer, the engine thread drops the connection as
 * lost, which fails everything in flight (disk_flush_sync()'s FLUSH too)
 * instead of letting a reset or the guest wait forever.
 */
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "disk/engine.h"
#include "lib/efd.h"
#include "lib/util.h"

/* iovecs that go out as they are; more than this go through a bounce buffer */
#define NBD_MAX_PIECES		64
/*
 * Bytes of bounce buffers the operations in flight may hold: a guest's
 * request can name 4 GiB of buffers over a few pages of its RAM.  Past
 * it, whole-block iovecs go out as they are however many; others are
 * done at submit, NBD_CHUNK at a time (whole blocks of any server).
 */
#define NBD_BOUNCE_BUDGET	(8u << 20)
#define NBD_CHUNK		(1u << 20)
/*
 * Commands the ops in flight may have out.  Each costs libnbd a little
 * memory, and a server that takes tiny payloads would otherwise turn one
 * 4 GiB request into millions of them.  Past it, a READ or WRITE is done
 * at submit, a chunk of at most NBD_CHUNK_CMDS commands at a time.  With
 * a server that takes 32 MiB, a request of whole-block pieces is a
 * command a piece: 1024 requests of 64 pieces in flight reach it.
 */
#define NBD_CMD_BUDGET		65536u
#define NBD_CHUNK_CMDS		256u
/* a command's payload unless the server says less (the protocol's advice) */
#define NBD_MAX_PAYLOAD		(32u << 20)
/* a TRIM or WRITE_ZEROES command (their length is 32 bits on the wire) */
#define NBD_MAX_EFFECT		(1u << 30)
#define NBD_RECONNECT_MS	500
#define NBD_BACKOFF_CAP_MS	30000
/* one reconnect attempt, handshake included */
#define NBD_CONNECT_MS		10000
/* disk_close(): how long what is in flight may take before it is dropped */
#define NBD_DRAIN_MS		5000
/* how long a command may wait for its answer unless disk_conf says */
#define NBD_TIMEOUT_MS		30000

enum nbd_state {
	NBD_UP,			/* n->h is ready */
	NBD_DOWN,		/* no handle; the next attempt at next_ms */
	NBD_CONNECTING,		/* n->h is connecting; given up at next_ms */
};

enum nbd_cmd { NBD_READ, NBD_WRITE, NBD_FLUSH, NBD_TRIM, NBD_ZERO };

/* A disk_flush_sync() reading replies until its operation is answered. */
struct nbd_sync {
	bool done;		/* under lock */
};

struct disk_nbd;

struct nbd_op {
	struct disk_io io;
	struct disk_nbd *n;
	int result;
	unsigned int pending;	/* commands unanswered, +1 while they are issued */
	bool flush_after;	/* a FUA the server cannot do: flush before completing */
	bool flushing;		/* that flush is out */
	bool live;		/* on the live list */
	uint64_t gen;		/* FLUSH: the write generation it covers */
	int64_t start_ms;	/* when its commands went out */
	uint8_t *bounce;	/* flat copy of the iovecs, NULL: none */
	unsigned int cmds;	/* commands issued, counted in cmds_held */
	struct nbd_sync *sync;	/* disk_flush_sync()'s, NULL: the queue thread's */
	struct nbd_op *next;	/* free, ready or done list */
	struct nbd_op *lprev, *lnext;	/* live list: commands issued */
};

struct disk_nbd {
	struct disk_engine e;		/* first: the engine pointer is ours */
	const char *who;
	char *uri;			/* for messages */
	char *export_name;
	struct sockaddr_storage addr;	/* as first connected: TCP reconnects go there */
	socklen_t addrlen;
	/* What the guest was promised: a new connection must keep it. */
	int64_t size;
	bool ro;
	uint32_t logical_block;
	/*
	 * Under hlock: the handle, the ops' commands and everything below
	 * to lock.  Every libnbd call is made with it held, so completion
	 * callbacks run under it too, on whichever thread made the call.
	 * Only the engine thread opens and closes handles.
	 */
	pthread_mutex_t hlock;
	struct nbd_handle *h;
	enum nbd_state state;
	bool can_fua, can_flush;
	uint32_t min_block, max_payload;
	uint64_t bounce_held;		/* bytes the ops' bounce buffers hold */
	uint64_t cmds_held;		/* commands the ops in flight issued */
	unsigned int delay_ms, next_delay_ms;
	unsigned int timeout_ms;
	int64_t next_ms;
	/* Writes acknowledged (without FUA), and how many a FLUSH covered. */
	uint64_t wgen, flushed_gen;
	bool lost_unflushed;		/* the next FLUSH must fail */
	char why[256];			/* libnbd's first error on this connection */
	struct nbd_op *ready;		/* every command answered, op not finished */
	struct nbd_op live;		/* list head */
	bool stopping;
	int sock_fd;			/* the handle's fd in the epoll set, -1: none */
	bool sock_out;			/* registered for EPOLLOUT too */
	pthread_t thread;
	int kick_fd;			/* eventfd: wakes the engine thread */
	/* Under lock (taken inside hlock, never around it). */
	pthread_mutex_t lock;
	struct nbd_op *ops, *free;
	struct nbd_op *done_head, *done_tail;
	struct efd_level done;		/* readable while done_head != NULL */
};

static struct disk_nbd *nbd_of(struct disk_engine *e)
{
	return (struct disk_nbd *)e;
}

static int64_t nbd_now_ms(void)
{
	return (int64_t)(mono_ns() / 1000000);
}

static void nbd_list_add(struct nbd_op **head, struct nbd_op **tail, struct nbd_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static const char *nbd_why(void)
{
	const char *why = nbd_get_error();

	return why && *why ? why : "the connection died";
}

/*
 * A libnbd call failed: keep its error for the "connection lost" line,
 * since later calls (nbd_aio_is_dead() and the like) may clear it.
 */
static void nbd_note(struct disk_nbd *n)
{
	const char *why = nbd_get_error();

	if (!n->why[0] && why && *why)
		snprintf(n->why, sizeof(n->why), "%s", why);
}

/* ---- finishing ------------------------------------------------------------- */

/* What a finished op means for the promise a FLUSH makes (see the top). */
static void nbd_account(struct disk_nbd *n, struct nbd_op *op)
{
	if (op->result)
		return;
	if (op->io.op == DISK_OP_FLUSH) {
		if (n->lost_unflushed) {
			n->lost_unflushed = false;
			op->result = -EIO;
		} else if (op->gen > n->flushed_gen) {
			n->flushed_gen = op->gen;
		}
	} else if ((op->io.op == DISK_OP_WRITE || op->io.op == DISK_OP_WRITE_ZEROES) &&
		   !(op->io.flags & DISK_F_FUA)) {
		n->wgen++;
	}
}

/* op is over: hand its result to disk_flush_sync() or to the done list. */
static void nbd_finish(struct disk_nbd *n, struct nbd_op *op)
{
	nbd_account(n, op);
	if (op->live) {
		op->lprev->lnext = op->lnext;
		op->lnext->lprev = op->lprev;
		op->live = false;
	}
	if (op->bounce) {
		if (op->io.op == DISK_OP_READ && !op->result)
			iov_from_buf(op->io.iov, op->io.cnt, 0, op->bounce, op->io.len);
		free(op->bounce);
		op->bounce = NULL;
		n->bounce_held -= op->io.len;
	}
	n->cmds_held -= op->cmds;
	op->cmds = 0;
	pthread_mutex_lock(&n->lock);
	if (op->sync) {
		op->sync->done = true;
		pthread_mutex_unlock(&n->lock);
		return;
	}
	nbd_list_add(&n->done_head, &n->done_tail, op);
	/* This may be the engine thread or a disk_flush_sync() caller. */
	efd_level_update(&n->done, true);
	pthread_mutex_unlock(&n->lock);
}

static void nbd_fail(struct disk_nbd *n, struct nbd_op *op)
{
	op->result = -EIO;
	nbd_finish(n, op);
}

/* One answer (or one issuer) less; the last one makes op ready. */
static void nbd_put(struct nbd_op *op)
{
	if (--op->pending)
		return;
	op->next = op->n->ready;
	op->n->ready = op;
}

/* libnbd's completion callback: runs on the engine thread, inside libnbd. */
static int nbd_cmd_done(void *opaque, int *error)
{
	struct nbd_op *op = opaque;

	if (*error)
		op->result = -EIO;
	nbd_put(op);
	return 1;	/* retire the command: nobody asks for it again */
}

/* ---- issuing --------------------------------------------------------------- */

static void nbd_issue(struct disk_nbd *n, struct nbd_op *op, enum nbd_cmd cmd, void *buf,
		      uint64_t len, uint64_t off, uint32_t flags)
{
	nbd_completion_callback cb = { .callback = nbd_cmd_done, .user_data = op };
	int64_t ret;

	op->pending++;
	switch (cmd) {
	case NBD_READ:
		ret = nbd_aio_pread(n->h, buf, len, off, cb, 0);
		break;
	case NBD_WRITE:
		ret = nbd_aio_pwrite(n->h, buf, len, off, cb, flags);
		break;
	case NBD_FLUSH:
		ret = nbd_aio_flush(n->h, cb, 0);
		break;
	case NBD_TRIM:
		ret = nbd_aio_trim(n->h, len, off, cb, flags);
		break;
	default:
		ret = nbd_aio_zero(n->h, len, off, cb, flags);
		break;
	}
	/* Refused before it reached the wire: the callback will not run. */
	if (ret < 0) {
		nbd_note(n);
		pr_debug("%s: %s: %s", n->who, n->uri, nbd_why());
		op->pending--;
		op->result = -EIO;
		return;
	}
	op->cmds++;
	n->cmds_held++;
}

/* buf[0, len) at off, in commands of at most max bytes. */
static void nbd_issue_span(struct disk_nbd *n, struct nbd_op *op, enum nbd_cmd cmd,
			   uint8_t *buf, uint64_t len, uint64_t off, uint32_t flags, uint64_t max)
{
	uint64_t c;

	for (; len && !op->result; len -= c, off += c) {
		c = MIN(len, max);
		nbd_issue(n, op, cmd, buf, c, off, flags);
		if (buf)
			buf += c;
	}
}

/* iovecs the server takes as they are: each whole minimum blocks. */
static bool nbd_iov_whole(const struct disk_nbd *n, const struct disk_io *io)
{
	unsigned int i;

	for (i = 0; i < io->cnt; i++)
		if (io->iov[i].iov_len % n->min_block)
			return false;
	return true;
}

/* Whether io goes out through a bounce buffer (whole: nbd_iov_whole()). */
static bool nbd_goes_flat(const struct disk_nbd *n, const struct disk_io *io, bool whole)
{
	if (whole && io->cnt <= NBD_MAX_PIECES)
		return false;
	return io->len <= NBD_BOUNCE_BUDGET - n->bounce_held;
}

/* Commands of at most the server's payload that len bytes take. */
static uint64_t nbd_span_cmds(const struct disk_nbd *n, uint64_t len)
{
	return (len + n->max_payload - 1) / n->max_payload;
}

/* The commands nbd_issue_rw() will issue for a READ or WRITE that is not chunked. */
static uint64_t nbd_rw_cmds(const struct disk_nbd *n, const struct disk_io *io, bool whole)
{
	uint64_t k = 0;
	unsigned int i;

	if (nbd_goes_flat(n, io, whole))
		return nbd_span_cmds(n, io->len);
	for (i = 0; i < io->cnt; i++)
		k += nbd_span_cmds(n, io->iov[i].iov_len);
	return k;
}

/*
 * A flat copy of io's iovecs, held by op, when they are not whole blocks
 * or too many to send one by one, and the budget has room (nbd_submit()
 * made sure of it for those that are not whole).  0 (bounced, or sent
 * as they are), or -ENOMEM.
 */
static int nbd_bounce(struct disk_nbd *n, struct nbd_op *op)
{
	const struct disk_io *io = &op->io;
	bool whole = nbd_iov_whole(n, io);

	if (!nbd_goes_flat(n, io, whole))
		return whole ? 0 : -ENOMEM;
	op->bounce = malloc(io->len);
	if (!op->bounce)
		return whole ? 0 : -ENOMEM;
	n->bounce_held += io->len;
	if (io->op == DISK_OP_WRITE)
		iov_to_buf(io->iov, io->cnt, 0, op->bounce, io->len);
	return 0;
}

static void nbd_issue_rw(struct disk_nbd *n, struct nbd_op *op)
{
	const struct disk_io *io = &op->io;
	enum nbd_cmd cmd = io->op == DISK_OP_READ ? NBD_READ : NBD_WRITE;
	uint32_t flags = (io->flags & DISK_F_FUA) && n->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
	uint64_t off = io->offset;
	unsigned int i;

	op->result = nbd_bounce(n, op);
	if (op->result)
		return;
	if (op->bounce) {
		nbd_issue_span(n, op, cmd, op->bounce, io->len, off, flags, n->max_payload);
		return;
	}
	for (i = 0; i < io->cnt && !op->result; i++) {
		nbd_issue_span(n, op, cmd, io->iov[i].iov_base, io->iov[i].iov_len, off, flags,
			       n->max_payload);
		off += io->iov[i].iov_len;
	}
}

/* The operation's commands; what happens next is up to their answers. */
static void nbd_start(struct disk_nbd *n, struct nbd_op *op)
{
	const struct disk_io *io = &op->io;
	uint32_t flags = (io->flags & DISK_F_FUA) && n->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;

	if (n->state != NBD_UP) {
		nbd_fail(n, op);
		return;
	}
	op->n = n;
	op->result = 0;
	op->pending = 1;
	op->cmds = 0;
	op->flushing = false;
	op->flush_after = (io->flags & DISK_F_FUA) && !n->can_fua;
	op->live = true;
	op->start_ms = nbd_now_ms();
	op->lnext = &n->live;
	op->lprev = n->live.lprev;
	n->live.lprev->lnext = op;
	n->live.lprev = op;
	switch (io->op) {
	case DISK_OP_READ:
	case DISK_OP_WRITE:
		nbd_issue_rw(n, op);
		break;
	case DISK_OP_FLUSH:
		op->gen = n->wgen;
		/*
		 * Only a ro export may lack flush (see the top): nothing was
		 * written, so there is nothing to make durable, and libnbd
		 * would refuse the command (-EIO, a permanent error upstream).
		 */
		if (n->can_flush)
			nbd_issue(n, op, NBD_FLUSH, NULL, 0, 0, 0);
		break;
	case DISK_OP_DISCARD:
		nbd_issue_span(n, op, NBD_TRIM, NULL, io->len, io->offset, flags, NBD_MAX_EFFECT);
		break;
	case DISK_OP_WRITE_ZEROES:
		if (!(io->flags & DISK_F_UNMAP))
			flags |= LIBNBD_CMD_FLAG_NO_HOLE;
		nbd_issue_span(n, op, NBD_ZERO, NULL, io->len, io->offset, flags, NBD_MAX_EFFECT);
		break;
	}
	nbd_put(op);
}

/* Ops whose commands were all answered: a flush to follow, or done. */
static void nbd_run_ready(struct disk_nbd *n)
{
	struct nbd_op *op;

	while ((op = n->ready)) {
		n->ready = op->next;
		if (!op->result && op->flush_after && !op->flushing && n->state == NBD_UP) {
			op->flushing = true;
			op->pending = 1;
			nbd_issue(n, op, NBD_FLUSH, NULL, 0, 0, 0);
			nbd_put(op);
			continue;
		}
		nbd_finish(n, op);
	}
}

/* ---- the connection -------------------------------------------------------- */

/* What this connection's server takes; 0 or the reason it cannot serve. */
static const char *nbd_caps(struct disk_nbd *n, struct nbd_handle *h)
{
	int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);

	if (nbd_get_size(h) != n->size)
		return "the export's size changed";
	if (!n->ro && nbd_is_read_only(h) != 0)
		return "the export is read-only now";
	if (!n->ro && nbd_can_flush(h) != 1)
		return "the server cannot flush any more";
	if (min > n->logical_block)
		return "the server's minimum block size grew past sectorsize";
	n->min_block = min > 0 ? min : 1;
	n->max_payload = max >= n->min_block && max < NBD_MAX_PAYLOAD ?
			 max / n->min_block * n->min_block : NBD_MAX_PAYLOAD;
	n->can_fua = nbd_can_fua(h) == 1;
	n->can_flush = nbd_can_flush(h) == 1;
	return NULL;
}

/*
 * The notify fd's socket entry, in step with the handle: readable for
 * replies, writable too while libnbd has output for a full socket; none
 * for a dead handle (its EOF would keep the queue thread spinning until
 * the engine thread closes it).  Under hlock.
 */
static void nbd_epoll_sync(struct disk_nbd *n)
{
	int fd = -1;
	bool out = false;
	struct epoll_event ev = { .events = EPOLLIN };

	if (n->state == NBD_UP && !nbd_aio_is_dead(n->h) && !nbd_aio_is_closed(n->h)) {
		fd = nbd_aio_get_fd(n->h);
		out = nbd_aio_get_direction(n->h) & LIBNBD_AIO_DIRECTION_WRITE;
	}
	if (fd == n->sock_fd && out == n->sock_out)
		return;
	if (n->sock_fd >= 0 && fd != n->sock_fd)
		epoll_ctl(n->e.notify_fd, EPOLL_CTL_DEL, n->sock_fd, NULL);
	ev.events |= out ? EPOLLOUT : 0;
	if (fd >= 0 && epoll_ctl(n->e.notify_fd, fd == n->sock_fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
				 fd, &ev) < 0) {
		pr_warn("%s: %s: epoll_ctl: %s", n->who, n->uri, strerror(errno));
		/* Record what the set holds, so that the next call tries again. */
		if (fd != n->sock_fd)
			fd = -1;
		out = fd >= 0 && n->sock_out;
	}
	n->sock_fd = fd;
	n->sock_out = out;
}

static void nbd_drop_handle(struct disk_nbd *n)
{
	struct nbd_op *op;

	/* Out of the epoll set before the fd number can be reused. */
	if (n->sock_fd >= 0)
		epoll_ctl(n->e.notify_fd, EPOLL_CTL_DEL, n->sock_fd, NULL);
	n->sock_fd = -1;
	/* Callbacks that run while closing only make ops ready: all fail below. */
	nbd_close(n->h);
	n->h = NULL;
	n->ready = NULL;
	while ((op = n->live.lnext) != &n->live)
		nbd_fail(n, op);
}

static void nbd_backoff(struct disk_nbd *n)
{
	n->state = NBD_DOWN;
	n->next_ms = nbd_now_ms() + n->next_delay_ms;
	n->next_delay_ms = MIN(n->next_delay_ms * 2, NBD_BACKOFF_CAP_MS);
	if (n->next_delay_ms < n->delay_ms)
		n->next_delay_ms = n->delay_ms;
}

static void nbd_lost(struct disk_nbd *n)
{
	pr_warn("%s: %s: connection lost: %s; reconnecting", n->who, n->uri,
		n->why[0] ? n->why : nbd_why());
	nbd_drop_handle(n);
	/* The flag stands for these writes now: one failed FLUSH reports them. */
	if (n->wgen != n->flushed_gen)
		n->lost_unflushed = true;
	n->flushed_gen = n->wgen;
	n->next_delay_ms = n->delay_ms;
	nbd_backoff(n);
}

/* What every handle is opened with; -1 on error (libnbd's). */
static int nbd_settings(struct nbd_handle *h)
{
	if (nbd_set_request_structured_replies(h, false) < 0 ||
	    nbd_set_uri_allow_transports(h, LIBNBD_ALLOW_TRANSPORT_TCP |
					 LIBNBD_ALLOW_TRANSPORT_UNIX) < 0 ||
	    nbd_set_uri_allow_tls(h, LIBNBD_TLS_DISABLE) < 0)
		return -1;
	return 0;
}

/*
 * A unix socket again by the URI's own path: getpeername() gives the
 * path the server bound, which may be relative to its directory, or
 * name another mount namespace's file.  libnbd parses the URI in memory
 * and makes the same socket() and connect() as for an address.  TCP
 * goes to the address first connected: no name lookup at run time.
 */
static int nbd_connect_again(struct disk_nbd *n, struct nbd_handle *h)
{
	if (nbd_settings(h) < 0)
		return -1;
	if (n->addr.ss_family == AF_UNIX)
		return nbd_aio_connect_uri(h, n->uri);
	if (nbd_set_export_name(h, n->export_name) < 0)
		return -1;
	return nbd_aio_connect(h, (struct sockaddr *)&n->addr, n->addrlen);
}

/* How long one connect, handshake included, may take. */
static int64_t nbd_connect_ms(const struct disk_nbd *n)
{
	return MIN(NBD_CONNECT_MS, n->timeout_ms);
}

/*
 * Tell a connecting handle what poll() saw, for the direction dir it
 * waits for: only that one (the other is an error there, and changes
 * nothing).  A refused connect() is POLLERR/POLLHUP while it waits to
 * write: that must reach it as a write, or poll() returns at once, again
 * and again.  libnbd's return.
 */
static int nbd_connect_notify(struct nbd_handle *h, unsigned int dir, short revents)
{
	int ret = 0;

	if ((dir & LIBNBD_AIO_DIRECTION_READ) && (revents & (POLLIN | POLLHUP | POLLERR)))
		ret = nbd_aio_notify_read(h);
	if (ret >= 0 && (dir & LIBNBD_AIO_DIRECTION_WRITE) &&
	    (revents & (POLLOUT | POLLHUP | POLLERR)))
		ret = nbd_aio_notify_write(h);
	return ret;
}

static void nbd_try_connect(struct disk_nbd *n)
{
	struct nbd_handle *h = nbd_create();

	if (!h || nbd_connect_again(n, h) < 0) {
		pr_debug("%s: %s: reconnect: %s", n->who, n->uri, nbd_why());
		if (h)
			nbd_close(h);
		nbd_backoff(n);
		return;
	}
	n->h = h;
	n->state = NBD_CONNECTING;
	n->next_ms = nbd_now_ms() + nbd_connect_ms(n);
}

/* A connecting handle moved on: serve, or give up this attempt. */
static void nbd_connect_step(struct disk_nbd *n)
{
	const char *why;

	if (nbd_aio_is_ready(n->h)) {
		why = nbd_caps(n, n->h);
		if (!why) {
			n->state = NBD_UP;
			n->why[0] = 0;
			nbd_epoll_sync(n);
			pr_info("%s: %s: reconnected", n->who, n->uri);
			return;
		}
		pr_warn("%s: %s: reconnected, but %s; trying again later", n->who, n->uri, why);
	} else if (nbd_aio_is_connecting(n->h) && nbd_now_ms() < n->next_ms) {
		return;
	} else {
		pr_debug("%s: %s: reconnect: %s", n->who, n->uri,
			 nbd_aio_is_connecting(n->h) ? "timed out" : nbd_why());
	}
	nbd_drop_handle(n);
	nbd_backoff(n);
}

/* After libnbd ran: a dead handle, a finished connect, a due attempt. */
static void nbd_check(struct disk_nbd *n)
{
	switch (n->state) {
	case NBD_UP:
		/*
		 * The oldest command unanswered for too long: a server that
		 * stopped (or a network gone) while the socket stays open.
		 * Closing the handle fails all in flight and reconnects.
		 */
		if (n->live.lnext != &n->live &&
		    nbd_now_ms() - n->live.lnext->start_ms >= n->timeout_ms) {
			snprintf(n->why, sizeof(n->why), "no answer within %u ms",
				 n->timeout_ms);
			nbd_lost(n);
			break;
		}
		/* An idle connection the server shut is closed, not dead: no error. */
		if (nbd_aio_is_closed(n->h) && !n->why[0])
			snprintf(n->why, sizeof(n->why), "the server closed the connection");
		if (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h))
			nbd_lost(n);
		break;
	case NBD_CONNECTING:
		nbd_connect_step(n);
		break;
	case NBD_DOWN:
		if (nbd_now_ms() >= n->next_ms)
			nbd_try_connect(n);
		break;
	}
}

/* ---- driving libnbd -------------------------------------------------------- */

/*
 * After this thread's libnbd calls: go on with what their answers made
 * ready, keep the notify fd's socket entry right, and wake the engine
 * thread for a dead connection (only it closes handles).  Under hlock.
 */
static void nbd_issued(struct disk_nbd *n)
{
	nbd_run_ready(n);
	if (n->state == NBD_UP && (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)))
		efd_signal(n->kick_fd);
	nbd_epoll_sync(n);
}

/*
 * Let libnbd read (and write) what the socket has (takes) now, without
 * waiting.  Only on readiness seen by poll(): told "readable" mid-send,
 * libnbd would pause the send to wait for a reply that the server sends
 * only once it has the rest.  Under hlock.
 */
static void nbd_pump(struct disk_nbd *n)
{
	struct pollfd p = { .fd = n->sock_fd, .events = POLLIN };
	int ret = 0;

	if (n->state != NBD_UP || n->sock_fd < 0)
		return;
	if (n->sock_out)
		p.events |= POLLOUT;
	if (poll(&p, 1, 0) <= 0)
		return;
	if (p.revents & (POLLIN | POLLHUP | POLLERR))
		ret = nbd_aio_notify_read(n->h);
	if (ret >= 0 && (p.revents & POLLOUT))
		ret = nbd_aio_notify_write(n->h);
	if (ret < 0)
		nbd_note(n);
	nbd_issued(n);
}

/* ---- the engine thread ----------------------------------------------------- */

/*
 * When the oldest live command times out; with none, a tick a quarter of
 * the timeout away, since commands go out on other threads without
 * waking this one (that would cost a wake-up per request): a command is
 * failed within 1.25 times the timeout.
 */
static int64_t nbd_deadline(const struct disk_nbd *n, int64_t now)
{
	if (n->live.lnext != &n->live)
		return n->live.lnext->start_ms + n->timeout_ms;
	return now + MAX(n->timeout_ms / 4, 10);
}

/*
 * Sleep (hlock dropped) until a kick, the socket, or the next deadline
 * (until: 0 none); then let libnbd read or write.  While the queue thread
 * serves, it reads the replies: this thread only watches for the server
 * closing the connection (POLLRDHUP), so that an idle disk notices and
 * reconnects before its next request.  Under hlock.
 */
static void nbd_wait(struct disk_nbd *n, int64_t until)
{
	struct pollfd p[2] = { { .fd = n->kick_fd, .events = POLLIN } };
	int64_t now = nbd_now_ms(), t = until;
	unsigned int dir = 0, nfds = 1;
	int ret = 0;

	if (n->state != NBD_UP)
		t = t ? MIN(t, n->next_ms) : n->next_ms;
	else
		t = t ? MIN(t, nbd_deadline(n, now)) : nbd_deadline(n, now);
	if (n->state != NBD_DOWN) {
		dir = nbd_aio_get_direction(n->h);
		p[1].fd = nbd_aio_get_fd(n->h);
		p[1].events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			      (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
		if (n->state == NBD_UP && !n->stopping)
			p[1].events = POLLRDHUP;
		nfds = p[1].fd >= 0 ? 2 : 1;
	}
	/*
	 * If the handle dies on another thread meanwhile, libnbd closes this
	 * fd and its number may be reused: at worst a spurious wake-up, as
	 * that thread kicks this one and the state is looked at under hlock.
	 */
	pthread_mutex_unlock(&n->hlock);
	ret = poll(p, nfds, t ? (int)MAX(MIN(t - now, 60000), 0) : -1);
	pthread_mutex_lock(&n->hlock);
	if (ret <= 0)
		return;
	ret = 0;
	if (p[0].revents)
		efd_drain(n->kick_fd);
	if (nfds < 2 || !p[1].revents || n->state == NBD_DOWN)
		return;
	if (n->state == NBD_UP) {
		nbd_pump(n);
		return;
	}
	if (nbd_connect_notify(n->h, dir, p[1].revents) < 0)
		nbd_note(n);
}

static void *nbd_thread(void *arg)
{
	struct disk_nbd *n = arg;
	int64_t until = 0;

	pthread_mutex_lock(&n->hlock);
	for (;;) {
		nbd_run_ready(n);
		nbd_check(n);
		nbd_run_ready(n);
		if (n->stopping) {
			if (!until)
				until = nbd_now_ms() + NBD_DRAIN_MS;
			if (n->state != NBD_UP || n->live.lnext == &n->live ||
			    nbd_now_ms() >= until)
				break;
		}
		nbd_wait(n, until);
	}
	if (n->h)
		nbd_drop_handle(n);
	pthread_mutex_unlock(&n->hlock);
	return NULL;
}

/* ---- the engine's interface ------------------------------------------------ */

/*
 * Up to max of the done list; its eventfd quietened when the list is
 * emptied, in the same hold of the lock, as nbd_finish() rings it.
 */
static unsigned int nbd_take_done(struct disk_nbd *n, struct disk_done *out, unsigned int max)
{
	unsigned int k = 0;
	struct nbd_op *op;

	pthread_mutex_lock(&n->lock);
	while (k < max && (op = n->done_head)) {
		n->done_head = op->next;
		if (!n->done_head)
			n->done_tail = NULL;
		out[k].cookie = op->io.cookie;
		out[k++].result = op->result;
		op->next = n->free;
		n->free = op;
	}
	efd_level_update(&n->done, n->done_head != NULL);
	pthread_mutex_unlock(&n->lock);
	return k;
}

static unsigned int nbd_reap(struct disk_engine *e, struct disk_done *out, unsigned int max)
{
	struct disk_nbd *n = nbd_of(e);

	pthread_mutex_lock(&n->hlock);
	nbd_pump(n);
	pthread_mutex_unlock(&n->hlock);
	return nbd_take_done(n, out, max);
}

static bool nbd_sync_done(struct disk_nbd *n, const struct nbd_sync *s)
{
	bool done;

	pthread_mutex_lock(&n->lock);
	done = s->done;
	pthread_mutex_unlock(&n->lock);
	return done;
}

/*
 * op (with its sync) started here and its answers read here, any thread,
 * hlock held (dropped while waiting): the queue thread reads replies
 * only while it has requests of its own in flight.  Whichever thread
 * reads the answer, the done flag says so; the poll is bounded because
 * another thread may read it first.  op's result.
 */
static int nbd_run_sync(struct disk_nbd *n, struct nbd_op *op)
{
	struct pollfd p;

	nbd_start(n, op);
	nbd_issued(n);
	while (!nbd_sync_done(n, op->sync)) {
		p.fd = n->sock_fd;
		p.events = POLLIN | (n->sock_out ? POLLOUT : 0);
		pthread_mutex_unlock(&n->hlock);
		poll(&p, p.fd >= 0, 10);
		pthread_mutex_lock(&n->hlock);
		nbd_pump(n);
	}
	return op->result;
}

/*
 * A READ or WRITE that would need a copy the bounce budget has no room
 * for, or more commands than the command budget has.
 */
static bool nbd_needs_chunks(const struct disk_nbd *n, const struct disk_io *io)
{
	if (io->op != DISK_OP_READ && io->op != DISK_OP_WRITE)
		return false;
	if (io->len > NBD_BOUNCE_BUDGET - n->bounce_held && !nbd_iov_whole(n, io))
		return true;
	/* A bound on nbd_rw_cmds() first, with no walk of the iovecs: most fit. */
	if (n->cmds_held + io->cnt + io->len / n->max_payload <= NBD_CMD_BUDGET)
		return false;
	return n->cmds_held + nbd_rw_cmds(n, io, nbd_iov_whole(n, io)) > NBD_CMD_BUDGET;
}

/*
 * A chunk: whole blocks of the server (max_payload and NBD_CHUNK are),
 * one iovec, so at most NBD_CHUNK_CMDS commands.  Asked again for every
 * chunk: a reconnect while one waits may bring other block sizes.
 */
static uint64_t nbd_chunk_len(const struct disk_nbd *n)
{
	return MIN((uint64_t)NBD_CHUNK, (uint64_t)n->max_payload * NBD_CHUNK_CMDS);
}

/*
 * Such a READ or WRITE, done here (hlock held), a chunk at a time through
 * a buffer of its own, each chunk answered (and with FUA durable) before
 * the next.  0 or -errno.
 */
static int nbd_rw_chunked(struct disk_nbd *n, const struct disk_io *io)
{
	bool read = io->op == DISK_OP_READ;
	uint8_t *buf = malloc(MIN(io->len, NBD_CHUNK));
	struct iovec v;
	uint64_t pos, len;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (pos = 0; pos < io->len && !ret; pos += len) {
		struct nbd_sync s = { .done = false };
		struct nbd_op op = { .io = *io, .sync = &s };

		len = MIN(io->len - pos, nbd_chunk_len(n));
		v = (struct iovec){ .iov_base = buf, .iov_len = len };
		op.io.offset += pos;
		op.io.len = len;
		op.io.iov = &v;
		op.io.cnt = 1;
		if (!read)
			iov_to_buf(io->iov, io->cnt, pos, buf, len);
		ret = nbd_run_sync(n, &op);
		if (!ret && read)
			iov_from_buf(io->iov, io->cnt, pos, buf, len);
	}
	free(buf);
	return ret;
}

static int nbd_submit(struct disk_engine *e, const struct disk_io *io)
{
	struct disk_nbd *n = nbd_of(e);
	struct nbd_op *op;
	int ret;

	pthread_mutex_lock(&n->hlock);
	/* Disconnected: fail now (see the top), the guest sees it at once. */
	if (n->state != NBD_UP) {
		pthread_mutex_unlock(&n->hlock);
		return -EIO;
	}
	if (nbd_needs_chunks(n, io)) {
		ret = nbd_rw_chunked(n, io);
		pthread_mutex_unlock(&n->hlock);
		return ret;
	}
	pthread_mutex_lock(&n->lock);
	op = n->free;
	if (op)
		n->free = op->next;
	pthread_mutex_unlock(&n->lock);
	if (!op) {
		pthread_mutex_unlock(&n->hlock);
		return -EBUSY;
	}
	op->io = *io;
	op->sync = NULL;
	nbd_start(n, op);
	nbd_issued(n);
	pthread_mutex_unlock(&n->hlock);
	return DISK_SUBMITTED;
}

/* A FLUSH issued here (any thread), its answer read here too. */
static int nbd_flush_sync(struct disk_engine *e)
{
	struct disk_nbd *n = nbd_of(e);
	struct nbd_sync s = { .done = false };
	struct nbd_op op = { .io = { .op = DISK_OP_FLUSH }, .sync = &s };

	pthread_mutex_lock(&n->hlock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->hlock);
		return -EIO;
	}
	/*
	 * Disconnected, or dead and not yet dropped by the engine thread:
	 * nothing can be flushed, and what was lost is the flag's to say (or,
	 * before the drop, the generations'), as for a FLUSH that completes.
	 */
	if (n->state != NBD_UP || nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)) {
		op.result = n->lost_unflushed || n->wgen != n->flushed_gen ? -EIO : 0;
		n->lost_unflushed = false;
		n->flushed_gen = n->wgen;
		pthread_mutex_unlock(&n->hlock);
		return op.result;
	}
	nbd_run_sync(n, &op);
	pthread_mutex_unlock(&n->hlock);
	return op.result;
}

static void nbd_free(struct disk_nbd *n)
{
	if (n->h)
		nbd_close(n->h);
	if (n->kick_fd >= 0)
		close(n->kick_fd);
	if (n->done.fd >= 0)
		close(n->done.fd);
	if (n->e.notify_fd >= 0)
		close(n->e.notify_fd);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->hlock);
	free(n->ops);
	free(n->export_name);
	free(n->uri);
	free(n);
}

static void nbd_destroy(struct disk_engine *e)
{
	struct disk_nbd *n = nbd_of(e);

	pthread_mutex_lock(&n->hlock);
	n->stopping = true;
	pthread_mutex_unlock(&n->hlock);
	efd_signal(n->kick_fd);
	pthread_join(n->thread, NULL);
	nbd_free(n);
}

static const struct disk_engine_ops nbd_ops = {
	.name = "nbd",
	.submit = nbd_submit,
	.reap = nbd_reap,
	.flush_sync = nbd_flush_sync,
	.destroy = nbd_destroy,
};

/* ---- opening --------------------------------------------------------------- */

bool disk_path_is_nbd(const char *path)
{
	const char *p = path;

	/* Any nbd scheme (nbds://, nbd+vsock:// too), so that those get a clear no. */
	if (strncmp(p, "nbd", 3))
		return false;
	for (p += 3; *p && *p != ':' && *p != '/'; p++)
		if (*p != '+' && (*p < 'a' || *p > 'z'))
			return false;
	return !strncmp(p, "://", 3);
}

/*
 * nbd_connect_uri() within nbd_connect_ms(): a server that accepts and
 * never answers must not hang start-up.  0, -ETIMEDOUT, or -1 (libnbd's
 * error).
 */
static int nbd_connect_bounded(struct disk_nbd *n, struct nbd_handle *h, const char *uri)
{
	int64_t left, end = nbd_now_ms() + nbd_connect_ms(n);
	struct pollfd p;
	unsigned int dir;
	int ret;

	if (nbd_aio_connect_uri(h, uri) < 0)
		return -1;
	while (nbd_aio_is_connecting(h)) {
		left = end - nbd_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		dir = nbd_aio_get_direction(h);
		p = (struct pollfd){ .fd = nbd_aio_get_fd(h),
				     .events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
					       (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0) };
		ret = poll(&p, 1, (int)left);
		if (ret < 0 && errno != EINTR)
			return -1;
		if (ret > 0 && nbd_connect_notify(h, dir, p.revents) < 0)
			return -1;
	}
	return nbd_aio_is_ready(h) ? 0 : -1;
}

/* The URI's connection, refusing what this engine cannot reconnect to. */
static int nbd_connect_first(struct disk_nbd *n, const struct disk_conf *c)
{
	struct nbd_handle *h;
	int err, ret;

	if (strncmp(c->path, "nbd://", 6) && strncmp(c->path, "nbd+unix://", 11)) {
		pr_err("%s: '%s': only nbd:// and nbd+unix:// URIs are supported (no TLS, no vsock)",
		       c->who, c->path);
		return -EINVAL;
	}
	h = nbd_create();
	if (!h) {
		pr_err("%s: %s: %s", c->who, c->path, nbd_why());
		return -ENOMEM;
	}
	ret = nbd_settings(h) < 0 ? -1 : nbd_connect_bounded(n, h, c->path);
	if (ret == -ETIMEDOUT) {
		pr_err("%s: %s: cannot connect: no handshake within %lld ms", c->who, c->path,
		       (long long)nbd_connect_ms(n));
	} else if (ret < 0) {
		err = nbd_get_errno();
		pr_err("%s: %s: cannot connect: %s", c->who, c->path, nbd_why());
		ret = err > 0 ? -err : -EIO;
	}
	if (ret < 0) {
		nbd_close(h);
		return ret;
	}
	n->h = h;
	n->addrlen = sizeof(n->addr);
	n->export_name = nbd_get_export_name(h);
	if (!n->export_name ||
	    getpeername(nbd_aio_get_fd(h), (struct sockaddr *)&n->addr, &n->addrlen) < 0) {
		pr_err("%s: %s: cannot tell the server's address: %s", c->who, c->path,
		       n->export_name ? strerror(errno) : nbd_why());
		return -EIO;
	}
	return 0;
}

/* The size and range= window, as disk/file.c checks a file's.  One error line. */
static int nbd_window(const struct disk_conf *c, uint64_t size, struct disk_props *p,
		      uint64_t *start)
{
	uint64_t lb = c->logical_block;

	if (!c->has_range) {
		if (!size || size % lb) {
			pr_err("%s: %s: export size %llu is not a non-zero multiple of sectorsize %llu",
			       c->who, c->path, (unsigned long long)size, (unsigned long long)lb);
			return -EINVAL;
		}
		*start = 0;
		p->size = size;
		return 0;
	}
	if (c->range_start > size || c->range_len > size - c->range_start) {
		pr_err("%s: range=%llu/%llu: the window runs past the end of %s (%llu bytes)",
		       c->who, (unsigned long long)(c->range_start / lb),
		       (unsigned long long)(c->range_len / lb), c->path, (unsigned long long)size);
		return -EINVAL;
	}
	*start = c->range_start;
	p->size = c->range_len;
	return 0;
}

/* What the server's handshake says, checked against the options.  One error line. */
static int nbd_media(struct disk_nbd *n, const struct disk_conf *c, struct disk_props *p,
		     uint64_t *start)
{
	int64_t size = nbd_get_size(n->h), min = nbd_get_block_size(n->h, LIBNBD_SIZE_MINIMUM);
	int ro = nbd_is_read_only(n->h);
	const char *why;

	if (size < 0 || min < 0 || ro < 0) {
		pr_err("%s: %s: %s", c->who, c->path, nbd_why());
		return -EIO;
	}
	if (ro && !c->ro) {
		pr_err("%s: %s: the server exports it read-only: add ,ro", c->who, c->path);
		return -EROFS;
	}
	if (!c->ro && nbd_can_flush(n->h) != 1) {
		pr_err("%s: %s: the server cannot flush, so no write could be made durable: add ,ro or use a server that flushes",
		       c->who, c->path);
		return -EOPNOTSUPP;
	}
	if (min > c->logical_block) {
		pr_err("%s: %s: sectorsize=%u is smaller than the server's minimum block size %lld",
		       c->who, c->path, c->logical_block, (long long)min);
		return -EINVAL;
	}
	n->size = size;
	n->ro = c->ro;
	n->logical_block = c->logical_block;
	why = nbd_caps(n, n->h);
	if (why) {
		pr_err("%s: %s: %s", c->who, c->path, why);
		return -EIO;
	}
	p->logical_block = c->logical_block;
	p->physical_block = c->physical_block;
	p->ro = c->ro;
	p->discard = !c->ro && nbd_can_trim(n->h) == 1;
	/* Without NO_HOLE the server may deallocate what it zeroes. */
	p->write_zeroes = p->zeroes_unmap = !c->ro && nbd_can_zero(n->h) == 1;
	p->fd = -1;
	p->sock_family = n->addr.ss_family;
	return nbd_window(c, size, p, start);
}

static int nbd_init(struct disk_nbd *n, const struct disk_conf *c)
{
	unsigned int i, depth = c->depth ? c->depth : 1;
	struct epoll_event ev = { .events = EPOLLIN };

	n->who = c->who;
	n->kick_fd = n->done.fd = n->e.notify_fd = n->sock_fd = -1;
	n->live.lnext = n->live.lprev = &n->live;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->hlock, NULL);
	n->delay_ms = n->next_delay_ms = c->reconnect_ms ? c->reconnect_ms : NBD_RECONNECT_MS;
	n->timeout_ms = c->timeout_ms ? c->timeout_ms : NBD_TIMEOUT_MS;
	n->uri = strdup(c->path);
	n->ops = calloc(depth, sizeof(*n->ops));
	if (!n->uri || !n->ops)
		return -ENOMEM;
	for (i = depth; i-- > 0;) {
		n->ops[i].next = n->free;
		n->free = &n->ops[i];
	}
	n->kick_fd = efd_open();
	if (n->kick_fd < 0)
		return n->kick_fd;
	n->done.fd = efd_open();
	if (n->done.fd < 0)
		return n->done.fd;
	n->e.notify_fd = epoll_create1(EPOLL_CLOEXEC);
	if (n->e.notify_fd < 0)
		return -errno;
	return epoll_ctl(n->e.notify_fd, EPOLL_CTL_ADD, n->done.fd, &ev) < 0 ? -errno : 0;
}

int disk_nbd_create(struct disk_engine **out, const struct disk_conf *c, struct disk_props *p,
		    uint64_t *start)
{
	struct disk_nbd *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return -ENOMEM;
	ret = nbd_init(n, c);
	if (ret)
		pr_err("%s: %s: %s", c->who, c->path, strerror(-ret));
	if (!ret && (c->direct || c->engine != DISK_ENGINE_DEFAULT)) {
		pr_err("%s: %s: %s is for image files, not NBD exports", c->who, c->path,
		       c->direct ? "direct" : "aio=");
		ret = -EINVAL;
	}
	ret = ret ?: nbd_connect_first(n, c);
	ret = ret ?: nbd_media(n, c, p, start);
	if (!ret) {
		n->e.ops = &nbd_ops;
		n->state = NBD_UP;
		nbd_epoll_sync(n);
		ret = -pthread_create(&n->thread, NULL, nbd_thread, n);
		if (ret)
			pr_err("%s: %s: cannot start the engine thread: %s", c->who, c->path,
			       strerror(-ret));
	}
	if (ret) {
		nbd_free(n);
		return ret;
	}
	pthread_setname_np(n->thread, "disk-nbd");
	*out = &n->e;
	return 0;
}
