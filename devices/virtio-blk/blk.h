/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_BLK_H
#define TINYVMM_BLK_H

/*
 * The virtio-blk device model (after ACRN's back end): up to
 * BLK_MAX_QUEUES virtqueues (MQ), features SEG_MAX, BLK_SIZE, TOPOLOGY, INDIRECT_DESC, EVENT_IDX, FLUSH,
 * CONFIG_WCE (+ RO, DISCARD, WRITE_ZEROES), requests IN, OUT,
 * FLUSH/FLUSH_OUT, GET_ID (+ DISCARD, WRITE_ZEROES).
 *
 * How a request travels (blk_queue.c): a kick (the queue's eventfd,
 * signalled by KVM through an ioeventfd) or a disk completion wakes the
 * queue's thread, which pops requests, parses each (blk_req.c),
 * submits its I/O to the disk layer (disk/), reaps what the disk
 * finished, and completes the finished requests in batches: used ring
 * entries, then one interrupt through the transport.  Which engine does
 * the I/O (io_uring, threads) is the disk layer's business.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio-blk/blk_opts.h"
#include "devices/virtio/virtio_pci.h"
#include "devices/virtio/virtq.h"
#include "disk/disk.h"

#define VIRTIO_ID_BLOCK			2
#define VIRTIO_BLK_PCI_DEVICE_ID	0x1001

/* Feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_TOPOLOGY		10
#define VIRTIO_BLK_F_CONFIG_WCE		11
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14
#define VIRTIO_RING_F_INDIRECT_DESC	28

/* Request types and status values. */
#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_FLUSH_OUT		5
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13
#define VIRTIO_BLK_DWZ_F_UNMAP		1	/* struct virtio_blk_discard_write_zeroes.flags */
#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define BLK_SECTOR_SIZE			512
/* Segments of one DISCARD/WRITE_ZEROES request, and sectors of one segment. */
#define BLK_DWZ_MAX_SEG			16
#define BLK_DWZ_MAX_SECTORS		(1u << 22)

struct blk_config {			/* struct virtio_blk_config, legacy part used */
	uint64_t capacity;		/* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t wce;
	uint8_t unused;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/*
 * One request after blk_req_parse(): either its status is known already
 * (BLK_REQ_DONE: bad header, out of range, RO, GET_ID, unsupported type,
 * empty transfer) or it is an operation for the disk.
 */
enum blk_req_kind {
	BLK_REQ_DONE = 0,
	BLK_REQ_READ,		/* len bytes at sector into iov[0..cnt) */
	BLK_REQ_WRITE,		/* len bytes from iov[0..cnt) at sector */
	BLK_REQ_FLUSH,
	BLK_REQ_DISCARD,	/* seg[0..nseg), one disk operation at a time */
	BLK_REQ_WRITE_ZEROES,
};

/* One segment of a DISCARD or WRITE_ZEROES, checked. */
struct blk_seg {
	uint64_t sector;
	uint32_t count;		/* sectors, > 0 */
	bool unmap;		/* WRITE_ZEROES: may deallocate */
};

struct blk_req {
	enum blk_req_kind kind;
	uint8_t status;		/* BLK_REQ_DONE: the status to report */
	bool sync;		/* WRITE: writethru, durable before completion */
	uint8_t *status_byte;	/* NULL: none usable, used 0 (needs reset) */
	uint32_t used;		/* used length, status byte included, without IN data */
	struct iovec *iov;	/* data, inside the elem (trimmed of header/status) */
	unsigned int cnt;
	uint64_t sector;
	uint64_t len;		/* data bytes, > 0 for READ/WRITE, inside the disk */
	unsigned int nseg;	/* DISCARD/WRITE_ZEROES: segments, and the one in hand */
	unsigned int cur;
	struct blk_seg seg[BLK_DWZ_MAX_SEG];
};

struct blk_ioreq {
	struct blk_ioreq *next;
	bool busy;			/* popped, not yet completed */
	struct blk_req req;
	uint32_t used_len;		/* for the completion batch */
	struct virtq_elem elem;
};

/*
 * One virtqueue and the thread that serves it.  The thread alone
 * touches the fields from done_head on.
 */
struct blk_queue {
	struct blk_dev *b;
	unsigned int idx;		/* the transport's queue number */
	struct virtq *vq;
	/*
	 * Queue 0: the device's disk; the others: an engine of their own on
	 * the same media (disk_open_queue), so no two threads share one.
	 */
	struct disk *disk;
	int kick_fd;			/* its ioeventfd, -1: register notifies only */
	int wake_efd;			/* stop, or a notify that came through the register */
	pthread_t thread;
	pthread_mutex_t complete_lock;	/* its used ring writes and interrupt decision */
	struct blk_ioreq *ioreqs;	/* its request pool (b->lock) */
	struct blk_ioreq *free_list;
	uint64_t requests, kicks;	/* for --stats */
	uint64_t interrupts;		/* completion batches that asked for one */

	struct blk_ioreq *done_head, *done_tail;
	uint64_t poll_max_ns;		/* poll=, 0: never poll */
	uint64_t poll_ns;		/* the adaptive window now */
	bool notify_off;		/* kicks off: VRING_USED_F_NO_NOTIFY set, or
					 * with EVENT_IDX avail_event left behind */
	bool blocked;			/* the last pop found no free ioreq, or a reset */
	bool commit_stuck;		/* the disk kept submissions back: commit again soon */
	bool disk_woke;			/* the last sleep ended with completions waiting */
};

/* Counters for --stats, the bench and the tests. */
struct blk_stats {
	uint64_t requests;		/* popped */
	uint64_t kicks;			/* kick eventfd wake-ups */
	uint64_t notify_exits;		/* QUEUE_NOTIFY writes that reached user space */
	uint64_t notify_exits_after_driver_ok;
	unsigned int nr_queues;
	uint64_t queue_requests[BLK_MAX_QUEUES];	/* popped, per queue */
	uint64_t queue_interrupts[BLK_MAX_QUEUES];	/* interrupts raised, per queue */
};

struct blk_dev {
	struct virtio_pci vp;
	struct disk *disk;
	struct blk_opts opts;
	struct blk_config cfg;
	uint64_t features;
	char serial[BLK_ID_BYTES];
	/* The media as opened: blk_dev_setup_media() again whenever disk changes. */
	uint64_t media_bytes;
	bool media_ro;			/* ro=, or media that cannot be written */

	/*
	 * Device-wide: the queues' pools and pops, in_flight, paused,
	 * stopping (also read without it, atomically), running, cfg.
	 */
	pthread_mutex_t lock;
	pthread_cond_t idle_cond;	/* in_flight reached 0 */
	unsigned int in_flight;		/* popped, not yet completed, all queues */
	bool stopping;
	bool paused;			/* reset in progress: pop nothing */
	bool running;			/* the queue threads exist */
	unsigned int nr_queues;
	struct blk_queue q[BLK_MAX_QUEUES];

	/*
	 * Sticky: a flush (or a synchronous write) failed.  fdatasync reports
	 * a write-back error once per file, so after one failure a later
	 * flush could succeed although data was lost: from then on every
	 * FLUSH gets IOERR, and the final status says so.
	 */
	int flush_err;

	/* warnings a guest (or a dying disk) could repeat forever: per device */
	unsigned int ioerr_warned;
	bool broken_warned, unanswered_warned;
};

/*
 * Parse args, open the media, build config space and the transport.
 * Starts no thread.  default_queues: how many queues without mq= (one
 * per vCPU; capped at BLK_MAX_QUEUES, and 1 where the media serves one
 * only).  Errors print one line naming the option; -errno.
 */
int blk_dev_create(struct blk_dev **out, const char *args, const struct guest_mem *mem,
		   unsigned int default_queues);
/* Start the queue threads (after the notify fds exist). */
int blk_dev_start(struct blk_dev *b);
/*
 * Stop the queue threads (in-flight requests finish), flush the media,
 * close it.  Returns 0, or -errno when the media may not hold every
 * completed write (a failed final or earlier flush).
 */
int blk_dev_destroy(struct blk_dev *b);

/* The transport, for the VMM to wire up (PCI slot, interrupts, notify). */
struct virtio_pci *blk_dev_transport(struct blk_dev *b);
void blk_dev_stats(const struct blk_dev *b, struct blk_stats *s);
/* AF_* of the socket the media is reached through (an NBD export), 0: none. */
int blk_dev_sock_family(const struct blk_dev *b);

/* What disk_open() is given for these options (tests open the media the same way). */
void blk_disk_conf(const struct blk_opts *o, struct disk_conf *c);

/* Flush the media; a failure is remembered in flush_err.  0 or -errno. */
int blk_flush_media(struct blk_dev *b, const char *why);

/*
 * Handle one popped request synchronously: parse, check, do the I/O
 * (waiting for the disk when it submits), write the status byte.
 * Returns the used length (status byte included; 0 when there was no
 * usable status byte).  The elem's iovecs are as they were after.  For
 * the unit tests, the fuzzer, and a queue without its thread.
 */
uint32_t blk_req_handle(struct blk_dev *b, struct virtq_elem *e);

/*
 * Fill serial, config space and features from b->opts and the open
 * b->disk: no transport, no threads.  blk_dev_create() uses it, and unit
 * tests use it to drive blk_req_handle() on a hand-built blk_dev.
 */
void blk_dev_setup_media(struct blk_dev *b);

/* Sectors the guest sees (capacity field). */
uint64_t blk_capacity(const struct blk_dev *b);

/* ---- between blk.c, blk_req.c and blk_queue.c ---------------------------- */

/*
 * Parse and check a popped request (everything but the I/O itself): fills
 * *r.  GET_ID and every request that fails a check are BLK_REQ_DONE with
 * their status; the elem's iovecs are trimmed of header and status byte
 * for good.  Pure apart from GET_ID filling the driver's buffer.
 */
void blk_req_parse(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r);
/*
 * The disk operation of a parsed request that is not BLK_REQ_DONE (for
 * DISCARD/WRITE_ZEROES: of the segment in hand).
 */
void blk_req_disk_io(const struct blk_req *r, struct disk_io *io);
/* Move to the request's next segment; false when it has no more. */
bool blk_req_next(struct blk_req *r);
/* Write the status byte; returns the used length (0 without a status byte). */
uint32_t blk_req_finish(const struct blk_req *r, uint8_t status);
/*
 * A chain virtq_pop() refused (VIRTQ_BAD_CHAIN): IOERR in the last byte
 * of its last descriptor (e->tail) when that one is device-writable and
 * not empty -- the status byte of a well-framed request -- so that the
 * driver does not take a stale status for success.  Returns the used
 * length: 1, or 0 when the chain has no such byte.
 */
uint32_t blk_req_refuse(struct virtq_elem *e);
/*
 * The status of a request whose disk operation ended with err (0 or
 * -errno): warns (rate-limited), and a failed flush or writethru write
 * makes flush_err sticky.
 */
uint8_t blk_req_status(struct blk_dev *b, const struct blk_req *r, int err);

/* blk_dwz.c: DISCARD/WRITE_ZEROES features and config, and their parse. */
void blk_dwz_setup(struct blk_dev *b);
void blk_dwz_parse(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r, uint32_t type);

/* blk_queue.c: a queue's thread (arg: its struct blk_queue). */
void *blk_queue_thread(void *arg);
/* Serve the queue on the caller's thread until it is empty (no queue thread). */
void blk_queue_drain_sync(struct blk_queue *q);

#endif
