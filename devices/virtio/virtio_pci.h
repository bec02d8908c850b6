/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VIRTIO_PCI_H
#define TINYVMM_VIRTIO_PCI_H

/*
 * The legacy virtio PCI transport: the register file in I/O BAR0
 * (features, queue PFN/NUM/SEL/NOTIFY, status, ISR, then the device
 * config at offset 20), on top of a pci_dev.  The device model behind it
 * (virtio-blk) plugs in through virtio_dev_ops and never sees PCI.
 *
 * Notifications: QUEUE_NOTIFY writes normally never reach here, because
 * the VMM attaches an ioeventfd to the notify register (notify_attach).
 * A write that does arrive (no ioeventfd, or a queue index that does not
 * exist) is handled by calling ops->queue_notify directly, or ignored.
 *
 * Interrupts: virtio_pci_notify_queue() and the config interrupt go
 * out as MSI-X messages when the driver enabled MSI-X (one vector per
 * queue and one for config changes, as the driver assigns them in the
 * two vector registers), else as INTx: virtio_pci_raise_isr() sets an
 * ISR bit and asks the interrupt sink to assert INTx unless it is up
 * already; reading ISR returns and clears it.  The INTx sink is either
 * KVM_IRQ_LINE (level) or an irqfd with a resample fd, behind struct
 * virtio_irq; the MSI-X sink sends a vector's message (struct msix_sink).
 * Both are the VMM's (see vmm/).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtq.h"
#include "lib/guest_mem.h"
#include "pci/msix.h"
#include "pci/pci.h"

#define VIRTIO_PCI_HOST_FEATURES	0
#define VIRTIO_PCI_GUEST_FEATURES	4
#define VIRTIO_PCI_QUEUE_PFN		8
#define VIRTIO_PCI_QUEUE_NUM		12
#define VIRTIO_PCI_QUEUE_SEL		14
#define VIRTIO_PCI_QUEUE_NOTIFY		16
#define VIRTIO_PCI_STATUS		18
#define VIRTIO_PCI_ISR			19
#define VIRTIO_PCI_CONFIG_OFF		20	/* MSI-X disabled */
#define VIRTIO_MSI_CONFIG_VECTOR	20	/* MSI-X enabled: two vector registers */
#define VIRTIO_MSI_QUEUE_VECTOR		22
#define VIRTIO_PCI_CONFIG_OFF_MSIX	24	/* and the device config after them */
#define VIRTIO_MSI_NO_VECTOR		0xffff
#define VIRTIO_PCI_MSIX_BAR		1

#define VIRTIO_STATUS_ACK		1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

#define VIRTIO_ISR_QUEUE		1
#define VIRTIO_ISR_CONFIG		2

#define VIRTIO_PCI_VENDOR		0x1af4
#define VIRTIO_MAX_QUEUES		16

struct virtio_pci;

/* What the device model provides. */
struct virtio_dev_ops {
	/* Read/write device config bytes [off, off+len); off+len <= config_len. */
	void (*config_read)(void *dev, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const void *buf, uint32_t len);
	/* The driver set DRIVER_OK (features are final) */
	void (*driver_ok)(void *dev);
	/* Queue n became usable (PFN written) */
	void (*queue_ready)(void *dev, unsigned int n);
	/* A notify for queue n that came through the register, not an ioeventfd */
	void (*queue_notify)(void *dev, unsigned int n);
	/*
	 * Status 0 written: stop using the queues and finish or abandon
	 * in-flight requests before returning; no used-ring write may
	 * happen after this returns.
	 */
	void (*reset)(void *dev);
	/*
	 * PFN 0 written to live queue n: as reset, but for that ring alone
	 * (the device finished with it, and forgot it, when this returns).
	 * Without it, the whole device is reset.
	 */
	void (*queue_reset)(void *dev, unsigned int n);
};

/*
 * How the transport raises INTx.  The contract: one interrupt per ISR
 * edge (ISR going from 0 to non-zero), never an assert without ISR bits
 * that no earlier interrupt announced, and never an edge left without an
 * interrupt.  Bits added to an ISR the guest has not read yet ride on
 * the interrupt already raised for it.  (A guest that reads ISR without
 * an interrupt, polling, may still find an interrupt with ISR 0 after.)
 *
 * Two kinds of sink:
 *  - a level line (resample false): deassert_line lowers it; both are
 *    called under vp->lock, with ISR set and cleared, so the line is
 *    exactly "ISR != 0";
 *  - a resampling one (resample true, a KVM irqfd with a resample fd):
 *    the line cannot be lowered from here; KVM drops it at the guest's
 *    EOI and the VMM reports that through virtio_pci_irq_eoi().  An edge
 *    that comes while the line is still up (the handler read ISR but has
 *    not sent its EOI) would merge into the interrupt being handled and
 *    be lost, so it waits for that EOI, which asserts for it.  Bits left
 *    unread at an EOI are announced again (the pin was masked, or the
 *    guest EOIed without handling) -- except with early_eoi, for hosts
 *    that report the EOI when the interrupt is delivered (PVM), where
 *    such bits are the delivered interrupt's: only if no ISR read comes
 *    before the VMM's virtio_pci_irq_recheck() are they announced again.
 *    assert_line is called after vp->lock is dropped (the guest's ISR
 *    read needs it right after the injection); eoi_seen, if set, lets a
 *    completion pick up an EOI the VMM has not reported yet (true: one
 *    was pending and is now consumed).
 * None of the callbacks may call back into the transport.
 */
struct virtio_irq {
	void (*assert_line)(void *opaque);
	void (*deassert_line)(void *opaque);
	bool (*eoi_seen)(void *opaque);
	bool resample;
	bool early_eoi;
	void *opaque;
};

/* How the VMM moves a queue's ioeventfd with BAR0 (see vmm/). */
struct virtio_notify {
	/* attach an ioeventfd for queue n at port; 0 or -errno */
	int (*attach)(void *opaque, uint16_t port, unsigned int n, int efd);
	int (*detach)(void *opaque, uint16_t port, unsigned int n, int efd);
	void *opaque;
};

struct virtio_pci {
	struct pci_dev pci;
	const struct guest_mem *mem;
	const struct virtio_dev_ops *ops;
	void *dev;
	uint32_t host_features;
	uint32_t guest_features;
	uint32_t config_len;
	uint16_t queue_sel;
	uint8_t status;
	uint8_t isr;
	bool isr_new;		/* ISR has bits no assert announced yet */
	bool irq_up;		/* asserted, not yet lowered (ISR read or EOI) */
	bool irq_owed;		/* early_eoi: bits unread at the EOI */
	unsigned int nr_queues;
	uint16_t queue_size[VIRTIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MAX_QUEUES];
	int kick_efd[VIRTIO_MAX_QUEUES];	/* ioeventfd per queue, -1 if none */
	struct virtio_irq irq;
	struct virtio_notify notify;
	/* MSI-X, when virtio_pci_init_msix() gave the function a table */
	bool has_msix;
	int msix_cap;				/* its capability's config offset */
	struct msix msix;
	uint16_t config_vector;			/* VIRTIO_MSI_NO_VECTOR: none */
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	/*
	 * Lock order: ctrl_lock -> device model locks -> lock.  lock is a
	 * leaf: no device callback runs under it (only the interrupt sink's
	 * calls, which must not call back into the transport), so the device
	 * may raise the ISR from any thread while holding its own locks, and
	 * ops->reset may wait for completions that do.
	 */
	pthread_mutex_t ctrl_lock;		/* register writes that call the device, BAR moves */
	pthread_mutex_t lock;			/* registers, ISR, queue set-up */
	uint64_t notify_exits;			/* QUEUE_NOTIFY writes that reached us */
	uint64_t notify_exits_after_driver_ok;
	unsigned int warned;			/* VP_WARN_* already printed */
};

/*
 * device_id is the virtio device type (2 for block): PCI device ID
 * 0x1000 + ... per the legacy table (0x1001 for block), subsystem = type.
 */
int virtio_pci_init(struct virtio_pci *vp, const char *name, uint16_t pci_device_id,
		    uint8_t class_base, uint16_t virtio_type, uint32_t host_features,
		    uint32_t config_len, unsigned int nr_queues, const uint16_t *queue_size,
		    const struct guest_mem *mem, const struct virtio_dev_ops *ops, void *dev);
void virtio_pci_destroy(struct virtio_pci *vp);
/*
 * Give the function MSI-X with nr vectors (table and PBA in memory BAR
 * VIRTIO_PCI_MSIX_BAR), before pci_bus_add(); 0 or -errno.  On failure
 * the function may hold a half-declared BAR 1: destroy it, do not put
 * it on the bus.
 */
int virtio_pci_init_msix(struct virtio_pci *vp, unsigned int nr);
void virtio_pci_set_irq(struct virtio_pci *vp, const struct virtio_irq *irq);
void virtio_pci_set_msix_sink(struct virtio_pci *vp, const struct msix_sink *sink);
/* Creates the per-queue kick eventfds and keeps them attached to BAR0's notify port. */
int virtio_pci_set_notify(struct virtio_pci *vp, const struct virtio_notify *n);

/*
 * Queue n used buffers: its MSI-X vector's message when MSI-X is on
 * (none if the driver gave it VIRTIO_MSI_NO_VECTOR), else the INTx path
 * with the queue ISR bit.  Any thread.
 */
void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned int n);
/* Set ISR bits and assert the line if it is not up already (any thread). */
void virtio_pci_raise_isr(struct virtio_pci *vp, uint8_t bits);
/*
 * A resampling sink's line came down at the guest's EOI: assert again if
 * ISR gained bits since the handler read it.  True if it asserted.
 */
bool virtio_pci_irq_eoi(struct virtio_pci *vp);
/*
 * early_eoi sinks: whether bits were left unread at the last EOI, and,
 * once the VMM has given the handler time to read them, announce them
 * again if they are still there.  True if it asserted.
 */
bool virtio_pci_irq_owed(struct virtio_pci *vp);
bool virtio_pci_irq_recheck(struct virtio_pci *vp);
/* Whether ISR holds bits (tests, the bench). */
bool virtio_pci_isr_pending(struct virtio_pci *vp);
/* The driver broke a queue: set NEEDS_RESET and send a config interrupt. */
void virtio_pci_needs_reset(struct virtio_pci *vp);
bool virtio_pci_has_feature(struct virtio_pci *vp, unsigned int bit);

/*
 * What a device asks its transport for (as kvmtool's get_vq): queue n
 * (NULL past the queues it has) and its kick eventfd (-1: none, the
 * notify register calls ops->queue_notify instead).
 */
struct virtq *virtio_pci_get_vq(struct virtio_pci *vp, unsigned int n);
int virtio_pci_kick_fd(const struct virtio_pci *vp, unsigned int n);
/* QUEUE_NOTIFY writes that reached user space (all, and after DRIVER_OK). */
void virtio_pci_notify_exits(const struct virtio_pci *vp, uint64_t *all, uint64_t *after_ok);

extern const struct io_ops virtio_pci_bar_ops;	/* opaque = struct virtio_pci * */

#endif
