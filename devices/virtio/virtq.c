// SPDX-License-Identifier: MIT
/*
 * Device side of the legacy split virtqueue.
 *
 * The ring lives in guest RAM and a running guest (or a hostile one) may
 * rewrite any of it while we look.  So every index and descriptor is read
 * exactly once into a local, validated there, and only the local is used
 * afterwards; every descriptor's address goes through gmem_ptr() with the
 * full length accessed (for a refused chain's tail, the one byte
 * written).  The ring itself is checked whole, for its size, when it is
 * set up, and its host pointers kept in struct virtq; they are read once
 * per call.  A queue torn down by another vCPU meanwhile (PFN 0, reset)
 * at worst makes us serve garbage to that guest, never touch host memory
 * outside its RAM, because a queue's size and guest memory never change
 * while a device can look at it (the transport fixes the size, guest RAM
 * is unmapped only after the devices are gone): any pointer read was
 * checked for the size read with it, and a reset leaves both at zero.
 *
 * Legacy virtio is guest-native endian; tinyvmm only runs x86-64 guests on
 * x86-64 hosts, so ring fields are used as they are.
 */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtq.h"
#include "lib/util.h"

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

#define VRING_AVAIL_F_NO_INTERRUPT	1
#define VRING_USED_F_NO_NOTIFY		1

/* avail: flags, idx, ring[num], used_event */
#define AVAIL_IDX_OFF		2
#define AVAIL_RING_OFF		4
#define USED_EVENT_OFF(num)	(AVAIL_RING_OFF + 2 * (size_t)(num))
/* used: flags, idx, ring[num] of 8 bytes, avail_event */
#define USED_IDX_OFF		2
#define USED_RING_OFF		4
#define AVAIL_EVENT_OFF(num)	(USED_RING_OFF + 8 * (size_t)(num))

/* Keeps the compiler from re-reading guest memory in place of a local copy. */
#define barrier()	__asm__ __volatile__("" ::: "memory")

static uint64_t avail_bytes(uint16_t num)
{
	return AVAIL_RING_OFF + 2ULL * num + 2;
}

static uint64_t used_bytes(uint16_t num)
{
	return USED_RING_OFF + 8ULL * num + 2;
}

/* Where the used ring starts: after the table and the avail ring, aligned. */
static uint64_t used_off(uint16_t num)
{
	return ALIGN_UP(16ULL * num + avail_bytes(num), (uint64_t)VIRTQ_ALIGN);
}

uint64_t virtq_legacy_size(uint16_t num)
{
	return used_off(num) + ALIGN_UP(used_bytes(num), (uint64_t)VIRTQ_ALIGN);
}

int virtq_init_legacy(struct virtq *q, const struct guest_mem *mem, uint16_t num, uint32_t pfn)
{
	/* 64-bit shift: a 32-bit one would wrap a PFN >= 1M to low RAM. */
	uint64_t base = (uint64_t)pfn << 12;
	uint8_t *ring;

	virtq_reset(q);
	if (!mem || !IS_POW2(num) || num > VIRTQ_MAX_SIZE)
		return -EINVAL;
	/*
	 * Checking the whole ring once here is what lets virtq_push() write
	 * the used ring without a failure path, and the three parts be kept
	 * as host pointers into it.
	 */
	ring = gmem_ptr(mem, base, virtq_legacy_size(num));
	if (!ring)
		return -EFAULT;

	q->mem = mem;
	q->num = num;
	q->desc_gpa = base;
	q->avail_gpa = base + 16ULL * num;
	q->used_gpa = base + used_off(num);
	q->desc = ring;
	q->avail = ring + 16ULL * num;
	q->used = ring + used_off(num);
	/* Pairs with the acquire in virtq_pop()/virtq_push(): geometry first. */
	__atomic_store_n(&q->ready, true, __ATOMIC_RELEASE);
	return 0;
}

void virtq_reset(struct virtq *q)
{
	__atomic_store_n(&q->ready, false, __ATOMIC_RELEASE);
	q->mem = NULL;
	q->num = 0;
	q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
	q->desc = q->avail = q->used = NULL;
	q->last_avail = 0;
	q->used_idx = 0;
	q->broken = false;
	__atomic_store_n(&q->event_idx, false, __ATOMIC_RELAXED);
	q->signalled_valid = false;
	q->signalled_used = 0;
}

/* The ring's geometry, read once so that one call sees one consistent queue. */
struct ring_view {
	const struct guest_mem *mem;
	uint16_t num;
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
};

static bool ring_view_get(const struct virtq *q, struct ring_view *v)
{
	if (!__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE))
		return false;
	v->mem = q->mem;
	v->num = q->num;
	if (!v->mem || !IS_POW2(v->num) || v->num > VIRTQ_MAX_SIZE)
		return false;
	v->desc = q->desc;
	v->avail = q->avail;
	v->used = q->used;
	return v->desc && v->avail && v->used;
}

static void desc_read(const uint8_t *table, unsigned int i, struct vring_desc *d)
{
	/* Tables may be unaligned (indirect ones are anywhere): copy bytes. */
	memcpy(d, table + 16 * (size_t)i, sizeof(*d));
	barrier();
}

/* Walk state: the table being followed and how far we may go in it. */
struct walk {
	const uint8_t *table;
	unsigned int size;	/* entries in table */
	unsigned int steps;	/* descriptors taken from table so far */
	bool indirect;
	bool seen_write;
	bool refused;		/* a buffer was refused: only the links are followed */
};

static bool elem_add(const struct ring_view *v, struct walk *w, struct virtq_elem *e,
		     const struct vring_desc *d)
{
	bool write = d->flags & VRING_DESC_F_WRITE;
	unsigned int n = e->nr_out + e->nr_in;
	uint32_t *sum = write ? &e->in_len : &e->out_len;
	void *p;

	/* virtio: all device-readable descriptors come before writable ones. */
	if (!write && w->seen_write)
		return false;
	w->seen_write |= write;
	if (d->len == 0)
		return true;	/* allowed, but there is nothing to map */
	p = gmem_ptr(v->mem, d->addr, d->len);
	if (!p)
		return false;
	if (n >= VIRTQ_MAX_SEGS)
		return false;
	if (d->len > UINT32_MAX - *sum)
		return false;
	*sum += d->len;
	e->iov[n].iov_base = p;
	e->iov[n].iov_len = d->len;
	if (write)
		e->nr_in++;
	else
		e->nr_out++;
	return true;
}

/* Switch the walk to the indirect table d points at. */
static bool walk_enter_indirect(const struct ring_view *v, struct walk *w,
				const struct vring_desc *d)
{
	/*
	 * Only a lone head may be indirect: Linux never does otherwise, the
	 * spec forbids INDIRECT|NEXT, and no nesting is allowed.
	 */
	if (w->indirect || w->steps != 1 || (d->flags & VRING_DESC_F_NEXT))
		return false;
	if (d->len == 0 || d->len % 16 || d->len > VIRTQ_MAX_SIZE * 16)
		return false;
	w->table = gmem_ptr(v->mem, d->addr, d->len);
	if (!w->table)
		return false;
	w->size = d->len / 16;
	w->steps = 0;
	w->indirect = true;
	return true;
}

/* The last byte of a chain's last descriptor d, if the device may write it. */
static uint8_t *desc_tail(const struct ring_view *v, const struct vring_desc *d)
{
	if (!(d->flags & VRING_DESC_F_WRITE) || d->len == 0)
		return NULL;
	if (d->addr > UINT64_MAX - (d->len - 1))
		return NULL;
	return gmem_ptr(v->mem, d->addr + d->len - 1, 1);
}

/*
 * Map head's chain into e.  False: the chain is refused; then e->tail is
 * set if its last descriptor could still be reached and its last byte is
 * device-writable guest RAM (desc_tail, struct virtq_elem).
 */
static bool chain_walk(const struct ring_view *v, uint16_t head, struct virtq_elem *e)
{
	struct walk w = {
		.table = v->desc, .size = v->num,
	};
	unsigned int i = head;
	struct vring_desc d;

	for (;;) {
		/* More steps than entries means the chain came back on itself. */
		if (++w.steps > w.size)
			return false;
		desc_read(w.table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!walk_enter_indirect(v, &w, &d))
				return false;
			i = 0;
			continue;
		}
		/*
		 * After a refused buffer the links alone are followed, nothing
		 * more is mapped: where the chain ends is still worth knowing.
		 */
		if (!w.refused && !elem_add(v, &w, e, &d))
			w.refused = true;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= w.size)
			return false;
		i = d.next;
	}
	if (!w.refused)
		return true;
	e->tail = desc_tail(v, &d);
	return false;
}

enum virtq_pop_result virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	struct ring_view v;
	uint16_t avail_idx, head, last;

	if (q->broken)
		return VIRTQ_BROKEN;
	if (!ring_view_get(q, &v))
		return VIRTQ_EMPTY;

	last = q->last_avail;
	/* Acquire: the ring entry and descriptors are read after the index. */
	avail_idx = __atomic_load_n((uint16_t *)(v.avail + AVAIL_IDX_OFF), __ATOMIC_ACQUIRE);
	if (avail_idx == last)
		return VIRTQ_EMPTY;
	if ((uint16_t)(avail_idx - last) > v.num) {
		q->broken = true;
		return VIRTQ_BROKEN;
	}
	head = __atomic_load_n((uint16_t *)(v.avail + AVAIL_RING_OFF) + (last & (v.num - 1)),
			       __ATOMIC_RELAXED);
	if (head >= v.num) {
		q->broken = true;
		return VIRTQ_BROKEN;
	}

	/* From here on the head is ours: it must be completed either way. */
	q->last_avail = last + 1;
	e->head = head;
	e->nr_out = e->nr_in = 0;
	e->out_len = e->in_len = 0;
	e->tail = NULL;
	if (chain_walk(&v, head, e))
		return VIRTQ_OK;
	/* Do not hand half a chain to anyone. */
	e->nr_out = e->nr_in = 0;
	e->out_len = e->in_len = 0;
	return VIRTQ_BAD_CHAIN;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used_elem elem = { .id = head, .len = len };
	struct ring_view v;
	uint16_t idx;

	if (!ring_view_get(q, &v))
		return;
	idx = q->used_idx;
	memcpy(v.used + USED_RING_OFF + 8 * (size_t)(idx & (v.num - 1)), &elem, sizeof(elem));
	q->used_idx = ++idx;
	/*
	 * 2^16 pushes without a decision bring the index back to the last
	 * one decided on: that one no longer tells which entries are new.
	 */
	if (idx == q->signalled_used)
		q->signalled_valid = false;
	/* The driver must see the element before the index that covers it. */
	__atomic_store_n((uint16_t *)(v.used + USED_IDX_OFF), idx, __ATOMIC_RELEASE);
}

/*
 * Linux's vring_need_event(): whether entry event is among those that
 * took the index from old to new, modulo 2^16.  The driver asks for a
 * notification when that index reaches event + 1.
 */
static bool need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void virtq_set_event_idx(struct virtq *q, bool on)
{
	struct ring_view v;

	__atomic_store_n(&q->event_idx, on, __ATOMIC_RELAXED);
	/* What was decided under the other mode says nothing about used_event. */
	q->signalled_valid = false;
	/*
	 * A NO_NOTIFY left from polling before the switch: the driver should
	 * ignore it now, but one that does not would never kick again.
	 */
	if (on && ring_view_get(q, &v))
		__atomic_store_n((uint16_t *)v.used, 0, __ATOMIC_RELAXED);
}

/* EVENT_IDX: the decision for the entries pushed since the last one. */
static bool used_event_no_interrupt(struct virtq *q, const struct ring_view *v)
{
	uint16_t old = q->signalled_used, new = q->used_idx, event;
	bool valid = q->signalled_valid;

	q->signalled_used = new;
	q->signalled_valid = true;
	/* Nothing to compare with: interrupt rather than risk a driver waiting for ever. */
	if (!valid)
		return false;
	/* Read once: a driver rewriting it meanwhile only moves its own interrupt. */
	event = __atomic_load_n((uint16_t *)(v->avail + USED_EVENT_OFF(v->num)), __ATOMIC_RELAXED);
	return !need_event(event, new, old);
}

bool virtq_no_interrupt(struct virtq *q)
{
	struct ring_view v;
	uint16_t flags;

	if (!ring_view_get(q, &v))
		return false;
	/*
	 * Full fence: our used->idx store must be visible before we read the
	 * flag or used_event, or we could miss a driver that just re-enabled
	 * interrupts and then checked used->idx (Linux's virtqueue_enable_cb),
	 * and it would sleep forever.  The x86 store buffer allows exactly
	 * that reordering.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* With EVENT_IDX the driver's flags mean nothing (the spec says to ignore them). */
	if (virtq_has_event_idx(q))
		return used_event_no_interrupt(q, &v);
	flags = __atomic_load_n((uint16_t *)(v.avail), __ATOMIC_RELAXED);
	return flags & VRING_AVAIL_F_NO_INTERRUPT;
}

void virtq_set_notify(struct virtq *q, bool enable)
{
	struct ring_view v;

	if (!ring_view_get(q, &v))
		return;
	if (!virtq_has_event_idx(q)) {
		/* used->flags is ours alone: the driver only reads it. */
		__atomic_store_n((uint16_t *)v.used, enable ? 0 : VRING_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
	}
	if (enable) {
		/*
		 * The driver kicks when its avail index passes avail_event: at
		 * what we have taken, the next request it makes kicks.  Off, it
		 * is left stale, so the driver kicks once more at most.  Kept in
		 * flags mode too: a driver that acks EVENT_IDX after setting up
		 * the queue uses it before DRIVER_OK switches our mode.
		 */
		__atomic_store_n((uint16_t *)(v.used + AVAIL_EVENT_OFF(v.num)),
				 __atomic_load_n(&q->last_avail, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
	}
	/*
	 * A driver that saw NO_NOTIFY (or a stale avail_event) skipped its
	 * kick after publishing avail->idx; our store must be visible before
	 * we read that index again, or both sides would wait for the other.
	 */
	if (enable)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_avail_pending(const struct virtq *q)
{
	struct ring_view v;
	uint16_t idx;

	if (!ring_view_get(q, &v) || __atomic_load_n(&q->broken, __ATOMIC_RELAXED))
		return false;
	idx = __atomic_load_n((uint16_t *)(v.avail + AVAIL_IDX_OFF), __ATOMIC_ACQUIRE);
	return idx != __atomic_load_n(&q->last_avail, __ATOMIC_RELAXED);
}
