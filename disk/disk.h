/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_DISK_DISK_H
#define TINYVMM_DISK_DISK_H

/*
 * The disk layer: a block device's media behind one asynchronous
 * interface, whatever engine does the I/O (io_uring, a thread pool,
 * memory, or a fault filter wrapped around any of them).
 *
 * The caller (a device's queue loop) submits operations, each with a
 * cookie of its own.  disk_submit() either finishes one at once and
 * returns its result, or returns DISK_SUBMITTED; the (cookie, result) of
 * a submitted one comes back exactly once from disk_reap(), after
 * disk_notify_fd() has become readable (it may be reaped earlier too).
 *
 * Offsets are bytes in the disk the guest sees.  This layer checks every
 * operation against the media (inside the disk, overflow-safe, lengths
 * that match the iovecs, writes on a read-only disk, operations the
 * media cannot do) and adds the start of the range= window, so no engine
 * can be handed an offset outside the window.  Engines know nothing of
 * virtqueues, guest memory or virtio status bytes.
 *
 * One thread submits, commits and reaps; disk_flush_sync() and
 * disk_props() may be called from any thread.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum disk_op {
	DISK_OP_READ,
	DISK_OP_WRITE,
	DISK_OP_FLUSH,		/* every write completed before it becomes durable */
	DISK_OP_DISCARD,	/* the range may be given back; contents undefined after */
	DISK_OP_WRITE_ZEROES,	/* the range reads as zeros after */
};

/* WRITE, WRITE_ZEROES: durable on the media before it completes (writethru). */
#define DISK_F_FUA		(1u << 0)
/* WRITE_ZEROES: the range may be deallocated (hole punched). */
#define DISK_F_UNMAP		(1u << 1)
/*
 * A hint: the caller has nothing else in hand, so an engine may do the
 * operation synchronously on the caller's thread rather than hand it to
 * another one and wake the caller again for the result.
 */
#define DISK_F_ALONE		(1u << 2)

struct disk_io {
	enum disk_op op;
	uint32_t flags;		/* DISK_F_* */
	uint64_t offset;	/* bytes */
	uint64_t len;		/* bytes; READ/WRITE: the iovecs' total */
	/* READ/WRITE: owned by the caller, valid until the completion */
	const struct iovec *iov;
	unsigned int cnt;
	uint64_t cookie;
};

struct disk_done {
	uint64_t cookie;
	int result;		/* 0, or -errno; a short transfer is -EIO */
};

/* disk_submit(): the operation is in flight; its result comes from disk_reap(). */
#define DISK_SUBMITTED		1

enum disk_engine_kind {
	DISK_ENGINE_DEFAULT = 0,	/* io_uring if the kernel takes it, else threads */
	DISK_ENGINE_IO_URING,
	DISK_ENGINE_THREADS,
};

/* What disk_open() opens. */
struct disk_conf {
	const char *path;		/* regular file, block device or NBD URI */
	bool ro;
	bool direct;			/* O_DIRECT: bypass the host's page cache */
	uint32_t logical_block;		/* bytes, a power of two in [512, 4096] */
	uint32_t physical_block;	/* bytes, a multiple of logical_block */
	bool has_range;			/* only [range_start, +range_len) of the file */
	uint64_t range_start;		/* bytes, multiples of logical_block */
	uint64_t range_len;
	enum disk_engine_kind engine;
	unsigned int depth;		/* most operations in flight at once */
	const char *who;		/* prefix of error lines, e.g. "virtio-blk" */
	unsigned int reconnect_ms;	/* NBD: first delay before reconnecting; 0: default */
	unsigned int timeout_ms;	/* NBD: a command's answer at the latest; 0: default */
};

/* The media as opened: what a device may offer its guest. */
struct disk_props {
	uint64_t size;			/* bytes the disk holds */
	uint32_t logical_block;
	uint32_t physical_block;
	bool ro;
	bool discard;			/* DISCARD gives space back */
	bool write_zeroes;		/* WRITE_ZEROES is done by the media, not by writing buffers */
	bool zeroes_unmap;		/* WRITE_ZEROES with DISK_F_UNMAP may deallocate */
	bool is_blockdev;
	/*
	 * direct: what O_DIRECT asks of buffers (address and length) and of
	 * offsets.  The layer bounces buffers that are not aligned (in flight,
	 * up to DISK_BOUNCE_BUDGET bytes a struct disk, that is a queue; an
	 * operation past it is done at submit); offsets and lengths not
	 * aligned are refused (-EINVAL).
	 */
	bool direct;
	uint32_t dio_mem_align, dio_off_align;
	int fd;				/* the image's fd (fstat for an identity), -1 if none */
	int sock_family;		/* the media's socket's AF_*, 0: no socket */
	const char *engine;		/* the engine's name, e.g. "io_uring" */
};

/* direct: bytes of bounce buffers a struct disk's operations in flight may hold */
#define DISK_BOUNCE_BUDGET	(8u << 20)

struct disk;

/*
 * Whether path is an NBD URI (nbd://HOST[:PORT]/EXPORT,
 * nbd+unix:///EXPORT?socket=PATH; any nbd...:// scheme counts, so that
 * the ones not supported are refused as such), which disk_open() opens
 * with the NBD engine: the server's handshake gives the size, read-only
 * and block size, checked against c; direct and an engine choice are
 * errors there; nothing is locked (sharing an export is the server's
 * business).
 */
bool disk_path_is_nbd(const char *path);

/*
 * Open c->path with the engine c->engine asks for: check its size is a
 * multiple of the logical block and the range window lies inside it
 * (with direct: that the logical block is no smaller than O_DIRECT's
 * offset alignment there),
 * lock the window (the whole file without range=) with an OFD lock
 * (shared for ro, exclusive otherwise), probe discard and zeroing.  One
 * error line naming the path or the option; -errno, -EBUSY when another
 * open of the image holds a conflicting lock.
 */
int disk_open(struct disk **out, const struct disk_conf *c);
/*
 * Another disk on d's media, with an engine of its own (for a device's
 * second queue, served by another thread): the image opened again (an
 * open file of its own, so each sees a write-back error), same
 * properties, window and lock; a flush through either covers the writes
 * completed through both.  Only for files opened by disk_open()
 * (-EOPNOTSUPP for NBD, memory, and a disk a filter wraps).  d may be
 * closed first.  0 or -errno.
 */
int disk_open_queue(struct disk **out, const struct disk *d);
/* Whether disk_open_queue() can be asked for d. */
bool disk_has_queues(const struct disk *d);
/*
 * Wait for every operation in flight (their completions are dropped:
 * reap first to see them), release the engine, close the media.
 */
void disk_close(struct disk *d);

/* DISK_SUBMITTED, or the operation's result now: 0 or -errno. */
int disk_submit(struct disk *d, const struct disk_io *io);
/*
 * Hand what was submitted since the last commit to the kernel (batching).
 * 0, or -errno when some of it is still waiting (the kernel was short of
 * memory, say): commit again soon, do not wait for completions alone.
 */
int disk_commit(struct disk *d);
/* Up to max completions of submitted operations; 0 when none is ready. */
unsigned int disk_reap(struct disk *d, struct disk_done *out, unsigned int max);
/* Readable while completions may be waiting; -1 for engines that never submit. */
int disk_notify_fd(const struct disk *d);
/* Operations submitted and not yet reaped. */
unsigned int disk_in_flight(const struct disk *d);

/*
 * Make every completed write durable, synchronously, from any thread
 * (device reset, leaving writeback, shutdown); 0 or -errno.
 */
int disk_flush_sync(struct disk *d);
const struct disk_props *disk_props(const struct disk *d);

#endif
