/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VDRIVER_H
#define TINYVMM_VDRIVER_H

/*
 * The test driver: the guest side of one legacy split virtqueue, as
 * Linux's virtio_pci_legacy.c + virtio_ring.c (+ virtio_blk.c for the
 * request helper) drive it, for the unit tests, bench/blkbench and the
 * fuzz harness.  Test-only (libtinyvmm_test.a): never in tinyvmm.
 *
 * Rings, descriptors and buffers live in a struct guest_mem; the device
 * is reached through its BAR0 register file (virtio_pci_bar_ops), no VM.
 * A struct vdrv is either a queue set up on a transport (vdrv_begin,
 * config reads, vdrv_setup_queue, vdrv_driver_ok: virtblk_probe()'s
 * order) or a bare ring over guest memory (vdrv_ring_init) for tests
 * that drive devices/virtio/virtq.c directly.
 *
 * Where descriptors go is the caller's choice (a head, the chain in the
 * descriptors after it, or one indirect table), not a free list's: tests
 * know which descriptor to spoil, and a used id names the request.  The
 * raw ring (desc, avail_*, used_*) stays public for hostile tests;
 * spoil a chain before it is published (hold_avail), since the device's
 * queue thread may be polling the avail ring.
 *
 * Notification suppression is Linux's too: with VIRTIO_RING_F_EVENT_IDX
 * acked (vdrv_begin's features_mask asks for it), kicks follow the
 * device's avail_event and used_event says which completion should
 * interrupt; without it, the flags.
 *
 * One thread drives a struct vdrv at a time.  vdrv_used_idx() and
 * vdrv_used_elem() only read, and may be called from any thread.
 */
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtio_pci.h"
#include "lib/guest_mem.h"

/* The ring's ABI, as the driver sees it (include/uapi/linux/virtio_ring.h). */
#define VDRV_DESC_F_NEXT		1
#define VDRV_DESC_F_WRITE		2
#define VDRV_DESC_F_INDIRECT		4
#define VDRV_USED_F_NO_NOTIFY		1
#define VDRV_AVAIL_F_NO_INTERRUPT	1
#define VDRV_ALIGN			4096	/* legacy PCI: VIRTIO_PCI_VRING_ALIGN */

/* Feature bits the driver library knows (and must not ack blindly). */
#define VDRV_F_EVENT_IDX		29

/* A virtio-blk status byte the device has not written (any value > UNSUPP). */
#define VDRV_BLK_STATUS_NONE		0xee
/* Data segments in one vdrv_blk_add() request (blkbench uses up to 62). */
#define VDRV_BLK_MAX_SEGS		254

struct vdrv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdrv_used_elem {
	uint32_t id;
	uint32_t len;
};

/* One buffer of a chain: device-readable (out) or device-writable (in). */
struct vdrv_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct vdrv {
	const struct guest_mem *gm;
	struct virtio_pci *vp;		/* NULL: a bare ring */
	uint16_t queue;
	uint16_t num;
	uint32_t host_features, features;	/* offered, and acked by both */
	int kick_fd;			/* the queue's ioeventfd; -1: QUEUE_NOTIFY */
	int irq_efd;			/* what the interrupt sink signals; -1: none */

	/* The ring (vring_init() layout at ring_gpa) and host pointers into it. */
	uint64_t ring_gpa, desc_gpa, avail_gpa, used_gpa;
	struct vdrv_desc *desc;
	uint16_t *avail_flags, *avail_idx, *avail_ring;
	uint16_t *used_flags, *used_idx;
	struct vdrv_used_elem *used_ring;
	uint16_t *used_event;		/* avail->ring[num]: the driver's (EVENT_IDX) */
	uint16_t *avail_event;		/* used->ring[num]: the device's (EVENT_IDX) */

	uint16_t avail_shadow;		/* next avail index (Linux: avail_idx_shadow) */
	uint16_t last_used;		/* next used index to reap (Linux: last_used_idx) */
	uint16_t kicked_avail;		/* avail index at the last kick decision
					 * (Linux: avail_idx_shadow - num_added) */
	bool hold_avail;		/* adds wait for vdrv_publish()/vdrv_kick() */
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool cb_off;			/* vdrv_disable_cb(): no interrupts wanted */
};

/*
 * include/uapi/linux/virtio_ring.h vring_need_event(): whether the index
 * going from old to new passed event (the other side asked to hear of
 * entry event), modulo 2^16.
 */
static inline bool vdrv_need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/* Bytes a legacy ring of num entries takes (Linux: vring_size(num, 4096)). */
uint64_t vdrv_ring_size(uint16_t num);

/*
 * A bare ring of num entries at ring_gpa (VDRV_ALIGN-aligned): points
 * d's ring at it without writing it (the fuzz harness's ring is its
 * input), indices at 0; the rest of d is left alone (zero it first: no
 * transport, kicks and waits are the caller's).  0, -EINVAL (num not a
 * power of two, gpa unaligned), -EFAULT (not all RAM).
 */
int vdrv_ring_init(struct vdrv *d, const struct guest_mem *gm, uint16_t num, uint64_t ring_gpa);

/* ---- set-up through the register file (virtio_pci_legacy.c) ------------- */

/*
 * virtio_dev_probe() up to the driver's probe: reset (unless
 * skip_reset), ACK, DRIVER, then ack host_features & features_mask
 * (VDRV_F_EVENT_IDX included: leave it out of the mask to drive the
 * flags instead) and read back what the device kept.  irq_efd: the
 * eventfd the caller's interrupt sink writes, for vdrv_wait_used(), or -1.
 */
void vdrv_begin(struct vdrv *d, struct virtio_pci *vp, const struct guest_mem *gm,
		uint32_t features_mask, int irq_efd, bool skip_reset);
/*
 * setup_vq(): select queue, read its size, check its PFN is 0, zero and
 * map a ring at ring_gpa, write the PFN and read it back.  Kicks go to
 * the queue's kick eventfd if the transport has one and !kick_register,
 * else through QUEUE_NOTIFY.  0, -ENOENT (size 0), -EBUSY (PFN set),
 * -EFAULT (ring not RAM), -EIO (the device refused the PFN).
 */
int vdrv_setup_queue(struct vdrv *d, uint16_t queue, uint64_t ring_gpa, bool kick_register);
/* virtio_device_ready(): ACK | DRIVER | DRIVER_OK. */
void vdrv_driver_ok(struct vdrv *d);
/* vp_reset(): status 0, read back (the device has quiesced when it returns). */
uint8_t vdrv_reset(struct vdrv *d);
/* vp_legacy_get()/set(): device config bytes, one ioread8/iowrite8 each. */
void vdrv_cfg_get(struct vdrv *d, unsigned int off, void *buf, unsigned int len);
void vdrv_cfg_set(struct vdrv *d, unsigned int off, const void *buf, unsigned int len);
/* vp_interrupt(): read ISR, which acknowledges (read-to-clear). */
uint8_t vdrv_read_isr(struct vdrv *d);

/* ---- requests (virtqueue_add_split) ------------------------------------- */

/*
 * Write one descriptor at entry i of the table at table_gpa (the ring's
 * or an indirect one, aligned or not).  0, or -EFAULT if not RAM.
 */
int vdrv_desc_at(const struct guest_mem *gm, uint64_t table_gpa, uint16_t i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next);
/* Read one back (the fuzz harness's reference walk); 0 or -EFAULT. */
int vdrv_desc_get(const struct guest_mem *gm, uint64_t table_gpa, uint16_t i,
		  struct vdrv_desc *out);

/*
 * Chain b[0..n) in descriptors head, head + 1, ... of the ring, or, with
 * table_gpa, in an indirect table there with one ring descriptor at head
 * pointing to it; then put head on the avail ring (vdrv_avail_push).
 * 0, -EINVAL (n 0, or the chain runs past the ring), -EFAULT (table).
 */
int vdrv_add(struct vdrv *d, uint16_t head, const struct vdrv_buf *b, unsigned int n,
	     uint64_t table_gpa);
/*
 * Put head on the avail ring; publish avail->idx (release) unless
 * hold_avail, which leaves that to vdrv_publish() or vdrv_kick(): chains
 * can be spoiled first, or a batch published with one store.
 */
void vdrv_avail_push(struct vdrv *d, uint16_t head);
void vdrv_publish(struct vdrv *d);

/*
 * A virtio-blk request: header (type, sector) readable, data (nseg equal
 * pieces of data_len bytes; none if nseg is 0), status writable, set to
 * VDRV_BLK_STATUS_NONE first.  The data is device-readable when type has
 * the OUT bit (OUT, DISCARD, WRITE_ZEROES: as virtblk_add_req() tests
 * it), else writable.  table_gpa: through one indirect descriptor.
 */
struct vdrv_blk_req {
	uint32_t type;
	uint64_t sector;
	uint64_t hdr_gpa;		/* 16 bytes */
	uint64_t status_gpa;		/* 1 byte */
	uint64_t data_gpa;
	uint32_t data_len;
	unsigned int nseg;
	uint64_t table_gpa;		/* 0: descriptors head.. of the ring */
};

/* Build it at head and add it: vdrv_add()'s errors (-EINVAL: nseg). */
int vdrv_blk_add(struct vdrv *d, uint16_t head, const struct vdrv_blk_req *r);

/* ---- kicks and completions ---------------------------------------------- */

/*
 * virtqueue_kick(): publish, full fence, then notify only if the device
 * asked for it: with EVENT_IDX when the avail index passed avail_event
 * since the last kick decision, else when VRING_USED_F_NO_NOTIFY is
 * clear.  1: notified, 0: not needed, -errno: the notify failed.
 */
int vdrv_kick(struct vdrv *d);
/* The notify alone, whatever the device asked: 0 or -errno. */
int vdrv_notify(struct vdrv *d);
/* Whether the device asks for no kicks now (VRING_USED_F_NO_NOTIFY). */
bool vdrv_no_notify(const struct vdrv *d);

/* used->idx (acquire), and the entry at used index i (either may be NULL). */
uint16_t vdrv_used_idx(const struct vdrv *d);
void vdrv_used_elem(const struct vdrv *d, uint16_t i, uint32_t *id, uint32_t *len);
/*
 * virtqueue_get_buf(): the next used entry in order; false if none.
 * With EVENT_IDX and callbacks on, used_event follows it (the next entry
 * interrupts), with a full fence, as Linux does.
 */
bool vdrv_get_used(struct vdrv *d, uint32_t *id, uint32_t *len);
/*
 * virtqueue_disable_cb(): no interrupts wanted (VRING_AVAIL_F_NO_INTERRUPT;
 * with EVENT_IDX nothing is written: used_event stops following the
 * reaped entries, so at most the one it names still interrupts).
 */
void vdrv_disable_cb(struct vdrv *d);
/*
 * virtqueue_enable_cb(): interrupts wanted again (flag cleared, or
 * used_event = last_used: the next entry interrupts), full fence; true
 * when nothing used waits to be reaped, so sleeping for the interrupt is
 * safe; false: reap first (and enable again).
 */
bool vdrv_enable_cb(struct vdrv *d);
/*
 * Wait at most timeout_ms until n entries are used and not yet reaped:
 * with irq_efd and callbacks on, sleep on it and read ISR when it fires
 * (vp_interrupt), with EVENT_IDX after setting used_event to the n-th
 * entry awaited (virtqueue_enable_cb_delayed() at exactly that one);
 * without, look every millisecond.  Returns how many wait (>= n) or
 * -ETIMEDOUT.  Reaps nothing.
 */
int vdrv_wait_used(struct vdrv *d, unsigned int n, int timeout_ms);

#endif
