/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VIRTQ_H
#define TINYVMM_VIRTQ_H

/*
 * The split virtqueue (legacy layout, 4096 alignment) seen from the
 * device.  The ring is reached through guest_mem, checked whole when it
 * is set up, and every descriptor and buffer on each pop, so a chain that
 * points outside guest RAM, loops, nests indirect tables or runs past the
 * queue is refused here and never turns into a host access.  Nothing here
 * knows about KVM or about virtio-blk.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/guest_mem.h"

#define VIRTQ_ALIGN		4096
#define VIRTQ_MAX_SIZE		1024
/* A chain longer than this is refused (Linux uses at most seg_max + 2). */
#define VIRTQ_MAX_SEGS		(VIRTQ_MAX_SIZE + 2)

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4

/*
 * Ring feature: the driver's used_event (after avail->ring) and the
 * device's avail_event (after used->ring) replace the flags fields.
 */
#define VIRTIO_RING_F_EVENT_IDX	29

struct virtq {
	const struct guest_mem *mem;
	uint16_t num;			/* queue size, power of two */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	/*
	 * The three parts in host memory, translated once when the ring is
	 * set up (guest RAM stays mapped at one place for the VM's life), so
	 * that each look at the ring costs no guest_mem walk.
	 */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	uint16_t last_avail;		/* next avail ring index to take */
	uint16_t used_idx;		/* our copy of used->idx */
	bool ready;
	bool broken;			/* no more service until reset: the driver broke
					 * the ring, or the device gave up on it */
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX is in use */
	bool signalled_valid;		/* signalled_used holds a decision */
	uint16_t signalled_used;	/* used_idx at the last interrupt decision */
};

/*
 * One request: its descriptor chain flattened into host iovecs, the
 * device-readable ones first (nr_out), then the device-writable ones
 * (nr_in).  in_len is the total writable length.
 *
 * tail, for a refused chain only (VIRTQ_BAD_CHAIN): the last
 * device-writable byte of the chain, where devices such as virtio-blk
 * keep their status, so that the driver can be told the request failed.
 * Set when the chain's links (and its indirect table, if any) lead to a
 * last descriptor that is device-writable, not empty, and whose last
 * byte is guest RAM; NULL when the chain loops, leaves its table or
 * cannot be followed, and on VIRTQ_OK.
 */
struct virtq_elem {
	uint16_t head;
	unsigned int nr_out;
	unsigned int nr_in;
	uint32_t out_len;
	uint32_t in_len;
	uint8_t *tail;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/*
 * Legacy set-up from QUEUE_PFN: -EFAULT unless the whole ring is RAM.  A
 * queue another thread may be looking at is set up again (or reset) only
 * with the num and mem it had (see virtq.c).
 */
int virtq_init_legacy(struct virtq *q, const struct guest_mem *mem, uint16_t num, uint32_t pfn);
void virtq_reset(struct virtq *q);
/* Bytes a legacy ring of num entries occupies. */
uint64_t virtq_legacy_size(uint16_t num);

enum virtq_pop_result {
	VIRTQ_EMPTY = 0,	/* nothing new in the avail ring */
	VIRTQ_OK = 1,		/* *e holds a request to complete with virtq_push */
	VIRTQ_BAD_CHAIN = 2,	/* e->head is valid but its chain is not: no
				 * iovecs, maybe e->tail; complete it (with what
				 * was written at e->tail, else len 0) and serve
				 * the next one */
	VIRTQ_BROKEN = -1,	/* the avail ring itself is bad (index jumped by
				 * more than num, head out of range): q->broken set */
};

enum virtq_pop_result virtq_pop(struct virtq *q, struct virtq_elem *e);

/* Put head on the used ring with len bytes written (publishes with a barrier). */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/*
 * Switch the queue to VIRTIO_RING_F_EVENT_IDX (on) or to the flags (off),
 * as negotiated; virtq_reset() turns it off.  The next interrupt
 * decision after a switch always interrupts.  Callers keep it from
 * running beside virtq_no_interrupt() or virtq_set_notify() on q.
 */
void virtq_set_event_idx(struct virtq *q, bool on);

static inline bool virtq_has_event_idx(const struct virtq *q)
{
	return __atomic_load_n(&q->event_idx, __ATOMIC_RELAXED);
}

/*
 * The interrupt decision for what was pushed since the last one: true
 * when the driver asked for no interrupt.  Without EVENT_IDX that is
 * VRING_AVAIL_F_NO_INTERRUPT; with it (flags ignored) the driver wants
 * one only if the used index crossed used_event since the last decision
 * (vring_need_event); the first decision after a reset or a switch
 * always interrupts.  Call once per batch of virtq_push(), under the
 * same serialisation.
 */
bool virtq_no_interrupt(struct virtq *q);

/*
 * Polling the avail ring instead of waiting for kicks.  While notify is
 * off the driver is asked not to kick: VRING_USED_F_NO_NOTIFY (honoured
 * by Linux's virtqueue_kick_prepare), or with EVENT_IDX avail_event left
 * where it was, so the driver kicks at most once more, when its avail
 * index crosses it.  virtq_set_notify(q, true) clears the flag, or with
 * EVENT_IDX sets avail_event to the avail index taken so far; with
 * EVENT_IDX that must be done before every wait for a kick, not only
 * after polling.  It ends with a full fence, so a virtq_avail_pending()
 * after it sees every request the driver made available without a kick.
 */
void virtq_set_notify(struct virtq *q, bool enable);
/*
 * Whether the avail index moved past what virtq_pop() took.  A hint for a
 * poller, read without the popper's lock: act on it by popping.
 */
bool virtq_avail_pending(const struct virtq *q);

#endif
