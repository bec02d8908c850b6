/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_BLK_H
#define TINYVMM_BLK_H

/*
 * The virtio-blk device model (after ACRN's back end): one virtqueue,
 * features SEG_MAX, BLK_SIZE, TOPOLOGY, INDIRECT_DESC, FLUSH, CONFIG_WCE
 * (+ RO), requests IN, OUT, FLUSH/FLUSH_OUT, GET_ID.
 *
 * Data path: a kick (the queue's eventfd, signalled by KVM through an
 * ioeventfd) wakes the device's queue thread, which pops requests and
 * hands them to a pool of worker threads (free/pending lists, as the
 * seed's 8 workers); a worker does the disk I/O, writes the status byte,
 * and completes the request exactly once: used ring entry, then ISR and
 * INTx through the transport.
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

struct blk_ioreq {
	struct blk_ioreq *next;
	bool busy;			/* popped, not yet completed */
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
	int stop_efd;

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

/* Sectors the guest sees (capacity field). */
uint64_t blk_capacity(const struct blk_dev *b);

#endif
