// SPDX-License-Identifier: MIT
/*
 * The test driver (see vdriver.h): Linux's legacy virtio-pci driver and
 * split ring, reduced to what the tests, the bench and the fuzzer need.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/efd.h"
#include "tests/driver/vdriver.h"

/* The driver's copy of the ABI (include/uapi/linux/virtio_blk.h). */
#define VIRTIO_BLK_T_OUT	1

static uint32_t reg_rd(struct vdrv *d, uint16_t off, unsigned int size)
{
	return virtio_pci_bar_ops.read(d->vp, off, size);
}

static void reg_wr(struct vdrv *d, uint16_t off, unsigned int size, uint32_t val)
{
	virtio_pci_bar_ops.write(d->vp, off, size, val);
}

/* avail: flags, idx, ring[num], used_event; used: flags, idx, ring[num], avail_event. */
static uint64_t used_off(uint16_t num)
{
	uint64_t avail_end = 16ULL * num + 4 + 2ULL * num + 2;

	return (avail_end + VDRV_ALIGN - 1) & ~(uint64_t)(VDRV_ALIGN - 1);
}

uint64_t vdrv_ring_size(uint16_t num)
{
	return used_off(num) + 4 + 8ULL * num + 2;
}

int vdrv_ring_init(struct vdrv *d, const struct guest_mem *gm, uint16_t num, uint64_t ring_gpa)
{
	uint8_t *ring;

	if (!num || (num & (num - 1)) || ring_gpa % VDRV_ALIGN)
		return -EINVAL;
	ring = gmem_ptr(gm, ring_gpa, vdrv_ring_size(num));
	if (!ring)
		return -EFAULT;
	d->gm = gm;
	d->num = num;
	d->ring_gpa = ring_gpa;
	d->desc_gpa = ring_gpa;
	d->avail_gpa = ring_gpa + 16ULL * num;
	d->used_gpa = ring_gpa + used_off(num);
	d->desc = (struct vdrv_desc *)ring;
	d->avail_flags = (uint16_t *)(ring + 16ULL * num);
	d->avail_idx = d->avail_flags + 1;
	d->avail_ring = d->avail_flags + 2;
	d->used_flags = (uint16_t *)(ring + used_off(num));
	d->used_idx = d->used_flags + 1;
	d->used_ring = (struct vdrv_used_elem *)(d->used_flags + 2);
	d->used_event = d->avail_ring + num;
	d->avail_event = (uint16_t *)(d->used_ring + num);
	d->avail_shadow = 0;
	d->last_used = 0;
	d->kicked_avail = 0;
	return 0;
}

/* ---- set-up --------------------------------------------------------------- */

void vdrv_begin(struct vdrv *d, struct virtio_pci *vp, const struct guest_mem *gm,
		uint32_t features_mask, int irq_efd, bool skip_reset)
{
	memset(d, 0, sizeof(*d));
	d->vp = vp;
	d->gm = gm;
	d->kick_fd = -1;
	d->irq_efd = irq_efd;
	if (!skip_reset)
		vdrv_reset(d);
	reg_wr(d, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK);
	reg_wr(d, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	d->host_features = reg_rd(d, VIRTIO_PCI_HOST_FEATURES, 4);
	reg_wr(d, VIRTIO_PCI_GUEST_FEATURES, 4, d->host_features & features_mask);
	d->features = reg_rd(d, VIRTIO_PCI_GUEST_FEATURES, 4);
	d->event_idx = d->features & (1u << VDRV_F_EVENT_IDX);
}

int vdrv_setup_queue(struct vdrv *d, uint16_t queue, uint64_t ring_gpa, bool kick_register)
{
	uint32_t pfn = ring_gpa >> 12;
	uint16_t num;
	int ret;

	reg_wr(d, VIRTIO_PCI_QUEUE_SEL, 2, queue);
	num = reg_rd(d, VIRTIO_PCI_QUEUE_NUM, 2);
	if (!num)
		return -ENOENT;
	if (reg_rd(d, VIRTIO_PCI_QUEUE_PFN, 4))
		return -EBUSY;
	ret = vdrv_ring_init(d, d->gm, num, ring_gpa);
	if (ret)
		return ret;
	/* vring_create_virtqueue_split() hands the device a zeroed ring. */
	memset(d->desc, 0, vdrv_ring_size(num));
	reg_wr(d, VIRTIO_PCI_QUEUE_PFN, 4, pfn);
	if (reg_rd(d, VIRTIO_PCI_QUEUE_PFN, 4) != pfn)
		return -EIO;
	d->queue = queue;
	d->kick_fd = kick_register ? -1 : virtio_pci_kick_fd(d->vp, queue);
	return 0;
}

void vdrv_driver_ok(struct vdrv *d)
{
	reg_wr(d, VIRTIO_PCI_STATUS, 1,
	       VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
}

uint8_t vdrv_reset(struct vdrv *d)
{
	reg_wr(d, VIRTIO_PCI_STATUS, 1, 0);
	return reg_rd(d, VIRTIO_PCI_STATUS, 1);
}

void vdrv_cfg_get(struct vdrv *d, unsigned int off, void *buf, unsigned int len)
{
	uint8_t *p = buf;
	unsigned int i;

	for (i = 0; i < len; i++)
		p[i] = reg_rd(d, VIRTIO_PCI_CONFIG_OFF + off + i, 1);
}

void vdrv_cfg_set(struct vdrv *d, unsigned int off, const void *buf, unsigned int len)
{
	const uint8_t *p = buf;
	unsigned int i;

	for (i = 0; i < len; i++)
		reg_wr(d, VIRTIO_PCI_CONFIG_OFF + off + i, 1, p[i]);
}

uint8_t vdrv_read_isr(struct vdrv *d)
{
	return reg_rd(d, VIRTIO_PCI_ISR, 1);
}

/* ---- requests --------------------------------------------------------------- */

/* Tables may be unaligned (an indirect one can be anywhere): copy bytes. */
static void put_desc(void *table, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vdrv_desc v = { addr, len, flags, next };

	memcpy((uint8_t *)table + 16 * (size_t)i, &v, sizeof(v));
}

int vdrv_desc_at(const struct guest_mem *gm, uint64_t table_gpa, uint16_t i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	void *p = gmem_ptr(gm, table_gpa + 16ULL * i, 16);

	if (!p)
		return -EFAULT;
	put_desc(p, 0, addr, len, flags, next);
	return 0;
}

int vdrv_desc_get(const struct guest_mem *gm, uint64_t table_gpa, uint16_t i,
		  struct vdrv_desc *out)
{
	return gmem_read(gm, table_gpa + 16ULL * i, out, sizeof(*out));
}

int vdrv_add(struct vdrv *d, uint16_t head, const struct vdrv_buf *b, unsigned int n,
	     uint64_t table_gpa)
{
	unsigned int first = table_gpa ? 0 : head, k;
	uint16_t flags;
	void *table;

	if (!n || head >= d->num || (!table_gpa && n > (unsigned int)(d->num - head)))
		return -EINVAL;
	table = table_gpa ? gmem_ptr(d->gm, table_gpa, 16ULL * n) : d->desc;
	if (!table)
		return -EFAULT;
	for (k = 0; k < n; k++) {
		flags = (b[k].write ? VDRV_DESC_F_WRITE : 0) | (k + 1 < n ? VDRV_DESC_F_NEXT : 0);
		put_desc(table, first + k, b[k].gpa, b[k].len, flags, k + 1 < n ? first + k + 1 : 0);
	}
	if (table_gpa)
		put_desc(d->desc, head, table_gpa, 16 * n, VDRV_DESC_F_INDIRECT, 0);
	vdrv_avail_push(d, head);
	return 0;
}

void vdrv_avail_push(struct vdrv *d, uint16_t head)
{
	d->avail_ring[d->avail_shadow & (d->num - 1)] = head;
	d->avail_shadow++;
	if (!d->hold_avail)
		vdrv_publish(d);
}

void vdrv_publish(struct vdrv *d)
{
	/* virtio_wmb() then the idx store: the ring entries first. */
	__atomic_store_n(d->avail_idx, d->avail_shadow, __ATOMIC_RELEASE);
}

/* struct virtio_blk_outhdr, little-endian (legacy on x86: the guest's order). */
static int blk_hdr(struct vdrv *d, const struct vdrv_blk_req *r)
{
	struct { uint32_t type, ioprio; uint64_t sector; } h = {
		htole32(r->type), 0, htole64(r->sector),
	};
	uint8_t *p = gmem_ptr(d->gm, r->hdr_gpa, sizeof(h)), *st = gmem_ptr(d->gm, r->status_gpa, 1);

	if (!p || !st)
		return -EFAULT;
	memcpy(p, &h, sizeof(h));
	*st = VDRV_BLK_STATUS_NONE;
	return 0;
}

int vdrv_blk_add(struct vdrv *d, uint16_t head, const struct vdrv_blk_req *r)
{
	struct vdrv_buf b[VDRV_BLK_MAX_SEGS + 2];
	bool in = !(r->type & VIRTIO_BLK_T_OUT);
	uint32_t seg = r->nseg ? r->data_len / r->nseg : 0;
	unsigned int n = 0, k;
	int ret;

	if (r->nseg > VDRV_BLK_MAX_SEGS || (r->nseg && r->data_len % r->nseg))
		return -EINVAL;
	ret = blk_hdr(d, r);
	if (ret)
		return ret;
	b[n++] = (struct vdrv_buf){ r->hdr_gpa, 16, false };
	for (k = 0; k < r->nseg; k++)
		b[n++] = (struct vdrv_buf){ r->data_gpa + (uint64_t)k * seg, seg, in };
	b[n++] = (struct vdrv_buf){ r->status_gpa, 1, true };
	return vdrv_add(d, head, b, n, r->table_gpa);
}

/* ---- kicks and completions ------------------------------------------------ */

bool vdrv_no_notify(const struct vdrv *d)
{
	return __atomic_load_n(d->used_flags, __ATOMIC_RELAXED) & VDRV_USED_F_NO_NOTIFY;
}

int vdrv_notify(struct vdrv *d)
{
	if (!d->vp)
		return -ENODEV;
	if (d->kick_fd < 0) {
		/* iowrite16(index, QUEUE_NOTIFY): no ioeventfd, the device's register. */
		reg_wr(d, VIRTIO_PCI_QUEUE_NOTIFY, 2, d->queue);
		return 0;
	}
	/* The same write through KVM: its ioeventfd signals this eventfd. */
	return efd_signal(d->kick_fd);
}

/* virtqueue_kick_prepare(), after the fence. */
static bool kick_needed(struct vdrv *d)
{
	uint16_t old = d->kicked_avail, new = d->avail_shadow;

	d->kicked_avail = new;
	if (d->event_idx)
		return vdrv_need_event(__atomic_load_n(d->avail_event, __ATOMIC_RELAXED), new, old);
	return !vdrv_no_notify(d);
}

int vdrv_kick(struct vdrv *d)
{
	int ret;

	vdrv_publish(d);
	/*
	 * virtqueue_kick_prepare(): the idx store must be visible before the
	 * flags (or avail_event) are read, or a device turning notifications
	 * back on could miss this request while the driver skips the kick.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!kick_needed(d))
		return 0;
	ret = vdrv_notify(d);
	return ret ? ret : 1;
}

uint16_t vdrv_used_idx(const struct vdrv *d)
{
	return __atomic_load_n(d->used_idx, __ATOMIC_ACQUIRE);
}

void vdrv_used_elem(const struct vdrv *d, uint16_t i, uint32_t *id, uint32_t *len)
{
	struct vdrv_used_elem *e = &d->used_ring[i & (d->num - 1)];

	if (id)
		*id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
	if (len)
		*len = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
}

bool vdrv_get_used(struct vdrv *d, uint32_t *id, uint32_t *len)
{
	if (d->last_used == vdrv_used_idx(d))
		return false;
	vdrv_used_elem(d, d->last_used, id, len);
	d->last_used++;
	/*
	 * virtqueue_get_buf_ctx_split(): the next entry should interrupt;
	 * the store must be seen before the next look at used->idx.
	 */
	if (d->event_idx && !d->cb_off) {
		__atomic_store_n(d->used_event, d->last_used, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return true;
}

void vdrv_disable_cb(struct vdrv *d)
{
	d->cb_off = true;
	if (!d->event_idx)
		__atomic_store_n(d->avail_flags, VDRV_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

bool vdrv_enable_cb(struct vdrv *d)
{
	d->cb_off = false;
	if (d->event_idx)
		__atomic_store_n(d->used_event, d->last_used, __ATOMIC_RELAXED);
	else
		__atomic_store_n(d->avail_flags, 0, __ATOMIC_RELAXED);
	/* virtqueue_poll(): the store before the look, as the device fences too. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return d->last_used == vdrv_used_idx(d);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int vdrv_wait_used(struct vdrv *d, unsigned int n, int timeout_ms)
{
	struct pollfd pfd = { .fd = d->irq_efd, .events = POLLIN };
	const struct timespec ms = { 0, 1000000 };
	long deadline = now_ms() + timeout_ms, left;
	uint16_t pending;
	uint64_t v;

	for (;;) {
		pending = vdrv_used_idx(d) - d->last_used;
		if (pending >= n)
			return pending;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (d->irq_efd < 0 || d->cb_off) {
			nanosleep(&ms, NULL);
			continue;
		}
		if (d->event_idx) {
			/* The n-th entry interrupts; looked at again past the fence. */
			__atomic_store_n(d->used_event, (uint16_t)(d->last_used + n - 1),
					 __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if ((uint16_t)(vdrv_used_idx(d) - d->last_used) >= n)
				continue;
		}
		if (poll(&pfd, 1, (int)left) == 1) {
			if (read(d->irq_efd, &v, sizeof(v)) != sizeof(v))
				return -EIO;
			vdrv_read_isr(d);
		}
	}
}
