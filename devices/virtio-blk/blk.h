/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_BLK_H
#define TINYVMM_BLK_H

/*
 * The virtio-blk device model (after ACRN's back end): one virtqueue,
 * features SEG_MAX, BLK_SIZE, TOPOLOGY, INDIRECT_DESC, FLUSH, CONFIG_WCE
 * (+ RO), requests IN, OUT, FLUSH/FLUSH_OUT, GET_ID.
 *
 * Data path: a kick (the queue's eventfd, signalled by KVM through an
 * ioeventfd) wakes the device's queue thread, which pops requests.  Two
 * engines (aio=, see blk_opts.h):
 *  - threads: the queue thread hands requests to a pool of worker
 *    threads (free/pending lists, as the seed's 8 workers); a worker does
 *    the disk I/O synchronously through the disk ops table, writes the
 *    status byte and completes the request;
 *  - io_uring (blk_uring.c): the queue thread parses each request,
 *    submits its I/O to one io_uring per device, reaps the completions
 *    itself and completes them in batches, one interrupt per batch.
 * Either way a request is completed exactly once: used ring entry, then
 * ISR and INTx through the transport.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio-blk/blk_opts.h"
#include "devices/virtio-blk/disk.h"
#include "devices/virtio/virtio_pci.h"
#include "devices/virtio/virtq.h"

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
#define VIRTIO_RING_F_INDIRECT_DESC	28

/* Request types and status values. */
#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_FLUSH_OUT		5
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define BLK_SECTOR_SIZE			512
#define BLK_NUM_WORKERS			8

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
} __attribute__((packed));

/*
 * One request after blk_req_parse(): either its status is known already
 * (BLK_REQ_DONE: bad header, out of range, RO, GET_ID, unsupported type,
 * empty transfer) or it needs the disk.  Shared by both engines.
 */
enum blk_req_kind {
	BLK_REQ_DONE = 0,
	BLK_REQ_READ,		/* len bytes at sector into iov[0..cnt) */
	BLK_REQ_WRITE,		/* len bytes from iov[0..cnt) at sector */
	BLK_REQ_FLUSH,
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
};

struct blk_ioreq {
	struct blk_ioreq *next;
	bool busy;			/* popped, not yet completed */
	/* io_uring engine: the queue thread's alone while busy */
	struct blk_req req;
	struct iovec *cur_iov;		/* what is left to transfer */
	unsigned int cur_cnt;
	uint64_t done;			/* bytes transferred so far */
	unsigned int retries;		/* -EAGAIN/-EINTR resubmissions */
	uint8_t phase;			/* BLK_URING_PHASE_* */
	uint32_t used_len;		/* for the completion batch */
	struct virtq_elem elem;
};

struct blk_dev {
	struct virtio_pci vp;
	struct disk disk;
	struct blk_opts opts;
	struct blk_config cfg;
	uint64_t features;
	char serial[BLK_ID_BYTES];

	/* request pool: free -> pending -> (worker) -> free */
	pthread_mutex_t lock;
	pthread_cond_t work_cond;	/* pending non-empty or stopping */
	pthread_cond_t idle_cond;	/* in_flight reached 0 */
	struct blk_ioreq *ioreqs;
	struct blk_ioreq *free_list;
	struct blk_ioreq *pending_head, *pending_tail;
	unsigned int in_flight;		/* popped, not yet completed */
	bool stopping;
	bool paused;			/* reset in progress: pop nothing */
	pthread_mutex_t complete_lock;	/* used ring writes */
	pthread_t queue_thread;
	pthread_t workers[BLK_NUM_WORKERS];
	unsigned int nr_workers;
	bool running;			/* the queue thread exists */
	int stop_efd;

	/* the engine in use: BLK_AIO_THREADS or BLK_AIO_IO_URING (uring set) */
	enum blk_aio aio;
	struct blk_uring *uring;

	/*
	 * Sticky: a flush (or a synchronous write) failed.  fdatasync reports
	 * a write-back error once per file, so after one failure a later
	 * flush could succeed although data was lost: from then on every
	 * FLUSH gets IOERR, and the final status says so.
	 */
	int flush_err;

	/* counters for --stats and tests */
	uint64_t kicks, requests, notifies_via_exit;
};

/*
 * Parse args, open the media, build config space and the transport.
 * Starts no thread.  Errors print one line naming the option; -errno.
 */
int blk_dev_create(struct blk_dev **out, const char *args, const struct guest_mem *mem);
/* Start the queue thread and the workers (after the notify fds exist). */
int blk_dev_start(struct blk_dev *b);
/*
 * Stop threads (in-flight requests finish), flush the media, close it.
 * Returns 0, or -errno when the media may not hold every completed write
 * (a failed final or earlier flush).
 */
int blk_dev_destroy(struct blk_dev *b);

/* Flush the media; a failure is remembered in flush_err.  0 or -errno. */
int blk_flush_media(struct blk_dev *b, const char *why);

/*
 * Handle one popped request synchronously: parse, check, do the I/O,
 * write the status byte.  Returns the used length (bytes written into
 * the driver's buffers, status byte included; 0 when there was no
 * usable status byte).  The worker threads and the unit tests use this.
 */
uint32_t blk_req_handle(struct blk_dev *b, struct virtq_elem *e);

/*
 * Fill serial, config space and features from b->opts and the open
 * b->disk: no transport, no threads.  blk_dev_create() uses it, and unit
 * tests use it to drive blk_req_handle() on a hand-built blk_dev.
 */
void blk_dev_setup_media(struct blk_dev *b);

/*
 * Test hook: when set, the io_uring engine reports, from its queue thread
 * and in the order it does them, every operation it puts in the ring,
 * every completion it reaps (res as the kernel gave it) and every request
 * it finishes (res = status byte), which always precedes the used-ring
 * write.  It lets a test prove durability by ordering: a writethru write
 * finishes only after its own fsync was reaped.  NULL in tinyvmm.
 */
enum blk_uring_event {
	BLK_URING_SUBMIT_READ,
	BLK_URING_SUBMIT_WRITE,
	BLK_URING_SUBMIT_FSYNC,
	BLK_URING_REAPED,
	BLK_URING_FINISHED,
	BLK_URING_WRITE_INLINE,		/* written by the queue thread itself; res: RWF_DSYNC */
};
extern void (*blk_uring_observe)(const struct blk_ioreq *io, enum blk_uring_event ev, int res);

/* Sectors the guest sees (capacity field). */
uint64_t blk_capacity(const struct blk_dev *b);

/* ---- shared by the engines (blk.c, blk_req.c, blk_uring.c) ------------- */

/*
 * Parse and check a popped request (everything but the I/O itself): fills
 * *r.  GET_ID and every request that fails a check are BLK_REQ_DONE with
 * their status; the elem's iovecs are trimmed of header and status byte
 * for good.  Pure apart from GET_ID filling the driver's buffer.
 */
void blk_req_parse(struct blk_dev *b, struct virtq_elem *e, struct blk_req *r);
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
 * Status of a READ/WRITE whose I/O ended with err (0, or -errno when it
 * failed or came up short): warns (rate-limited), and a failed writethru
 * write makes flush_err sticky.
 */
uint8_t blk_req_io_done(struct blk_dev *b, const struct blk_req *r, int err);
/* Status of a FLUSH whose fdatasync returned err; keeps flush_err sticky. */
uint8_t blk_req_flush_done(struct blk_dev *b, int err);
void blk_warn_ioerr(struct blk_dev *b, const char *what, uint64_t sector, uint64_t len, int err);

enum blk_pop {
	BLK_POP_NONE = 0,	/* nothing (more) to pop now */
	BLK_POP_OK,		/* *io holds a request */
	BLK_POP_BAD,		/* *io holds a bad chain: complete it with
				 * blk_req_refuse()'s used length */
};
/* Pop one request: ioreq busy, in_flight++ (takes b->lock). */
enum blk_pop blk_queue_pop(struct blk_dev *b, struct blk_ioreq **io);
/*
 * Complete a list of popped requests (linked by next, each with its
 * used_len): used ring entries, then one interrupt, then back to the
 * free list.  Exactly once per popped request.  A used_len of 0 means
 * no status byte could be written, so the driver cannot learn what
 * became of the request: the queue stops and the device needs a reset.
 */
void blk_complete_list(struct blk_dev *b, struct blk_ioreq *list);

/* blk_uring.c.  0, or -errno when the kernel refuses io_uring (no message). */
int blk_uring_init(struct blk_dev *b);
void blk_uring_exit(struct blk_dev *b);
/* Whether the ring still fits the media (its ops were not replaced). */
bool blk_uring_usable(const struct blk_dev *b);
/*
 * Test hook: submit one SQE of opcode on the device's ring (reading
 * into or from buf, or opening path for OPENAT) and return the CQE's res.
 * Only before blk_dev_start(): the ring belongs to the queue thread once
 * it runs.  It shows what the ring's restrictions let through.
 */
int blk_uring_try_op(struct blk_dev *b, uint8_t opcode, void *buf, unsigned int len,
		     const char *path);
/* The queue thread of the io_uring engine (arg: the blk_dev). */
void *blk_uring_thread(void *arg);

#endif
