/* SPDX-License-Identifier: MIT */
#ifndef TINYVMM_VIRTIO_KVM_H
#define TINYVMM_VIRTIO_KVM_H

/*
 * How a virtio device's notifications cross KVM without exits:
 *
 *   guest OUT to QUEUE_NOTIFY --KVM_IOEVENTFD--> kick eventfd --> device
 *   device sets ISR --> irq eventfd --KVM_IRQFD--> IOAPIC pin --> guest
 *
 * Legacy INTx is level-triggered and acknowledged by reading ISR, so the
 * irqfd is a resampling one: KVM keeps the pin asserted until the guest's
 * EOI, then lowers it and signals the resample eventfd.  The transport
 * asserts once per interrupt and waits for that EOI before asserting
 * again (virtio_pci_irq_eoi(), from the main loop or, if a completion
 * comes first, from the completion itself), so an injection that lands
 * late can never be an interrupt with nothing in ISR.  Without
 * KVM_CAP_IRQFD_RESAMPLE, KVM_IRQ_LINE raise/lower is used instead
 * (raised when ISR gains bits, lowered by the ISR read).
 */
#include <stdbool.h>

#include "devices/virtio/virtio_pci.h"
#include "vmm/kvm.h"

struct virtio_kvm_irq {
	struct kvm *kvm;
	struct virtio_pci *vp;
	unsigned int gsi;
	bool use_irqfd;
	int irq_efd;
	int resample_efd;
	uint64_t asserts;		/* interrupts raised */
	uint64_t resamples, reasserts;	/* EOIs seen; asserts made at one */
};

/* Wire vp's INTx to its GSI; vp->pci.gsi must be assigned. */
int virtio_kvm_irq_init(struct virtio_kvm_irq *vi, struct kvm *kvm, struct virtio_pci *vp);
void virtio_kvm_irq_exit(struct virtio_kvm_irq *vi);
/* The fd the main loop polls (-1 when not resampling) and its handler. */
int virtio_kvm_irq_fd(const struct virtio_kvm_irq *vi);
void virtio_kvm_irq_resample(struct virtio_kvm_irq *vi);

/* KVM_IOEVENTFD on a port, 2 bytes wide, datamatch = queue index. */
extern const struct virtio_notify virtio_kvm_notify_template;	/* .opaque = struct kvm * */

#endif
