// SPDX-License-Identifier: MIT
/*
 * Legacy virtio PCI transport: the register file in I/O BAR0.
 *
 * Locking.  Three levels, always taken in this order:
 *
 *   vp->ctrl_lock   held across every register write that calls into the
 *                   device model (STATUS, QUEUE_PFN, QUEUE_NOTIFY, config
 *                   writes) and across BAR moves, so the device sees its
 *                   callbacks one at a time and a reset can never
 *                   interleave with a queue being set up by another vCPU;
 *   device locks    whatever the device model takes inside its callbacks;
 *   vp->lock        a leaf: register values, ISR, queue geometry, and
 *                   whether the line is up.  No device callback is ever
 *                   made with it held; only the interrupt sink is (see
 *                   struct virtio_irq for when).
 *
 * With MSI-X, the table's lock (pci/msix.c) sits between the device's
 * locks and vp->lock: a queue's interrupt is decided under it, and the
 * INTx fallback (ISR, under vp->lock) is raised under it too.
 *
 * Why it matters: ops->reset waits for in-flight requests, and their
 * completions call virtio_pci_raise_isr() (vp->lock) from worker threads
 * that may hold device locks.  Holding vp->lock across ops->reset would
 * deadlock; holding ctrl_lock is fine because nothing on the completion
 * path takes it.  The device model must never write BAR0 registers itself.
 *
 * Access widths.  Reads of any width are assembled byte by byte from the
 * registers and the device config, so a read that straddles registers is
 * well defined (and clears ISR only if it covers the ISR byte).  Register
 * writes must hit one writable register at its natural width; anything
 * else is ignored.  Config writes of width 1, 2 or 4 go to the device,
 * clipped to config_len.
 *
 * MSI-X.  While the driver has MSI-X enabled (the capability's enable
 * bit, which the PCI bus reports through cfg_write), the register file
 * grows by the two vector registers and the device config moves from 20
 * to 24; both are decided per access from that bit.  A vector register
 * takes a vector the table has, or VIRTIO_MSI_NO_VECTOR; anything else
 * reads back as NO_VECTOR, which is how the driver learns the mapping
 * failed.  A reset sets both back to NO_VECTOR; the MSI-X table is PCI
 * state and stays.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio_pci.h"
#include "lib/efd.h"
#include "lib/util.h"

#define VP_REGS_MAX		VIRTIO_PCI_CONFIG_OFF_MSIX

/* Warnings a guest could otherwise repeat without bound. */
#define VP_WARN_PFN_FAULT	(1u << 0)
#define VP_WARN_PFN_BUSY	(1u << 1)
#define VP_WARN_ACCESS		(1u << 2)
#define VP_WARN_NOTIFY		(1u << 3)

/* True the first time only; the caller prints. */
static bool vp_warn_first(struct virtio_pci *vp, unsigned int what)
{
	return !(__atomic_fetch_or(&vp->warned, what, __ATOMIC_RELAXED) & what);
}

static bool vp_msix_on(const struct virtio_pci *vp)
{
	return vp->has_msix && msix_enabled(&vp->msix);
}

/* Where the device config starts now. */
static unsigned int vp_regs_size(const struct virtio_pci *vp)
{
	return vp_msix_on(vp) ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF;
}

/* Interrupt sink helpers (see struct virtio_irq for who holds vp->lock). */
static void vp_assert(struct virtio_pci *vp)
{
	if (vp->irq.assert_line)
		vp->irq.assert_line(vp->irq.opaque);
}

/* vp->lock held, ISR just cleared: a level line follows it down. */
static void vp_lower_locked(struct virtio_pci *vp)
{
	/* A resampling line comes down at the guest's EOI; a level one may be down already. */
	if (vp->irq.resample || !vp->irq_up)
		return;
	vp->irq_up = false;
	if (vp->irq.deassert_line)
		vp->irq.deassert_line(vp->irq.opaque);
}

/*
 * vp->lock held: a resampling line came down at the guest's EOI.  Bits
 * still in ISR then were not read by a handler.  Where the EOI comes
 * after the handler (VT-x/AMD-V), nobody saw them (the pin was masked,
 * or the guest EOIed without handling): the line is logically still
 * up, so they are announced again.  Where it is reported at delivery
 * (PVM), they belong to the interrupt being delivered; they are owed
 * another one only if no ISR read comes for a while
 * (virtio_pci_irq_recheck).
 */
static void vp_eoi_locked(struct virtio_pci *vp)
{
	vp->irq_up = false;
	if (!vp->isr || vp->isr_new)
		return;
	if (vp->irq.early_eoi)
		vp->irq_owed = true;
	else
		vp->isr_new = true;
}

/*
 * vp->lock held.  Whether the caller must assert now: ISR has bits no
 * interrupt has announced yet, and the line is not up for earlier ones.
 * The caller then owns the assert.
 */
static bool vp_claim_irq_locked(struct virtio_pci *vp)
{
	if (!vp->isr_new)
		return false;
	/* An EOI the VMM has not reported yet ends the last interrupt. */
	if (vp->irq_up && vp->irq.eoi_seen && vp->irq.eoi_seen(vp->irq.opaque))
		vp_eoi_locked(vp);
	if (vp->irq_up)
		return false;
	vp->irq_up = true;
	vp->isr_new = false;
	return true;
}

/*
 * vp->lock held, after a claim: a level line rises now, before an ISR
 * read can lower it.  True if the caller must still assert after
 * unlocking: an irqfd write injects the interrupt, and the guest's
 * handler reads ISR (taking vp->lock) at once, so holding the lock
 * through that system call made the read sleep on it, a wake-up per
 * interrupt.  Nobody else asserts before this interrupt's EOI.
 */
static bool vp_fire_locked(struct virtio_pci *vp, bool fire)
{
	if (fire && !vp->irq.resample) {
		vp_assert(vp);
		return false;
	}
	return fire;
}

/* vp->lock held: add ISR bits; true if the caller must assert after unlocking. */
static bool vp_raise_locked(struct virtio_pci *vp, uint8_t bits)
{
	/* Bits added to an unread ISR ride on the interrupt it already has. */
	if (!vp->isr && bits)
		vp->isr_new = true;
	vp->isr |= bits;
	return vp_fire_locked(vp, vp_claim_irq_locked(vp));
}

/* vp->lock held: ISR read or reset. */
static void vp_clear_isr_locked(struct virtio_pci *vp)
{
	vp->isr = 0;
	vp->isr_new = false;
	vp->irq_owed = false;
	vp_lower_locked(vp);
}

static void put_le(uint8_t *p, uint32_t v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get_le(const uint8_t *p, unsigned int n)
{
	uint32_t v = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

/*
 * Copy registers bytes [off, off+len) into buf.  ISR is read-to-clear:
 * the driver's interrupt handler acknowledges by reading it, and the line
 * must drop at that moment for a level-triggered INTx.
 */
static void vp_regs_read(struct virtio_pci *vp, unsigned int off, uint8_t *buf, unsigned int len)
{
	uint8_t r[VP_REGS_MAX];
	uint16_t sel;
	uint32_t pfn = 0;

	pthread_mutex_lock(&vp->lock);
	sel = vp->queue_sel;
	if (sel < vp->nr_queues && vp->vq[sel].ready)
		pfn = vp->vq[sel].desc_gpa >> 12;
	put_le(r + VIRTIO_PCI_HOST_FEATURES, vp->host_features, 4);
	put_le(r + VIRTIO_PCI_GUEST_FEATURES, vp->guest_features, 4);
	put_le(r + VIRTIO_PCI_QUEUE_PFN, pfn, 4);
	put_le(r + VIRTIO_PCI_QUEUE_NUM, sel < vp->nr_queues ? vp->queue_size[sel] : 0, 2);
	put_le(r + VIRTIO_PCI_QUEUE_SEL, sel, 2);
	put_le(r + VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);	/* write-only in practice */
	r[VIRTIO_PCI_STATUS] = vp->status;
	r[VIRTIO_PCI_ISR] = vp->isr;
	put_le(r + VIRTIO_MSI_CONFIG_VECTOR, vp->config_vector, 2);
	put_le(r + VIRTIO_MSI_QUEUE_VECTOR,
	       sel < vp->nr_queues ? vp->queue_vector[sel] : VIRTIO_MSI_NO_VECTOR, 2);
	memcpy(buf, r + off, len);
	if (off <= VIRTIO_PCI_ISR && off + len > VIRTIO_PCI_ISR)
		vp_clear_isr_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

static uint32_t virtio_pci_bar_read(void *opaque, uint16_t off, unsigned int size)
{
	struct virtio_pci *vp = opaque;
	unsigned int regs = vp_regs_size(vp);
	uint8_t buf[4];
	unsigned int end, n;

	if (size != 1 && size != 2 && size != 4)
		return UINT32_MAX;
	memset(buf, 0xff, sizeof(buf));
	end = off + size;
	if (off < regs) {
		n = MIN(end, regs) - off;
		vp_regs_read(vp, off, buf, n);
	}
	if (end > regs) {
		unsigned int start = MAX((unsigned int)off, regs);
		unsigned int cfg_end = regs + vp->config_len;

		/* Bytes past config_len keep their 0xff: nothing is there. */
		if (start < cfg_end && vp->ops->config_read) {
			n = MIN(end, cfg_end) - start;
			vp->ops->config_read(vp->dev, start - regs, buf + (start - off), n);
		}
	}
	return get_le(buf, size);
}

/* vp->lock held (or not shared yet). */
static void vp_vectors_reset_locked(struct virtio_pci *vp)
{
	unsigned int i;

	__atomic_store_n(&vp->config_vector, VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELAXED);
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		__atomic_store_n(&vp->queue_vector[i], VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELAXED);
}

static void vp_reset(struct virtio_pci *vp)
{
	unsigned int i;

	/*
	 * The device first: it must stop popping and finish its requests
	 * (whose completions take vp->lock) before the rings go away.
	 */
	if (vp->ops->reset)
		vp->ops->reset(vp->dev);

	pthread_mutex_lock(&vp->lock);
	vp->guest_features = 0;
	vp->queue_sel = 0;
	vp->status = 0;
	for (i = 0; i < vp->nr_queues; i++)
		virtq_reset(&vp->vq[i]);
	vp_vectors_reset_locked(vp);
	/* Completions that raced the reset must not leave the line up. */
	vp_clear_isr_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	/*
	 * Messages held for the old driver announce nothing to the next one.
	 * Not under vp->lock: the table's lock comes first (a completion
	 * raises INTx under it).
	 */
	if (vp->has_msix)
		msix_clear_pending(&vp->msix);
}

/*
 * A live ring taken away (PFN 0): the device must have finished with it
 * first, as at a reset, or a queue thread could still be serving it.
 * Features and status stay: Linux does this while probing, to retry its
 * queue set-up with fewer MSI-X vectors.  A device that cannot do one
 * queue is reset whole (as QEMU does).
 */
static void vp_queue_reset(struct virtio_pci *vp, unsigned int n)
{
	if (!vp->ops->queue_reset) {
		vp_reset(vp);
		return;
	}
	vp->ops->queue_reset(vp->dev, n);
	pthread_mutex_lock(&vp->lock);
	virtq_reset(&vp->vq[n]);
	pthread_mutex_unlock(&vp->lock);
}

static void vp_write_status(struct virtio_pci *vp, uint8_t val)
{
	uint8_t old;

	if (val == 0) {
		vp_reset(vp);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	old = vp->status;
	/* NEEDS_RESET is the device's to set; only a reset clears it. */
	vp->status = val | (old & VIRTIO_STATUS_NEEDS_RESET);
	pthread_mutex_unlock(&vp->lock);
	if (!(old & VIRTIO_STATUS_DRIVER_OK) && (val & VIRTIO_STATUS_DRIVER_OK) &&
	    vp->ops->driver_ok)
		vp->ops->driver_ok(vp->dev);
}

static void vp_write_pfn(struct virtio_pci *vp, uint32_t pfn)
{
	unsigned int n;
	int ret;

	pthread_mutex_lock(&vp->lock);
	n = vp->queue_sel;
	/*
	 * A device that needs a reset takes no queue set-up before it: a
	 * new PFN would revive a queue the device stopped.
	 */
	if (n >= vp->nr_queues || (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		goto out_unlock;
	if (pfn == 0) {
		if (vp->vq[n].ready) {
			pthread_mutex_unlock(&vp->lock);
			vp_queue_reset(vp, n);
			return;
		}
		goto out_unlock;
	}
	if (vp->vq[n].ready) {
		/* Moving a live ring under the device: a reset (or PFN 0) first. */
		if (vp_warn_first(vp, VP_WARN_PFN_BUSY))
			pr_warn("%s: queue %u: PFN %#x written while active, ignored",
				vp->pci.name, n, pfn);
		goto out_unlock;
	}
	ret = virtq_init_legacy(&vp->vq[n], vp->mem, vp->queue_size[n], pfn);
	if (ret) {
		/*
		 * Nothing legacy can report this through; keep the queue
		 * unusable so the device never touches it.
		 */
		vp->status |= VIRTIO_STATUS_NEEDS_RESET;
		if (vp_warn_first(vp, VP_WARN_PFN_FAULT))
			pr_warn("%s: queue %u: ring at PFN %#x is not in guest RAM, queue unusable",
				vp->pci.name, n, pfn);
		goto out_unlock;
	}
	pthread_mutex_unlock(&vp->lock);
	if (vp->ops->queue_ready)
		vp->ops->queue_ready(vp->dev, n);
	return;

out_unlock:
	pthread_mutex_unlock(&vp->lock);
}

static void vp_write_notify(struct virtio_pci *vp, uint16_t n)
{
	bool ok;

	pthread_mutex_lock(&vp->lock);
	ok = n < vp->nr_queues && vp->vq[n].ready;
	pthread_mutex_unlock(&vp->lock);
	if (ok && vp->ops->queue_notify)
		vp->ops->queue_notify(vp->dev, n);
}

static void vp_config_write(struct virtio_pci *vp, unsigned int regs, unsigned int off,
			    unsigned int size, uint32_t val)
{
	unsigned int end = MIN(off + size, regs + vp->config_len);
	uint8_t buf[4];

	if (off >= end || !vp->ops->config_write)
		return;
	put_le(buf, val, size);
	vp->ops->config_write(vp->dev, off - regs, buf, end - off);
}

/* A vector the table has, or NO_VECTOR (also what a failed mapping reads back as). */
static uint16_t vp_vector_check(const struct virtio_pci *vp, uint32_t val)
{
	return val < vp->msix.nr ? val : VIRTIO_MSI_NO_VECTOR;
}

static void vp_write_vector(struct virtio_pci *vp, unsigned int reg, uint32_t val)
{
	uint16_t *slot = NULL;

	pthread_mutex_lock(&vp->lock);
	if (reg == VIRTIO_MSI_CONFIG_VECTOR)
		slot = &vp->config_vector;
	else if (vp->queue_sel < vp->nr_queues)
		slot = &vp->queue_vector[vp->queue_sel];
	/* Read without the lock by whoever sends the queue's interrupt. */
	if (slot)
		__atomic_store_n(slot, vp_vector_check(vp, val), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&vp->lock);
}

static void virtio_pci_bar_write(void *opaque, uint16_t off, unsigned int size, uint32_t val)
{
	struct virtio_pci *vp = opaque;
	unsigned int regs = vp_regs_size(vp);

	if (size != 1 && size != 2 && size != 4)
		return;
	if (off >= regs) {
		pthread_mutex_lock(&vp->ctrl_lock);
		vp_config_write(vp, regs, off, size, val);
		pthread_mutex_unlock(&vp->ctrl_lock);
		return;
	}

#define REG(o, s)	(((o) << 3) | (s))
	switch (REG(off, size)) {
	case REG(VIRTIO_PCI_GUEST_FEATURES, 4):
		pthread_mutex_lock(&vp->lock);
		/* Features are final at DRIVER_OK; the device relies on that. */
		if (!(vp->status & VIRTIO_STATUS_DRIVER_OK))
			vp->guest_features = val & vp->host_features;
		pthread_mutex_unlock(&vp->lock);
		break;
	case REG(VIRTIO_PCI_QUEUE_SEL, 2):
		pthread_mutex_lock(&vp->lock);
		vp->queue_sel = val;
		pthread_mutex_unlock(&vp->lock);
		break;
	case REG(VIRTIO_PCI_QUEUE_PFN, 4):
		pthread_mutex_lock(&vp->ctrl_lock);
		vp_write_pfn(vp, val);
		pthread_mutex_unlock(&vp->ctrl_lock);
		break;
	case REG(VIRTIO_PCI_QUEUE_NOTIFY, 2):
		pthread_mutex_lock(&vp->ctrl_lock);
		/*
		 * With an ioeventfd in place a kick never gets here; counting
		 * the ones that do is how --stats proves the fast path.
		 */
		__atomic_fetch_add(&vp->notify_exits, 1, __ATOMIC_RELAXED);
		if (vp->status & VIRTIO_STATUS_DRIVER_OK)
			__atomic_fetch_add(&vp->notify_exits_after_driver_ok, 1, __ATOMIC_RELAXED);
		vp_write_notify(vp, val);
		pthread_mutex_unlock(&vp->ctrl_lock);
		break;
	case REG(VIRTIO_PCI_STATUS, 1):
		pthread_mutex_lock(&vp->ctrl_lock);
		vp_write_status(vp, val);
		pthread_mutex_unlock(&vp->ctrl_lock);
		break;
	case REG(VIRTIO_MSI_CONFIG_VECTOR, 2):
	case REG(VIRTIO_MSI_QUEUE_VECTOR, 2):
		/* Only there while MSI-X is on (off < regs). */
		vp_write_vector(vp, off, val);
		break;
	case REG(VIRTIO_PCI_HOST_FEATURES, 4):
	case REG(VIRTIO_PCI_QUEUE_NUM, 2):
	case REG(VIRTIO_PCI_ISR, 1):
		break;		/* read-only */
	default:
		if (vp_warn_first(vp, VP_WARN_ACCESS))
			pr_warn("%s: %u-byte register write at offset %u ignored",
				vp->pci.name, size, off);
		break;
	}
#undef REG
}

const struct io_ops virtio_pci_bar_ops = {
	.read = virtio_pci_bar_read,
	.write = virtio_pci_bar_write,
};

/* ctrl_lock held. */
static void vp_notify_move(struct virtio_pci *vp, uint32_t old_base, uint32_t new_base)
{
	unsigned int n;
	int ret;

	if (!vp->notify.attach)
		return;
	for (n = 0; n < vp->nr_queues; n++) {
		if (vp->kick_efd[n] < 0)
			continue;
		if (old_base && vp->notify.detach) {
			ret = vp->notify.detach(vp->notify.opaque,
						old_base + VIRTIO_PCI_QUEUE_NOTIFY, n,
						vp->kick_efd[n]);
			if (ret && vp_warn_first(vp, VP_WARN_NOTIFY))
				pr_warn("%s: queue %u: ioeventfd detach at %#x: %s",
					vp->pci.name, n, old_base, strerror(-ret));
		}
		if (new_base) {
			/*
			 * Not fatal: notifies then arrive as register writes
			 * and reach the device through ops->queue_notify.
			 */
			ret = vp->notify.attach(vp->notify.opaque,
						new_base + VIRTIO_PCI_QUEUE_NOTIFY, n,
						vp->kick_efd[n]);
			if (ret && vp_warn_first(vp, VP_WARN_NOTIFY))
				pr_warn("%s: queue %u: ioeventfd attach at %#x: %s",
					vp->pci.name, n, new_base, strerror(-ret));
		}
	}
}

static void virtio_pci_bar_moved(struct pci_dev *d, int bar, uint32_t old_base, uint32_t new_base)
{
	struct virtio_pci *vp = d->owner;

	if (bar != 0 || !vp || old_base == new_base)
		return;
	pthread_mutex_lock(&vp->ctrl_lock);
	vp_notify_move(vp, old_base, new_base);
	pthread_mutex_unlock(&vp->ctrl_lock);
}

int virtio_pci_set_notify(struct virtio_pci *vp, const struct virtio_notify *nt)
{
	unsigned int n, done = 0;
	uint16_t port = 0;
	int ret = 0;

	if (!nt || !nt->attach || !nt->detach)
		return -EINVAL;
	pthread_mutex_lock(&vp->ctrl_lock);
	if (vp->notify.attach) {
		ret = -EBUSY;
		goto out;
	}
	for (n = 0; n < vp->nr_queues; n++) {
		if (vp->kick_efd[n] >= 0)
			continue;
		vp->kick_efd[n] = efd_open();
		if (vp->kick_efd[n] < 0) {
			ret = vp->kick_efd[n];
			vp->kick_efd[n] = -1;
			goto out;
		}
	}
	if (vp->pci.bar[0].mapped) {
		port = vp->pci.bar[0].mapped_base + VIRTIO_PCI_QUEUE_NOTIFY;
		for (done = 0; done < vp->nr_queues; done++) {
			ret = nt->attach(nt->opaque, port, done, vp->kick_efd[done]);
			if (ret)
				goto undo;
		}
	}
	vp->notify = *nt;
	vp->pci.bar_moved = virtio_pci_bar_moved;
	goto out;

undo:
	while (done--)
		nt->detach(nt->opaque, port, done, vp->kick_efd[done]);
out:
	pthread_mutex_unlock(&vp->ctrl_lock);
	return ret;
}

void virtio_pci_set_irq(struct virtio_pci *vp, const struct virtio_irq *irq)
{
	pthread_mutex_lock(&vp->lock);
	vp->irq = *irq;
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_raise_isr(struct virtio_pci *vp, uint8_t bits)
{
	bool fire;

	pthread_mutex_lock(&vp->lock);
	fire = vp_raise_locked(vp, bits);
	pthread_mutex_unlock(&vp->lock);
	if (fire)
		vp_assert(vp);
}

bool virtio_pci_irq_eoi(struct virtio_pci *vp)
{
	bool fire;

	pthread_mutex_lock(&vp->lock);
	vp_eoi_locked(vp);
	fire = vp_fire_locked(vp, vp_claim_irq_locked(vp));
	pthread_mutex_unlock(&vp->lock);
	if (fire)
		vp_assert(vp);
	return fire;
}

bool virtio_pci_irq_owed(struct virtio_pci *vp)
{
	bool owed;

	pthread_mutex_lock(&vp->lock);
	owed = vp->irq_owed;
	pthread_mutex_unlock(&vp->lock);
	return owed;
}

bool virtio_pci_irq_recheck(struct virtio_pci *vp)
{
	bool fire;

	pthread_mutex_lock(&vp->lock);
	if (vp->irq_owed && vp->isr)
		vp->isr_new = true;
	vp->irq_owed = false;
	fire = vp_fire_locked(vp, vp_claim_irq_locked(vp));
	pthread_mutex_unlock(&vp->lock);
	if (fire)
		vp_assert(vp);
	return fire;
}

bool virtio_pci_isr_pending(struct virtio_pci *vp)
{
	bool pending;

	pthread_mutex_lock(&vp->lock);
	pending = vp->isr != 0;
	pthread_mutex_unlock(&vp->lock);
	return pending;
}

/*
 * vector's message while MSI-X is on (none for NO_VECTOR or a vector past
 * the table, as the driver asked); false when MSI-X is off.  The caller
 * holds msix_lock() and raises INTx under it when this says false, so a
 * completion racing the guest's enable or disable is announced one way or
 * the other, never neither.
 */
static bool vp_msix_send_locked(struct virtio_pci *vp, const uint16_t *vector)
{
	return msix_notify_locked(&vp->msix, __atomic_load_n(vector, __ATOMIC_RELAXED)) != -ENODEV;
}

void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned int n)
{
	if (n >= vp->nr_queues)
		return;
	if (!vp->has_msix) {
		virtio_pci_raise_isr(vp, VIRTIO_ISR_QUEUE);
		return;
	}
	msix_lock(&vp->msix);
	if (!vp_msix_send_locked(vp, &vp->queue_vector[n]))
		virtio_pci_raise_isr(vp, VIRTIO_ISR_QUEUE);
	msix_unlock(&vp->msix);
}

/* INTx: one hold, so that a driver that sees NEEDS_RESET finds the config bit in ISR. */
static void vp_intx_needs_reset(struct virtio_pci *vp)
{
	bool fire;

	pthread_mutex_lock(&vp->lock);
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	fire = vp_raise_locked(vp, VIRTIO_ISR_CONFIG);
	pthread_mutex_unlock(&vp->lock);
	if (fire)
		vp_assert(vp);
}

void virtio_pci_needs_reset(struct virtio_pci *vp)
{
	if (!vp->has_msix) {
		vp_intx_needs_reset(vp);
		return;
	}
	msix_lock(&vp->msix);
	if (msix_enabled(&vp->msix)) {
		/* Status first: the driver that gets the message finds it set. */
		pthread_mutex_lock(&vp->lock);
		vp->status |= VIRTIO_STATUS_NEEDS_RESET;
		pthread_mutex_unlock(&vp->lock);
		vp_msix_send_locked(vp, &vp->config_vector);
	} else {
		vp_intx_needs_reset(vp);
	}
	msix_unlock(&vp->msix);
}

bool virtio_pci_has_feature(struct virtio_pci *vp, unsigned int bit)
{
	bool has;

	if (bit >= 32)
		return false;	/* legacy cannot negotiate bits 32-63 */
	pthread_mutex_lock(&vp->lock);
	has = vp->guest_features & (1u << bit);
	pthread_mutex_unlock(&vp->lock);
	return has;
}

static uint32_t bar0_size(uint32_t config_len)
{
	uint32_t size = 32;

	/* Room for the config where MSI-X puts it. */
	while (size < VIRTIO_PCI_CONFIG_OFF_MSIX + config_len)
		size <<= 1;
	return size;
}

int virtio_pci_init(struct virtio_pci *vp, const char *name, uint16_t pci_device_id,
		    uint8_t class_base, uint16_t virtio_type, uint32_t host_features,
		    uint32_t config_len, unsigned int nr_queues, const uint16_t *queue_size,
		    const struct guest_mem *mem, const struct virtio_dev_ops *ops, void *dev)
{
	unsigned int i;
	int ret;

	if (!name || !ops || !mem || nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES || !queue_size ||
	    config_len > 256 - VIRTIO_PCI_CONFIG_OFF_MSIX)
		return -EINVAL;
	for (i = 0; i < nr_queues; i++)
		if (!IS_POW2(queue_size[i]) || queue_size[i] > VIRTQ_MAX_SIZE)
			return -EINVAL;

	memset(vp, 0, sizeof(*vp));
	/* Revision 0 is the legacy ABI version; Linux refuses anything else. */
	pci_dev_init(&vp->pci, name, VIRTIO_PCI_VENDOR, pci_device_id, 0,
		     (uint32_t)class_base << 16, VIRTIO_PCI_VENDOR, virtio_type, true);
	ret = pci_dev_add_io_bar(&vp->pci, 0, bar0_size(config_len), &virtio_pci_bar_ops, vp);
	if (ret) {
		/* Leave nothing virtio_pci_destroy() could trip on (fd 0). */
		for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
			vp->kick_efd[i] = -1;
		return ret;
	}
	vp->pci.owner = vp;
	vp->mem = mem;
	vp->ops = ops;
	vp->dev = dev;
	vp->host_features = host_features;
	vp->config_len = config_len;
	vp->nr_queues = nr_queues;
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vp->queue_size[i] = i < nr_queues ? queue_size[i] : 0;
		vp->kick_efd[i] = -1;
	}
	vp_vectors_reset_locked(vp);
	pthread_mutex_init(&vp->ctrl_lock, NULL);
	pthread_mutex_init(&vp->lock, NULL);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	unsigned int i;

	/*
	 * The ioeventfds go with the VM; KVM holds its own reference to
	 * each eventfd, so closing ours here is safe in either order.
	 */
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (vp->kick_efd[i] >= 0)
			close(vp->kick_efd[i]);
		vp->kick_efd[i] = -1;
	}
	if (vp->has_msix)
		msix_destroy(&vp->msix);
	vp->has_msix = false;
	pthread_mutex_destroy(&vp->ctrl_lock);
	pthread_mutex_destroy(&vp->lock);
}

/*
 * The PCI bus's config-write hook (bus config lock held): the driver
 * turning MSI-X or its function mask on or off.
 */
static void virtio_pci_cfg_write(struct pci_dev *d, unsigned int off, unsigned int size,
				 uint32_t val)
{
	struct virtio_pci *vp = d->owner;
	unsigned int ctrl;

	(void)val;	/* the masked result in d->cfg is what counts */
	if (!vp || !vp->has_msix)
		return;
	ctrl = vp->msix_cap + MSIX_CAP_CONTROL;
	if (off + size <= ctrl || off >= ctrl + 2)
		return;
	/*
	 * ISR bits raised before MSI-X came on stay for the driver's INTx
	 * handler to read: they were announced before the switch.
	 */
	if (msix_control_write(&vp->msix, d->cfg[ctrl] | d->cfg[ctrl + 1] << 8))
		/* Back on INTx with messages held: the driver hears of them there. */
		virtio_pci_raise_isr(vp, VIRTIO_ISR_QUEUE);
}

int virtio_pci_init_msix(struct virtio_pci *vp, unsigned int nr)
{
	uint8_t body[MSIX_CAP_BODY_LEN], wmask[MSIX_CAP_BODY_LEN];
	int ret;

	if (vp->has_msix)
		return -EBUSY;
	ret = msix_init(&vp->msix, nr);
	if (ret)
		return ret;
	msix_cap_body(&vp->msix, VIRTIO_PCI_MSIX_BAR, body, wmask);
	ret = pci_dev_add_mem_bar(&vp->pci, VIRTIO_PCI_MSIX_BAR, MSIX_BAR_SIZE, &msix_bar_ops,
				  &vp->msix);
	if (!ret)
		ret = pci_dev_add_cap(&vp->pci, PCI_CAP_ID_MSIX, body, sizeof(body), wmask);
	if (ret < 0) {
		/* The BAR stays declared but unused: the function is not on the bus yet. */
		msix_destroy(&vp->msix);
		return ret;
	}
	vp->msix_cap = ret;
	vp->has_msix = true;
	vp->pci.cfg_write = virtio_pci_cfg_write;
	return 0;
}

void virtio_pci_set_msix_sink(struct virtio_pci *vp, const struct msix_sink *sink)
{
	if (vp->has_msix)
		msix_set_sink(&vp->msix, sink);
}

struct virtq *virtio_pci_get_vq(struct virtio_pci *vp, unsigned int n)
{
	return n < vp->nr_queues ? &vp->vq[n] : NULL;
}

int virtio_pci_kick_fd(const struct virtio_pci *vp, unsigned int n)
{
	return n < vp->nr_queues ? vp->kick_efd[n] : -1;
}

void virtio_pci_notify_exits(const struct virtio_pci *vp, uint64_t *all, uint64_t *after_ok)
{
	*all = __atomic_load_n(&vp->notify_exits, __ATOMIC_RELAXED);
	*after_ok = __atomic_load_n(&vp->notify_exits_after_driver_ok, __ATOMIC_RELAXED);
}
